"""Priors as small serialisable objects.

A :class:`Prior` is a PyMC distribution name and its keyword arguments, e.g.
``Prior("Normal", mu=0.35, sigma=0.1)``; it round-trips through a dict
(``{"dist": "Normal", "kwargs": {"mu": 0.35, "sigma": 0.1}}``), through JSON (it is stored
in every saved fit) and through the command line's text form ``Normal(0.35, 0.1)``.
A number fixes the parameter: ``"E=0"`` turns ``power`` into Kaplan's pure power law.

Only PyMC's distributions listed in :data:`DISTRIBUTIONS` are accepted, so that a typo
fails at parse time, with the valid names, rather than deep inside PyMC.
"""

from __future__ import annotations

import ast
import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bayescale.errors import PriorError

#: Accepted distributions and their positional argument names, in PyMC's order.
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "Normal": ("mu", "sigma"),
    "HalfNormal": ("sigma",),
    "LogNormal": ("mu", "sigma"),
    "TruncatedNormal": ("mu", "sigma", "lower", "upper"),
    "StudentT": ("nu", "mu", "sigma"),
    "HalfStudentT": ("nu", "sigma"),
    "Cauchy": ("alpha", "beta"),
    "HalfCauchy": ("beta",),
    "Uniform": ("lower", "upper"),
    "Gamma": ("alpha", "beta"),
    "InverseGamma": ("alpha", "beta"),
    "Exponential": ("lam",),
    "Beta": ("alpha", "beta"),
    "Weibull": ("alpha", "beta"),
    "Constant": ("value",),
}


