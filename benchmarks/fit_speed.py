"""Fit speed: the package's default CLI fit against the Hoffmann/Epoch recipe, in the same run.

Usage: python benchmarks/fit_speed.py [--boot 4000] [--sizes 245,1000,10000] [--skip-recipe] [--only-cache]

1. The 245 Chinchilla runs (../shared/data/chinchilla_epoch.csv):
   - recipe: Huber (delta 1e-3) on log L, L-BFGS-B from all 4,500 grid starts (a, b in {0..25 step 5},
     e in {-1..1 step 0.5}, alpha, beta in {0..2 step 0.5}), then --boot bootstrap refits (each from the
     full-data optimum: the one shortcut, stated);
   - bayescale fit (CLI, process start included): the default (law + discrepancy + calibration) and
     the law alone (--no-discrepancy --no-calibrate); 4 chains x 1000 draws; min bulk ESS of the law's
     parameters and ESS per second of wall time. Each twice, from an empty BAYESCALE_CACHE_DIR: the
     first process builds the compiled model and fills the cache, the second loads it (``vs_first``:
     its time over the first's; whether both saved the same draws goes to stderr).
   `bayescale compare RUNS --laws kaplan,chinchilla` and `bayescale backtest RUNS --holdout rolling`
   (default fits inside, CLI).
2. bayescale predict of 10,000 points from the saved default fit (CLI, process start included;
   median of 5 runs, each printed to stderr).
3. Cost growth: synthetic ladders from a known Chinchilla law with --sizes runs, default CLI fit:
   wall time, max R-hat, and whether the generating parameters lie in their 90% intervals.
ESS and R-hat are over every checked parameter of both stages (for the discrepancy's
hyperparameters, drawn by importance sampling, the ESS is the importance sample's and the
Pareto khat is reported instead of R-hat).
Prints one table; every time is wall-clock on this machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import recipe

import bayescale as bs
from bayescale.datasets.simulate import simulate_runs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chinchilla_epoch.csv"
CLI = [str(Path(sys.executable).with_name("bayescale"))]
CHINCHILLA_COLUMNS = ["--n-col", "Model Size", "--c-col", "Training FLOP", "--loss-col", "loss"]
LAW = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.348, "beta": 0.366}


def _run(args: list[str], cache: Path | None = None) -> float:
    """Wall time of one CLI command in a new process (``cache``: its BAYESCALE_CACHE_DIR)."""
    env = dict(os.environ, **({"BAYESCALE_CACHE_DIR": str(cache)} if cache is not None else {}))
    start = time.perf_counter()
    subprocess.run(CLI + args, check=True, capture_output=True, text=True, env=env)
    return time.perf_counter() - start


def _ess(path: Path) -> tuple[float, float, float]:
    """Smallest bulk ESS, largest R-hat and largest Pareto khat over both stages of a saved fit."""
    d = bs.load(path).diagnostics
    return d.min_ess_bulk, d.max_rhat, d.max_khat


def _recovered(path: Path) -> str:
    """Which generating parameters lie inside the fit's 90% intervals."""
    table = bs.load(path).summary(interval=0.9).set_index("parameter")
    inside = [k for k, v in LAW.items() if table.loc[k, "lower"] <= v <= table.loc[k, "upper"]]
    return f"{len(inside)}/{len(LAW)}"


