"""Posterior predictions from saved draws, with numpy only (no model, no compilation)."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.special import ndtri, stdtrit
from threadpoolctl import threadpool_limits

from bayescale.calibration import Z90, PointScales, rescale
from bayescale.errors import PredictionError
from bayescale.laws import Law
from bayescale.stats import log_interval_stats

if TYPE_CHECKING:
    from bayescale.discrepancy import Fitted

#: Points per chunk: bounds memory at draws x chunk floats per array.
CHUNK = 500
#: Floating-point type of predictive draws.
DTYPE = np.float32
#: Threads computing chunks of draws (the cores of the machine, at most 4).
WORKERS = min(4, os.cpu_count() or 1)


def complete_inputs(
    law: Law, k: float, N: object = None, D: object = None, C: object = None, U: object = None
) -> dict[str, np.ndarray]:
    """Validate points and derive the third of N, D, C from the other two.

    ``U`` (unique tokens) is kept for laws that use it (the data-constrained law); for such a
    law a point without U has fresh data (U = D: one epoch), and a law without U ignores it.

    Returns
    -------
    dict
        Arrays ``N``, ``D``, ``C`` of one length (NaN where not derivable), and ``U`` for a law
        of unique tokens.

    Raises
    ------
    PredictionError
        For non-positive or non-finite values, mismatched lengths, or missing inputs.
    """
    given = {}
    for name, value in (("N", N), ("D", D), ("C", C), ("U", U)):
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
    if not set(given) - {"U"}:
        raise PredictionError(f"give the points to predict: law {law.name} needs {' and '.join(law.inputs)}")
    sizes = {len(a) for a in given.values()}
    if len(sizes) > 1:
        lengths = {k: len(v) for k, v in given.items()}
        raise PredictionError(f"N, D, C and U must have the same length, got {lengths}")
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
    if "U" in law.inputs:
        out["U"] = given["U"] if "U" in given else out["D"]
    missing = [x for x in law.inputs if np.isnan(out[x]).any()]
    if missing:
        raise PredictionError(
            f"law {law.name} needs {' and '.join(law.inputs)}; give {' and '.join(missing)} "
            "(any two of N, D, C give the third)"
        )
    return out


def n_points(points: Mapping[str, np.ndarray]) -> int:
    """The number of points in a mapping of equal-length input arrays."""
    return len(next(iter(points.values())))


def as_columns(params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Flat draws (S,) as columns (S, 1), ready to broadcast against points; numbers and columns pass through."""
    return {k: np.asarray(v, dtype=float)[:, None] if np.ndim(v) == 1 else v for k, v in params.items()}


def law_log_loss(
    law: Law, params: Mapping[str, np.ndarray], ref: Mapping[str, float], points: Mapping[str, np.ndarray]
) -> np.ndarray:
    """The law's expected log loss per draw and point (S, n), without discrepancy or noise.

    ``params`` are flat draws (S,) or already columns (:func:`as_columns`).
    """
    logx = {x: law.coordinate(x, points[x])[None, :] for x in law.inputs}
    return law.log_loss(as_columns(params), logx, ref, np)


