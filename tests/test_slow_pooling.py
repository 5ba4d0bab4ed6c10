"""Simulation-based check of the pooled fit (slow; run in CI).

Ladders from a known population: 3, 5 or 8 groups of 5-20 runs each, the groups' exponents
drawn around a common value, E and amplitudes per group. Over the replications, the 90%
intervals of every group's exponents and of the difference in expected loss between the first
two groups at a 100x larger model must hold the truth 85-95% of the time, and every fit's
chains must agree (R-hat <= 1.01). The law's stage only (no discrepancy, no band scale): the
data follow the law, and the check is of the hierarchical model.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.datasets.simulate import simulate_runs
from bayescale.diagnostics import DiagnosticsWarning
from bayescale.predict import law_log_loss
from tests.conftest import SHARED_DATA, needs_shared

pytestmark = pytest.mark.slow

REPLICATIONS = 50
GROUP_COUNTS = (3, 5, 8)
TARGET = {"N": 1e11, "D": 2e12}


def population_ladders(rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """One replication: the groups' runs (column ``mix``) and their true parameters."""
    n_groups = int(rng.choice(GROUP_COUNTS))
    alpha0, beta0 = rng.uniform(0.27, 0.40), rng.uniform(0.25, 0.38)
    parts, truths = [], {}
    for g in range(n_groups):
        truth = {
            "E": rng.uniform(1.6, 2.1),
            "alpha": alpha0 * np.exp(rng.normal(0, 0.08)),
            "beta": beta0 * np.exp(rng.normal(0, 0.08)),
        }
        truth["A"] = rng.uniform(0.4, 1.0) * 1e8 ** truth["alpha"]
        truth["B"] = rng.uniform(0.4, 1.0) * 2e9 ** truth["beta"]
        n = int(rng.integers(5, 21))
        N = np.exp(rng.uniform(np.log(2e7), np.log(1e9), n))
        D = N * np.exp(rng.uniform(np.log(5), np.log(80), n))
        runs = simulate_runs(pd.DataFrame({"N": N, "D": D}), truth, sigma=0.01, seed=int(rng.integers(1 << 30)))
        parts.append(runs[["N", "D", "loss"]].assign(mix=f"g{g}"))
        truths[f"g{g}"] = truth
    return pd.concat(parts, ignore_index=True), truths


def _true_loss(truth: dict[str, float]) -> float:
    return truth["E"] + truth["A"] / TARGET["N"] ** truth["alpha"] + truth["B"] / TARGET["D"] ** truth["beta"]


def test_pooled_intervals_cover_exponents_and_differences():
    rng = np.random.default_rng(16)
    hits_exp, n_exp, hits_diff, rhats = 0, 0, 0, []
    for _ in range(REPLICATIONS):
        table, truths = population_ladders(rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DiagnosticsWarning)  # R-hat is asserted below, over all fits
            fit = bs.fit(
                table, law="chinchilla", group="mix", draws=500, tune=500, seed=int(rng.integers(1 << 30)),
                discrepancy=False, calibrate=False,
            )  # fmt: skip
        rhats.append(fit.diagnostics.max_rhat)
        for name, truth in truths.items():
            summary = fit.group(name).summary(interval=0.9).set_index("parameter")
            for p in ("alpha", "beta"):
                hits_exp += int(summary.loc[p, "lower"] <= truth[p] <= summary.loc[p, "upper"])
                n_exp += 1
        a, b = fit.group("g0"), fit.group("g1")
        point = {x: np.array([v]) for x, v in TARGET.items()}
        diff = np.exp(law_log_loss(a.law, a._sampled(), a.reference, point)[:, 0]) - np.exp(
            law_log_loss(b.law, b._sampled(), b.reference, point)[:, 0]
        )
        lo, hi = np.quantile(diff, [0.05, 0.95])
        hits_diff += int(lo <= _true_loss(truths["g0"]) - _true_loss(truths["g1"]) <= hi)
    coverage_exp, coverage_diff = hits_exp / n_exp, hits_diff / REPLICATIONS
    print(f"exponents {coverage_exp:.3f} over {n_exp}; difference {coverage_diff:.3f}; max R-hat {max(rhats):.3f}")
    assert 0.85 <= coverage_exp <= 0.95, coverage_exp
    assert 0.85 <= coverage_diff <= 0.95, coverage_diff
    assert max(rhats) <= 1.01, sorted(rhats)[-5:]


@needs_shared
def test_contrast_of_identical_groups_is_undecided():
    """The same runs twice: P(a lower) near one half and a difference band around zero."""
    grid = pd.read_csv(SHARED_DATA / "gadre2024_overtraining.csv")
    runs = grid[(grid["family"] == "gadre2024_c4_original") & (grid["eval_name"] == "c4_val") & (grid["N"] <= 4.2e8)]
    runs = runs[["N", "D", "loss"]]
    table = pd.concat([runs.assign(mix="a"), runs.assign(mix="b")], ignore_index=True)
    fit = bs.fit(table, law="chinchilla", group="mix", seed=5)
    out = fit.contrast("a", "b", N=7e9, D=1.4e11).set_index("quantity")
    row = out.loc["loss_difference"]
    assert 0.4 <= row["probability"] <= 0.6, row
    assert row["lower"] < 0 < row["upper"], row
    ranking = fit.rank(N=7e9, D=1.4e11)
    assert ranking["p_best"].between(0.4, 0.6).all(), ranking
