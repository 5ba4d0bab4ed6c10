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

``with_data`` swaps the data of the logp function only: the chains' initial points would still
come from the *first* runs' model (PyMC's support points of the data-scaled priors, jittered), so
a fit's draws would depend on what the process fitted before it. Each swap therefore brings the
initial-point function of a model built on the new data (:func:`initial_point_function`; about
0.1 s, against 6-9 s to compile): a seeded fit gives the same draws whether its structure was
compiled for it or for other runs earlier in the process.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bayescale import model_cache
from bayescale.data import Runs
from bayescale.laws import Law
from bayescale.model import build_model, jittered, structure
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
    return cached(structure(law, priors), lambda: build_model(law, runs, priors), law.name)


def cached(key: tuple, build: Callable[[], Any], what: str) -> Any:
    """nutpie's compiled model for ``key``: ``build()`` compiled on first use, later its data swapped in.

    Parameters
    ----------
    key : tuple
        The model's structure: everything but the values of its ``pm.Data``.
    build : callable
        Returns the ``pm.Model`` on the current data. Compiled when ``key`` is new to this
        process; otherwise its ``pm.Data`` values and initial points replace the compiled
        model's (building is a fraction of a second, compiling several seconds).
    what : str
        Name of the model, for the debug log.
    """

    model = build()
    compiled = _CACHE.get(key)
    if compiled is None:
        log.debug("compiling the %s model (once per process)", what)
        compiled = model_cache.compile_model(model, what)
        _CACHE[key] = compiled
        return compiled
    swapped = compiled.with_data(**{v.name: v.get_value() for v in model.data_vars})
    return dataclasses.replace(swapped, initial_point_func=initial_point_function(model, compiled))


def initial_point_function(model: Any, compiled: Any) -> Callable[[Any], np.ndarray]:
    """The chains' initial points of ``model``, laid out as ``compiled``'s parameter vector.

    What nutpie's ``compile_pymc_model`` makes by default (PyMC's support points, each free
    variable jittered by U(-1, 1) on its unconstrained scale, seeded), built on ``model`` --
    the same structure as ``compiled`` with other data.

    Parameters
    ----------
    model : pymc.Model
        The model on the new data.
    compiled : nutpie.CompiledPyMCModel
        The compiled model of the same structure (for the order and shapes of its free variables).

    Returns
    -------
    callable
        ``seed -> flat float64 array`` of length ``compiled.n_dim``.
    """
    from pymc.initial_point import make_initial_point_fn

    points = make_initial_point_fn(
        model=model, jitter_rvs=jittered(model), default_strategy="support_point", return_transformed=True
    )
    names, total = [], 0  # the free variables lead nutpie's list of stored variables
    for name, shape in zip(compiled.shape_info[0], compiled.shape_info[2], strict=True):
        if total >= compiled.n_dim:
            break
        names.append(name)
        total += int(np.prod(shape))
    lock = threading.Lock()  # nutpie asks from its chains' threads; a PyTensor function is not re-entrant

    def flat(seed: Any = None) -> np.ndarray:
        with lock:
            point = points(seed)
        out = np.concatenate([np.asarray(point[n], dtype="float64").ravel() for n in names])
        if out.size != compiled.n_dim:
            raise ValueError(f"initial point of size {out.size}; the compiled model has {compiled.n_dim}")
        return out

    return flat


def clear() -> None:
    """Forget every compiled model (tests; a long-lived process that changes laws often)."""
    _CACHE.clear()
