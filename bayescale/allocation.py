"""Compute-optimal allocation from posterior draws, with numpy only.

For each draw it finds the model size N and token count D that minimise the law's loss
on the isoFLOP line ``C = k N D``: in closed form where the law has one (Chinchilla), else
by a grid search refined by golden-section search over log N, vectorised over draws.
The loss along an isoFLOP line is unimodal in log N for every law here (a monotone
function of a sum of exponentials in log N), so the search finds the global minimum.

Also here: the tokens a fixed-size model needs to reach a loss, the local allocation
exponents N_opt ~ C^a, D_opt ~ C^b, and the inference-aware allocation of Sardana and
Frankle (2024): minimise ``k N D + k_inf N D_inf`` subject to reaching a target loss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from bayescale.errors import BayescaleError
from bayescale.laws import Law
from bayescale.predict import as_columns

#: Search range of log N (100 parameters to 1e17) and log D (1 to 1e30 tokens).
LOG_N_RANGE = (np.log(1e2), np.log(1e17))
LOG_D_RANGE = (0.0, np.log(1e30))
#: Smallest compute-optimal model size accepted as sensible (parameters).
MIN_SENSIBLE_N = 1e5
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0

Draws = Mapping[str, np.ndarray]


class AllocationError(BayescaleError, ValueError):
    """An allocation question that cannot be answered (law, budget or target out of range)."""


def check_law(law: Law) -> None:
    """Allocation needs a law of both N and D (and optionally U, unlimited here: see :mod:`bayescale.data_budget`)."""
    if set(law.inputs) - {"U"} != {"N", "D"}:
        raise AllocationError(
            f"allocation needs a law of N and D; law {law.name} uses only {', '.join(law.inputs)}. "
            "Fit chinchilla or kaplan to runs with N and D"
        )


def check_budgets(compute: object, name: str = "compute") -> np.ndarray:
    """Budgets as a 1-D float array; raise for non-positive or non-finite values."""
    try:
        arr = np.atleast_1d(np.asarray(compute, dtype=float))
    except (TypeError, ValueError):
        raise AllocationError(f"{name} must be numbers, got {compute!r}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise AllocationError(f"give at least one {name} value")
    if not np.isfinite(arr).all() or (arr <= 0).any():
        bad = arr[~(np.isfinite(arr) & (arr > 0))][0]
        raise AllocationError(f"{name} must be positive and finite, got {bad:g}")
    return arr


def log_loss_at(law: Law, draws: Draws, ref: Mapping[str, float], log_N: np.ndarray, log_D: np.ndarray) -> np.ndarray:
    """Log expected loss per draw (rows) at log N, log D of shape (S, G)."""
    return law.log_loss(as_columns(draws), {"N": log_N, "D": log_D}, ref, np)


def minimise(
    f: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray, grid: int = 160, iters: int = 90
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise a unimodal ``f`` per row over [lo, hi]: a grid, then golden-section search.

    Parameters
    ----------
    f : callable
        Maps x of shape (S, G) to values of shape (S, G), row by row.
    lo, hi : array of shape (S,)
        Bounds per row.

    Returns
    -------
    x : array (S,)
        The minimiser per row.
    at_edge : array of bool (S,)
        Rows whose minimum lies at a bound of the range (the optimum may lie outside).
    """
    t = np.linspace(0.0, 1.0, grid)
    x = lo[:, None] + (hi - lo)[:, None] * t[None, :]
    fx = f(x)
    fx = np.where(np.isnan(fx), np.inf, fx)
    i = np.argmin(fx, axis=1)
    rows = np.arange(len(lo))
    at_edge = (i == 0) | (i == grid - 1)
    a = x[rows, np.maximum(i - 1, 0)]
    b = x[rows, np.minimum(i + 1, grid - 1)]
    for _ in range(iters):
        c = b - _GOLDEN * (b - a)
        d = a + _GOLDEN * (b - a)
        fc, fd = f(np.stack([c, d], axis=1)).T
        left = fc <= fd
        b = np.where(left, d, b)
        a = np.where(left, a, c)
    return (a + b) / 2, at_edge


def isoflop_range(log_ck: float, compute: float) -> tuple[float, float]:
    """The range of log N searched on the isoFLOP line log N + log D = ``log_ck`` (N and D in range)."""
    lo = max(LOG_N_RANGE[0], log_ck - LOG_D_RANGE[1])
    hi = min(LOG_N_RANGE[1], log_ck - LOG_D_RANGE[0])
    if hi <= lo:
        raise AllocationError(f"compute {compute:g} FLOPs is outside any sensible model size and token count")
    return lo, hi


