"""Links from a loss (or compute) to a downstream metric: the second step of the task chain.

A task's metric (accuracy, in [0, 1], higher is better) is a function of the run's *progress*
``u``: minus its task loss (``u = -L``: lower loss, more progress) when the chain goes through a
loss, or ``u = ln C`` when it goes through compute directly. Two links:

- ``sigmoid`` (Bhagia et al. 2024, the OLMo ladder):
  ``metric = floor + (ceiling - floor) / (1 + exp(-k (u - u0)))``; the floor is the task's chance
  level, the ceiling at most 1, ``u0`` the midpoint of the rise and ``k`` its steepness.
- ``exp`` (Gadre et al. 2024, top-1 error ``eps - k exp(-gamma L)``):
  ``metric = min(1, floor + exp(log_h + gamma (u - u_ref)))``, with ``log_h`` the log of the
  metric above the floor at the runs' mean progress ``u_ref``.

The floor is drawn near the chance level, ``floor ~ TruncatedNormal(chance, FLOOR_SD)`` on
[0, MAX_FLOOR]: runs can sit a little off chance before a task rises.

Observed metrics scatter about the link with a Student-t (5 degrees of freedom: one odd run does
not bend the link) of scale ``s``. Priors are scaled to the runs' spread ``w`` of progress:
the midpoint ``u0 ~ N(u_max, 2 w)`` (anywhere from inside the runs to well beyond the most
advanced one: a task that has not risen yet may rise at the next size), steepness
``k w ~ LogNormal(ln 4, 1)``, ``ceiling = floor + (1 - floor) h``, ``h ~ Beta(3, 1)`` (a ceiling
high rather than low: :data:`CEILING_BETA`);
``gamma w ~ LogNormal(0, 1)``, ``log_h ~ N(ln(mean metric - floor), 1)``; ``s ~ HalfNormal(0.05)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

#: Degrees of freedom of the metric's Student-t scatter about the link.
METRIC_NU = 5.0
#: Scale of the HalfNormal prior of the metric's scatter ``s`` (accuracy units).
SCATTER_SCALE = 0.05
#: Prior standard deviation of the link's floor about the chance level (accuracy units): a model can
#: sit a few points off chance before the task's rise (Pythia's LogiQA: 0.19-0.22 at chance 0.25).
FLOOR_SD = 0.03
#: The floor's upper bound (the ceiling lies between the floor and 1).
MAX_FLOOR = 0.99
#: Beta prior of the ceiling's share ``h`` of the way from the floor to 1: Beta(3, 1), median 0.79,
#: P(h < 0.5) = 1/8 -- a benchmark's ceiling for strong models lies high (ARC, HellaSwag, PIQA above
#: 0.9; MMLU about 0.9). A uniform h let ladders that sit low on their rise claim a ceiling at the
#: runs (the OLMo ladder's ARC-Challenge: ceiling 0.49 [0.41, 0.86], target 0.62-0.64), and a flat
#: task's link put its chains in two modes (h near 0, or the rise far beyond the runs).
CEILING_BETA = (3.0, 1.0)
#: The smallest spread of progress the priors are scaled to (a ladder whose runs all have one loss).
MIN_SPREAD = 1e-3


@dataclass(frozen=True)
class Link:
    """One link family: its name, parameters and formula."""

    name: str
    params: tuple[str, ...]
    formula: str

    def mean(self, p: Mapping[str, Any], u: Any, floor: Any, xp: Any = np) -> Any:
        """The link's metric at progress ``u`` (numpy or PyTensor, broadcasting)."""
        if self.name == "sigmoid":  # the ceiling is floor + (1 - floor) h
            z = p["k"] * (u - p["u0"])
            return floor + (1.0 - floor) * p["h"] * (expit(z) if xp is np else xp.sigmoid(z))
        log_rise = p["log_h"] + p["gamma"] * (u - p["u_ref"])
        if xp is np:  # far beyond the runs the rise overflows: the metric is capped at 1 anyway
            log_rise = np.minimum(log_rise, 0.0)
        return xp.minimum(floor + xp.exp(log_rise), 1.0)


