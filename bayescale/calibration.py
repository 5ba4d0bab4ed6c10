"""Leave-future-out calibration of the band width on the user's own runs.

The discrepancy stage (:mod:`bayescale.discrepancy`) gives bands that widen where the law
is known to stray; whether they are as wide as they should be *beyond* the runs is a
question the posterior cannot answer about itself. So ``fit`` asks the runs: it re-fits
(law and discrepancy) on the runs below a compute cutoff -- the top :data:`HOLDOUT` share
of runs by compute held out, budgets kept whole -- predicts the held-out runs, and
measures each one's error in units of its band. With ``h_i`` the half-width in log loss
of the sub-fit's 90% band on the side the run fell, ``z_i = 1.645 r_i / h_i`` is a
standard normal deviate when the bands are right; if they are ``s`` times too wide or too
narrow, ``z_i ~ Normal(0, s^2)``. The band scale ``s`` gets a LogNormal(0, 0.5) prior --
bands right to within a factor of 2.7 at 95% -- and the full fit's predictive draws are
scaled about their median (which does not move) by draws of ``s`` from its posterior:
uncertainty about the scale itself widens the tails.

With few held-out runs the prior keeps ``s`` near 1 and its posterior wide; with many,
the runs decide.

The evidence holds only as far out as the held-out runs went. For each input x (N, D, C)
the *reach* of the split is how far, in log x, the held-out runs extend beyond the re-fit's
largest x. A prediction that extends beyond the full runs' largest x by more than the reach
-- a model larger than any in the data when the held-out runs were no larger than the
rest, as on a ladder whose largest budgets are over-trained small models -- is an
extrapolation the split did not test, and the split says nothing about it: there the band
is the model's own (scale 1, discrepancy included), neither narrowed nor widened.

How far a prediction reaches also counts on its own. A law that fits its runs well can
still bend away from the truth far beyond them, and its own band (parameter uncertainty,
discrepancy, noise) grows more slowly with distance than that misfit does: measured on
ladders whose largest models were held out (Chinchilla's, Farseer's), the error of the
median grew about linearly with the distance in log N, the band barely. So the predictive
gets a floor that grows with how far a point lies beyond the runs: along each positive input x
of the law, ``d_x`` is how far its log lies outside the runs' range (0 inside), and the band's
standard deviation in log loss is at least ``sqrt(sum_x g_x^2 d_x^2)`` -- a band already wider
(a fit whose runs are noisy, or whose parameters are loose) is left as it is, a band narrower is
topped up in quadrature (:func:`bayescale.predict.widen_to`). The growth ``g_x`` per input -- a
law may extrapolate well in D and badly in N -- is learned with ``s`` from the same held-out
runs, whose distances beyond the re-fit's runs are known:
``r_i ~ Normal(0, max(s^2 h_i^2, sum_x g_x^2 d_ix^2))`` with ``h_i`` the band's standard
deviation, ``g_x ~ HalfNormal(GROWTH_PRIOR_SD)``. Held-out runs that went no further along x
than the re-fit's say nothing about ``g_x``: the prior then keeps a far extrapolation along x
from being as sure as a near one. The prior's scale was chosen on the development sets
(``benchmarks/reach_tasks.py``, ``dev_tasks.py``, the small ladders, ../shared/tasks; figures in
docs/calibration.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtri

from bayescale.data import INPUTS, Runs
from bayescale.stats import median_along

#: Share of runs (top by compute) held out for the calibration re-fit.
HOLDOUT = 0.2
#: Prior standard deviation of log s.
PRIOR_SD = 0.5
#: z of the 95th percentile: the 90% band's half-width in standard deviations.
Z90 = 1.6448536269514722
#: Grid of log s for the posterior mode.
LOG_S_GRID = np.linspace(-2.5, 2.5, 1001)
#: Prior standard deviation (half-normal) of the misfit's growth per log unit of distance beyond the runs.
GROWTH_PRIOR_SD = 0.01
#: Prefix of the calibration table's columns of the held-out runs' distances beyond the re-fit's runs.
DISTANCE = "distance_"
#: Stratified draws of the growth per input from its prior, weighted by the held-out runs.
GROWTH_DRAWS = 512
#: Grid of log s for the joint posterior with the growth.
JOINT_LOG_S_GRID = np.linspace(-2.5, 2.5, 201)


def standardized_errors(
    log_observed: np.ndarray, log_median: np.ndarray, log_lower: np.ndarray, log_upper: np.ndarray
) -> np.ndarray:
    """Errors in units of the 90% band: 1.645 x error / half-width on the side the run fell."""
    r = np.asarray(log_observed) - np.asarray(log_median)
    return Z90 * r / np.maximum(halfwidth_on_side(log_observed, log_median, log_lower, log_upper), 1e-12)


def halfwidth_on_side(
    log_observed: np.ndarray, log_median: np.ndarray, log_lower: np.ndarray, log_upper: np.ndarray
) -> np.ndarray:
    """The 90% band's half-width on the side of the median each run fell."""
    above = np.asarray(log_observed) - np.asarray(log_median) > 0
    return np.where(above, np.asarray(log_upper) - log_median, log_median - np.asarray(log_lower))


