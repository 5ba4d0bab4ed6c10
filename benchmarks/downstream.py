"""Downstream accuracy through the task chain (``bayescale fit-task``) on real ladders.

Sections (``--sections``), each printing a table:

- ``olmo``: Bhagia et al. 2024's OLMo ladder, the paper's fit set (16 runs, 190M-1.3B), the
  paper's 8 tasks: task_bpb -> accuracy (sigmoid, chance from ``random_baseline``), both fitted on
  the last-5-checkpoint means; predict 7B-4T and 13B-5T (truth ``accuracy_last5``). The absolute
  error of the median beside the paper's chained 13B predictions (../shared/data/README.md) and
  the per-target coverage of the 90% bands.
- ``gadre``: Gadre et al. 2024, each training set's ``paper_fit_set_error`` runs (6; the 5 of the
  loss fit and the 1.4B at M = 20): C4 loss -> 17-task average accuracy (exp link, chance from
  ``random_baseline``); predict the ``paper_holdout_target`` runs. Relative error of the predicted
  top-1 error (the paper: 3.64% and 0.05% on RedPajama) and whether the 90% band holds the truth.
- ``pythia``: Pythia (Pile, 0-shot, final checkpoints): the 6 smallest sizes through compute (no
  task loss for most tasks), predict the 2 largest for each of the 9 tasks; which tasks say they
  show no signal above chance; coverage over all tasks.
- ``gadre46``: leave-largest-out over Gadre et al.'s 46 tasks x 3 training sets: fit every run
  below 6.9B, predict the 6.9B run (C4 loss -> accuracy, sigmoid, chance from
  ``random_baseline``), beside the two-step point-fit recipe (step 1: the Hoffmann/Epoch
  least-squares fit of the C4 loss, benchmarks/recipe.py; step 2: the sigmoid by least squares on
  the runs; its band: step 2's residual spread around step 1's point prediction -- step 1's
  uncertainty dropped). Per-target coverage and mean relative interval score.

Usage: ``python benchmarks/downstream.py [--sections olmo gadre pythia gadre46] [--seed 1] [--out FILE.md]``
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import curve_fit
from scipy.stats import norm

import bayescale as bs
from bayescale.diagnostics import DiagnosticsWarning

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipe import fit_recipe, log_pred

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
INTERVAL = 0.9
#: The paper's chained 13B-5T predictions, repository figures/chained_main.csv (../shared/data/README.md), in points.
OLMO_PAPER_13B = {
    "mmlu_avg_test": 51.3,
    "hellaswag_val": 85.3,
    "piqa_val": 82.1,
    "socialiqa_val": 59.9,
    "csqa_val": 77.6,
    "openbookqa_test": 44.9,
    "arc_easy_test": 77.2,
    "arc_challenge_test": 52.7,
}


def interval_score(lower: np.ndarray, upper: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The interval score of the 90% bands (Gneiting and Raftery 2007), absolute units."""
    a = 1 - INTERVAL
    return (upper - lower) + 2 / a * np.clip(lower - truth, 0, None) + 2 / a * np.clip(truth - upper, 0, None)


def _quiet_fit(*args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DiagnosticsWarning)
        result = bs.fit_task(*args, **kwargs)
    warned = [str(w.message) for w in caught if issubclass(w.category, DiagnosticsWarning)]
    for message in warned:
        print(f"  warned: {message}", file=sys.stderr)
    return result, bool(warned)


def olmo(seed: int) -> pd.DataFrame:
    table = pd.read_csv(DATA / "bhagia2024_olmo_ladder_final.csv")
    table = table[table["in_paper_8tasks"]]
    fitset = table[table["paper_fit_set"]]
    fit, warned = _quiet_fit(
        fitset, metric="accuracy_last5", loss="task_bpb_last5", chance="random_baseline", task="task", seed=seed
    )
    targets = table[table["paper_target"]]
    pred = fit.predict(N=targets["N"], D=targets["D"], point_tasks=targets["task"])
    truth = targets["accuracy_last5"].to_numpy()
    out = pd.DataFrame(
        {
            "task": targets["task"].to_numpy(),
            "target": np.where(targets["N"].to_numpy() > 1e10, "13B-5T", "7B-4T"),
            "truth": 100 * truth,
            "median": 100 * pred["median"].to_numpy(),
            "lower": 100 * pred["lower"].to_numpy(),
            "upper": 100 * pred["upper"].to_numpy(),
        }
    )
    out["abs_error"] = (out["median"] - out["truth"]).abs()
    out["inside"] = (out["lower"] <= out["truth"]) & (out["truth"] <= out["upper"])
    paper = out["task"].map(OLMO_PAPER_13B)
    out["paper_abs_error_13B"] = np.where(out["target"] == "13B-5T", (paper - out["truth"]).abs(), np.nan)
    out["warned"] = warned
    return out


