"""Render tables for the command line: aligned text, CSV or JSON, always to stdout."""

from __future__ import annotations

import json
import math

import pandas as pd

FORMATS = ("table", "csv", "json")


def render(table: pd.DataFrame, fmt: str) -> str:
    """Render ``table`` as ``table`` (aligned text), ``csv`` or ``json`` (a list of records)."""
    if fmt == "csv":
        return table.to_csv(index=False, float_format="%.10g")
    if fmt == "json":
        records = [
            {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
            for row in table.to_dict(orient="records")
        ]
        return json.dumps(records, indent=2, default=float) + "\n"
    if fmt == "table":
        return table.to_string(index=False, float_format=lambda x: f"{x:.5g}") + "\n"
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
