"""Slow check of the pooled fit on real runs (run in CI): a contrast of identical groups is undecided.

The simulation-based coverage check is benchmarks/pooling_sbc.py (figures in docs/pooling.md).
"""

from __future__ import annotations

import pandas as pd
import pytest

import bayescale as bs
from tests.conftest import SHARED_DATA, needs_shared

pytestmark = pytest.mark.slow


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
