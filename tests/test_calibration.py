"""Leave-future-out band calibration: standardized errors, the band scale, rescaling, storage."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bayescale as bs
from bayescale import calibration as cal
from bayescale.diagnostics import DiagnosticsWarning


def test_standardized_errors_use_the_side_the_run_fell():
    # median 0; band -0.2 .. +0.1 in log loss: a run at +0.1 sits on the upper edge, -0.1 half-way down
    z = cal.standardized_errors(np.array([0.1, -0.1, 0.0]), np.zeros(3), np.full(3, -0.2), np.full(3, 0.1))
    np.testing.assert_allclose(z, [cal.Z90, -cal.Z90 / 2, 0.0])


def test_band_scale_is_one_without_evidence():
    assert cal.band_scale(np.array([])) == 1.0
    assert cal.band_scale(np.array([np.nan])) == 1.0


@pytest.mark.parametrize("true_scale", [0.5, 1.0, 2.0])
def test_band_scale_recovers_a_known_scale_from_many_runs(true_scale):
    z = np.random.default_rng(0).normal(0, true_scale, 2000)
    assert cal.band_scale(z) == pytest.approx(true_scale, rel=0.05)


def test_band_scale_is_shrunk_towards_one_with_few_runs():
    z = np.full(3, 0.2)  # three runs well inside their bands: raw scale 0.2
    s = cal.band_scale(z)
    assert 0.2 < s < 1.0
    assert cal.band_scale(np.full(300, 0.2)) < s  # more runs, less shrinkage


def test_rescale_keeps_the_median_and_scales_quantiles():
    draws = np.random.default_rng(1).normal(0.5, 0.1, size=(4001, 3))
    out = cal.rescale(draws, 0.5)
    np.testing.assert_allclose(np.median(out, axis=0), np.median(draws, axis=0))
    q = np.quantile(draws, [0.05, 0.95], axis=0)
    q_out = np.quantile(out, [0.05, 0.95], axis=0)
    np.testing.assert_allclose(q_out[1] - q_out[0], 0.5 * (q[1] - q[0]), rtol=1e-9)
    assert cal.rescale(draws, 1.0) is draws


def test_fit_stores_the_calibration(mock_sampler, demo_runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        result = bs.fit(demo_runs, seed=2)
        plain = bs.fit(demo_runs, seed=2, calibrate=False)
    assert "calibration" in result.tree.children and "band_scale" in result.tree.attrs
    table = result.tree["calibration"].to_dataset()
    assert set(table.data_vars) == {"z", "C", "halfwidth", "distance_N", "distance_D"}
    from bayescale.splits import holdout_top_compute

    top = holdout_top_compute(demo_runs, cal.HOLDOUT)  # the runs the re-fit leaves out: the top 20% by compute
    assert table.sizes["heldout"] == int(top.sum()) > 0
    np.testing.assert_allclose(np.sort(table["C"].to_numpy()), np.sort(demo_runs.values("C")[top]))
    assert result.band_scale == pytest.approx(cal.band_scale(table["z"].to_numpy()))
    assert "calibration" not in plain.tree.children and plain.band_scale == 1.0


def test_the_refit_alongside_leaves_warning_filters_and_shows_no_progress(mock_sampler, demo_runs, caplog):
    # the calibration re-fit runs in a second thread: it must not touch the process-wide warning
    # filters (warnings.catch_warnings is not thread-safe) nor interleave its progress with the fit's
    import logging

    before = list(warnings.filters)
    with caplog.at_level(logging.INFO, logger="bayescale"):
        bs.fit(demo_runs, seed=2, strict=False)
    assert warnings.filters == before
    refit = [r for r in caplog.records if r.threadName.startswith("bayescale-calibration")]
    assert refit == []
    assert any("band scale" in r.getMessage() for r in caplog.records)
    assert sum(r.getMessage().startswith("sampling ") for r in caplog.records) == 1  # the fit's, not the re-fit's


def test_scale_draws_follow_the_posterior():
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(cal.scale_draws(np.array([]), 5, rng), np.ones(5))
    many = cal.scale_draws(rng.normal(0, 0.5, 500), 4000, rng)
    assert np.median(many) == pytest.approx(0.5, rel=0.05) and np.std(np.log(many)) < 0.05
    few = cal.scale_draws(np.full(3, 0.5), 4000, rng)
    assert np.std(np.log(few)) > 0.2  # three runs leave the scale uncertain


def test_band_scale_changes_width_not_median(real_fit, monkeypatch):
    monkeypatch.setattr(type(real_fit), "_scale_draws", lambda self, points: 1.0)
    base = real_fit.predict(N=7e10, D=1.4e12).iloc[0]
    monkeypatch.setattr(type(real_fit), "_scale_draws", lambda self, points: 2.0)
    wide = real_fit.predict(N=7e10, D=1.4e12).iloc[0]
    # even draw count: mid-point of two; float32 draws: equal to their precision (6e-8)
    assert wide["median"] == pytest.approx(base["median"], rel=1e-6)
    assert np.log(wide["upper"] / wide["median"]) == pytest.approx(2 * np.log(base["upper"] / base["median"]), rel=1e-3)


def test_too_few_runs_to_hold_out_leaves_the_scale_at_one(mock_sampler, demo_runs, caplog):
    import logging

    small = demo_runs.subset(np.arange(len(demo_runs)) < 8)
    with warnings.catch_warnings(), caplog.at_level(logging.INFO, logger="bayescale"):
        warnings.simplefilter("ignore", DiagnosticsWarning)
        result = bs.fit(small, seed=1)
    assert result.band_scale == 1.0 and result.tree["calibration"].to_dataset().sizes["heldout"] == 0
    said = [r.getMessage() for r in caplog.records if "band scale" in r.getMessage()]
    assert said == ["band scale 1.00: too few runs to hold out the top 20% and re-fit"]  # not "held nan% of them"
    # the same columns as a split's, empty: the misfit's growth beyond the runs keeps its prior
    s, g, inputs = result._scale_growth
    assert inputs == ("N", "D") and g.shape == (len(s), 2) and np.all(s == 1.0) and np.median(g) > 0


def _runs(N, D, loss=None):
    import pandas as pd

    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    loss = np.full(len(N), 3.0) if loss is None else loss
    return bs.load_runs(pd.DataFrame({"N": N, "D": D, "loss": loss}))


def test_split_reach_measures_how_far_the_held_out_runs_went():
    # over-trained ladder: the held-out (largest-compute) runs are as large as the rest, with more tokens
    train = _runs([1e8, 4e8, 4e8], [1e9, 1e9, 4e9])
    test = _runs([4e8, 4e8], [8e9, 1.6e10])
    reach = cal.split_reach(train, test)
    assert reach["N"] == 0.0
    assert reach["D"] == pytest.approx(np.log(1.6e10 / 4e9))
    assert reach["C"] == pytest.approx(np.log(4e8 * 1.6e10 / (4e8 * 4e9)))
    # held-out runs smaller than the training maximum reach 0, never negative
    assert cal.split_reach(test, train)["D"] == 0.0


def test_untested_flags_points_beyond_the_reach_in_any_input():
    runs = _runs([1e8, 4e8], [1e9, 1.6e10])
    reach = {"N": 0.0, "D": np.log(4.0), "C": 10.0}
    points = {"N": np.array([4e8, 1.4e9, 2e8, 4e8]), "D": np.array([3e10, 3e10, 1e11, 6.4e10])}
    # larger model than any run; more tokens than the reach covers; exactly at the reach (tested)
    np.testing.assert_array_equal(cal.untested(runs, points, reach), [False, True, True, False])
    assert not cal.untested(runs, points, {}).any()  # no calibration: nothing to floor


def test_point_scales_leave_untested_points_at_one():
    draws = np.array([0.5, 1.5])
    out = cal.point_scales(draws, np.array([False, True]))
    np.testing.assert_array_equal(out.at(), [[0.5, 1.5], [1.0, 1.0]])  # (points, draws)
    np.testing.assert_array_equal(out.at(slice(1, 2)), [[1.0, 1.0]])
    tested = out.at(slice(0, 1), np.float32)  # every point tested: the draws, broadcasting over points
    assert tested.shape == (1, 2) and tested.dtype == np.float32
    np.testing.assert_array_equal(tested, [[0.5, 1.5]])


def test_fit_stores_the_reach_and_predict_leaves_the_scale_at_one_beyond_it(mock_sampler, demo_runs):
    import json

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        result = bs.fit(demo_runs, seed=2)
    reach = json.loads(result.tree.attrs["calibration_reach"])
    assert set(reach) == {"N", "D", "C"} and all(v >= 0 for v in reach.values())
    far = {"N": np.array([1e3 * demo_runs.values("N").max()]), "D": np.array([demo_runs.values("D").max()])}
    far["C"] = 6 * far["N"] * far["D"]
    scales = result._scale_draws(far).at()
    assert scales.shape == (1, len(result.draws("sigma"))) and (scales == 1.0).all()


def test_reach_and_beyond_it_are_one_rule_for_every_input():
    """The loss's inputs and the link's progress share the rule: beyond by *more* than the reach."""
    assert cal.reach_of(np.array([1.0, 2.0]), np.array([2.5, 1.5])) == 0.5
    assert cal.reach_of(np.array([1.0, 2.0]), np.array([1.5])) == 0.0
    np.testing.assert_array_equal(cal.beyond_reach(np.array([2.4, 2.5, 2.6]), 2.0, 0.5), [False, False, True])


def test_distances_beyond_are_zero_inside_and_per_input_outside():
    ranges = {"N": (np.log(1e8), np.log(1e9)), "D": (np.log(1e9), np.log(1e11))}
    points = {
        "N": np.array([5e8, 1e9 * np.e**2, 1e9 * np.e**3, 1e8 / np.e]),
        "D": np.array([1e10, 1e10, 1e11 * np.e**4, 1e10]),
    }
    np.testing.assert_allclose(cal.distances_beyond(ranges, points), [[0, 0], [2, 0], [3, 4], [1, 0]])


def test_input_ranges_leave_linear_inputs_out(demo_runs):
    import dataclasses

    ranges = cal.input_ranges(demo_runs, ("N", "D"))
    assert list(ranges) == ["N", "D"]
    assert ranges["N"] == pytest.approx((np.log(demo_runs.values("N")).min(), np.log(demo_runs.values("N")).max()))
    assert list(cal.input_ranges(dataclasses.replace(demo_runs, linear=frozenset({"D"})), ("N", "D"))) == ["N"]


def _growth_medians(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    w = p.sum(axis=0)
    order = np.argsort(g, axis=0)
    return np.array([g[order[:, j], j][np.searchsorted(np.cumsum(w[order[:, j]]), 0.5)] for j in range(g.shape[1])])


def _errors(d: np.ndarray, growth: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    h = np.full(len(d), 0.01)  # 90% half-width 1% of log loss: the band's own sd 0.6%
    r = np.random.default_rng(seed).normal(0, np.sqrt(np.maximum((h / cal.Z90) ** 2, d**2 @ growth**2)))
    return cal.Z90 * r / h, h


def test_growth_is_learned_per_input_from_errors_that_grow_with_distance():
    rng = np.random.default_rng(3)
    d = np.column_stack([rng.uniform(0, 3, 400), rng.uniform(0, 3, 400)])  # beyond in N and D
    z, h = _errors(d, np.array([0.015, 0.002]), 3)  # misfit growing 1.5% per e-fold along N, little along D
    medians = _growth_medians(*cal.scale_growth_posterior(z, h, d))
    assert medians[0] == pytest.approx(0.015, rel=0.25)
    assert medians[1] < cal.GROWTH_PRIOR_SD * 0.6745  # below the prior's median
    # the same errors at distance 0 leave the growth to its prior and put all the spread in s
    medians0 = _growth_medians(*cal.scale_growth_posterior(z, h, np.zeros_like(d)))
    np.testing.assert_allclose(medians0, cal.GROWTH_PRIOR_SD * 0.6745, rtol=0.1)


def test_an_input_the_split_did_not_reach_keeps_its_prior():
    rng = np.random.default_rng(4)
    d = np.column_stack([np.zeros(200), rng.uniform(1, 3, 200)])  # held-out runs beyond in D only
    z, h = _errors(d, np.array([0.0, 0.0]), 4)  # bands right along D: nothing grows
    medians = _growth_medians(*cal.scale_growth_posterior(z, h, d))
    assert medians[0] == pytest.approx(cal.GROWTH_PRIOR_SD * 0.6745, rel=0.25)  # 512 prior draws, re-weighted
    assert medians[1] < 0.5 * cal.GROWTH_PRIOR_SD


def test_without_held_out_runs_the_scale_is_one_and_the_growth_its_prior():
    empty = np.empty(0)
    s, g = cal.scale_growth_draws(empty, empty, np.zeros((0, 2)), 4000, np.random.default_rng(5))
    assert (s == 1.0).all() and g.shape == (4000, 2)
    np.testing.assert_allclose(g.mean(axis=0), cal.GROWTH_PRIOR_SD * np.sqrt(2 / np.pi), rtol=0.1)
    _, g3 = cal.scale_growth_draws(empty, empty, np.zeros((0, 2)), 4000, np.random.default_rng(5), unit=3.0)
    np.testing.assert_allclose(g3, 3.0 * g)  # in the target's units (an identity link's)


def test_point_scales_spread_grows_with_distance_and_is_absent_inside():
    growth = np.array([[0.01, 0.0], [0.02, 0.01]])  # (draws, inputs)
    out = cal.point_scales(np.ones(2), np.zeros(3, bool), growth, np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 4.0]]))
    np.testing.assert_allclose(out.spread(), [[0, 0], [0.01, 0.02], [0.03, np.hypot(0.06, 0.04)]])
    assert out.spread(slice(0, 1)) is None  # every point of the slice within the runs
    assert cal.point_scales(np.ones(2), np.zeros(3, bool)).spread() is None


def test_the_growth_widens_far_bands_only_and_keeps_the_median(real_fit):
    from bayescale.predict import predict_table

    runs = real_fit.runs
    n_max, d_max = runs.values("N").max(), runs.values("D").max()
    points = {"N": np.array([n_max / 4, 100 * n_max]), "D": np.array([d_max / 4, d_max])}
    points["C"] = 6 * points["N"] * points["D"]
    S = len(real_fit.draws("sigma"))
    args = (real_fit.law, real_fit._sampled(), real_fit.reference, points, 0.9)
    distances = cal.distances_beyond(cal.input_ranges(runs, real_fit.law.inputs), points)
    scales = cal.point_scales(np.ones(S), np.zeros(2, bool), np.full((S, distances.shape[1]), 0.01), distances)
    plain = predict_table(*args, np.random.default_rng(0), real_fit.discrepancy, 1.0)
    grown = predict_table(*args, np.random.default_rng(0), real_fit.discrepancy, scales)
    width = (grown["upper"] - grown["lower"]) / (plain["upper"] - plain["lower"])
    assert width[0] == pytest.approx(1.0, abs=1e-6)  # inside the runs' ranges: unchanged
    assert width[1] > 1.2  # log(100) = 4.6 e-folds out at 1% each
    assert grown["median"][1] == pytest.approx(plain["median"][1], rel=2e-3)


def test_widen_to_tops_up_narrow_bands_and_leaves_wide_ones():
    from bayescale.predict import widen_to

    rng = np.random.default_rng(6)
    draws = np.vstack([rng.normal(0, 0.01, 20000), rng.normal(0, 0.05, 20000)])  # (points, draws)
    eps = rng.standard_normal(20000)[None, :]
    out = widen_to(draws, np.full((2, 20000), 0.03), eps)
    assert out[0].std() == pytest.approx(0.03, rel=0.05)  # 1% band topped up to 3%
    np.testing.assert_array_equal(out[1], draws[1])  # a 5% band is wider already
