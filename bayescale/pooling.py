"""Partial pooling: one hierarchical fit of several ladders (data mixes, eval sets, configurations).

Each group ``g`` has its own law parameters. Its **exponents** (``law.exponents``: alpha and
beta of Chinchilla's law) are drawn from a population whose location and spread are learned.
The pooling happens in the exponent's *prior quantile space*: with ``F_g`` the group's own
prior (the prior a single fit of its runs would use),

    theta_g = F_g^-1(Phi(w_g)),   w_g = mu + tau z_g,   mu ~ N(0, 1), tau ~ HalfNormal(TAU_SCALE),
    z_g ~ StudentT(POPULATION_NU, 0, 1)   (non-centred, as NUTS needs when groups' runs say little;
    centred, w_g ~ StudentT(POPULATION_NU, mu, tau), when every group has many runs:
    :data:`CENTRED_MIN_RUNS`).

With ``tau`` -> 0 every group has the same exponents; a group with many runs is barely
moved; a thin group borrows the others' strength. The irreducible loss E and the amplitudes
are each group's own, under the group's own (data-scaled) prior, as in a single fit: they
depend on the tokenizer, the eval set and the data (GUIDE section 6: exponents transfer
between ladders, amplitudes do not). Pooling them too was tried on Gadre et al.'s three
training sets: the chains did not mix (R-hat 1.20 and bulk ESS 14 for the amplitude's spread,
ESS 40-60 for E and alpha, tree depth 7-8). Each group has its own noise scale ``sigma`` (under
the one noise prior: a ladder scored on training loss is smoother than one on validation
loss, and one shared scale widened the clean groups' bands -- Porian et al.'s configurations:
99.5% of held-out runs inside 90% bands); the Student-t tail ``nu`` is shared.

Every group's draws are then an ordinary law posterior (:func:`group_posterior`) on the fit's
common reference scales: the package's single-fit stages and answers apply to it unchanged
(:mod:`bayescale.pooled`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayescale.data import Runs, load_runs, read_table
from bayescale.errors import PriorError, RunsError
from bayescale.laws import Law
from bayescale.model import NOISE_PARAMS
from bayescale.priors import Prior, to_pymc

#: Prior families whose quantile function the pooled model can build (those of every law's defaults
#: and of the literature prior set).
POOLABLE = ("Normal", "LogNormal", "TruncatedNormal", "HalfNormal", "Uniform")
#: Scale of the HalfNormal prior of a parameter's between-group spread ``tau``, in prior-quantile
#: units: 0.5 allows groups half a prior standard deviation apart, as far as published ladders of
#: different labs lie (the literature prior's between-ladder spread of log alpha is 0.30 on a prior
#: standard deviation of 0.42); the data move it.
TAU_SCALE = 0.5
#: Groups' exponents are sampled centred (``w_g ~ StudentT(nu, mu, tau)``) when every group has at least this
#: many runs, non-centred otherwise. Measured on the leave-largest-out training runs: Gadre et al.'s
#: three training sets (31-32 runs each) mix non-centred (R-hat <= 1.008, no divergence) and
#: diverge centred (42 divergences: tau's funnel); Porian et al.'s 15 configurations (59-120
#: runs each) mix centred (R-hat <= 1.005, ESS of tau >= 2,100) and not non-centred (R-hat
#: 1.013, ESS of tau 274).
CENTRED_MIN_RUNS = 50
#: Degrees of freedom of the population of group exponents (Student-t in prior-quantile space): a
#: group that differs on purpose (a tuned learning rate, another parameter count) is not dragged to
#: the others as a normal population would drag it.
POPULATION_NU = 4.0
#: Fewest runs a group may have.
MIN_GROUP_RUNS = 2


def load_groups(source: str | Path | pd.DataFrame, column: str, **load_kwargs: Any) -> dict[str, Runs]:
    """Load a run table with :func:`bayescale.data.load_runs` and split it by the values of ``column``.

    Parameters
    ----------
    source : str, pathlib.Path or pandas.DataFrame
        The runs, with the group column.
    column : str
        Name of the column whose values name the groups (kept as text).
    **load_kwargs
        Passed to :func:`bayescale.data.load_runs` (column names, ``k``).

    Returns
    -------
    dict of str to Runs
        One entry per group, in order of first appearance.

    Raises
    ------
    RunsError
        If the column is missing or has an empty value, gives one group only, or a group has
        fewer than :data:`MIN_GROUP_RUNS` runs.
    """
    runs = load_runs(source, **load_kwargs)  # validates every row, with the file's row numbers
    table = source if isinstance(source, pd.DataFrame) else read_table(Path(source))
    where = "the DataFrame" if isinstance(source, pd.DataFrame) else f"'{source}'"
    if column not in table.columns:
        raise RunsError(f"no group column {column!r} in {where}; columns: {', '.join(map(str, table.columns))}")
    labels = table[column].astype(str).str.strip().to_numpy()
    empty = (labels == "") | pd.isna(table[column]).to_numpy()
    if empty.any():
        row = int(np.flatnonzero(empty)[0]) + (0 if isinstance(source, pd.DataFrame) else 1)
        raise RunsError(f"{where}: group column {column!r}, row {row} is empty; give every run a group")
    names = list(dict.fromkeys(labels))
    if len(names) < 2:
        raise RunsError(f"group column {column!r} has one value ({names[0]!r}); a pooled fit needs two groups or more")
    groups = {}
    for name in names:
        keep = labels == name
        if keep.sum() < MIN_GROUP_RUNS:
            raise RunsError(
                f"group {name!r} (column {column!r}) has {int(keep.sum())} run; each group needs at least "
                f"{MIN_GROUP_RUNS}: drop it or merge it with another"
            )
        groups[name] = runs.subset(keep)
    return groups


def pooled_runs(groups: Mapping[str, Runs]) -> Runs:
    """All groups' runs in one table (for the common reference scales and input checks)."""
    first = next(iter(groups.values()))
    table = pd.concat([r.table for r in groups.values()], ignore_index=True)
    return Runs(table=table, k=first.k, source=first.source, columns=first.columns)


