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
from bayescale.priors import Prior, PriorLike, as_prior, to_pymc

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


def resolve_priors(law: Law, runs: Runs, priors: Mapping[str, PriorLike] | None = None) -> dict[str, Prior]:
    """The priors a fit uses: the user's where given, else the law's data-scaled defaults.

    Raises
    ------
    PriorError
        If a user prior names a parameter the law does not have.
    """
    resolved = {**law.default_priors(runs), **noise_priors()}
    for name, value in (priors or {}).items():
        if name not in resolved:
            raise PriorError(f"law {law.name} has no parameter {name!r}; its parameters are {', '.join(resolved)}")
        resolved[name] = as_prior(value)
    return resolved


def n_free_params(priors: Mapping[str, Prior]) -> int:
    """How many parameters are sampled (fixed ones excluded)."""
    return sum(not p.is_fixed for p in priors.values())


def check_identifiable(law: Law, runs: Runs, priors: Mapping[str, Prior]) -> None:
    """Raise when the runs cannot support the law: missing inputs, one distinct value, too few runs."""
    law.check_runs(runs)
    k = n_free_params(priors)
    if len(runs) < k + 1:
        raise RunsError(
            f"law {law.name} has {k} free parameters ({', '.join(n for n, p in priors.items() if not p.is_fixed)}); "
            f"it needs at least {k + 1} runs, got {len(runs)}. Add runs or choose a smaller law (--law power:C)"
        )


def build_model(law: Law, runs: Runs, priors: Mapping[str, Prior]) -> pm.Model:
    """Turn (law, runs, priors) into a ``pm.Model`` with observed ``log_loss``.

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
    import pytensor.tensor as pt

    missing = [n for n in (*law.params, *NOISE_PARAMS) if n not in priors]
    if missing:
        raise PriorError(f"no prior given for {', '.join(missing)}")
    ref = law.reference(runs)
    with pm.Model(coords={"run": np.arange(len(runs))}) as model:
        logx = {x: pm.Data(f"log_{x}", runs.log(x), dims="run") for x in law.inputs}
        p = {name: to_pymc(name, priors[name]) for name in law.params}
        mu = law.log_loss(p, logx, ref, pt)
        sigma = to_pymc("sigma", priors["sigma"])
        nu = to_pymc("nu", priors["nu"])
        pm.StudentT("log_loss", nu=nu, mu=mu, sigma=sigma, observed=np.log(runs.loss), dims="run")
    return model
