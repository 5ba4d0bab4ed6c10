"""Fit a downstream metric through the task chain: (N, D) -> task loss -> metric.

Step 1 is an ordinary fit of the package (:func:`bayescale.pipeline.fit`: any law, model
discrepancy, calibrated bands) of the task loss; tasks whose runs have one and the same ladder
of losses (every task of a grid scored against one validation loss) share it. Step 2 is the
link (:mod:`bayescale.links`) of each task, fitted to the runs' observed task losses and
metrics. The link conditions on the observed losses, so the two posteriors are independent
and their product is the joint posterior: no cut is needed, and a prediction carries both
steps' uncertainty (:mod:`bayescale.task_fit`). Without a task loss the chain goes through the
LM loss (a ``loss`` column) or, without one either, through compute (``u = ln C``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayescale import calibration, compiled, links, sampling
from bayescale.data import ALIASES, DEFAULT_K, _to_numbers, load_runs, read_table
from bayescale.diagnostics import compute_table
from bayescale.errors import RunsError
from bayescale.priors import PriorLike
from bayescale.result import ScalingFit
from bayescale.splits import holdout_top_compute
from bayescale.storage import MARKER
from bayescale.task_fit import NO_SIGNAL, TASK, TaskFit, has_signal

log = logging.getLogger("bayescale")

#: How far every run may sit below the chance level before the chance level is refused as a mistake
#: (models do sit a little below it: Pythia's LogiQA, 0.19-0.22 at chance 0.25).
CHANCE_TOLERANCE = 0.1
#: Fewest runs of a task: a link of two or three parameters and a scatter needs three.
MIN_TASK_RUNS = 3


def fit_task(
    runs: pd.DataFrame | str | Path,
    metric: str = "accuracy",
    loss: str | None = None,
    link: str = "sigmoid",
    chance: float | str | None = None,
    task: str | None = None,
    law: str | None = None,
    priors: Mapping[str, PriorLike] | None = None,
    *,
    prior_set: str = "auto",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    sampler: str = "nutpie",
    target_accept: float = 0.95,
    progress: bool = False,
    discrepancy: bool = True,
    calibrate: bool = True,
    retry: bool = True,
    strict: bool = False,
    k: float = DEFAULT_K,
) -> TaskFit:
    """Fit the chain (N, D) -> task loss -> metric, one task or many.

    Parameters
    ----------
    runs : pandas.DataFrame or path
        One row per run (and task): ``N`` and ``D`` (or ``C``), the metric and, for a chain
        through a loss, the loss column.
    metric : str, default "accuracy"
        The metric's column: values in [0, 1], higher is better (give 1 - error for an error).
    loss : str, optional
        The task loss's column (e.g. ``task_bpb``); default: ``loss`` if the table has it, else
        the chain goes through compute.
    link : {"sigmoid", "exp"}, default "sigmoid"
        The link from loss to metric (:mod:`bayescale.links`).
    chance : float or str, optional
        The chance level (the link's floor): a number, or a column holding each task's; default 0.
    task : str, optional
        A column naming the tasks of a long table: one chain per task.
    law, priors, prior_set, draws, tune, chains, seed, sampler, target_accept, progress, discrepancy, calibrate, retry
        Step 1's, as :func:`bayescale.fit` (the link's sampler settings are the same).
    strict : bool, default False
        Raise instead of warning when any step's diagnostics fail.
    k : float, default 6
        FLOPs per parameter per token.

    Returns
    -------
    TaskFit

    Raises
    ------
    RunsError
        For a missing or non-numeric column, a metric outside [0, 1], a task with fewer than
        :data:`MIN_TASK_RUNS` runs, or a chance level above a task's best run by more than
        :data:`CHANCE_TOLERANCE`.
    """
    from bayescale.pipeline import _fit_stages, check_diagnostics

    table, where = _table(runs)
    metric_all = _metric(table, metric, where, 0 if isinstance(runs, pd.DataFrame) else 1)
    loss_col, through = _through(table, loss, where)
    the_link = _link(link)
    tasks = _tasks(table, task, where)
    # N, D, C and the loss of every row, validated with the file's row numbers
    if through == "loss":
        every = load_runs(runs if not isinstance(runs, pd.DataFrame) else table, loss_col=loss_col, k=k)
    else:
        every = load_runs(table.assign(_no_loss=1.0), loss_col="_no_loss", k=k)
    settings = sampling.stage_settings(prior_set, draws, tune, chains, seed, sampler, target_accept, progress, retry)
    step1: dict[str, ScalingFit] = {}
    loss_of, nodes = [], {}
    for i, (name, rows) in enumerate(tasks.items()):
        keep = np.zeros(len(table), dtype=bool)
        keep[rows["_row"].to_numpy()] = True
        runs_i = every.subset(keep)
        value = metric_all[rows["_row"].to_numpy()]
        floor = _chance(rows, chance, where, name)
        if floor > value.max() + CHANCE_TOLERANCE:
            raise RunsError(
                f"task {name!r}: chance level {floor:g} is above the best run's {metric} ({value.max():g}) by more "
                f"than {CHANCE_TOLERANCE:g}; check --chance (a fraction in [0, 1]) or the metric column"
            )
        if through == "loss":
            key = _ladder_key(runs_i)
            if key not in step1:
                log.info("step 1 (%s): fit of %r on %d runs", name, loss_col, len(runs_i))
                step1[key] = _fit_stages(
                    runs_i, law, priors, prior_set, draws, tune, chains, settings["seed"], sampler, target_accept,
                    progress, discrepancy, calibrate, retry,
                )  # fmt: skip
            loss_of.append(list(step1).index(key))
            progress_u = -runs_i.loss
        else:
            loss_of.append(-1)
            progress_u = np.log(runs_i.values("C"))
        log.info("step 2 (%s, %d/%d): %s link on %d runs", name, i + 1, len(tasks), the_link.name, len(value))
        task_loss = runs_i.loss if through == "loss" else None
        nodes[f"tasks/t{i}"] = _link_stage(
            the_link, runs_i, task_loss, progress_u, value, floor, settings, name, metric, calibrate
        )
    tree = xr.DataTree()
    for j, result in enumerate(step1.values()):
        tree[f"losses/l{j}"] = result.tree
    for path, node in nodes.items():
        tree[path] = node
    versions = sampling._versions()
    tree.attrs = {
        MARKER: versions["bayescale"],
        TASK: metric,
        "link": the_link.name,
        "through": through,
        "loss_column": loss_col or "",
        "task_column": task or "",
        "task_names": json.dumps(list(tasks)),
        "loss_fit_of_task": json.dumps(loss_of),
        "seed": int(settings["seed"]),
        "k": float(k),
        "chains": int(chains),
        "draws": int(draws),
        "tune": int(tune),
        "sampler": str(settings["sampler"]),
        "versions": json.dumps(versions),
    }
    result = TaskFit(tree)
    check_diagnostics(result.diagnostics, strict)
    for name in result.names:
        if not result.signal(name):
            log.warning("task %s: %s", name, NO_SIGNAL)
    return result


def _table(runs: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, str]:
    if isinstance(runs, pd.DataFrame):
        table, where = runs.copy(), "the DataFrame"
    else:
        table, where = read_table(Path(runs)), f"'{runs}'"
    table.columns = [str(c).strip() for c in table.columns]
    if len(table) == 0:
        raise RunsError(f"{where} has no runs (header only)")
    return table.reset_index(drop=True), where


def _through(table: pd.DataFrame, loss: str | None, where: str) -> tuple[str | None, str]:
    """The loss column and whether the chain goes through a loss or through compute."""
    if loss is not None:
        if loss not in table.columns:
            raise RunsError(f"no loss column {loss!r} in {where}; columns: {', '.join(table.columns)}")
        return loss, "loss"
    for alias in ALIASES["loss"]:
        if alias in table.columns:
            return alias, "loss"
    return None, "compute"


def _link(name: str) -> links.Link:
    try:
        return links.get_link(name)
    except ValueError as ex:
        raise RunsError(str(ex)) from None


def _tasks(table: pd.DataFrame, column: str | None, where: str) -> dict[str, pd.DataFrame]:
    """The rows of each task (one task, named after the metric, without a task column)."""
    if column is None:
        groups = {"task": table}
    else:
        if column not in table.columns:
            raise RunsError(f"no task column {column!r} in {where}; columns: {', '.join(table.columns)}")
        labels = table[column].astype(str).str.strip()
        groups = {name: table[labels == name] for name in dict.fromkeys(labels)}
    for name, rows in groups.items():
        if len(rows) < MIN_TASK_RUNS:
            raise RunsError(
                f"task {name!r} has {len(rows)} run{'s' if len(rows) != 1 else ''}; a task needs at least "
                f"{MIN_TASK_RUNS} to fit its link"
            )
    return {n: r.reset_index(drop=False).rename(columns={"index": "_row"}) for n, r in groups.items()}


def _metric(table: pd.DataFrame, metric: str, where: str, row_offset: int) -> np.ndarray:
    """The metric column of every row, checked: numeric and in [0, 1] (the row named otherwise)."""
    if metric not in table.columns:
        raise RunsError(f"no metric column {metric!r} in {where}; columns: {', '.join(table.columns)}")
    try:
        value = _to_numbers(table[metric], metric, where, row_offset)
    except RunsError as ex:
        raise RunsError(f"{ex}; the metric column is not numeric: give fractions in [0, 1]") from None
    missing = ~np.isfinite(value)
    if missing.any():
        i = int(np.argmax(missing))
        raise RunsError(
            f"{where}: metric column {metric!r}, row {i + row_offset} is {table[metric].iloc[i]!r}, not numeric; give "
            "every run a fraction in [0, 1] or drop the run"
        )
    outside = ~((value >= 0) & (value <= 1))
    if outside.any():
        i = int(np.argmax(outside))
        raise RunsError(
            f"{where}: metric column {metric!r}, row {i + row_offset} is {table[metric].iloc[i]}; a metric must be "
            "in [0, 1] (divide percentages by 100)"
        )
    return value


def _chance(rows: pd.DataFrame, chance: float | str | None, where: str, task: str) -> float:
    if chance is None:
        return 0.0
    if isinstance(chance, str):
        try:
            value = float(chance)
        except ValueError:
            if chance not in rows.columns:
                raise RunsError(f"--chance {chance!r} is neither a number nor a column of {where}") from None
            value = float(pd.to_numeric(rows[chance], errors="coerce").median())
    else:
        value = float(chance)
    if not 0 <= value < 1:
        raise RunsError(f"task {task!r}: chance level {value:g} must be in [0, 1)")
    return value


def _ladder_key(runs: Any) -> str:
    """Identity of a ladder of (N, D, loss): tasks with the same one share step 1."""
    digest = hashlib.sha1()
    for name in ("N", "D", "loss"):
        digest.update(np.ascontiguousarray(runs.values(name), dtype=float).tobytes())
    return digest.hexdigest()


def _link_stage(
    link: links.Link,
    runs: Any,
    task_loss: np.ndarray | None,
    progress: np.ndarray,
    metric: np.ndarray,
    floor: float,
    settings: Mapping[str, Any],
    name: str,
    metric_name: str,
    calibrate: bool = True,
) -> xr.DataTree:
    """NUTS on one task's link; its node of the tree (posterior, runs, diagnostics)."""
    progress = np.asarray(progress, dtype=float)
    post, divergences = _sample_link(link, progress, metric, floor, settings, name)
    args = links.prior_arguments(progress, metric, floor)
    flat = _flat(post, args["u_ref"])
    best = {k: v[:, None] for k, v in flat.items()}
    rise = link.mean(best, np.array([[progress.max()]]), best["floor"])[:, 0] - flat["floor"]
    run_table = {c: ("run", runs.values(c)) for c in ("N", "D", "C") if runs.has(c)}
    if task_loss is not None:
        run_table["loss"] = ("run", task_loss)
    run_table[metric_name] = ("run", metric)
    parts = {
        "/posterior": post,
        "/runs": xr.Dataset(run_table),
        "/diagnostics": compute_table(post, list(post.data_vars)),
    }
    attrs = {
        "floor": float(floor),
        "u_ref": float(args["u_ref"]),
        "signal": int(has_signal(rise, flat["s"])),
        "divergences": divergences,
    }
    if calibrate:
        z, reach = _link_heldout_errors(link, runs, progress, metric, floor, settings, name)
        parts["/calibration"] = xr.Dataset({"z": ("heldout", z)})
        attrs["band_scale"] = calibration.band_scale(z)
        # the scale holds as far as the held-out runs' progress went beyond the re-fit's
        attrs["calibration_reach"] = reach
        attrs["progress_max"] = float(progress.max())
        log.info("  link band scale %.2f from %d held-out runs", attrs["band_scale"], z.size)
    node = xr.DataTree.from_dict(parts)
    node.attrs = attrs
    return node


