"""Model averaging: a mixture of several fits' posterior draws, answering like one fit.

:func:`bayescale.comparison.average` takes fits (or a :class:`~bayescale.comparison.Comparison`) and weights, and
returns an :class:`AveragedFit` whose ``predict`` and ``optimal`` have the same
signatures and columns as :class:`~bayescale.result.ScalingFit`'s. Its draws are a
mixture: ``round(w_i S)`` draws of fit ``i`` (``S`` the largest number of draws among the
fits with weight), chosen without replacement and in their original order; each fit
draws its predictions exactly as it does alone (discrepancy, calibrated band scale,
seeded noise). A fit with weight 1 therefore gives its own predictions unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd

from bayescale.errors import BayescaleError
from bayescale.predict import draws_table, log_draws
from bayescale.result import ScalingFit
from bayescale.stats import check_interval


class AveragingError(BayescaleError, ValueError):
    """Weights that do not fit the fits (unknown names, negative, all zero)."""


def _mixture_indices(sizes: Mapping[str, int], weights: Mapping[str, float], seed: int) -> dict[str, np.ndarray]:
    """Indices of each fit's draws in the mixture (sorted; all draws for a weight of 1)."""
    total = max(sizes[name] for name, w in weights.items() if w > 0)
    rng = np.random.default_rng(seed)
    out = {}
    for name, w in weights.items():
        k = round(w * total)
        if k == 0:
            continue
        n = sizes[name]
        idx = np.arange(n) if k == n else rng.choice(n, size=k, replace=k > n)
        out[name] = np.sort(idx)
    return out


class AveragedFit:
    """A weighted mixture of fits of different laws to the same runs.

    Build one with :func:`average`. ``predict`` and ``optimal`` mirror
    :meth:`ScalingFit.predict` and :meth:`ScalingFit.optimal` (plain budgets).

    Parameters
    ----------
    fits : mapping of str to ScalingFit
        The fits by name.
    weights : mapping of str to float
        Non-negative weights by name, summing to 1.
    seed : int
        Seed of the choice of draws.
    """

    def __init__(self, fits: Mapping[str, ScalingFit], weights: Mapping[str, float], seed: int = 0) -> None:
        self.fits = dict(fits)
        self.weights = dict(weights)
        self.seed = int(seed)
        sizes = {name: len(f.draws("sigma")) for name, f in self.fits.items()}
        self._indices = _mixture_indices(sizes, self.weights, self.seed)

    @property
    def k(self) -> float:
        """FLOPs per parameter per token (that of the first fit)."""
        return next(iter(self.fits.values())).k

    @property
    def reference_budget(self) -> float:
        """Default budget: 100x the largest compute in the runs."""
        return next(iter(self.fits.values())).reference_budget

    def predict(
        self,
        N: object = None,
        D: object = None,
        C: object = None,
        interval: float = 0.9,
        *,
        U: object = None,
        points: pd.DataFrame | Mapping[str, object] | None = None,
    ) -> pd.DataFrame:
        """Model-averaged predictive loss of new runs; columns as :meth:`ScalingFit.predict`.

        ``points``: a table of the inputs, for fits of formula laws (each fit reads the columns its
        law uses; the laws must model the target on one scale, log or identity).
        """
        links = {self.fits[name].law.link for name in self._indices}
        if len(links) > 1:
            raise AveragingError("the fits model the target on different scales (log and identity): refit one link")
        streams, shown = [], None
        for name in self._indices:
            f = self.fits[name]
            pts, rng = f._points_and_rng(N, D, C, U, points)
            shown = pts if shown is None else shown | {k: v for k, v in pts.items() if k not in shown}
            streams.append(log_draws(f.law, f._sampled(), f.reference, pts, rng, f.discrepancy, f._scale_draws(pts)))
        return draws_table(self._mix(streams), shown, interval, links.pop())

    def _mix(self, streams: list) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Chunk by chunk, each fit's share of its ``(log_law, log_new)`` draws (fits chunk points alike)."""
        indices = list(self._indices.values())
        for parts in zip(*streams, strict=True):
            log_law = np.concatenate([law[idx] for idx, (law, _) in zip(indices, parts, strict=True)])
            log_new = np.concatenate([new[idx] for idx, (_, new) in zip(indices, parts, strict=True)])
            yield log_law, log_new

    def allocation_draws(self, compute: float | None = None) -> dict[str, np.ndarray]:
        """Mixture draws of ``N_opt, D_opt, tokens_per_param, loss_opt, a, b`` at one budget."""
        parts = [
            {q: v[idx] for q, v in self.fits[name].allocation_draws(compute).items() if np.ndim(v)}
            for name, idx in self._indices.items()
        ]
        keys = set.intersection(*(set(p) for p in parts))
        return {q: np.concatenate([p[q] for p in parts]) for q in sorted(keys)}

    def optimal(self, compute: object = None, interval: float = 0.9) -> pd.DataFrame:
        """Model-averaged compute-optimal allocation; columns as :meth:`ScalingFit.optimal`."""
        from bayescale import allocation as al

        check_interval(interval)
        budgets = al.check_budgets(self.reference_budget if compute is None else compute)
        rows = []
        for C in budgets:
            draws = self.allocation_draws(float(C))
            row: dict[str, float] = {"compute": float(C)}
            for q in al.QUANTITIES:
                row.update(al._stats_columns(q, draws[q], interval))
            rows.append(row)
        return pd.DataFrame(rows)

    def probability(
        self, quantity: str, *, above: float | None = None, below: float | None = None, compute: float | None = None
    ) -> float:
        """Model-averaged probability that an allocation quantity exceeds (or falls below) a value."""
        from bayescale.allocation import probability

        return probability(self.allocation_draws(compute), quantity, above=above, below=below)

    def __repr__(self) -> str:
        w = ", ".join(f"{n} {w:.2f}" for n, w in self.weights.items())
        return f"<AveragedFit {w}>"
