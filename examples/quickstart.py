"""Fit the demo ladder and predict a 70B model on 1.4T tokens.

Run: python examples/quickstart.py [--draws 1000]
"""

from __future__ import annotations

import argparse

import bayescale as bs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    args = parser.parse_args()
    runs = bs.datasets.load_demo()
    result = bs.fit(runs, law="chinchilla", draws=args.draws, tune=args.draws, seed=1)
    print(result.summary(interval=0.9).to_string(index=False))
    print(result.predict(N=[7e9, 70e9], D=[2e12, 1.4e12]).to_string(index=False))


if __name__ == "__main__":
    main()
