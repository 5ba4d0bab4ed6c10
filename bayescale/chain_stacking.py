"""Chains that settle in different modes, combined by stacking (Yao, Vehtari & Gelman 2022).

A formula law from the literature can have several separated modes (ScaleBench's vocabulary laws:
chains started at one least-squares optimum drift to others during tuning; R-hat 2-3 after the
retry). Averaging such chains with equal weights mixes a mode that predicts the runs well with
ones that do not. *Stacking for non-mixing Bayesian computations* (Yao, Vehtari & Gelman, JMLR
2022) treats each chain as a candidate posterior and weighs them by stacking on their
leave-one-out predictive densities (PSIS-LOO computed within each chain): the mixture that predicts
left-out runs best.

What this module does when a stage's chains fail their diagnostics (after the retry):

1. each chain's PSIS-LOO elpd; chains within :data:`SAME_MODE` nats are one mode; the modes'
   stacking weights (:func:`bayescale.stacking.stacking_weights`), shared by their chains;
2. modes under :data:`MIN_WEIGHT` are dropped; if none is, nothing changes (the chains disagree
   and predict alike, or differ within one mode: the warning stands);
3. the kept chains' diagnostics (R-hat, ESS, divergences) are what the fit reports -- a mode the
   stacking keeps with other chains that disagree with it still fails R-hat, honestly;
4. the stored draws keep the fit's shape (chains x draws, which the discrepancy stage and the
   predictions align on): the kept chains' draws resampled in proportion to their weights, chain
   by chain in order.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

log = logging.getLogger(__name__)

#: A mode whose stacking weight is below this is dropped.
MIN_WEIGHT = 0.05

#: Chains whose PSIS-LOO elpd differ by at most this many nats are one mode (differences under 4
#: are what LOO comparisons call negligible, Sivula et al. 2022; Monte Carlo error is far smaller).
SAME_MODE = 4.0

#: The groups whose draws are resampled together (each indexed by chain and draw).
GROUPS = ("posterior", "sample_stats", "log_likelihood")


@dataclass(frozen=True)
class ChainStack:
    """The outcome of stacking a stage's chains.

    Attributes
    ----------
    weights : numpy.ndarray
        The stacking weight of each chain (sums to 1; a mode's weight shared by its chains).
    modes : list of list of int
        The chains of each mode, best first.
    """

    weights: np.ndarray
    modes: list[list[int]]

    @property
    def kept(self) -> np.ndarray:
        """Indices of the chains kept: those of modes weighing at least :data:`MIN_WEIGHT`."""
        keep = [c for mode in self.modes if self.weights[mode].sum() >= MIN_WEIGHT for c in mode]
        return np.array(sorted(keep), dtype=int)

    @property
    def dropped(self) -> int:
        """How many chains were dropped."""
        return int(self.weights.size - self.kept.size)


def _pointwise_loo(log_likelihood: xr.Dataset, chains: list[int], var_name: str) -> np.ndarray:
    """PSIS-LOO pointwise elpd of the draws of ``chains`` pooled (relative efficiency 1: the chains
    of a mode that did not mix have no trustworthy ESS, and the weights only rank modes)."""
    import arviz as az

    one = log_likelihood[[var_name]].isel(chain=chains)
    tree = xr.DataTree.from_dict({"/log_likelihood": one, "/posterior": xr.Dataset(coords=one.coords)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pareto k above 0.7 in a stuck chain: it is weighed anyway
        loo = az.loo(tree, var_name=var_name, pointwise=True, reff=1.0)
    return np.nan_to_num(np.asarray(loo.elpd_i, dtype=float).reshape(-1), nan=-1e10, neginf=-1e10)


def modes(elpd: np.ndarray, tolerance: float = SAME_MODE) -> list[list[int]]:
    """Chains grouped into modes: sorted by their elpd, a chain within ``tolerance`` of the previous
    one joins its group (single linkage)."""
    order = np.argsort(-np.asarray(elpd))
    groups = [[int(order[0])]]
    for prev, c in itertools.pairwise(order):
        if elpd[prev] - elpd[c] <= tolerance:
            groups[-1].append(int(c))
        else:
            groups.append([int(c)])
    return groups


def stack_chains(log_likelihood: xr.Dataset, var_name: str = "log_loss") -> ChainStack:
    """Stack the chains on their leave-one-out predictions.

    Each chain's elpd is its own PSIS-LOO; chains within :data:`SAME_MODE` nats of each other
    form one mode (stacking cannot tell identical candidates apart and would give one of them
    all the weight); the modes (their chains pooled) are stacked and each mode's weight is shared
    equally by its chains.

    Parameters
    ----------
    log_likelihood : xarray.Dataset
        Pointwise log-likelihood by ``chain``, ``draw`` and one observation dimension.
    var_name : str
        The variable holding it.

    Returns
    -------
    ChainStack
        The chains' weights and modes.
    """
    from bayescale.stacking import stacking_weights

    chains = log_likelihood.sizes["chain"]
    elpd = np.array([_pointwise_loo(log_likelihood, [c], var_name).sum() for c in range(chains)])
    groups = modes(elpd)
    weights = np.full(chains, 1.0 / chains)
    if len(groups) > 1:
        stacked = stacking_weights({str(i): _pointwise_loo(log_likelihood, g, var_name) for i, g in enumerate(groups)})
        for i, g in enumerate(groups):
            weights[g] = stacked[str(i)] / len(g)
    return ChainStack(weights=weights / weights.sum(), modes=groups)


def resample(idata: xr.DataTree, result: ChainStack, seed: int) -> xr.DataTree:
    """The kept chains' draws in proportion to their weights, in the original (chain, draw) shape.

    Draw slots are shared among the kept chains by their renormalised weights (largest remainder);
    a chain's draws are taken in order, every one once before any twice, with a random offset.
    """
    post = idata["posterior"].to_dataset()
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    total = chains * draws
    w = result.weights[result.kept] / result.weights[result.kept].sum()
    counts = np.floor(w * total).astype(int)
    counts[np.argsort(-(w * total - counts))[: total - counts.sum()]] += 1
    rng = np.random.default_rng(seed)
    chain_index, draw_index = [], []
    for c, n in zip(result.kept, counts, strict=True):
        start = int(rng.integers(draws))
        chain_index.append(np.full(n, c))
        draw_index.append((start + np.arange(n)) % draws)
    chain_index = xr.DataArray(np.concatenate(chain_index).reshape(chains, draws), dims=("chain", "draw"))
    draw_index = xr.DataArray(np.concatenate(draw_index).reshape(chains, draws), dims=("chain", "draw"))
    out = idata.copy()
    for group in GROUPS:
        if group in idata.children:
            ds = idata[group].to_dataset()
            picked = ds.isel(chain=chain_index, draw=draw_index)
            out[group] = picked.assign_coords(chain=ds["chain"].to_numpy(), draw=ds["draw"].to_numpy())
    return out


def kept_chains(idata: xr.DataTree, result: ChainStack) -> xr.DataTree:
    """Only the kept chains (for their diagnostics)."""
    out = idata.copy()
    for group in GROUPS:
        if group in idata.children:
            out[group] = idata[group].to_dataset().isel(chain=result.kept)
    return out


__all__ = ["GROUPS", "MIN_WEIGHT", "SAME_MODE", "ChainStack", "kept_chains", "modes", "resample", "stack_chains"]
