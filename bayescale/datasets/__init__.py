"""Data that ships with bayescale, and loaders for public scaling-law runs.

- :func:`load_demo`: a synthetic 42-run ladder from a known Chinchilla law (see
  :mod:`bayescale.datasets.simulate`), the demo's default and the tests' ground truth.
- :func:`load_chinchilla`: Hoffmann et al.'s 245 runs as extracted by Epoch AI. It is read
  from ``$BAYESCALE_DATA_DIR`` when set (offline use and tests), else from the cache
  (``$BAYESCALE_CACHE_DIR`` or ``~/.cache/bayescale``), else downloaded once and checked
  against a SHA-256 checksum.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from importlib import resources
from pathlib import Path

from bayescale.data import Runs, load_runs
from bayescale.errors import BayescaleError

DEMO_FILE = "demo_ladder.csv"

#: Epoch AI's extraction of Hoffmann et al. 2022 Fig. 4 (epoch-research/analyzing-chinchilla).
CHINCHILLA_URL = (
    "https://raw.githubusercontent.com/epoch-research/analyzing-chinchilla/9225883/data/svg_extracted_data.csv"
)
CHINCHILLA_SHA256 = "193478df4e90f040016431996c45682659306840ecdadf83cfb9cd5ca0aa1b30"
CHINCHILLA_NAMES = ("chinchilla_epoch.csv", "svg_extracted_data.csv")
CHINCHILLA_COLUMNS = {"n_col": "Model Size", "c_col": "Training FLOP", "loss_col": "loss"}


def demo_path() -> Path:
    """Path of the embedded demo ladder CSV."""
    return Path(str(resources.files("bayescale.datasets").joinpath(DEMO_FILE)))


def load_demo() -> Runs:
    """The embedded synthetic demo ladder (truth: :data:`simulate.DEMO_PARAMS`)."""
    return load_runs(demo_path())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cache_dir() -> Path:
    """Where downloaded datasets are kept."""
    return Path(os.environ.get("BAYESCALE_CACHE_DIR", Path.home() / ".cache" / "bayescale"))


def chinchilla_path(download: bool = True) -> Path:
    """Locate (or download) the Chinchilla runs CSV.

    Raises
    ------
    BayescaleError
        If it is not found offline and cannot be downloaded, or its checksum is wrong.
    """
    env = os.environ.get("BAYESCALE_DATA_DIR")
    if env:
        for name in CHINCHILLA_NAMES:
            if (Path(env) / name).exists():
                return Path(env) / name
        raise BayescaleError(f"BAYESCALE_DATA_DIR={env} has none of {', '.join(CHINCHILLA_NAMES)}")
    target = cache_dir() / CHINCHILLA_NAMES[0]
    if target.exists() and _sha256(target) == CHINCHILLA_SHA256:
        return target
    if not download:
        raise BayescaleError(f"Chinchilla runs not cached at {target}; set BAYESCALE_DATA_DIR to a folder with them")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    try:
        urllib.request.urlretrieve(CHINCHILLA_URL, tmp)
    except OSError as ex:
        raise BayescaleError(
            f"cannot download the Chinchilla runs ({ex}); offline, set BAYESCALE_DATA_DIR to a folder holding "
            f"{CHINCHILLA_NAMES[0]}"
        ) from None
    if _sha256(tmp) != CHINCHILLA_SHA256:
        tmp.unlink(missing_ok=True)
        raise BayescaleError(f"checksum mismatch for {CHINCHILLA_URL}; the file was not kept")
    tmp.replace(target)
    return target


def load_chinchilla(download: bool = True) -> Runs:
    """Hoffmann et al. 2022's 245 runs (Epoch AI extraction) as :class:`Runs` (N, D, C, loss)."""
    return load_runs(chinchilla_path(download), **CHINCHILLA_COLUMNS)


__all__ = ["cache_dir", "chinchilla_path", "demo_path", "load_chinchilla", "load_demo"]
