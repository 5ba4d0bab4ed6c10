"""Shipped data: the demo ladder is what its documented simulator makes; the real-data loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayescale import datasets
from bayescale.datasets.simulate import DEMO_PARAMS, demo_ladder, ladder_design, simulate_runs
from bayescale.errors import BayescaleError
from tests.conftest import CHINCHILLA_CSV, needs_shared


def test_demo_ladder_matches_its_recipe():
    shipped = pd.read_csv(datasets.demo_path())
    regenerated = demo_ladder()
    np.testing.assert_allclose(shipped.to_numpy(), regenerated.to_numpy(), rtol=1e-9)


def test_demo_noise_is_as_documented():
    runs = simulate_runs(ladder_design((1e18,) * 200), DEMO_PARAMS, sigma=0.01, nu=5.0, seed=1)
    resid = np.log(runs["loss"] / runs["true_loss"])
    # Student-t(5) scaled by 0.01 has sd 0.01 * sqrt(5/3) = 0.0129
    assert resid.std() == pytest.approx(0.0129, rel=0.1)


@needs_shared
def test_chinchilla_loader_offline(monkeypatch):
    monkeypatch.setenv("BAYESCALE_DATA_DIR", str(CHINCHILLA_CSV.parent))
    runs = datasets.load_chinchilla()
    assert len(runs) == 245 and runs.inputs == ("N", "D", "C")
    assert datasets._sha256(CHINCHILLA_CSV) == datasets.CHINCHILLA_SHA256


def test_loader_uses_verified_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("BAYESCALE_DATA_DIR", raising=False)
    monkeypatch.setenv("BAYESCALE_CACHE_DIR", str(tmp_path))
    (tmp_path / "chinchilla_epoch.csv").write_text("tampered")
    monkeypatch.setattr(
        datasets.urllib.request, "urlretrieve", lambda url, dest: (_ for _ in ()).throw(OSError("offline"))
    )
    with pytest.raises(BayescaleError, match=r"cannot download .* set BAYESCALE_DATA_DIR"):
        datasets.chinchilla_path()


def test_loader_rejects_bad_checksum(monkeypatch, tmp_path):
    monkeypatch.delenv("BAYESCALE_DATA_DIR", raising=False)
    monkeypatch.setenv("BAYESCALE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(datasets.urllib.request, "urlretrieve", lambda url, dest: Path(dest).write_text("evil"))
    with pytest.raises(BayescaleError, match="checksum mismatch"):
        datasets.chinchilla_path()
    assert not any(tmp_path.iterdir())


def test_data_dir_without_file(monkeypatch, tmp_path):
    monkeypatch.setenv("BAYESCALE_DATA_DIR", str(tmp_path))
    with pytest.raises(BayescaleError, match="has none of"):
        datasets.chinchilla_path()
