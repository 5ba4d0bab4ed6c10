"""The Hoffmann/Epoch recipe, as a baseline: Huber loss on log L, L-BFGS-B from a grid, bootstrap.

Hoffmann et al. (2022) Approach 3 as refitted by Besiroglu et al. (2024): minimise the Huber
loss (delta = 1e-3) of log L_pred - log L with log L_pred = LSE(a - alpha log N, b - beta log D, e),
A = exp(a), B = exp(b), E = exp(e), by L-BFGS-B from the grid a, b in {0, 5, ..., 25},
e in {-1, -0.5, ..., 1}, alpha, beta in {0, 0.5, ..., 2}; uncertainty by bootstrapping runs.

Two shortcuts, for time on 2 cores, stated here: the full-data fit runs L-BFGS-B from the 50 grid
points with the lowest objective (of 4,500); each bootstrap refit starts from the full-data optimum.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

DELTA = 1e-3
GRID = np.array(
    list(
        itertools.product(
            np.arange(0, 30, 5),
            np.arange(0, 30, 5),
            np.arange(-1, 1.5, 0.5),
            np.arange(0, 2.5, 0.5),
            np.arange(0, 2.5, 0.5),
        )
    ),
    dtype=float,
)
N_STARTS = 50


def log_pred(theta: np.ndarray, log_N: np.ndarray, log_D: np.ndarray) -> np.ndarray:
    """Log predicted loss for parameters (a, b, e, alpha, beta); theta may be (5,) or (K, 5)."""
    t = np.atleast_2d(theta)
    a, b, e, alpha, beta = (t[:, i : i + 1] for i in range(5))
    terms = np.stack([a - alpha * log_N, b - beta * log_D, np.broadcast_to(e, (t.shape[0], log_N.size))])
    out = logsumexp(terms, axis=0)
    return out[0] if np.ndim(theta) == 1 else out


def huber(r: np.ndarray) -> np.ndarray:
    """Huber loss with delta = 1e-3."""
    a = np.abs(r)
    return np.where(a <= DELTA, 0.5 * r**2, DELTA * (a - 0.5 * DELTA))


def _objective(theta: np.ndarray, log_N: np.ndarray, log_D: np.ndarray, log_L: np.ndarray) -> tuple[float, np.ndarray]:
    a, b, e, alpha, beta = theta
    t1, t2 = a - alpha * log_N, b - beta * log_D
    lse = logsumexp(np.stack([t1, t2, np.full_like(t1, e)]), axis=0)
    r = lse - log_L
    dh = np.clip(r, -DELTA, DELTA)  # derivative of the Huber loss
    w1, w2, w3 = np.exp(t1 - lse), np.exp(t2 - lse), np.exp(e - lse)
    grad = np.array(
        [np.sum(dh * w1), np.sum(dh * w2), np.sum(dh * w3), np.sum(-dh * w1 * log_N), np.sum(-dh * w2 * log_D)]
    )
    return float(np.sum(huber(r))), grad


def fit_one(log_N: np.ndarray, log_D: np.ndarray, log_L: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Best L-BFGS-B solution over ``starts``."""
    best, best_val = starts[0], np.inf
    for x0 in starts:
        res = minimize(_objective, x0, args=(log_N, log_D, log_L), jac=True, method="L-BFGS-B")
        if res.fun < best_val:
            best, best_val = res.x, res.fun
    return best


def fit_recipe(N: np.ndarray, D: np.ndarray, L: np.ndarray, n_boot: int = 200, seed: int = 0, n_starts: int = N_STARTS):
    """Full-data fit from the ``n_starts`` best grid points (all 4,500 with ``len(GRID)``) and ``n_boot``
    bootstrap refits; returns (theta, boot_thetas, boot_residuals)."""
    log_N, log_D, log_L = np.log(N), np.log(D), np.log(L)
    grid_obj = np.sum(huber(log_pred(GRID, log_N, log_D) - log_L[None, :]), axis=1)
    starts = GRID[np.argsort(grid_obj)[:n_starts]]
    theta = fit_one(log_N, log_D, log_L, starts)
    rng = np.random.default_rng(seed)
    boots, resid = [], []
    for _ in range(n_boot):
        i = rng.integers(0, len(L), len(L))
        th = fit_one(log_N[i], log_D[i], log_L[i], theta[None, :])
        boots.append(th)
        resid.append(log_L[i] - log_pred(th, log_N[i], log_D[i]))
    return theta, np.array(boots), resid


def bands(
    boots: np.ndarray,
    resid: list[np.ndarray],
    N: np.ndarray,
    D: np.ndarray,
    level: float,
    with_residuals: bool,
    seed: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, median, upper) at (N, D): bootstrap percentiles, optionally with resampled residuals added."""
    rng = np.random.default_rng(seed)
    pred = log_pred(boots, np.log(N), np.log(D))  # (B, n)
    if with_residuals:
        pred = pred + np.stack([rng.choice(r, size=pred.shape[1]) for r in resid])
    q = np.quantile(np.exp(pred), [(1 - level) / 2, 0.5, (1 + level) / 2], axis=0)
    return q[0], q[1], q[2]
