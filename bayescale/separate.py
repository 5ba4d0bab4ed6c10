"""The result of fitting each group of runs on its own (``bayescale fit RUNS --law FORMULA --group COLUMN``).

A :class:`SeparateFit` is a :class:`~bayescale.pooled.PooledFit` without a population: its tree holds,
under ``groups/g<i>``, one complete single fit per group (a law of the group's own, as ScaleBench
fits its groups), and root attributes ``pooled_by`` (the group column), ``group_names`` and
``pooling = "separate"``. Each group answers every question a single fit answers; the groups'
posteriors are independent (each group sampled with its own seed), so pairing draw ``i`` of two
groups is a draw of their joint posterior.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from bayescale import storage
from bayescale.diagnostics import Diagnostics, assess
from bayescale.errors import GroupError
from bayescale.pooled import POOLED, PooledFit
from bayescale.result import ScalingFit

#: Root attribute value (``pooling``) that marks a fit of separate groups.
SEPARATE = "separate"


class SeparateFit(PooledFit):
    """Independent fits of several groups of runs, saved and answered as one fit.

    Parameters
    ----------
    tree : xarray.DataTree
        See the module's docstring.
    """

    separate = True

    @property
    def population(self) -> xr.Dataset:
        """Separate fits have no population."""
        raise GroupError("the groups were fitted separately (no population); pool them with a built-in law")

    @property
    def diagnostics(self) -> Diagnostics:
        """Convergence of every group's fit (the worst of them)."""
        tables = [self.group(n).tree["diagnostics"].to_dataset() for n in self.names]
        attrs = self.tree.attrs
        table = xr.concat(tables, dim="parameter")
        return assess(table, int(attrs["divergences"]), int(attrs["chains"]), int(attrs["draws"]))

    def predict_rows(self, points: Mapping[str, np.ndarray], labels: np.ndarray, interval: float = 0.9) -> pd.DataFrame:
        """Each point predicted by its own group's fit (``labels``: a group per point), in the points' order.

        Raises
        ------
        GroupError
            For a label that is not a group of this fit (the message lists the groups).
        """
        from bayescale.laws.formula.lawfile import group_labels

        labels = group_labels(list(labels)).to_numpy().astype(str)
        unknown = [str(g) for g in dict.fromkeys(labels) if g not in self.names]
        if unknown:
            raise GroupError(
                f"no group {unknown[0]!r} in this fit (column {self.column!r}); groups: {', '.join(self.names)}"
            )
        parts = []
        for name in map(str, dict.fromkeys(labels)):
            rows = np.flatnonzero(labels == name)
            table = self.group(name).predict(points={k: np.asarray(v)[rows] for k, v in points.items()},
                                             interval=interval)  # fmt: skip
            table.insert(0, "group", name)
            table.index = rows
            parts.append(table)
        return pd.concat(parts).sort_index().reset_index(drop=True)

    def __repr__(self) -> str:
        first = self.group(self.names[0])
        return f"<SeparateFit {first.law.name} by {self.column}: {len(self.names)} groups ({', '.join(self.names)})>"


def assemble(fits: Mapping[str, ScalingFit], column: str) -> SeparateFit:
    """The separate fit of ``fits`` (one complete single fit per group), grouped by ``column``."""
    tree = xr.DataTree()
    for i, fit in enumerate(fits.values()):
        tree[f"groups/g{i}"] = fit.tree
    first = next(iter(fits.values())).tree.attrs
    tree.attrs = {
        storage.MARKER: first[storage.MARKER],
        POOLED: column,
        "pooling": SEPARATE,
        "group_names": json.dumps(list(fits)),
        "law": str(first.get("law", "")),
        "seed": int(first.get("seed", 0)),
        "chains": int(first["chains"]),
        "draws": int(first["draws"]),
        "tune": int(first.get("tune", 0)),
        "divergences": sum(int(f.tree.attrs.get("divergences", 0)) for f in fits.values()),
        "versions": first["versions"],
    }
    return SeparateFit(tree)


def is_separate(tree: xr.DataTree) -> bool:
    """Whether a fit's tree is a separate fit's."""
    return tree.attrs.get("pooling") == SEPARATE
