"""A scaling law from a formula over any columns: the same :class:`~bayescale.laws.Law` the
built-in families are, so fitting, summaries, predictions, comparison and the cache work alike.

>>> law = FormulaLaw("E + A/N^alpha + B/D^beta", columns=["N", "D", "loss"])
>>> law.inputs, law.natural_params
(('N', 'D'), ('E', 'A', 'alpha', 'B', 'beta'))
>>> law.params
('E', 'log_A_ref', 'alpha', 'log_B_ref', 'beta')
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bayescale.data import Runs
from bayescale.errors import FormulaError, PriorError, RunsError
from bayescale.laws._base import Array, Law
from bayescale.laws.formula.evaluate import evaluate
from bayescale.laws.formula.parse import FUNCTIONS, Expr, parse
from bayescale.laws.formula.structure import ROLES, Amplitude, analyse, clamp_floors, unclamp, uses_log_of
from bayescale.priors import Prior, PriorLike, as_prior

log = logging.getLogger("bayescale")

LINKS = ("log", "identity")
#: Names a parameter may not take: they mean something else to the model.
RESERVED = frozenset({"sigma", "nu", "loss", "log_loss"})
#: A positive parameter whose bounds span this ratio or more is sampled as its log (uniform on the log
#: scale within the bounds): a uniform prior over [1e-6, 1e4] puts 99.99% of its mass above 1.
WIDE = 1e3


class FormulaLaw(Law):
    """A law written as a formula; names that are columns are inputs, the others parameters.

    Parameters
    ----------
    formula : str
        E.g. ``"E + A/N^alpha + B/D^beta"`` (``^`` and ``**`` are powers). Parsed by
        :func:`~bayescale.laws.formula.parse.parse`, never evaluated as Python.
    columns : sequence of str
        The columns of the runs' table: a name among them is an input.
    target : str, default "loss"
        The column the law models.
    priors : mapping, optional
        Priors by parameter name (``Prior``, text such as ``"LogNormal(-1, 1)"`` or a number to fix it);
        a parameter given a prior here is sampled as written, not centred -- except a ``Uniform(low,
        high)``, which is taken as the parameter's bounds (below).
    bounds : mapping, optional
        ``name -> (low, high)``: a ``Uniform(low, high)`` prior, except for a centred amplitude,
        whose bounds set only its sign (its magnitude is the term's at the reference point).
    parameters : sequence of str, optional
        The parameters the formula must have, declared: any other non-column name is an error
        (a misspelt column). Without it, the parameters are listed back by the fit's log.
    link : {"log", "identity"}, optional
        The scale of the Student-t likelihood; default ``log`` when every target value is
        positive (``linear_inputs`` and the runs decide), else ``identity``.
    linear_inputs : sequence of str, optional
        Inputs whose values may be zero or negative (their coordinate is the value, not its log).
    name, citation : str, optional
        For summaries and reports.

    Notes
    -----
    How the model samples (what :meth:`describe` lists): a centred amplitude as the term's log value at
    the reference point; a positive parameter bounded across three or more decades as its log,
    uniform within the bounds; a parameter clamped as ``max(p, c)`` (``c > 0``) wherever it appears,
    with its bounds' lower end raised to ``c`` (a centred amplitude: sampled positive) and the clamp
    applied after sampling -- below the floor every value gives the same law, a plateau that took
    half the prior and that the chains could not leave. ``rewrite=False`` (fits saved before these
    rewrites) samples the formula and its priors as written. Least-squares baselines
    (:func:`~bayescale.laws.formula.least_squares.baseline`) use the formula as written (:attr:`tree`);
    the model uses :attr:`model_tree`.
    """

    exponents: tuple[str, ...] = ()

    is_formula = True

    def __init__(
        self,
        formula: str,
        columns: Sequence[str],
        *,
        target: str = "loss",
        priors: Mapping[str, PriorLike] | None = None,
        bounds: Mapping[str, Sequence[float]] | None = None,
        parameters: Sequence[str] | None = None,
        link: str = "log",
        linear_inputs: Sequence[str] = (),
        name: str | None = None,
        citation: str = "",
        rewrite: bool = True,
    ) -> None:
        self.rewrite = bool(rewrite)
        self.text = str(formula).strip()
        self.tree: Expr = parse(self.text)
        self.target = target
        columns = [str(c) for c in columns]
        if target in self.tree.names():
            raise FormulaError(f"the formula uses the target column {target!r} as an input; model it, not with it")
        names = _in_order(self.tree)
        self.inputs = tuple(n for n in names if n in columns)
        found = [n for n in names if n not in columns]
        if not self.inputs:
            raise FormulaError(
                f"the formula {self.text!r} uses no column of the runs (columns: {', '.join(columns)}); "
                "a law needs at least one input"
            )
        bad = sorted(set(found) & RESERVED)
        if bad:
            raise FormulaError(f"parameter name {bad[0]!r} is reserved for the noise model; rename it")
        if parameters is not None:
            declared = [str(p) for p in parameters]
            unknown = [n for n in found if n not in declared]
            if unknown:
                raise FormulaError(
                    f"{unknown[0]!r} in the formula is neither a column of the runs ({', '.join(columns)}) nor a "
                    f"declared parameter ({', '.join(declared) or 'none'}): a misspelt column? Fix the name or "
                    "declare the parameter"
                )
            unused = [p for p in declared if p not in found]
            if unused:
                raise FormulaError(f"declared parameter {unused[0]!r} does not appear in the formula")
        if not found:
            raise FormulaError(f"the formula {self.text!r} has no parameter to fit (every name is a column)")
        if link not in LINKS:
            raise FormulaError(f"unknown link {link!r}; choose log or identity")
        self.link = link
        self.linear_inputs = frozenset(linear_inputs) & set(self.inputs)
        self.user_priors = {k: as_prior(v) for k, v in (priors or {}).items()}
        self.bounds = {k: (float(v[0]), float(v[1])) for k, v in (bounds or {}).items()}
        for key, prior in list(self.user_priors.items()):  # --prior A=Uniform(lo, hi) is A's bounds
            if prior.dist == "Uniform" and self.rewrite:
                self.bounds[key] = (float(prior.kwargs["lower"]), float(prior.kwargs["upper"]))
                del self.user_priors[key]
        for key in (*self.user_priors, *self.bounds):
            if key not in found:
                raise PriorError(f"the formula has no parameter {key!r}; its parameters are {', '.join(found)}")
        for key, (lo, hi) in self.bounds.items():
            if not lo < hi:
                raise PriorError(f"the bounds of {key} are inverted or empty: [{lo:g}, {hi:g}]; give [low, high]")
        self.model_tree, self.limits = self._unclamped(found)
        self.structure = analyse(self.model_tree, set(self.inputs), found, set(self.inputs) - self.linear_inputs)
        self.centred: dict[str, Amplitude] = {
            k: a for k, a in self.structure.amplitudes.items() if k not in self.user_priors
        }
        self.positive = {k: self._positive(k) for k in self.centred}
        self.log_scaled = frozenset(
            k for k, (lo, hi) in self.limits.items()
            if self.rewrite and k not in self.centred and k not in self.user_priors and lo > 0 and hi / lo >= WIDE
            and f"log_{k}" not in found
        )  # fmt: skip
        self.natural_params = tuple(found)
        self.params = tuple(self._sampled_name(n) for n in found)
        self.exponents = tuple(n for n in found if self.structure.roles[n] in ("decay", "exponent"))
        self.name = name or self.tree.text()
        self.citation = citation
        self.formula = f"{target} = {self.tree.text()}"

    # --- identity -----------------------------------------------------------------------
    @property
    def key(self) -> str:
        """The law as JSON: what a saved fit stores to rebuild it."""
        return json.dumps(self.spec(), sort_keys=True)

    def spec(self) -> dict[str, Any]:
        """Everything that defines this law, as plain data (:meth:`from_spec` inverts it)."""
        return {
            "formula": self.text,
            "columns": [*self.inputs, self.target],
            "target": self.target,
            "priors": {k: p.to_dict() for k, p in self.user_priors.items()},
            "bounds": {k: list(v) for k, v in self.bounds.items()},
            "parameters": list(self.natural_params),
            "link": self.link,
            "linear_inputs": sorted(self.linear_inputs),
            "name": self.name,
            "citation": self.citation,
            "rewrite": self.rewrite,
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> FormulaLaw:
        """Rebuild a law from :meth:`spec` (a saved fit's)."""
        return cls(
            spec["formula"],
            spec["columns"],
            target=spec["target"],
            priors={k: Prior.from_dict(v) for k, v in spec.get("priors", {}).items()},
            bounds=spec.get("bounds"),
            parameters=spec.get("parameters"),
            link=spec.get("link", "log"),
            linear_inputs=spec.get("linear_inputs", ()),
            name=spec.get("name"),
            citation=spec.get("citation", ""),
            rewrite=bool(spec.get("rewrite", False)),  # saved before the rewrites: sampled as written
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FormulaLaw) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    # --- parameters ---------------------------------------------------------------------
    def _unclamped(self, found: list[str]) -> tuple[Expr, dict[str, tuple[float, float]]]:
        """The tree the model evaluates and each bounded parameter's limits: a parameter clamped as
        ``max(p, c)`` at every use is sampled above ``c`` with the clamp removed (the same law, without
        the flat plateau below the floor), where its bounds reach above ``c`` or it is a centred
        amplitude (positive by default); otherwise the clamp stays."""
        limits = dict(self.bounds)
        self.floors: dict[str, float] = {}
        if not self.rewrite:  # a fit saved before the rewrites existed: its law as it was sampled
            return self.tree, limits
        floors = clamp_floors(self.tree, set(found) - set(self.user_priors))
        floors = {k: c for k, c in floors.items() if k not in limits or limits[k][1] > c}
        if not floors:
            return self.tree, limits
        tree = unclamp(self.tree, floors)
        log_inputs = set(self.inputs) - self.linear_inputs
        amplitudes = analyse(tree, set(self.inputs), found, log_inputs).amplitudes
        kept = {k: c for k, c in floors.items() if k in limits or k in amplitudes}
        if kept != floors:  # an unbounded clamped parameter that is no amplitude keeps its clamp
            tree = unclamp(self.tree, kept)
        for k, c in kept.items():
            if k in limits:
                limits[k] = (max(limits[k][0], c), limits[k][1])
        self.floors = kept  # held in the model as max(p, c) after sampling (a centred amplitude can go below)
        return tree, limits

    def _positive(self, name: str) -> bool:
        if name in self.limits:
            return self.limits[name][0] >= 0
        return True

    def _sampled_name(self, name: str) -> str:
        if name in self.log_scaled:
            return f"log_{name}"
        if name not in self.centred:
            return name
        return f"log_{name}_ref" if self.positive[name] else f"{name}_ref"

    def roles(self) -> dict[str, str]:
        """Each natural parameter's role (:data:`~bayescale.laws.formula.structure.ROLES`)."""
        return dict(self.structure.roles)

    def check_runs(self, runs: Runs) -> None:
        """Raise if the runs lack an input, or an input the formula takes the log of is not positive."""
        missing = [x for x in self.inputs if not runs.has(x)]
        if missing:
            raise RunsError(f"the runs have no column {missing[0]!r}, which the formula {self.text!r} uses")
        if all(np.unique(runs.values(x)).size < 2 for x in self.inputs):
            raise RunsError(f"every run has the same {', '.join(self.inputs)}: the law needs runs that differ")

    def default_priors(self, runs: Runs) -> dict[str, Prior]:
        """Priors by role, scaled to the target's values; the user's priors and bounds first.

        Checked by their prior predictive: where the law's values under the priors (1,000 draws) miss
        some run's target -- outside their central 99% -- the widths of the default priors of offsets,
        amplitudes and coefficients are doubled, up to three times (said in the fit's log).
        """
        scale = float(np.sqrt(np.mean(runs.loss**2)))
        priors = self._role_priors(scale, 1.0)
        first = best = self.prior_misses(runs, priors)
        widen, chosen = 1.0, 1.0
        while best and widen < 8:
            widen *= 2
            wider = self._role_priors(scale, widen)
            missed = self.prior_misses(runs, wider)
            if missed < best:  # wider only where it covers more runs
                priors, best, chosen = wider, missed, widen
        if first:
            log.info(
                "formula law %s: the default priors' predictive missed %d of %d runs' targets (outside its 99%%); "
                "%s", self.name, first, len(runs),
                f"their offsets, amplitudes and coefficients widened {chosen:g}x (misses now {best})" if chosen > 1
                else "widening them did not help: give priors or bounds (--prior, a law file)",
            )  # fmt: skip
        return priors

    def prior_misses(self, runs: Runs, priors: Mapping[str, Prior], draws: int = 1000, seed: int = 0) -> int:
        """How many runs' targets fall outside the central 99% of the law's values under ``priors``."""
        from bayescale.priors import to_scipy

        rng = np.random.default_rng(seed)
        p = {}
        for name, prior in priors.items():
            if name not in self.params:
                continue
            if prior.is_fixed:
                p[name] = np.full((draws, 1), float(prior.kwargs["value"]))
            else:
                p[name] = np.asarray(to_scipy(prior).rvs(size=draws, random_state=rng), dtype=float)[:, None]
        coords = {x: runs.log(x)[None, :] for x in self.inputs}
        with np.errstate(all="ignore"):
            values = np.broadcast_to(self.value(p, coords, self.reference(runs), np), (draws, len(runs)))
            values = np.where(np.isfinite(values), values, np.nan)
            if np.isnan(values).all(axis=0).any():
                return int(np.isnan(values).all(axis=0).sum())
            lo, hi = np.nanquantile(values, [0.005, 0.995], axis=0)
        y = runs.loss
        return int(np.sum((y < lo) | (y > hi)))

    def _role_priors(self, scale: float, widen: float) -> dict[str, Prior]:
        """The priors of :meth:`default_priors`, the role priors' widths times ``widen``."""
        out: dict[str, Prior] = {}
        for name in self.natural_params:
            sampled = self._sampled_name(name)
            if name in self.user_priors:
                out[sampled] = self.user_priors[name]
            elif name in self.centred:
                out[sampled] = (
                    Prior("Normal", mu=float(np.log(0.4 * scale)), sigma=1.5 * widen)
                    if self.positive[name]
                    else Prior("Normal", mu=0.0, sigma=2.0 * scale * widen)
                )
            elif name in self.log_scaled:
                lo, hi = self.limits[name]
                out[sampled] = Prior("Uniform", lower=float(np.log(lo)), upper=float(np.log(hi)))
            elif name in self.limits:
                lo, hi = self.limits[name]
                out[sampled] = Prior("Uniform", lower=lo, upper=hi)
            else:
                role = self.structure.roles[name]
                out[sampled] = role_prior(role, scale, widen if role in ("offset", "coefficient") else 1.0)
        return out

    # --- values ---------------------------------------------------------------------------
    def reference(self, runs: Runs) -> dict[str, float]:
        """The mean coordinate of each input (log for positive inputs): where amplitudes are centred."""
        return {x: float(np.mean(runs.log(x))) for x in self.inputs}

    def _natural(self, p: Mapping[str, Array], ref: Mapping[str, Any], xp: Any) -> dict[str, Array]:
        values = {n: p[self._sampled_name(n)] for n in self.natural_params if n not in self.centred}
        for name in self.log_scaled:
            values[name] = xp.exp(values[name])
        for name, amp in self.centred.items():
            shift = 0.0
            for x, exponent in amp.powers:
                shift = shift + evaluate(exponent, values, {}, frozenset(), xp) * ref[x]
            sampled = p[self._sampled_name(name)]
            values[name] = xp.exp(sampled - shift) if self.positive[name] else sampled * xp.exp(-shift)
        for name, floor in self.floors.items():  # the clamp's floor, exactly: max(p, c)
            values[name] = xp.maximum(values[name], floor)
        return values

    def value(self, p: Mapping[str, Array], coords: Mapping[str, Array], ref: Mapping[str, Any], xp: Any) -> Array:
        """The formula's value (on the target's own scale) from sampled parameters and input coordinates.

        With numpy, draws where the formula is undefined (a negative number to a fractional power)
        give NaN silently: the likelihood gives them no weight, and predictions say so.
        """
        if xp is np:
            with np.errstate(all="ignore"):
                return evaluate(self.model_tree, self._natural(p, ref, xp), coords, self._log_inputs, xp)
        return evaluate(self.model_tree, self._natural(p, ref, xp), coords, self._log_inputs, xp)

    @property
    def _log_inputs(self) -> set[str]:
        return set(self.inputs) - self.linear_inputs

    def log_loss(self, p: Mapping[str, Array], logx: Mapping[str, Array], ref: Mapping[str, float], xp: Any) -> Array:
        """The likelihood's location: log of the formula (link ``log``) or the formula itself."""
        value = self.value(p, logx, ref, xp)
        if self.link == "identity":
            return value
        if xp is np:
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.log(value)
        return xp.log(value)

    def initial_values(self, runs: Runs, priors: Mapping[str, Prior]) -> dict[str, float]:
        """The best of 64 least-squares fits started from the priors (the chains start there, unjittered:
        a formula's default starting point -- PyMC's centres of the priors -- may be where it is not finite)."""
        from bayescale.laws.formula.least_squares import initial_values

        return initial_values(self, runs, priors)

    def coordinate(self, name: str, values: np.ndarray, dtype: type = float) -> np.ndarray:
        """The log of a positive input; the value itself for an input in :attr:`linear_inputs`."""
        values = np.asarray(values, dtype=dtype)
        return values if name in self.linear_inputs else np.log(values)

    @property
    def discrepancy_inputs(self) -> tuple[str, ...]:
        """The positive inputs, when one or two: the model discrepancy's GP is a full tensor basis
        (12 functions per input), which three or more inputs would make 1,728+ wide; such laws fit
        without a discrepancy (their bands: the law's own and the calibrated band scale)."""
        logs = tuple(x for x in self.inputs if x not in self.linear_inputs)
        return logs if 1 <= len(logs) <= 2 else ()

    def natural(self, p: Mapping[str, Array], ref: Mapping[str, float]) -> dict[str, np.ndarray]:
        """The formula's own parameters (numpy) from sampled ones."""
        with np.errstate(over="ignore", invalid="ignore"):
            return {k: np.asarray(v, dtype=float) for k, v in self._natural(p, ref, np).items()}

    def describe(self) -> str:
        """One line per parameter: its role, prior source and, for centred amplitudes, what is sampled."""
        lines = [f"law {self.name}: {self.formula} (likelihood: Student-t on the {self.link} scale)"]
        lines.append(f"  inputs (columns): {', '.join(self.inputs)}")
        parts = []
        for name in self.natural_params:
            role = self.structure.roles[name]
            extra = f", sampled as {self._sampled_name(name)}" if self._sampled_name(name) != name else ""
            if name in self.floors:
                extra += f", at or above its clamp's floor {self.floors[name]:g}"
            parts.append(f"{name} ({role}{extra})")
        lines.append(f"  parameters: {', '.join(parts)}")
        return "\n".join(lines)


def role_prior(role: str, scale: float, widen: float = 1.0) -> Prior:
    """The weakly informative default prior of a parameter by role; ``scale`` is the target's RMS;
    ``widen`` multiplies the width of an offset's or coefficient's."""
    if role == "decay":
        return Prior("LogNormal", mu=float(np.log(0.3)), sigma=1.0)
    if role == "exponent":
        return Prior("Normal", mu=0.0, sigma=1.0)
    if role == "offset":
        return Prior("Normal", mu=0.0, sigma=2.0 * scale * widen)
    if role in ROLES:
        return Prior("Normal", mu=0.0, sigma=2.0 * widen)
    raise ValueError(f"unknown role {role!r}")  # pragma: no cover - ROLES is the list


def _in_order(tree: Expr) -> list[str]:
    seen: dict[str, None] = {}
    for node in tree.walk():
        name = getattr(node, "name", None)
        if name is not None and not hasattr(node, "args"):
            seen.setdefault(name, None)
    return list(seen)


def needs_positive(law: FormulaLaw) -> set[str]:
    """Inputs whose log (or non-integer power) the formula takes."""
    return uses_log_of(law.tree, set(law.inputs))


__all__ = ["FUNCTIONS", "LINKS", "FormulaLaw", "needs_positive", "role_prior"]
