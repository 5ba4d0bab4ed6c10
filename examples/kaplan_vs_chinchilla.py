"""Kaplan vs Chinchilla on the same runs: which law the runs support, and what the choice changes.

Compares Kaplan et al.'s (2020) joint law and Hoffmann et al.'s (2022) law on the Chinchilla runs by
PSIS-LOO and leave-future-out, prints the table, and draws the comparison and each law's
compute-optimal allocation.

Run: python examples/kaplan_vs_chinchilla.py [--draws 1000] [--out-dir examples_output]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import bayescale as bs
from bayescale import plots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--out-dir", default="examples_output")
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    runs = bs.datasets.load_chinchilla()
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # show, do not raise, diagnostics of short runs
        comparison = bs.compare(
            runs,
            ["kaplan", "chinchilla"],
            draws=args.draws,
            tune=args.draws,
            seed=1,
            discrepancy=False,
            calibrate=False,
        )
    print(comparison.table.to_string(index=False))
    plots.plot_comparison(comparison).savefig(out / "kaplan_vs_chinchilla_comparison.png", dpi=110)
    for name, fit in comparison.fits.items():
        plots.plot_allocation(fit).savefig(out / f"kaplan_vs_chinchilla_allocation_{name}.png", dpi=110)
    averaged = comparison.average("stacking")
    row = averaged.optimal().iloc[0]
    print(
        f"stacking-averaged tokens per parameter at {row['compute']:.3g} FLOPs: {row['tokens_per_param_median']:.1f} "
        f"({row['tokens_per_param_lower']:.1f}-{row['tokens_per_param_upper']:.1f})"
    )
    print(f"figures in {out}/")


if __name__ == "__main__":
    main()
