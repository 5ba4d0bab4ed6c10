"""Shared fixtures: data paths, a mocked sampler for structure, one small real fit for numbers."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BAYESCALE_DATA_DIR") or ROOT.parent / "shared" / "data")
CHINCHILLA_CSV = SHARED_DATA / "chinchilla_epoch.csv"
TASKS = ROOT.parent / "shared" / "tasks"

needs_shared = pytest.mark.skipif(not CHINCHILLA_CSV.exists(), reason="../shared/data not beside the checkout")


@pytest.fixture
def demo_runs():
    from bayescale.datasets import load_demo

    return load_demo()


@pytest.fixture
def runs_csv(tmp_path):
    """Write a CSV of runs (from a DataFrame or text) and return its path."""

    def write(content, name="runs.csv"):
        path = tmp_path / name
        if isinstance(content, pd.DataFrame):
            content.to_csv(path, index=False)
        else:
            path.write_text(content)
        return path

    return write


@pytest.fixture
def mock_sampler(monkeypatch):
    """Replace pm.sample by prior draws (about a second a stage): for structure, not numbers."""
    import pymc as pm
    import pytensor
    from pymc.testing import mock_sample

    def fake_sample(*args, **kwargs):
        kwargs.pop("nuts", None)
        kwargs["draws"] = max(kwargs.get("draws", 10), 200)
        # free and deterministic variables only: prior draws of a Student-t observation at a tiny prior nu divide
        # 0 by 0, which numba raises; NUTS never draws the observations
        model = pm.modelcontext(None)
        kwargs.setdefault("var_names", [v.name for v in (*model.free_RVs, *model.deterministics)])
        with warnings.catch_warnings():
            # prior draws of TruncatedNormal run in numba object mode: slower, not wrong
            warnings.filterwarnings("ignore", message="Numba will use object mode", category=UserWarning)
            # the discrepancy's collapsed likelihood is a Potential, which prior draws ignore -- as a mock should
            warnings.filterwarnings("ignore", message="The effect of Potentials", category=UserWarning)
            # FAST_COMPILE: prior draws one at a time through the Python linker take a quarter of the time
            # they take through numba (demo model, 1,000 draws: 1.1 s against 4-5 s), and skip numba's compile
            with pytensor.config.change_flags(mode="FAST_COMPILE"):
                return mock_sample(sample_stats={"diverging": lambda size: np.zeros(size, dtype=bool)}, **kwargs)

    from bayescale import compiled

    monkeypatch.setattr(pm, "sample", fake_sample)
    # no compiled nutpie model: every stage goes through (the fake) pm.sample
    monkeypatch.setattr(compiled, "law_model", lambda *args, **kwargs: None)
    monkeypatch.setattr(compiled, "cached", lambda *args, **kwargs: None)
    return fake_sample


@pytest.fixture(scope="session")
def real_fit():
    """One real, small NUTS fit of the demo ladder, shared by the numerical tests."""
    import bayescale as bs
    from bayescale.datasets import load_demo

    return bs.fit(load_demo(), law="chinchilla", draws=500, tune=500, chains=4, seed=7)


@pytest.fixture(scope="session")
def real_fit_path(real_fit, tmp_path_factory):
    return real_fit.save(tmp_path_factory.mktemp("fit") / "demo_fit.nc")
