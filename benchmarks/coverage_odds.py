"""How often a calibrated method passes a task-set coverage rule, given the tasks' target counts.

Usage: python benchmarks/coverage_odds.py [TASK_DIR ...] [--levels 0.8,0.85,...] [--sims 200000]

A task scores the share of its targets inside the 90% band. With few targets that share is
coarse: on a three-target task one miss is 67%. This script asks what the acceptance rule
of ``../shared/tools/eval_tasks.py`` -- mean coverage between 85% and 95% *and* every task at
75% or more -- demands of a method whose bands cover each target with probability ``p``,
independently (the idealised case; errors shared by a task's targets only spread each
task's coverage further). It reads the target counts from each task's ``target.csv``
(default: every task in ``../shared/tasks``), draws every task's coverage as
Binomial(targets, p) / targets, and prints, per ``p``, the probability of each part of the
rule and of the whole. Monte Carlo (seeded); its standard error is printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

TASKS = Path(__file__).resolve().parents[2] / "shared" / "tasks"


def target_counts(folders: list[Path]) -> dict[str, int]:
    """Number of targets (rows of ``target.csv``) per task folder."""
    return {f.name: len(pd.read_csv(f / "target.csv")) for f in folders}


def pass_odds(
    counts: list[int], p: float, sims: int, rng: np.random.Generator, mean_range=(0.85, 0.95), floor=0.75
) -> dict[str, float]:
    """Probabilities that the mean coverage lies in ``mean_range``, that every task reaches ``floor``, and both."""
    k = np.asarray(counts)
    coverage = rng.binomial(k, p, size=(sims, k.size)) / k
    mean = coverage.mean(axis=1)
    mean_ok = (mean >= mean_range[0] - 1e-12) & (mean <= mean_range[1] + 1e-12)
    floor_ok = coverage.min(axis=1) >= floor - 1e-12
    return {
        "P(mean in range)": float(mean_ok.mean()),
        "P(every task >= floor)": float(floor_ok.mean()),
        "P(pass)": float((mean_ok & floor_ok).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", type=Path, help="task folders or their parents")
    parser.add_argument("--levels", default="0.8,0.85,0.88,0.9,0.92,0.95,0.97,0.99")
    parser.add_argument("--sims", type=int, default=200_000)
    args = parser.parse_args()
    roots = args.tasks or [TASKS]
    folders = sorted(
        f for r in roots for f in ([r] if (r / "target.csv").exists() else r.iterdir()) if (f / "target.csv").exists()
    )
    counts = target_counts(folders)
    print("targets per task:", ", ".join(f"{name} {k}" for name, k in counts.items()))
    rng = np.random.default_rng(0)
    rows = {float(p): pass_odds(list(counts.values()), float(p), args.sims, rng) for p in args.levels.split(",")}
    table = pd.DataFrame(rows).T.rename_axis("per-target coverage p")
    print(table.round(3).to_string())
    print(f"Monte Carlo standard error <= {0.5 / np.sqrt(args.sims):.4f}")


if __name__ == "__main__":
    main()
