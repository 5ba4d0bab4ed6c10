"""Fit each group of runs on its own and keep the fits as one (:class:`~bayescale.separate.SeparateFit`).

What ``bayescale fit RUNS --law FORMULA --group COLUMN`` runs: a formula law has no population
model, so each group gets the complete single-fit pipeline (:func:`bayescale.pipeline.fit`:
law, discrepancy, band calibration) with its own parameters, as ScaleBench fits its groups.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from bayescale.data import Runs
from bayescale.laws import Law
from bayescale.pipeline import fit
from bayescale.separate import SeparateFit, assemble

log = logging.getLogger("bayescale")


def fit_separate(groups: Mapping[str, tuple[Law, Runs]], column: str, **options: Any) -> SeparateFit:
    """One fit per group, in order, with the same options.

    Parameters
    ----------
    groups : mapping
        Group name -> (law, runs), e.g. from :func:`bayescale.laws.formula.lawfile.by_group`.
    column : str
        The column the groups come from (saved, and named by answers).
    **options
        Keyword arguments of :func:`bayescale.pipeline.fit` (``draws``, ``seed``, ``strict``...);
        ``priors`` apply to every group; group ``i`` (from 0) is sampled with ``seed + i``.

    Returns
    -------
    SeparateFit
    """
    if not groups:
        raise ValueError("no groups to fit")
    seed = options.pop("seed", None)
    if seed is None:  # one random seed, said in the first group's log; each group its own from it
        seed = int(np.random.default_rng().integers(2**31 - 1 - len(groups)))
    fits = {}
    for i, (name, (law, runs)) in enumerate(groups.items(), 1):
        log.info("group %d/%d: %s = %s (%d runs)", i, len(groups), column, name, len(runs))
        fits[name] = fit(runs, law=law, seed=seed + i - 1, **options)
    return assemble(fits, column)
