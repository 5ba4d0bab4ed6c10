"""Contrasts between two groups of a pooled fit, from joint draws.

Draw ``i`` of every group of a :class:`~bayescale.pooled.PooledFit` comes from one draw of the
hierarchical posterior, so a difference is formed draw by draw and summarised afterwards:
its band is the band of the difference, never two separate bands compared (which overlap and
say nothing about the ordering). Quantities:

- ``loss_difference`` at each point: expected loss of group a minus b (law, discrepancy and
  band scale as in ``predict``), with ``probability`` = P(a lower than b);
- at one budget ``compute``: ``a_difference`` (allocation exponent of N_opt ~ C^a),
  ``tokens_per_param_difference`` and ``loss_opt_difference`` of the compute-optimal models,
  with ``probability`` = P(difference < 0);
- ``crossover_compute``: the budget at which the compute-optimal losses of a and b change
  order, per draw, searched from the runs' smallest compute to :data:`CROSSOVER_REACH` times
  their largest; the band is over the draws that cross in that range, ``probability`` is
  their share.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bayescale.allocation import AllocationError, check_budgets
from bayescale.errors import GroupError, PredictionError
from bayescale.predict import complete_inputs, log_draws
from bayescale.result import ScalingFit
from bayescale.stats import check_interval, interval_levels, quantiles_along

#: The crossover search reaches this many times the largest compute of the runs.
CROSSOVER_REACH = 1e4
#: Budgets of the crossover search (log-spaced).
CROSSOVER_GRID = 48
COLUMNS = ["quantity", "N", "D", "C", "median", "lower", "upper", "probability"]


def expected_loss_draws(fit: ScalingFit, points: dict[str, np.ndarray]) -> np.ndarray:
    """Draws (S, n) of a group's expected loss at ``points`` (law + discrepancy, band-scaled), in draw order."""
    rng = np.random.default_rng([fit.seed, 1])
    parts = [
        np.exp(log_law.astype(float))
        for log_law, _ in log_draws(
            fit.law, fit._sampled(), fit.reference, points, rng, fit.discrepancy, fit._scale_draws(points)
        )
    ]
    return np.concatenate(parts, axis=1)


def _row(quantity: str, diff: np.ndarray, interval: float, point=(np.nan, np.nan, np.nan), prob=None) -> dict:
    finite = diff[np.isfinite(diff)]
    lo, med, hi = quantiles_along(finite, interval_levels(interval)) if finite.size else (np.nan, np.nan, np.nan)
    return {
        "quantity": quantity,
        "N": point[0],
        "D": point[1],
        "C": point[2],
        "median": float(med),
        "lower": float(lo),
        "upper": float(hi),
        "probability": float(np.mean(finite < 0)) if prob is None else float(prob),
    }


def crossover_draws(fa: ScalingFit, fb: ScalingFit, budgets: np.ndarray) -> np.ndarray:
    """Per draw, the budget where the compute-optimal losses of ``fa`` and ``fb`` change order (NaN: none)."""
    diffs = np.stack([fa.allocation_draws(C)["loss_opt"] - fb.allocation_draws(C)["loss_opt"] for C in budgets])
    sign = np.sign(diffs)
    flips = sign[1:] != sign[:1]  # against the order at the smallest budget
    out = np.full(diffs.shape[1], np.nan)
    has = flips.any(axis=0)
    j = np.argmax(flips, axis=0)[has]  # the first budget where the order differs
    cols = np.flatnonzero(has)
    d0, d1 = diffs[j, cols], diffs[j + 1, cols]
    t = np.clip(d0 / np.where(d0 - d1 == 0, 1.0, d0 - d1), 0.0, 1.0)  # linear in log C between grid budgets
    logC = np.log(budgets)
    out[cols] = np.exp(logC[j] + t * (logC[j + 1] - logC[j]))
    return out


