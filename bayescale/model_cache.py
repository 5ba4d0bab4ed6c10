"""Compiled models on disk, shared across processes: a later ``bayescale`` command skips nutpie's build.

nutpie compiles a PyMC model in two layers: PyTensor turns the log density and its gradient into a
numba function (PyTensor caches that on disk itself), and nutpie wraps it in two ``numba.cfunc``
callbacks for its Rust sampler. Those wrappers are closures over the shared data's layout; numba
keys its disk cache of a function on the pickled contents of its closure, which hold objects new
in every process, so nutpie's wrappers are rebuilt by every process (about 6 s of a law's 7-8 s
build here; ``compile_pymc_model(..., cache=True)`` writes an entry per process and never reads one).

This module builds the same two wrappers from generated, closure-free source, with the shared data
under fixed keys, and compiles them with ``numba.cfunc(..., cache=True)`` into the bayescale cache
folder, under a key of its own (:func:`model_key`): a structural hash of the model's log-density and
stored-variable graphs (operations, constants, data names, types and ranks) and the versions of
Python, numba, PyTensor, PyMC and nutpie and the CPU. Beside numba's files a small JSON entry holds
what nutpie's build would have computed (variable names, shapes, slices, the shared data's keys), so a
later process needs neither PyTensor's graph rewriting nor numba's compile: it reads the entry, loads
the two callbacks from numba's cache, and puts the model's current data behind them.

Nothing loaded is trusted: before use, the loaded callbacks' log density and gradient at one
initial point are compared with the model's own, computed by PyTensor's Python linker (no compile),
and the expanded draw with its free part. Any failure -- a corrupted or stale entry, an entry of
other versions, an unwritable folder, a nutpie whose internals moved -- logs one line on stderr and
falls back to nutpie's own build: slower, never wrong.

Where: ``BAYESCALE_CACHE_DIR``, else the platform's user cache folder (``platformdirs``);
:func:`info` and :func:`clear` back ``bayescale cache info`` / ``bayescale cache clear``. Writes
are atomic (a temporary file renamed into place; numba writes its own files the same way), so
processes filling the cache at once (``fit_many`` workers) cannot leave a torn entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import shutil
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("bayescale")

#: Bumped when the entry's layout or the generated wrappers change: older entries then miss.
FORMAT = 1
#: The nutpie releases whose internals this module was written against; others fall back.
NUTPIE_TESTED = ("0.16.",)
#: Relative tolerance of the load check (log density and gradient against PyTensor's Python linker).
CHECK_RTOL = 1e-6

_ENV = "BAYESCALE_CACHE_DIR"
_ENTRY_SUFFIX = ".json"

# Generated wrapper functions -> (key, folder): numba's cache locator below sends exactly these there.
_OURS: weakref.WeakKeyDictionary[Callable, tuple[str, str]] = weakref.WeakKeyDictionary()


class CacheUnavailableError(Exception):
    """The cache cannot serve or store this model (the reason is the message); nutpie builds it."""


def cache_dir() -> Path:
    """The cache folder: ``$BAYESCALE_CACHE_DIR``, else the platform's user cache folder for bayescale.

    Returns
    -------
    Path
        The folder (not created here).
    """
    env = os.environ.get(_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("bayescale", appauthor=False)) / "models"


# ---------------------------------------------------------------------------------------------- keys


@cache
def _versions() -> dict[str, str]:
    """Versions the compiled code depends on (read once per process: the key, the entry and its check use them)."""
    from importlib.metadata import version

    return {
        "format": str(FORMAT),
        "python": platform.python_version(),
        **{pkg: version(pkg) for pkg in ("numba", "llvmlite", "pytensor", "pymc", "nutpie", "numpy")},
        "machine": platform.machine(),
        "cpu": _cpu(),
    }


def _cpu() -> str:
    from numba.core import config

    try:
        import llvmlite.binding as llvm

        name = config.CPU_NAME or llvm.get_host_cpu_name()
        features = config.CPU_FEATURES if config.CPU_FEATURES is not None else llvm.get_host_cpu_features().flatten()
        return f"{name}:{hashlib.sha256(str(features).encode()).hexdigest()[:16]}"
    except Exception:  # any failure only makes the key coarser; numba's own index checks the CPU too
        return "unknown"


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def _op_description(op: Any) -> str:
    props = op._props_dict() if getattr(op, "__props__", None) is not None else None
    text = f"{type(op).__module__}.{type(op).__qualname__}:{props!r}:{op}"
    if _ADDRESS.search(text):
        raise CacheUnavailableError(f"operation {type(op).__name__} has no stable description")
    return text


def _root_description(var: Any) -> str:
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant

    if isinstance(var, Constant):
        data = np.asarray(var.data)
        digest = hashlib.sha256(data.tobytes()).hexdigest()[:24] if data.dtype != object else repr(var.data)
        return f"constant {var.type} {data.dtype} {data.shape} {digest}"
    if isinstance(var, SharedVariable):
        return f"shared {var.name} {var.type}"
    return f"input {var.name} {var.type}"


def graph_fingerprint(outputs: list[Any]) -> str:
    """A hash of a PyTensor graph's structure: operations, their inputs, constants, names and types.

    Equal for the same graph built in two processes (no object identities enter it); the values of
    shared variables (the runs' data) do not enter it, their names, types and ranks do.

    Raises
    ------
    CacheUnavailableError
        If an operation's description holds a memory address (it would differ between processes).
    """
    from pytensor.graph.traversal import toposort

    ids: dict[Any, str] = {}
    lines: list[str] = []

    def ref(var: Any) -> str:
        if var not in ids:
            ids[var] = f"r{len(lines)}"
            lines.append(f"{ids[var]} = {_root_description(var)}")
        return ids[var]

    for node in toposort(outputs):
        args = [ref(v) for v in node.inputs]
        name = f"n{len(lines)}"
        lines.append(f"{name} = {_op_description(node.op)}({', '.join(args)}) -> {[str(o.type) for o in node.outputs]}")
        for k, out in enumerate(node.outputs):
            ids[out] = f"{name}[{k}]"
    lines.append("outputs " + " ".join(ref(o) if o.owner is None else ids[o] for o in outputs))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def model_key(model: Any, logp_graph: Any | None = None) -> str:
    """The cache key of a PyMC model: its graphs' fingerprint, data layout and the versions that compile it.

    Parameters
    ----------
    model : pymc.Model
        The model nutpie would compile.
    logp_graph : TensorVariable, optional
        ``model.logp()``, when the caller has built it already.

    Returns
    -------
    str
        A hex digest; any change of the log-density graph, the stored variables, the data's names,
        dtypes or ranks, the lengths of the sampled and stored variables' dimensions, or of Python,
        numba, PyTensor, PyMC, nutpie, numpy or the CPU changes it.
    """
    outputs = [model.logp() if logp_graph is None else logp_graph, *model.unobserved_value_vars]
    parts = {
        "graph": graph_fingerprint(outputs),
        "free": [(model.rvs_to_values[v].name, str(model.rvs_to_values[v].type)) for v in model.free_RVs],
        "stored": [v.name for v in model.unobserved_value_vars],
        "data": sorted((v.name, str(v.type)) for v in model.data_vars),
        "dims": _stored_dim_lengths(model),
        "check_bounds": bool(model.check_bounds),
        "versions": _versions(),
        "wrappers": hashlib.sha256((_LOGP_SRC + _EXPAND_SRC).encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:40]


def _stored_dim_lengths(model: Any) -> dict[str, int | str]:
    """Lengths of the dimensions of the free and deterministic variables (groups of a pooled fit, say).

    They set the number of sampled parameters, which the entry stores, yet a dimension's length is
    a shared value outside the graph. The runs' own dimension stays out unless a sampled or stored
    variable has it, so ladders of any length share the law's entry.
    """
    named = model.named_vars_to_dims
    used = sorted({d for v in (*model.free_RVs, *model.deterministics) for d in (named.get(v.name) or ()) if d})
    out: dict[str, int | str] = {}
    for dim in used:
        length = model.dim_lengths[dim]
        value = length.get_value() if hasattr(length, "get_value") else getattr(length, "data", None)
        out[dim] = int(value) if value is not None else str(length)
    return out


# ------------------------------------------------------------------------------------ the wrappers

# The callbacks nutpie's Rust sampler calls (same signatures and return codes as nutpie's own
# closures in nutpie/compile_pymc.py), written out per model: the data's keys, ranks and dtypes are
# literals, the PyTensor function and the record dtype are globals. numba's cache index does not
# see globals; the key (this module's disambiguator) does.
_LOGP_SRC = """
def bayescale_logp(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    try:
        x = numba.carray(x_, ({n_dim},))
        out = numba.carray(out_, ({n_dim},))
        logp = numba.carray(logp_, ())
        shared = numba.carray(user_data_, (), RECORD)["shared"]
{extract}
        logp_val, grad = INNER(x{args})
        logp[()] = logp_val
        out[...] = grad
        if not np.all(np.isfinite(out)):
            return 3
        if not np.isfinite(logp_val):
            return 4
    except Exception:  # noqa: BLE001
        return 1
    return 0
"""

_EXPAND_SRC = """
def bayescale_expand(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim}:
        return -1
    if expanded != {n_expanded}:
        return -1
    try:
        x = numba.carray(x_, ({n_dim},))
        out = numba.carray(out_, ({n_expanded},))
        shared = numba.carray(user_data_, (), RECORD)["shared"]
{extract}
        (values,) = INNER(x{args})
        out[...] = values
    except Exception:  # noqa: BLE001
        return -2
    return 0
"""

_EXTRACT = (
    "        {var} = numba.carray(address_as_void_pointer(shared['data']['{key}'][()]), "
    "int(shared['size']['{key}'][()]), DTYPE_{i}).reshape(({shape}))"
)
_EXTRACT_SCALAR = "        {var} = numba.carray(address_as_void_pointer(shared['data']['{key}'][()]), (), DTYPE_{i})"


@dataclass(frozen=True)
class _Shared:
    name: str
    key: str
    ndim: int
    dtype: str


def _source(template: str, shared: list[_Shared], order: list[str], **sizes: int) -> tuple[str, dict[str, Any]]:
    by_key = {s.key: (i, s) for i, s in enumerate(shared)}
    lines, args, dtypes = [], [], {}
    for j, key in enumerate(order):
        i, s = by_key[key]
        var = f"d{j}"
        if s.ndim == 0:
            lines.append(_EXTRACT_SCALAR.format(var=var, key=key, i=i))
        else:
            shape = "".join(f"shared['shape']['{key}'][{k}], " for k in range(s.ndim))
            lines.append(_EXTRACT.format(var=var, key=key, i=i, shape=shape))
        args.append(var)
        dtypes[f"DTYPE_{i}"] = np.dtype(s.dtype)
    src = template.format(extract="\n".join(lines) or "        pass", args="".join(f", {a}" for a in args), **sizes)
    return src, dtypes


def _record_dtype(shared: list[_Shared]) -> np.dtype:
    """nutpie's user-data record (``make_user_data``) for these shared variables."""
    return np.dtype(
        [
            (
                "shared",
                [
                    ("data", [(s.key, np.uintp) for s in shared]),
                    ("size", [(s.key, np.uintp) for s in shared]),
                    ("shape", [(s.key, np.uint, (s.ndim,)) for s in shared]),
                ],
            )
        ]
    )


def _install_locator() -> None:
    """Put this module's cache locator first in numba's list (once): our wrappers' files go to our folder."""
    from numba.core.caching import CacheImpl, _CacheLocator

    if any(getattr(c, "_bayescale", False) for c in CacheImpl._locator_classes):
        return

    class _Locator(_CacheLocator):
        _bayescale = True

        def __init__(self, py_func: Callable, py_file: str, key: str, folder: str):
            self._py_func, self._py_file, self._key, self._folder = py_func, py_file, key, folder

        def ensure_cache_path(self) -> None:
            Path(self._folder).mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=self._folder).close()  # numba's own check: writable

        def get_cache_path(self) -> str:
            return self._folder

        def get_source_stamp(self) -> int:
            return FORMAT

        def get_disambiguator(self) -> str:
            return self._key

        @classmethod
        def from_function(cls, py_func: Callable, py_file: str):
            found = _OURS.get(py_func)
            return None if found is None else cls(py_func, py_file, *found)

    CacheImpl._locator_classes.insert(0, _Locator)


def _wrapper(src: str, name: str, env: dict[str, Any], key: str, folder: Path, sig: Any, load_only: bool):
    """numba's cfunc of generated source, cached in ``folder`` under ``key``; ``None`` when ``load_only`` misses."""
    from numba.core.ccallback import CFunc

    _install_locator()
    scope: dict[str, Any] = {}
    exec(compile(src, "<bayescale_generated>", "exec"), env, scope)
    func = scope[name]
    _OURS[func] = (key, str(folder))
    from numba.core import sigutils

    cfunc = CFunc(func, sigutils.normalize_signature(sig), locals={}, options={})
    cfunc.enable_caching()
    if load_only:
        cres = cfunc._cache.load_overload(cfunc._sig, cfunc._targetdescr.target_context)
        if cres is None:
            return None
        cfunc._cache_hits += 1
        cfunc._library = cres.library
        cfunc._wrapper_name = cres.fndesc.llvm_cfunc_wrapper_name
        cfunc._wrapper_address = cfunc._library.get_pointer_to_function(cfunc._wrapper_name)
        return cfunc
    cfunc.compile()
    return cfunc


def _signatures() -> tuple[Any, Any]:
    import numba

    t = numba.types
    logp = t.int64(t.uint64, t.CPointer(t.double), t.CPointer(t.double), t.CPointer(t.double), t.voidptr)
    expand = t.int64(t.uint64, t.uint64, t.CPointer(t.double), t.CPointer(t.double), t.voidptr)
    return logp, expand


def _callbacks(meta: dict[str, Any], inner: tuple[Any, Any], key: str, folder: Path, load_only: bool):
    import numba
    from nutpie.compile_pymc import address_as_void_pointer

    shared = [_Shared(**s) for s in meta["shared"]]
    record = _record_dtype(shared)
    sig_logp, sig_expand = _signatures()
    out = []
    for template, name, order, fn, sig in (
        (_LOGP_SRC, "bayescale_logp", meta["logp_shared"], inner[0], sig_logp),
        (_EXPAND_SRC, "bayescale_expand", meta["expand_shared"], inner[1], sig_expand),
    ):
        src, dtypes = _source(template, shared, order, n_dim=meta["n_dim"], n_expanded=meta["n_expanded"])
        env = {
            "__name__": __name__,
            "numba": numba,
            "np": np,
            "address_as_void_pointer": address_as_void_pointer,
            "RECORD": record,
        }
        env.update(dtypes, INNER=fn)
        out.append(_wrapper(src, name, env, key, folder, sig, load_only))
    return out


# ------------------------------------------------------------------------------ build, load, check


def _shared_data(model: Any, shared: list[_Shared]) -> tuple[dict[str, np.ndarray], dict[Any, str]]:
    by_name = {v.name: v for v in model.data_vars}
    data, keys = {}, {}
    for s in shared:
        var = by_name.get(s.name)
        if var is None:
            raise CacheUnavailableError(f"the entry names data {s.name!r} the model does not have")
        value = np.array(var.get_value(), order="C", copy=True)
        if value.ndim != s.ndim or value.dtype != np.dtype(s.dtype):
            found, stored = f"{value.dtype}[{value.ndim}-d]", f"{s.dtype}[{s.ndim}-d]"
            raise CacheUnavailableError(f"data {s.name!r} is {found}, the entry's {stored}")
        value.flags.writeable = False
        data[s.key], keys[var] = value, s.key
    return data, keys


def _initial_point_fn(model: Any, names: list[str], shapes: list[tuple[int, ...]]) -> Callable:
    from nutpie.compile_pymc import _rv_dict_to_flat_array_wrapper, _wrap_with_lock
    from pymc.initial_point import make_initial_point_fn

    from bayescale.model import jittered

    points = make_initial_point_fn(
        model=model, jitter_rvs=jittered(model), default_strategy="support_point", return_transformed=True
    )
    return _rv_dict_to_flat_array_wrapper(_wrap_with_lock(points), names=names, shapes=shapes)


def _assemble(
    model: Any,
    meta: dict[str, Any],
    logp_cfunc: Any,
    expand_cfunc: Any,
    logp_pt=None,
    expand_pt=None,
    initial_point_func: Callable | None = None,
):
    from nutpie.compile_pymc import CompiledPyMCModel, _prepare_dims_and_coords, make_user_data

    shared = [_Shared(**s) for s in meta["shared"]]
    data, keys = _shared_data(model, shared)
    names = list(meta["names"])
    shapes = [tuple(s) for s in meta["shapes"]]
    slices = [slice(a, b) for a, b in meta["slices"]]
    n_free = len(model.free_RVs)
    dims, coords = _prepare_dims_and_coords(model, (names, slices, shapes), meta["reparameterized_names"])
    return CompiledPyMCModel(
        _n_dim=meta["n_dim"],
        dims=dims,
        _coords=coords,
        _shapes={n: tuple(s) for n, s in zip(names, shapes, strict=True)},
        compiled_logp_func=logp_cfunc,
        compiled_expand_func=expand_cfunc,
        initial_point_func=initial_point_func or _initial_point_fn(model, names[:n_free], shapes[:n_free]),
        shared_data=data,
        shared_var_keys=keys,
        user_data=make_user_data(keys, data),
        n_expanded=meta["n_expanded"],
        shape_info=(names, slices, shapes),
        logp_func=logp_pt,
        expand_func=expand_pt,
        reparameterized_names=meta["reparameterized_names"],
    )


def _call_logp(compiled: Any, x: np.ndarray) -> tuple[int, float, np.ndarray]:
    """The compiled log-density callback at ``x``: (return code, log density, gradient)."""
    import ctypes

    ptr = ctypes.POINTER(ctypes.c_double)
    x = np.ascontiguousarray(x, dtype="float64")
    grad, logp = np.zeros(compiled.n_dim), np.zeros(())
    code = compiled.compiled_logp_func.ctypes(
        compiled.n_dim,
        x.ctypes.data_as(ptr),
        grad.ctypes.data_as(ptr),
        logp.ctypes.data_as(ptr),
        compiled.user_data.ctypes.data,
    )
    return int(code), float(logp), grad


def _check(model: Any, compiled: Any, logp_graph: Any) -> None:
    """The callbacks' log density, gradient and expanded draw at one initial point against the model's own.

    The log density is compared with ``logp_graph`` (the model's, with the Jacobian of the transforms)
    evaluated by PyTensor's Python linker without graph rewrites -- no compile, about 0.2 s; the
    gradient with central differences of the loaded log density; the expanded draw's free part with
    the point itself.

    Raises
    ------
    CacheUnavailableError
        On any mismatch or error code.
    """
    import ctypes

    import pytensor
    from pytensor.compile.mode import Mode

    x = np.ascontiguousarray(compiled.initial_point_func(0), dtype="float64")
    n = compiled.n_dim
    code, logp, grad = _call_logp(compiled, x)
    if code != 0:
        raise CacheUnavailableError(f"the loaded log density returned error code {code}")
    value_vars = [model.rvs_to_values[v] for v in model.free_RVs]
    # cxx="": no C thunks either (the Python linker would still build them for ops with inner graphs, and
    # probe the compiler first: 0.8 s against 0.2 s here); another thread compiling meanwhile only gets slower code
    with pytensor.config.change_flags(cxx=""):
        reference = pytensor.function(
            value_vars, logp_graph, mode=Mode(linker="py", optimizer=None), on_unused_input="ignore"
        )
    _, slices, shapes = compiled.shape_info
    point = [x[sl].reshape(shape).astype(v.dtype) for v, sl, shape in zip(value_vars, slices, shapes, strict=False)]
    expected = float(reference(*point))
    if not np.isclose(logp, expected, rtol=CHECK_RTOL, atol=1e-8):
        raise CacheUnavailableError(f"the loaded log density gives {logp:.8g} where the model gives {expected:.8g}")
    step = 1e-5 * np.maximum(1.0, np.abs(x))
    for i in range(n):
        up, down = x.copy(), x.copy()
        up[i] += step[i]
        down[i] -= step[i]
        numeric = (_call_logp(compiled, up)[1] - _call_logp(compiled, down)[1]) / (2 * step[i])
        up[i], down[i] = x[i] + 2 * step[i], x[i] - 2 * step[i]
        coarse = (_call_logp(compiled, up)[1] - _call_logp(compiled, down)[1]) / (4 * step[i])
        # the difference quotient's own error, estimated from twice the step (Richardson): a steep, curved
        # log density (1e5 in size) puts it above any fixed tolerance while the gradient is right
        truncation = abs(coarse - numeric)
        if not np.isclose(grad[i], numeric, rtol=1e-4, atol=1e-6 * (1.0 + abs(logp)) + 2 * truncation):
            raise CacheUnavailableError(
                f"the loaded gradient ({grad[i]:.6g}) differs from the log density's ({numeric:.6g})"
            )
    ptr = ctypes.POINTER(ctypes.c_double)
    expanded = np.zeros(compiled.n_expanded)
    code = compiled.compiled_expand_func.ctypes(
        n, compiled.n_expanded, x.ctypes.data_as(ptr), expanded.ctypes.data_as(ptr), compiled.user_data.ctypes.data
    )
    if code != 0 or not np.array_equal(expanded[:n], x):
        raise CacheUnavailableError(f"the loaded draw expansion failed (code {code})")


def _build(model: Any, key: str, folder: Path, write: bool) -> tuple[Any, dict[str, Any]]:
    """nutpie's build of ``model`` with cacheable wrappers (written to ``folder`` when ``write``)."""
    from nutpie.compile_pymc import _make_functions, _wrap_with_lock
    from pymc.initial_point import make_initial_point_fn

    from bayescale.model import jittered

    points = make_initial_point_fn(
        model=model, jitter_rvs=jittered(model), default_strategy="support_point", return_transformed=True
    )
    n_dim, n_expanded, logp_pt, expand_pt, initial_points, shape_info, reparameterized = _make_functions(
        model,
        mode="NUMBA",
        compute_grad=True,
        join_expanded=True,
        pymc_initial_point_fn=_wrap_with_lock(points),
        var_names=None,
    )
    order: list[Any] = []
    for var in [*logp_pt.get_shared(), *expand_pt.get_shared()]:
        if var not in order:
            order.append(var)
    names = [v.name for v in order]
    data_names = {v.name for v in model.data_vars}
    if len(set(names)) != len(names) or not set(names) <= data_names:
        raise CacheUnavailableError(f"shared variables {names} are not the model's named data")
    shared = [_Shared(v.name, f"s{i}", int(v.ndim), str(np.asarray(v.get_value()).dtype)) for i, v in enumerate(order)]
    by_var = dict(zip(order, shared, strict=True))
    names_, slices, shapes = shape_info
    meta = {
        "format": FORMAT,
        "versions": _versions(),
        "n_dim": int(n_dim),
        "n_expanded": int(n_expanded),
        "names": list(names_),
        "slices": [[int(s.start), int(s.stop)] for s in slices],
        "shapes": [[int(d) for d in s] for s in shapes],
        "reparameterized_names": list(reparameterized),
        "shared": [s.__dict__ for s in shared],
        "logp_shared": [by_var[v].key for v in logp_pt.get_shared()],
        "expand_shared": [by_var[v].key for v in expand_pt.get_shared()],
    }
    json.dumps(meta)  # fails here, before anything is written, if a coordinate is not JSON
    if write:
        folder.mkdir(parents=True, exist_ok=True)
    logp_cfunc, expand_cfunc = _callbacks(meta, (logp_pt.vm.jit_fn, expand_pt.vm.jit_fn), key, folder, False)
    compiled = _assemble(model, meta, logp_cfunc, expand_cfunc, logp_pt, expand_pt, initial_points)
    return compiled, meta


def _write_entry(path: Path, meta: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=_ENTRY_SUFFIX)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(meta, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(model: Any, key: str, folder: Path, logp_graph: Any) -> Any | None:
    """The cached compiled model of ``model``, checked; ``None`` when there is no entry.

    Raises
    ------
    CacheUnavailableError
        When there is an entry and it cannot be used (the reason is the message).
    """
    path = folder / f"{key}{_ENTRY_SUFFIX}"
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CacheUnavailableError(f"entry {path.name} is unreadable ({type(err).__name__})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CacheUnavailableError(f"entry {path.name} has another format")
    if meta.get("versions") != _versions():
        theirs = meta.get("versions") or {}
        moved = [f"{k} {theirs.get(k)} (now {v})" for k, v in _versions().items() if theirs.get(k) != v]
        raise CacheUnavailableError(f"entry {path.name} was written by other versions: {', '.join(moved)}")
    try:
        logp_cfunc, expand_cfunc = _callbacks(meta, (None, None), key, folder, True)
    except Exception as err:  # numba's files of this entry are damaged
        why = type(err).__name__
        raise CacheUnavailableError(f"numba's files of entry {path.name} are unreadable ({why})") from err
    if logp_cfunc is None or expand_cfunc is None:
        raise CacheUnavailableError(f"numba's files of entry {path.name} are missing or stale")
    try:
        compiled = _assemble(model, meta, logp_cfunc, expand_cfunc)
    except (KeyError, TypeError, ValueError) as err:
        raise CacheUnavailableError(f"entry {path.name} is malformed ({type(err).__name__}: {err})") from err
    _check(model, compiled, logp_graph)
    return compiled


def compile_model(model: Any, what: str = "model") -> Any:
    """nutpie's compiled ``model``: from the disk cache when an entry passes its check, else built (and stored).

    Parameters
    ----------
    model : pymc.Model
        The model to compile.
    what : str
        Name of the model, for the log.

    Returns
    -------
    nutpie.CompiledPyMCModel
        What ``nutpie.compile_pymc_model(model)`` returns, with the same log density, gradient and
        initial points; its two callbacks possibly loaded from disk.
    """
    import nutpie

    if os.environ.get(_ENV) == "off":
        return nutpie.compile_pymc_model(model)
    if not nutpie.__version__.startswith(NUTPIE_TESTED):  # its internals (compile_pymc.py) are what we rebuild
        log.warning("model cache: nutpie %s is untested with it; building without the cache", nutpie.__version__)
        return nutpie.compile_pymc_model(model)
    try:
        logp_graph = model.logp()
        key = model_key(model, logp_graph)
    except Exception as err:  # no key, no cache: nutpie builds it
        log.debug("model cache: no key for the %s model (%s)", what, err)
        return nutpie.compile_pymc_model(model)
    folder = cache_dir()
    try:
        compiled = _load(model, key, folder, logp_graph)
        if compiled is not None:
            log.debug("model cache: loaded the %s model (%s)", what, key[:12])
            return compiled
    except Exception as err:  # whatever went wrong, rebuild; say why once
        log.warning("model cache: not using the cached %s model: %s; building it again", what, _reason(err))
        log.debug("model cache: load failure", exc_info=True)
        _remove_entry(folder, key)
    writable = _writable(folder)
    if writable is not None:
        log.warning("model cache: %s; building the %s model without caching it", writable, what)
        return nutpie.compile_pymc_model(model)
    try:
        compiled, meta = _build(model, key, folder, write=True)
        _check(model, compiled, logp_graph)
        _write_entry(folder / f"{key}{_ENTRY_SUFFIX}", meta)
        log.debug("model cache: built and stored the %s model (%s)", what, key[:12])
        return compiled
    except Exception as err:  # nutpie's internals moved, a graph we cannot key...: its own build
        log.warning("model cache: could not cache the %s model (%s); nutpie builds it", what, _reason(err))
        log.debug("model cache: build failure", exc_info=True)
        return nutpie.compile_pymc_model(model)


def _remove_entry(folder: Path, key: str) -> None:
    """Delete an unusable entry and numba's files of it (the rebuild would read them again)."""
    for path in folder.glob(f"*{key}*"):
        try:
            path.unlink(missing_ok=True)
        except OSError:  # another process holds or removed it: the rebuild replaces it anyway
            pass


def _reason(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text if isinstance(err, CacheUnavailableError) else f"{type(err).__name__}: {text}"


def _writable(folder: Path) -> str | None:
    """``None`` when ``folder`` can hold entries, else why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        return f"cache folder {folder} is not writable ({err.strerror or type(err).__name__})"
    return None


# ------------------------------------------------------------------------------------ info / clear


def info() -> dict[str, Any]:
    """Where the cache is, how many models it holds and its size on disk.

    Returns
    -------
    dict
        ``folder``, ``exists``, ``models`` (entries), ``files`` and ``bytes`` (numba's files included).
    """
    folder = cache_dir()
    files = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    return {
        "folder": str(folder),
        "exists": folder.is_dir(),
        "models": sum(1 for p in files if p.suffix == _ENTRY_SUFFIX and not p.name.startswith(".tmp-")),
        "files": len(files),
        "bytes": int(sum(p.stat().st_size for p in files)),
    }


def clear() -> int:
    """Delete every entry of the cache folder (the folder itself stays); returns the number of files removed."""
    folder = cache_dir()
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.iterdir():
        if path.is_file() and (path.suffix in (_ENTRY_SUFFIX, ".nbi", ".nbc")):
            path.unlink(missing_ok=True)
            removed += 1
        elif path.is_dir() and path.name == "__pycache__":
            shutil.rmtree(path, ignore_errors=True)
    return removed


__all__ = ["CacheUnavailableError", "cache_dir", "clear", "compile_model", "graph_fingerprint", "info", "model_key"]
