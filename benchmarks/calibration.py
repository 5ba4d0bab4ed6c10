"""Calibration benchmark: the package's default against three baselines, side by side, on every task.

Usage: python benchmarks/calibration.py [TASKS_DIR] [--level 0.9] [--bootstrap 200]

Methods, each fitted on fit.csv and scored on target.csv (90% bands by default):
  bayescale        the package default (Student-t fit + leave-future-out calibrated discrepancy)
  recipe           Hoffmann/Epoch: Huber on log L, L-BFGS-B from a grid, bootstrap over runs (benchmarks/recipe.py)
  recipe+resid     the same with resampled residuals added to each bootstrap prediction
  plain-bayes      a plain Bayesian Chinchilla fit, independent Student-t noise (bayescale with calibrate=False)
Prints per task and method: coverage, median ARE, median width, interval score; then the mean over tasks.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import recipe

import bayescale as bs
from bayescale.backtest import interval_metrics

DEFAULT_TASKS = Path(__file__).resolve().parents[2] / "shared" / "tasks"


def run_task(task: Path, level: float, n_boot: int) -> list[dict]:
    fit_df, target = pd.read_csv(task / "fit.csv"), pd.read_csv(task / "target.csv")
    N, D, L = (target[c].to_numpy(float) for c in ("N", "D", "loss"))
    rows = []
    for name, calibrate in (("bayescale", True), ("plain-bayes", False)):
        t0 = time.time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bs.fit(bs.load_runs(fit_df), seed=1, calibrate=calibrate)
        pred = fit.predict(N=N, D=D, interval=level)
        rows.append(
            {
                "task": task.name,
                "method": name,
                "seconds": time.time() - t0,
                **interval_metrics(L, pred["median"], pred["lower"], pred["upper"], level),
            }
        )
    t0 = time.time()
    _, boots, resid = recipe.fit_recipe(
        fit_df["N"].to_numpy(float), fit_df["D"].to_numpy(float), fit_df["loss"].to_numpy(float), n_boot=n_boot
    )
    seconds = time.time() - t0
    for name, with_resid in (("recipe", False), ("recipe+resid", True)):
        lo, med, hi = recipe.bands(boots, resid, N, D, level, with_resid)
        rows.append({"task": task.name, "method": name, "seconds": seconds, **interval_metrics(L, med, lo, hi, level)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tasks", nargs="?", default=str(DEFAULT_TASKS))
    ap.add_argument("--level", type=float, default=0.9)
    ap.add_argument("--bootstrap", type=int, default=200)
    args = ap.parse_args()
    rows = []
    for task in sorted(p for p in Path(args.tasks).iterdir() if (p / "fit.csv").exists()):
        print(f"{task.name} ...", file=sys.stderr, flush=True)
        rows += run_task(task, args.level, args.bootstrap)
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    per_task = table.pivot(index="task", columns="method", values=["coverage", "interval_score"])
    print(f"Per task ({args.level:.0%} bands): coverage and interval score (relative to the truth)")
    print((per_task * 100).round(1).to_string())
    summary = table.groupby("method").agg(
        mean_coverage=("coverage", "mean"),
        min_coverage=("coverage", "min"),
        median_are=("median_are", "median"),
        median_width=("median_width", "median"),
        mean_interval_score=("interval_score", "mean"),
        seconds=("seconds", "sum"),
    )
    for c in ("mean_coverage", "min_coverage", "median_are", "median_width", "mean_interval_score"):
        summary[c] = (summary[c] * 100).round(2)
    print("\nPooled over tasks (percent; coverage: mean and worst task)")
    print(summary.round(1).to_string())


if __name__ == "__main__":
    main()
