"""Many fits at once: one job per (runs, law, priors, settings), on any ``concurrent.futures.Executor``.

By default the jobs run in a process pool with one worker per core; pass any executor to run
them elsewhere -- ``dask.distributed``'s ``client.get_executor()`` runs the same call on a
cluster, as does Ray's executor. Each job is a plain, picklable :class:`Job`; each worker
calls :func:`bayescale.fit` and returns the :class:`~bayescale.result.ScalingFit` (its
DataTree travels back pickled), so a job with a seed gives exactly the posterior of the
same single fit.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayescale.errors import BayescaleError
from bayescale.result import ScalingFit

log = logging.getLogger("bayescale")


@dataclass
class Job:
    """One fit: the runs, the law, prior overrides and :func:`bayescale.fit` keyword arguments.

    Attributes
    ----------
    runs : DataFrame, path or Runs
        The runs (a path is read by the worker, so it must be visible there).
    law : str, optional
        Law name (default: chinchilla when N and D are known).
    priors : mapping, optional
        Prior overrides by parameter name.
    options : mapping
        Other keyword arguments of :func:`bayescale.fit` (``draws``, ``seed``, ...).
    name : str, optional
        A label for progress messages and errors.
    """

    runs: Any
    law: str | None = None
    priors: Mapping[str, Any] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None


def _as_job(job: Job | Mapping[str, Any]) -> Job:
    if isinstance(job, Job):
        return job
    if isinstance(job, Mapping):
        known = {"runs", "law", "priors", "name"}
        if "runs" not in job:
            raise BayescaleError(f"a job needs 'runs'; got keys {', '.join(job)}")
        return Job(
            runs=job["runs"],
            law=job.get("law"),
            priors=job.get("priors"),
            name=job.get("name"),
            options={k: v for k, v in job.items() if k not in known},
        )
    raise BayescaleError(f"a job is a bayescale.Job or a mapping with 'runs', got {type(job).__name__}")


def run_job(job: Job) -> ScalingFit:
    """Fit one job (what each worker runs)."""
    from bayescale.pipeline import fit

    options = {"progress": False, **dict(job.options)}
    return fit(job.runs, law=job.law, priors=job.priors, **options)


def fit_many(
    jobs: Iterable[Job | Mapping[str, Any]],
    executor: Executor | None = None,
    *,
    max_workers: int | None = None,
    seed: int | None = None,
) -> list[ScalingFit]:
    """Fit many jobs at once; results in the order of ``jobs``.

    Parameters
    ----------
    jobs : iterable of Job or mapping
        Each a :class:`Job`, or a mapping with ``runs`` and optionally ``law``, ``priors``,
        ``name`` and any :func:`bayescale.fit` keyword argument (``draws``, ``seed``...).
    executor : concurrent.futures.Executor, optional
        Where to run them (e.g. ``dask.distributed.Client(...).get_executor()``). Default: a
        process pool with ``max_workers`` workers (default one per core), shut down at the end.
    max_workers : int, optional
        Workers of the default pool.
    seed : int, optional
        Gives every job without a seed one of its own, drawn from this seed (so the batch is
        reproducible); jobs with a seed keep it.

    Returns
    -------
    list of ScalingFit

    Raises
    ------
    BayescaleError
        The first job that failed, named, with its error (the other jobs still finish).
    """
    jobs = [_as_job(j) for j in jobs]
    if not jobs:
        return []
    seeds = np.random.SeedSequence(seed).generate_state(len(jobs)) if seed is not None else [None] * len(jobs)
    for job, s in zip(jobs, seeds, strict=True):
        if s is not None and job.options.get("seed") is None:
            job.options = {**job.options, "seed": int(s)}
    own = executor is None
    if own:
        import multiprocessing

        workers = max_workers or os.cpu_count() or 1
        # spawn: a fresh interpreter per worker (forking a process with sampler threads is unsafe)
        executor = ProcessPoolExecutor(
            max_workers=min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")
        )
    try:
        futures: list[Future] = [executor.submit(run_job, job) for job in jobs]
        results, errors = [], []
        for i, (job, future) in enumerate(zip(jobs, futures, strict=True)):
            label = job.name or (str(job.runs) if isinstance(job.runs, (str, Path)) else f"job {i}")
            try:
                results.append(future.result())
                log.info("fit-many: %d/%d done (%s)", i + 1, len(jobs), label)
            except Exception as ex:  # report every failure by job, raise once
                errors.append(f"{label}: {ex}")
                results.append(None)
    finally:
        if own:
            executor.shutdown()
    if errors:
        raise BayescaleError(f"{len(errors)} of {len(jobs)} fits failed; first: {errors[0]}")
    return results


def read_jobs(path: str | Path) -> list[Job]:
    """Jobs from a CSV with a ``runs`` column (paths) and optional ``law``, ``seed``, ``out``, ``name``.

    Relative run paths are taken relative to the CSV's folder.
    """
    from bayescale.data import read_table

    path = Path(path)
    table = read_table(path)
    table.columns = [str(c).strip() for c in table.columns]
    if "runs" not in table.columns:
        raise BayescaleError(f"'{path}' needs a 'runs' column of run files; columns found: {', '.join(table.columns)}")
    jobs = []
    for i, row in enumerate(table.to_dict("records"), start=2):
        runs = Path(str(row["runs"]))
        runs = runs if runs.is_absolute() else path.parent / runs
        if not runs.exists():
            raise BayescaleError(f"'{path}' row {i}: run file '{runs}' not found")
        options: dict[str, Any] = {}
        if "seed" in row and pd.notna(row["seed"]):
            options["seed"] = int(row["seed"])
        law = row.get("law") if "law" in row and pd.notna(row.get("law")) else None
        name = str(row["out"]) if "out" in row and pd.notna(row.get("out")) else None
        jobs.append(Job(runs=str(runs), law=law, options=options, name=name))
    return jobs
