"""Compiled models cached on disk across processes: hits, the same draws, and every way an entry can fail."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from bayescale import compiled, model_cache
from tests.cache_models import tiny_model
from tests.conftest import ROOT


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv("BAYESCALE_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A cache folder holding the tiny model's entry, built once for the tests that damage a copy of it."""
    import shutil

    folder = tmp_path_factory.mktemp("pristine") / "models"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BAYESCALE_CACHE_DIR", str(folder))
        model_cache.compile_model(tiny_model(), "tiny")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def filled(cache, pristine):
    """``cache`` holding a copy of the pristine entry."""
    import shutil

    shutil.copytree(pristine, cache)
    return cache


def _sample(model_compiled, seed=3):
    import nutpie

    tree = nutpie.sample(model_compiled, chains=2, draws=50, tune=50, seed=seed, progress_bar=False)
    return {v: tree["posterior"][v].to_numpy() for v in ("a", "b", "s")}


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "model cache" in r.getMessage()]


def _entry(folder):
    (entry,) = folder.glob("*.json")
    return entry


def test_a_second_compile_loads_the_entry_and_samples_the_same_draws(cache, caplog):
    import nutpie

    caplog.set_level(logging.DEBUG, logger="bayescale")
    built = model_cache.compile_model(tiny_model(), "tiny")
    assert model_cache.info()["models"] == 1
    assert "built and stored" in caplog.text
    loaded = model_cache.compile_model(tiny_model(), "tiny")  # a new model object, as a new process has
    assert "loaded the tiny model" in caplog.text
    assert loaded.compiled_logp_func is not built.compiled_logp_func
    reference = nutpie.compile_pymc_model(tiny_model())  # nutpie's own build
    draws = [_sample(c) for c in (reference, built, loaded)]
    for name in ("a", "b", "s"):
        np.testing.assert_array_equal(draws[0][name], draws[1][name])
        np.testing.assert_array_equal(draws[0][name], draws[2][name])
    assert not _warnings(caplog)


def test_a_loaded_model_takes_the_new_models_data(filled):
    other = tiny_model(n=35, seed=4)  # same structure, other data and length: the same entry
    loaded = model_cache.compile_model(other, "tiny")
    assert model_cache.info()["models"] == 1
    x = np.array([0.3, -0.2, 0.1])
    code, logp, _ = model_cache._call_logp(loaded, x)
    point = {"a": x[0], "b": x[1], "s_log__": x[2]}
    assert code == 0
    assert logp == pytest.approx(float(other.compile_logp()(point)), rel=1e-9)


def test_the_key_changes_with_the_graph_and_not_with_the_data():
    assert model_cache.model_key(tiny_model(seed=0)) == model_cache.model_key(tiny_model(n=40, seed=1))
    assert model_cache.model_key(tiny_model(prior_sd=5.0)) != model_cache.model_key(tiny_model(prior_sd=3.0))


def test_the_key_is_the_same_in_another_process():
    code = (
        "from tests.cache_models import tiny_model; from bayescale.model_cache import model_key; "
        "print(model_key(tiny_model()))"
    )
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert other.stdout.strip() == model_cache.model_key(tiny_model())


def _damage_json(folder):
    _entry(folder).write_text('{"format": 1, "n_dim": ')


def _damage_numba(folder):
    for path in folder.glob("*.nbc"):
        path.write_bytes(path.read_bytes()[:100])


def _other_versions(folder):
    meta = json.loads(_entry(folder).read_text())
    meta["versions"]["nutpie"] = "0.0.1"
    _entry(folder).write_text(json.dumps(meta))


def _wrong_layout(folder):
    meta = json.loads(_entry(folder).read_text())  # x where y belongs and y where x: a wrong log density
    first, second = meta["shared"]
    first["name"], second["name"] = second["name"], first["name"]
    _entry(folder).write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_damage_json, "unreadable"),
        (_damage_numba, "numba's files"),
        (_other_versions, "written by other versions: nutpie 0.0.1"),
        (_wrong_layout, "log density"),
    ],
)
def test_a_damaged_entry_is_rebuilt_with_one_line_saying_why(filled, caplog, damage, reason):
    damage(filled)
    caplog.set_level(logging.WARNING, logger="bayescale")
    rebuilt = model_cache.compile_model(tiny_model(), "tiny")
    (line,) = _warnings(caplog)
    assert reason in line and "building it again" in line
    code, logp, _ = model_cache._call_logp(rebuilt, np.zeros(rebuilt.n_dim))
    assert code == 0 and np.isfinite(logp)
    caplog.clear()
    model_cache.compile_model(tiny_model(), "tiny")  # the rebuilt entry serves the next process
    assert not _warnings(caplog)


