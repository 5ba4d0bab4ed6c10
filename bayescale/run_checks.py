"""Which runs look off: the rungs of a ladder the fit down-weights or cannot predict from the others.

Users ask which run is bad before they trust a fit ("the 0.5xC rung of the 190M ladder is a bit
off"). A fit already knows, three ways, and :func:`suspect_runs` says which and why:

- **outside its leave-one-out band**: the run's PSIS-LOO probability integral transform -- where its
  loss falls in the predictive the *other* runs give (Student-t around the law, each draw weighted by
  the inverse of the run's own likelihood to leave it out, ArviZ's Pareto-smoothed weights) -- is below
  ``(1 - level)/2`` or above ``(1 + level)/2``: the law, fitted without it, puts it outside the
  central ``level`` band (its loss higher or lower than the rest predict);
- **down-weighted by the robust pass**: the model discrepancy's first stage gives each run a weight
  (:func:`bayescale.discrepancy.robust_pass`); below ``weight`` it treats the run as an outlier;
- **influential**: Pareto k above ``khat``: leaving the run out moves the posterior too much for
  importance sampling to say by how much -- refit without it to see.

The law stage's log-likelihood (saved with every fit) is what the leave-one-out figures use.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from scipy.stats import t as student_t

from bayescale.predict import law_log_loss

#: Columns of :func:`suspect_runs`' table after the run's inputs.
COLUMNS = ("loss", "law_median", "residual", "loo_pit", "pareto_k", "run_weight", "reason")


def suspect_runs(
    fit: Any, level: float = 0.9, khat: float = 0.7, weight: float = 0.5, every: bool = False
) -> pd.DataFrame:
    """The runs that look off, most off first (see the module's docstring), or every run.

    Parameters
    ----------
    fit : ScalingFit
        A single fit (its log-likelihood and, with a discrepancy, the robust pass's weights).
    level : float, default 0.9
        The leave-one-out band a run should fall in.
    khat : float, default 0.7
        Pareto k above which a run is influential.
    weight : float, default 0.5
        Robust-pass weight below which a run counts as down-weighted.
    every : bool, default False
        Every run (``reason`` empty for those that look fine), in the runs' order.

    Returns
    -------
    pandas.DataFrame
        ``run`` (1-based position among the fit's runs), the law's inputs, ``loss`` (the target),
        ``law_median`` (the law's posterior median there), ``residual`` (run minus law: % of the
        law on the log scale, target units on the identity scale), ``loo_pit``, ``pareto_k``,
        ``run_weight`` (NaN without a discrepancy) and ``reason`` (why it is listed).
    """
    import arviz as az

    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    law, runs = fit.law, fit.runs
    inputs = {x: runs.values(x) for x in law.inputs}
    observed = np.asarray(law.observed(runs.loss), dtype=float)
    sampled = fit._sampled()
    mu = law_log_loss(law, sampled, fit.reference, inputs)  # (S, n), the likelihood's location
    with warnings.catch_warnings(), np.errstate(over="ignore"):
        # ArviZ warns of Pareto k above 0.7: this table reports each run's k (and calls such runs influential);
        # float32 log-likelihoods overflow in ArviZ's cast for a run that is very unlikely under some draws
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto", category=UserWarning)
        loo = az.loo(fit.tree, var_name="log_loss", pointwise=True)
    obs_dim = [d for d in loo.log_weights.dims if d not in ("chain", "draw")]
    # chain-major, as the flat draws of fit._sampled() and the saved log-likelihood
    lw = loo.log_weights.transpose("chain", "draw", *obs_dim).stack(sample=("chain", "draw"))
    lw = lw.transpose("sample", *obs_dim).to_numpy()
    lw = lw.reshape(lw.shape[0], -1)
    w = np.exp(lw - logsumexp(lw, axis=0))
    z = (observed[None, :] - mu) / sampled["sigma"][:, None]
    pit = np.clip(np.sum(w * student_t.cdf(z, df=sampled["nu"][:, None]), axis=0), 0.0, 1.0)  # float32 weights
    k = np.asarray(loo.pareto_k).reshape(-1)
    log_scale = law.link == "log"
    centre = np.median(mu, axis=0)
    table = pd.DataFrame({"run": np.arange(1, len(runs) + 1), **inputs})
    table["loss"] = runs.loss
    table["law_median"] = np.exp(centre) if log_scale else centre
    table["residual"] = 100 * (observed - centre) if log_scale else observed - centre
    table["loo_pit"] = pit
    table["pareto_k"] = k
    weights = _run_weights(fit)
    table["run_weight"] = weights
    lo, hi = (1 - level) / 2, (1 + level) / 2
    reasons = []
    for p, kk, wt in zip(pit, k, weights, strict=True):
        why = []
        if p < lo or p > hi:
            side = "higher" if p > hi else "lower"
            why.append(f"outside its leave-one-out {level:.0%} band (LOO-PIT {p:.3f}: {side} than the others predict)")
        if np.isfinite(wt) and wt < weight:
            why.append(f"down-weighted by the robust pass (weight {wt:.2f})")
        if kk > khat:
            why.append(f"influential (Pareto k {kk:.2f}: refit without it to see how much it moves the fit)")
        reasons.append("; ".join(why))
    table["reason"] = reasons
    if every:
        return table
    off = table[table["reason"] != ""].copy()
    severity = np.abs(off["loo_pit"] - 0.5) + (off["run_weight"].fillna(1.0) < weight) + (off["pareto_k"] > khat)
    return off.assign(_s=severity).sort_values("_s", ascending=False).drop(columns="_s").reset_index(drop=True)


def _run_weights(fit: Any) -> np.ndarray:
    """The robust pass's weight of each run, NaN for a fit without a discrepancy."""
    n = len(fit.runs)
    if "discrepancy" not in fit.tree.children:
        return np.full(n, np.nan)
    ds = fit.tree["discrepancy"].to_dataset()
    if "run_weight" not in ds:
        return np.full(n, np.nan)
    return np.asarray(ds["run_weight"].to_numpy(), dtype=float).reshape(-1)
