"""Slow statistical tests: the Chinchilla replication and parameter recovery. Run in CI."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bayescale as bs
from bayescale.comparison import ComparisonWarning
from bayescale.datasets.simulate import ladder_design, simulate_runs
from bayescale.diagnostics import DiagnosticsWarning
from tests.conftest import CHINCHILLA_CSV, needs_shared

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chinchilla_fit():
    runs = bs.load_runs(CHINCHILLA_CSV, n_col="Model Size", c_col="Training FLOP", loss_col="loss")
    # the law's posterior only: the parameters and the allocation do not see the second stage or the band scale
    # (a cut posterior), which the fast tests and the calibration benchmark cover
    return bs.fit(runs, law="chinchilla", seed=1, discrepancy=False, calibrate=False)


@needs_shared
def test_chinchilla_replicates_epoch(chinchilla_fit):
    """All 245 runs: medians inside Epoch AI's 95% intervals; beta's 99% interval excludes Hoffmann's 0.28."""
    fit = chinchilla_fit
    table = fit.summary(interval=0.99).set_index("parameter")
    epoch_95 = {"E": (1.769, 1.871), "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}
    for name, (lo, hi) in epoch_95.items():
        assert lo <= table.loc[name, "median"] <= hi, (name, table.loc[name, "median"])
    assert table.loc["beta", "lower"] > 0.28
    core = table.loc[["E", "A", "B", "alpha", "beta"]]
    assert core["r_hat"].max() <= 1.01
    assert core["ess_bulk"].min() >= 400


def test_parameter_recovery_over_synthetic_ladders():
    """Over 20 ladders from known parameters, each 90% interval holds the truth in >= 80% of them."""
    rng = np.random.default_rng(2024)
    names = ("E", "A", "B", "alpha", "beta")
    hits = {n: 0 for n in names}
    n_ladders = 20
    divergences, rhats = [], []
    for i in range(n_ladders):
        truth = {"E": rng.uniform(1.5, 2.2), "alpha": rng.uniform(0.25, 0.45), "beta": rng.uniform(0.25, 0.45)}
        # amplitudes chosen so each term is 0.3-1.2 nats at 100M parameters / 2B tokens
        truth["A"] = rng.uniform(0.3, 1.2) * 1e8 ** truth["alpha"]
        truth["B"] = rng.uniform(0.3, 1.2) * 2e9 ** truth["beta"]
        budgets = np.logspace(17, 20, 6)
        runs = simulate_runs(ladder_design(budgets, sizes_per_budget=5), truth, sigma=0.01, nu=6.0, seed=i)
        with warnings.catch_warnings():
            # A rare divergence in a short fit of a 30-run ladder is reported, not fatal here:
            # this test measures recovery; the convergence checks are asserted below.
            warnings.simplefilter("ignore", DiagnosticsWarning)
            fit = bs.fit(
                bs.load_runs(runs[["N", "D", "loss"]]),
                law="chinchilla",
                draws=500,
                tune=700,
                seed=i,
                discrepancy=False,
                calibrate=False,  # the band scale does not touch the parameters
            )
        divergences.append(fit.diagnostics.divergences)
        rhats.append(fit.diagnostics.max_rhat)
        table = fit.summary(interval=0.9).set_index("parameter")
        for n in names:
            hits[n] += table.loc[n, "lower"] <= truth[n] <= table.loc[n, "upper"]
    rates = {n: h / n_ladders for n, h in hits.items()}
    print("recovery: share of 90% intervals holding the truth", rates, "divergences", divergences)
    assert all(r >= 0.8 for r in rates.values()), rates
    assert np.median(divergences) == 0 and sum(divergences) < 0.005 * n_ladders * 4 * 500, divergences
    assert max(rhats) < 1.05, rhats


@needs_shared
def test_chinchilla_allocation(chinchilla_fit):
    """At Chinchilla's 5.88e23 FLOPs: about 20 tokens per parameter, N_opt near Hoffmann's 67B, a near 0.5."""
    row = chinchilla_fit.optimal(5.88e23, interval=0.9).iloc[0]
    assert 12 <= row["tokens_per_param_median"] <= 30
    assert row["tokens_per_param_lower"] <= 20 <= row["tokens_per_param_upper"]
    assert 67e9 / 1.5 <= row["N_opt_median"] <= 67e9 * 1.5
    a = chinchilla_fit.allocation_draws(5.88e23)["a"]
    assert 0.46 <= np.median(a) <= 0.56


@pytest.mark.parametrize(("alpha", "beta", "excluded"), [(0.20, 0.54, 0.5), (0.34, 0.36, 0.73)])
def test_allocation_exponent_is_identified(alpha, beta, excluded):
    """Ladders from a Kaplan-like allocation (a = 0.73) exclude a = 0.5; from Chinchilla's, exclude 0.73.

    (With alpha = 0.1, beta = 0.27, also a = 0.73, a 30-run ladder over 3.5 decades of compute
    does not pin a down: its 90% interval can reach 0.5. That is the data, not the sampler.)
    """
    truth = {"E": 1.8, "alpha": alpha, "beta": beta, "A": 0.8 * 1e8**alpha, "B": 0.8 * 2e9**beta}
    runs = simulate_runs(ladder_design(np.logspace(17, 20.5, 8), sizes_per_budget=6), truth, sigma=0.01, nu=6, seed=3)
    fit = bs.fit(bs.load_runs(runs[["N", "D", "loss"]]), law="chinchilla", seed=3, discrepancy=False, calibrate=False)
    lo, hi = np.quantile(fit.allocation_draws(1e22)["a"], [0.05, 0.95])
    print(f"true a = {beta / (alpha + beta):.3f}: 90% interval of a {lo:.3f}-{hi:.3f}")
    assert not lo <= excluded <= hi


KAPLAN_2020 = {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095}
CHINCHILLA_2022 = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


@pytest.mark.parametrize(("truth", "params"), [("kaplan", KAPLAN_2020), ("chinchilla", CHINCHILLA_2022)])
def test_comparison_prefers_the_law_that_made_the_data(truth, params):
    """On 10 synthetic isoFLOP ladders (30 runs, 1% Student-t noise) from each law, LOO ranks it first in >= 9."""
    from bayescale.laws import chinchilla, kaplan

    design = ladder_design(np.geomspace(1e17, 1e20, 5), sizes_per_budget=6)[["N", "D"]]
    law = {"kaplan": kaplan.loss, "chinchilla": chinchilla.loss}[truth]
    wins = []
    for seed in range(10):
        runs = simulate_runs(design, params, sigma=0.01, seed=seed, law=law)[["N", "D", "loss"]]
        with warnings.catch_warnings():
            # Pareto-k warnings are counted in the table; the short fits (300 draws, no retry) may miss R-hat
            # <= 1.01, and the claim here is the LOO ranking, not convergence -- both named, nothing else hidden
            warnings.simplefilter("ignore", ComparisonWarning)
            warnings.simplefilter("ignore", DiagnosticsWarning)
            table = bs.compare(
                runs,
                ["kaplan", "chinchilla"],
                holdout_top=None,
                draws=300,
                tune=300,
                seed=seed,
                discrepancy=False,
                calibrate=False,
                retry=False,  # ranking by LOO, not convergence: one short run per law, as before retries existed
            ).table
        wins.append(table["law"].iloc[0] == truth)
    assert sum(wins) >= 9, (truth, wins)
