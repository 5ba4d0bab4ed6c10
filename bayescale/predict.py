"""Posterior predictions from saved draws, with numpy only (no model, no compilation)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayescale.calibration import rescale
from bayescale.errors import PredictionError
from bayescale.laws import Law
from bayescale.stats import interval_stats

if TYPE_CHECKING:
    from bayescale.discrepancy import Fitted

#: Points per chunk: bounds memory at draws x chunk floats per array.
CHUNK = 2000


def complete_inputs(law: Law, k: float, N: object = None, D: object = None, C: object = None) -> dict[str, np.ndarray]:
    """Validate points and derive the third of N, D, C from the other two.

    Returns
    -------
    dict
        Arrays ``N``, ``D``, ``C`` of one length (NaN where not derivable).

    Raises
    ------
    PredictionError
        For non-positive or non-finite values, mismatched lengths, or missing inputs.
    """
    given = {}
    for name, value in (("N", N), ("D", D), ("C", C)):
        if value is None:
            continue
        try:
            arr = np.atleast_1d(np.asarray(value, dtype=float))
        except (TypeError, ValueError):
            raise PredictionError(f"{name} must be numeric, got {value!r}") from None
        if arr.ndim != 1:
            raise PredictionError(f"{name} must be a number or a 1-D array")
        if not np.isfinite(arr).all():
            raise PredictionError(
                f"{name} has a missing or infinite value at position {int(np.argmin(np.isfinite(arr)))}"
            )
        if (arr <= 0).any():
            i = int(np.argmax(arr <= 0))
            raise PredictionError(f"{name} must be positive; position {i} is {arr[i]:g}")
        given[name] = arr
    if not given:
        raise PredictionError(f"give the points to predict: law {law.name} needs {' and '.join(law.inputs)}")
    sizes = {len(a) for a in given.values()}
    if len(sizes) > 1:
        raise PredictionError(f"N, D and C must have the same length, got { ({k: len(v) for k, v in given.items()}) }")
    n = sizes.pop()
    nan = np.full(n, np.nan)
    N_, D_, C_ = given.get("N"), given.get("D"), given.get("C")
    if C_ is None and N_ is not None and D_ is not None:
        C_ = k * N_ * D_
    if D_ is None and N_ is not None and C_ is not None:
        D_ = C_ / (k * N_)
    if N_ is None and D_ is not None and C_ is not None:
        N_ = C_ / (k * D_)
    out = {"N": N_ if N_ is not None else nan, "D": D_ if D_ is not None else nan, "C": C_ if C_ is not None else nan}
    missing = [x for x in law.inputs if np.isnan(out[x]).any()]
    if missing:
        raise PredictionError(
            f"law {law.name} needs {' and '.join(law.inputs)}; give {' and '.join(missing)} "
            "(any two of N, D, C give the third)"
        )
    return out


def interval_columns(draws: np.ndarray, interval: float, prefix: str) -> dict[str, np.ndarray]:
    """Median, mean and interval of draws (S, n) per point, as columns named with ``prefix``."""
    return {f"{prefix}{k}": v for k, v in interval_stats(draws, interval).items()}


def as_columns(params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Flat draws (S,) as columns (S, 1), ready to broadcast against points; numbers and columns pass through."""
    return {k: np.asarray(v, dtype=float)[:, None] if np.ndim(v) == 1 else v for k, v in params.items()}


def law_log_loss(
    law: Law, params: Mapping[str, np.ndarray], ref: Mapping[str, float], points: Mapping[str, np.ndarray]
) -> np.ndarray:
    """The law's expected log loss per draw and point (S, n), without discrepancy or noise.

    ``params`` are flat draws (S,) or already columns (:func:`as_columns`).
    """
    logx = {x: np.log(np.asarray(points[x], dtype=float))[None, :] for x in law.inputs}
    return law.log_loss(as_columns(params), logx, ref, np)


