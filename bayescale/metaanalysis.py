"""Learn a population prior for a law from many published ladders (a hierarchical meta-analysis).

Each published ladder is fitted on its own with the weak default priors; from its posterior
we keep a few *transferable* quantities -- ones that mean the same on any tokenizer and
evaluation set -- as an estimate with a standard error (:func:`ladder_quantities`):

``log_alpha``, ``log_beta``
    The log exponents of the model-size and data terms.
``logit_E_frac``
    ``logit(E / L_min)``: the irreducible loss as a share of the ladder's smallest observed
    loss. How close a ladder gets to E depends on how far it reaches, so this is recorded
    for the whole ladder and for its smaller sub-ladders (the runs below a share of its
    largest N or C): a user's ladder may be the small end of one.
``log_sigma``
    The log of the run-to-run noise on log loss.

The amplitudes (A, B at the ladder's reference scale) depend on the tokenizer, the
evaluation set and the ladder's range and are not learned: they keep the weak,
data-scaled priors of the law.

:func:`population` then fits, per quantity, the eight-schools structure of Gelman et al.
(BDA3 ch. 5) with one more level -- source (a paper), ladder (a training set, an evaluation
set, a configuration) and, for ``logit_E_frac``, reach -- non-centred::

    y_i ~ Normal(theta_i, se_i^2)
    theta_i = mu + tau_source u_source(i) + tau_ladder v_ladder(i) [+ tau_reach w_i]

and returns the predictive distribution of the quantity for a ladder from a *new* source:
``mu + tau_source u + tau_ladder v (+ tau_reach w)`` over the posterior, summarised by its
mean and standard deviation (what :mod:`bayescale.literature` turns into priors).
PyMC is imported only inside :func:`population`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

#: The quantities learned, in the order they are reported.
QUANTITIES = ("log_alpha", "log_beta", "logit_E_frac", "log_sigma")
#: Shares of the ladder's largest N (and C) below which the reach sub-ladders are taken.
REACH_SHARES = (0.05, 0.2, 0.5)
#: Fewest runs in a reach sub-ladder.
MIN_REACH_RUNS = 3


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def ladder_quantities(
    draws: Mapping[str, np.ndarray], N: np.ndarray, C: np.ndarray, loss: np.ndarray
) -> list[dict[str, Any]]:
    """The transferable quantities of one fitted ladder, as rows (quantity, reach, estimate, se).

    Parameters
    ----------
    draws : mapping
        Flat posterior draws of ``E``, ``alpha``, ``beta``, ``sigma`` from a fit of the whole ladder.
    N, C, loss : arrays
        The ladder's runs (parameters, FLOPs, final loss).

    Returns
    -------
    list of dict
        One row per quantity, and for ``logit_E_frac`` one more per reach sub-ladder
        (``reach`` names it: ``all``, ``N<=5%``, ``C<=20%``...).
    """
    rows = []

    def add(q: str, reach: str, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=float)
        rows.append({"quantity": q, "reach": reach, "estimate": float(values.mean()), "se": float(values.std(ddof=1))})

    add("log_alpha", "all", np.log(draws["alpha"]))
    add("log_beta", "all", np.log(draws["beta"]))
    add("log_sigma", "all", np.log(draws["sigma"]))
    E = np.asarray(draws["E"], dtype=float)
    add("logit_E_frac", "all", _logit(E / loss.min()))
    seen = {len(loss)}
    for name, x in (("N", np.asarray(N, dtype=float)), ("C", np.asarray(C, dtype=float))):
        for share in REACH_SHARES:
            keep = x <= share * x.max() * (1 + 1e-9)
            if keep.sum() < MIN_REACH_RUNS or (keep.sum() in seen and keep.all()):
                continue
            add("logit_E_frac", f"{name}<={share:.0%}", _logit(E / loss[keep].min()))
    return rows


def population(
    table: pd.DataFrame,
    *,
    draws: int = 4000,
    tune: int = 2000,
    chains: int = 4,
    seed: int = 0,
    tau_prior: float = 0.5,
) -> dict[str, dict[str, float]]:
    """Fit the hierarchical population of each quantity; its predictive for a new source.

    Parameters
    ----------
    table : DataFrame
        Rows of :func:`ladder_quantities` with columns ``source`` and ``ladder`` added.
    draws, tune, chains, seed
        NUTS settings.
    tau_prior : float, default 0.5
        Scale of the HalfNormal priors on the between-source, between-ladder and reach
        standard deviations (on the transformed scale: 0.5 on a log exponent is a factor
        of 1.6).

    Returns
    -------
    dict
        Per quantity: ``mean`` and ``sd`` of the predictive for a ladder of a new source,
        the posterior medians of ``mu``, ``tau_source``, ``tau_ladder`` (``tau_reach``),
        the largest R-hat and smallest bulk ESS of the fit, and the counts of sources,
        ladders and rows it used.
    """
    import arviz as az
    import pymc as pm

    out: dict[str, dict[str, float]] = {}
    rng = np.random.default_rng(seed)
    for q in QUANTITIES:
        t = table[table["quantity"] == q].reset_index(drop=True)
        if t.empty:
            raise ValueError(f"no rows for {q}")
        sources, s_idx = np.unique(t["source"].to_numpy(), return_inverse=True)
        ladders, l_idx = np.unique((t["source"] + "/" + t["ladder"]).to_numpy(), return_inverse=True)
        has_reach = bool((t["reach"] != "all").any())
        y = t["estimate"].to_numpy(float)
        se = np.maximum(t["se"].to_numpy(float), 1e-3)
        with pm.Model():
            mu = pm.Normal("mu", float(np.median(y)), 2.0)
            tau_s = pm.HalfNormal("tau_source", tau_prior)
            tau_l = pm.HalfNormal("tau_ladder", tau_prior)
            u = pm.Normal("u", 0.0, 1.0, shape=len(sources))
            v = pm.Normal("v", 0.0, 1.0, shape=len(ladders))
            theta = mu + tau_s * u[s_idx] + tau_l * v[l_idx]
            if has_reach:
                tau_r = pm.HalfNormal("tau_reach", tau_prior)
                w = pm.Normal("w", 0.0, 1.0, shape=len(t))
                theta = theta + tau_r * w
            pm.Normal("y", theta, se, observed=y)
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=seed,
                target_accept=0.99,
                progressbar=False,
                nuts_sampler="nutpie",
            )
        post = idata["posterior"].to_dataset()
        names = ["mu", "tau_source", "tau_ladder", *(["tau_reach"] if has_reach else [])]
        flat = {n: post[n].to_numpy().reshape(-1) for n in names}
        S = flat["mu"].size
        new = flat["mu"] + flat["tau_source"] * rng.standard_normal(S) + flat["tau_ladder"] * rng.standard_normal(S)
        if has_reach:
            new = new + flat["tau_reach"] * rng.standard_normal(S)
        tree = idata["posterior"]
        rhat = az.rhat(tree).to_dataset()
        ess = az.ess(tree, method="bulk").to_dataset()
        out[q] = {
            "mean": float(new.mean()),
            "sd": float(new.std(ddof=1)),
            **{n: float(np.median(flat[n])) for n in names},
            "max_rhat": float(max(float(rhat[n].max()) for n in names)),
            "min_ess_bulk": float(min(float(ess[n].min()) for n in names)),
            "sources": len(sources),
            "ladders": len(ladders),
            "rows": len(t),
        }
    return out
