"""Stacking weights on pointwise out-of-sample scores (ArviZ's optimiser), shared by the comparison
of laws (:mod:`bayescale.comparison`) and the stacking of non-mixing chains
(:mod:`bayescale.chain_stacking`)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np


def stacking_weights(pointwise: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Stacking weights (ArviZ's optimiser) on pointwise out-of-sample scores: each law's log predictive
    density of the same held-out points (leave-future-out here; PSIS-LOO's ``elpd_i`` alike)."""
    import arviz as az
    import xarray as xr
    from arviz_stats.utils import ELPDDataLFO

    elpds = {}
    for name, e in pointwise.items():
        elpds[name] = ELPDDataLFO(
            elpd=float(e.sum()),
            se=float(np.sqrt(e.size * e.var())),
            p=float("nan"),
            n_samples=0,
            n_data_points=int(e.size),
            scale="log",
            warning=False,
            good_k=None,
            elpd_i=xr.DataArray(e, dims=["heldout"]),
            forecast_horizon=1,
            min_observations=0,
            refits=np.empty(0),
            n_refits=0,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "difference potentially due to chance": se_lfo says it
        table = az.compare(elpds, round_to="none")
    return {str(name): float(w) for name, w in table["weight"].items()}


__all__ = ["stacking_weights"]
