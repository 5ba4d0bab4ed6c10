"""Fitting: structure with a mocked sampler; numbers with one real small fit."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.diagnostics import DiagnosticsWarning
from bayescale.errors import DiagnosticsError, PriorError, RunsError
from bayescale.priors import Prior


def _quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)  # mocked draws are not a converged posterior
        return bs.fit(*args, **kwargs)


def test_result_owns_the_tree(mock_sampler, demo_runs):
    result = _quiet_fit(demo_runs, seed=3)
    tree = result.tree
    for group in ("posterior", "log_likelihood", "observed_data", "runs", "diagnostics", "sample_stats"):
        assert group in tree.children, group
    for name in ("E", "A", "B", "alpha", "beta", "log_A_ref", "sigma", "nu"):
        assert name in tree["posterior"].data_vars
    assert tree["log_likelihood"]["log_loss"].sizes["run"] == len(demo_runs)
    attrs = tree.attrs
    assert attrs["law"] == "chinchilla" and attrs["seed"] == 3 and attrs["bayescale_version"]
    assert set(json.loads(attrs["priors"])) == {"E", "alpha", "beta", "log_A_ref", "log_B_ref", "sigma", "nu"}
    assert json.loads(attrs["versions"])["pymc"]


def test_user_priors_are_stored(mock_sampler, demo_runs):
    result = _quiet_fit(
        demo_runs,
        priors={
            "alpha": "Normal(0.35, 0.1)",
            "beta": Prior("Normal", mu=0.3, sigma=0.1),
            "nu": {"dist": "Gamma", "kwargs": {"alpha": 2, "beta": 0.1}},
        },
        seed=6,
    )
    assert result.priors["alpha"] == Prior("Normal", mu=0.35, sigma=0.1)
    assert result.priors["beta"] == Prior("Normal", mu=0.3, sigma=0.1)
    assert result.priors["E"].dist == "TruncatedNormal"  # default, data-scaled
    assert result.priors["E"].kwargs["upper"] == pytest.approx(demo_runs.loss.min())


def test_fixed_parameter(mock_sampler):
    runs = bs.load_runs(pd.DataFrame({"C": np.logspace(17, 20, 8), "loss": np.linspace(3.6, 2.6, 8)}))
    result = _quiet_fit(runs, law="power", priors={"E": 0}, seed=4)
    assert "E" not in result.tree["posterior"].data_vars or np.all(result.draws("E") == 0)
    assert np.all(result.draws("E") == 0)
    assert result.summary().set_index("parameter").loc["E", "sd"] == 0


def test_unknown_prior_name(demo_runs):
    with pytest.raises(PriorError, match="law chinchilla has no parameter 'gamma'; its parameters are E, alpha"):
        bs.fit(demo_runs, priors={"gamma": "Normal(0, 1)"})


def test_too_few_runs():
    runs = bs.load_runs(pd.DataFrame({"N": [1e8, 2e8], "D": [1e9, 3e9], "loss": [3.2, 3.0]}))
    with pytest.raises(RunsError, match=r"a fit needs at least 3 runs, got 2"):
        bs.fit(runs, law="chinchilla")


def test_strict_turns_failed_diagnostics_into_error(mock_sampler, demo_runs):
    # Mocked "chains" are copies of prior draws: diagnostics cannot pass, and strict must refuse.
    mock = mock_sampler

    def divergent(*args, **kwargs):
        out = mock(*args, **kwargs)
        out["sample_stats"]["diverging"] = out["sample_stats"]["diverging"] | True
        return out

    import pymc as pm

    pm.sample = divergent
    with pytest.raises(DiagnosticsError, match=r"divergent transitions.*target_accept"):
        bs.fit(demo_runs, strict=True, seed=5)
    with pytest.warns(DiagnosticsWarning, match="divergent transitions"):
        bs.fit(demo_runs, seed=5)


def test_failed_stage_is_sampled_again_at_high_target_accept(mock_sampler, demo_runs, monkeypatch):
    # Every stage "fails" its diagnostics: each is sampled once more at 0.99 with twice the draws thinned by 2,
    # and the stored draws stay aligned across stages; retry=False samples each stage once. The discrepancy
    # stage's importance weights are made to fail too, so that it runs NUTS.
    import pymc as pm

    from bayescale import importance, sampling

    original = importance.sample

    def failing(*args, **kwargs):
        out = original(*args, **kwargs)
        return importance.ImportanceDraws(out.draws, khat=1.5, ess=3.0, proposals=out.proposals)

    monkeypatch.setattr(importance, "sample", failing)

    calls = []

    def recording(*args, **kwargs):
        calls.append((kwargs["nuts"]["target_accept"], kwargs["draws"]))
        return mock_sampler(*args, **kwargs)

    monkeypatch.setattr(pm, "sample", recording)
    monkeypatch.setattr(sampling, "_stage_ok", lambda *args: False)
    result = _quiet_fit(demo_runs, seed=5, draws=300, calibrate=False)
    assert calls == [(0.95, 300), (0.99, 600), (0.95, 300), (0.99, 600)]  # the law, then the discrepancy
    assert result.tree["posterior"].sizes["draw"] == 300
    assert result.tree["discrepancy"].sizes["draw"] == 300
    calls.clear()
    _quiet_fit(demo_runs, seed=5, draws=300, calibrate=False, retry=False)
    assert calls == [(0.95, 300), (0.95, 300)]


def test_prior_predictive(demo_runs):
    tree = bs.sample_prior_predictive(demo_runs, draws=50, seed=1)
    loss = np.exp(tree["prior_predictive"]["log_loss"].to_numpy())
    assert loss.shape[-1] == len(demo_runs)
    # the priors put most simulated losses in a plausible range for language models
    assert 0.5 < np.median(loss) < 20


# --- numbers: one small real fit of the demo ladder -----------------------------------------


def test_real_fit_converges(real_fit):
    d = real_fit.diagnostics
    assert d.ok, d.message()
    assert d.max_rhat <= 1.01 and d.divergences == 0


def test_real_fit_recovers_demo_truth(real_fit):
    from bayescale.datasets.simulate import DEMO_PARAMS

    table = real_fit.summary(interval=0.95).set_index("parameter")
    for name, true in DEMO_PARAMS.items():
        assert table.loc[name, "lower"] <= true <= table.loc[name, "upper"], name


def test_seed_reproducible(demo_runs):
    # short: reproducibility of every stage, not convergence (so no retry at 0.99)
    kwargs = {"draws": 100, "tune": 200, "chains": 2, "seed": 11, "retry": False}
    a, b = _quiet_fit(demo_runs, **kwargs), _quiet_fit(demo_runs, **kwargs)
    np.testing.assert_array_equal(a.draws("alpha"), b.draws("alpha"))
    pa, pb = a.predict(N=7e10, D=1.4e12), b.predict(N=7e10, D=1.4e12)  # seeded from the fit: repeatable
    np.testing.assert_array_equal(pa[["lower", "median", "upper"]], pb[["lower", "median", "upper"]])


def test_falls_back_to_pymc_without_nutpie(monkeypatch, caplog):
    import builtins

    from bayescale.sampling import pick_sampler as _pick_sampler

    real_import = builtins.__import__

    def no_nutpie(name, *args, **kwargs):
        if name == "nutpie":
            raise ImportError("no nutpie")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nutpie)
    with caplog.at_level("WARNING", logger="bayescale"):
        assert _pick_sampler("nutpie") == "pymc"
    assert "falling back to PyMC" in caplog.text
    with pytest.raises(bs.BayescaleError, match="unknown sampler 'stan'"):
        _pick_sampler("stan")
