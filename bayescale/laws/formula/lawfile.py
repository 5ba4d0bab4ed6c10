"""Laws users keep: a TOML law file, the named built-ins, and telling a formula from a law's name.

A law file::

    name = "parscale"
    citation = "Chen et al. 2025, Parallel Scaling Law for Language Models"
    formula = "(A / (num_params * (k * log(parallel_size) + 1)))^alpha + E"
    target = "loss"                       # optional, default loss
    cost = "num_params"                   # optional: the splits' cost
    link = "log"                          # optional: log or identity (default: from the target)
    parameters = ["A", "k", "alpha", "E"] # optional: declared, so a misspelt column is an error

    [priors]                              # optional, by parameter: a distribution or a number
    alpha = "LogNormal(-1, 1)"

    [bounds]                              # optional: [low, high] -> Uniform (amplitudes: the sign)
    A = [0, 1e9]
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bayescale.errors import FormulaError
from bayescale.laws.formula.parse import Var, parse

#: Keys a law file may hold.
KEYS = ("name", "citation", "formula", "target", "cost", "link", "parameters", "priors", "bounds")
#: Characters that make a --law value a formula rather than a law's name.
FORMULA_CHARS = set("+-*/^()")


def is_formula(text: str) -> bool:
    """Whether a ``--law`` value is a formula (it holds an operator or a bracket)."""
    return bool(FORMULA_CHARS & set(str(text)))


def read_law_file(path: str | Path) -> dict[str, Any]:
    """The settings of a TOML law file, checked: ``formula`` required, known keys only.

    Raises
    ------
    FormulaError
        For a missing or unreadable file, a TOML error, an unknown key or a missing formula.
    """
    path = Path(path)
    if not path.is_file():
        raise FormulaError(f"law file '{path}' not found; check the path")
    try:
        spec = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as ex:
        raise FormulaError(f"cannot read the law file '{path}': {ex}") from None
    unknown = [k for k in spec if k not in KEYS]
    if unknown:
        raise FormulaError(f"law file '{path}': unknown key {unknown[0]!r}; known keys: {', '.join(KEYS)}")
    if not isinstance(spec.get("formula"), str):
        raise FormulaError(f'law file \'{path}\' needs formula = "..." (the law, e.g. "E + A/N^alpha")')
    for key in ("priors", "bounds"):
        if not isinstance(spec.get(key, {}), Mapping):
            raise FormulaError(f"law file '{path}': [{key}] must be a table of parameter = value")
    for name, bound in spec.get("bounds", {}).items():
        if not (isinstance(bound, Sequence) and len(bound) == 2 and all(isinstance(b, (int, float)) for b in bound)):
            raise FormulaError(f"law file '{path}': bounds of {name} must be [low, high], got {bound!r}")
    return spec


def check_names(formula: str, columns: Sequence[str], target: str, declared: Sequence[str] | None) -> list[str]:
    """The formula's parameters (names that are not columns); a name that looks like a misspelt
    column (and is not declared) is an error.

    Raises
    ------
    FormulaError
        Naming the suspicious name and the column it resembles.
    """
    tree = parse(formula)
    names = [n.name for n in tree.walk() if isinstance(n, Var)]
    params = list(dict.fromkeys(n for n in names if n not in columns))
    if declared is not None:
        return params
    candidates = [c for c in columns if c != target]
    for name in params:
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.8)
        if close and len(name) > 2:
            raise FormulaError(
                f"{name!r} in the formula is not a column but looks like the column {close[0]!r}: a misspelling? "
                f"Fix it, or declare the parameters (--params {','.join(params)}) if {name!r} is one"
            )
    return params


def from_options(
    source: str | Path,
    *,
    law: str | None = None,
    law_file: str | Path | None = None,
    target: str | None = None,
    cost: str | None = None,
    link: str | None = None,
    params: Sequence[str] | None = None,
    inputs: Mapping[str, str] | None = None,
    priors: Mapping[str, Any] | None = None,
    k: float = 6.0,
):
    """The formula law and its runs from the command line's options (``fit --law FORMULA`` or a
    built-in's name, or ``--law-file``): the file's settings, then the options over them.

    Returns
    -------
    (FormulaLaw, Runs)
    """
    from bayescale.laws.formula.runs import prepare

    options = {"law": law, "law_file": law_file, "target": target, "cost": cost, "link": link, "params": params}
    spec, df, origin = _resolve(source, {**options, "inputs": inputs, "priors": priors})
    return prepare(df, **spec, k=k, origin=origin)


def by_group(source: str | Path, column: str, *, k: float = 6.0, **options: Any) -> dict[str, tuple[Any, Any]]:
    """:func:`from_options` for each group of rows by ``column`` (``fit --law ... --group COLUMN``):
    one law and runs per group, in order of first appearance. ``options``: :func:`from_options`'s
    keywords (``law``, ``law_file``, ``target``, ``cost``, ``link``, ``params``, ``inputs``, ``priors``).
    The whole table is checked first (messages name its rows); every group gets the likelihood's scale
    the whole table gets.

    Raises
    ------
    FormulaError, RunsError
        A missing group column, a missing group value (row named), a formula naming the group column,
        a group whose runs cannot fit the law (named).
    """
    from bayescale.errors import BayescaleError, RunsError
    from bayescale.laws.formula.runs import prepare

    spec, df, (where, offset) = _resolve(source, options)
    if column not in df.columns:
        raise RunsError(f"--group {column!r}: {where} has no such column; columns found: {', '.join(df.columns)}")
    if column in parse(spec["formula"]).names():
        raise FormulaError(f"the formula uses the group column {column!r}; a group column names the groups only")
    labels = group_labels(df[column])
    empty = (labels == "").to_numpy()
    if empty.any():
        i = int(empty.argmax())
        raise RunsError(f"{where}: group column {column!r}, row {i + offset} is empty; give every run its group")
    whole, _ = prepare(df, **spec, k=k, origin=(where, offset))
    spec["link"] = whole.link
    from bayescale.model import MIN_RUNS

    out = {}
    for name in dict.fromkeys(labels):
        n = int((labels == name).sum())
        if n < MIN_RUNS:
            raise RunsError(
                f"group {name!r} of {column!r} has {n} run(s); each group is fitted on its own and needs at least "
                f"{MIN_RUNS}: remove it or merge it into another group"
            )
        rows = df[(labels == name).to_numpy()].reset_index(drop=True)
        try:
            out[name] = prepare(rows, **spec, k=k, origin=(f"{where} (group {name!r} of {column!r})", 1))
        except BayescaleError as ex:
            raise type(ex)(f"group {name!r}: {ex}") from None
    return out


def group_labels(values: Any) -> Any:
    """Group names as text, stripped; missing cells (NaN, or empty in a CSV) become ``""``; whole numbers
    read as floats (a Parquet column) print as integers, so ``1.0`` and ``1`` name one group."""
    import pandas as pd

    def text(v: object) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return ""
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v).strip()

    index = values.index if isinstance(values, pd.Series) else None
    return pd.Series([text(v) for v in values], index=index, dtype=object)


#: The command line's options for a formula law (:func:`from_options`'s keywords but ``k``).
OPTIONS = frozenset({"law", "law_file", "target", "cost", "link", "params", "inputs", "priors"})


def _resolve(source: str | Path, options: Mapping[str, Any]) -> tuple[dict[str, Any], Any, tuple[str, int]]:
    """``prepare``'s keyword arguments, the table (inputs renamed) and its origin for messages, from the
    :data:`OPTIONS` (missing ones None)."""
    from bayescale.laws.formula.builtins import BUILTINS
    from bayescale.laws.formula.runs import read

    unknown = set(options) - OPTIONS
    if unknown:
        raise TypeError(f"unknown formula-law option(s): {', '.join(sorted(unknown))}")
    law, law_file, target, cost, link, params, inputs, priors = (
        options.get(k) for k in ("law", "law_file", "target", "cost", "link", "params", "inputs", "priors")
    )

    if law is not None and law_file is not None:
        raise FormulaError("give either --law or --law-file, not both")
    spec: dict[str, Any] = dict(read_law_file(law_file)) if law_file is not None else {}
    if law is not None:
        builtin = BUILTINS.get(law.strip().lower())
        if builtin is not None:
            spec |= {"formula": builtin.formula, "name": law.strip().lower(), "citation": builtin.citation}
            if builtin.cost is not None:
                spec.setdefault("cost", builtin.cost)
        else:
            spec["formula"] = law
    for key, value in (("target", target), ("cost", cost), ("link", link), ("parameters", params)):
        if value is not None:
            spec[key] = value
    df, where, offset = read(source)
    for name, column in (inputs or {}).items():
        if column not in df.columns:
            raise FormulaError(f"--input {name}={column}: {where} has no column {column!r}")
        df = df.rename(columns={column: name})
    target_name = str(spec.get("target", "loss"))
    declared = spec.get("parameters")
    check_names(spec["formula"], list(df.columns), target_name, declared)
    kwargs = {
        "formula": spec["formula"],
        "target": target_name,
        "priors": {**spec.get("priors", {}), **(priors or {})},
        "bounds": spec.get("bounds"),
        "parameters": declared,
        "link": spec.get("link"),
        "cost": spec.get("cost"),
        "name": spec.get("name"),
        "citation": str(spec.get("citation", "")),
    }
    return kwargs, df, (where, offset)