def contrast(
    pooled: Any,
    a: object,
    b: object,
    N: object = None,
    D: object = None,
    C: object = None,
    compute: float | None = None,
    interval: float = 0.9,
) -> pd.DataFrame:
    """Group ``a`` against group ``b``: loss differences at points, allocation differences at a budget,
    and the crossover compute, each with its band from joint draws.

    Parameters
    ----------
    pooled : bayescale.pooled.PooledFit
    a, b : str
        Group names.
    N, D, C : float or array_like, optional
        Points for the loss difference (any two of them); none: no ``loss_difference`` rows.
    compute : float, optional
        Budget of the allocation rows (default: 100x the largest compute of all runs).
    interval : float, default 0.9
        Probability of the equal-tailed intervals.

    Returns
    -------
    pandas.DataFrame
        Columns ``quantity, N, D, C, median, lower, upper, probability`` (see the module's docstring).

    Raises
    ------
    GroupError
        If a group is not in the fit, or ``a`` equals ``b``.
    """
    interval = check_interval(interval)
    fa, fb = pooled.group(a), pooled.group(b)
    if str(a) == str(b):
        raise GroupError(f"contrast of group {a!r} with itself; name two different groups")
    rows = []
    if any(v is not None for v in (N, D, C)):
        points = complete_inputs(fa.law, fa.k, N=N, D=D, C=C)
        diff = expected_loss_draws(fa, points) - expected_loss_draws(fb, points)
        for i in range(diff.shape[1]):
            point = (points["N"][i], points["D"][i], points["C"][i])
            rows.append(_row("loss_difference", diff[:, i], interval, point))
    budget = max(fa.reference_budget, fb.reference_budget) if compute is None else compute
    budget = float(check_budgets(budget)[0])
    try:
        da, db = fa.allocation_draws(budget), fb.allocation_draws(budget)
    except AllocationError as ex:
        raise PredictionError(f"allocation at {budget:g} FLOPs: {ex}") from None
    at = (np.nan, np.nan, budget)
    rows.append(_row("a_difference", da["a"] - db["a"], interval, at))
    rows.append(_row("tokens_per_param_difference", da["tokens_per_param"] - db["tokens_per_param"], interval, at))
    rows.append(_row("loss_opt_difference", da["loss_opt"] - db["loss_opt"], interval, at))
    low = max(float(fa.runs.values("C").min()), float(fb.runs.values("C").min()))
    high = CROSSOVER_REACH * max(float(fa.runs.values("C").max()), float(fb.runs.values("C").max()))
    budgets = np.geomspace(low, high, CROSSOVER_GRID)
    try:
        cross = crossover_draws(fa, fb, budgets)
    except AllocationError:  # the smallest budgets give no sensible model: start the search higher
        cross = crossover_draws(fa, fb, budgets[CROSSOVER_GRID // 4 :])
    share = float(np.mean(np.isfinite(cross)))
    rows.append(_row("crossover_compute", cross, interval, (np.nan, np.nan, np.nan), prob=share))
    return pd.DataFrame(rows, columns=COLUMNS)


def rank(pooled: Any, N: float | None = None, D: float | None = None, C: float | None = None) -> pd.DataFrame:
    """Rank every group by its expected loss at one point, from joint draws.

    Parameters
    ----------
    pooled : bayescale.pooled.PooledFit
    N, D, C : float
        The point (any two of them), e.g. the model to be trained.

    Returns
    -------
    pandas.DataFrame
        One row per group, best first: ``group``, ``loss_median``, ``p_best`` (share of draws in
        which the group has the lowest expected loss) and ``mean_rank`` (1 = best).
    """
    fits = {name: pooled.group(name) for name in pooled.names}
    first = next(iter(fits.values()))
    points = complete_inputs(first.law, first.k, N=N, D=D, C=C)
    if len(points["N"]) != 1:
        raise PredictionError("rank takes one point (a single N, D or C each)")
    draws = np.column_stack([expected_loss_draws(f, points)[:, 0] for f in fits.values()])  # (S, groups)
    ranks = draws.argsort(axis=1).argsort(axis=1) + 1
    table = pd.DataFrame(
        {
            "group": list(fits),
            "loss_median": np.median(draws, axis=0),
            "p_best": np.mean(ranks == 1, axis=0),
            "mean_rank": ranks.mean(axis=0),
        }
    )
    return table.sort_values("mean_rank", ignore_index=True)
