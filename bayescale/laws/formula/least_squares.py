"""Multi-start bounded least squares of a formula law: the chains' starting point, and the
field's baseline fit (ScaleBench fits every law this way) for benchmarks to compare against.

The residuals are on the target's own scale (a law whose value goes negative at a start then
only fits badly there, instead of breaking a log), scaled by the target's spread; non-finite
values become large residuals, which steer the optimiser away. The best of the starts wins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayescale.data import Runs
from bayescale.laws.formula.evaluate import evaluate
from bayescale.priors import Prior, to_scipy

FormulaLaw = Any  # a bayescale.laws.formula.law.FormulaLaw (which imports this module when it starts chains)

#: Residual given to a run where the law is not finite.
BAD = 1e3


@dataclass(frozen=True)
class LeastSquares:
    """The best of several least-squares fits: parameters by name, the cost (half the sum of squared
    scaled residuals), and every start's cost."""

    params: dict[str, float]
    cost: float
    costs: np.ndarray


def minimise(
    residuals: Callable[[np.ndarray], np.ndarray],
    starts: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    names: Sequence[str],
    max_nfev: int = 200,
) -> LeastSquares:
    """The best bounded least-squares solution from each row of ``starts`` (scipy's trust-region
    reflective method)."""
    from scipy.optimize import least_squares

    best, best_cost, costs = None, np.inf, []
    for x0 in starts:
        span = upper - lower
        margin = np.where(np.isfinite(span), 1e-9 * span, 0.0)
        x0 = np.clip(x0, lower + margin, upper - margin)
        try:
            with np.errstate(all="ignore"):  # scipy's trust-region steps overflow on the way through wild starts
                result = least_squares(residuals, x0, bounds=(lower, upper), method="trf", max_nfev=max_nfev)
        except (ValueError, FloatingPointError):  # a start where the law is not finite at all
            costs.append(np.inf)
            continue
        costs.append(float(result.cost))
        if result.cost < best_cost:
            best, best_cost = result.x, float(result.cost)
    params = {} if best is None else {n: float(v) for n, v in zip(names, best, strict=True)}
    return LeastSquares(params, best_cost, np.array(costs))


def _support(prior: Prior) -> tuple[float, float]:
    k = prior.kwargs
    if prior.dist == "Uniform":
        return k["lower"], k["upper"]
    if prior.dist == "TruncatedNormal":
        return k.get("lower", -np.inf), k.get("upper", np.inf)
    if prior.dist in ("LogNormal", "HalfNormal", "Gamma", "Exponential", "InverseGamma", "HalfCauchy", "HalfStudentT",
                      "Weibull"):  # fmt: skip
        return 0.0, np.inf
    if prior.dist == "Beta":
        return 0.0, 1.0
    return -np.inf, np.inf


def initial_values(
    law: FormulaLaw, runs: Runs, priors: Mapping[str, Prior], starts: int = 64, seed: int = 0
) -> dict[str, float]:
    """Sampled parameters at the best least-squares fit from ``starts`` draws of the priors.

    Used as the chains' starting point (:func:`bayescale.model.build_model`); empty when no start
    converged to a point where the law is finite at every run.
    """
    names = [n for n in law.params if not priors[n].is_fixed]
    fixed = {n: float(priors[n].kwargs["value"]) for n in law.params if priors[n].is_fixed}
    rng = np.random.default_rng(seed)
    support = np.array([_support(priors[n]) for n in names])
    draws = np.column_stack([np.asarray(to_scipy(priors[n]).rvs(size=starts, random_state=rng)) for n in names])
    coords = {x: runs.log(x) for x in law.inputs}
    ref = law.reference(runs)
    y = runs.loss
    scale = float(np.std(y)) or float(np.abs(y).mean()) or 1.0

    def residuals(x: np.ndarray) -> np.ndarray:
        p = dict(zip(names, x, strict=True)) | fixed
        with np.errstate(all="ignore"):
            value = np.broadcast_to(np.asarray(law.value(p, coords, ref, np), dtype=float), y.shape)
        r = (value - y) / scale
        bad = ~np.isfinite(r) | ((value <= 0) if law.link == "log" else False)
        return np.where(bad, BAD, r)

    found = minimise(residuals, draws, support[:, 0], support[:, 1], names)
    if not found.params or not np.isfinite(found.cost):
        return {}
    if (np.abs(residuals(np.array(list(found.params.values())))) >= BAD).any():
        return {}
    return found.params


def baseline(
    law: FormulaLaw,
    runs: Runs,
    bounds: Mapping[str, Sequence[float]],
    starts: int = 64,
    seed: int = 0,
) -> LeastSquares:
    """The benchmark's baseline: the formula's own parameters by least squares within ``bounds``
    (one ``(low, high)`` per parameter), from ``starts`` uniform draws within them."""
    names = list(law.natural_params)
    lower = np.array([float(bounds[n][0]) for n in names])
    upper = np.array([float(bounds[n][1]) for n in names])
    rng = np.random.default_rng(seed)
    draws = lower + (upper - lower) * rng.random((starts, len(names)))
    coords = {x: runs.log(x) for x in law.inputs}
    log_inputs = set(law.inputs) - law.linear_inputs
    y = runs.loss

    def residuals(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            value = np.broadcast_to(
                np.asarray(evaluate(law.tree, dict(zip(names, x, strict=True)), coords, log_inputs, np), dtype=float),
                y.shape,
            )
        r = value - y
        return np.where(np.isfinite(r), r, BAD)

    return minimise(residuals, draws, lower, upper, names)


def predict_natural(law: FormulaLaw, params: Mapping[str, float], points: Mapping[str, np.ndarray]) -> np.ndarray:
    """The formula at ``points`` (input arrays) for natural parameters (e.g. :func:`baseline`'s)."""
    coords = {x: law.coordinate(x, points[x]) for x in law.inputs}
    with np.errstate(all="ignore"):
        return np.asarray(
            evaluate(law.tree, dict(params), coords, set(law.inputs) - law.linear_inputs, np), dtype=float
        )
