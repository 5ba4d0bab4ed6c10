"""Model discrepancy: a Gaussian process on the law's residuals, fitted after the law.

A scaling law is only approximately right. Its misfit is structured -- runs of one model
size or one token budget share an error, a region of the (N, D) plane sits above the law --
and the law's own posterior cannot see how large that misfit is where there are no runs.
Following Kennedy and O'Hagan (2001), bayescale writes the log loss of a run as

    log L = log L_law(N, D) + delta(log N, log D) + noise,

with ``delta`` a Gaussian process (squared-exponential kernel, amplitude ``eta``, one
length-scale per input in natural-log units) and Student-t noise. Far from the runs,
``delta`` reverts to its prior: a band of about +-1.64 eta, learned from how far the runs
themselves stray from the law. Near the runs it carries the local misfit into the
prediction. Where the law fits, ``eta`` shrinks towards zero and bands do not widen.

The discrepancy and the law are confounded: a flexible ``delta`` can explain what the law
should. To keep the law's parameters (and with them the allocation answers) those of the
law alone, the discrepancy is fitted in a second stage to the residuals of the law's
posterior median, without feedback into the law (a *modular* or *cut* posterior; Liu,
Bayarri and Berger 2009). Predictions add independent draws of both stages.

The GP is fitted with the Hilbert-space approximation of Solin and Saerkkae (2020)
(Riutort-Mayol et al. 2023): ``delta(x) = Phi(x) (eta sqrt(S(w)) z)``, ``z ~ Normal(0, 1)``,
with the sine basis ``Phi`` of a box ``BOX`` times larger than the data. Predictions top up
the variance the truncated basis misses, ``eta^2 - sum_j S_j phi_j(x)^2``, with independent
noise, so that far outside the box -- where the basis vanishes -- ``delta`` has its exact
stationary distribution Normal(0, eta^2).

Everything here but :func:`build_model` is numpy: a saved fit predicts without PyMC.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from bayescale.data import Runs
from bayescale.priors import Prior

if TYPE_CHECKING:
    import pymc as pm

#: Basis functions per input dimension.
N_BASIS = 12
#: Half-width of the approximation box, in half-ranges of the data on each input.
BOX = 3.0
#: Floor of the half-range (natural-log units): a ladder spanning less than e^1 on an input.
MIN_HALF_RANGE = 0.5
#: Parameters of the discrepancy stage, in the order they are stored.
PARAMS = ("eta", "ls", "z", "sigma", "nu")


@dataclass(frozen=True)
class Domain:
    """Where the discrepancy's basis lives: inputs, centre, half-ranges and box of the runs.

    Attributes
    ----------
    inputs : tuple of str
        The law's inputs (``N``, ``D`` or ``C``); the GP works on their natural logs.
    center, half : tuple of float
        Mid-point and half-range of the runs' log inputs (half-range floored at
        :data:`MIN_HALF_RANGE`).
    box : float
        Half-width of the approximation box in half-ranges.
    n_basis : int
        Basis functions per input.
    """

    inputs: tuple[str, ...]
    center: tuple[float, ...]
    half: tuple[float, ...]
    box: float = BOX
    n_basis: int = N_BASIS

    @classmethod
    def of_runs(cls, runs: Runs, inputs: Sequence[str], n_basis: int = N_BASIS, box: float = BOX) -> Domain:
        """The domain spanned by ``runs`` on ``inputs``."""
        lo = np.array([runs.log(x).min() for x in inputs])
        hi = np.array([runs.log(x).max() for x in inputs])
        half = np.maximum((hi - lo) / 2, MIN_HALF_RANGE)
        return cls(tuple(inputs), tuple(map(float, (lo + hi) / 2)), tuple(map(float, half)), float(box), int(n_basis))

    @property
    def L(self) -> np.ndarray:
        """Half-widths of the approximation box (natural-log units)."""
        return self.box * np.asarray(self.half)

    def to_json(self) -> str:
        """Serialise (stored in the saved fit's attributes)."""
        return json.dumps(
            {
                "inputs": self.inputs,
                "center": self.center,
                "half": self.half,
                "box": self.box,
                "n_basis": self.n_basis,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Domain:
        """Inverse of :meth:`to_json`."""
        d = json.loads(text)
        return cls(tuple(d["inputs"]), tuple(d["center"]), tuple(d["half"]), float(d["box"]), int(d["n_basis"]))

    def log_inputs(self, points: Mapping[str, np.ndarray]) -> np.ndarray:
        """Log inputs of ``points`` as an (n, d) array."""
        return np.stack([np.log(np.asarray(points[x], dtype=float)) for x in self.inputs], axis=1)

    def frequencies(self) -> np.ndarray:
        """Square roots of the Laplacian eigenvalues, shape (n_basis^d, d)."""
        j = np.arange(1, self.n_basis + 1)
        grid = np.meshgrid(*[j] * len(self.inputs), indexing="ij")
        J = np.stack([g.reshape(-1) for g in grid], axis=1)
        return np.pi * J / (2 * self.L[None, :])

    def basis(self, X: np.ndarray) -> np.ndarray:
        """Basis functions at log inputs ``X`` (n, d): shape (n, n_basis^d), zero outside the box."""
        L, w = self.L, self.frequencies()
        Xc = np.asarray(X, dtype=float) - np.asarray(self.center)[None, :]
        inside = (np.abs(Xc) < L[None, :]).all(axis=1)
        phi = np.ones((Xc.shape[0], w.shape[0]))
        for d in range(Xc.shape[1]):
            phi *= np.sin(w[None, :, d] * (Xc[:, d : d + 1] + L[d])) / np.sqrt(L[d])
        return phi * inside[:, None]


def log_spectral_density(ls: Any, w: np.ndarray, xp: Any) -> Any:
    """Log spectral density (unit amplitude) of the squared-exponential kernel at frequencies ``w``.

    ``ls`` has shape (d,) or (S, d); the result (K,) or (S, K). ``xp`` is numpy or pytensor.tensor.
    """
    d = w.shape[1]
    return (
        0.5 * d * np.log(2 * np.pi)
        + xp.sum(xp.log(ls), axis=-1)[..., None]
        - 0.5 * xp.sum((ls[..., None, :] * w) ** 2, axis=-1)
    )


def default_priors() -> dict[str, Prior]:
    """Priors of the discrepancy stage.

    ``eta`` ~ HalfNormal(0.02): systematic departures from the law of a few percent of the
    loss at most, unless the runs insist; ``ls`` ~ LogNormal(log half-range, 0.7) per
    input: smooth on the scale of the ladder; ``sigma``, ``nu`` as the law's noise.
    """
    return {
        "eta": Prior("HalfNormal", sigma=0.02),
        "ls": Prior("LogNormal", mu=0.0, sigma=0.7),  # mu is added to the log half-range per input
        "sigma": Prior("HalfNormal", sigma=0.05),
        "nu": Prior("Gamma", alpha=2.0, beta=0.1),
    }


def build_model(residuals: np.ndarray, X: np.ndarray, domain: Domain, priors: Mapping[str, Prior]) -> pm.Model:
    """The discrepancy stage as a ``pm.Model``: GP (Hilbert-space basis) plus Student-t noise.

    Parameters
    ----------
    residuals : array (n,)
        Observed log loss minus the law's posterior-median log loss.
    X : array (n, d)
        Log inputs of the runs.
    domain : Domain
    priors : mapping
        ``eta``, ``ls`` (its ``mu`` offsets the log half-range), ``sigma``, ``nu``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    phi = domain.basis(X)
    w = domain.frequencies()
    ls_prior = priors["ls"]
    with pm.Model(coords={"run": np.arange(len(residuals)), "input": list(domain.inputs)}) as model:
        eta = pm.HalfNormal("eta", sigma=priors["eta"].kwargs["sigma"])
        ls = pm.LogNormal(
            "ls",
            mu=np.log(np.asarray(domain.half)) + ls_prior.kwargs["mu"],
            sigma=ls_prior.kwargs["sigma"],
            dims="input",
        )
        z = pm.Normal("z", 0.0, 1.0, shape=phi.shape[1])
        delta = pt.dot(phi, eta * pt.exp(0.5 * log_spectral_density(ls, w, pt)) * z)
        sigma = pm.HalfNormal("sigma", sigma=priors["sigma"].kwargs["sigma"])
        nu = pm.Gamma("nu", alpha=priors["nu"].kwargs["alpha"], beta=priors["nu"].kwargs["beta"])
        pm.StudentT("residual", nu=nu, mu=delta, sigma=sigma, observed=residuals, dims="run")
    return model


def basis_weights(domain: Domain, params: Mapping[str, np.ndarray], dtype: type = np.float32) -> dict[str, np.ndarray]:
    """Per-draw weights of the basis functions, computed once for any number of points.

    Returns ``coef`` (K, S), the basis coefficients ``sqrt(S(w)) z``; ``var`` (K, S), the
    spectral densities ``S(w)`` (each basis function's share of the unit prior variance);
    and ``eta`` (1, S).
    """
    sqrt_spd = np.exp(0.5 * log_spectral_density(np.asarray(params["ls"], dtype=float), domain.frequencies(), np))
    return {
        "coef": np.ascontiguousarray((sqrt_spd * params["z"]).T, dtype=dtype),
        "var": np.ascontiguousarray((sqrt_spd**2).T, dtype=dtype),
        "eta": np.asarray(params["eta"], dtype=dtype)[None, :],
    }


def draws_at(
    domain: Domain,
    params: Mapping[str, np.ndarray],
    X: np.ndarray,
    top_up: np.random.Generator | np.ndarray,
    dtype: type = np.float32,
    weights: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Posterior draws of the discrepancy at log inputs ``X``: shape (S, n), of ``dtype``.

    ``params`` holds flat draws ``eta`` (S,), ``ls`` (S, d) and ``z`` (S, K). The variance the
    truncated basis misses is topped up with normal deviates, so that far from the runs the
    draws are Normal(0, eta^2): independent ones from a generator ``top_up``, or, given an
    array (S,) of standard normal deviates, one per draw shared by all points (common
    random numbers: the same marginal distribution at every point). ``weights`` are
    :func:`basis_weights` of ``params``, when already computed.
    """
    w = basis_weights(domain, params, dtype) if weights is None else weights
    phi = domain.basis(X).astype(dtype)  # (n, K)
    mean = phi @ w["coef"]  # (n, S): point by point
    covered = (phi**2) @ w["var"]  # the basis' share of the unit prior variance
    missing = np.sqrt(np.clip(1.0 - covered, 0.0, None))
    if isinstance(top_up, np.random.Generator):
        deviates = top_up.standard_normal(mean.shape, dtype=dtype)
    else:
        deviates = np.asarray(top_up, dtype=dtype)[None, :]
    return (w["eta"] * (mean + missing * deviates)).T


@dataclass(frozen=True)
class Fitted:
    """A fitted discrepancy: its domain and flat posterior draws (S draws, aligned with the law's).

    Attributes
    ----------
    domain : Domain
    params : dict
        ``eta`` (S,), ``ls`` (S, d), ``z`` (S, K), ``sigma`` (S,), ``nu`` (S,).
    """

    domain: Domain
    params: Mapping[str, np.ndarray]

    def delta(self, points: Mapping[str, np.ndarray], top_up: np.random.Generator | np.ndarray) -> np.ndarray:
        """Draws (S, n) of the discrepancy at ``points`` (arrays of N, D, C); ``top_up`` as :func:`draws_at`."""
        return draws_at(self.domain, self.params, self.domain.log_inputs(points), top_up, weights=self._weights)

    @cached_property
    def _weights(self) -> dict[str, np.ndarray]:
        """:func:`basis_weights` of the draws, computed on first use."""
        return basis_weights(self.domain, self.params)

    @property
    def noise(self) -> dict[str, np.ndarray]:
        """The new-run noise after the discrepancy: Student-t ``sigma`` and ``nu`` draws (S,)."""
        return {"sigma": self.params["sigma"], "nu": self.params["nu"]}
