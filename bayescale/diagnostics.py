"""Sampler diagnostics: R-hat, bulk and tail ESS, divergences; verdicts with remedies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from bayescale.errors import BayescaleWarning

#: Thresholds (Vehtari et al. 2021): R-hat at most 1.01, ESS at least 100 per chain.
MAX_RHAT = 1.01
MIN_ESS_PER_CHAIN = 100
#: Largest Pareto shape of importance weights that is trusted (Vehtari et al. 2024).
MAX_KHAT = 0.7
#: What to do about divergent transitions in a law's fit.
DIVERGENCE_REMEDY = (
    "Raise target_accept (--target-accept 0.99) or set stronger priors on the exponents "
    '(--prior "alpha=Normal(0.35, 0.1)").'
)


class DiagnosticsWarning(BayescaleWarning):
    """The sampler's diagnostics failed; the message says what to do."""


@dataclass(frozen=True)
class Diagnostics:
    """Convergence checks of a fit.

    Attributes
    ----------
    max_rhat, min_ess_bulk, min_ess_tail : float
        Worst values over the checked parameters.
    divergences : int
        Divergent transitions after tuning.
    max_khat : float
        Largest Pareto shape of the importance weights of a stage sampled by importance
        sampling (NaN when every stage ran chains).
    problems : list of str
        One sentence per failed check, each with a concrete remedy; empty when all pass.
    """

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    chains: int
    problems: list[str] = field(default_factory=list)
    max_khat: float = float("nan")

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.problems

    def message(self) -> str:
        """All problems as one paragraph (empty when ok)."""
        return " ".join(self.problems)


def compute_table(posterior: xr.Dataset, var_names: list[str]) -> xr.Dataset:
    """R-hat, bulk and tail ESS for ``var_names`` as a Dataset along ``parameter``.

    ``khat`` (the Pareto shape of importance weights, see :func:`importance_table`) is NaN:
    these draws come from Markov chains.
    """
    import arviz as az

    tree = xr.DataTree.from_dict({"posterior": posterior[var_names]})
    rhat = az.rhat(tree).to_dataset()
    bulk = az.ess(tree, method="bulk").to_dataset()
    tail = az.ess(tree, method="tail").to_dataset()
    coords = {"parameter": np.array(var_names, dtype=object)}
    return xr.Dataset(
        {
            # a vector parameter (a length-scale per input) reports its worst element
            "r_hat": ("parameter", np.array([float(rhat[v].max()) for v in var_names])),
            "ess_bulk": ("parameter", np.array([float(bulk[v].min()) for v in var_names])),
            "ess_tail": ("parameter", np.array([float(tail[v].min()) for v in var_names])),
            "khat": ("parameter", np.full(len(var_names), np.nan)),
        },
        coords=coords,
    )


def importance_table(var_names: list[str], ess: float, khat: float) -> xr.Dataset:
    """The diagnostics of draws resampled from an importance sample, in the layout of :func:`compute_table`.

    Such draws have no chains: ``r_hat`` is NaN, both ESS are the importance sample's
    effective size (``1 / sum(w^2)``, one figure for every parameter) and ``khat`` the Pareto
    shape of its weights (trusted at most 0.7).
    """
    k = len(var_names)
    return xr.Dataset(
        {
            "r_hat": ("parameter", np.full(k, np.nan)),
            "ess_bulk": ("parameter", np.full(k, float(ess))),
            "ess_tail": ("parameter", np.full(k, float(ess))),
            "khat": ("parameter", np.full(k, float(khat))),
        },
        coords={"parameter": np.array(var_names, dtype=object)},
    )


def assess(
    table: xr.Dataset,
    divergences: int,
    chains: int,
    draws: int,
    remedies: Mapping[str, str] | None = None,
    divergence_remedy: str = DIVERGENCE_REMEDY,
) -> Diagnostics:
    """Judge a diagnostics table; each failure carries a remedy.

    Parameters
    ----------
    table : xarray.Dataset
        ``r_hat``, ``ess_bulk``, ``ess_tail`` (and ``khat``) by ``parameter``.
    divergences, chains, draws : int
        Divergent transitions, chains and draws per chain of the sampling.
    remedies : mapping, optional
        Per parameter, the remedy when its chains disagree (default: a stronger prior on it).
    divergence_remedy : str
        The remedy for divergent transitions.
    """
    remedies = remedies or {}
    rhat = table["r_hat"].to_numpy()
    bulk = table["ess_bulk"].to_numpy()
    tail = table["ess_tail"].to_numpy()
    names = [str(p) for p in table["parameter"].to_numpy()]
    khat = table["khat"].to_numpy() if "khat" in table else np.full(len(names), np.nan)
    min_ess = MIN_ESS_PER_CHAIN * chains
    problems = []
    # rows from importance sampling (finite khat) have no chains, hence no R-hat
    chained = ~np.isfinite(khat)
    bad = np.where(chained, np.where(np.isfinite(rhat), rhat, np.inf), -np.inf)  # a NaN R-hat fails
    if chained.any() and bad.max() > MAX_RHAT:
        worst = names[int(np.argmax(bad))]
        problems.append(
            f"R-hat up to {bad.max():.3f} (for {worst}; should be <= {MAX_RHAT}): the chains disagree. "
            f"Run longer tuning (--tune {2 * max(draws, 1000)}) or "
            + remedies.get(worst, f"give {worst} a stronger prior.")
        )
    if np.nanmin(bulk) < min_ess or np.nanmin(tail) < min_ess:
        worst = names[int(np.nanargmin(np.minimum(bulk, tail)))]
        problems.append(
            f"effective sample size down to {np.nanmin(np.minimum(bulk, tail)):.0f} (for {worst}; should be >= "
            f"{min_ess}): intervals are noisy. Draw more (--draws {2 * max(draws, 1000)})."
        )
    if np.any(khat[~chained] > MAX_KHAT):
        worst = names[int(np.nanargmax(np.where(chained, -np.inf, khat)))]
        problems.append(
            f"importance weights with Pareto khat {np.nanmax(khat):.2f} (for {worst}; should be <= {MAX_KHAT}): "
            "the draws may be biased. Re-fit with another --seed."
        )
    if divergences > 0:
        problems.append(f"{divergences} divergent transitions: the posterior may be biased. {divergence_remedy}")
    return Diagnostics(
        max_rhat=float(np.nanmax(rhat)) if np.isfinite(rhat).any() else float("nan"),
        min_ess_bulk=float(np.nanmin(bulk)),
        min_ess_tail=float(np.nanmin(tail)),
        divergences=int(divergences),
        chains=int(chains),
        problems=problems,
        max_khat=float(np.nanmax(khat)) if np.isfinite(khat).any() else float("nan"),
    )
