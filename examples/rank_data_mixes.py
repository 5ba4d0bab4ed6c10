"""Which data mix scales better? Rank Gadre et al.'s three training sets at a 7B model, with probabilities.

Gadre et al. (2024) trained the same sizes on C4, RedPajama and RefinedWeb. One pooled fit of the
runs of N <= 411M (bayescale fit --group family) ranks the three mixes at a 7B model on 140B
tokens (20 tokens per parameter) -- the probability that each is best, from joint posterior
draws -- contrasts RedPajama with C4, and draws the groups with the difference panel. The 6.9B
models at 20 tokens per parameter were trained: their measured loss is printed beside.

Run: python examples/rank_data_mixes.py [--draws 1000] [--out-dir examples_output] [--data PATH]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

import bayescale as bs
from bayescale import plots

DATA = Path(os.environ.get("BAYESCALE_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
TARGET = {"N": 7e9, "D": 1.4e11}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--out-dir", default="examples_output")
    parser.add_argument("--data", default=str(DATA / "gadre2024_overtraining.csv"))
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    grid = pd.read_csv(args.data)
    c4_val = grid[grid["eval_name"] == "c4_val"].copy()
    c4_val["mix"] = c4_val["train_dataset"]
    small = c4_val[c4_val["N"] <= 4.2e8][["mix", "N", "D", "loss"]]
    pooled = bs.fit(small, law="chinchilla", group="mix", draws=args.draws, tune=args.draws, seed=1)
    ranking = pooled.rank(**TARGET)
    measured = c4_val[(c4_val["N"] > 6e9) & (c4_val["chinchilla_multiplier"] == 1.0)].set_index("mix")["loss"]
    ranking["measured_6.9B"] = ranking["group"].map(measured)
    print(f"Ranking at N = {TARGET['N']:.3g}, D = {TARGET['D']:.3g} (expected c4_val loss):")
    print(ranking.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print("\nrpj against c4_original (differences are rpj minus c4_original):")
    table = pooled.contrast("rpj", "c4_original", **TARGET)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    fig = plots.plot_groups(pooled, "rpj", "c4_original")
    fig.savefig(out / "rank_data_mixes.png", dpi=110)
    print(f"figure in {out}/")


if __name__ == "__main__":
    main()
