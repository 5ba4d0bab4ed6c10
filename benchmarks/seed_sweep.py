"""Diagnostics and calibration of the default fit across seeds, through the command line.

Usage: python benchmarks/seed_sweep.py [TASKS_DIR] [--seeds 1 2 3 4 5] [--interval 0.9] [-- extra fit args]

For every task folder (fit.csv, target.csv) and every seed it runs exactly what the acceptance checks
run -- ``bayescale fit fit.csv --out F --seed S`` then ``bayescale predict F --points target.csv`` --
(with ``--literature-exclude SOURCE`` for a task folder with source.txt, as
``../shared/tools/eval_tasks.py --exclude-own-source`` does, so figures on the literature prior's own sources
are out of sample) and prints one line per fit: whether the fit warned (a ``warning:`` line on stderr), the worst R-hat,
the smallest bulk ESS and the divergences over every stage (from the saved fit's diagnostics table),
the coverage of the targets by the bands and the mean interval score (relative to the truth, in %).
Then the baseline recipe's figures on the same tasks (Hoffmann/Epoch Huber fit + bootstrap with resampled
residuals) and a POOLED line per method: fits that warned, per-target coverage, mean
interval score.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import recipe

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TASKS = ROOT.parent / "shared" / "tasks"


def interval_score(lower: np.ndarray, upper: np.ndarray, truth: np.ndarray, level: float) -> np.ndarray:
    """Gneiting & Raftery's interval score relative to the truth, in %."""
    alpha = 1 - level
    score = (
        (upper - lower) + 2 / alpha * (lower - truth) * (truth < lower) + 2 / alpha * (truth - upper) * (truth > upper)
    )
    return 100 * score / truth


def run_fit(cli: list[str], task: Path, seed: int, level: float, extra: list[str]) -> dict:
    """Fit and predict one task at one seed through the CLI; read the saved fit's diagnostics."""
    import bayescale as bs

    source = task / "source.txt"  # out of sample: the literature prior re-learned without the task's source
    if source.exists():
        extra = [*extra, "--literature-exclude", source.read_text().strip()]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "fit.nc"
        t0 = time.perf_counter()
        fitted = subprocess.run(
            [*cli, "fit", str(task / "fit.csv"), "--out", str(out), "--seed", str(seed), *extra],
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - t0
        if fitted.returncode != 0:
            return {"refused": True, "message": fitted.stderr.strip().splitlines()[-1:], "seconds": seconds}
        predict = [*cli, "predict", str(out), "--points", str(task / "target.csv"), "--interval", str(level)]
        pred = subprocess.run(
            [*predict, "--format", "csv"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        diag = bs.load(out).diagnostics
    p = pd.read_csv(io.StringIO(pred))
    truth = pd.read_csv(task / "target.csv")["loss"].to_numpy()
    lower, upper = p["lower"].to_numpy(), p["upper"].to_numpy()
    return {
        "refused": False,
        "warned": any("warning:" in line for line in fitted.stderr.splitlines()),
        "rhat": diag.max_rhat,
        "ess": diag.min_ess_bulk,
        "divergences": diag.divergences,
        "covered": int(np.sum((truth >= lower) & (truth <= upper))),
        "targets": truth.size,
        "score": float(np.mean(interval_score(lower, upper, truth, level))),
        "seconds": seconds,
    }


def main() -> None:
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tasks", nargs="?", default=str(DEFAULT_TASKS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--interval", type=float, default=0.9)
    ap.add_argument("--bayescale", default=str(Path(sys.executable).parent / "bayescale"))
    ap.add_argument("--bootstrap", type=int, default=200, help="bootstrap refits of the baseline recipe")
    a = ap.parse_args(argv)
    tasks = sorted(p for p in Path(a.tasks).iterdir() if (p / "fit.csv").exists())
    if not tasks:
        sys.exit(f"error: no task folders (with fit.csv and target.csv) under {a.tasks}")
    cli = [a.bayescale]
    rows = []
    head = ("task", "seed", "warned", "R-hat", "ESS", "div", "cover", "IS %", "s")
    print("{:44s} {:>4s} {:>6s} {:>6s} {:>6s} {:>4s} {:>6s} {:>6s} {:>5s}".format(*head))
    for task in tasks:
        for seed in a.seeds:
            r = run_fit(cli, task, seed, a.interval, extra) | {"task": task.name, "seed": seed}
            rows.append(r)
            if r["refused"]:
                print(f"{task.name:44s} {seed:4d} REFUSED {r['message']}", flush=True)
                continue
            print(
                f"{task.name:44s} {seed:4d} {'yes' if r['warned'] else 'no':>6s} {r['rhat']:6.3f} {r['ess']:6.0f} "
                f"{r['divergences']:4d} {r['covered']:>3d}/{r['targets']:<2d} {r['score']:6.2f} {r['seconds']:5.0f}",
                flush=True,
            )
    ok = [r for r in rows if not r["refused"]]
    print(
        f"POOLED bayescale: {len(ok)} fits, refused {len(rows) - len(ok)}, warned {sum(r['warned'] for r in ok)}, "
        f"R-hat <= 1.01 in {sum(r['rhat'] <= 1.01 for r in ok)}, "
        f"bulk ESS >= 400 in {sum(r['ess'] >= 400 for r in ok)}, "
        f"no divergences in {sum(r['divergences'] == 0 for r in ok)}; per-target coverage "
        f"{sum(r['covered'] for r in ok)}/{sum(r['targets'] for r in ok)} "
        f"({100 * sum(r['covered'] for r in ok) / max(1, sum(r['targets'] for r in ok)):.1f}%), "
        f"mean interval score {np.mean([r['score'] for r in ok]):.2f}%"
    )
    covered = targets = 0
    scores = []
    for task in tasks:
        fit, target = pd.read_csv(task / "fit.csv"), pd.read_csv(task / "target.csv")
        _, boots, resid = recipe.fit_recipe(
            fit["N"].to_numpy(float), fit["D"].to_numpy(float), fit["loss"].to_numpy(float), n_boot=a.bootstrap
        )
        lower, _, upper = recipe.bands(
            boots, resid, target["N"].to_numpy(float), target["D"].to_numpy(float), a.interval, with_residuals=True
        )
        truth = target["loss"].to_numpy()
        covered += int(np.sum((truth >= lower) & (truth <= upper)))
        targets += truth.size
        scores.append(float(np.mean(interval_score(lower, upper, truth, a.interval))))
    print(
        f"POOLED recipe+resid (same tasks): per-target coverage {covered}/{targets} ({100 * covered / targets:.1f}%), "
        f"mean interval score {np.mean(scores):.2f}%"
    )


if __name__ == "__main__":
    main()