def log_scale_posterior(z: np.ndarray, prior_sd: float = PRIOR_SD) -> np.ndarray:
    """Posterior probabilities of log s on :data:`LOG_S_GRID` given standardized errors ``z``.

    Model: ``z_i ~ Normal(0, s^2)``, ``log s ~ Normal(0, prior_sd^2)``; no (finite) ``z``
    gives the prior.
    """
    z = np.asarray(z, dtype=float)
    z = z[np.isfinite(z)]
    log_s = LOG_S_GRID[:, None]
    log_post = (-log_s - 0.5 * z[None, :] ** 2 * np.exp(-2 * log_s)).sum(axis=1) - 0.5 * (LOG_S_GRID / prior_sd) ** 2
    p = np.exp(log_post - log_post.max())
    return p / p.sum()


def band_scale(z: np.ndarray, prior_sd: float = PRIOR_SD) -> float:
    """Posterior median of the band scale s from standardized errors ``z`` (1.0 when there are none)."""
    cdf = np.cumsum(log_scale_posterior(z, prior_sd))
    return float(np.exp(LOG_S_GRID[int(np.searchsorted(cdf, 0.5))]))


def scale_draws(z: np.ndarray, n: int, rng: np.random.Generator, prior_sd: float = PRIOR_SD) -> np.ndarray:
    """``n`` posterior draws of the band scale s (all 1.0 when ``z`` is empty: no calibration)."""
    z = np.asarray(z, dtype=float)
    if not np.isfinite(z).any():
        return np.ones(n)
    return np.exp(rng.choice(LOG_S_GRID, size=n, p=log_scale_posterior(z, prior_sd)))


def _growth_prior_draws(k: int, unit: float) -> np.ndarray:
    """:data:`GROWTH_DRAWS` stratified draws (M, k) of the growth per input from its half-normal prior (fixed)."""
    if k == 0:
        return np.zeros((GROWTH_DRAWS, 0))
    rng = np.random.default_rng(0)  # a Latin hypercube: each input's prior in GROWTH_DRAWS equal strata
    u = (np.argsort(rng.random((k, GROWTH_DRAWS)), axis=1).T + rng.random((GROWTH_DRAWS, k))) / GROWTH_DRAWS
    return unit * GROWTH_PRIOR_SD * ndtri(0.5 + 0.5 * u)  # half-normal quantiles


