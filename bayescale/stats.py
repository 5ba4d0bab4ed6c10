"""Posterior summaries of draws: median, mean and equal-tailed interval."""

from __future__ import annotations

import numpy as np


def interval_levels(interval: float) -> list[float]:
    """Lower bound, median and upper bound levels of the equal-tailed ``interval``."""
    return [(1 - interval) / 2, 0.5, (1 + interval) / 2]


def interval_stats(draws: np.ndarray, interval: float, axis: int = 0) -> dict[str, np.ndarray]:
    """Median, mean, lower and upper bound of the equal-tailed ``interval`` along ``axis``.

    Infinite draws (e.g. a loss that is never reached) are kept: quantiles use the
    inverted-CDF rule, so a bound is infinite only when that share of draws is.
    """
    lo, med, hi = quantiles_along(np.asarray(draws), interval_levels(interval), axis=axis)
    with np.errstate(over="ignore", invalid="ignore"):  # astronomically large draws give an infinite mean
        mean = draws.mean(axis=axis)
    return {"median": med, "mean": mean, "lower": lo, "upper": hi}


def quantiles_along(x: np.ndarray, q: list[float], axis: int = -1) -> np.ndarray:
    """Quantiles ``q`` of ``x`` along ``axis`` by sorting, one row per quantile.

    NumPy's vectorised sort is several times faster than the partition behind
    ``np.quantile`` on draws of floats, and one sort serves every quantile. The result
    equals ``np.quantile(x, q, axis)`` (linear interpolation) when ``x`` is finite, and the
    inverted-CDF rule otherwise (a bound is infinite only when that share of draws is).
    """
    srt = np.sort(x, axis=axis)
    n = srt.shape[axis]
    finite = bool(np.isfinite(srt).all())
    rows = []
    for p in q:
        if finite:
            h = (n - 1) * p
            lo = int(np.floor(h))
            hi = min(lo + 1, n - 1)
            rows.append(_between(np.take(srt, lo, axis=axis), np.take(srt, hi, axis=axis), h - lo))
        else:
            rows.append(np.take(srt, min(max(int(np.ceil(n * p)) - 1, 0), n - 1), axis=axis))
    return np.stack(rows)


def _between(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """``a + (b - a) t``, computed from the nearer end as NumPy's quantiles do (float64 agrees bit for bit)."""
    return a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t)


def median_along(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Median of ``x`` along ``axis``, equal to :func:`quantiles_along` at 0.5.

    One selection (``np.partition`` at the upper middle element; the lower middle one is
    the largest element below it) instead of a sort: about twice as fast on draws.
    """
    x = np.asarray(x)
    axis = axis % x.ndim
    n = x.shape[axis]
    hi = n // 2
    part = np.partition(x, hi, axis=axis)
    b = np.take(part, hi, axis=axis)
    if n % 2:  # odd: the middle element, under either rule
        return b
    below = part[(slice(None),) * axis + (slice(0, hi),)]
    a = np.max(below, axis=axis)
    if not np.isfinite(part).all():  # inverted-CDF rule: element ceil(n / 2) - 1, the lower middle
        return a
    return _between(a, b, 0.5)  # quantiles_along's interpolation at h = (n - 1) / 2


def log_interval_stats(
    log_draws: np.ndarray, interval: float, mean: bool = True, link: str = "log"
) -> dict[str, np.ndarray]:
    """:func:`interval_stats` of ``exp(log_draws)`` over draws (axis 0 of an (S, n) array).

    The quantiles are those of the log draws, exponentiated (exp is monotone: the same
    draws bound the interval), taken along contiguous memory; only the mean needs the
    exponential of every draw. ``mean=False`` leaves the mean out: for draws whose
    distribution has no mean (Student-t noise on a log scale), a sample mean is an
    artefact of the sample. ``link="identity"``: the draws are on the target's own scale (formula
    laws of a target that can be negative), summarised as they are.
    """
    by_point = np.ascontiguousarray(np.asarray(log_draws).T)
    q = quantiles_along(by_point, interval_levels(interval), axis=1).astype(float)
    lo, med, hi = np.exp(q) if link == "log" else q
    if not mean:
        return {"median": med, "lower": lo, "upper": hi}
    if link != "log":
        return {"median": med, "mean": by_point.mean(axis=1, dtype=np.float64), "lower": lo, "upper": hi}
    with np.errstate(over="ignore", invalid="ignore"):  # astronomically large draws give an infinite mean
        average = np.exp(by_point).mean(axis=1, dtype=np.float64)
    return {"median": med, "mean": average, "lower": lo, "upper": hi}


def check_interval(interval: float) -> float:
    """Return ``interval`` if it lies in (0, 1), else raise ValueError with the fix."""
    if not 0 < interval < 1:
        raise ValueError(f"interval must be between 0 and 1 (e.g. 0.9), got {interval}")
    return float(interval)


def student_t_logpdf(x: np.ndarray, nu: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Student-t log density at ``x`` (broadcasting like ``scipy.stats.t.logpdf(x, nu, loc, scale)``).

    The formula, with the terms that depend only on ``nu`` and ``scale`` formed once on
    their own shape: equal to scipy's to rounding (tested), several times faster on the
    draws x runs arrays of a pointwise log-likelihood -- scipy.stats' argument handling
    and ``apply_where`` took 16 s of a 10,000-run fit's 4,000 x 10,000 evaluation.
    """
    from scipy.special import gammaln

    nu = np.asarray(nu, dtype=float)
    scale = np.asarray(scale, dtype=float)
    const = gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi) - np.log(scale)
    z = (np.asarray(x, dtype=float) - loc) / scale
    z *= z
    z /= nu
    out = np.log1p(z, out=z)
    out *= -0.5 * (nu + 1)
    out += const
    return out
