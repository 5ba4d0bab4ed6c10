"""Inference-aware allocation: the model to train when it will serve trillions of tokens.

Fits Chinchilla's law to the demo ladder and, at a training budget of 5.88e23 FLOPs, asks for the
model that reaches the compute-optimal model's loss at the lowest lifetime cost (training plus
2 N FLOPs per inference token; Sardana and Frankle 2024) as the inference demand grows to 10T
tokens and beyond. Draws N and D against the inference tokens with 90% bands.

Run: python examples/inference_aware.py [--draws 1000] [--out-dir examples_output]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import bayescale as bs

BUDGET = 5.88e23


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--out-dir", default="examples_output")
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    fit = bs.fit(bs.datasets.load_demo(), law="chinchilla", draws=args.draws, tune=args.draws, seed=1)
    demand = np.geomspace(1e10, 1e14, 9)
    rows = [fit.optimal(BUDGET, inference_tokens=float(d)).iloc[0] for d in demand]
    fig = Figure(figsize=(11, 4), layout="constrained")
    for ax, q, label in zip(fig.subplots(1, 2), ("N", "D"), ("parameters N", "training tokens D"), strict=True):
        med = [r[f"inf_aware_{q}_median"] for r in rows]
        ax.fill_between(
            demand,
            [r[f"inf_aware_{q}_lower"] for r in rows],
            [r[f"inf_aware_{q}_upper"] for r in rows],
            color="#3b6ea5",
            alpha=0.25,
            lw=0,
            label="90% band",
        )
        ax.plot(demand, med, color="#3b6ea5", lw=2, label="posterior median")
        ax.axhline(rows[0][f"{q}_opt_median"], color="#888", ls="--", label="compute-optimal (no inference)")
        ax.axvline(1e13, color="#c0392b", ls=":", label="10T inference tokens")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("lifetime inference tokens")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    fig.suptitle(f"Inference-aware allocation at the loss of the compute-optimal model for {BUDGET:.3g} FLOPs")
    fig.savefig(out / "inference_aware.png", dpi=110)
    row = fit.optimal(BUDGET, inference_tokens=1e13).iloc[0]
    print(
        f"10T inference tokens: train {row['inf_aware_N_median'] / 1e9:.1f}B parameters on "
        f"{row['inf_aware_D_median'] / 1e12:.2f}T tokens (compute-optimal: {row['N_opt_median'] / 1e9:.1f}B on "
        f"{row['D_opt_median'] / 1e12:.2f}T); lifetime FLOPs saved: {row['inf_aware_saving_median']:.0%}"
    )
    print(f"figures in {out}/")


if __name__ == "__main__":
    main()