def _flat(post: xr.Dataset, u_ref: float) -> dict[str, np.ndarray]:
    flat = {v: post[v].to_numpy().reshape(-1) for v in post.data_vars}
    flat["u_ref"] = np.full(len(flat["s"]), u_ref)
    return flat


def _sample_link(
    link: links.Link,
    progress: np.ndarray,
    metric: np.ndarray,
    floor: float,
    settings: Mapping[str, Any],
    name: str,
) -> tuple[xr.Dataset, int]:
    """NUTS on one task's link (compiled once per link family): its posterior and divergences."""
    model = None
    if settings["sampler"] == "nutpie":
        model = compiled.cached(
            ("link", link.name),
            lambda: links.build_model(link, progress, metric, floor),
            f"{link.name} link",
        )
    if model is None:
        model = links.build_model(link, progress, metric, floor)
    checked = [*link.params, "floor", "s"]
    idata = sampling._sample_checked(model, settings, checked, f"the link of {name}", low_rank=False)
    post = idata["posterior"].to_dataset()
    post = post[[v for v in (*link.params, "floor", "s") if v in post]]
    stats = idata["sample_stats"].to_dataset() if "sample_stats" in idata.children else None
    divergences = int(stats["diverging"].sum()) if stats is not None and "diverging" in stats else 0
    return post, divergences


