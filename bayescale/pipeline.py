"""The fitting pipeline: the law, then its discrepancy, then the band's calibration.

``fit`` composes the stages of a default fit: the law's posterior by NUTS
(:func:`bayescale.sampling.fit_law`, on a model compiled once per process,
:mod:`bayescale.compiled`); the model discrepancy on its residuals
(:func:`bayescale.sampling.fit_discrepancy`); and the band scale from a leave-future-out
re-fit of both on the runs below the top of compute (:mod:`bayescale.calibration` for the
arithmetic, :mod:`bayescale.splits` for the split). Re-fits inside one process -- the
calibration split, ``compare``'s and ``backtest``'s splits -- re-use the compiled model.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from threadpoolctl import threadpool_limits

from bayescale import calibration, sampling
from bayescale.data import Runs
from bayescale.diagnostics import Diagnostics, DiagnosticsWarning
from bayescale.errors import BayescaleError, DiagnosticsError
from bayescale.laws import Law
from bayescale.model import NOISE_PARAMS
from bayescale.pooled import PooledFit
from bayescale.priors import PriorLike
from bayescale.result import ScalingFit
from bayescale.splits import holdout_top_compute

log = logging.getLogger("bayescale")
#: Name prefix of the thread of the calibration re-fit, whose progress messages are not shown.
_REFIT_THREAD = "bayescale-calibration"


class _QuietRefit(logging.Filter):
    """Drop the calibration re-fit's progress messages: they would interleave with the fit's own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.threadName.startswith(_REFIT_THREAD)


if not any(isinstance(f, _QuietRefit) for f in log.filters):
    log.addFilter(_QuietRefit())


def fit(
    runs: Runs | pd.DataFrame | str | Path,
    law: str | Law | None = None,
    priors: Mapping[str, PriorLike] | None = None,
    *,
    prior_set: str = "auto",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    sampler: str = "nutpie",
    target_accept: float = 0.95,
    strict: bool = False,
    progress: bool = False,
    discrepancy: bool = True,
    calibrate: bool = True,
    retry: bool = True,
    group: str | None = None,
) -> ScalingFit | PooledFit:
    """Fit a scaling law to training runs by NUTS.

    Parameters
    ----------
    runs : Runs, pandas.DataFrame or path
        The runs (a path or DataFrame is read with :func:`bayescale.load_runs`).
    law : str or Law, optional
        ``chinchilla`` (default when N and D are known), ``kaplan``, ``power:C`` (default
        when only compute is known), ``power:N``, ``power:D``; or a formula over the runs'
        columns (``"E + A/N^alpha + B/D^beta"``) or a named formula law (``farseer``), modelling
        the ``loss`` column -- for another target, a cost or bounds, pass a
        :class:`~bayescale.laws.formula.FormulaLaw` with runs from
        :func:`~bayescale.laws.formula.prepare`.
    priors : mapping, optional
        Overrides of the default priors by parameter name: :class:`bayescale.Prior`
        objects, dicts ``{"dist": ..., "kwargs": ...}``, strings ``"Normal(0.35, 0.1)"``
        or numbers (fixed values).
    prior_set : {"auto", "literature", "weak"}, default "auto"
        Where the priors the user did not give come from: ``literature`` -- the population
        of the field's published ladders (:mod:`bayescale.literature`), which lets a ladder
        of 3 runs, of one token budget or of one tokens-per-parameter ratio fit; ``weak`` --
        the law's data-scaled weakly informative defaults; ``auto`` -- literature where the
        law has one (chinchilla), else weak.
    draws, tune, chains : int
        Posterior draws and tuning steps per chain, and the number of chains.
    seed : int, optional
        Random seed; chosen at random (and stored) when not given.
    sampler : {"nutpie", "pymc"}
        NUTS implementation; nutpie falls back to PyMC's when it is not installed.
    target_accept : float, default 0.95
        NUTS target acceptance; raise it (0.99) when there are divergences.
    strict : bool, default False
        Raise :class:`DiagnosticsError` instead of warning when diagnostics fail.
    progress : bool, default False
        Show the sampler's progress bar (on stderr).
    discrepancy : bool, default True
        Fit the model discrepancy (:mod:`bayescale.discrepancy`): a Gaussian process on the
        law's residuals, fitted in a second stage, that carries the law's structured misfit
        into predictions and widens bands where there are no runs. False keeps the law's
        plain posterior predictive (narrower, and over-confident when extrapolating).
    calibrate : bool, default True
        Calibrate the band width on the runs themselves (:mod:`bayescale.calibration`): one
        extra, shorter fit on the runs below the top 20% of compute, whose errors on the
        held-out runs set the band scale. False leaves the scale at 1.
    retry : bool, default True
        When a stage's chains fail their diagnostics (R-hat, ESS, divergences) at
        ``target_accept`` below 0.99, sample that stage once more at 0.99 -- smaller steps
        through the narrow, curved posteriors of ladders with few sizes -- with twice the
        tuning and 2-8 times the draws thinned to the same number (more where the effective
        sample size fell further short), before warning.

    group : str, optional
        A column of ``runs`` (a table or file) whose values name groups -- data mixes, eval
        sets, configurations: one hierarchical fit of all groups
        (:func:`bayescale.pooled_pipeline.fit_pooled`, :mod:`bayescale.pooling`).

    Returns
    -------
    ScalingFit, or PooledFit with ``group``
    """
    if group is not None:
        if isinstance(law, str) and sampling.is_formula_law(law):
            raise BayescaleError(
                "group= with a formula law: fit each group on its own with bayescale.separate_pipeline."
                "fit_separate(bayescale.laws.formula.lawfile.by_group(runs, group, law=...), group)"
            )
        if isinstance(runs, Runs):
            raise BayescaleError("group= needs the run table (DataFrame or file) with the group column, not Runs")
        from bayescale.pooled_pipeline import fit_pooled

        result = fit_pooled(
            runs, group, law, priors, prior_set=prior_set, draws=draws, tune=tune, chains=chains, seed=seed,
            sampler=sampler, target_accept=target_accept, progress=progress, discrepancy=discrepancy,
            calibrate=calibrate, retry=retry,
        )  # fmt: skip
        check_diagnostics(result.diagnostics, strict)
        return result
    # the fit's own check, not every stage's: the calibration re-fit runs the stages again
    runs, law = sampling.resolve(runs, law)
    sampling.warn_unused_unique_tokens(runs, law)
    result = _fit_stages(
        runs, law, priors, prior_set, draws, tune, chains, seed, sampler, target_accept, progress, discrepancy,
        calibrate, retry,
    )  # fmt: skip
    check_diagnostics(result.diagnostics, strict)
    return result


