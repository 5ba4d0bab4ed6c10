"""Build the PyMC model of a law fitted to runs; no sampling happens here.

The likelihood is on log loss: ``log L_i ~ StudentT(nu, log mu(N_i, D_i), sigma)``, robust
to the occasional diverged or mis-logged run. Inputs enter as ``pm.Data`` so that the
model can be re-used on other runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from bayescale.data import Runs
from bayescale.errors import PriorError, RunsError
from bayescale.laws import Law
from bayescale.priors import Prior, PriorLike, as_prior, is_data_value, to_pymc

if TYPE_CHECKING:
    import pymc as pm

#: Parameters of the observation noise, shared by every law.
NOISE_PARAMS = ("sigma", "nu")


def noise_priors() -> dict[str, Prior]:
    """Default priors of the Student-t noise on log loss.

    ``sigma`` ~ HalfNormal(0.05): residuals of a few percent of the loss at most;
    ``nu`` ~ Gamma(2, 0.1) (Juarez and Steel 2010): from Cauchy-like to nearly normal tails.
    """
    return {"sigma": Prior("HalfNormal", sigma=0.05), "nu": Prior("Gamma", alpha=2.0, beta=0.1)}


def resolve_priors(
    law: Law, runs: Runs, priors: Mapping[str, PriorLike] | None = None, prior_set: str = "weak"
) -> dict[str, Prior]:
    """The priors a fit uses: the user's where given, else the prior set's, else the law's defaults.

    Parameters
    ----------
    law, runs
        The law and the runs (defaults are scaled to them).
    priors : mapping, optional
        User overrides by parameter name.
    prior_set : {"weak", "literature", "auto"}, default "weak"
        ``weak``: the law's data-scaled defaults; ``literature``: the population prior of
        :mod:`bayescale.literature` where it informs a parameter; ``auto``: literature when
        the law has one. ``"<set> without <source>"``: the population re-learned without that source.

    Raises
    ------
    PriorError
        If a user prior names a parameter the law does not have, or the set is unknown.
    """
    from bayescale import literature

    resolved = {**law.default_priors(runs), **noise_priors()}
    if literature.resolve_set(prior_set, law.name) == "literature":
        resolved.update(literature.priors_for(law.name, runs, exclude=literature.split_set(prior_set)[1]))
    for name, value in (priors or {}).items():
        if name not in resolved:
            raise PriorError(f"law {law.name} has no parameter {name!r}; its parameters are {', '.join(resolved)}")
        resolved[name] = as_prior(value)
    return resolved


def n_free_params(priors: Mapping[str, Prior]) -> int:
    """How many parameters are sampled (fixed ones excluded)."""
    return sum(not p.is_fixed for p in priors.values())


#: Fewest runs any fit accepts: below it nothing about a trend can be learned.
MIN_RUNS = 3


def check_identifiable(law: Law, runs: Runs, priors: Mapping[str, Prior]) -> None:
    """Raise when the runs cannot answer anything: missing inputs, no variation, fewer than 3 runs.

    Fewer runs than parameters, one distinct D, or N and D on one tokens-per-parameter line
    are *not* errors: the posterior along what the runs cannot decide is the prior's (see
    :mod:`bayescale.literature`), and predictions there carry its width.
    """
    law.check_runs(runs)
    if len(runs) < MIN_RUNS:
        raise RunsError(
            f"a fit needs at least {MIN_RUNS} runs, got {len(runs)}: with fewer, the loss has no trend to "
            "extrapolate. Add runs"
        )


def structure(law: Law, priors: Mapping[str, Prior]) -> tuple:
    """What a compiled model of ``law`` depends on besides its data (:func:`model_data`).

    The law, each prior's family and parameter names, fixed values and infinite bounds: two
    fits with equal structures share one compiled model (:mod:`bayescale.compiled`).
    """
    parts = []
    for name in (*law.params, *NOISE_PARAMS):
        prior = priors[name]
        if prior.is_fixed:
            parts.append((name, "fixed", float(prior.kwargs["value"])))
        else:
            constants = tuple(sorted((k, float(v)) for k, v in prior.kwargs.items() if not is_data_value(v)))
            parts.append((name, prior.dist, tuple(sorted(prior.kwargs)), constants))
    return (law.key, tuple(parts))  # a formula law's key is its whole spec: two formulas never share a graph


def constants(law: Law, runs: Runs, priors: Mapping[str, Prior]) -> dict[str, float]:
    """The scalars a law's model takes from its runs, by name, in the order of its ``constants`` vector.

    ``ref_<x>`` (the reference scales of the centred parametrisation) and ``<param>__<kwarg>``
    for each finite parameter of a sampled prior (data-scaled priors change with the runs).
    """
    ref = law.reference(runs)
    values = {f"ref_{x}": float(ref[x]) for x in law.inputs}
    for name in (*law.params, *NOISE_PARAMS):
        prior = priors[name]
        if not prior.is_fixed:
            values |= {f"{name}__{k}": float(v) for k, v in prior.kwargs.items() if is_data_value(v)}
    return values


def model_data(law: Law, runs: Runs, priors: Mapping[str, Prior]) -> dict[str, np.ndarray]:
    """The value of every ``pm.Data`` of :func:`build_model`, by name: all it takes from its runs.

    Three containers, because nutpie's compile time grows with their number (one per scalar
    took 16.7 s on 245 runs, three take about 10 s): ``log_inputs`` (one row per input of the
    law, one column per run), ``log_loss_observed`` (per run) and ``constants`` (the vector of
    :func:`constants`).
    """
    return {
        "log_inputs": np.stack([law.coordinate(x, runs.values(x)) for x in law.inputs]),
        "log_loss_observed": law.observed(runs.loss),
        "constants": np.array(list(constants(law, runs, priors).values()), dtype=float),
    }


def jittered(model: pm.Model) -> set:
    """The free variables whose chains' starting points PyMC jitters: those without an initial value
    (a law's :meth:`~bayescale.laws.Law.initial_values`, e.g. a formula law's least-squares fit)."""
    return {rv for rv in model.free_RVs if model.rvs_to_initial_values.get(rv) is None}


def build_model(law: Law, runs: Runs, priors: Mapping[str, Prior]) -> pm.Model:
    """Turn (law, runs, priors) into a ``pm.Model`` with observed ``log_loss``.

    Everything taken from the runs -- inputs, observed log losses, reference scales, the
    data-scaled priors' parameters -- is in three ``pm.Data`` (:func:`model_data`), so that a compiled
    model can be re-fitted to other runs of the same :func:`structure` without recompiling.

    Parameters
    ----------
    law : Law
        The scaling law.
    runs : Runs
        The runs (inputs the law needs must be present).
    priors : mapping of str to Prior
        One prior per law parameter plus ``sigma`` and ``nu`` (see :func:`resolve_priors`).

    Returns
    -------
    pymc.Model
    """
    import pymc as pm

    missing = [n for n in (*law.params, *NOISE_PARAMS) if n not in priors]
    if missing:
        raise PriorError(f"no prior given for {', '.join(missing)}")
    import pytensor.tensor as pt

    values = model_data(law, runs, priors)
    names = list(constants(law, runs, priors))
    with pm.Model(coords={"run": np.arange(len(runs))}) as model:
        inputs = pm.Data("log_inputs", values["log_inputs"])
        packed = pm.Data("constants", values["constants"])
        const = {name: packed[i] for i, name in enumerate(names)}
        logx = {x: inputs[i] for i, x in enumerate(law.inputs)}
        ref = {x: const[f"ref_{x}"] for x in law.inputs}

        def prior(name: str):
            kwargs = {k: const[f"{name}__{k}"] for k in priors[name].kwargs if f"{name}__{k}" in const}
            return to_pymc(name, priors[name], kwargs)

        p = {name: prior(name) for name in law.params}
        for name, value in law.initial_values(runs, priors).items():
            model.set_initval(p[name], value)
        mu = law.log_loss(p, logx, ref, pt)
        sigma, nu = prior("sigma"), prior("nu")
        observed = pm.Data("log_loss_observed", values["log_loss_observed"], dims="run")
        pm.StudentT("log_loss", nu=nu, mu=mu, sigma=sigma, observed=observed, dims="run")
    return model