def gadre(seed: int) -> pd.DataFrame:
    table = pd.read_csv(DATA / "gadre2024_downstream.csv")
    table = table[table["task"] == "avg17_subset"]
    rows = []
    for family, runs in table.groupby("family", sort=False):
        fitset = runs[runs["paper_fit_set_error"]]
        fit, warned = _quiet_fit(
            fitset, metric="accuracy", loss="loss_c4_val", link="exp", chance="random_baseline", seed=seed
        )
        targets = runs[runs["paper_holdout_target"]]
        pred = fit.predict(N=targets["N"], D=targets["D"])
        for (_, target), (_, p) in zip(targets.iterrows(), pred.iterrows(), strict=True):
            err, lo, hi = 1 - p["median"], 1 - p["upper"], 1 - p["lower"]
            rows.append(
                {
                    "family": family,
                    "N": target["N"],
                    "tokens_per_param": target["D"] / target["N"],
                    "top1_error": target["top1_error"],
                    "predicted": err,
                    "lower": lo,
                    "upper": hi,
                    "rel_error_pct": 100 * abs(err - target["top1_error"]) / target["top1_error"],
                    "inside": lo <= target["top1_error"] <= hi,
                    "warned": warned,
                }
            )
    return pd.DataFrame(rows)


def pythia(seed: int) -> pd.DataFrame:
    table = pd.read_csv(DATA / "pythia_downstream.csv")
    table = table[(table["family"] == "pythia") & table["is_final"] & (table["num_fewshot"] == 0)]
    sizes = np.sort(table["N"].unique())
    fitset, targets = table[table["N"] <= sizes[5]], table[table["N"] > sizes[5]]
    fit, warned = _quiet_fit(
        fitset[["task", "N", "D", "accuracy", "random_baseline"]], metric="accuracy", chance="random_baseline",
        task="task", seed=seed,
    )  # fmt: skip
    pred = fit.predict(N=targets["N"], D=targets["D"], point_tasks=targets["task"])
    truth = targets["accuracy"].to_numpy()
    return pd.DataFrame(
        {
            "task": targets["task"].to_numpy(),
            "N": targets["N"].to_numpy(),
            "truth": truth,
            "median": pred["median"].to_numpy(),
            "lower": pred["lower"].to_numpy(),
            "upper": pred["upper"].to_numpy(),
            "chance": pred["chance"].to_numpy(),
            "inside": (pred["lower"].to_numpy() <= truth) & (truth <= pred["upper"].to_numpy()),
            "no_signal": pred["note"].to_numpy() != "",
            "warned": warned,
        }
    )


def _sigmoid(loss: np.ndarray, u0: float, k: float, h: float, floor: float) -> np.ndarray:
    return floor + (1 - floor) * h / (1 + np.exp(-k * (-loss - u0)))


def recipe_two_step(train: pd.DataFrame, target: pd.Series, theta: np.ndarray) -> pd.DataFrame:
    """The two-step point-fit recipe for one task: step 1's point loss, step 2's least-squares sigmoid."""
    log_N, log_D = np.log([float(target["N"])]), np.log([float(target["D"])])
    point_loss = float(np.exp(log_pred(theta, log_N, log_D)).ravel()[0])
    x, y, floor = train["loss_c4_val"].to_numpy(), train["accuracy"].to_numpy(), float(train["random_baseline"].iloc[0])
    try:
        params, _ = curve_fit(
            lambda L, u0, k, h: _sigmoid(L, u0, k, h, floor), x, y, p0=(-np.median(x), 2.0, 0.5),
            bounds=([-20, 1e-3, 0], [0, 100, 1]), maxfev=20000,
        )  # fmt: skip
    except RuntimeError:
        params = (-np.median(x), 2.0, max(float(np.mean(y)) - floor, 0.0) / (1 - floor))
    resid = y - _sigmoid(x, *params, floor)
    med = float(_sigmoid(np.array([point_loss]), *params, floor)[0])
    half = norm.ppf((1 + INTERVAL) / 2) * float(np.std(resid, ddof=min(3, len(y) - 1)))
    return pd.DataFrame({"median": [med], "lower": [med - half], "upper": [med + half]})