def _link_heldout_errors(
    link: links.Link,
    runs: Any,
    progress: np.ndarray,
    metric: np.ndarray,
    floor: float,
    settings: Mapping[str, Any],
    name: str,
) -> tuple[np.ndarray, float]:
    """The link's standardized errors on the top :data:`~bayescale.calibration.HOLDOUT` of runs by
    compute, from a re-fit of the link on the rest, at the held-out runs' *observed* losses: how well the
    link's bands hold as it is extrapolated (step 1's bands are calibrated on their own). Also the
    split's *reach*: how far the held-out runs' progress extends beyond the re-fit's (0 if no further)."""
    held = holdout_top_compute(runs, calibration.HOLDOUT)
    if (~held).sum() < MIN_TASK_RUNS or not held.any():
        return np.empty(0), 0.0
    refit = sampling.refit_settings(settings)
    train_u, train_y = progress[~held], metric[~held]
    post, _ = _sample_link(link, train_u, train_y, floor, refit, f"{name} (calibration)")
    flat = _flat(post, links.prior_arguments(train_u, train_y, floor)["u_ref"])
    columns = {k: v[:, None] for k, v in flat.items()}
    mean = link.mean(columns, progress[held][None, :], columns["floor"])
    rng = np.random.default_rng([int(settings["seed"]), 5])
    draws = mean + flat["s"][:, None] * rng.standard_t(links.METRIC_NU, size=mean.shape)
    lower, median, upper = np.quantile(draws, [0.05, 0.5, 0.95], axis=0)
    reach = calibration.reach_of(train_u, progress[held])
    return calibration.standardized_errors(metric[held], median, lower, upper), reach