def log_draws(
    law: Law,
    params: Mapping[str, np.ndarray],
    ref: Mapping[str, float],
    points: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    discrepancy: Fitted | None = None,
    scale: float | np.ndarray = 1.0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Posterior draws of the log loss at ``points``, chunk by chunk.

    With a fitted ``discrepancy`` (:mod:`bayescale.discrepancy`), its draws are added to the
    law's and the new-run noise is the discrepancy stage's; without, the law's noise. A band
    ``scale`` other than 1 (:mod:`bayescale.calibration`; one per draw (S,) or per draw and
    point (S, n)) scales the draws about their median.

    Yields
    ------
    (log_law, log_new) : arrays of shape (S, chunk)
        The expected log loss (law plus discrepancy) and a new run's log loss (observation
        noise added), for consecutive chunks of :data:`CHUNK` points.
    """
    p = as_columns(params)
    noise = p if discrepancy is None else as_columns(discrepancy.noise)
    n = len(points["N"])
    for start in range(0, n, CHUNK):
        sl = slice(start, start + CHUNK)
        mu = law_log_loss(law, p, ref, {x: points[x][sl] for x in law.inputs})
        if discrepancy is not None:
            mu = mu + discrepancy.delta({x: points[x][sl] for x in points}, rng)
        new = mu + noise["sigma"] * rng.standard_t(noise["nu"], size=mu.shape)
        s = scale[:, sl] if np.ndim(scale) == 2 else scale
        yield rescale(mu, s), rescale(new, s)


def predict_table(
    law: Law,
    params: Mapping[str, np.ndarray],
    ref: Mapping[str, float],
    points: Mapping[str, np.ndarray],
    interval: float,
    rng: np.random.Generator,
    discrepancy: Fitted | None = None,
    scale: float | np.ndarray = 1.0,
) -> pd.DataFrame:
    """Predicted loss of new runs at ``points``.

    Parameters
    ----------
    law : Law
    params : mapping
        Flat posterior draws of the law's parameters and ``sigma``, ``nu`` (shape ``(S,)``).
    ref : mapping
        The law's log reference scales.
    points : mapping
        Arrays ``N``, ``D``, ``C`` from :func:`complete_inputs`.
    interval : float
        Central probability of the equal-tailed interval.
    rng : numpy.random.Generator
        Source of the observation-noise draws.
    discrepancy : bayescale.discrepancy.Fitted, optional
        The fitted model discrepancy, added to both the new-run and the expected loss.
    scale : float or array (S,) or (S, n), default 1
        Band scale from leave-future-out calibration (per draw, or per draw and point):
        draws are scaled about their median.

    Returns
    -------
    pandas.DataFrame
        ``N, D, C, median, mean, lower, upper`` for a new run (observation noise included)
        and ``expected_median, expected_mean, expected_lower, expected_upper`` for the
        expected loss (law plus discrepancy).
    """
    return draws_table(log_draws(law, params, ref, points, rng, discrepancy, scale), points, interval)


def draws_table(
    chunks: Iterable[tuple[np.ndarray, np.ndarray]], points: Mapping[str, np.ndarray], interval: float
) -> pd.DataFrame:
    """The prediction table from chunks of ``(log_law, log_new)`` draws (as :func:`log_draws` yields).

    Columns as :func:`predict_table`; a mixture of several fits' draws is summarised alike.
    """
    if not 0 < interval < 1:
        raise PredictionError(f"interval must be between 0 and 1 (e.g. 0.9), got {interval}")
    columns: dict[str, list[np.ndarray]] = {}
    for log_law, log_new in chunks:
        with np.errstate(over="ignore"):  # far tails of heavy-tailed noise overflow to inf: quantiles are unaffected
            draws_new, draws_law = np.exp(log_new), np.exp(log_law)
        for name, col in {
            **interval_columns(draws_new, interval, ""),
            **interval_columns(draws_law, interval, "expected_"),
        }.items():
            columns.setdefault(name, []).append(col)
    table = pd.DataFrame({x: points[x] for x in ("N", "D", "C")})
    for name, parts in columns.items():
        table[name] = np.concatenate(parts)
    return table
