"""Saving and loading fits as netCDF (``xarray.DataTree``), atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import h5netcdf
import xarray as xr

from bayescale.errors import FitFileError

#: Root attribute that marks a file as a bayescale fit.
MARKER = "bayescale_version"

#: Root attribute of a pooled fit (:mod:`bayescale.pooled`); its value names the group column.
POOLED = "pooled_by"

#: Root attribute of a task fit (:mod:`bayescale.task_fit`); its value names the metric column.
TASK = "task_metric"

#: Root attribute (in memory only) of a tree read with only some of its groups.
PARTIAL = "bayescale_partial_read"


def replace_atomic(path: str | Path, write: Callable[[str], object]) -> Path:
    """Have ``write(tmp)`` write a temporary file in ``path``'s folder, then rename it to ``path``.

    A failure at any point leaves an existing file at ``path`` untouched. The caller checks
    that the folder exists (and says so in its own words).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_atomic(tree: xr.DataTree, path: str | Path) -> Path:
    """Write ``tree`` to ``path`` through a temporary file in the same folder and a rename.

    A failure at any point leaves an existing file at ``path`` untouched.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FitFileError(f"cannot save to '{path}': folder '{folder}' does not exist")
    return replace_atomic(path, lambda tmp: tree.to_netcdf(tmp, engine="h5netcdf"))


def read_tree(path: str | Path, groups: Iterable[str] | None = None) -> xr.DataTree:
    """Read a fit file fully into memory (the file is closed afterwards).

    Parameters
    ----------
    path : str or Path
    groups : iterable of str, optional
        Read only these groups (those the file has) and the root attributes: an answer that
        needs four of a fit's eight groups (``predict``) reads it in half the time. The tree
        then lacks the other groups: do not save it (:meth:`bayescale.result.ScalingFit.save`
        refuses to). A pooled or task fit is always read whole.

    Raises
    ------
    FitFileError
        If the file is missing, unreadable, or not written by bayescale.
    """
    path = Path(path)
    if not path.exists():
        raise FitFileError(f"fit file '{path}' not found; create it with: bayescale fit RUNS --out {path}")
    try:
        loaded = _read_all(path) if groups is None else _read_groups(path, ("posterior", *groups))
        nested = POOLED in loaded.attrs or TASK in loaded.attrs
        if nested and PARTIAL in loaded.attrs:  # a pooled or task fit's groups are nested: read it whole
            loaded = _read_all(path)
    except Exception as ex:  # h5py/netCDF raise many types for a damaged file
        raise FitFileError(f"'{path}' is not a readable fit file ({type(ex).__name__}); re-run bayescale fit") from None
    if MARKER not in loaded.attrs or ("posterior" not in loaded.children and not nested):
        raise FitFileError(f"'{path}' is a netCDF file but not a bayescale fit; re-run bayescale fit")
    return loaded


def _read_all(path: Path) -> xr.DataTree:
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        return tree.load()


def _read_groups(path: Path, groups: Iterable[str]) -> xr.DataTree:
    """The root attributes and the named top-level groups the file has, loaded."""
    with h5netcdf.File(path, "r") as file:
        present = set(file.groups)
        attrs = dict(file.attrs)
    datasets = {"/": xr.Dataset(attrs={k: _plain(v) for k, v in attrs.items()})}
    for group in dict.fromkeys(groups):
        if group in present:
            with xr.open_dataset(path, group=group, engine="h5netcdf") as ds:
                datasets[f"/{group}"] = ds.load()
    tree = xr.DataTree.from_dict(datasets)
    tree.attrs[PARTIAL] = 1
    return tree


def _plain(value: object) -> object:
    """An HDF5 attribute as xarray reads it (bytes decoded, 1-element arrays unwrapped)."""
    if isinstance(value, bytes):
        return value.decode()
    if hasattr(value, "shape") and getattr(value, "shape", None) == (1,):
        return value[0]
    return value
