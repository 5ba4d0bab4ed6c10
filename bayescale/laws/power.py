"""One-variable power law with an irreducible term: L(X) = E + (X_c / X)^gamma, X in N, D or C.

With E fixed at 0 (``--prior E=0``) it is Kaplan et al.'s pure law L(X) = (X_c / X)^alpha_X;
with E free it is the form Baichuan 2 and MindLLM fitted on compute to predict large models.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayescale.data import Runs
from bayescale.errors import LawError
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


def loss(X: Array, E: Array, X_c: Array, gamma: Array) -> Array:
    """Expected loss E + (X_c / X)^gamma (numpy or PyTensor).

    Parameters
    ----------
    X : array_like
        The scale variable: parameters N, tokens D or FLOPs C.
    E : float
        Irreducible loss (0 for Kaplan's pure law).
    X_c, gamma : float
        Critical scale and exponent.
    """
    return E + (X_c / X) ** gamma


class Power(Law):
    """L(X) = E + (X_c / X)^gamma in one variable X.

    Sampled parameters: ``E``, ``gamma`` and ``log_T_ref``, the log of the reducible term
    at the reference scale (the geometric mean of X over the runs).
    """

    params = ("E", "gamma", "log_T_ref")
    exponents = ("gamma",)

    def __init__(self, x: str = "C") -> None:
        if x not in ("N", "D", "C"):
            raise LawError(f"the power law's variable must be N, D or C, got {x!r}")
        self.x = x
        self.name = f"power:{x}"
        self.inputs = (x,)
        self.natural_params = ("E", f"{x}_c", "gamma")
        self.formula = f"L({x}) = E + ({x}_c / {x})^gamma"

    def default_priors(self, runs: Runs) -> dict[str, Prior]:
        return {
            "E": irreducible_prior(runs),
            "gamma": exponent_prior(0.2, 1.0),
            "log_T_ref": amplitude_prior(runs),
        }

    def log_loss(self, p: Mapping[str, Array], logx: Mapping[str, Array], ref: Mapping[str, float], xp: Any) -> Array:
        term = p["log_T_ref"] - p["gamma"] * (logx[self.x] - ref[self.x])
        return log_sum_exp([log_E(p["E"], xp), term], xp)

    def natural(self, p: Mapping[str, Array], ref: Mapping[str, float]) -> dict[str, np.ndarray]:
        gamma = np.asarray(p["gamma"], dtype=float)
        return {
            "E": np.asarray(p["E"], dtype=float) * np.ones_like(gamma),
            f"{self.x}_c": np.exp(ref[self.x] + p["log_T_ref"] / gamma),
            "gamma": gamma,
        }
