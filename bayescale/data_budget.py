"""Allocation when unique data, not compute, binds: the data-constrained law's optimum per draw.

With a budget C and U unique tokens, a model of N parameters trains on D = C / (k N) tokens,
that is D / U epochs. For each posterior draw this module finds the N that minimises the
data-constrained law's loss on that isoFLOP line (a grid refined by golden-section search,
as :func:`bayescale.allocation.minimise`), and compares it with the optimum of unlimited
fresh data at the same budget: the loss the data wall costs. It also answers how many
epochs are worth running: the epoch count beyond which another epoch adds less than a share
``worth`` of the first epoch's effective data (:func:`bayescale.laws.data_constrained.epochs_worth`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from bayescale.allocation import (
    AllocationError,
    check_budgets,
    check_sensible,
    isoflop_optimum,
    isoflop_range,
    minimise,
)
from bayescale.laws import Law
from bayescale.laws.data_constrained import epochs_worth
from bayescale.predict import as_columns
from bayescale.stats import interval_stats

#: Quantities of :func:`constrained_optimum`, in table order.
QUANTITIES = (
    "N_opt",
    "D_opt",
    "epochs",
    "tokens_per_param",
    "loss_opt",
    "loss_unlimited",
    "loss_lost",
    "epochs_worth",
)


def check_law(law: Law) -> None:
    """Allocation under a unique-token budget needs a law of unique tokens."""
    if "U" not in law.inputs:
        raise AllocationError(
            f"law {law.name} ignores unique tokens, so a unique-token budget changes nothing in it; "
            "fit the runs (with a U column) with --law data-constrained"
        )


def constrained_optimum(
    law: Law,
    draws: Mapping[str, np.ndarray],
    ref: Mapping[str, float],
    k: float,
    compute: float,
    unique_tokens: float,
    worth: float = 0.5,
) -> dict[str, np.ndarray]:
    """Per draw, the loss-minimising N and D at budget ``compute`` with ``unique_tokens`` unique tokens.

    Parameters
    ----------
    law : Law
        A law of N, D and U (:class:`~bayescale.laws.data_constrained.DataConstrained`).
    draws : mapping
        Flat posterior draws (S,) of the law's parameters.
    ref : mapping
        The law's log reference scales.
    k : float
        FLOPs per parameter per token.
    compute : float
        Budget C in FLOPs.
    unique_tokens : float
        Unique tokens available, U.
    worth : float, default 0.5
        Share of the first epoch's value below which another epoch is not worth running.

    Returns
    -------
    dict of arrays (S,)
        ``N_opt``, ``D_opt``, ``epochs`` (D_opt / U), ``tokens_per_param``, ``loss_opt``;
        ``loss_unlimited`` (the compute-optimal loss with unlimited fresh data) and
        ``loss_lost`` (their difference, >= 0 up to search tolerance); ``epochs_worth``; and
        ``at_edge`` (draws whose optimum hit the search range).
    """
    check_law(law)
    U = float(check_budgets(unique_tokens, "unique tokens")[0])
    log_ck, log_U = float(np.log(compute / k)), float(np.log(U))
    size = len(draws["alpha"])
    lo, hi = isoflop_range(log_ck, compute)
    p = as_columns(draws)

    def log_loss(log_N: np.ndarray) -> np.ndarray:
        return law.log_loss(p, {"N": log_N, "D": log_ck - log_N, "U": np.full_like(log_N, log_U)}, ref, np)

    log_N, at_edge = minimise(log_loss, np.full(size, lo), np.full(size, hi))
    loss = np.exp(log_loss(log_N[:, None])[:, 0])
    unlimited = isoflop_optimum(law, draws, ref, k, compute)
    D = np.exp(log_ck - log_N)
    return {
        "N_opt": np.exp(log_N),
        "D_opt": D,
        "epochs": D / U,
        "tokens_per_param": D / np.exp(log_N),
        "loss_opt": loss,
        "loss_unlimited": unlimited["loss_opt"],
        "loss_lost": loss - unlimited["loss_opt"],
        "epochs_worth": epochs_worth(draws["R_D_star"], worth),
        "at_edge": at_edge,
    }


def constrained_table(
    law: Law,
    draws: Mapping[str, np.ndarray],
    ref: Mapping[str, float],
    k: float,
    compute: np.ndarray,
    unique_tokens: float,
    interval: float,
    worth: float = 0.5,
) -> pd.DataFrame:
    """One row per budget: ``compute``, ``unique_tokens``, ``worth`` and median, mean and interval
    of each of :data:`QUANTITIES`."""
    rows = []
    for C in check_budgets(compute):
        opt = constrained_optimum(law, draws, ref, k, C, unique_tokens, worth)
        check_sensible(C, opt)
        row: dict[str, float] = {"compute": float(C), "unique_tokens": float(unique_tokens), "worth": float(worth)}
        for q in QUANTITIES:
            row.update({f"{q}_{s}": float(v) for s, v in interval_stats(opt[q], interval).items()})
        rows.append(row)
    return pd.DataFrame(rows)