def isoflop_optimum(
    law: Law, draws: Draws, ref: Mapping[str, float], k: float, compute: float, closed_form: bool = True
) -> dict[str, np.ndarray]:
    """Compute-optimal N, D, tokens per parameter and loss per draw, for one budget.

    Parameters
    ----------
    law : Law
        A law of N and D.
    draws : mapping
        Flat posterior draws (S,) of the law's sampled and physical parameters.
    ref : mapping
        The law's log reference scales.
    k : float
        FLOPs per parameter per token.
    compute : float
        Budget C in FLOPs.
    closed_form : bool, default True
        Use the law's closed form when it has one; False forces the numerical path.

    Returns
    -------
    dict
        ``N_opt``, ``D_opt``, ``tokens_per_param``, ``loss_opt`` (arrays (S,)) and
        ``at_edge`` (draws whose optimum hit the search range).
    """
    check_law(law)
    log_ck = float(np.log(compute / k))
    size = len(next(v for v in draws.values() if np.ndim(v)))
    solved = law.optimum_closed_form(draws, log_ck) if closed_form else None
    if solved is not None:
        log_N, log_D = (np.broadcast_to(v, (size,)).astype(float) for v in solved)
        at_edge = np.zeros(size, dtype=bool)
    else:
        lo, hi = isoflop_range(log_ck, compute)
        log_N, at_edge = minimise(
            lambda x: log_loss_at(law, draws, ref, x, log_ck - x), np.full(size, lo), np.full(size, hi)
        )
        log_D = log_ck - log_N
    loss = np.exp(log_loss_at(law, draws, ref, log_N[:, None], log_D[:, None])[:, 0])
    return {
        "N_opt": np.exp(log_N),
        "D_opt": np.exp(log_D),
        "tokens_per_param": np.exp(log_D - log_N),
        "loss_opt": loss,
        "at_edge": at_edge,
    }


def tokens_for_loss(
    law: Law,
    draws: Draws,
    ref: Mapping[str, float],
    N: np.ndarray | float,
    target: np.ndarray | float,
    iters: int = 100,
) -> np.ndarray:
    """Tokens D at which a model of N parameters reaches loss ``target``, per draw.

    ``N`` and ``target`` broadcast against draws of shape (S,) or (S, G). Draws for which the
    target lies below the loss of infinite data give ``inf``.
    """
    check_law(law)
    N = np.asarray(N, dtype=float)
    target = np.asarray(target, dtype=float)
    size = len(next(v for v in draws.values() if np.ndim(v)))
    shape = np.broadcast_shapes((size,) if N.ndim < 2 and target.ndim < 2 else (size, 1), N.shape, target.shape)
    nat = {k: (np.asarray(v).reshape((-1,) + (1,) * (len(shape) - 1)) if np.ndim(v) else v) for k, v in draws.items()}
    closed = law.tokens_closed_form(nat, N, target)
    if closed is not None:
        return np.broadcast_to(closed, shape).astype(float)
    two_d = len(shape) == 2
    log_N = np.broadcast_to(np.log(N), shape).reshape(size, -1)
    log_t = np.broadcast_to(np.log(target), shape).reshape(size, -1)
    lo = np.full(log_N.shape, LOG_D_RANGE[0])
    hi = np.full(log_N.shape, LOG_D_RANGE[1])
    reachable = log_loss_at(law, draws, ref, log_N, hi) < log_t
    for _ in range(iters):  # loss decreases in D: bisection on log D
        mid = (lo + hi) / 2
        above = log_loss_at(law, draws, ref, log_N, mid) > log_t
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    D = np.where(reachable, np.exp((lo + hi) / 2), np.inf)
    return D if two_d else D.reshape(shape)


