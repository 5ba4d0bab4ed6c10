"""Leave-future-out calibration: distances, the kappa estimate, splits, and its effect on bands."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale import calibration as cal
from bayescale.diagnostics import DiagnosticsWarning

RANGES = {"N": (np.log(1e8), np.log(1e9)), "D": (np.log(1e9), np.log(1e11)), "C": (np.log(6e17), np.log(6e20))}


def test_distance_is_zero_inside_and_log_ratio_outside():
    d = cal.extrapolation_distance(
        {"N": np.array([5e8, 1e10, 5e8]), "D": np.array([1e10, 1e10, 1e12]), "C": np.array([3e19, 6e20, 3e21])},
        RANGES,
    )
    np.testing.assert_allclose(d, [0.0, np.log(10), np.log(10)])


def test_distance_counts_smaller_scales_too():
    d = cal.extrapolation_distance({"N": np.array([1e7]), "D": np.array([1e10]), "C": np.array([6e17])}, RANGES)
    np.testing.assert_allclose(d, [np.log(10)])


def test_kappa_is_zero_when_errors_fit_the_bands():
    rng = np.random.default_rng(0)
    s = np.full(400, 0.01)
    assert cal.estimate_kappa(rng.normal(0, 0.01, 400), s, rng.uniform(0, 2, 400)) < 0.002


def test_kappa_recovers_a_known_growth_rate():
    rng = np.random.default_rng(1)
    d = rng.uniform(0.5, 3.0, 2000)
    s = np.full(2000, 0.005)
    r = rng.normal(0, np.sqrt(s**2 + (0.02 * d) ** 2))
    assert cal.estimate_kappa(r, s, d) == pytest.approx(0.02, rel=0.1)


def test_holdout_keeps_budgets_whole():
    runs = bs.load_runs(pd.DataFrame({"C": [1e18, 1e18, 1e19, 1e19, 1e19, 1e20], "loss": [3, 3, 2.8, 2.8, 2.8, 2.6]}))
    np.testing.assert_array_equal(cal.holdout_top_compute(runs, 0.2), [False, False, False, False, False, True])
    np.testing.assert_array_equal(cal.holdout_top_compute(runs, 0.4), [False, False, True, True, True, True])
    assert cal.holdout_top_compute(runs, 0.0).sum() == 1


def test_fit_stores_calibration(mock_sampler, demo_runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        result = bs.fit(demo_runs, seed=2)
        plain = bs.fit(demo_runs, seed=2, calibrate=False)
    assert "calibration" in result.tree.children and "discrepancy_kappa" in result.tree.attrs
    table = result.tree["calibration"].to_dataset()
    assert set(table.data_vars) == {"residual", "scale", "distance", "holdout"}
    assert set(np.unique(table["holdout"])) == set(cal.DEFAULT_HOLDOUTS)
    assert "calibration" not in plain.tree.children and plain.kappa == 0.0


def test_discrepancy_widens_only_outside_the_data(real_fit):
    inside = {"N": 2e8, "D": 4e9}
    outside = {"N": 7e10, "D": 1.4e12}
    fitted = real_fit.tree.attrs["discrepancy_kappa"]
    real_fit.tree.attrs["discrepancy_kappa"] = 0.0
    try:
        base_in, base_out = real_fit.predict(**inside), real_fit.predict(**outside)
        real_fit.tree.attrs["discrepancy_kappa"] = 0.05
        wide_in, wide_out = real_fit.predict(**inside), real_fit.predict(**outside)
    finally:
        real_fit.tree.attrs["discrepancy_kappa"] = fitted
    pd.testing.assert_frame_equal(base_in, wide_in)
    assert (wide_out["upper"] - wide_out["lower"]).iloc[0] > (base_out["upper"] - base_out["lower"]).iloc[0]
