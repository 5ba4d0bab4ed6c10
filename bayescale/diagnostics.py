"""Sampler diagnostics: R-hat, bulk and tail ESS, divergences; verdicts with remedies."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

#: Thresholds (Vehtari et al. 2021): R-hat at most 1.01, ESS at least 100 per chain.
MAX_RHAT = 1.01
MIN_ESS_PER_CHAIN = 100


class DiagnosticsWarning(UserWarning):
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
    problems : list of str
        One sentence per failed check, each with a concrete remedy; empty when all pass.
    """

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    chains: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.problems

    def message(self) -> str:
        """All problems as one paragraph (empty when ok)."""
        return " ".join(self.problems)


def compute_table(posterior: xr.Dataset, var_names: list[str]) -> xr.Dataset:
    """R-hat, bulk and tail ESS for ``var_names`` as a Dataset along ``parameter``."""
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
        },
        coords=coords,
    )


def assess(table: xr.Dataset, divergences: int, chains: int, draws: int) -> Diagnostics:
    """Judge a diagnostics table; each failure carries a remedy."""
    rhat = table["r_hat"].to_numpy()
    bulk = table["ess_bulk"].to_numpy()
    tail = table["ess_tail"].to_numpy()
    names = [str(p) for p in table["parameter"].to_numpy()]
    min_ess = MIN_ESS_PER_CHAIN * chains
    problems = []
    if np.nanmax(rhat) > MAX_RHAT or not np.isfinite(rhat).all():
        worst = names[int(np.nanargmax(rhat))]
        problems.append(
            f"R-hat up to {np.nanmax(rhat):.3f} (for {worst}; should be <= {MAX_RHAT}): the chains disagree. "
            f"Run longer tuning (--tune {2 * max(draws, 1000)}) or give {worst} a stronger prior."
        )
    if np.nanmin(bulk) < min_ess or np.nanmin(tail) < min_ess:
        worst = names[int(np.nanargmin(np.minimum(bulk, tail)))]
        problems.append(
            f"effective sample size down to {np.nanmin(np.minimum(bulk, tail)):.0f} (for {worst}; should be >= "
            f"{min_ess}): intervals are noisy. Draw more (--draws {2 * max(draws, 1000)})."
        )
    if divergences > 0:
        problems.append(
            f"{divergences} divergent transitions: the posterior may be biased. Raise target_accept "
            '(--target-accept 0.99) or set stronger priors on the exponents (--prior "alpha=Normal(0.35, 0.1)").'
        )
    return Diagnostics(
        max_rhat=float(np.nanmax(rhat)),
        min_ess_bulk=float(np.nanmin(bulk)),
        min_ess_tail=float(np.nanmin(tail)),
        divergences=int(divergences),
        chains=int(chains),
        problems=problems,
    )
