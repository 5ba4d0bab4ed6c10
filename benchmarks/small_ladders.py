"""Small ladders: does the literature prior give calibrated bands where the runs are few?

Builds extrapolation tasks of 4-6 runs from ../shared/data that mimic the ladders small
labs train -- a handful of sizes on one token budget, on one tokens-per-parameter line, on
the compute-optimal line of an isoFLOP sweep, and Gadre et al.'s 5-run fit set -- and
scores, on each task's largest runs, the default fit (discrepancy and calibration as the
command line runs them) under two prior sets, with the same seed:

- ``weak``: the law's data-scaled weakly informative priors;
- ``literature (LOSO)``: the literature prior re-learned *without the task's source*
  (leave one source out: bayescale.metaanalysis.population on the shipped per-ladder table,
  minus every ladder of that source), so no task is predicted with a prior that saw it.

Usage:
    python benchmarks/small_ladders.py [--out DIR] [--seed S] [--only NAME ...]
    python benchmarks/small_ladders.py --write-tasks DIR     (only write the task folders)

Prints one line per task and prior set, then per prior set the pooled per-target coverage
of the 90% bands and the mean interval score (relative to the truth), and the share of fits
that warned; writes DIR/small_ladders.csv.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LEVEL = 0.9
PORIAN = (
    "porian2024_rw_tuned_shortwarmup_const_standardN",
    "porian2024_owt2_tuned_shortwarmup_const_standardN",
    "porian2024_rw_base_shortwarmup_chinchilla_standardN",
)


@dataclass
class Task:
    """A small-ladder extrapolation task."""

    name: str
    source: str
    fit: pd.DataFrame
    target: pd.DataFrame
    note: str


def _spread(df: pd.DataFrame, k: int) -> pd.DataFrame:
    """``k`` runs of distinct N, spread evenly in log N over ``df`` (smallest and largest included)."""
    df = df.sort_values("N").drop_duplicates("N")
    idx = np.unique(np.round(np.linspace(0, len(df) - 1, min(k, len(df)))).astype(int))
    return df.iloc[idx]


def _one_budget(df: pd.DataFrame, k: int, n_target: int, band: float = 1.15) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The token budget (D within a factor ``band``) with most sizes: ``k`` smaller sizes to fit, the largest to
    predict."""
    lD = np.log(df["D"].to_numpy())
    best = max(np.unique(lD), key=lambda c: df[np.abs(lD - c) < np.log(band)]["N"].nunique())
    s = df[np.abs(lD - best) < np.log(band)].sort_values("N").drop_duplicates("N")
    return _spread(s.iloc[:-n_target], k), s.iloc[-n_target:]


def _line(df: pd.DataFrame, ratio: float, k: int, n_min_target: float, band: float = 1.6):
    """Runs within a factor ``band`` of ``ratio`` tokens per parameter: ``k`` small ones to fit, targets with N >=
    ``n_min_target``."""
    tpp = df["D"] / df["N"]
    s = df[(tpp > ratio / band) & (tpp < ratio * band)]
    return _spread(s[s["N"] < n_min_target / 3], k), s[s["N"] >= n_min_target]


def tasks(data: Path = DATA) -> list[Task]:
    """Every small-ladder task built from ``data``."""
    out = []
    c = pd.read_csv(data / "chinchilla_epoch.csv")
    chin = pd.DataFrame({"N": c["Model Size"], "D": c["Training FLOP"] / (6 * c["Model Size"]), "loss": c["loss"]})
    f, t = _one_budget(chin[chin["N"] <= 1.3e10], 6, 3)
    out.append(Task("chinchilla_one_budget", "hoffmann2022", f, t, "6 sizes on one token budget; the 3 largest"))
    f, t = _line(chin, 20.0, 5, 2e9)
    out.append(Task("chinchilla_line20", "hoffmann2022", f, t, "5 runs near 20 tokens/param; runs of N >= 2B there"))
    g = pd.read_csv(data / "gadre2024_overtraining.csv")
    g = g[g["eval_name"] == "c4_val"]
    for family, s in g.groupby("family", sort=True):
        short = family.split("_", 1)[1]
        note = "Gadre et al.'s 5-run fit set; their 1.4B M=640 (or 80/320) and 6.9B M=20 targets"
        out.append(
            Task(
                f"gadre_{short}_paper5", "gadre2024", s[s["paper_default_fit_set"]], s[s["paper_holdout_target"]], note
            )
        )
        line = s[np.isclose(s["tokens_per_param"], 20.0)]
        out.append(
            Task(
                f"gadre_{short}_line20", "gadre2024", line[line["N"] < 5e8], line[line["N"] > 1e9], "M=20 line: 4 sizes"
            )
        )
    p = pd.read_csv(data / "porian2024_isoflop.csv")
    for family in PORIAN:
        s = p[p["family"] == family][["N", "D", "C", "loss"]]
        short = family.replace("porian2024_", "")
        f, t = _one_budget(s, 6, 2)
        note = "6 sizes on one token budget; the 2 largest"
        out.append(Task(f"porian_{short}_one_budget", "porian2024", f, t, note))
        best = s.loc[s.groupby("C")["loss"].idxmin()].sort_values("C")
        out.append(
            Task(f"porian_{short}_opt_line", "porian2024", best.iloc[:5], best.iloc[-2:], "isoFLOP minima: 5 budgets")
        )
    m = pd.read_csv(data / "muennighoff2023_datablations.csv")
    m = m[m["epochs"] <= 1.01]
    f, t = _line(m, 20.0, 5, 1e9, band=2.5)
    out.append(Task("muennighoff_line20", "muennighoff2023", f, t, "single-epoch runs near 20 tokens/param"))
    return [x for x in out if len(x.fit) >= 3 and len(x.target) >= 1]


