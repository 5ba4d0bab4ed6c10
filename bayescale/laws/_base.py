"""What every scaling law provides; the families live in sibling modules."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np

from bayescale.data import Runs
from bayescale.errors import LawError, RunsError
from bayescale.priors import Prior

Array = Any  # a numpy array or a PyTensor variable


def log_sum_exp(terms: list[Array], xp: Any) -> Array:
    """log(sum(exp(t) for t in terms)), stable, for numpy and PyTensor alike.

    PyTensor and float64 numpy get nested ``logaddexp`` (exact gradients; ``log1p``
    accuracy, which the golden-section searches of :mod:`bayescale.allocation` need);
    float32 numpy -- the draws of ``predict`` -- gets one max shift, several times faster.
    Terms may be ``-inf`` (a zero irreducible loss) as long as one is finite.
    """
    if xp is not np or np.result_type(*terms) != np.float32:
        out = terms[-1]
        for t in reversed(terms[:-1]):  # logaddexp(t0, logaddexp(t1, t2)): the graph the laws always had
            out = xp.logaddexp(t, out)
        return out
    m = terms[0]
    for t in terms[1:]:
        m = np.maximum(m, t)
    total = np.exp(terms[0] - m)
    for t in terms[1:]:  # in place: the same sums as sum(exp(t - m)), without the temporaries
        shifted = np.subtract(t, m)
        total += np.exp(shifted, out=shifted)
    total = np.log(total, out=total)
    total += m
    return total


def log_sigmoid(x: Array, xp: Any) -> Array:
    """log(1 / (1 + exp(-x))), stable for numpy and PyTensor alike."""
    return -xp.logaddexp(0.0, -x)


class Law(ABC):
    """A scaling law: mean loss as a function of N, D or C, with named parameters.

    A law is fitted in log space through a *centred* parametrisation: each power-law term
    is parametrised by its log value at a reference scale inside the data (the mean of the
    log inputs), which removes the near-perfect correlation between an amplitude and its
    exponent. :meth:`natural` maps the sampled parameters to the physical ones
    (E, A, alpha, ...), which are what users read.

    Attributes
    ----------
    name : str
        Registry name (``chinchilla``, ``kaplan``, ``power:C``...).
    inputs : tuple of str
        The run columns the law needs, among ``N``, ``D``, ``C``.
    params : tuple of str
        Sampled parameters: the keys of the priors.
    natural_params : tuple of str
        Physical parameters reported by summaries.
    formula : str
        The law in words, for reports.
    """

    name: str
    inputs: tuple[str, ...]
    params: tuple[str, ...]
    natural_params: tuple[str, ...]
    #: The sampled parameters that are power-law exponents (what transfers between ladders;
    #: a pooled fit draws them from a population, :mod:`bayescale.pooling`).
    exponents: tuple[str, ...] = ()
    formula: str

    #: The likelihood's scale: Student-t on the log of the target (``log``), or on the target itself.
    link: str = "log"

    #: Whether the law is a user's formula over any columns (:mod:`bayescale.laws.formula`), whose
    #: runs have only its own inputs; the built-in families speak N, D, C and U.
    is_formula: bool = False

    @property
    def key(self) -> str:
        """What a saved fit stores to rebuild the law with :func:`bayescale.laws.get_law` (its name)."""
        return self.name

    def observed(self, y: np.ndarray) -> np.ndarray:
        """The target on the likelihood's scale (:attr:`link`): its log, or itself."""
        y = np.asarray(y, dtype=float)
        return np.log(y) if self.link == "log" else y

    def to_target(self, v: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`observed`: values on the likelihood's scale back on the target's."""
        return np.exp(v) if self.link == "log" else np.asarray(v)

    def coordinate(self, name: str, values: np.ndarray, dtype: type = float) -> np.ndarray:
        """The coordinate the law takes input ``name`` in: its natural log (formula laws: the value
        itself for inputs that may be zero or negative)."""
        return np.log(np.asarray(values, dtype=dtype))

    @property
    def discrepancy_inputs(self) -> tuple[str, ...]:
        """The inputs the model discrepancy's GP lives on (by default all of :attr:`inputs`)."""
        return self.inputs

    def initial_values(self, runs: Runs, priors: Mapping[str, Prior]) -> dict[str, float]:
        """Starting values of sampled parameters for the chains (default none: PyMC's, jittered)."""
        return {}

    def reference(self, runs: Runs) -> dict[str, float]:
        """Log reference scales of the centred parametrisation: the mean log of each input."""
        return {x: float(np.mean(runs.log(x))) for x in self.inputs}

    def check_runs(self, runs: Runs) -> None:
        """Raise if the runs cannot inform this law at all (missing inputs, no input varies)."""
        missing = [x for x in self.inputs if not runs.has(x)]
        if missing:
            raise LawError(
                f"law {self.name} needs {' and '.join(self.inputs)} but the runs have no "
                f"{', '.join(missing)} (they have {', '.join(runs.inputs)}); map the column or choose "
                "another law, e.g. --law power:C"
            )
        if all(np.unique(runs.values(x)).size < 2 for x in self.inputs):
            fixed = ", ".join(f"{x} = {runs.values(x)[0]:g}" for x in self.inputs)
            raise RunsError(
                f"every run has the same {' and '.join(self.inputs)} ({fixed}); law {self.name} needs runs that "
                f"differ in {' or '.join(self.inputs)}: add runs of another size or token count"
            )

    @abstractmethod
    def default_priors(self, runs: Runs) -> dict[str, Prior]:
        """Weakly informative priors on :attr:`params`, scaled to the runs."""

    @abstractmethod
    def log_loss(self, p: Mapping[str, Array], logx: Mapping[str, Array], ref: Mapping[str, float], xp: Any) -> Array:
        """Log of the expected loss from sampled parameters ``p`` and log inputs ``logx``.

        ``xp`` is ``numpy`` or ``pytensor.tensor``; arrays broadcast.
        """

    @abstractmethod
    def natural(self, p: Mapping[str, Array], ref: Mapping[str, float]) -> dict[str, np.ndarray]:
        """Physical parameters (numpy) from sampled parameters ``p``."""

    def optimum_closed_form(
        self, nat: Mapping[str, np.ndarray], log_compute_per_k: float
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Log N_opt and log D_opt on the isoFLOP line ``N D = C / k``, if the law has a closed form.

        The default (None) makes :mod:`bayescale.allocation` minimise numerically.
        """
        return None

    def tokens_closed_form(self, nat: Mapping[str, np.ndarray], N: np.ndarray, target: np.ndarray) -> np.ndarray | None:
        """Tokens D at which a model of N parameters reaches loss ``target`` (inf if never), if closed form."""
        return None

    def __repr__(self) -> str:
        return f"<law {self.name}: {self.formula}>"


def amplitude_prior(runs: Runs) -> Prior:
    """Prior on the log of one reducible term at the reference scale.

    Centred on 40% of the mean loss with a standard deviation of 1.2 in log space: a term
    between about 4% and 4x of the mean loss at 2 standard deviations.
    """
    return Prior("Normal", mu=float(np.log(0.4 * runs.loss.mean())), sigma=1.2)


def irreducible_prior(runs: Runs) -> Prior:
    """Prior on E: truncated to (0, smallest observed loss), centred at 60% of it."""
    lmin = float(runs.loss.min())
    return Prior("TruncatedNormal", mu=0.6 * lmin, sigma=0.35 * lmin, lower=0.0, upper=lmin)


def exponent_prior(center: float, spread: float = 0.8) -> Prior:
    """LogNormal prior on a power-law exponent (median ``center``)."""
    return Prior("LogNormal", mu=float(np.log(center)), sigma=spread)


def log_E(E: Array, xp: Any) -> Array:
    """log E, or -inf when E is fixed at 0 (the pure power law)."""
    if isinstance(E, (int, float)):
        return np.log(E) if E > 0 else -np.inf
    if xp is np:
        with np.errstate(divide="ignore"):  # E = 0 draws: log 0 = -inf, which logaddexp handles exactly
            return np.log(E)
    return xp.log(E)
