"""Tables of training runs: loading, column mapping, unit parsing and validation.

A :class:`Runs` holds one row per training run with the columns ``N`` (parameters),
``D`` (tokens), ``C`` (training FLOPs) and ``loss`` (nats per token). Any two of N, D and
C give the third through ``C = k N D`` (``k`` = 6 FLOPs per parameter per token unless
set). Columns that cannot be derived are left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.errors import RunsError

INPUTS = ("N", "D", "C")
#: Optional inputs some laws use: U, the unique tokens of a run (D / U epochs; U >= D is one epoch).
EXTRA_INPUTS = ("U",)
DEFAULT_K = 6.0
#: The column of a formula law's runs holding each run's cost (``--cost``), when given.
COST = "_cost"

#: Column names recognised without a mapping, in order of preference.
ALIASES: dict[str, tuple[str, ...]] = {
    "N": ("N", "n", "params", "parameters", "n_params", "Model Size", "model_size"),
    "D": ("D", "tokens", "n_tokens", "Training Tokens", "training_tokens", "data"),
    "C": ("C", "flops", "FLOPs", "compute", "Training FLOP", "training_flops"),
    "U": ("U", "unique_tokens", "unique", "Unique Tokens"),
    "loss": ("loss", "Loss", "final_loss", "val_loss", "eval_loss"),
}

_SUFFIX = {"K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}
_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([KMBGTP]?)\s*$", re.I)

#: Losses above this (nats/token) are taken to be perplexities.
PERPLEXITY_THRESHOLD = 20.0


def parse_number(value: object) -> float:
    """Parse a number that may carry a human suffix.

    Parameters
    ----------
    value : object
        A number, or a string such as ``"70M"``, ``"1.4T"``, ``"7B"``, ``"3e21"``,
        ``"1,000"``. Suffixes K, M, B (or G), T, P are powers of 1000, case-insensitive.

    Returns
    -------
    float
        The value; NaN for empty cells.

    Raises
    ------
    ValueError
        If the text is not a number.
    """
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if value is None:
        return float("nan")
    text = str(value).replace(",", "").replace("_", "")
    if text.strip() == "" or text.strip().lower() in {"nan", "na", "n/a"}:
        return float("nan")
    if text.strip().lower() in {"inf", "+inf", "-inf", "infinity"}:
        return float(text.strip().lower().replace("infinity", "inf"))
    m = _NUMBER.match(text)
    if not m:
        raise ValueError(f"not a number: {value!r}")
    return float(m.group(1)) * _SUFFIX.get(m.group(2).upper(), 1.0)


@dataclass(frozen=True)
class Runs:
    """A validated table of training runs.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns among ``N``, ``D``, ``C`` and always ``loss``; floats, positive, finite.
    k : float
        FLOPs per parameter per token in ``C = k N D``.
    source : str
        Where the runs came from (a path or ``"DataFrame"``), for messages and reports.
    """

    table: pd.DataFrame
    k: float = DEFAULT_K
    source: str = "DataFrame"
    columns: Mapping[str, str] = field(default_factory=dict)
    #: The inputs of a formula law's runs (any columns); empty for N, D, C runs.
    names: tuple[str, ...] = ()
    #: Inputs that may be zero or negative: their coordinate is the value itself, not its log.
    linear: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self.table)

    def has(self, name: str) -> bool:
        """Whether the runs have the input ``name`` (``"N"``, ``"D"`` or ``"C"``)."""
        return name in self.table.columns

    @property
    def inputs(self) -> tuple[str, ...]:
        """The inputs present, among N, D, C and U (unique tokens); a formula law's runs: its inputs."""
        if self.names:
            return self.names
        return tuple(c for c in (*INPUTS, *EXTRA_INPUTS) if self.has(c))

    def values(self, name: str) -> np.ndarray:
        """The column ``name`` as a float array."""
        return self.table[name].to_numpy(dtype=float)

    def log(self, name: str) -> np.ndarray:
        """Natural log of the column ``name`` (its coordinate: the value itself for a :attr:`linear` input)."""
        return self.values(name) if name in self.linear else np.log(self.values(name))

    def subset(self, keep: np.ndarray) -> Runs:
        """The runs where the boolean mask ``keep`` is true (same k, source, columns and inputs)."""
        return Runs(
            table=self.table[keep].reset_index(drop=True), k=self.k, source=self.source, columns=self.columns,
            names=self.names, linear=self.linear,
        )  # fmt: skip

    @property
    def target(self) -> str:
        """The name of the modelled column in the user's table (``loss`` unless mapped)."""
        return str(self.columns.get("loss", "loss"))

    def cost(self) -> np.ndarray | None:
        """Each run's cost, by which splits hold out the largest runs: C, else the ``cost`` a formula
        law's runs were given (``--cost``), else the product of inputs named N and D; None if none."""
        if self.has("C"):
            return self.values("C")
        if self.has(COST):
            return self.values(COST)
        if self.has("N") and self.has("D"):
            return self.k * self.values("N") * self.values("D")
        return None

    @property
    def loss(self) -> np.ndarray:
        """Final loss of each run (nats/token)."""
        return self.values("loss")


