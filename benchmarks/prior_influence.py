"""Where the runs identify the law, the literature prior must not move it.

Fits the Chinchilla law to all 245 runs of Hoffmann et al. (Epoch AI extraction) with the
weak and with the literature prior set (same seed, the law's stage) and prints, for E,
alpha, beta and the allocation exponent a = beta / (alpha + beta), each posterior median and
sd and the shift of the median in units of the posterior sd (must be below 1).

Usage: python benchmarks/prior_influence.py [--seed S]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    import bayescale as bs

    c = pd.read_csv(DATA / "chinchilla_epoch.csv")
    runs = pd.DataFrame({"N": c["Model Size"], "D": c["Training FLOP"] / (6 * c["Model Size"]), "loss": c["loss"]})
    rows = {}
    for prior_set in ("weak", "literature"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = bs.fit(runs, prior_set=prior_set, seed=args.seed, discrepancy=False, calibrate=False)
        draws = {n: f.draws(n) for n in ("E", "alpha", "beta")}
        draws["a"] = draws["beta"] / (draws["alpha"] + draws["beta"])
        rows[prior_set] = {n: (float(np.median(x)), float(np.std(x, ddof=1))) for n, x in draws.items()}
        print(f"{prior_set}: max R-hat {f.diagnostics.max_rhat:.3f}", file=sys.stderr)
    print(f"{'parameter':10s} {'weak median (sd)':>22s} {'literature median (sd)':>24s} {'shift / sd':>10s}")
    for n in ("E", "alpha", "beta", "a"):
        (mw, sw), (ml, sl) = rows["weak"][n], rows["literature"][n]
        print(f"{n:10s} {mw:12.4f} ({sw:.4f}) {ml:14.4f} ({sl:.4f}) {abs(ml - mw) / max(sw, sl):10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
