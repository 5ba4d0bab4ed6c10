"""Data-constrained law (Muennighoff et al. 2023): Chinchilla on *effective* data and parameters.

    L(N, D, U) = E + A / N'^alpha + B / D'^beta

Repeated tokens are worth less than fresh ones. With U unique tokens and D = U (1 + R_D)
tokens seen (R_D = D/U - 1 repeated epochs), the effective data are

    D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)),  U_D = min(U, D),

which grow like D for R_D << R_D* and saturate at U_D (1 + R_D*): R_D* is the number of
repeated epochs after which another one is worth 1/e of the first repetition. Likewise
parameters beyond what the unique data can use decay in value:

    N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)),  R_N = N / U_N - 1,

with U_N = min(N, N_opt(U_D)) and N_opt(U_D) the model size whose compute-optimal data are
U_D -- here from the law's own A, B, alpha, beta (where alpha A / N^alpha = beta B / U_D^beta),
so the whole law is fitted at once rather than in two stages as in the paper.

One deliberate difference from the paper's code: the excess-parameter term applies only to
runs that repeat data (D > U). Without repetition the law *is* Chinchilla, also for models
larger than their tokens' compute-optimal size, which the Chinchilla isoFLOP data describe
without any decay. (On the paper's 182-run fit set with its own coefficients, the one-epoch
runs' log-loss RMSE is 0.127 with the gate and 0.158 without; see docs/data-constrained.md.)

A point without U (``logx`` lacks ``"U"``) has unlimited unique data: the law is Chinchilla.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayescale.data import Runs
from bayescale.errors import LawError
from bayescale.laws._base import Array, exponent_prior, log_E, log_sum_exp
from bayescale.laws.chinchilla import Chinchilla
from bayescale.priors import Prior

#: Prior median of R_D* and R_N* (repeated epochs / excess-parameter ratio for a 1/e decay).
R_STAR_MEDIAN = 10.0
#: Prior log-scale spread of R_D* and R_N*: a 90% prior interval of about 1.4 to 72.
R_STAR_SPREAD = 1.2


def loss(
    N: np.ndarray,
    D: np.ndarray,
    U: np.ndarray,
    E: float,
    A: float,
    B: float,
    alpha: float,
    beta: float,
    R_D_star: float,
    R_N_star: float,
) -> np.ndarray:
    """Expected loss of the data-constrained law from physical parameters (numpy), as written in the paper.

    Parameters
    ----------
    N, D, U : array_like
        Parameters, tokens seen and unique tokens (D / U epochs).
    E, A, B, alpha, beta : float
        Chinchilla's coefficients, applied to effective parameters N' and data D'.
    R_D_star, R_N_star : float
        Decay constants of repeated data and of excess parameters.
    """
    N, D, U = (np.asarray(v, dtype=float) for v in (N, D, U))
    U_D = np.minimum(U, D)
    R_D = D / U_D - 1
    D_eff = U_D + U_D * R_D_star * (1 - np.exp(-R_D / R_D_star))
    N_opt = (alpha * A / (beta * B) * U_D**beta) ** (1 / alpha)
    U_N = np.where(D > U, np.minimum(N, N_opt), N)
    R_N = N / U_N - 1
    N_eff = U_N + U_N * R_N_star * (1 - np.exp(-R_N / R_N_star))
    return E + A / N_eff**alpha + B / D_eff**beta


def log_effective(log_unique: Array, repeats: Array, r_star: Array, xp: Any) -> Array:
    """log of U + U R* (1 - exp(-R / R*)): effective count of ``U`` unique items seen ``1 + R`` times."""
    return log_unique + xp.log1p(-r_star * xp.expm1(-repeats / r_star))


def log_optimal_size(p: Mapping[str, Array], log_tokens: Array, ref: Mapping[str, float], xp: Any) -> Array:
    """log N at which ``log_tokens`` are compute-optimal: alpha A / N^alpha = beta B / D^beta."""
    return (
        ref["N"]
        + (
            xp.log(p["alpha"])
            + p["log_A_ref"]
            - xp.log(p["beta"])
            - p["log_B_ref"]
            + p["beta"] * (log_tokens - ref["D"])
        )
        / p["alpha"]
    )


class DataConstrained(Chinchilla):
    """L(N, D, U) = E + A / N'^alpha + B / D'^beta with effective data D' and parameters N'.

    Sampled parameters: those of :class:`~bayescale.laws.chinchilla.Chinchilla` plus
    ``R_D_star`` and ``R_N_star``. Reduces exactly to Chinchilla for runs with ``U >= D``.
    """

    name = "data-constrained"
    inputs = ("N", "D", "U")
    params = ("E", "alpha", "beta", "log_A_ref", "log_B_ref", "R_D_star", "R_N_star")
    natural_params = ("E", "A", "B", "alpha", "beta", "R_D_star", "R_N_star")
    formula = (
        "L(N, D, U) = E + A / N'^alpha + B / D'^beta, D' = U_D (1 + R_D* (1 - exp(-R_D / R_D*))), "
        "N' = U_N (1 + R_N* (1 - exp(-R_N / R_N*)))"
    )
    #: The discrepancy's GP lives on log N and log D (a third dimension would cube its basis).
    discrepancy_inputs = ("N", "D")

    def check_runs(self, runs: Runs) -> None:
        if not runs.has("U"):
            raise LawError(
                "law data-constrained needs the unique tokens of each run: add a column U (or unique_tokens), "
                "or map one with --u-col; U >= D means one epoch of fresh data"
            )
        super().check_runs(runs)

    def default_priors(self, runs: Runs) -> dict[str, Prior]:
        """Chinchilla's, and R_D*, R_N* LogNormal around :data:`R_STAR_MEDIAN`."""
        star = exponent_prior(R_STAR_MEDIAN, R_STAR_SPREAD)
        return {**super().default_priors(runs), "R_D_star": star, "R_N_star": star}

    def effective(
        self, p: Mapping[str, Array], logx: Mapping[str, Array], ref: Mapping[str, float], xp: Any
    ) -> tuple[Array, Array]:
        """log N' and log D' (effective parameters and data) at log inputs ``logx``."""
        log_N, log_D = logx["N"], logx["D"]
        if "U" not in logx:  # unlimited unique data
            return log_N, log_D
        log_U = logx["U"]
        log_UD = xp.minimum(log_D, log_U)
        repeats_D = xp.exp(log_D - log_UD) - 1.0
        log_Dp = log_effective(log_UD, repeats_D, p["R_D_star"], xp)
        repeated = log_D > log_U
        log_UN = xp.where(repeated, xp.minimum(log_N, log_optimal_size(p, log_UD, ref, xp)), log_N)
        repeats_N = xp.exp(log_N - log_UN) - 1.0
        log_Np = log_effective(log_UN, repeats_N, p["R_N_star"], xp)
        return log_Np, log_Dp

    def log_loss(self, p: Mapping[str, Array], logx: Mapping[str, Array], ref: Mapping[str, float], xp: Any) -> Array:
        log_Np, log_Dp = self.effective(p, logx, ref, xp)
        n_term = p["log_A_ref"] - p["alpha"] * (log_Np - ref["N"])
        d_term = p["log_B_ref"] - p["beta"] * (log_Dp - ref["D"])
        return log_sum_exp([log_E(p["E"], xp), n_term, d_term], xp)

    def natural(self, p: Mapping[str, Array], ref: Mapping[str, float]) -> dict[str, np.ndarray]:
        return {
            **super().natural(p, ref),
            "R_D_star": np.asarray(p["R_D_star"], dtype=float),
            "R_N_star": np.asarray(p["R_N_star"], dtype=float),
        }


def epochs_worth(R_D_star: np.ndarray, worth: float) -> np.ndarray:
    """Total epochs up to which each further epoch adds at least ``worth`` of the first one's data.

    Epoch ``e >= 2`` adds ``U R* (1 - exp(-1/R*)) exp(-(e - 2)/R*)`` effective tokens against
    ``U`` for the first: the last epoch still worth ``worth`` is
    ``2 + R* log(R* (1 - exp(-1/R*)) / worth)`` (1 if even the second is worth less).
    """
    if not 0 < worth < 1:
        raise LawError(f"worth must be between 0 and 1 (a share of the first epoch's value), got {worth}")
    r = np.asarray(R_D_star, dtype=float)
    second = -r * np.expm1(-1.0 / r)  # value of the second epoch relative to the first
    with np.errstate(divide="ignore"):
        e = 2.0 + r * np.log(second / worth)
    return np.where(second >= worth, e, 1.0)