def check_poolable(law: Law, priors: Mapping[str, Mapping[str, Prior]]) -> None:
    """Every group's prior of a parameter must be of one poolable family (or fixed to one value).

    Raises
    ------
    PriorError
        Naming the parameter, when a family cannot be pooled or groups disagree.
    """
    for name in (*law.params, *NOISE_PARAMS):
        kinds = {(p[name].dist, p[name].kwargs["value"] if p[name].is_fixed else None) for p in priors.values()}
        if len(kinds) > 1:
            raise PriorError(f"the groups' priors of {name} differ in family or fixed value: {sorted(map(str, kinds))}")
        dist, _ = kinds.pop()
        if name in law.params and dist not in (*POOLABLE, "Constant"):
            raise PriorError(f"a pooled fit needs the prior of {name} in {', '.join(POOLABLE)} (or fixed); got {dist}")
    for name in NOISE_PARAMS:
        values = {json.dumps(dict(p[name].kwargs), sort_keys=True) for p in priors.values()}
        if len(values) > 1:
            raise PriorError(f"the groups' priors of {name} differ; give one prior for every group")


def prior_table(law: Law, priors: Mapping[str, Mapping[str, Prior]]) -> tuple[list[str], np.ndarray]:
    """Every sampled law parameter's prior arguments, one row per group: (column names, G x m array)."""
    first = next(iter(priors.values()))
    names = [f"{p}__{k}" for p in law.params if not first[p].is_fixed for k in sorted(first[p].kwargs)]
    rows = [[float(g[p].kwargs[k]) for p in law.params if not g[p].is_fixed for k in sorted(g[p].kwargs)]
            for g in priors.values()]  # fmt: skip
    return names, np.array(rows, dtype=float).reshape(len(priors), len(names))


def centred_for(groups: Mapping[str, Runs]) -> bool:
    """Whether the exponents are sampled centred: every group has :data:`CENTRED_MIN_RUNS` runs or more."""
    return min(len(r) for r in groups.values()) >= CENTRED_MIN_RUNS


def structure(law: Law, priors: Mapping[str, Mapping[str, Prior]], centred: bool = False) -> tuple:
    """What a compiled pooled model depends on besides its data: law, families, fixed values, groups,
    parametrisation."""
    first = next(iter(priors.values()))
    parts = tuple(
        (n, first[n].dist, first[n].kwargs["value"] if first[n].is_fixed else tuple(sorted(first[n].kwargs)))
        for n in (*law.params, *NOISE_PARAMS)
    )
    noise = tuple(json.dumps(dict(first[n].kwargs), sort_keys=True) for n in NOISE_PARAMS)
    return ("pooled", law.name, parts, noise, len(priors), bool(centred))


def model_data(law: Law, groups: Mapping[str, Runs], priors: Mapping[str, Mapping[str, Prior]]) -> dict[str, Any]:
    """The value of every ``pm.Data`` of :func:`build_model`: all it takes from the runs."""
    allruns = pooled_runs(groups)
    ref = law.reference(allruns)
    _, table = prior_table(law, priors)
    return {
        "log_inputs": np.stack([allruns.log(x) for x in law.inputs]),
        "log_loss_observed": np.log(allruns.loss),
        "group_index": np.concatenate([np.full(len(r), i, dtype="int64") for i, r in enumerate(groups.values())]),
        "prior_arguments": table,
        "reference": np.array([ref[x] for x in law.inputs], dtype=float),
    }


def _normal_cdf(x: Any, pt: Any) -> Any:
    return 0.5 * pt.erfc(-x / np.sqrt(2.0))


def _normal_quantile(p: Any, pt: Any) -> Any:
    return -np.sqrt(2.0) * pt.erfcinv(2.0 * p)