@dataclass(frozen=True)
class Prior:
    """A prior distribution: a PyMC distribution name and keyword arguments.

    Parameters
    ----------
    dist : str
        One of :data:`DISTRIBUTIONS` (``"Constant"`` fixes the value).
    **kwargs : float
        The distribution's parameters by name, e.g. ``mu=0.35, sigma=0.1``.

    Examples
    --------
    >>> Prior("Normal", mu=0.35, sigma=0.1).to_dict()
    {'dist': 'Normal', 'kwargs': {'mu': 0.35, 'sigma': 0.1}}
    >>> Prior.parse("Normal(0.35, 0.1)") == Prior("Normal", mu=0.35, sigma=0.1)
    True
    """

    dist: str
    kwargs: Mapping[str, float] = field(default_factory=dict)

    def __init__(self, dist: str, kwargs: Mapping[str, float] | None = None, **kw: float) -> None:
        if dist not in DISTRIBUTIONS:
            raise PriorError(f"unknown distribution {dist!r}; known: {', '.join(DISTRIBUTIONS)}")
        merged = {**(kwargs or {}), **kw}
        allowed = DISTRIBUTIONS[dist]
        for key, value in merged.items():
            if key not in allowed:
                raise PriorError(f"{dist} takes {', '.join(allowed)}; got {key!r}")
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise PriorError(f"{dist} argument {key} must be a finite number, got {value!r}")
        missing = [
            a for a in allowed if a not in merged and not (dist == "TruncatedNormal" and a in ("lower", "upper"))
        ]
        if missing:
            raise PriorError(f"{dist} needs {', '.join(missing)}")
        if "lower" in merged and "upper" in merged and not merged["lower"] < merged["upper"]:
            raise PriorError(
                f"{dist} bounds are inverted or empty: lower {merged['lower']:g}, upper {merged['upper']:g}; "
                "give lower < upper"
            )
        object.__setattr__(self, "dist", dist)
        object.__setattr__(self, "kwargs", {k: float(merged[k]) for k in allowed if k in merged})

    @property
    def is_fixed(self) -> bool:
        """Whether this prior fixes the parameter to a constant."""
        return self.dist == "Constant"

    def to_dict(self) -> dict[str, Any]:
        """The prior as a plain dict ``{"dist": ..., "kwargs": {...}}``."""
        return {"dist": self.dist, "kwargs": dict(self.kwargs)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Prior:
        """Build a prior from :meth:`to_dict`'s form."""
        if not isinstance(d, Mapping) or "dist" not in d:
            raise PriorError(f"a prior dict needs 'dist' and 'kwargs', got {d!r}")
        return cls(str(d["dist"]), dict(d.get("kwargs", {})))

    def __str__(self) -> str:
        if self.is_fixed:
            return f"{self.kwargs['value']:g}"
        return f"{self.dist}({', '.join(f'{k}={v:.4g}' for k, v in self.kwargs.items())})"

    @classmethod
    def parse(cls, text: str) -> Prior:
        """Parse ``"Normal(0.35, 0.1)"``, ``"Normal(mu=0.35, sigma=0.1)"`` or ``"0"``.

        Raises
        ------
        PriorError
            If the text is not a known distribution call with numeric arguments.
        """
        try:
            node = ast.parse(text.strip(), mode="eval").body
        except SyntaxError:
            raise PriorError(f"cannot parse prior {text!r}; write e.g. Normal(0.35, 0.1) or a number") from None
        value = _number(node)
        if value is not None:
            return cls("Constant", value=value)
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            raise PriorError(f"cannot parse prior {text!r}; write e.g. Normal(0.35, 0.1) or a number")
        dist = node.func.id
        if dist not in DISTRIBUTIONS:
            raise PriorError(f"unknown distribution {dist!r} in {text!r}; known: {', '.join(DISTRIBUTIONS)}")
        names = DISTRIBUTIONS[dist]
        if len(node.args) > len(names):
            raise PriorError(f"{dist} takes at most {len(names)} arguments ({', '.join(names)}) in {text!r}")
        kwargs: dict[str, float] = {}
        for name, arg in zip(names, node.args, strict=False):
            kwargs[name] = _require_number(arg, text)
        for kw in node.keywords:
            if kw.arg is None:
                raise PriorError(f"cannot parse prior {text!r}")
            kwargs[kw.arg] = _require_number(kw.value, text)
        return cls(dist, kwargs)


def _number(node: ast.AST) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _number(node.operand)
        if inner is not None:
            return -inner if isinstance(node.op, ast.USub) else inner
    return None


def _require_number(node: ast.AST, text: str) -> float:
    value = _number(node)
    if value is None:
        raise PriorError(f"prior arguments must be numbers in {text!r}")
    return value


PriorLike = Prior | Mapping[str, Any] | str | float | int


def as_prior(value: PriorLike) -> Prior:
    """Coerce a Prior, its dict form, its text form or a number (fixed value) to a Prior."""
    if isinstance(value, Prior):
        return value
    if isinstance(value, bool):
        raise PriorError(f"not a prior: {value!r}")
    if isinstance(value, (int, float)):
        return Prior("Constant", value=float(value))
    if isinstance(value, str):
        return Prior.parse(value)
    if isinstance(value, Mapping):
        return Prior.from_dict(value)
    raise PriorError(f"not a prior: {value!r}; give a Prior, a dict, a string like 'Normal(0, 1)' or a number")


def parse_assignment(spec: str) -> tuple[str, Prior]:
    """Parse the command line's ``NAME=PRIOR`` form, e.g. ``alpha=Normal(0.35, 0.1)``."""
    name, sep, rest = spec.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise PriorError(f"--prior needs NAME=DISTRIBUTION, e.g. alpha=Normal(0.35, 0.1); got {spec!r}")
    return name.strip(), Prior.parse(rest)


def priors_to_json(priors: Mapping[str, Prior]) -> str:
    """Serialise a mapping of priors to JSON (stored in saved fits)."""
    return json.dumps({k: p.to_dict() for k, p in priors.items()}, sort_keys=True)


def priors_from_json(text: str) -> dict[str, Prior]:
    """Inverse of :func:`priors_to_json`."""
    return {k: Prior.from_dict(v) for k, v in json.loads(text).items()}


def is_data_value(value: object) -> bool:
    """Whether a prior parameter enters a model as ``pm.Data``: finite numbers do, infinite bounds stay constants."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def to_pymc(name: str, prior: Prior, values: Mapping[str, Any] | None = None) -> Any:
    """Create the PyMC variable for ``prior`` in the current model; a fixed prior gives a float.

    ``values`` replaces parameters of the distribution by tensors (by parameter name), e.g.
    elements of one ``pm.Data`` vector, so that a compiled model can take other values without
    recompiling (:mod:`bayescale.compiled`).
    """
    import pymc as pm

    if prior.is_fixed:
        return prior.kwargs["value"]
    kwargs = dict(prior.kwargs) | dict(values or {})
    return getattr(pm, prior.dist)(name, **kwargs)


def to_scipy(prior: Prior) -> Any:
    """The prior as a frozen ``scipy.stats`` distribution (for densities in plots; no PyMC).

    Raises
    ------
    PriorError
        For a fixed prior, which has no density.
    """
    from scipy import stats

    k = dict(prior.kwargs)
    d = prior.dist
    if prior.is_fixed:
        raise PriorError("a fixed parameter has no prior density")
    if d == "Normal":
        return stats.norm(k["mu"], k["sigma"])
    if d == "HalfNormal":
        return stats.halfnorm(scale=k["sigma"])
    if d == "LogNormal":
        return stats.lognorm(s=k["sigma"], scale=math.exp(k["mu"]))
    if d == "TruncatedNormal":
        lo, hi = k.get("lower", -math.inf), k.get("upper", math.inf)
        return stats.truncnorm((lo - k["mu"]) / k["sigma"], (hi - k["mu"]) / k["sigma"], k["mu"], k["sigma"])
    if d == "StudentT":
        return stats.t(k["nu"], k["mu"], k["sigma"])
    if d == "HalfStudentT":
        return _HalfStudentT(k["nu"], k["sigma"])
    if d == "Cauchy":
        return stats.cauchy(k["alpha"], k["beta"])
    if d == "HalfCauchy":
        return stats.halfcauchy(scale=k["beta"])
    if d == "Uniform":
        return stats.uniform(k["lower"], k["upper"] - k["lower"])
    if d == "Gamma":
        return stats.gamma(k["alpha"], scale=1.0 / k["beta"])
    if d == "InverseGamma":
        return stats.invgamma(k["alpha"], scale=k["beta"])
    if d == "Exponential":
        return stats.expon(scale=1.0 / k["lam"])
    if d == "Beta":
        return stats.beta(k["alpha"], k["beta"])
    if d == "Weibull":
        return stats.weibull_min(k["alpha"], scale=k["beta"])
    raise PriorError(f"no density for {d}")  # pragma: no cover - DISTRIBUTIONS and this list agree (tested)


class _HalfStudentT:
    """|t| with ``nu`` degrees of freedom and scale ``sigma``: the ``pdf`` and ``ppf`` plots need."""

    def __init__(self, nu: float, sigma: float) -> None:
        from scipy import stats

        self._t = stats.t(nu, 0.0, sigma)

    def pdf(self, x: Any) -> Any:
        import numpy as np

        x = np.asarray(x, dtype=float)
        return np.where(x >= 0, 2 * self._t.pdf(x), 0.0)

    def ppf(self, q: Any) -> Any:
        import numpy as np

        return self._t.ppf((1 + np.asarray(q, dtype=float)) / 2)
