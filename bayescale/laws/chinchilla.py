"""Chinchilla law (Hoffmann et al. 2022): L(N, D) = E + A / N^alpha + B / D^beta."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayescale.data import Runs
from bayescale.laws._base import (
    Array,
    Law,
    amplitude_prior,
    exponent_prior,
    irreducible_prior,
    log_E,
    log_sum_exp,
)
from bayescale.priors import Prior


def loss(N: Array, D: Array, E: Array, A: Array, B: Array, alpha: Array, beta: Array) -> Array:
    """Expected loss E + A / N^alpha + B / D^beta (numpy or PyTensor).

    Parameters
    ----------
    N, D : array_like
        Parameters and training tokens.
    E : float
        Irreducible loss (nats/token).
    A, alpha : float
        Amplitude and exponent of the model-size term.
    B, beta : float
        Amplitude and exponent of the data term.
    """
    return E + A / N**alpha + B / D**beta


class Chinchilla(Law):
    """L(N, D) = E + A / N^alpha + B / D^beta.

    Sampled parameters: ``E``, ``alpha``, ``beta`` and ``log_A_ref``, ``log_B_ref``, the log
    of each reducible term at the reference size and token count (the geometric means of
    the runs): ``A / N_ref^alpha = exp(log_A_ref)``.
    """

    name = "chinchilla"
    inputs = ("N", "D")
    params = ("E", "alpha", "beta", "log_A_ref", "log_B_ref")
    exponents = ("alpha", "beta")
    natural_params = ("E", "A", "B", "alpha", "beta")
    formula = "L(N, D) = E + A / N^alpha + B / D^beta"

    def default_priors(self, runs: Runs) -> dict[str, Prior]:
        amp = amplitude_prior(runs)
        return {
            "E": irreducible_prior(runs),
            "alpha": exponent_prior(0.3, 0.6),
            "beta": exponent_prior(0.3, 0.6),
            "log_A_ref": amp,
            "log_B_ref": amp,
        }

    def log_loss(self, p: Mapping[str, Array], logx: Mapping[str, Array], ref: Mapping[str, float], xp: Any) -> Array:
        n_term = p["log_A_ref"] - p["alpha"] * (logx["N"] - ref["N"])
        d_term = p["log_B_ref"] - p["beta"] * (logx["D"] - ref["D"])
        return log_sum_exp([log_E(p["E"], xp), n_term, d_term], xp)

    def natural(self, p: Mapping[str, Array], ref: Mapping[str, float]) -> dict[str, np.ndarray]:
        return {
            "E": np.asarray(p["E"], dtype=float),
            "A": np.exp(p["log_A_ref"] + p["alpha"] * ref["N"]),
            "B": np.exp(p["log_B_ref"] + p["beta"] * ref["D"]),
            "alpha": np.asarray(p["alpha"], dtype=float),
            "beta": np.asarray(p["beta"], dtype=float),
        }

    def optimum_closed_form(
        self, nat: Mapping[str, np.ndarray], log_compute_per_k: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Hoffmann et al.'s closed form: N_opt = G (C/k)^a, D_opt = (C/k)^b / G.

        G = (alpha A / (beta B))^(1/(alpha+beta)), a = beta/(alpha+beta), b = alpha/(alpha+beta).
        """
        alpha, beta = nat["alpha"], nat["beta"]
        log_G = (np.log(alpha) + np.log(nat["A"]) - np.log(beta) - np.log(nat["B"])) / (alpha + beta)
        a = beta / (alpha + beta)
        return log_G + a * log_compute_per_k, (1 - a) * log_compute_per_k - log_G

    def tokens_closed_form(self, nat: Mapping[str, np.ndarray], N: np.ndarray, target: np.ndarray) -> np.ndarray:
        """D = (B / (target - E - A/N^alpha))^(1/beta); inf where the target is out of reach."""
        gap = target - nat["E"] - nat["A"] / N ** nat["alpha"]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            D = (nat["B"] / gap) ** (1 / nat["beta"])
        return np.where(gap > 0, D, np.inf)
