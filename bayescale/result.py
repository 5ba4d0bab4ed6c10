"""The result of a fit: it owns the ``xarray.DataTree`` and answers questions from its draws.

Everything here works on saved draws with numpy and xarray; nothing imports PyMC, so a
loaded fit answers ``summary`` and ``predict`` without compiling a model.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayescale import storage
from bayescale.data import Runs
from bayescale.diagnostics import Diagnostics, assess
from bayescale.errors import FitFileError
from bayescale.laws import Law, get_law
from bayescale.model import NOISE_PARAMS
from bayescale.predict import complete_inputs, predict_table
from bayescale.priors import Prior, priors_from_json

SUMMARY_COLUMNS = ["parameter", "mean", "median", "sd", "lower", "upper", "r_hat", "ess_bulk", "ess_tail"]


class ScalingFit:
    """A fitted scaling law: posterior draws, runs, law, priors and diagnostics.

    Build one with :func:`bayescale.fit` or :func:`bayescale.load`.

    Parameters
    ----------
    tree : xarray.DataTree
        Groups ``posterior`` (sampled and physical parameters), ``sample_stats``,
        ``log_likelihood``, ``observed_data``, ``constant_data``, ``runs`` and
        ``diagnostics``; root attributes hold the law, reference scales, priors (JSON),
        seed, sampler settings and versions.
    """

    def __init__(self, tree: xr.DataTree) -> None:
        try:
            self.tree = tree
            attrs = tree.attrs
            self.law: Law = get_law(attrs["law"])
            self.reference: dict[str, float] = json.loads(attrs["reference"])
            self.priors: dict[str, Prior] = priors_from_json(attrs["priors"])
            self.seed: int = int(attrs["seed"])
            self.k: float = float(attrs["k"])
        except (KeyError, ValueError, TypeError) as ex:
            raise FitFileError(f"fit is missing or has a damaged attribute ({ex}); re-run bayescale fit") from None

    # --- draws -------------------------------------------------------------------------
    @property
    def posterior(self) -> xr.Dataset:
        """Posterior draws (chain, draw) of sampled and physical parameters."""
        return self.tree["posterior"].to_dataset()

    @cached_property
    def runs(self) -> Runs:
        """The runs the law was fitted to."""
        ds = self.tree["runs"].to_dataset()
        table = pd.DataFrame({c: ds[c].to_numpy() for c in ("N", "D", "C", "loss") if c in ds})
        return Runs(table=table, k=self.k, source=str(self.tree.attrs.get("source", "")))

    def draws(self, name: str) -> np.ndarray:
        """Flat posterior draws of parameter ``name`` (a fixed parameter gives a constant array)."""
        post = self.posterior
        if name in post:
            return post[name].to_numpy().reshape(-1)
        if name in self.priors and self.priors[name].is_fixed:
            return np.full(post.sizes["chain"] * post.sizes["draw"], self.priors[name].kwargs["value"])
        raise KeyError(f"no parameter {name!r}; parameters: {', '.join(self.parameters)}")

    @property
    def parameters(self) -> list[str]:
        """Reported parameters: the law's physical ones, then the noise ones."""
        return [*self.law.natural_params, *NOISE_PARAMS]

    def _sampled(self) -> dict[str, np.ndarray]:
        return {name: self.draws(name) for name in (*self.law.params, *NOISE_PARAMS)}

    # --- diagnostics -------------------------------------------------------------------
    @property
    def diagnostics(self) -> Diagnostics:
        """Convergence checks (R-hat, ESS, divergences) with remedies for failures."""
        table = self.tree["diagnostics"].to_dataset()
        attrs = self.tree.attrs
        return assess(table, int(attrs["divergences"]), int(attrs["chains"]), int(attrs["draws"]))

    # --- answers -----------------------------------------------------------------------
    def summary(self, interval: float = 0.9) -> pd.DataFrame:
        """One row per physical parameter and noise parameter.

        Parameters
        ----------
        interval : float, default 0.9
            Probability of the equal-tailed interval ``lower``-``upper``.

        Returns
        -------
        pandas.DataFrame
            Columns ``parameter, mean, median, sd, lower, upper, r_hat, ess_bulk, ess_tail``.
        """
        if not 0 < interval < 1:
            raise ValueError(f"interval must be between 0 and 1, got {interval}")
        diag = self.tree["diagnostics"].to_dataset()
        diag_names = [str(p) for p in diag["parameter"].to_numpy()]
        rows = []
        for name in self.parameters:
            x = self.draws(name)
            lo, med, hi = np.quantile(x, [(1 - interval) / 2, 0.5, (1 + interval) / 2])
            i = diag_names.index(name) if name in diag_names else None
            stat = {
                s: float(diag[s].to_numpy()[i]) if i is not None else np.nan for s in ("r_hat", "ess_bulk", "ess_tail")
            }
            rows.append(
                {
                    "parameter": name,
                    "mean": x.mean(),
                    "median": med,
                    "sd": x.std(ddof=1),
                    "lower": lo,
                    "upper": hi,
                    **stat,
                }
            )
        return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

    def predict(
        self,
        N: object = None,
        D: object = None,
        C: object = None,
        interval: float = 0.9,
    ) -> pd.DataFrame:
        """Posterior predictive loss of new runs.

        Parameters
        ----------
        N, D, C : float or array_like, optional
            Parameters, tokens and FLOPs of the runs to predict; any two give the third
            through ``C = k N D``.
        interval : float, default 0.9
            Probability of the equal-tailed intervals.

        Returns
        -------
        pandas.DataFrame
            ``N, D, C`` and, for a new run (observation noise included), ``median, mean,
            lower, upper``; for the law's expected loss, the same with an ``expected_``
            prefix. Noise draws are seeded from the fit's seed: repeated calls agree.
        """
        points = complete_inputs(self.law, self.k, N=N, D=D, C=C)
        rng = np.random.default_rng([self.seed, 1])
        return predict_table(self.law, self._sampled(), self.reference, points, interval, rng)

    # --- persistence -------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fit to ``path`` (netCDF) atomically: a failure leaves an older file intact."""
        return storage.write_atomic(self.tree, path)

    def __repr__(self) -> str:
        post = self.posterior
        return (
            f"<ScalingFit {self.law.name}: {len(self.runs)} runs, {post.sizes['chain']} chains x "
            f"{post.sizes['draw']} draws, seed {self.seed}>"
        )


def load(path: str | Path) -> ScalingFit:
    """Load a fit saved by :meth:`ScalingFit.save` (no PyMC import, no compilation).

    Raises
    ------
    FitFileError
        If the file is missing, corrupt or not a bayescale fit.
    """
    return ScalingFit(storage.read_tree(path))
