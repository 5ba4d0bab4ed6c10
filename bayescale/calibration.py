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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

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


def standardized_errors(
    log_observed: np.ndarray, log_median: np.ndarray, log_lower: np.ndarray, log_upper: np.ndarray
) -> np.ndarray:
    """Errors in units of the 90% band: 1.645 x error / half-width on the side the run fell."""
    r = np.asarray(log_observed) - np.asarray(log_median)
    h = np.where(r > 0, np.asarray(log_upper) - log_median, log_median - np.asarray(log_lower))
    return Z90 * r / np.maximum(h, 1e-12)


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
    """Band scales per draw and point, stored as the draws (S,) and the untested points (n,).

    The (n, S) array is built chunk by chunk (:meth:`at`), never whole.
    """

    draws: np.ndarray
    untested: np.ndarray

    def at(self, points: slice = slice(None), dtype: type = float) -> np.ndarray:
        """Scales for the ``points`` slice: the draws, and 1 where the split did not test.

        Shape (n, S), or (1, S) -- the draws, broadcasting over the points -- when the split
        tested every point of the slice; of ``dtype`` (that of the draws they will scale).
        """
        untested = self.untested[points]
        if not untested.any():
            return self.draws[None, :].astype(dtype)
        return np.where(untested[:, None], 1.0, self.draws[None, :]).astype(dtype)


def point_scales(draws: np.ndarray, untested_points: np.ndarray) -> PointScales:
    """Scale per draw and point: the draws, and 1 where the split did not test."""
    return PointScales(np.asarray(draws, dtype=float), np.asarray(untested_points, dtype=bool))


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


def heldout_errors(fit: Any, test: Runs) -> np.ndarray:
    """Standardized errors of the held-out runs ``test`` under ``fit``'s 90% predictive bands.

    ``fit`` is a :class:`~bayescale.result.ScalingFit` of the training runs. Independent
    deviates per held-out run: their Monte Carlo errors average out in the pooled errors.
    """
    pred = fit.predict(points={x: test.values(x) for x in test.inputs}, interval=0.9, independent=True)
    law = fit.law
    return standardized_errors(
        law.observed(test.loss),
        law.observed(pred["median"].to_numpy()),
        law.observed(pred["lower"].to_numpy()),
        law.observed(pred["upper"].to_numpy()),
    )