def gadre46(seed: int) -> pd.DataFrame:
    table = pd.read_csv(DATA / "gadre2024_downstream.csv")
    table = table[~table["task"].isin(["avg46", "avg17_subset"])]
    rows = []
    for family, runs in table.groupby("family", sort=False):
        largest = runs["N"].max()
        train, test = runs[runs["N"] < largest], runs[runs["N"] == largest]
        start = time.perf_counter()
        fit, warned = _quiet_fit(
            train[["task", "N", "D", "loss_c4_val", "accuracy", "random_baseline"]], metric="accuracy",
            loss="loss_c4_val", chance="random_baseline", task="task", seed=seed,
        )  # fmt: skip
        pred = fit.predict(N=test["N"], D=test["D"], point_tasks=test["task"])
        ladder = train.drop_duplicates("run_name")
        theta, _, _ = fit_recipe(ladder["N"].to_numpy(), ladder["D"].to_numpy(), ladder["loss_c4_val"].to_numpy(), 0)
        for (_, target), (_, p) in zip(test.iterrows(), pred.iterrows(), strict=True):
            base = recipe_two_step(train[train["task"] == target["task"]], target, theta).iloc[0]
            truth = float(target["accuracy"])
            for method, (lo, med, hi) in (
                ("bayescale", (p["lower"], p["median"], p["upper"])),
                ("two-step recipe", (base["lower"], base["median"], base["upper"])),
            ):
                rows.append(
                    {
                        "family": family,
                        "task": target["task"],
                        "method": method,
                        "truth": truth,
                        "median": med,
                        "inside": lo <= truth <= hi,
                        "interval_score": float(interval_score(np.array([lo]), np.array([hi]), np.array([truth]))[0]),
                        "abs_error": abs(med - truth),
                        "no_signal": p["note"] != "" if method == "bayescale" else False,
                        "warned": warned if method == "bayescale" else False,
                    }
                )
        print(f"gadre46: {family} done in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return pd.DataFrame(rows)


SECTIONS = {"olmo": olmo, "gadre": gadre, "pythia": pythia, "gadre46": gadre46}


def summarise(name: str, table: pd.DataFrame) -> str:
    """The section's table and its summary lines."""
    lines = [f"## {name}", table.round(4).to_string(index=False)]
    if name == "olmo":
        thirteen, seven = table[table["target"] == "13B-5T"], table[table["target"] == "7B-4T"]
        lines.append(
            f"coverage {int(table['inside'].sum())}/{len(table)} ({table['inside'].mean():.1%}); mean abs error "
            f"{table['abs_error'].mean():.2f} points (13B: {thirteen['abs_error'].mean():.2f}; the paper's 13B "
            f"{thirteen['paper_abs_error_13B'].mean():.2f}); 7B: {seven['abs_error'].mean():.2f}"
        )
    elif name == "gadre":
        lines.append(f"inside 90% bands {int(table['inside'].sum())}/{len(table)}")
    elif name == "pythia":
        lines.append(
            f"coverage {int(table['inside'].sum())}/{len(table)} ({table['inside'].mean():.1%}); no signal: "
            f"{', '.join(sorted(table.loc[table['no_signal'], 'task'].unique()))}"
        )
    elif name == "gadre46":
        by = table.groupby("method").agg(
            targets=("inside", "size"), coverage=("inside", "mean"), interval_score=("interval_score", "mean"),
            median_abs_error=("abs_error", "median"), no_signal=("no_signal", "sum"),
        )  # fmt: skip
        lines.append(by.round(4).to_string())
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="also write the tables to this file")
    parser.add_argument("--targets", help="also write every target's row (CSV) to this file prefix")
    args = parser.parse_args()
    logging.getLogger("bayescale").setLevel(logging.WARNING)
    text = []
    for name in args.sections:
        start = time.perf_counter()
        table = SECTIONS[name](args.seed)
        block = summarise(name, table) + f"({time.perf_counter() - start:.0f} s)\n"
        print(block, flush=True)
        text.append(block)
        if args.targets:
            table.to_csv(f"{args.targets}_{name}.csv", index=False)
    if args.out:
        Path(args.out).write_text("\n".join(text))


if __name__ == "__main__":
    main()
