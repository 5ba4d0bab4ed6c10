"""Slow check of the data-constrained law (run in CI): parameter recovery on runs simulated from the law."""

from __future__ import annotations

import numpy as np
import pytest

import bayescale as bs
from tests.test_data_constrained import PAPER, paper_runs

pytestmark = pytest.mark.slow

#: Simulated ladders with 1% noise (noise seeds 0-5, fixed before looking).
REPLICATIONS = 6


def _fit(table):
    return bs.fit(table, law="data-constrained", seed=5, discrepancy=False, calibrate=False)


def test_parameters_are_recovered_from_runs_simulated_from_the_law():
    """60 runs (4 sizes x 3 unique budgets x 1-200 epochs) from the law at Muennighoff et al.'s C4
    coefficients (beta moved off alpha).

    With 1% log-normal noise, over 6 simulated ladders, the 90% intervals of the 7 parameters hold the truth in at
    least 75% of the 42 cases (expected 90%; the Chinchilla part's E, A and alpha miss together
    when they miss, being one degenerate direction, so the count moves in steps of up to 3), no
    parameter misses in more than half the ladders, and every fit passes its diagnostics."""
    inside = {name: [] for name in PAPER}
    for rep in range(REPLICATIONS):
        fit = _fit(paper_runs(np.random.default_rng(rep), sigma=0.01))
        assert fit.diagnostics.ok, (rep, fit.diagnostics.message())
        summary = fit.summary(interval=0.9).set_index("parameter")
        for name, truth in PAPER.items():
            inside[name].append(bool(summary.loc[name, "lower"] <= truth <= summary.loc[name, "upper"]))
    hits = sum(map(sum, inside.values()))
    assert hits >= 0.75 * REPLICATIONS * len(PAPER), inside
    assert all(sum(v) >= REPLICATIONS / 2 for v in inside.values()), inside
