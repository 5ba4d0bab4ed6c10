"""The data-constrained law on Muennighoff et al.'s runs: its parameters, LOO against Chinchilla,
and leave-largest-out bands beside Chinchilla's.

Data: ../shared/data/muennighoff2023_datablations.csv, the paper's 182-run fit set
(``in_paper_final_fit``; N 7.1M-8.7B, 1 to 9,000 epochs of U = 100M to 178B unique tokens).

Sections (each prints its figures; ``--out`` writes them as Markdown):

- ``params``: one default fit of the data-constrained law on the fit set: R_D*, R_N* and the
  Chinchilla part's parameters (median, 90% interval) beside the paper's values (R_D* = 15.39,
  R_N* = 5.31; A = 520.8, B = 1487.7, E = 1.869, alpha = beta = 0.353).
- ``loo``: the data-constrained law and Chinchilla (which ignores U) fitted to the same runs;
  PSIS-LOO elpd of each over all runs and over the multi-epoch runs (D > U) alone, the
  difference with its standard error (from the pointwise differences).
- ``largest``: leave-largest-out: fit the runs with N < 2B, predict every run with N >= 2B (2.2B,
  2.8B, 3.9B, 4.2B, 8.7B at every epoch count: 36 targets), with the data-constrained law and with
  Chinchilla; per-target coverage of the 90% bands, mean interval score relative to the truth,
  median absolute relative error; and the same restricted to the multi-epoch targets.

Usage: ``python benchmarks/data_constrained.py [--sections params loo largest] [--seed 1] [--out md]``
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayescale as bs
from bayescale.diagnostics import DiagnosticsWarning

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "muennighoff2023_datablations.csv"
PAPER = {"R_D_star": 15.39, "R_N_star": 5.31, "A": 520.8, "B": 1487.7, "E": 1.869, "alpha": 0.353, "beta": 0.353}
HELD_N = 2e9
INTERVAL = 0.9


def runs() -> pd.DataFrame:
    """The paper's fit set: N, D, U, loss."""
    table = pd.read_csv(DATA)
    return table[table["in_paper_final_fit"]][["N", "D", "U", "loss"]].reset_index(drop=True)


def fit(table: pd.DataFrame, law: str, seed: int) -> tuple[bs.ScalingFit, bool, float]:
    """A default fit, whether its diagnostics warned, and its wall time."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DiagnosticsWarning)
        result = bs.fit(table, law=law, seed=seed)
    warned = any(issubclass(w.category, DiagnosticsWarning) for w in caught)
    return result, warned, time.perf_counter() - start


def section_params(seed: int) -> str:
    result, warned, secs = fit(runs(), "data-constrained", seed)
    summary = result.summary().set_index("parameter")
    lines = [
        f"Data-constrained law on the paper's {len(runs())} runs (seed {seed}, {secs:.0f} s, "
        f"diagnostics {'WARNED' if warned else 'passed'}):",
        "",
        "| parameter | median | 90% interval | paper |",
        "|---|---|---|---|",
    ]
    for name in ("R_D_star", "R_N_star", "E", "A", "B", "alpha", "beta"):
        row = summary.loc[name]
        lines.append(f"| {name} | {row['median']:.4g} | [{row['lower']:.4g}, {row['upper']:.4g}] | {PAPER[name]:g} |")
    return "\n".join(lines)


def section_loo(seed: int) -> str:
    import arviz as az

    table = runs()
    multi = (table["D"] > table["U"]).to_numpy()
    elpd = {}
    for law in ("data-constrained", "chinchilla"):
        result, warned, secs = fit(table, law, seed)
        loo = az.loo(result.tree, pointwise=True, var_name="log_loss")
        elpd[law] = np.asarray(loo.elpd_i).reshape(-1)
        print(f"  {law}: {secs:.0f} s, diagnostics {'WARNED' if warned else 'passed'}, max Pareto k "
              f"{float(np.max(loo.pareto_k)):.2f}", file=sys.stderr)  # fmt: skip
    diff = elpd["data-constrained"] - elpd["chinchilla"]
    lines = [
        "PSIS-LOO elpd (higher is better) on the paper's fit set; difference = data-constrained - chinchilla, "
        "standard error sqrt(n var(difference_i)):",
        "",
        "| runs | n | elpd data-constrained | elpd chinchilla | difference | se |",
        "|---|---|---|---|---|---|",
    ]
    for name, keep in (("all", np.ones_like(multi)), ("multi-epoch (D > U)", multi), ("one epoch", ~multi)):
        d = diff[keep]
        se = float(np.sqrt(d.size * d.var())) if d.size > 1 else float("nan")
        lines.append(
            f"| {name} | {keep.sum()} | {elpd['data-constrained'][keep].sum():.1f} | "
            f"{elpd['chinchilla'][keep].sum():.1f} | {d.sum():.1f} | {se:.1f} |"
        )
    return "\n".join(lines)


def scores(pred: pd.DataFrame, truth: np.ndarray) -> pd.DataFrame:
    lo, hi, med = (pred[c].to_numpy() for c in ("lower", "upper", "median"))
    alpha = 1 - INTERVAL
    isc = ((hi - lo) + 2 / alpha * np.clip(lo - truth, 0, None) + 2 / alpha * np.clip(truth - hi, 0, None)) / truth
    return pd.DataFrame({"inside": (lo <= truth) & (truth <= hi), "is": isc, "error": np.abs(med - truth) / truth})


def section_largest(seed: int) -> str:
    table = runs()
    held = (table["N"] >= HELD_N).to_numpy()
    train, test = table[~held], table[held]
    multi = (test["D"] > test["U"]).to_numpy()
    lines = [
        f"Leave-largest-out: fit {len(train)} runs with N < {HELD_N:.0e}, predict the {len(test)} runs with "
        f"N >= {HELD_N:.0e} ({multi.sum()} of them multi-epoch); seed {seed}.",
        "",
        "| law | targets | inside 90% | mean interval score | median abs. error | fit warned | time |",
        "|---|---|---|---|---|---|---|",
    ]
    for law in ("data-constrained", "chinchilla"):
        result, warned, secs = fit(train, law, seed)
        kwargs = {"U": test["U"].to_numpy()} if law == "data-constrained" else {}
        pred = result.predict(N=test["N"].to_numpy(), D=test["D"].to_numpy(), interval=INTERVAL, **kwargs)
        s = scores(pred, test["loss"].to_numpy())
        for name, keep in (("all", np.ones(len(s), dtype=bool)), ("multi-epoch", multi)):
            part, n = s[keep], keep.sum()
            lines.append(
                f"| {law} | {name} ({n}) | {part['inside'].sum()}/{n} ({part['inside'].mean():.1%}) | "
                f"{part['is'].mean():.2%} | {part['error'].median():.2%} | {'yes' if warned else 'no'} | {secs:.0f} s |"
            )
    return "\n".join(lines)


SECTIONS = {"params": section_params, "loo": section_loo, "largest": section_largest}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="also write the tables as Markdown here")
    args = parser.parse_args(argv)
    parts = []
    for name in args.sections:
        print(f"== {name}", file=sys.stderr)
        text = SECTIONS[name](args.seed)
        print(text + "\n")
        parts.append(f"### {name}\n\n{text}\n")
    if args.out:
        Path(args.out).write_text("\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
