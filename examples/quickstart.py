"""Fit the demo ladder and predict a 70B model on 1.4T tokens.

Run: python examples/quickstart.py [--draws 1000] [--out-dir examples_output]
"""

from __future__ import annotations

import argparse
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
    runs = bs.datasets.load_demo()
    result = bs.fit(runs, law="chinchilla", draws=args.draws, tune=args.draws, seed=1)
    print(result.summary(interval=0.9).to_string(index=False))
    print(result.predict(N=[7e9, 70e9], D=[2e12, 1.4e12]).to_string(index=False))
    plots.plot_loss(result, target=(70e9, 1.4e12)).savefig(out / "quickstart_loss.png", dpi=110)
    print(f"figure in {out}/")


if __name__ == "__main__":
    main()