SIGMOID = Link("sigmoid", ("u0", "k", "h"), "metric = floor + (ceiling - floor) / (1 + exp(-k (u - u0)))")
EXP = Link("exp", ("log_h", "gamma"), "metric = min(1, floor + exp(log_h + gamma (u - u_ref)))")
LINKS: dict[str, Link] = {SIGMOID.name: SIGMOID, EXP.name: EXP}


def get_link(name: str) -> Link:
    """The link called ``name`` (``sigmoid`` or ``exp``).

    Raises
    ------
    ValueError
        For an unknown name (the caller turns it into a user error).
    """
    if name not in LINKS:
        raise ValueError(f"unknown link {name!r}; choose one of {', '.join(LINKS)}")
    return LINKS[name]


def prior_arguments(progress: np.ndarray, metric: np.ndarray, floor: float) -> dict[str, float]:
    """The data-scaled prior arguments of both links (see the module's docstring)."""
    w = max(float(np.ptp(progress)), MIN_SPREAD)
    above = max(float(np.mean(metric)) - floor, 0.01)
    return {
        "u0_mu": float(np.max(progress)),
        "u0_sigma": 2.0 * w,
        "log_k_mu": float(np.log(4.0 / w)),
        "log_gamma_mu": float(np.log(1.0 / w)),
        "log_h_mu": float(np.log(above)),
        "u_ref": float(np.mean(progress)),
    }


def build_model(link: Link, progress: np.ndarray, metric: np.ndarray, floor: float) -> Any:
    """The link's PyMC model of one task: every value from the runs enters as ``pm.Data``.

    Variables: the link's parameters (``u0``, ``k``, ``h`` or ``log_h``, ``gamma``), the
    ``floor`` and the scatter ``s``; the observed ``metric`` (dims ``run``).
    """
    import pymc as pm
    import pytensor.tensor as pt

    values = model_data(progress, metric, floor)
    with pm.Model(coords={"run": np.arange(len(progress))}) as model:
        u = pm.Data("progress", values["progress"])
        y = pm.Data("metric_observed", values["metric_observed"], dims="run")
        chance = pm.Data("chance", values["chance"])
        a = pm.Data("prior_arguments", values["prior_arguments"])
        arg = dict(zip(ARGUMENTS, [a[i] for i in range(len(ARGUMENTS))], strict=True))
        if link.name == "sigmoid":
            p = {
                "u0": pm.Normal("u0", arg["u0_mu"], arg["u0_sigma"]),
                "k": pm.LogNormal("k", arg["log_k_mu"], 1.0),
                "h": pm.Beta("h", *CEILING_BETA),
            }
        else:
            p = {
                "log_h": pm.Normal("log_h", arg["log_h_mu"], 1.0),
                "gamma": pm.LogNormal("gamma", arg["log_gamma_mu"], 1.0),
                "u_ref": arg["u_ref"],
            }
        # the floor near the task's chance level: models sit a little above or below it (answer-position bias)
        floor = pm.TruncatedNormal("floor", mu=chance, sigma=FLOOR_SD, lower=0.0, upper=MAX_FLOOR)
        mu = link.mean(p, u, floor, pt)
        s = pm.HalfNormal("s", SCATTER_SCALE)
        pm.StudentT("metric", nu=METRIC_NU, mu=mu, sigma=s, observed=y, dims="run")
    return model


#: Order of the prior arguments in the model's ``prior_arguments`` vector.
ARGUMENTS = ("u0_mu", "u0_sigma", "log_k_mu", "log_gamma_mu", "log_h_mu", "u_ref")


def model_data(progress: np.ndarray, metric: np.ndarray, floor: float) -> dict[str, Any]:
    """The value of every ``pm.Data`` of :func:`build_model`."""
    args = prior_arguments(progress, metric, floor)
    return {
        "progress": np.asarray(progress, dtype=float),
        "metric_observed": np.asarray(metric, dtype=float),
        "chance": np.asarray(float(floor)),
        "prior_arguments": np.array([args[k] for k in ARGUMENTS]),
    }
