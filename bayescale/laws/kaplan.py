"""Kaplan et al. (2020) joint law: L(N, D) = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayescale.data import Runs
from bayescale.laws._base import Array, Law, exponent_prior, log_sigmoid, log_sum_exp
from bayescale.priors import Prior


def loss(N: Array, D: Array, N_c: Array, D_c: Array, alpha_N: Array, alpha_D: Array) -> Array:
    """Expected loss [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D (numpy or PyTensor).

    Parameters
    ----------
    N, D : array_like
        Parameters and training tokens.
    N_c, D_c : float
        Critical model size and token count.
    alpha_N, alpha_D : float
        Exponents of the model-size and data limits.
    """
    return ((N_c / N) ** (alpha_N / alpha_D) + D_c / D) ** alpha_D


class Kaplan(Law):
    """Kaplan's joint law, with no irreducible term.

    Sampled parameters: ``alpha_N``, ``alpha_D``; ``log_L_ref``, the log loss at the
    reference size and token count; and ``share_N``, the logit of the model-size share of
    the bracket at the reference. They map one-to-one to N_c and D_c.
    """

    name = "kaplan"
    inputs = ("N", "D")
    params = ("alpha_N", "alpha_D", "log_L_ref", "share_N")
    exponents = ("alpha_N", "alpha_D")
    natural_params = ("N_c", "D_c", "alpha_N", "alpha_D")
    formula = "L(N, D) = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D"

    def default_priors(self, runs: Runs) -> dict[str, Prior]:
        return {
            "alpha_N": exponent_prior(0.1, 0.8),
            "alpha_D": exponent_prior(0.1, 0.8),
            "log_L_ref": Prior("Normal", mu=float(np.mean(np.log(runs.loss))), sigma=0.5),
            "share_N": Prior("Normal", mu=0.0, sigma=1.5),
        }

    @staticmethod
    def _log_brackets(p: Mapping[str, Array], xp: Any) -> tuple[Array, Array]:
        s = p["log_L_ref"] / p["alpha_D"]
        return s + log_sigmoid(p["share_N"], xp), s + log_sigmoid(-p["share_N"], xp)

    def log_loss(self, p: Mapping[str, Array], logx: Mapping[str, Array], ref: Mapping[str, float], xp: Any) -> Array:
        u_N, u_D = self._log_brackets(p, xp)
        ratio = p["alpha_N"] / p["alpha_D"]
        inner = log_sum_exp([u_N - ratio * (logx["N"] - ref["N"]), u_D - (logx["D"] - ref["D"])], xp)
        return p["alpha_D"] * inner

    def natural(self, p: Mapping[str, Array], ref: Mapping[str, float]) -> dict[str, np.ndarray]:
        u_N, u_D = self._log_brackets(p, np)
        return {
            "N_c": np.exp(ref["N"] + u_N * p["alpha_D"] / p["alpha_N"]),
            "D_c": np.exp(ref["D"] + u_D),
            "alpha_N": np.asarray(p["alpha_N"], dtype=float),
            "alpha_D": np.asarray(p["alpha_D"], dtype=float),
        }
