"""A simulator of training ladders from a known law: ground truth for the demo and the tests.

The design mimics an isoFLOP ladder: at each compute budget, model sizes spread evenly in
log N around the budget's compute-optimal size, each trained on ``D = C / (k N)`` tokens.
Observed loss is the law's loss times ``exp(sigma * t_nu)`` noise (Student-t on log loss,
the same noise model the fits assume), so fits of simulated ladders test recovery exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from bayescale.laws import chinchilla

#: The law behind the demo ladder: Epoch AI's refit of the Chinchilla runs (Besiroglu et al. 2024).
DEMO_PARAMS: dict[str, float] = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.348, "beta": 0.366}
#: Noise of the demo ladder: 1% on log loss, Student-t with 5 degrees of freedom.
DEMO_NOISE: dict[str, float] = {"sigma": 0.01, "nu": 5.0}
DEMO_BUDGETS: tuple[float, ...] = (1e17, 3e17, 1e18, 3e18, 1e19, 3e19, 1e20)
DEMO_SEED = 20240


def ladder_design(
    budgets: Sequence[float],
    sizes_per_budget: int = 6,
    spread: float = 1.2,
    k: float = 6.0,
    tokens_per_param: float = 20.0,
) -> pd.DataFrame:
    """Model sizes and token counts of an isoFLOP ladder.

    Parameters
    ----------
    budgets : sequence of float
        Compute budgets C in FLOPs.
    sizes_per_budget : int
        Model sizes per budget.
    spread : float
        Half-width in natural-log units of N around the budget's central size.
    k : float
        FLOPs per parameter per token.
    tokens_per_param : float
        Ratio D/N at the central size of each budget.

    Returns
    -------
    pandas.DataFrame
        Columns ``N``, ``D``, ``C``.
    """
    rows = []
    for C in budgets:
        n_center = np.sqrt(C / (k * tokens_per_param))
        for offset in np.linspace(-spread, spread, sizes_per_budget):
            N = float(np.round(n_center * np.exp(offset), -3))
            rows.append({"N": N, "D": C / (k * N), "C": float(C)})
    return pd.DataFrame(rows)


def simulate_runs(
    design: pd.DataFrame,
    params: Mapping[str, float],
    sigma: float = 0.01,
    nu: float = 5.0,
    seed: int = 0,
    law: Callable[..., np.ndarray] = chinchilla.loss,
) -> pd.DataFrame:
    """Add a noisy loss column to ``design`` from a known law.

    Parameters
    ----------
    design : pandas.DataFrame
        Columns the law needs (``N``, ``D``...).
    params : mapping
        The law's physical parameters (e.g. E, A, B, alpha, beta).
    sigma, nu : float
        Scale and degrees of freedom of the Student-t noise on log loss.
    seed : int
        Random seed.
    law : callable
        A mean function such as :func:`bayescale.laws.chinchilla.loss`.

    Returns
    -------
    pandas.DataFrame
        ``design`` with ``loss`` (observed) and ``true_loss`` columns.
    """
    rng = np.random.default_rng(seed)
    inputs = {c: design[c].to_numpy(dtype=float) for c in ("N", "D", "C", "X") if c in design}
    if law is chinchilla.loss:
        inputs.pop("C", None)
    true = law(**inputs, **params)
    out = design.copy()
    out["true_loss"] = true
    out["loss"] = true * np.exp(sigma * rng.standard_t(nu, size=len(design)))
    return out


def demo_ladder() -> pd.DataFrame:
    """Regenerate the embedded demo ladder (42 runs, 1e17-1e20 FLOPs) from its documented recipe."""
    runs = simulate_runs(ladder_design(DEMO_BUDGETS), DEMO_PARAMS, seed=DEMO_SEED, **DEMO_NOISE)
    return runs[["N", "D", "C", "loss"]]
