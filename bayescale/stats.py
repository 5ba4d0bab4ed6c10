"""Posterior summaries of draws: median, mean and equal-tailed interval."""

from __future__ import annotations

import numpy as np


def interval_stats(draws: np.ndarray, interval: float, axis: int = 0) -> dict[str, np.ndarray]:
    """Median, mean, lower and upper bound of the equal-tailed ``interval`` along ``axis``.

    Infinite draws (e.g. a loss that is never reached) are kept: quantiles use the
    inverted-CDF rule, so a bound is infinite only when that share of draws is.
    """
    q = [(1 - interval) / 2, 0.5, (1 + interval) / 2]
    method = "linear" if np.isfinite(draws).all() else "inverted_cdf"
    lo, med, hi = np.quantile(draws, q, axis=axis, method=method)
    with np.errstate(over="ignore", invalid="ignore"):  # astronomically large draws give an infinite mean
        mean = draws.mean(axis=axis)
    return {"median": med, "mean": mean, "lower": lo, "upper": hi}


def check_interval(interval: float) -> float:
    """Return ``interval`` if it lies in (0, 1), else raise ValueError with the fix."""
    if not 0 < interval < 1:
        raise ValueError(f"interval must be between 0 and 1 (e.g. 0.9), got {interval}")
    return float(interval)
