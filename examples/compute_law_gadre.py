"""The Baichuan 2 / MindLLM practice: fit L(C) = E + (C_c / C)^gamma on small models, predict a large one.

On Gadre et al.'s (2024) C4 ladder, fits the compute law with an irreducible term to the runs of
N <= 411M trained near the compute-optimal ratio (0.5-2x Chinchilla's 20 tokens per parameter),
then predicts the 1.4B and 6.9B models trained at 20 tokens per parameter, and compares with
their measured loss.

Run: python examples/compute_law_gadre.py [--draws 1000] [--out-dir examples_output] [--data PATH]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

import bayescale as bs
from bayescale import plots

DATA = Path(os.environ.get("BAYESCALE_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--out-dir", default="examples_output")
    parser.add_argument("--data", default=str(DATA / "gadre2024_overtraining.csv"))
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    grid = pd.read_csv(args.data)
    c4 = grid[(grid["family"] == "gadre2024_c4_original") & (grid["eval_name"] == "c4_val")]
    small = c4[(c4["N"] <= 4.2e8) & c4["chinchilla_multiplier"].between(0.5, 2.0)]
    large = c4[(c4["N"] >= 1.4e9) & (c4["chinchilla_multiplier"] == 1.0)]
    runs = bs.load_runs(small[["C", "loss"]])
    fit = bs.fit(runs, law="power:C", draws=args.draws, tune=args.draws, seed=1)
    print(fit.summary().to_string(index=False))
    pred = fit.predict(C=large["C"].to_numpy())
    pred["actual"] = large["loss"].to_numpy()
    pred["inside_90"] = (pred["actual"] >= pred["lower"]) & (pred["actual"] <= pred["upper"])
    print(pred[["C", "median", "lower", "upper", "actual", "inside_90"]].to_string(index=False))
    big = large.iloc[-1]
    fig = plots.plot_loss(fit)
    ax = fig.axes[0]
    ax.scatter(large["C"], large["loss"], marker="*", s=120, color="#c0392b", zorder=5, label="measured 1.4B and 6.9B")
    ax.set_xlim(right=big["C"] * 3)
    ax.legend(fontsize=8)
    fig.savefig(out / "gadre_compute_law.png", dpi=110)
    print(f"figures in {out}/")


if __name__ == "__main__":
    main()
