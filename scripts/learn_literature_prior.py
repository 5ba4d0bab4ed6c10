"""Regenerate the literature prior shipped in bayescale/priors_data/ from the published ladders.

Every LM-loss ladder in ../shared/data (Hoffmann et al. 2022 via Epoch AI; Gadre et al. 2024,
3 training sets x 8 evaluation sets; Porian et al. 2024, 15 configurations; Muennighoff et al.
2023, single-epoch runs) is fitted alone with the weak default priors (the law's stage only);
its transferable quantities (bayescale.metaanalysis.ladder_quantities) go to
``literature_ladders.csv``; the hierarchical population over them
(bayescale.metaanalysis.population) goes to ``literature.json``, with the population re-learned
without each source (``without``: what ``--literature-exclude SOURCE`` uses). Each population is
re-sampled with more draws until its R-hat and ESS pass the package's own limits.

Usage:
    python scripts/learn_literature_prior.py [--data DIR] [--out DIR] [--quick] [--seed S]

``--quick`` fits two ladders per source with short chains (what CI runs, into a temporary
folder); the shipped files come from a full run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "bayescale" / "priors_data"
#: Version of the shipped prior; bump when the ladders, the quantities or the model change.
VERSION = 1


def ladders(data: Path) -> list[tuple[str, str, pd.DataFrame]]:
    """(source, ladder, runs with N, D, loss) for every LM-loss ladder in ``data``."""
    out = []
    c = pd.read_csv(data / "chinchilla_epoch.csv")
    chin = pd.DataFrame({"N": c["Model Size"], "D": c["Training FLOP"] / (6 * c["Model Size"]), "loss": c["loss"]})
    out.append(("hoffmann2022", "chinchilla_epoch", chin))
    g = pd.read_csv(data / "gadre2024_overtraining.csv")
    for (family, evaluation), s in g.groupby(["family", "eval_name"], sort=True):
        out.append(("gadre2024", f"{family.split('_', 1)[1]}/{evaluation}", s[["N", "D", "loss"]]))
    p = pd.read_csv(data / "porian2024_isoflop.csv")
    for family, s in p.groupby("family", sort=True):
        out.append(("porian2024", family.replace("porian2024_", ""), s[["N", "D", "loss"]]))
    m = pd.read_csv(data / "muennighoff2023_datablations.csv")
    out.append(("muennighoff2023", "c4_1epoch", m[m["epochs"] <= 1.01][["N", "D", "loss"]]))
    return [(src, name, df.reset_index(drop=True)) for src, name, df in out]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--quick", action="store_true", help="two ladders per source, short chains")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument(
        "--from-table",
        type=Path,
        default=None,
        help="skip the per-ladder fits: re-learn the population from a literature_ladders.csv",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)

    import bayescale as bs
    from bayescale.diagnostics import DiagnosticsWarning
    from bayescale.metaanalysis import ladder_quantities

    if args.from_table is not None:
        table = pd.read_csv(args.from_table)
        return _write(args, table, time.time())
    todo = ladders(args.data)
    if args.quick:
        seen: dict[str, int] = {}
        todo = [t for t in todo if seen.setdefault(t[0], 0) < 2 and not seen.__setitem__(t[0], seen[t[0]] + 1)]
    draws = 300 if args.quick else 1000
    rows = []
    t0 = time.time()
    for i, (source, name, df) in enumerate(todo):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DiagnosticsWarning)
            f = bs.fit(
                df,
                law="chinchilla",
                prior_set="weak",
                draws=draws,
                tune=draws,
                seed=args.seed + i,
                discrepancy=False,
                calibrate=False,
            )
        post = {n: f.draws(n).reshape(-1) for n in ("E", "alpha", "beta", "sigma")}
        d = f.diagnostics
        runs = f.runs
        for row in ladder_quantities(post, runs.values("N"), runs.values("C"), runs.loss):
            rows.append({"source": source, "ladder": name, "runs": len(df), **row})
        print(
            f"[{i + 1}/{len(todo)}] {source} {name}: {len(df)} runs, alpha {np.median(post['alpha']):.3f} "
            f"beta {np.median(post['beta']):.3f} E/Lmin {np.median(post['E']) / runs.loss.min():.3f} "
            f"sigma {np.median(post['sigma']):.4f} (R-hat {d.max_rhat:.3f}) {time.time() - t0:.0f}s",
            file=sys.stderr,
        )
    table = pd.DataFrame(rows)
    return _write(args, table, t0)


def checked_population(table: pd.DataFrame, seed: int, quick: bool, label: str) -> dict:
    """The population of ``table``, re-sampled with twice the draws (up to twice) until every
    quantity's R-hat and bulk ESS pass the package's own limits (diagnostics.MAX_RHAT, 100 per chain)."""
    from bayescale.diagnostics import MAX_RHAT, MIN_ESS_PER_CHAIN
    from bayescale.metaanalysis import population

    draws, tune = (1000, 1000) if quick else (4000, 2000)
    for attempt in range(3):
        pop = population(table, seed=seed + attempt, draws=draws, tune=tune)
        worst_rhat = max(q["max_rhat"] for q in pop.values())
        worst_ess = min(q["min_ess_bulk"] for q in pop.values())
        print(f"{label}: {draws} draws, max R-hat {worst_rhat:.4f}, min bulk ESS {worst_ess:.0f}", file=sys.stderr)
        if worst_rhat <= MAX_RHAT and worst_ess >= 4 * MIN_ESS_PER_CHAIN:
            return pop
        draws, tune = 2 * draws, 2 * tune
    raise SystemExit(f"{label}: the population's diagnostics still fail after {attempt + 1} attempts")


def _write(args: argparse.Namespace, table: pd.DataFrame, t0: float) -> int:
    """Learn the population (and one without each source), write it and the ladders table; print it."""
    pop = checked_population(table, args.seed, args.quick, "all sources")
    without = {}
    # --quick (CI): the leave-one-out population of the first source only; a full run does every source
    for source in sorted(table["source"].unique())[: 1 if args.quick else None]:
        rest = table[table["source"] != source]
        without[source] = {
            "sources": sorted(rest["source"].unique()),
            "ladders": int(rest.drop_duplicates(["source", "ladder"]).shape[0]),
            "quantities": checked_population(rest, args.seed, args.quick, f"without {source}"),
        }
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "literature_ladders.csv", index=False, float_format="%.6g")
    doc = {
        "version": VERSION,
        "law": "chinchilla",
        "created_by": "scripts/learn_literature_prior.py" + (" --quick" if args.quick else ""),
        "seed": args.seed,
        "sources": sorted(table["source"].unique()),
        "ladders": int(table.drop_duplicates(["source", "ladder"]).shape[0]),
        "quantities": pop,
        # leave-one-source-out populations: the prior set "auto without SOURCE" (--literature-exclude)
        "without": without,
    }
    (args.out / "literature.json").write_text(json.dumps(doc, indent=2) + "\n")
    for q, s in pop.items():
        print(f"{q}: predictive mean {s['mean']:.3f} sd {s['sd']:.3f} (R-hat {s['max_rhat']:.3f})")
    print(f"wrote {args.out / 'literature.json'} and literature_ladders.csv ({time.time() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