def _synthetic(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(5e7), np.log(2e10), n))
    D = N * np.exp(rng.uniform(np.log(2), np.log(200), n))
    return simulate_runs(pd.DataFrame({"N": N, "D": D}), LAW, sigma=0.01, seed=seed)[["N", "D", "loss"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boot", type=int, default=4000)
    ap.add_argument("--sizes", default="245,1000,10000")
    ap.add_argument("--skip-recipe", action="store_true")
    ap.add_argument("--only-cache", action="store_true", help="stop after the first/second-process rows")
    a = ap.parse_args()
    rows = []
    work = Path(tempfile.mkdtemp(prefix="bayescale-speed-"))
    runs = bs.load_runs(DATA, n_col="Model Size", c_col="Training FLOP", loss_col="loss")
    N, D, L = runs.values("N"), runs.values("D"), runs.loss

    if not a.skip_recipe:
        start = time.perf_counter()
        recipe.fit_recipe(N, D, L, n_boot=a.boot, seed=0, n_starts=len(recipe.GRID))
        t_recipe = time.perf_counter() - start
        rows.append({"job": f"recipe: 4,500 starts + {a.boot} bootstrap refits", "wall_s": t_recipe})
        print(f"recipe: {t_recipe:.1f} s", file=sys.stderr)
    else:
        t_recipe = float("nan")

    cache = work / "model-cache"  # the compiled-model cache of every later command
    for label, extra in (("default", []), ("law only", ["--no-discrepancy", "--no-calibrate"])):
        empty = work / f"cache-{label.replace(' ', '_')}"  # starts empty: the first process fills it
        first = None
        for process in ("first process, empty cache", "second process, cache filled"):
            out = work / f"chinchilla_{label.replace(' ', '_')}_{process.split()[0]}.nc"
            wall = _run(["fit", str(DATA), "--out", str(out), "--seed", "1", *CHINCHILLA_COLUMNS, *extra], empty)
            first = wall if first is None else first
            ess, rhat, khat = _ess(out)
            rows.append(
                {
                    "job": f"bayescale fit, 245 runs, {label} (CLI, {process})",
                    "wall_s": wall,
                    "vs_first": wall / first,
                    "min_bulk_ess": ess,
                    "ess_per_s": ess / wall,
                    "max_rhat": rhat,
                    "max_khat": khat,
                    "vs_recipe": wall / t_recipe,
                }
            )
            print(f"bayescale {label}, {process}: {wall:.1f} s, min ESS {ess:.0f}", file=sys.stderr)
        draws = [bs.load(work / f"chinchilla_{label.replace(' ', '_')}_{p}.nc").tree for p in ("first", "second")]
        same = all(
            np.array_equal(draws[0]["posterior"][v].to_numpy(), draws[1]["posterior"][v].to_numpy())
            for v in draws[0]["posterior"].data_vars
        )
        print(f"bayescale {label}: same draws in both processes: {same}", file=sys.stderr)
        shutil.copy(
            work / f"chinchilla_{label.replace(' ', '_')}_first.nc", work / f"chinchilla_{label.replace(' ', '_')}.nc"
        )

    if a.only_cache:
        _print(rows)
        return
    for job, args in (
        ("bayescale compare, kaplan vs chinchilla, 245 runs (CLI)", ["compare", "--laws", "kaplan,chinchilla"]),
        ("bayescale backtest --holdout rolling, 245 runs (CLI)", ["backtest", "--holdout", "rolling"]),
    ):
        wall = _run([args[0], str(DATA), *args[1:], "--seed", "1", *CHINCHILLA_COLUMNS], cache)
        rows.append({"job": job, "wall_s": wall, "vs_recipe": wall / t_recipe})
        print(f"{job}: {wall:.1f} s", file=sys.stderr)

    points = work / "points.csv"
    pd.DataFrame({"N": np.geomspace(1e8, 1e11, 10_000), "D": 20 * np.geomspace(1e8, 1e11, 10_000)}).to_csv(
        points, index=False
    )
    walls = [
        _run(["predict", str(work / "chinchilla_default.nc"), "--points", str(points), "--format", "csv"])
        for _ in range(5)
    ]
    rows.append(
        {
            "job": "bayescale predict, 10,000 points from the saved default fit (CLI; median of 5 runs)",
            "wall_s": float(np.median(walls)),
        }
    )
    print("predict walls: " + ", ".join(f"{w:.2f}" for w in walls) + " s", file=sys.stderr)

    for n in (int(s) for s in a.sizes.split(",")):
        csv = work / f"synthetic_{n}.csv"
        _synthetic(n, seed=n).to_csv(csv, index=False)
        out = work / f"synthetic_{n}.nc"
        wall = _run(["fit", str(csv), "--out", str(out), "--seed", "1"], cache)
        ess, rhat, khat = _ess(out)
        rows.append(
            {
                "job": f"bayescale fit, {n} synthetic runs, default (CLI)",
                "wall_s": wall,
                "min_bulk_ess": ess,
                "ess_per_s": ess / wall,
                "max_rhat": rhat,
                "max_khat": khat,
                "truth_in_90": _recovered(out),
            }
        )
        print(f"{n} runs: {wall:.1f} s, max R-hat {rhat:.3f}", file=sys.stderr)

    _print(rows)


def _print(rows: list[dict]) -> None:
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3g}".format):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