def read_table(path: Path, what: str = "runs") -> pd.DataFrame:
    """A CSV (every cell as text) or Parquet table, with a one-line RunsError for a missing,
    empty or unreadable file; ``what`` names the file's rows in the message ("runs", "points")."""
    if not path.exists():
        raise RunsError(f"{what} file '{path}' not found; check the path")
    if path.is_dir():
        raise RunsError(f"'{path}' is a folder; give the CSV or Parquet file of {what}")
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        row = what.removesuffix("s")
        raise RunsError(f"{what} file '{path}' is empty; it needs a header and one row per {row}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as ex:
        first = str(ex).strip().splitlines()[0] if str(ex).strip() else type(ex).__name__
        raise RunsError(f"cannot read '{path}' as a table of {what}: {first}") from None


def _pick_column(df: pd.DataFrame, name: str, given: str | None, where: str, option: str) -> str | None:
    found = ", ".join(repr(str(c)) for c in df.columns)
    if given is not None:
        if given not in df.columns:
            raise RunsError(f"no column {given!r} in {where} (for {name}); columns found: {found}")
        return given
    for alias in ALIASES[name]:
        if alias in df.columns:
            return alias
    if name == "loss":
        raise RunsError(f"no loss column in {where}; columns found: {found}. Name it with {option} COLUMN")
    return None


def _to_numbers(raw: pd.Series, column: str, where: str, row_offset: int) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.to_numpy(dtype=float, na_value=np.nan)  # parse_number of a number is float()
    out = np.empty(len(raw))
    for i, value in enumerate(raw.tolist()):
        try:
            out[i] = parse_number(value)
        except ValueError:
            raise RunsError(
                f"{where}: column {column!r}, row {i + row_offset}: {value!r} is not a number "
                "(plain numbers, 1e9 or suffixes K/M/B/T are accepted)"
            ) from None
    return out


def load_runs(
    source: str | Path | pd.DataFrame,
    *,
    n_col: str | None = None,
    d_col: str | None = None,
    c_col: str | None = None,
    loss_col: str | None = None,
    k: float = DEFAULT_K,
    u_col: str | None = None,
) -> Runs:
    """Load and validate a table of training runs.

    Parameters
    ----------
    source : str, pathlib.Path or pandas.DataFrame
        A CSV or Parquet file, or a DataFrame, with one row per run.
    n_col, d_col, c_col, loss_col : str, optional
        Column names for parameters N, tokens D, FLOPs C and final loss. When not given,
        common names are recognised (``N``, ``params``, ``Model Size``; ``D``, ``tokens``;
        ``C``, ``flops``, ``Training FLOP``; ``loss``).
    k : float, default 6
        FLOPs per parameter per token in ``C = k N D``; with two of N, D, C the third is
        derived with it.
    u_col : str, optional
        Column of unique tokens U (recognised without it: ``U``, ``unique_tokens``); a run
        with D > U repeats its data D / U times (the data-constrained law). Optional.

    Returns
    -------
    Runs
        The validated runs.

    Raises
    ------
    RunsError
        With a one-line message naming the file, column, row or value at fault.
    """
    if not (np.isfinite(k) and k > 0):
        raise RunsError(f"k (FLOPs per parameter per token) must be positive, got {k}")
    if isinstance(source, pd.DataFrame):
        df, where, row_offset = source.copy(), "the DataFrame", 0
    else:
        path = Path(source)
        df, where, row_offset = read_table(path), f"'{path}'", 1
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise RunsError(f"{where} has no runs (header only); it needs one row per run")
    given = {"N": n_col, "D": d_col, "C": c_col, "U": u_col, "loss": loss_col}
    options = {"N": "--n-col", "D": "--d-col", "C": "--c-col", "U": "--u-col", "loss": "--loss-col"}
    picked = {n: _pick_column(df, n, given[n], where, options[n]) for n in (*INPUTS, *EXTRA_INPUTS, "loss")}
    table = pd.DataFrame(index=range(len(df)))
    for name, col in picked.items():
        if col is None:
            continue
        values = _to_numbers(df[col], col, where, row_offset)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.argmax(bad))
            raise RunsError(
                f"{where}: column {col!r}, row {i + row_offset} is {df[col].iloc[i]!r} (missing, NaN "
                "or infinite); fix or remove that run"
            )
        nonpos = values <= 0
        if nonpos.any():
            i = int(np.argmax(nonpos))
            raise RunsError(f"{where}: column {col!r}, row {i + row_offset} is {values[i]:g}; {name} must be positive")
        table[name] = values
    present = [n for n in INPUTS if n in table]
    if not present:
        found = ", ".join(repr(str(c)) for c in df.columns)
        raise RunsError(
            f"{where} has no N (parameters), D (tokens) or C (FLOPs) column; columns found: {found}. "
            "Name them with --n-col, --d-col, --c-col"
        )
    if "C" not in table and {"N", "D"} <= set(table):
        table["C"] = k * table["N"] * table["D"]
    elif "D" not in table and {"N", "C"} <= set(table):
        table["D"] = table["C"] / (k * table["N"])
    elif "N" not in table and {"D", "C"} <= set(table):
        table["N"] = table["C"] / (k * table["D"])
    loss = table["loss"].to_numpy()
    if (loss > PERPLEXITY_THRESHOLD).all():
        raise RunsError(
            f"{where}: every loss is above {PERPLEXITY_THRESHOLD:g} (smallest {loss.min():g}); these look "
            "like perplexities. bayescale needs loss in nats per token: use log(perplexity)"
        )
    ordered = [c for c in (*INPUTS, *EXTRA_INPUTS, "loss") if c in table]
    return Runs(
        table=table[ordered].reset_index(drop=True),
        k=float(k),
        source=str(source) if not isinstance(source, pd.DataFrame) else "DataFrame",
        columns={n: c for n, c in picked.items() if c is not None},
    )
