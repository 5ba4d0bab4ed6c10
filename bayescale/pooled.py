"""The result of a pooled fit of several ladders (:mod:`bayescale.pooling`), and loading any fit.

A :class:`PooledFit` owns one ``xarray.DataTree``: the population's draws (group
``population``) and, under ``groups/g<i>``, one complete single-fit tree per group (law
posterior on the fit's common reference scales, runs, diagnostics, discrepancy, calibration),
so that each group answers every question a :class:`~bayescale.result.ScalingFit` answers.
The groups' draws are joint: draw ``i`` of every group comes from one draw of the hierarchical
posterior, which is what contrasts between groups need (:mod:`bayescale.contrast`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import xarray as xr

from bayescale import storage
from bayescale.diagnostics import Diagnostics, assess
from bayescale.errors import FitFileError, GroupError
from bayescale.result import ScalingFit

#: Root attribute that marks a pooled fit (its value: the group column's name).
POOLED = storage.POOLED


class PooledFit:
    """A hierarchical fit of several groups of runs; each group answers like a single fit.

    Parameters
    ----------
    tree : xarray.DataTree
        Root attributes ``pooled_by`` (the group column), ``group_names`` (JSON list) and the
        fit's settings; groups ``population`` (posterior and diagnostics of the population
        parameters ``<param>_mu``, ``<param>_tau``) and ``groups/g<i>`` (a single fit's tree).
    """

    def __init__(self, tree: xr.DataTree) -> None:
        try:
            self.tree = tree
            self.column: str = str(tree.attrs[POOLED])
            self.names: list[str] = list(json.loads(tree.attrs["group_names"]))
        except (KeyError, ValueError, TypeError) as ex:
            raise FitFileError(
                f"pooled fit is missing or has a damaged attribute ({ex}); re-run bayescale fit"
            ) from None
        self._groups: dict[str, ScalingFit] = {}

    # --- groups ------------------------------------------------------------------------
    def group(self, name: object) -> ScalingFit:
        """The fit of one group, as a :class:`~bayescale.result.ScalingFit`.

        Raises
        ------
        GroupError
            If the fit has no group of that name (the message lists the groups).
        """
        key = str(name)
        if key not in self.names:
            raise GroupError(f"no group {key!r} in this fit (column {self.column!r}); groups: {', '.join(self.names)}")
        if key not in self._groups:
            self._groups[key] = ScalingFit(self.tree[f"groups/g{self.names.index(key)}"])
        return self._groups[key]

    def selected(self, names: object = None) -> list[str]:
        """The group names asked for: all of them for None, else each one checked."""
        if names is None:
            return list(self.names)
        asked = [names] if isinstance(names, str) or not isinstance(names, Iterable) else list(names)
        for name in asked:
            self.group(name)
        return [str(n) for n in asked]

    def per_group(self, answer: Callable[[ScalingFit], pd.DataFrame], group: object = None) -> pd.DataFrame:
        """``answer(fit)`` for each selected group, stacked, with a leading ``group`` column."""
        parts = []
        for name in self.selected(group):
            table = answer(self.group(name))
            table.insert(0, "group", name)
            parts.append(table)
        return pd.concat(parts, ignore_index=True)

    # --- answers -----------------------------------------------------------------------
    def summary(self, interval: float = 0.9, group: object = None) -> pd.DataFrame:
        """Each group's :meth:`~bayescale.result.ScalingFit.summary`, with a ``group`` column."""
        return self.per_group(lambda f: f.summary(interval=interval), group)

    def predict(
        self, N: object = None, D: object = None, C: object = None, interval: float = 0.9, group: object = None
    ) -> pd.DataFrame:
        """Each group's :meth:`~bayescale.result.ScalingFit.predict` at the same points, with a ``group`` column."""
        return self.per_group(lambda f: f.predict(N=N, D=D, C=C, interval=interval), group)

    def optimal(self, compute: object = None, interval: float = 0.9, group: object = None, **kwargs) -> pd.DataFrame:
        """Each group's :meth:`~bayescale.result.ScalingFit.optimal` (default budget: 100x the largest
        compute of all groups' runs, the same for every group), with a ``group`` column."""
        if compute is None:
            compute = max(self.group(n).reference_budget for n in self.names)
        return self.per_group(lambda f: f.optimal(compute, interval=interval, **kwargs), group)

    def contrast(self, a: object, b: object, **kwargs) -> pd.DataFrame:
        """Group ``a`` against group ``b`` from joint draws: see :func:`bayescale.contrast.contrast`."""
        from bayescale.contrast import contrast

        return contrast(self, a, b, **kwargs)

    def rank(self, N: object = None, D: object = None, C: object = None) -> pd.DataFrame:
        """Every group ranked by expected loss at one point: see :func:`bayescale.contrast.rank`."""
        from bayescale.contrast import rank

        return rank(self, N=N, D=D, C=C)

    # --- population and diagnostics ------------------------------------------------------
    @property
    def population(self) -> xr.Dataset:
        """Draws (chain, draw) of the population parameters ``<param>_mu`` and ``<param>_tau``
        (in prior-quantile units, see :mod:`bayescale.pooling`)."""
        return self.tree["population/posterior"].to_dataset()

    @property
    def diagnostics(self) -> Diagnostics:
        """Convergence of the population parameters and of every group's (the worst of them)."""
        attrs = self.tree.attrs
        tables = [self.tree["population/diagnostics"].to_dataset()]
        tables += [self.group(n).tree["diagnostics"].to_dataset() for n in self.names]
        table = xr.concat(tables, dim="parameter")
        return assess(table, int(attrs["divergences"]), int(attrs["chains"]), int(attrs["draws"]))

    # --- persistence -----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fit to ``path`` (netCDF) atomically: a failure leaves an older file intact."""
        return storage.write_atomic(self.tree, path)

    def __repr__(self) -> str:
        first = self.group(self.names[0])
        return f"<PooledFit {first.law.name} by {self.column}: {len(self.names)} groups ({', '.join(self.names)})>"


def is_pooled(tree: xr.DataTree) -> bool:
    """Whether a fit's tree is a pooled fit's."""
    return POOLED in tree.attrs
