"""Backtests: fit on the runs that are not held out, predict the held-out ones, score the bands.

Hold-out specifications (``holdout=``):

- ``top-compute:F`` -- the top share F of runs by compute (budgets kept whole), e.g. ``top-compute:0.2``;
- ``largest-N:K`` -- every run of the K largest model sizes;
- a condition ``X>=V`` (or ``>``, ``<=``, ``<``) on N, D or C, e.g. ``C>=1e21``;
- ``rolling`` -- ``top-compute`` at several cutoffs (0.1, 0.2, 0.3, 0.4), one fit each.

Metrics per split and level (as in ``../shared/tools/eval_tasks.py``): coverage, median and
max absolute relative error of the median, median relative width, and the interval score
(Gneiting and Raftery 2007) relative to the truth, whose median is reported -- lower is
better; it rewards narrow bands and punishes misses by 2/alpha times the miss.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayescale.data import EXTRA_INPUTS, INPUTS, Runs
from bayescale.splits import BacktestError, holdout_masks

log = logging.getLogger("bayescale")

LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)
PIT_BINS = 10


def interval_metrics(
    truth: np.ndarray, median: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float
) -> dict[str, float]:
    """Coverage, point error, width and interval score of central ``level`` intervals.

    Returns
    -------
    dict
        ``coverage`` (share of truths inside), ``median_are`` and ``max_are`` (absolute
        relative error of the median), ``median_width`` (median of (upper - lower) /
        median) and ``interval_score`` (median over runs of the interval score / truth).
    """
    truth, median, lower, upper = (np.asarray(a, dtype=float) for a in (truth, median, lower, upper))
    alpha = 1.0 - level
    are = np.abs(median - truth) / truth
    score = (upper - lower) + 2 / alpha * np.clip(lower - truth, 0, None) + 2 / alpha * np.clip(truth - upper, 0, None)
    return {
        "coverage": float(np.mean((truth >= lower) & (truth <= upper))),
        "median_are": float(np.median(are)),
        "max_are": float(np.max(are)),
        "median_width": float(np.median((upper - lower) / median)),
        "interval_score": float(np.median(score / truth)),
    }


def pit_histogram(pit: np.ndarray, bins: int = PIT_BINS) -> np.ndarray:
    """Counts of PIT values in ``bins`` equal bins of [0, 1]."""
    return np.histogram(np.clip(pit, 0, 1), bins=bins, range=(0.0, 1.0))[0]


@dataclass
class BacktestResult:
    """What a backtest measured.

    Attributes
    ----------
    metrics : pandas.DataFrame
        One row per split and level (and ``all`` pooled over splits when there are several):
        ``split, level, n, coverage, median_are, max_are, median_width, interval_score``.
    predictions : pandas.DataFrame
        One row per held-out run and split: ``split, N, D, C, loss, median, pit`` and
        ``lower_<level>``, ``upper_<level>``.
    """

    metrics: pd.DataFrame
    predictions: pd.DataFrame

    @property
    def pit_histogram(self) -> np.ndarray:
        """PIT counts in ten bins over all held-out runs (flat when calibrated)."""
        return pit_histogram(self.predictions["pit"].to_numpy())


def backtest(
    runs: Runs | pd.DataFrame | str,
    holdout: str = "top-compute:0.2",
    law: str | None = None,
    priors: Mapping[str, Any] | None = None,
    levels: Sequence[float] = LEVELS,
    **fit_kwargs: Any,
) -> BacktestResult:
    """Fit on the runs not held out, predict the held-out ones, and score the bands.

    Parameters
    ----------
    runs : Runs, DataFrame or path
        All runs.
    holdout : str
        Which runs to hold out (see the module docstring); ``rolling`` repeats at several cutoffs.
    law, priors
        As for :func:`bayescale.fit`.
    levels : sequence of float
        Central interval probabilities to score.
    **fit_kwargs
        Passed to :func:`bayescale.fit` (draws, tune, chains, seed, discrepancy...).

    Returns
    -------
    BacktestResult
    """
    from bayescale.model import MIN_RUNS
    from bayescale.pipeline import fit
    from bayescale.sampling import resolve

    runs, law_obj = resolve(runs, law)
    formula = law_obj.is_formula  # predictions at a table of its inputs
    min_runs = MIN_RUNS
    splits = holdout_masks(runs, holdout)
    metric_rows, prediction_parts = [], []
    for i, (name, held) in enumerate(splits, start=1):
        if held.sum() == 0:
            raise BacktestError(f"hold-out {name!r} holds out no run")
        if (~held).sum() < min_runs:
            raise BacktestError(
                f"hold-out {name!r} leaves {(~held).sum()} runs to fit; a fit needs at least {min_runs}"
            )
        train, test = runs.subset(~held), runs.subset(held)
        log.info(
            "backtest split %d/%d (%s): fitting on %d runs, predicting %d", i, len(splits), name, len(train), len(test)
        )
        result = fit(train, law=law_obj, priors=priors, **fit_kwargs)
        if formula:
            inputs = {"points": {x: test.values(x) for x in law_obj.inputs}}
        else:
            inputs = {x: test.values(x) for x in (*INPUTS, *EXTRA_INPUTS) if test.has(x)}
        part = pd.DataFrame({"split": name, **{x: test.values(x) for x in test.inputs}, "loss": test.loss})
        for level in levels:
            pred = result.predict(**inputs, interval=level)
            part["median"] = pred["median"].to_numpy()
            part[f"lower_{level:g}"] = pred["lower"].to_numpy()
            part[f"upper_{level:g}"] = pred["upper"].to_numpy()
            metric_rows.append(
                {
                    "split": name,
                    "level": level,
                    "n": len(test),
                    **interval_metrics(
                        test.loss, part["median"], part[f"lower_{level:g}"], part[f"upper_{level:g}"], level
                    ),
                }
            )
        part["pit"] = result.pit(**inputs, loss=test.loss)
        prediction_parts.append(part)
    predictions = pd.concat(prediction_parts, ignore_index=True)
    metrics = pd.DataFrame(metric_rows)
    if len(splits) > 1:
        for level in levels:
            metrics.loc[len(metrics)] = {
                "split": "all",
                "level": level,
                "n": len(predictions),
                **interval_metrics(
                    predictions["loss"],
                    predictions["median"],
                    predictions[f"lower_{level:g}"],
                    predictions[f"upper_{level:g}"],
                    level,
                ),
            }
    return BacktestResult(metrics=metrics, predictions=predictions)
