"""The result of a task fit (:mod:`bayescale.task_pipeline`): from (N, D) to a downstream metric.

A :class:`TaskFit` owns one ``xarray.DataTree``:

- ``losses/l<j>``: step 1, a complete single fit (:class:`~bayescale.result.ScalingFit`) of the
  task loss; tasks that share one ladder of losses (e.g. every task of a grid scored against
  the C4 validation loss) share one step-1 fit;
- ``tasks/t<i>``: step 2 of task ``i``, the link's posterior (``posterior``), its runs (``runs``:
  N, D, C, the task loss when the chain goes through one, and the metric) and its
  ``diagnostics``; attributes ``floor`` (the chance level) and ``signal`` (1 when the runs rise
  above chance, see :func:`has_signal`).

Root attributes: ``task_metric`` (the metric column), ``link``, ``through`` (``loss`` or
``compute``), ``task_names`` and ``loss_fit_of_task`` (JSON lists), the settings and versions.

The two steps' posteriors are independent (the link is a regression of the metric on the runs'
*observed* task losses, so the law's data do not inform it and vice versa): pairing draw ``i`` of
one with draw ``i`` of the other is a draw of the joint posterior. A prediction pushes each
draw's new-run task loss (law, discrepancy, noise and band scale: everything a loss band has)
through the same draw's link and adds the metric's own scatter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import stdtrit

from bayescale import storage
from bayescale.calibration import beyond_reach, rescale, scale_draws
from bayescale.diagnostics import Diagnostics, assess
from bayescale.errors import FitFileError, PredictionError
from bayescale.links import METRIC_NU, get_link
from bayescale.predict import complete_inputs, stratified_uniforms
from bayescale.result import ScalingFit
from bayescale.stats import check_interval, interval_stats

#: Root attribute that marks a task fit (its value: the metric's column).
TASK = storage.TASK
#: Message of a task whose runs show no rise above chance.
NO_SIGNAL = "no signal above chance in the runs: the band is the prior's"


def has_signal(rise: np.ndarray, scatter: np.ndarray) -> bool:
    """Whether the runs rise above chance: the 5% quantile of the link's rise above the floor at the
    most advanced run exceeds the median scatter of one run's metric.

    Parameters
    ----------
    rise : numpy.ndarray
        Draws of the link's metric at the most advanced run minus the floor.
    scatter : numpy.ndarray
        Draws of the metric's scatter ``s``.
    """
    return bool(np.quantile(rise, 0.05) > np.median(scatter))


class TaskFit:
    """A two-step fit of one or many tasks: step-1 law of the task loss, step-2 link to the metric.

    Parameters
    ----------
    tree : xarray.DataTree
        See the module's docstring.
    """

    def __init__(self, tree: xr.DataTree) -> None:
        try:
            self.tree = tree
            attrs = tree.attrs
            self.metric: str = str(attrs[TASK])
            self.link = get_link(str(attrs["link"]))
            self.through: str = str(attrs["through"])
            self.names: list[str] = list(json.loads(attrs["task_names"]))
            self._loss_of: list[int] = list(json.loads(attrs["loss_fit_of_task"]))
            self.seed: int = int(attrs["seed"])
            self.k: float = float(attrs["k"])
        except (KeyError, ValueError, TypeError) as ex:
            raise FitFileError(
                f"task fit is missing or has a damaged attribute ({ex}); re-run bayescale fit-task"
            ) from None
        self._losses: dict[int, ScalingFit] = {}

    # --- parts -------------------------------------------------------------------------
    def _index(self, task: object) -> int:
        key = str(task)
        if key not in self.names:
            raise PredictionError(f"no task {key!r} in this fit; tasks: {', '.join(self.names)}")
        return self.names.index(key)

    def selected(self, tasks: object = None) -> list[str]:
        """The task names asked for: all for None, else each one checked."""
        if tasks is None:
            return list(self.names)
        asked = [tasks] if isinstance(tasks, str) or not isinstance(tasks, Iterable) else list(tasks)
        for t in asked:
            self._index(t)
        return [str(t) for t in asked]

    def loss_fit(self, task: object) -> ScalingFit | None:
        """Step 1 of ``task``: the law of its task loss (None when the chain goes through compute)."""
        j = self._loss_of[self._index(task)]
        if j < 0:
            return None
        if j not in self._losses:
            self._losses[j] = ScalingFit(self.tree[f"losses/l{j}"])
        return self._losses[j]

    def _task(self, task: object) -> xr.DataTree:
        return self.tree[f"tasks/t{self._index(task)}"]

    def runs(self, task: object) -> pd.DataFrame:
        """The runs of ``task`` (N, D, C, the task loss if any, the metric)."""
        return self._task(task)["runs"].to_dataset().to_dataframe().reset_index(drop=True)

    def link_draws(self, task: object) -> dict[str, np.ndarray]:
        """Flat draws of the link's parameters and scatter ``s`` of ``task``."""
        post = self._task(task)["posterior"].to_dataset()
        draws = {v: post[v].to_numpy().reshape(-1) for v in post.data_vars}
        draws["u_ref"] = np.full(len(draws["s"]), float(self._task(task).attrs.get("u_ref", 0.0)))
        return draws

    def floor(self, task: object) -> float:
        """The chance level of ``task`` (the prior centre of its link's floor)."""
        return float(self._task(task).attrs["floor"])

    def signal(self, task: object) -> bool:
        """Whether the runs of ``task`` rise above chance (:func:`has_signal`)."""
        return bool(int(self._task(task).attrs["signal"]))

    # --- answers -----------------------------------------------------------------------
    def metric_draws(
        self, task: object, N: object = None, D: object = None, C: object = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
        """Posterior predictive draws of a new run's metric at the points: (points, metric (S, n),
        task loss (S, n) or None)."""
        index = self._index(task)
        fit = self.loss_fit(task)
        points = complete_inputs(fit.law, fit.k, N=N, D=D, C=C) if fit is not None else _compute_points(self.k, N, D, C)
        p = self.link_draws(task)
        rng = np.random.default_rng([self.seed, 3, index])
        loss = None
        if fit is not None:
            loss = fit.loss_draws(**{x: v for x, v in points.items() if np.isfinite(v).all()})
            S = min(len(loss), len(p["s"]))
            loss, p = loss[:S], {k: v[:S] for k, v in p.items()}
            u = -loss
        else:
            S = len(p["s"])
            u = np.broadcast_to(np.log(points["C"])[None, :], (S, len(points["C"])))
        columns = {k: v[:, None] for k, v in p.items()}
        mean = self.link.mean(columns, u, columns["floor"])
        noise = p["s"] * stdtrit(METRIC_NU, stratified_uniforms(S, rng))
        metric = mean + noise[:, None]
        node = self._task(task)
        if "calibration" in node.children:  # the link's own band scale (its held-out runs)
            z = node["calibration"].to_dataset()["z"].to_numpy()
            scale = scale_draws(z, S, np.random.default_rng([self.seed, 4, index]))[:, None]
            if "progress_max" in node.attrs:  # beyond the split's reach in progress, the link's own band
                beyond = beyond_reach(
                    np.median(u, axis=0), float(node.attrs["progress_max"]), float(node.attrs["calibration_reach"])
                )
                scale = np.where(beyond[None, :], 1.0, scale)
            metric = rescale(metric, scale, axis=0)
        return points, np.clip(metric, 0.0, 1.0), loss

    def predict(
        self,
        N: object = None,
        D: object = None,
        C: object = None,
        interval: float = 0.9,
        task: object = None,
        *,
        point_tasks: object = None,
    ) -> pd.DataFrame:
        """A new run's metric at the points, per task, with equal-tailed bands.

        Parameters
        ----------
        N, D, C : float or array_like, optional
            The runs to predict (any two give the third).
        interval : float, default 0.9
            Probability of the bands.
        task : str or list of str, optional
            The tasks (default: all), each predicted at every point.
        point_tasks : array_like of str, optional
            Instead, the task of each point (a long table of targets: one row per task and run).

        Returns
        -------
        pandas.DataFrame
            One row per task and point: ``task, N, D, C``, the metric's ``median, mean, lower,
            upper``, the task loss's ``loss_median, loss_lower, loss_upper`` (chains through a
            loss), ``chance`` and ``note`` (:data:`NO_SIGNAL` for a task without signal).
        """
        if point_tasks is not None:
            return self._predict_per_point(N, D, C, interval, point_tasks)
        check_interval(interval)
        parts = []
        for name in self.selected(task):
            points, metric, loss = self.metric_draws(name, N, D, C)
            table = pd.DataFrame({"task": name, **{x: points[x] for x in ("N", "D", "C")}})
            for column, values in interval_stats(metric, interval).items():
                table[column] = values
            if loss is not None:
                stats = interval_stats(loss, interval)
                table["loss_median"], table["loss_lower"], table["loss_upper"] = (
                    stats["median"],
                    stats["lower"],
                    stats["upper"],
                )
            table["chance"] = self.floor(name)
            table["note"] = "" if self.signal(name) else NO_SIGNAL
            parts.append(table)
        return pd.concat(parts, ignore_index=True)

    def _predict_per_point(self, N: object, D: object, C: object, interval: float, tasks: object) -> pd.DataFrame:
        """:meth:`predict` of each point for its own task, in the points' order."""
        labels = np.asarray(tasks, dtype=str)
        self.selected(list(dict.fromkeys(labels)))
        given = {"N": N, "D": D, "C": C}
        columns = {x: None if v is None else np.atleast_1d(np.asarray(v, dtype=float)) for x, v in given.items()}
        if any(v is not None and len(v) != len(labels) for v in columns.values()):
            raise PredictionError(f"give one task per point: {len(labels)} tasks for points of another length")
        parts, order = [], []
        for name in dict.fromkeys(labels):
            where = np.flatnonzero(labels == name)
            sub = {x: None if v is None else v[where] for x, v in columns.items()}
            parts.append(self.predict(**sub, interval=interval, task=name))
            order.append(where)
        table = pd.concat(parts, ignore_index=True)
        return table.iloc[np.argsort(np.concatenate(order), kind="stable")].reset_index(drop=True)

    def summary(self, interval: float = 0.9, task: object = None) -> pd.DataFrame:
        """Posterior summary per task: the link's parameters (``stage`` link) and the step-1 law's
        (``stage`` loss), with ``task`` and ``stage`` columns."""
        check_interval(interval)
        parts = []
        for name in self.selected(task):
            fit = self.loss_fit(name)
            if fit is not None:
                parts.append(fit.summary(interval=interval).assign(task=name, stage="loss"))
            diag = self._task(name)["diagnostics"].to_dataset()
            draws = self.link_draws(name)
            if "h" in draws:
                draws["ceiling"] = draws["floor"] + (1 - draws["floor"]) * draws.pop("h")
            rows = []
            for param, values in draws.items():
                if param == "u_ref":
                    continue
                row = {"parameter": param, **interval_stats(values, interval), "sd": values.std()}
                key = "h" if param == "ceiling" else param
                if key in diag.coords.get("parameter", []):
                    d = diag.sel(parameter=key)
                    row |= {c: float(d[c]) for c in ("r_hat", "ess_bulk", "ess_tail") if c in d}
                rows.append(row)
            parts.append(pd.DataFrame(rows).assign(task=name, stage="link"))
        table = pd.concat(parts, ignore_index=True)
        first = ["task", "stage"]
        return table[first + [c for c in table.columns if c not in first]]

    @property
    def diagnostics(self) -> Diagnostics:
        """Convergence of every step-1 law and every link (the worst of them)."""
        tables, divergences = [], 0
        for j in sorted(set(self._loss_of) - {-1}):
            fit = self.loss_fit(self.names[self._loss_of.index(j)])
            tables.append(fit.tree["diagnostics"].to_dataset())
            divergences += int(fit.tree.attrs.get("divergences", 0))
        link_params: set[str] = set()
        for i in range(len(self.names)):
            node = self.tree[f"tasks/t{i}"]
            tables.append(node["diagnostics"].to_dataset())
            link_params |= {str(p) for p in tables[-1]["parameter"].to_numpy()}
            divergences += int(node.attrs.get("divergences", 0))
        table = xr.concat(tables, dim="parameter")
        attrs = self.tree.attrs
        remedy = (
            "expect it for a task whose runs sit near chance (the link's midpoint and ceiling are then the "
            "prior's, and so is the band); more runs above chance identify it."
        )
        return assess(
            table,
            divergences,
            int(attrs["chains"]),
            int(attrs["draws"]),
            remedies=dict.fromkeys(link_params, remedy),
            divergence_remedy=f"Raise target_accept (--target-accept 0.99); for a link, {remedy}",
        )

    # --- persistence -----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fit to ``path`` (netCDF) atomically: a failure leaves an older file intact."""
        return storage.write_atomic(self.tree, path)

    def __repr__(self) -> str:
        return (
            f"<TaskFit {self.metric} through {self.through} ({self.link.name} link): "
            f"{len(self.names)} task{'s' if len(self.names) != 1 else ''}>"
        )


def _compute_points(k: float, N: object, D: object, C: object) -> dict[str, np.ndarray]:
    """Points of a chain through compute: C, or N and D (C = k N D)."""
    from bayescale.laws import get_law

    return complete_inputs(get_law("power:C"), k, N=N, D=D, C=C)


def is_task_fit(tree: xr.DataTree) -> bool:
    """Whether a fit's tree is a task fit's."""
    return TASK in tree.attrs