def test_an_unwritable_folder_builds_without_the_cache(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("BAYESCALE_CACHE_DIR", str(blocker / "models"))
    caplog.set_level(logging.WARNING, logger="bayescale")
    built = model_cache.compile_model(tiny_model(), "tiny")
    (line,) = _warnings(caplog)
    assert "not writable" in line
    assert model_cache._call_logp(built, np.zeros(built.n_dim))[0] == 0


def test_two_processes_filling_the_cache_at_once(cache, caplog):
    env = dict(os.environ, BAYESCALE_CACHE_DIR=str(cache))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.cache_models"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all("model cache" not in err for _, err in outs), outs
    assert outs[0][0] == outs[1][0]
    caplog.set_level(logging.DEBUG, logger="bayescale")
    model_cache.compile_model(tiny_model(), "tiny")
    assert "loaded the tiny model" in caplog.text and not _warnings(caplog)


def test_info_and_clear(cache, pristine, capsys):
    import shutil

    from bayescale.cli import main

    assert model_cache.info() == {"folder": str(cache), "exists": False, "models": 0, "files": 0, "bytes": 0}
    shutil.copytree(pristine, cache)
    info = model_cache.info()
    assert info["models"] == 1 and info["files"] >= 3 and info["bytes"] > 0
    assert main(["cache", "info", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["models"] == 1
    assert main(["cache", "clear", "--format", "csv"]) == 0
    assert model_cache.info()["models"] == 0 and model_cache.info()["files"] == 0


# the claim is identical draws, not convergence: 200 draws may miss R-hat <= 1.01 on the demo ladder
@pytest.mark.filterwarnings("ignore::bayescale.diagnostics.DiagnosticsWarning")
def test_a_seeded_fit_saves_the_same_posterior_cached_or_not(cache, demo_runs, monkeypatch, tmp_path):
    import bayescale as bs

    def fit():
        compiled.clear()  # a new process: nothing compiled in memory
        result = bs.fit(demo_runs, seed=5, draws=200, tune=200, discrepancy=False, calibrate=False, retry=False)
        return result.save(tmp_path / f"fit{len(list(tmp_path.glob('*.nc')))}.nc")

    monkeypatch.setenv("BAYESCALE_CACHE_DIR", "off")
    uncached = fit()
    monkeypatch.setenv("BAYESCALE_CACHE_DIR", str(cache))
    filling, loaded = fit(), fit()
    assert model_cache.info()["models"] == 1
    trees = [bs.load(p).tree["posterior"].to_dataset() for p in (uncached, filling, loaded)]
    for name in trees[0].data_vars:
        np.testing.assert_array_equal(trees[0][name].to_numpy(), trees[1][name].to_numpy())
        np.testing.assert_array_equal(trees[0][name].to_numpy(), trees[2][name].to_numpy())
    compiled.clear()


def test_the_key_sees_how_many_groups_a_model_samples():
    """A pooled model's group dimension is a shared length outside the graph: 2 and 3 groups, two entries."""
    import pymc as pm

    def grouped(n_groups, n_runs):
        with pm.Model(coords={"group": [f"g{i}" for i in range(n_groups)], "run": np.arange(n_runs)}) as model:
            idx = pm.Data("idx", np.arange(n_runs) % n_groups, dims="run")
            y = pm.Data("y", np.linspace(0, 1, n_runs), dims="run")
            mu = pm.Normal("mu", 0, 1, dims="group")
            pm.Normal("obs", mu[idx], 1.0, observed=y, dims="run")
        return model

    assert model_cache.model_key(grouped(2, 10)) != model_cache.model_key(grouped(3, 10))
    assert model_cache.model_key(grouped(2, 10)) == model_cache.model_key(grouped(2, 17))  # runs: not sampled