def log_draws(
    law: Law,
    params: Mapping[str, np.ndarray],
    ref: Mapping[str, float],
    points: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    discrepancy: Fitted | None = None,
    scale: float | np.ndarray | PointScales = 1.0,
    independent: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Posterior draws of the log loss at ``points``, chunk by chunk.

    With a fitted ``discrepancy`` (:mod:`bayescale.discrepancy`), its draws are added to the
    law's and the new-run noise is the discrepancy stage's; without, the law's noise. A band
    ``scale`` other than 1 (:mod:`bayescale.calibration`; one per draw (S,), or per draw and
    point as :class:`~bayescale.calibration.PointScales`) scales the draws about their median;
    the latter's floor that grows with the distance beyond the runs then widens any band narrower
    than it (:func:`widen_to`: a normal deviate per draw, to the law's draws and a new run's alike).

    Each point's draws are exact draws of its own predictive distribution. Points share
    *common random numbers*: within one posterior draw, every point gets the same new-run
    noise deviate (and the same deviate for the discrepancy's top-up variance), so bands
    are smooth in N and D, free of Monte Carlo jitter between neighbouring points, and
    random numbers cost O(S) rather than O(S n). The draws are therefore marginal
    predictives per point, not a joint predictive of several new runs. The deviates are
    stratified (:func:`stratified_uniforms`, through the inverse CDFs): shared by every
    point, their Monte Carlo error would otherwise move all bands together.

    With ``independent``, every point gets its own deviates instead: the draws are then
    independent across points, and their Monte Carlo errors average out over many points
    -- what the leave-future-out calibration needs, which pools the errors of its held-out
    runs (:func:`bayescale.pipeline.leave_future_out`). It costs an inverse-CDF
    evaluation per draw and point: meant for tens to thousands of points.

    Draws are float32 (relative error 1e-7, far below any band; half the memory traffic of
    float64), computed on :data:`WORKERS` threads, chunk by chunk.

    Yields
    ------
    (log_law, log_new) : arrays of shape (S, chunk)
        The expected log loss (law plus discrepancy) and a new run's log loss (observation
        noise added), for consecutive chunks of :data:`CHUNK` points.
    """
    rows = {k: np.asarray(v, dtype=DTYPE)[None, :] for k, v in params.items()}
    noise_params = params if discrepancy is None else discrepancy.noise
    S = len(noise_params["sigma"])
    # common random numbers, stratified: one new-run noise and one discrepancy top-up deviate per draw
    nu = np.asarray(noise_params["nu"], dtype=float)
    sigma = np.asarray(noise_params["sigma"], dtype=float)
    t = stdtrit(nu, stratified_uniforms(S, rng))
    noise = (sigma * t).astype(DTYPE)[None, :]
    top_up = ndtri(stratified_uniforms(S, rng))
    slices = [slice(start, start + CHUNK) for start in range(0, n_points(points), CHUNK)]
    rngs = rng.spawn(len(slices)) if independent else [None] * len(slices)

    def chunk(sl: slice, own: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
        # computed point by point (n, S): medians and quantiles then run along contiguous memory
        logx = {x: law.coordinate(x, points[x][sl], DTYPE)[:, None] for x in law.inputs}
        mu = law.log_loss(rows, logx, ref, np)
        if discrepancy is not None:
            mu = mu + discrepancy.delta({x: points[x][sl] for x in points}, top_up if own is None else own).T
        if own is None:  # common random numbers
            new = mu + noise
        else:
            u = np.clip(own.random(mu.shape), np.finfo(float).tiny, None)
            new = mu + (sigma[None, :] * stdtrit(nu[None, :], u)).astype(DTYPE)
        s = scale.at(sl, DTYPE) if isinstance(scale, PointScales) else scale
        mu, new = rescale(mu, s, axis=1), rescale(new, s, axis=1)
        spread = scale.spread(sl, DTYPE) if isinstance(scale, PointScales) else None
        if spread is not None:  # the floor that grows with distance: the law's misfit, so both alike
            eps = drift[None, :] if own is None else own.standard_normal(mu.shape).astype(DTYPE)
            mu, new = widen_to(mu, spread, eps), widen_to(new, spread, eps)
        return mu.T, new.T

    # one stratified deviate per draw for the floor (drawn after the chunks' streams)
    grows = isinstance(scale, PointScales) and scale.growth is not None
    drift = ndtri(stratified_uniforms(S, rng)).astype(DTYPE) if grows else None
    yield from ordered_map(chunk, slices, rngs)


def widen_to(draws: np.ndarray, spread: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """Draws (n, S) widened so that their spread is at least ``spread`` (n, S): a band's own standard
    deviation (its 90% width over 2 x 1.645) that falls short of ``spread`` is topped up with
    ``eps`` (n, S or 1, S) times the shortfall in quadrature; a wider band is left as it is."""
    out = draws.copy()
    beyond = np.flatnonzero(spread.max(axis=1) > 0)  # only these points' bands can fall short
    lo, hi = np.quantile(draws[beyond], [0.05, 0.95], axis=1, keepdims=True)
    own = (hi - lo) / (2 * Z90)
    short = np.sqrt(np.maximum(spread[beyond] ** 2 - own**2, 0.0)).astype(draws.dtype)
    out[beyond] += short * (eps if eps.shape[0] == 1 else eps[beyond])
    return out


def stratified_uniforms(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniforms on (0, 1), one in each interval ``[i/n, (i+1)/n)``, in random order.

    Latin-hypercube sampling in one dimension: each is uniform, and their empirical
    quantiles are exact to ``1/n`` -- far below the Monte Carlo error of independent draws.
    """
    u = (rng.permutation(n) + rng.random(n)) / n
    return np.clip(u, np.finfo(float).tiny, 1.0 - np.finfo(float).epsneg)


def ordered_map[T](fn: Callable[..., T], *iterables: Iterable, workers: int | None = None) -> Iterator[T]:
    """``map(fn, *iterables)`` on a thread pool, in order, at most ``workers`` results ahead.

    NumPy releases the GIL in its array loops, so chunks of draws run in parallel; the
    window bounds memory to a few chunks however many points there are. While the pool
    works, BLAS is held to one thread: a multi-threaded BLAS product inside each worker (the
    discrepancy's basis products) would oversubscribe the cores -- 1.3 s instead of 0.9 s
    for 10,000 points on 2 cores. The limit is the process's until the map is exhausted.
    """
    workers = workers or WORKERS
    if workers <= 1:
        yield from map(fn, *iterables)
        return
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        for args in zip(*iterables, strict=True):
            pending.append(pool.submit(fn, *args))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def predict_table(
    law: Law,
    params: Mapping[str, np.ndarray],
    ref: Mapping[str, float],
    points: Mapping[str, np.ndarray],
    interval: float,
    rng: np.random.Generator,
    discrepancy: Fitted | None = None,
    scale: float | np.ndarray | PointScales = 1.0,
    independent: bool = False,
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
    scale : float or array (S,) or PointScales, default 1
        Band scale from leave-future-out calibration (per draw, or per draw and point):
        draws are scaled about their median.
    independent : bool, default False
        Independent deviates per point instead of common random numbers (:func:`log_draws`).

    Returns
    -------
    pandas.DataFrame
        ``N, D, C, median, lower, upper`` for a new run (observation noise included) and
        ``expected_median, expected_mean, expected_lower, expected_upper`` for the expected
        loss (law plus discrepancy). A new run has no mean: its noise is Student-t on log
        loss, and ``E[exp(t)]`` is infinite for every degree of freedom, so a sample mean of
        its draws would be a number the sample made up.
    """
    chunks = log_draws(law, params, ref, points, rng, discrepancy, scale, independent)
    return draws_table(chunks, points, interval, law.link)


def draws_table(
    chunks: Iterable[tuple[np.ndarray, np.ndarray]],
    points: Mapping[str, np.ndarray],
    interval: float,
    link: str = "log",
) -> pd.DataFrame:
    """The prediction table from chunks of ``(log_law, log_new)`` draws (as :func:`log_draws` yields).

    Columns as :func:`predict_table`; a mixture of several fits' draws is summarised alike.
    ``link``: the draws' scale (``log``: exponentiated; ``identity``: as they are).
    """
    if not 0 < interval < 1:
        raise PredictionError(f"interval must be between 0 and 1 (e.g. 0.9), got {interval}")

    def summarise(chunk: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
        log_law, log_new = chunk
        return {
            **log_interval_stats(log_new, interval, mean=False, link=link),
            **{f"expected_{k}": v for k, v in log_interval_stats(log_law, interval, link=link).items()},
        }

    columns: dict[str, list[np.ndarray]] = {}
    for stats in ordered_map(summarise, chunks):
        for name, col in stats.items():
            columns.setdefault(name, []).append(col)
    table = pd.DataFrame(dict(points))
    for name, parts in columns.items():
        table[name] = np.concatenate(parts)
    return table