def quantile(dist: str, kw: Mapping[str, Any], w: Any, xp: Any) -> Any:
    """The prior ``dist(**kw)``'s value at standard-normal quantile ``w``: ``F^-1(Phi(w))``.

    ``xp`` is ``pytensor.tensor`` (inside the model) or a namespace with numpy's ``exp`` and
    scipy's ``erfc``/``erfcinv`` (for checks against scipy.stats).
    """
    if dist == "Normal":
        return kw["mu"] + kw["sigma"] * w
    if dist == "LogNormal":
        return xp.exp(kw["mu"] + kw["sigma"] * w)
    if dist == "HalfNormal":
        return kw["sigma"] * _normal_quantile(0.5 + 0.5 * _normal_cdf(w, xp), xp)
    if dist == "Uniform":
        return kw["lower"] + (kw["upper"] - kw["lower"]) * _normal_cdf(w, xp)
    if dist == "TruncatedNormal":
        mu, s = kw["mu"], kw["sigma"]
        a = _normal_cdf((kw["lower"] - mu) / s, xp) if "lower" in kw else 0.0
        b = _normal_cdf((kw["upper"] - mu) / s, xp) if "upper" in kw else 1.0
        return mu + s * _normal_quantile(a + (b - a) * _normal_cdf(w, xp), xp)
    raise PriorError(f"a pooled fit cannot use a {dist} prior; use one of {', '.join(POOLABLE)}")


def build_model(
    law: Law, groups: Mapping[str, Runs], priors: Mapping[str, Mapping[str, Prior]], centred: bool = False
) -> Any:
    """The hierarchical model of all groups (see the module's docstring), as a ``pm.Model``.

    ``centred`` samples each group's exponent quantile ``w_g ~ StudentT(nu, mu, tau)`` itself (``<param>_w``)
    instead of its offset ``z_g`` (see :func:`centred_for`).

    Variables: ``<exponent>_mu``, ``<exponent>_tau`` (population), ``<exponent>_z`` (group offsets)
    and the deterministic ``<exponent>`` (dims ``group``) for each sampled exponent; each other law
    parameter with dims ``group``; ``sigma``, ``nu``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    values = model_data(law, groups, priors)
    columns, _ = prior_table(law, priors)
    first = next(iter(priors.values()))
    coords = {"group": list(groups), "run": np.arange(values["log_loss_observed"].size)}
    with pm.Model(coords=coords) as model:
        inputs = pm.Data("log_inputs", values["log_inputs"])
        index = pm.Data("group_index", values["group_index"])
        arguments = pm.Data("prior_arguments", values["prior_arguments"])
        reference = pm.Data("reference", values["reference"])
        logx = {x: inputs[i] for i, x in enumerate(law.inputs)}
        ref = {x: reference[i] for i, x in enumerate(law.inputs)}
        per_run = {}
        for name in law.params:
            prior = first[name]
            if prior.is_fixed:
                per_run[name] = prior.kwargs["value"]
                continue
            kw = {k: arguments[:, columns.index(f"{name}__{k}")] for k in prior.kwargs}
            if name in law.exponents:
                mu = pm.Normal(f"{name}_mu", 0.0, 1.0)
                tau = pm.HalfNormal(f"{name}_tau", TAU_SCALE)
                if centred:  # every group's runs decide its exponents: w itself mixes better
                    w = pm.StudentT(f"{name}_w", nu=POPULATION_NU, mu=mu, sigma=tau, dims="group")
                else:
                    w = mu + tau * pm.StudentT(f"{name}_z", nu=POPULATION_NU, mu=0.0, sigma=1.0, dims="group")
                theta = pm.Deterministic(name, quantile(prior.dist, kw, w, pt), dims="group")
            else:  # the group's own prior, as a single fit's (and PyMC's transform of it)
                theta = getattr(pm, prior.dist)(name, **kw, dims="group")
            per_run[name] = theta[index]
        mu_runs = law.log_loss(per_run, logx, ref, pt)
        noise = first["sigma"]
        if noise.is_fixed:
            sigma_runs = noise.kwargs["value"]
        else:  # each group's own noise level, under the one prior (train and validation losses differ)
            sigma_runs = getattr(pm, noise.dist)("sigma", **noise.kwargs, dims="group")[index]
        nu = to_pymc("nu", first["nu"])
        observed = pm.Data("log_loss_observed", values["log_loss_observed"], dims="run")
        pm.StudentT("log_loss", nu=nu, mu=mu_runs, sigma=sigma_runs, observed=observed, dims="run")
    return model


def population_names(law: Law, priors: Mapping[str, Mapping[str, Prior]]) -> list[str]:
    """The population parameters of the pooled model (``<exponent>_mu``, ``<exponent>_tau``)."""
    first = next(iter(priors.values()))
    return [f"{p}_{s}" for p in law.exponents if not first[p].is_fixed for s in ("mu", "tau")]


def group_posterior(posterior: xr.Dataset, law: Law, group: str) -> xr.Dataset:
    """One group's draws as a single fit's posterior: its law parameters, the shared noise."""
    out = {}
    for name in (*law.params, *NOISE_PARAMS):
        if name not in posterior:
            continue
        var = posterior[name]
        out[name] = var.sel(group=group, drop=True) if "group" in var.dims else var
    return xr.Dataset(out)
