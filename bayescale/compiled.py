"""Compile each model structure once per process; re-fit it to new runs by swapping its data.

nutpie turns a PyMC model into machine code with numba: about 6-9 s for a law, redone by
every new ``pm.Model`` (numba cannot cache its wrappers across processes). Everything a law's
model takes from the runs -- observed log losses, log inputs, the reference scales of the
centred parametrisation, the data-scaled priors' parameters -- enters it as ``pm.Data``
(:func:`bayescale.model.build_model`), so one compiled model serves every fit of the same
*structure* (law, prior families, fixed values): the calibration re-fit on the runs below the
compute cut-off, ``compare``'s leave-future-out fits, ``backtest`` splits and the jobs of one
``fit_many`` worker. nutpie's ``CompiledPyMCModel.with_data`` swaps the values (the length
of the runs may change) without recompiling.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from bayescale.data import Runs
from bayescale.laws import Law
from bayescale.model import build_model, model_data, structure
from bayescale.priors import Prior

log = logging.getLogger("bayescale")

_CACHE: dict[tuple, Any] = {}


def law_model(law: Law, runs: Runs, priors: Mapping[str, Prior]) -> Any:
    """nutpie's compiled model of (law, runs, priors): compiled on first use, then its data swapped.

    Returns
    -------
    nutpie.CompiledPyMCModel
        Ready to sample the posterior of ``law`` on ``runs`` under ``priors``.
    """
    return cached(
        structure(law, priors), lambda: build_model(law, runs, priors), lambda: model_data(law, runs, priors), law.name
    )


def cached(key: tuple, build: Callable[[], Any], data: Callable[[], dict[str, Any]], what: str) -> Any:
    """nutpie's compiled model for ``key``: ``build()`` compiled on first use, later ``data()`` swapped in.

    Parameters
    ----------
    key : tuple
        The model's structure: everything but the values of its ``pm.Data``.
    build : callable
        Returns the ``pm.Model`` (called only when ``key`` is new to this process).
    data : callable
        Returns the value of every ``pm.Data`` by name (called when ``key`` is known).
    what : str
        Name of the model, for the debug log.
    """
    import nutpie

    compiled = _CACHE.get(key)
    if compiled is None:
        log.debug("compiling the %s model (once per process)", what)
        compiled = nutpie.compile_pymc_model(build())
        _CACHE[key] = compiled
        return compiled
    return compiled.with_data(**data())


def clear() -> None:
    """Forget every compiled model (tests; a long-lived process that changes laws often)."""
    _CACHE.clear()
