"""A run table for a formula law: its input columns and target checked, the law made to fit them.

:func:`prepare` is where a formula meets a table: names that are columns become inputs; every
column the law reads is checked (numbers, finite; positive where the formula takes a log or a
non-integer power); inputs with zero or negative values keep their values as coordinates; the
likelihood's scale follows the target (log when every value is positive); and an optional cost
expression gives each run the cost by which calibration and backtests hold out the largest runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.data import COST, DEFAULT_K, Runs, read_table
from bayescale.errors import FormulaError, RunsError
from bayescale.laws.formula.evaluate import evaluate
from bayescale.laws.formula.law import FormulaLaw, needs_positive
from bayescale.laws.formula.parse import parse
from bayescale.priors import PriorLike


def read(source: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str, int]:
    """The table (columns stripped), a name for messages and the first data row's number."""
    if isinstance(source, pd.DataFrame):
        df, where, offset = source.copy(), "the DataFrame", 0
    else:
        df, where, offset = read_table(Path(source)), f"'{source}'", 1
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise RunsError(f"{where} has no runs (header only); it needs one row per run")
    return df, where, offset


def numeric(df: pd.DataFrame, column: str, where: str, offset: int, what: str = "column") -> np.ndarray:
    """Column ``column`` as finite floats, or a RunsError naming the row."""
    from bayescale.data import _to_numbers

    if column not in df.columns:
        found = ", ".join(repr(str(c)) for c in df.columns)
        raise RunsError(f"no {what} {column!r} in {where}; columns found: {found}")
    values = _to_numbers(df[column], column, where, offset)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise RunsError(f"{where}: column {column!r}, row {i + offset} is missing, NaN or infinite; fix or remove it")
    return values


def prepare(
    source: str | Path | pd.DataFrame,
    formula: str,
    *,
    target: str = "loss",
    priors: Mapping[str, PriorLike] | None = None,
    bounds: Mapping[str, Sequence[float]] | None = None,
    parameters: Sequence[str] | None = None,
    link: str | None = None,
    cost: str | None = None,
    name: str | None = None,
    citation: str = "",
    k: float = DEFAULT_K,
    origin: tuple[str, int] | None = None,
) -> tuple[FormulaLaw, Runs]:
    """The formula law and its runs from a table.

    Parameters
    ----------
    source : path or DataFrame
        The runs, one row each, with the formula's input columns and ``target``.
    formula : str
        The law (:class:`~bayescale.laws.formula.law.FormulaLaw`).
    target : str, default "loss"
        The column to model.
    priors, bounds, parameters, name, citation
        As :class:`FormulaLaw`.
    link : {"log", "identity"}, optional
        Default: ``log`` when every target value is positive, else ``identity``.
    cost : str, optional
        A formula over columns only (e.g. ``"6*N*D"``): each run's cost for the splits of
        calibration and backtests. Default: C, or k N D when the inputs have N and D.
    k : float, default 6
        FLOPs per parameter per token, when the runs have N and D.
    origin : (str, int), optional
        For a table read from a file already: the file's name and the first data row's number, for messages.

    Raises
    ------
    FormulaError, RunsError, PriorError
        One line each: what is wrong, where, and what to do.
    """
    df, where, offset = read(source)
    if origin is not None:
        where, offset = origin
    law = FormulaLaw(formula, list(df.columns), target=target, priors=priors, bounds=bounds, parameters=parameters,
                     name=name, citation=citation)  # fmt: skip
    y = numeric(df, target, where, offset, what="target column")
    table = pd.DataFrame({x: numeric(df, x, where, offset) for x in law.inputs})
    positive = needs_positive(law)
    for x in law.inputs:
        values = table[x].to_numpy()
        if x in positive and (values <= 0).any():
            i = int(np.argmax(values <= 0))
            raise RunsError(
                f"{where}: column {x!r}, row {i + offset} is {values[i]:g}, but the formula takes the log or a "
                f"fractional power of {x}: it must be positive (or shift it in the formula: log({x} + 1e-6))"
            )
    linear = [x for x in law.inputs if (table[x].to_numpy() <= 0).any()]
    chosen = link or ("log" if (y > 0).all() else "identity")
    if chosen == "log" and (y <= 0).any():
        i = int(np.argmax(y <= 0))
        raise RunsError(
            f"{where}: target {target!r}, row {i + offset} is {y[i]:g}; the log link needs a positive target "
            "(use --link identity)"
        )
    law = FormulaLaw(formula, list(df.columns), target=target, priors=priors, bounds=bounds, parameters=parameters,
                     link=chosen, linear_inputs=linear, name=name, citation=citation)  # fmt: skip
    table["loss"] = y
    if cost is not None:
        table[COST] = cost_values(df, cost, where, offset)
    runs = Runs(table=table, k=float(k), source=where.replace("'", ""), columns={"loss": target},
                names=law.inputs, linear=frozenset(linear))  # fmt: skip
    law.check_runs(runs)
    return law, runs


def cost_values(df: pd.DataFrame, expression: str, where: str, offset: int) -> np.ndarray:
    """Each row's cost from a formula over ``df``'s columns (no parameters), positive and finite."""
    tree = parse(expression)
    unknown = sorted(tree.names() - set(df.columns))
    if unknown:
        raise FormulaError(
            f"the cost {expression!r} names {unknown[0]!r}, which is not a column of {where} "
            f"(columns: {', '.join(map(str, df.columns))})"
        )
    coords = {x: numeric(df, x, where, offset) for x in tree.names()}
    with np.errstate(all="ignore"):
        value = np.broadcast_to(np.asarray(evaluate(tree, {}, coords, frozenset(), np), dtype=float), (len(df),))
    bad = ~(np.isfinite(value) & (value > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise RunsError(f"the cost {expression!r} is {value[i]:g} at row {i + offset} of {where}; it must be positive")
    return np.array(value)


def points(
    law: FormulaLaw, source: pd.DataFrame | Mapping[str, object], where: str = "the points"
) -> dict[str, np.ndarray]:
    """The law's inputs at new points, checked: numbers, finite, positive where their log is taken."""
    df = source if isinstance(source, pd.DataFrame) else pd.DataFrame({k: np.atleast_1d(v) for k, v in source.items()})
    df = df.rename(columns=lambda c: str(c).strip())
    offset = 1 if where != "the points" else 0
    out = {}
    for x in law.inputs:
        if x not in df.columns:
            raise RunsError(f"{where} have no column {x!r}, an input of the law ({', '.join(law.inputs)})")
        values = numeric(df, x, where, offset)
        if x not in law.linear_inputs and (values <= 0).any():
            i = int(np.argmax(values <= 0))
            raise RunsError(
                f"{where}: column {x!r}, row {i + offset} is {values[i]:g}; it must be positive (as in the runs)"
            )
        out[x] = values
    return out
