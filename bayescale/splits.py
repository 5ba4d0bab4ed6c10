"""Hold-out splits of a ladder: which runs a re-fit leaves out (by compute, size or a condition).

The one place both the calibration of a fit's bands (:mod:`bayescale.pipeline`) and
``backtest`` (:mod:`bayescale.backtesting`) take their splits from.
"""

from __future__ import annotations

import re

import numpy as np

from bayescale.data import Runs, parse_number
from bayescale.errors import BayescaleError

#: Shares of compute held out by ``rolling``.
ROLLING: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4)
_CONDITION = re.compile(r"^\s*([NDC])\s*(>=|<=|>|<)\s*(\S+)\s*$")


class BacktestError(BayescaleError, ValueError):
    """A hold-out specification that cannot be used on these runs."""


def holdout_top_compute(runs: Runs, fraction: float) -> np.ndarray:
    """Boolean mask of the runs in the top ``fraction`` by compute (at least one run).

    Runs tied at the cutoff budget are held out together, so a budget is never split. Compute is
    :meth:`~bayescale.data.Runs.cost`; for runs without one (a formula law's, without ``--cost``), the
    product of the positive inputs.
    """
    C = runs.cost()
    positive = [x for x in runs.inputs if x not in runs.linear]
    if C is None and positive:  # no cost given: the runs farthest out along the positive inputs together
        C = np.exp(sum(runs.log(x) for x in positive))
    if C is None:
        raise BacktestError(
            f"these runs have no cost to hold out the largest runs by (inputs {', '.join(runs.inputs)}): "
            "give one, e.g. --cost '6*N*D' (or fit with --no-calibrate)"
        )
    n_out = max(1, round(fraction * len(C)))
    cutoff = np.sort(C)[::-1][n_out - 1]
    return C >= cutoff


def holdout_masks(runs: Runs, spec: str) -> list[tuple[str, np.ndarray]]:
    """The (name, held-out mask) pairs a hold-out specification gives on ``runs``."""
    spec = spec.strip()
    if spec == "rolling":
        return [(f"top-compute:{f:g}", holdout_top_compute(runs, f)) for f in ROLLING]
    kind, sep, value = spec.partition(":")
    if sep and kind == "top-compute":
        try:
            fraction = float(value)
        except ValueError:
            fraction = -1.0
        if not 0 < fraction < 1:
            raise BacktestError(f"top-compute needs a share between 0 and 1, e.g. top-compute:0.2; got {spec!r}")
        return [(spec, holdout_top_compute(runs, fraction))]
    if sep and kind == "largest-N":
        if not runs.has("N"):
            raise BacktestError("largest-N needs runs with N")
        if not value.isdigit() or int(value) < 1:
            raise BacktestError(f"largest-N needs a whole number of sizes, e.g. largest-N:1; got {spec!r}")
        sizes = np.unique(runs.values("N"))
        cutoff = sizes[-min(int(value), len(sizes))]
        return [(spec, runs.values("N") >= cutoff)]
    m = _CONDITION.match(spec)
    if m:
        column, op, text = m.groups()
        if not runs.has(column):
            raise BacktestError(f"the runs have no {column} for the hold-out condition {spec!r}")
        try:
            threshold = parse_number(text)
        except ValueError:
            raise BacktestError(f"not a number in hold-out condition {spec!r}") from None
        x = runs.values(column)
        mask = {">=": x >= threshold, ">": x > threshold, "<=": x <= threshold, "<": x < threshold}[op]
        return [(spec, mask)]
    raise BacktestError(
        f"unknown hold-out {spec!r}; use top-compute:0.2, largest-N:1, a condition like C>=1e21, or rolling"
    )