def inference_aware(
    law: Law,
    draws: Draws,
    ref: Mapping[str, float],
    k: float,
    compute: float,
    inference_tokens: float,
    target_loss: float | None = None,
    inference_flops: float = 2.0,
    optimum: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Inference-aware allocation (Sardana and Frankle 2024), per draw.

    Minimises lifetime FLOPs ``k N D + inference_flops * N * inference_tokens`` subject to
    reaching ``target_loss`` -- by default, per draw, the loss of the compute-optimal model
    at ``compute``. ``optimum`` is that model from :func:`isoflop_optimum`, if already computed.

    Returns
    -------
    dict
        ``N``, ``D``, ``tokens_per_param``, ``train_flops``, ``total_flops``, ``target_loss``
        and ``saving``: the fraction of lifetime FLOPs saved against serving the
        compute-optimal model at ``compute`` (which also reaches the target when it is the
        default one).
    """
    check_law(law)
    if not (np.isfinite(inference_tokens) and inference_tokens >= 0):
        raise AllocationError(f"inference tokens must be zero or positive, got {inference_tokens:g}")
    opt = isoflop_optimum(law, draws, ref, k, compute) if optimum is None else optimum
    target = opt["loss_opt"] if target_loss is None else np.full_like(opt["loss_opt"], float(target_loss))
    size = len(target)

    def log_cost(x: np.ndarray) -> np.ndarray:
        N = np.exp(x)
        D = tokens_for_loss(law, draws, ref, N, target[:, None])
        with np.errstate(over="ignore", invalid="ignore"):
            return np.log(k * N * D + inference_flops * N * inference_tokens)

    log_N, _ = minimise(log_cost, np.full(size, LOG_N_RANGE[0]), np.full(size, LOG_N_RANGE[1]))
    N = np.exp(log_N)
    D = tokens_for_loss(law, draws, ref, N[:, None], target[:, None])[:, 0]
    train = k * N * D
    total = train + inference_flops * N * inference_tokens
    baseline = k * opt["N_opt"] * opt["D_opt"] + inference_flops * opt["N_opt"] * inference_tokens
    if target_loss is None:
        saving = 1 - total / baseline
    else:  # the compute-optimal model at `compute` need not reach a user's target
        saving = np.full(size, np.nan)
    return {
        "N": N,
        "D": D,
        "tokens_per_param": D / N,
        "train_flops": train,
        "total_flops": total,
        "target_loss": target,
        "saving": saving,
    }


def allocation_exponents(
    law: Law, draws: Draws, ref: Mapping[str, float], k: float, compute: float
) -> dict[str, np.ndarray]:
    """Local exponents a = d log N_opt / d log C and b = d log D_opt / d log C, per draw.

    Central differences over a factor of 10 around ``compute`` (exact for laws whose
    optimum is a power law in C, such as Chinchilla and Kaplan).
    """
    lo = isoflop_optimum(law, draws, ref, k, compute / np.sqrt(10))
    hi = isoflop_optimum(law, draws, ref, k, compute * np.sqrt(10))
    a = np.log(hi["N_opt"] / lo["N_opt"]) / np.log(10)
    return {"a": a, "b": 1 - a}


# --- tables ------------------------------------------------------------------------------

QUANTITIES = ("N_opt", "D_opt", "tokens_per_param", "loss_opt")


def _stats_columns(name: str, values: np.ndarray, interval: float) -> dict[str, float]:
    from bayescale.stats import interval_stats

    return {f"{name}_{k}": float(v) for k, v in interval_stats(values, interval).items()}


def check_sensible(compute: float, opt: Mapping[str, np.ndarray]) -> None:
    """Raise when the optimum for a budget falls outside any sensible model size."""
    median_N = float(np.median(opt["N_opt"]))
    if median_N < MIN_SENSIBLE_N or np.mean(opt["at_edge"]) > 0.5:
        raise AllocationError(
            f"compute {compute:g} FLOPs is too small: its compute-optimal model would have about {median_N:.3g} "
            f"parameters, below any sensible model size ({MIN_SENSIBLE_N:g}); give a larger budget"
        )


def optimal_table(
    law: Law,
    draws: Draws,
    ref: Mapping[str, float],
    k: float,
    compute: np.ndarray,
    interval: float,
    inference_tokens: float | None = None,
    target_loss: float | None = None,
    inference_flops: float = 2.0,
) -> "pd.DataFrame":  # noqa: F821, UP037
    """One row per budget: posterior median, mean and interval of each allocation quantity."""
    import pandas as pd

    rows = []
    for C in check_budgets(compute):
        opt = isoflop_optimum(law, draws, ref, k, C)
        check_sensible(C, opt)
        row: dict[str, float] = {"compute": float(C)}
        for q in QUANTITIES:
            row.update(_stats_columns(q, opt[q], interval))
        if inference_tokens is not None:
            ia = inference_aware(law, draws, ref, k, C, inference_tokens, target_loss, inference_flops, optimum=opt)
            row["inference_tokens"] = float(inference_tokens)
            for q in ("N", "D", "tokens_per_param", "total_flops", "saving"):
                row.update(_stats_columns(f"inf_aware_{q}", ia[q], interval))
        rows.append(row)
    return pd.DataFrame(rows)


def probability(draws: Draws, quantity: str, *, above: float | None = None, below: float | None = None) -> float:
    """Share of ``draws[quantity]`` above (or below) a value: a posterior probability.

    Raises
    ------
    ValueError
        For an unknown quantity, or unless exactly one of ``above`` and ``below`` is given.
    """
    if quantity not in draws:
        raise ValueError(f"unknown quantity {quantity!r}; choose one of {', '.join(draws)}")
    if (above is None) == (below is None):
        raise ValueError("give exactly one of above= or below=")
    x = draws[quantity]
    return float(np.mean(x > above) if above is not None else np.mean(x < below))
