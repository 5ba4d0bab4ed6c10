"""Chains stuck in different modes are weighed by stacking (bayescale.chain_stacking)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayescale import chain_stacking


def _tree(modes: list[float], draws: int = 400, runs: int = 30, seed: int = 0) -> xr.DataTree:
    """Chains sampling a location near ``modes[c]``; the data are centred on 0 (mode 0 predicts them)."""
    rng = np.random.default_rng(seed)
    y = rng.normal(0.0, 1.0, runs)
    mu = np.array(modes)[:, None] + rng.normal(0.0, 0.15, (len(modes), draws))
    ll = stats.norm.logpdf(y[None, None, :], mu[:, :, None], 1.0)
    coords = {"chain": np.arange(len(modes)), "draw": np.arange(draws)}
    post = xr.Dataset({"mu": (("chain", "draw"), mu)}, coords=coords)
    diverging = np.zeros_like(mu, dtype=bool)
    diverging[len(modes) - 1, :5] = True  # the last chain (a bad mode in the tests) diverged
    sample_stats = xr.Dataset({"diverging": (("chain", "draw"), diverging)}, coords=coords)
    log_lik = xr.Dataset({"log_loss": (("chain", "draw", "run"), ll)}, coords=coords | {"run": np.arange(runs)})
    return xr.DataTree.from_dict({"/posterior": post, "/sample_stats": sample_stats, "/log_likelihood": log_lik})


def test_a_chain_in_a_mode_that_predicts_badly_gets_no_weight() -> None:
    idata = _tree([0.0, 0.02, -0.01, 3.0])
    result = chain_stacking.stack_chains(idata["log_likelihood"].to_dataset())
    assert result.weights.sum() == pytest.approx(1.0)
    assert result.weights[3] < chain_stacking.MIN_WEIGHT
    assert sorted(result.modes[0]) == [0, 1, 2] and result.modes[1] == [3]
    np.testing.assert_allclose(result.weights[:3], result.weights[0])  # one mode: its weight shared equally
    assert list(result.kept) == [0, 1, 2] and result.dropped == 1


def test_chains_that_agree_are_all_kept() -> None:
    idata = _tree([0.0, 0.01, -0.01, 0.02])
    result = chain_stacking.stack_chains(idata["log_likelihood"].to_dataset())
    assert len(result.modes) == 1 and result.dropped == 0


def test_resample_keeps_the_shape_and_only_kept_chains_draws() -> None:
    idata = _tree([0.0, 0.02, -0.01, 3.0])
    result = chain_stacking.ChainStack(weights=np.array([0.5, 0.3, 0.2, 0.0]), modes=[[0], [1], [2], [3]])
    out = chain_stacking.resample(idata, result, seed=1)
    mu = out["posterior"]["mu"].to_numpy()
    assert mu.shape == (4, 400)
    assert np.all(mu < 1.5)  # nothing from the dropped chain (mode 3)
    # every group is resampled by the same indices: the log-likelihood still matches its draw
    ll = out["log_likelihood"]["log_loss"].to_numpy()
    original = idata["log_likelihood"]["log_loss"].to_numpy()
    source = {float(v): (c, d) for c in range(4) for d, v in enumerate(idata["posterior"]["mu"].to_numpy()[c])}
    c, d = source[float(mu[2, 7])]
    np.testing.assert_array_equal(ll[2, 7], original[c, d])
    # shares by weight: 50% of the 1,600 slots from chain 0
    from_chain0 = np.isin(mu, idata["posterior"]["mu"].to_numpy()[0]).sum()
    assert from_chain0 == 800
    assert not out["sample_stats"]["diverging"].to_numpy().any()  # the diverging draws were in chain 3


def test_kept_chains_are_the_diagnostics_basis() -> None:
    idata = _tree([0.0, 0.02, -0.01, 3.0])
    kept = chain_stacking.kept_chains(
        idata, chain_stacking.ChainStack(weights=np.array([0.4, 0.3, 0.3, 0.0]), modes=[[0, 1, 2], [3]])
    )
    assert kept["posterior"].sizes["chain"] == 3
    assert int(kept["sample_stats"]["diverging"].sum()) == 0


def test_modes_join_chains_within_the_tolerance() -> None:
    assert chain_stacking.modes(np.array([-100.0, -101.0, -300.0, -102.5])) == [[0, 1, 3], [2]]
    assert chain_stacking.modes(np.array([-100.0, -110.0])) == [[0], [1]]


def test_two_good_modes_are_both_kept() -> None:
    """Stacking keeps a second mode that predicts some runs better (the mixture beats either)."""
    result = chain_stacking.ChainStack(weights=np.array([0.35, 0.35, 0.3, 0.0]), modes=[[0, 1], [2], [3]])
    assert list(result.kept) == [0, 1, 2]


def test_fit_law_drops_a_chain_stuck_in_a_bad_mode(real_fit, monkeypatch) -> None:
    """The law's stage: a chain whose noise sits 10x too wide fails R-hat and predicts the runs worse;
    the fit keeps the other three, reports their diagnostics and says so in its attributes."""
    from bayescale import sampling
    from bayescale.model import NOISE_PARAMS

    law, runs, priors = real_fit.law, real_fit.runs, real_fit.priors
    names = [n for n in (*law.params, *NOISE_PARAMS) if n in real_fit.posterior]
    post = real_fit.posterior[names].copy(deep=True)
    post["sigma"][3] = post["sigma"][3] * 10.0
    stats_ = real_fit.tree["sample_stats"].to_dataset()
    bad = xr.DataTree.from_dict({"/posterior": post, "/sample_stats": stats_})
    monkeypatch.setattr(sampling, "_sample_checked", lambda *args, **kwargs: bad.copy())
    monkeypatch.setattr(sampling, "law_stage", lambda *args, **kwargs: None)
    settings = {
        "sampler": "nutpie",
        "draws": post.sizes["draw"],
        "tune": 10,
        "chains": 4,
        "seed": 3,
        "target_accept": 0.9,
    }
    checked = [n for n in law.params if n in post] + list(NOISE_PARAMS)
    fit = sampling.fit_law(law, runs, priors, settings, checked)
    weights = np.array(json.loads(fit.tree.attrs["chain_weights"]))
    assert weights[3] < chain_stacking.MIN_WEIGHT
    sigma = fit.posterior["sigma"].to_numpy()
    assert sigma.shape == post["sigma"].shape
    assert sigma.max() < post["sigma"][:3].max() + 1e-12  # no draw of the dropped chain
    assert fit.diagnostics.ok  # the three kept chains agree


def test_a_stacked_first_attempt_that_passes_skips_the_retry(real_fit, monkeypatch) -> None:
    """The retry cannot merge separated modes: when stacking rescues the first attempt, it is not taken."""
    from bayescale import sampling
    from bayescale.model import NOISE_PARAMS

    law, runs, priors = real_fit.law, real_fit.runs, real_fit.priors
    names = [n for n in (*law.params, *NOISE_PARAMS) if n in real_fit.posterior]
    post = real_fit.posterior[names].copy(deep=True)
    post["sigma"][3] = post["sigma"][3] * 10.0
    bad = xr.DataTree.from_dict({"/posterior": post, "/sample_stats": real_fit.tree["sample_stats"].to_dataset()})
    calls = []

    def fake_sample(*args, **kwargs):
        calls.append(kwargs.get("thin", 1))
        return bad.copy()

    stacks, original = [], chain_stacking.stack_chains

    def counted(*args, **kwargs):
        stacks.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(sampling, "_sample", fake_sample)
    monkeypatch.setattr(sampling, "law_stage", lambda *args, **kwargs: None)
    monkeypatch.setattr(chain_stacking, "stack_chains", counted)
    settings = {"sampler": "nutpie", "draws": post.sizes["draw"], "tune": 10, "chains": 4, "seed": 3,
                "target_accept": 0.9, "progress": False, "retry": True}  # fmt: skip
    checked = [n for n in law.params if n in post] + list(NOISE_PARAMS)
    fit = sampling.fit_law(law, runs, priors, settings, checked)
    assert calls == [1]  # the first attempt only
    assert stacks == [1]  # the rescue's stack is the fit's: computed once
    assert fit.diagnostics.ok and "chain_weights" in fit.tree.attrs