def write_tasks(out: Path, data: Path = DATA) -> list[Path]:
    """Write each task as OUT/small_<name>/fit.csv, target.csv, NOTE.txt (the ../shared/tasks format)."""
    paths = []
    for t in tasks(data):
        d = out / f"small_{t.name}"
        d.mkdir(parents=True, exist_ok=True)
        t.fit[["N", "D", "loss"]].to_csv(d / "fit.csv", index=False)
        t.target[["N", "D", "loss"]].to_csv(d / "target.csv", index=False)
        (d / "NOTE.txt").write_text(
            f"{t.note} (source {t.source})\nfit rows: {len(t.fit)}, target rows: {len(t.target)}\n"
        )
        paths.append(d)
    return paths


def loso_populations(out: Path, seed: int) -> dict[str, dict]:
    """The literature population re-learned without each source (cached in OUT/loso_populations.json)."""
    from bayescale.metaanalysis import population

    cache = out / "loso_populations.json"
    if cache.exists():
        return json.loads(cache.read_text())
    table = pd.read_csv(ROOT / "bayescale" / "priors_data" / "literature_ladders.csv")
    pops = {}
    for source in sorted(table["source"].unique()):
        print(f"learning the population without {source} ...", file=sys.stderr, flush=True)
        pops[source] = population(table[table["source"] != source], seed=seed)
    cache.write_text(json.dumps(pops, indent=1))
    return pops


def score(task: Task, prior: str, population: dict | None, seed: int) -> dict:
    """Fit ``task`` with the CLI's defaults under one prior set; metrics of its 90% bands."""
    import bayescale as bs
    from bayescale.backtesting import interval_metrics
    from bayescale.data import load_runs
    from bayescale.diagnostics import DiagnosticsWarning
    from bayescale.literature import priors_for

    runs = load_runs(task.fit[["N", "D", "loss"]].reset_index(drop=True))
    priors = priors_for("chinchilla", runs, population=population) if population is not None else None
    t0 = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DiagnosticsWarning)
        f = bs.fit(runs, priors=priors, prior_set="weak", seed=seed)
    warned = any(issubclass(w.category, DiagnosticsWarning) for w in caught)
    pred = f.predict(N=task.target["N"].to_numpy(), D=task.target["D"].to_numpy(), interval=LEVEL)
    truth = task.target["loss"].to_numpy()
    lo, med, hi = (pred[k].to_numpy() for k in ("lower", "median", "upper"))
    alpha = 1 - LEVEL
    isc = ((hi - lo) + 2 / alpha * np.clip(lo - truth, 0, None) + 2 / alpha * np.clip(truth - hi, 0, None)) / truth
    m = interval_metrics(truth, med, lo, hi, LEVEL)
    return {
        "task": task.name,
        "source": task.source,
        "prior": prior,
        "runs": len(task.fit),
        "targets": len(truth),
        "hits": int(((truth >= lo) & (truth <= hi)).sum()),
        "coverage": m["coverage"],
        "median_are": m["median_are"],
        "median_width": m["median_width"],
        "mean_interval_score": float(isc.mean()),
        "interval_scores": list(map(float, isc)),
        "warned": warned,
        "seconds": time.time() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("small_ladders_out"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--only", nargs="*", default=None, help="task names to run")
    ap.add_argument("--write-tasks", type=Path, default=None, help="only write the task folders here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.write_tasks is not None:
        for p in write_tasks(args.write_tasks):
            print(p)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    pops = loso_populations(args.out, args.seed)
    todo = [t for t in tasks() if args.only is None or t.name in args.only]
    rows = []
    for i, task in enumerate(todo, start=1):
        for prior, pop in (
            ("weak", None),
            (
                "literature (LOSO)",
                pops[task.source]["quantities"] if "quantities" in pops[task.source] else pops[task.source],
            ),
        ):
            r = score(task, prior, pop, args.seed)
            rows.append(r)
            print(
                f"[{i}/{len(todo)}] {task.name:45s} {prior:18s} runs {r['runs']} | covered {r['hits']}/{r['targets']}"
                f" | median ARE {100 * r['median_are']:.2f}% | width {100 * r['median_width']:.2f}%"
                f" | interval score {100 * r['mean_interval_score']:.2f}% | {'warned | ' if r['warned'] else ''}"
                f"{r['seconds']:.0f}s",
                flush=True,
            )
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "small_ladders.csv", index=False)
    print("\nPooled over tasks (90% bands): per-target coverage, mean interval score over targets, fits warned")
    for prior, part in table.groupby("prior", sort=False):
        scores = np.concatenate([np.asarray(s) for s in part["interval_scores"]])
        print(
            f"{prior:18s} tasks {len(part)} | targets covered {part['hits'].sum()}/{part['targets'].sum()} "
            f"({100 * part['hits'].sum() / part['targets'].sum():.1f}%) | mean interval score "
            f"{100 * scores.mean():.2f}% | median ARE {100 * part['median_are'].median():.2f}% "
            f"| fits warned {int(part['warned'].sum())}/{len(part)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
