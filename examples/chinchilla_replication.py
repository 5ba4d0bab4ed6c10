"""The Chinchilla replication: the posterior on Hoffmann et al.'s runs against the published estimates.

Fits Chinchilla's law to the 245 runs reconstructed by Besiroglu et al. (2024) and draws each
parameter's posterior with Hoffmann et al.'s (2022) and Epoch AI's (Besiroglu et al. 2024)
point estimates marked, then the compute-optimal allocation.

Run: python examples/chinchilla_replication.py [--draws 1000] [--out-dir examples_output]
(reads ../shared/data/chinchilla_epoch.csv when BAYESCALE_DATA_DIR points there; otherwise downloads it)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import bayescale as bs
from bayescale import plots

HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
EPOCH = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--out-dir", default="examples_output")
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    runs = bs.datasets.load_chinchilla()
    # the law's parameters are the same with or without the discrepancy stage (a cut posterior)
    fit = bs.fit(runs, law="chinchilla", draws=args.draws, tune=args.draws, seed=1, discrepancy=False, calibrate=False)
    table = fit.summary(interval=0.95).set_index("parameter")
    print(table.loc[list(HOFFMANN), ["median", "lower", "upper", "r_hat", "ess_bulk"]].to_string())

    fig = Figure(figsize=(15, 3.4), layout="constrained")
    for ax, name in zip(fig.subplots(1, 5), HOFFMANN, strict=True):
        draws = fit.draws(name)
        log = name in ("A", "B")
        values = np.log10(draws) if log else draws
        ax.hist(values, bins=60, color="#3b6ea5", alpha=0.7, density=True, label="bayescale posterior")
        for ref, color, label in ((HOFFMANN, "#e67e22", "Hoffmann et al. 2022"), (EPOCH, "#27ae60", "Epoch AI 2024")):
            ax.axvline(np.log10(ref[name]) if log else ref[name], color=color, lw=2, label=label)
        ax.set_xlabel(f"log10 {name}" if log else name)
        ax.set_yticks([])
    fig.axes[0].legend(fontsize=7)
    fig.suptitle(f"Chinchilla's law on {len(runs)} runs: posterior against the published estimates")
    fig.savefig(out / "chinchilla_posterior_vs_published.png", dpi=110)
    plots.plot_allocation(fit).savefig(out / "chinchilla_allocation.png", dpi=110)
    opt = fit.optimal(5.76e23).iloc[0]  # Chinchilla's own budget
    print(
        f"at 5.76e23 FLOPs: N_opt {opt['N_opt_median']:.3g} ({opt['N_opt_lower']:.3g}-{opt['N_opt_upper']:.3g}), "
        f"tokens/param {opt['tokens_per_param_median']:.1f} ({opt['tokens_per_param_lower']:.1f}-"
        f"{opt['tokens_per_param_upper']:.1f})"
    )
    print(f"figures in {out}/")


if __name__ == "__main__":
    main()
