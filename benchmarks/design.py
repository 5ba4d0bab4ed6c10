"""Which runs next, in retrospect: ``design`` against random picks and the usual grid on real ladders,
and its speed on a large fit.

Sections:

- ``retro``: Chinchilla's 245 runs (../shared/data/chinchilla_epoch.csv). Held out: the runs above
  1e21 FLOPs (23, the top 10% by compute); the target of the design is the largest of them. A
  replication starts from ``--start`` runs drawn at random below 1e20 FLOPs (an early ladder), fits
  them, and adds runs from the remaining real runs below 1e21 (the candidates) up to a compute
  budget of 2e21 FLOPs, by three rules: (a) ``design`` (goal: loss at the target, greedy batch within
  the budget); (b) random picks, in random order, each kept while the budget allows; (c) the usual
  grid: runs evenly spaced in log compute across the candidates, as many as the budget allows. Each
  start + picks is fitted (default settings, one seed) and scored on the held-out runs: the posterior
  sd of the expected log loss at the target, the median width of the 90% bands relative to the
  truth (of a new run, and of the expected loss -- the law and discrepancy, what ``design``
  narrows), the median absolute relative error of the median, and the coverage. Replications: several
  starting subsets (``--starts``) x seeds (``--seeds``; the seed draws the random picks and seeds
  every fit).
- ``speed``: ``design`` on a default fit of all 245 runs with 500 grid candidates (goal: loss at
  Chinchilla's 70B / 1.4T), wall time; beside it, the cost of the re-fit recipe the re-weighting
  replaces (one re-fit per simulated outcome per candidate), from the measured time of one re-fit.

Usage: ``python benchmarks/design.py [--sections retro speed] [--starts 3] [--seeds 2] [--start 10] [--out md]``
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
from bayescale.next_runs import OUTCOMES, design, goal_draws

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chinchilla_epoch.csv"
HELD_C = 1e21
START_C = 1e20
BUDGET = 2e21
INTERVAL = 0.9
RULES = ("design", "random", "grid")


def runs() -> pd.DataFrame:
    table = pd.read_csv(DATA)
    N, C = table["Model Size"].to_numpy(), table["Training FLOP"].to_numpy()
    return pd.DataFrame({"N": N, "D": C / (6 * N), "C": C, "loss": table["loss"].to_numpy()})


def fit(table: pd.DataFrame, seed: int) -> tuple[bs.ScalingFit, bool]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DiagnosticsWarning)
        result = bs.fit(table[["N", "D", "loss"]], law="chinchilla", seed=seed)
    return result, any(issubclass(w.category, DiagnosticsWarning) for w in caught)


def pick_random(candidates: pd.DataFrame, rng: np.random.Generator) -> list[int]:
    chosen, spent = [], 0.0
    for i in rng.permutation(len(candidates)):
        if spent + candidates["C"].iloc[i] <= BUDGET:
            chosen.append(int(i))
            spent += candidates["C"].iloc[i]
    return chosen


def pick_grid(candidates: pd.DataFrame) -> list[int]:
    """The most runs evenly spaced in log compute (by rank) whose total fits the budget."""
    order = np.argsort(candidates["C"].to_numpy())
    best: list[int] = []
    for m in range(1, len(order) + 1):
        chosen = [int(order[i]) for i in np.unique(np.linspace(0, len(order) - 1, m).round().astype(int))]
        if candidates["C"].iloc[chosen].sum() > BUDGET:
            break
        best = chosen
    return best


def score(result: bs.ScalingFit, held: pd.DataFrame, target: tuple[float, float]) -> dict[str, float]:
    pred = result.predict(N=held["N"].to_numpy(), D=held["D"].to_numpy(), interval=INTERVAL)
    truth = held["loss"].to_numpy()
    lo, hi, med = (pred[c].to_numpy() for c in ("lower", "upper", "median"))
    index = np.arange(len(result.draws("sigma")))
    return {
        "goal_sd": float(np.std(goal_draws(result, "loss", target, index))),
        "width": float(np.median((hi - lo) / truth)),
        "expected_width": float(np.median((pred["expected_upper"] - pred["expected_lower"]).to_numpy() / truth)),
        "error": float(np.median(np.abs(med - truth) / truth)),
        "coverage": float(np.mean((lo <= truth) & (truth <= hi))),
        "interval_score": float(
            np.mean(((hi - lo) + 20 * np.clip(lo - truth, 0, None) + 20 * np.clip(truth - hi, 0, None)) / truth)
        ),
    }


def section_retro(starts: int, seeds: int, start_size: int) -> str:
    table = runs()
    held = table[table["C"] > HELD_C]
    target_row = held.loc[held["C"].idxmax()]
    target = (float(target_row["N"]), float(target_row["D"]))
    pool = table[table["C"] <= HELD_C].reset_index(drop=True)
    early = np.flatnonzero(pool["C"].to_numpy() < START_C)
    rows = []
    for s in range(starts):
        start_idx = np.random.default_rng([s, 99]).choice(early, size=start_size, replace=False)
        start = pool.iloc[start_idx]
        candidates = pool.drop(index=pool.index[start_idx]).reset_index(drop=True)
        for seed in range(1, seeds + 1):
            base, _ = fit(start, seed)
            t0 = time.perf_counter()
            found = design(base, target, candidates=candidates[["N", "D"]], budget=BUDGET, seed=seed)
            secs = time.perf_counter() - t0
            # design's picks as rows of `candidates` (its batch lists their N and D in pick order)
            picks = {
                "design": [
                    int(np.flatnonzero(np.isclose(candidates["N"], r.N) & np.isclose(candidates["D"], r.D))[0])
                    for r in found.batch.itertuples()
                ],
                "random": pick_random(candidates, np.random.default_rng([s, seed])),
                "grid": pick_grid(candidates),
            }
            for rule in RULES:
                added = candidates.iloc[picks[rule]]
                result, warned = fit(pd.concat([start, added], ignore_index=True), seed)
                rows.append({"start": s, "seed": seed, "rule": rule, "picked": len(added),
                             "compute": float(added["C"].sum()), "max_C": float(added["C"].max()),
                             "warned": warned, "design_s": secs if rule == "design" else np.nan,
                             **score(result, held, target)})  # fmt: skip
                r = rows[-1]
                print(f"  start {s} seed {seed} {rule:6s}: {r['picked']:2d} runs, {r['compute']:.2e} FLOPs "
                      f"(largest {r['max_C']:.1e}): goal sd {r['goal_sd']:.4f}, width {r['width']:.2%}, "
                      f"error {r['error']:.2%}, coverage {r['coverage']:.0%}", file=sys.stderr, flush=True)  # fmt: skip
    frame = pd.DataFrame(rows)
    columns = ["picked", "compute", "goal_sd", "width", "expected_width", "error", "coverage", "interval_score"]
    mean = frame.groupby("rule")[columns].mean()
    by = frame.set_index(["rule", "start", "seed"])
    wins = {
        (q, rule): int((by[q].loc["design"] < by[q].loc[rule]).sum())
        for q in ("goal_sd", "width", "expected_width", "error", "interval_score")
        for rule in ("random", "grid")
    }
    lines = [
        f"Chinchilla's runs: start from {start_size} random runs below {START_C:.0e} FLOPs, add runs below "
        f"{HELD_C:.0e} up to {BUDGET:.0e} FLOPs, score on the {len(held)} runs above {HELD_C:.0e} (target: the "
        f"largest, N = {target[0]:.3g}, D = {target[1]:.3g}); {starts} starting subsets x {seeds} seeds.",
        "",
        "| rule | runs added | FLOPs added | goal sd (log loss at target) | median 90% width (new run) "
        "| median 90% width (expected loss) | median abs. error | coverage | interval score |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rule in RULES:
        m = mean.loc[rule]
        lines.append(
            f"| {rule} | {m['picked']:.1f} | {m['compute']:.2e} | {m['goal_sd']:.4f} | {m['width']:.2%} | "
            f"{m['expected_width']:.2%} | "
            f"{m['error']:.2%} | {m['coverage']:.0%} | {m['interval_score']:.2%} |"
        )
    n = starts * seeds
    lines += [
        "",
        "Replications where design is lower than random / than the grid: goal sd "
        f"{wins['goal_sd', 'random']}/{n} and {wins['goal_sd', 'grid']}/{n}; median band width "
        f"{wins['width', 'random']}/{n} and {wins['width', 'grid']}/{n}; expected-loss band width "
        f"{wins['expected_width', 'random']}/{n} and {wins['expected_width', 'grid']}/{n}; median error "
        f"{wins['error', 'random']}/{n} and {wins['error', 'grid']}/{n}; interval score "
        f"{wins['interval_score', 'random']}/{n} and {wins['interval_score', 'grid']}/{n}. design took "
        f"{frame['design_s'].mean():.1f} s per batch (mean); fits that warned: "
        f"{int(frame['warned'].sum())}/{len(frame)}.",
    ]
    return "\n".join(lines)


def section_speed() -> str:
    table = runs()
    t0 = time.perf_counter()
    result, warned = fit(table, 1)
    fit_secs = time.perf_counter() - t0
    cap = 10 * table["C"].max()
    secs = {}
    for method in ("linear", "reweight"):
        t0 = time.perf_counter()
        found = design(result, (70e9, 1.4e12), max_compute=cap, picks=5, method=method, seed=1)
        secs[method] = time.perf_counter() - t0
    t0 = time.perf_counter()
    bs.fit(table[["N", "D", "loss"]], law="chinchilla", seed=2, discrepancy=False, calibrate=False)
    refit = time.perf_counter() - t0
    n = len(found.candidates)
    return "\n".join(
        [
            f"design on a default fit of all {len(table)} runs (fit: {fit_secs:.0f} s, "
            f"{'warned' if warned else 'diagnostics passed'}): {n} grid candidates below {cap:.1e} FLOPs, "
            f"1,000 draws, a greedy batch of {len(found.batch)} (two greedy passes): **{secs['linear']:.1f} s** "
            f"(linear-Gaussian update, the default), **{secs['reweight']:.1f} s** (re-weighting, {OUTCOMES} "
            "simulated outcomes per candidate).",
            f"The re-fit recipe it replaces (one law-only re-fit per outcome per candidate, {refit:.1f} s each): "
            f"{n} x {OUTCOMES} x {refit:.1f} s = {n * OUTCOMES * refit / 3600:.0f} hours for the ranking alone.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=("retro", "speed"), default=["retro", "speed"])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--start", type=int, default=10, help="runs in a starting subset")
    parser.add_argument("--out", help="also write the tables as Markdown here")
    args = parser.parse_args(argv)
    parts = []
    for name in args.sections:
        print(f"== {name}", file=sys.stderr)
        text = section_retro(args.starts, args.seeds, args.start) if name == "retro" else section_speed()
        print(text + "\n", flush=True)
        parts.append(f"### {name}\n\n{text}\n")
    if args.out:
        Path(args.out).write_text("\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
