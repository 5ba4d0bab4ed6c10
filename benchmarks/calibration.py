"""Calibration benchmark: the package's default against three baselines, side by side, on every task.

Usage: python benchmarks/calibration.py [TASKS_DIR] [--level 0.9] [--bootstrap 200]

Methods, each fitted on fit.csv and scored on target.csv (90% bands by default):
  bayescale        the package default: Student-t law fit + Gaussian-process model discrepancy (cut
                   posterior) + band scale calibrated by a leave-future-out re-fit
  recipe           Hoffmann/Epoch: Huber on log L, L-BFGS-B from a grid, bootstrap over runs (benchmarks/recipe.py)
  recipe+resid     the same with resampled residuals added to each bootstrap prediction
  discrepancy-only the default without the leave-future-out band scale (calibrate=False)
  plain-bayes      a plain Bayesian Chinchilla fit, independent Student-t noise (discrepancy=False, calibrate=False)
Prints per task and method: coverage, median ARE, median width, interval score, whether the fit warned
(DiagnosticsWarning); then the mean over tasks. A task folder with source.txt (a source of the literature
prior) is fitted with the prior re-learned without that source ("auto without SOURCE", the
`--literature-exclude` of the command line), so its figures are out of sample.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dev_tasks
import recipe
import small_ladders
from dev_tasks import PREFIX as DEV_PREFIX

import bayescale as bs
from bayescale.backtesting import interval_metrics
from bayescale.diagnostics import DiagnosticsWarning
from bayescale.literature import with_exclusion

DEFAULT_TASKS = Path(__file__).resolve().parents[2] / "shared" / "tasks"


def run_task(task: Path, level: float, n_boot: int, seed: int) -> list[dict]:
    fit_df, target = pd.read_csv(task / "fit.csv"), pd.read_csv(task / "target.csv")
    N, D, L = (target[c].to_numpy(float) for c in ("N", "D", "loss"))
    rows = []
    # out of sample: a task of a source the literature prior was learned from gets the prior without it
    source = (task / "source.txt").read_text().strip() if (task / "source.txt").exists() else None
    prior_set = with_exclusion("auto", source)
    for name, options in (
        ("bayescale", {}),
        ("discrepancy-only", {"calibrate": False}),
        ("plain-bayes", {"discrepancy": False, "calibrate": False}),
    ):
        t0 = time.time()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DiagnosticsWarning)  # counted below, not hidden
            fit = bs.fit(bs.load_runs(fit_df), seed=seed, prior_set=prior_set, **options)
        pred = fit.predict(N=N, D=D, interval=level)
        rows.append(
            {
                "task": task.name,
                "method": name,
                "prior": prior_set,
                "warned": int(any(issubclass(w.category, DiagnosticsWarning) for w in caught)),
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
    ap.add_argument("--seed", type=int, default=1, help="seed of the Bayesian fits")
    ap.add_argument(
        "--dev-tasks",
        action="store_true",
        help="also score the 15 extra tasks benchmarks/dev_tasks.py builds from ../shared/data",
    )
    ap.add_argument(
        "--small-tasks",
        action="store_true",
        help="also score the small-ladder tasks benchmarks/small_ladders.py builds (4-6 runs; one budget, one line)",
    )
    args = ap.parse_args()
    tasks = sorted(p for p in Path(args.tasks).iterdir() if (p / "fit.csv").exists())
    with tempfile.TemporaryDirectory() as tmp:
        if args.dev_tasks:
            tasks += dev_tasks.build(Path(tmp))
        if args.small_tasks:
            tasks += small_ladders.write_tasks(Path(tmp))
        rows = []
        for i, task in enumerate(tasks, start=1):
            print(f"[{i}/{len(tasks)}] {task.name} ...", file=sys.stderr, flush=True)
            rows += run_task(task, args.level, args.bootstrap, args.seed)
    table = pd.DataFrame(rows)
    table["set"] = [
        "small" if t.startswith("small_") else "dev" if DEV_PREFIX in t else "shared" for t in table["task"]
    ]
    pd.set_option("display.width", 200)
    per_task = table.pivot(index="task", columns="method", values=["coverage", "interval_score"])
    print(f"Per task ({args.level:.0%} bands): coverage and interval score (relative to the truth)")
    print((per_task * 100).round(1).to_string())
    for name, part in table.groupby("set", sort=False):
        summary = part.groupby("method").agg(
            mean_coverage=("coverage", "mean"),
            min_coverage=("coverage", "min"),
            median_are=("median_are", "median"),
            median_width=("median_width", "median"),
            mean_interval_score=("interval_score", "mean"),
            seconds=("seconds", "sum"),
        )
        for c in ("mean_coverage", "min_coverage", "median_are", "median_width", "mean_interval_score"):
            summary[c] = (summary[c] * 100).round(2)
        print(f"\nPooled over the {part['task'].nunique()} {name} tasks (percent; coverage: mean and worst task)")
        print(summary.round(1).to_string())


if __name__ == "__main__":
    main()