def check_diagnostics(diag: Diagnostics, strict: bool) -> None:
    """Raise (``strict``) or warn when a fit's diagnostics failed."""
    if not diag.ok:
        if strict:
            raise DiagnosticsError(f"diagnostics failed (--strict): {diag.message()}")
        warnings.warn(f"diagnostics failed: {diag.message()}", DiagnosticsWarning, stacklevel=3)


def _fit_stages(
    runs: Runs | pd.DataFrame | str | Path,
    law: str | Law | None,
    priors: Mapping[str, PriorLike] | None,
    prior_set: str,
    draws: int,
    tune: int,
    chains: int,
    seed: int | None,
    sampler: str,
    target_accept: float,
    progress: bool,
    discrepancy: bool,
    calibrate: bool,
    retry: bool,
) -> ScalingFit:
    """:func:`fit` without the final diagnostics check (the calibration re-fit's spread is what is
    used, not its diagnostics; and ``warnings.catch_warnings`` is not thread-safe)."""
    from bayescale.literature import resolve_set

    runs, law, resolved = sampling.prepare(runs, law, priors, prior_set)
    if discrepancy and not law.discrepancy_inputs:
        log.info(
            "no model discrepancy for %s: its basis covers one or two positive inputs, the law has %s",
            law.name,
            ", ".join(law.inputs),
        )
        discrepancy = False
    if calibrate and runs.names and runs.cost() is None:  # a formula law's runs without N, D, C or --cost
        positive = [x for x in law.inputs if x not in runs.linear]
        if positive:
            log.info(
                "band calibration by the product of the positive inputs (%s): the runs have no cost; give the "
                "runs' real cost with --cost EXPR",
                " x ".join(positive),
            )
        else:
            log.info(
                "no band calibration: the runs have no cost and no positive input to hold out the largest by; "
                "give one with --cost EXPR"
            )
            calibrate = False
    used_set = resolve_set(prior_set, law.name)
    if prior_set == "auto" and used_set == "literature":
        log.info("priors: the literature prior of %s (weak priors: --priors weak)", law.name)
    settings = sampling.stage_settings(used_set, draws, tune, chains, seed, sampler, target_accept, progress, retry)
    log.info(
        "sampling %s on %d runs: %d chains x %d tune + %d draws (%s, seed %d)",
        law.name,
        len(runs),
        chains,
        tune,
        draws,
        settings["sampler"],
        settings["seed"],
    )
    checked = [n for n in law.params if not resolved[n].is_fixed] + list(NOISE_PARAMS)
    result = sampling.fit_law(law, runs, resolved, settings, checked)
    # The calibration re-fit does not depend on this fit's discrepancy: the two run side by side
    # (the discrepancy's small factorisations in one thread, the re-fit's sampler and its own
    # discrepancy in another; 2 cores, 245 runs: about 7 s -> 4 s after the law). One BLAS
    # thread for both (see fit_discrepancy), set here once: threadpoolctl's limit is process-wide.
    if calibrate:
        log.info(
            "calibrating the band width: re-fit without the top %.0f%% of runs by compute (alongside)",
            100 * calibration.HOLDOUT,
        )
    with (
        threadpool_limits(limits=1, user_api="blas"),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix=_REFIT_THREAD) as pool,
    ):
        refit = None
        if calibrate:
            refit = pool.submit(_calibration_refit, runs, law, priors, resolved, settings, discrepancy)
        if discrepancy:
            sampling.fit_discrepancy(result, runs, law, settings)
        if refit is not None:
            _store_calibration(result, refit.result())
    return result