def scale_growth_posterior(
    z: np.ndarray, halfwidth: np.ndarray, distances: np.ndarray, unit: float = 1.0, prior_sd: float = PRIOR_SD
) -> tuple[np.ndarray, np.ndarray]:
    """Joint posterior of the band scale s and the misfit's growth per input ``g``.

    ``z``: the held-out runs' standardized errors; ``halfwidth``: their bands' half-widths on the
    side they fell (in the likelihood's units); ``distances`` (n, k): how far each lies beyond the
    re-fit's runs along each of k inputs (:func:`distances_beyond`). ``unit`` scales the growth to the
    target (1 for a log link). Model: ``r_i ~ Normal(0, max(s^2 h_i^2, sum_x g_x^2 d_ix^2))`` with
    ``h_i`` the half-width over :data:`Z90` and ``r_i = z_i h_i`` (the model of :func:`bayescale.predict.widen_to`);
    log s on :data:`JOINT_LOG_S_GRID`,
    ``g`` at stratified draws from its prior (equal prior weights).

    Returns
    -------
    (p, g) : arrays (S grid, M), (M, k)
        Posterior probabilities of each (log s, g draw) pair, and the growth draws.
    """
    z, halfwidth = np.asarray(z, dtype=float), np.asarray(halfwidth, dtype=float)
    distances = np.asarray(distances, dtype=float)
    distances = distances[:, None] if distances.ndim == 1 else distances
    g = _growth_prior_draws(distances.shape[1], unit)
    ok = np.isfinite(z) & np.isfinite(halfwidth) & np.isfinite(distances).all(axis=1)
    h = np.maximum(halfwidth[ok], 1e-12) / Z90
    r, extra = z[ok] * h, distances[ok] ** 2 @ (g**2).T  # (n, M)
    s2 = np.exp(2 * JOINT_LOG_S_GRID)[:, None, None]
    log_post = np.empty((JOINT_LOG_S_GRID.size, len(g)))
    step = max(1, int(2e7 // (JOINT_LOG_S_GRID.size * max(len(r), 1))))
    for start in range(0, len(g), step):
        var = np.maximum(s2 * h[None, :, None] ** 2, extra[None, :, start : start + step])
        log_post[:, start : start + step] = (-0.5 * np.log(var) - 0.5 * r[None, :, None] ** 2 / var).sum(axis=1)
    log_post += -0.5 * (JOINT_LOG_S_GRID[:, None] / prior_sd) ** 2
    p = np.exp(log_post - log_post.max())
    return p / p.sum(), g


def scale_growth_draws(
    z: np.ndarray, halfwidth: np.ndarray, distances: np.ndarray, n: int, rng: np.random.Generator, unit: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` joint posterior draws of the band scale s (n,) and the growth per input g (n, k)
    (:func:`scale_growth_posterior`). Without finite held-out errors: s = 1 and g from its prior."""
    p, g = scale_growth_posterior(z, halfwidth, distances, unit)
    if not np.isfinite(np.asarray(z, dtype=float)).any():  # no calibration: the band's own scale
        return np.ones(n), g[rng.integers(len(g), size=n)]
    flat = rng.choice(p.size, size=n, p=p.ravel())
    i, m = np.unravel_index(flat, p.shape)
    return np.exp(JOINT_LOG_S_GRID[i]), g[m]


def input_ranges(runs: Runs, inputs: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """The runs' range of log x for each positive input x among ``inputs`` (linear inputs left out)."""
    return {
        x: (float(runs.log(x).min()), float(runs.log(x).max())) for x in inputs if runs.has(x) and x not in runs.linear
    }


def distances_beyond(ranges: Mapping[str, tuple[float, float]], points: Mapping[str, np.ndarray]) -> np.ndarray:
    """How far each point lies outside the runs' ranges (:func:`input_ranges`) along each input, in log x
    (0 inside): shape (n, k), the columns in the order of ``ranges``."""
    n = len(next(iter(points.values())))
    out = np.zeros((n, len(ranges)))
    for j, (x, (lo, hi)) in enumerate(ranges.items()):
        if x in points:
            lx = np.log(np.asarray(points[x], dtype=float))
            out[:, j] = np.maximum(lx - hi, 0.0) + np.maximum(lo - lx, 0.0)
    return out


def reach_of(train: np.ndarray, test: np.ndarray) -> float:
    """How far the held-out values ``test`` extend beyond the training values ``train`` (0 if no further)."""
    return float(max(0.0, np.max(test) - np.max(train)))


def beyond_reach(x: np.ndarray, x_max: float, reach: float) -> np.ndarray:
    """Boolean per value: ``x`` beyond the runs' largest ``x_max`` by more than the split's ``reach``."""
    return np.asarray(x, dtype=float) - x_max > reach + 1e-9


def split_reach(train: Runs, test: Runs) -> dict[str, float]:
    """How far (in log x) the held-out runs extend beyond the training runs' largest x, per input."""
    return {
        x: reach_of(np.log(train.values(x)), np.log(test.values(x))) for x in INPUTS if train.has(x) and test.has(x)
    }


def untested(runs: Runs, points: Mapping[str, np.ndarray], reach: Mapping[str, float]) -> np.ndarray:
    """Boolean per point: beyond the runs' largest x by more than the split's reach in some input x."""
    n = len(next(iter(points.values())))
    out = np.zeros(n, dtype=bool)
    for x, r in reach.items():
        if x in points and runs.has(x):
            out |= beyond_reach(np.log(np.asarray(points[x], dtype=float)), np.log(runs.values(x)).max(), r)
    return out


@dataclass(frozen=True)
class PointScales:
    """Band scales per draw and point, stored as the draws (S,) and the untested points (n,); with the
    misfit's growth per draw and input (S, k) and each point's distance beyond the runs per input (n, k).

    The (n, S) arrays are built chunk by chunk (:meth:`at`, :meth:`spread`), never whole.
    """

    draws: np.ndarray
    untested: np.ndarray
    growth: np.ndarray | None = None  # (S, k)
    distance: np.ndarray | None = None  # (n, k)

    def spread(self, points: slice = slice(None), dtype: type = float) -> np.ndarray | None:
        """Standard deviation of the misfit that grows with distance, (n, S), for the ``points`` slice:
        ``sqrt(sum_x d_x^2 g_x^2)`` with the growth draws (S, k) and distances (n, k); None where it is 0
        throughout (no growth, or every point within the runs' ranges)."""
        if self.growth is None or self.distance is None:
            return None
        d = self.distance[points]
        if not np.any(d > 0):
            return None
        return np.sqrt(d**2 @ (self.growth**2).T).astype(dtype)

    def at(self, points: slice = slice(None), dtype: type = float) -> np.ndarray:
        """Scales for the ``points`` slice: the draws, and 1 where the split did not test.

        Shape (n, S), or (1, S) -- the draws, broadcasting over the points -- when the split
        tested every point of the slice; of ``dtype`` (that of the draws they will scale).
        """
        untested = self.untested[points]
        if not untested.any():
            return self.draws[None, :].astype(dtype)
        return np.where(untested[:, None], 1.0, self.draws[None, :]).astype(dtype)


def point_scales(
    draws: np.ndarray,
    untested_points: np.ndarray,
    growth: np.ndarray | None = None,
    distance: np.ndarray | None = None,
) -> PointScales:
    """Scale per draw and point: the draws, and 1 where the split did not test; with the growth's
    draws and the points' distances beyond the runs, the misfit that grows with distance."""
    return PointScales(
        np.asarray(draws, dtype=float),
        np.asarray(untested_points, dtype=bool),
        None if growth is None else np.asarray(growth, dtype=float),
        None if distance is None else np.asarray(distance, dtype=float),
    )


def rescale(log_draws: np.ndarray, scale: float | np.ndarray, axis: int = 0) -> np.ndarray:
    """Scale draws about their per-point median by ``scale``.

    ``log_draws`` holds draws along ``axis`` (0: (S, n); 1: (n, S)); ``scale`` is a number,
    one per draw (S,), or one per draw and point (broadcasting to the shape of
    ``log_draws``; see :meth:`PointScales.at` for the (n, S) layout).
    """
    scale = np.asarray(scale)
    if np.all(scale == 1.0):
        return log_draws
    med = np.expand_dims(median_along(log_draws, axis=axis), axis)
    if scale.ndim == 1:
        scale = scale.reshape(-1, 1) if axis == 0 else scale.reshape(1, -1)
    out = log_draws - med  # in place from here: (y - m) s + m, bit for bit m + s (y - m)
    out *= scale.astype(log_draws.dtype, copy=False)
    out += med
    return out


def heldout_evidence(fit: Any, test: Runs) -> dict[str, np.ndarray]:
    """What the held-out runs ``test`` say about ``fit``'s bands: standardized errors ``z``, the
    bands' ``halfwidth`` on the side each run fell (likelihood units) and, per positive input x of the
    law, ``distance_x``: how far each run lies beyond ``fit``'s runs along x (:func:`distances_beyond`).

    ``fit`` is a :class:`~bayescale.result.ScalingFit` of the training runs. Independent deviates per
    held-out run: their Monte Carlo errors average out in the pooled errors.
    """
    pred = fit.predict(points={x: test.values(x) for x in test.inputs}, interval=0.9, independent=True)
    law = fit.law
    y, med = law.observed(test.loss), law.observed(pred["median"].to_numpy())
    lower, upper = law.observed(pred["lower"].to_numpy()), law.observed(pred["upper"].to_numpy())
    ranges = input_ranges(fit.runs, law.inputs)
    d = distances_beyond(ranges, {x: test.values(x) for x in ranges})
    return {
        "z": standardized_errors(y, med, lower, upper),
        "halfwidth": halfwidth_on_side(y, med, lower, upper),
        **{f"{DISTANCE}{x}": d[:, j] for j, x in enumerate(ranges)},
    }


def growth_unit(law: Any, runs: Runs) -> float:
    """The target's scale for the growth of the misfit: 1 on a log link (log loss), else the runs'
    median absolute target."""
    return 1.0 if law.link == "log" else float(np.median(np.abs(runs.loss))) or 1.0
