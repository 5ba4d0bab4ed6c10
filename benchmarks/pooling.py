"""Pooled against separate fits: leave-largest-out per group on real ladders with several groups.

For each data set, every group's largest runs are held out; the groups' smaller runs are fitted
(a) jointly, by one pooled fit (``bayescale fit --group``), and (b) separately, one default fit
per group -- the same settings and seed otherwise. Both predict each group's held-out runs;
the script prints, per data set and method, the per-target coverage of the 90% bands, the mean
over groups of the median relative interval score (as ../shared/tools/eval_tasks.py scores a
task), the median absolute relative error of the median, the fits that warn, and the wall time.

Each separate fit gives the draws its own ``bayescale fit`` process would (a compiled model
re-used with swapped data starts its chains from the new runs' initial points,
:mod:`bayescale.compiled`; before that was mended, the chains started from the first runs'
points, and on some of Porian et al.'s configurations the calibration re-fit's band scale
depended on what the process had fitted before: owt2_tuned_shortwarmup_const_standardN 1.12
fresh, 0.60 after the other configurations).

Data sets (../shared/data):

- ``gadre``: Gadre et al. 2024, three training sets (``family``), C4 validation loss; held out:
  N >= 1.4B (the largest two sizes), as in ../shared/tasks/gadre_*_largest_models.
- ``porian``: Porian et al. 2024, 15 configurations (``family``); held out: each configuration's
  two largest compute budgets, as in ../shared/tasks/porian_rw_tuned_top_compute.

Usage: ``python benchmarks/pooling.py [--data gadre porian] [--methods pooled separate] [--seed 1] [--out table.md]
[--targets scores.csv]``
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayescale as bs
from bayescale.diagnostics import DiagnosticsWarning

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
INTERVAL = 0.9


def gadre() -> tuple[pd.DataFrame, np.ndarray]:
    """Gadre et al.'s c4_val runs with the group column ``family``, and the held-out mask (N >= 1.4B)."""
    table = pd.read_csv(DATA / "gadre2024_overtraining.csv")
    table = table[table["eval_name"] == "c4_val"].reset_index(drop=True)
    return table[["family", "N", "D", "loss"]], table["N"].to_numpy() >= 1.4e9


def porian() -> tuple[pd.DataFrame, np.ndarray]:
    """Porian et al.'s configurations (``family``), and each one's two largest budgets held out."""
    table = pd.read_csv(DATA / "porian2024_isoflop.csv")[["family", "N", "D", "loss", "C"]]
    held = np.zeros(len(table), dtype=bool)
    for _, rows in table.groupby("family"):
        top = np.sort(rows["C"].unique())[-2:]
        held[rows.index[rows["C"].isin(top)]] = True
    return table[["family", "N", "D", "loss"]], held


DATASETS = {"gadre": gadre, "porian": porian}


def score(pred: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Per target: inside the band, relative interval score and relative error of the median."""
    t, lo, hi, med = truth["loss"].to_numpy(), pred["lower"].to_numpy(), pred["upper"].to_numpy(), pred["median"]
    alpha = 1 - INTERVAL
    isc = ((hi - lo) + 2 / alpha * np.clip(lo - t, 0, None) + 2 / alpha * np.clip(t - hi, 0, None)) / t
    return pd.DataFrame(
        {"group": truth["family"].to_numpy(), "N": truth["N"].to_numpy(), "D": truth["D"].to_numpy(),
         "inside": (lo <= t) & (t <= hi), "is": isc, "error": np.abs(med.to_numpy() - t) / t,
         "width": (hi - lo) / t, "z": (t - med.to_numpy()) / (hi - lo)}
    )  # fmt: skip


def fit_quietly(*args, **kwargs):
    """A fit, and whether its diagnostics warned."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DiagnosticsWarning)
        result = bs.fit(*args, **kwargs)
    warned = [str(w.message) for w in caught if issubclass(w.category, DiagnosticsWarning)]
    for message in warned:
        print(f"  warned: {message}", file=sys.stderr)
    return result, bool(warned)


def run(
    name: str, seed: int, methods: tuple[str, ...] = ("pooled", "separate"), targets: list | None = None
) -> list[dict]:
    """Both methods on one data set: their summary rows (and, into ``targets``, their per-target scores)."""
    table, held = DATASETS[name]()
    train, test = table[~held].reset_index(drop=True), table[held].reset_index(drop=True)
    rows = []
    for method in methods:
        scores, warned, wall = (_pooled if method == "pooled" else _separate)(train, test, seed)
        rows.append(_summary(name, method, scores, warned, wall))
        print(f"{name}: {method} done in {wall:.0f} s", file=sys.stderr)
        if targets is not None:
            targets.append(scores.assign(data=name, method=method))
    return rows


def _pooled(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, int, float]:
    start = time.perf_counter()
    pooled, warned = fit_quietly(train, law="chinchilla", group="family", seed=seed)
    scores = []
    for group, truth in test.groupby("family", sort=False):
        pred = pooled.predict(N=truth["N"].to_numpy(), D=truth["D"].to_numpy(), group=group)
        scores.append(score(pred, truth))
    return pd.concat(scores), int(warned), time.perf_counter() - start


def _separate(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, int, float]:
    start = time.perf_counter()
    scores, warns = [], 0
    for group, truth in test.groupby("family", sort=False):
        fit, warned = fit_quietly(train[train["family"] == group][["N", "D", "loss"]], law="chinchilla", seed=seed)
        warns += int(warned)
        pred = fit.predict(N=truth["N"].to_numpy(), D=truth["D"].to_numpy())
        scores.append(score(pred, truth))
    return pd.concat(scores), warns, time.perf_counter() - start


def _summary(name: str, method: str, scores: pd.DataFrame, warned: int, wall: float) -> dict:
    per_group = scores.groupby("group", sort=False)
    return {
        "data": name,
        "method": method,
        "groups": per_group.ngroups,
        "targets": len(scores),
        "coverage_90": float(scores["inside"].mean()),
        "mean_interval_score_pct": 100 * float(per_group["is"].median().mean()),
        "median_abs_error_pct": 100 * float(scores["error"].median()),
        "fits_warned": warned,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--methods", nargs="+", choices=("pooled", "separate"), default=("pooled", "separate"))
    parser.add_argument("--out", help="also write the table as Markdown to this file")
    parser.add_argument("--targets", help="also write every held-out run's scores (CSV) to this file")
    args = parser.parse_args()
    import logging

    logging.getLogger("bayescale").setLevel(logging.WARNING)
    targets: list[pd.DataFrame] = []
    rows = [row for name in args.data for row in run(name, args.seed, tuple(args.methods), targets)]
    if args.targets:
        pd.concat(targets).to_csv(args.targets, index=False)
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.out:
        header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
        body = "".join(
            "| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |\n"
            for row in table.itertuples(index=False)
        )
        Path(args.out).write_text(header + body)


if __name__ == "__main__":
    main()