def _calibration_refit(
    runs: Runs,
    law: Law,
    user_priors: Mapping[str, PriorLike] | None,
    resolved: Mapping[str, Any],
    settings: Mapping[str, Any],
    discrepancy: bool,
) -> dict[str, Any]:
    """The leave-future-out re-fit of the band calibration (:func:`leave_future_out`); touches no result."""
    from bayescale.model import n_free_params

    refit = sampling.refit_settings(settings)  # a shorter re-fit whose spread is what is used
    keys = ("prior_set", "draws", "tune", "chains", "seed", "sampler", "target_accept", "progress", "retry")
    fit_kwargs = {**{k: refit[k] for k in keys}, "discrepancy": discrepancy, "calibrate": False}
    return leave_future_out(runs, law, dict(user_priors or {}), n_free_params(resolved) + 2, fit_kwargs)


def _store_calibration(result: ScalingFit, lfo: Mapping[str, Any]) -> None:
    """The band scale from the re-fit's held-out errors, stored in the result's tree (group ``calibration``,
    attr ``band_scale``)."""
    scale = calibration.band_scale(lfo["z"])
    result.tree["calibration"] = xr.Dataset({k: ("heldout", v) for k, v in lfo.items() if k != "reach"})
    result.tree.attrs["band_scale"] = scale
    result.tree.attrs["calibration_reach"] = json.dumps(lfo["reach"])
    if not lfo["z"].size:
        log.info(
            "band scale %.2f: too few runs to hold out the top %.0f%% and re-fit", scale, 100 * calibration.HOLDOUT
        )
        return
    log.info(
        "band scale %.2f from %d held-out runs (90%% bands of the re-fit held %.0f%% of them)",
        scale,
        lfo["z"].size,
        100 * float(np.mean(np.abs(lfo["z"]) <= calibration.Z90)),
    )


def leave_future_out(
    runs: Runs, law: str | Law, priors: Mapping[str, Any] | None, min_runs: int, fit_kwargs: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """Re-fit below the compute cutoff and return what the held-out runs say about the bands.

    Returns the held-out runs' standardized errors ``z``, their bands' ``halfwidth`` and ``distance_<x>``
    beyond the re-fit's runs per positive input x (:func:`bayescale.calibration.heldout_evidence`), their
    compute ``C`` and the split's ``reach``; the same columns, empty, when holding out would leave fewer
    than ``min_runs`` runs (the band's growth with distance then keeps its prior).
    """
    held = holdout_top_compute(runs, calibration.HOLDOUT)
    if (~held).sum() < min_runs:
        # no held-out runs, but the same columns: the band's growth with distance keeps its prior
        inputs = (sampling.resolve(runs, law)[1] if isinstance(law, str) else law).inputs
        empty = np.empty(0)
        columns = ("z", "halfwidth", *(calibration.DISTANCE + x for x in calibration.input_ranges(runs, inputs)), "C")
        return {**dict.fromkeys(columns, empty), "reach": {}}
    train, test = runs.subset(~held), runs.subset(held)
    sub = _fit_stages(train, law, priors, **fit_kwargs)  # not checked: its spread is what is used
    evidence = calibration.heldout_evidence(sub, test)
    C = test.values("C") if test.has("C") else np.full(len(test), np.nan)
    return {**evidence, "C": C, "reach": calibration.split_reach(train, test)}
