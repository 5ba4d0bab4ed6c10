"""Summaries of draws: the sort- and selection-based quantiles equal NumPy's."""

from __future__ import annotations

import numpy as np
import pytest

from bayescale.laws._base import log_sum_exp
from bayescale.stats import median_along, quantiles_along

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
