"""Summaries of draws: the sort- and selection-based quantiles equal NumPy's."""

from __future__ import annotations

import numpy as np
import pytest

from bayescale.laws._base import log_sum_exp
from bayescale.stats import log_interval_stats, median_along, quantiles_along, student_t_logpdf

SHAPES = [((7, 4000), 1), ((4000, 7), 0), ((5, 3999), 1), ((3999, 5), 0), ((3, 2), 1), ((1, 1), -1)]


@pytest.mark.parametrize(("shape", "axis"), SHAPES)
def test_quantiles_along_equal_numpy_bit_for_bit(shape, axis):
    x = np.random.default_rng(0).standard_normal(shape)
    q = [0.05, 0.5, 0.95]
    np.testing.assert_array_equal(quantiles_along(x, q, axis=axis), np.quantile(x, q, axis=axis))
    x[0, 0] = np.inf  # non-finite draws: the inverted-CDF rule, infinite only when that share of draws is
    expected = np.quantile(x, q, axis=axis, method="inverted_cdf")
    np.testing.assert_array_equal(quantiles_along(x, q, axis=axis), expected)


@pytest.mark.parametrize(("shape", "axis"), SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_median_along_equals_the_sorted_median(shape, axis, dtype):
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(median_along(x, axis=axis), quantiles_along(x, [0.5], axis=axis)[0])
    if dtype is np.float64:
        np.testing.assert_array_equal(median_along(x, axis=axis), np.quantile(x, 0.5, axis=axis))
    x[0, 0], x[-1, -1] = np.inf, -np.inf
    np.testing.assert_array_equal(median_along(x, axis=axis), quantiles_along(x, [0.5], axis=axis)[0])


def test_median_along_of_hand_made_rows():
    x = np.array([[3.0, 1.0, 2.0, 10.0], [5.0, 4.0, 6.0, 7.0]])
    np.testing.assert_array_equal(median_along(x, axis=1), [2.5, 5.5])
    np.testing.assert_array_equal(median_along(x[:, :3], axis=1), [2.0, 5.0])
    # an infinite draw: the lower middle element, as the inverted-CDF rule of the interval bounds
    np.testing.assert_array_equal(median_along(np.array([[1.0, np.inf, 3.0, 2.0]]), axis=1), [2.0])


def test_float32_log_sum_exp_matches_the_nested_float64_one():
    rng = np.random.default_rng(2)
    terms = [rng.normal(0, 3, size=(50, 40)) for _ in range(3)]
    exact = log_sum_exp(terms, np)
    fast = log_sum_exp([t.astype(np.float32) for t in terms], np)
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, exact, rtol=2e-6, atol=2e-6)
    with_zero = [np.full((50, 40), -np.inf, dtype=np.float32), *(t.astype(np.float32) for t in terms[1:])]
    np.testing.assert_allclose(log_sum_exp(with_zero, np), np.logaddexp(terms[1], terms[2]), rtol=2e-6, atol=2e-6)


def test_student_t_logpdf_equals_scipy():
    from scipy import stats

    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 60))
    nu, scale = rng.uniform(1.0, 80.0, size=(30, 1)), rng.uniform(0.005, 2.0, size=(30, 1))
    loc = rng.normal(size=(30, 60))
    np.testing.assert_allclose(student_t_logpdf(x, nu, loc, scale), stats.t.logpdf(x, nu, loc, scale), rtol=1e-12)


def test_log_likelihood_in_chunks_equals_one_piece(monkeypatch):
    """The pointwise log-likelihood taken run chunk by run chunk equals the whole-array formula."""
    import pandas as pd
    import xarray as xr
    from scipy import stats

    import bayescale.sampling as sampling
    from bayescale.data import load_runs
    from bayescale.laws import get_law
    from bayescale.predict import law_log_loss

    rng = np.random.default_rng(4)
    N = np.exp(rng.uniform(18, 23, 70))
    D = 20 * N * np.exp(rng.normal(0, 1, 70))
    runs = load_runs(pd.DataFrame({"N": N, "D": D, "loss": 1.7 + 400 * N**-0.34 + 410 * D**-0.28}))
    law = get_law("chinchilla")
    S = (2, 25)
    draws = {
        "E": rng.uniform(1.5, 1.9, S),
        "alpha": rng.uniform(0.25, 0.4, S),
        "beta": rng.uniform(0.25, 0.4, S),
        "log_A_ref": rng.normal(-1.5, 0.1, S),
        "log_B_ref": rng.normal(-1.5, 0.1, S),
        "sigma": rng.uniform(0.005, 0.02, S),
        "nu": rng.uniform(2, 30, S),
    }
    posterior = xr.Dataset({k: (("chain", "draw"), v) for k, v in draws.items()})
    monkeypatch.setattr(sampling, "LOG_LIKELIHOOD_CHUNK", 16)  # five chunks, the last one short
    got = sampling.log_likelihood(law, runs, posterior, {})["log_loss"].to_numpy().reshape(50, -1)
    flat = {k: v.reshape(-1) for k, v in draws.items()}
    mu = law_log_loss(law, flat, law.reference(runs), {"N": N, "D": D})
    want = stats.t.logpdf(np.log(runs.loss)[None, :], flat["nu"][:, None], mu, flat["sigma"][:, None])
    np.testing.assert_allclose(got, want.astype("float32"), rtol=1e-6)


def test_log_interval_stats_leaves_the_mean_out_when_asked():
    """A new run's loss (Student-t noise on log loss) has no mean; its table must not make one up."""
    rng = np.random.default_rng(0)
    log_draws = np.log(2.5) + 0.03 * rng.standard_t(2.4, size=(4000, 3))
    with_mean = log_interval_stats(log_draws, 0.9)
    without = log_interval_stats(log_draws, 0.9, mean=False)
    assert set(without) == {"median", "lower", "upper"}
    for key in without:
        np.testing.assert_array_equal(without[key], with_mean[key])
