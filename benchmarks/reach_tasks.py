"""Extrapolation tasks that test how far the bands reach (issue: bands that know how far they reach).

Built from ../shared/data the way ../shared/tasks are (fit.csv / target.csv with N, D, loss; NOTE.txt;
source.txt), on ladders and evaluations neither those tasks nor benchmarks/dev_tasks.py use, each
mimicking a failure mode measured on held-out ladders:

- ``big_few``: larger models at few tokens per parameter, beyond the reach of the runs' own
  leave-future-out split -- Gadre et al.'s grid on four Paloma evaluations (fit N <= 411M at every
  multiplier, predict N >= 1.4B at 20 tokens per parameter), Farseer's pool (fit N <= 600M, predict
  N >= 1.9B: each size's three fewest-token runs), Chinchilla (fit N < 1B, predict N >= 4B at <= 20 tokens
  per parameter);
- ``one_line``: 4-5 runs on one tokens-per-parameter line predicting larger models on it -- Gadre et al.
  at 20 tokens per parameter (fit the four N <= 411M, predict 1.4B and 6.9B), Chinchilla's runs within
  15-27 tokens per parameter (fit the five smallest, predict those of N >= 2.5B);
- ``undertrained``: isoFLOP ladders whose lowest budgets are badly under-trained -- Porian et al.
  configurations not in dev_tasks (fit below the top two budgets, predict them).

Usage: python benchmarks/reach_tasks.py OUT_DIR   then   python ../shared/tools/eval_tasks.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: Prefix of every task name built here.
PREFIX = "reach_"
GADRE_EVALS = ("paloma_c4_en", "paloma_falcon-refinedweb", "paloma_ptb", "paloma_redpajama")
PORIAN_FAMILIES = (
    "porian2024_rw_base_shortwarmup_kaplan_standardN",
    "porian2024_owt2_base_longwarmup_kaplan_kaplanN",
    "porian2024_rw_base_shortwarmup_chinchilla_attentionN",
)


def _save(out: Path, name: str, fit: pd.DataFrame, target: pd.DataFrame, note: str, source: str) -> Path:
    if len(fit) < 3 or len(target) < 1:
        raise ValueError(f"task {name}: {len(fit)} runs to fit, {len(target)} targets")
    d = out / f"{PREFIX}{name}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "source.txt").write_text(source + "\n")
    fit[["N", "D", "loss"]].to_csv(d / "fit.csv", index=False)
    target[["N", "D", "loss"]].to_csv(d / "target.csv", index=False)
    (d / "NOTE.txt").write_text(f"{note}\nfit rows: {len(fit)}, target rows: {len(target)}\n")
    return d


def _chinchilla(data: Path) -> pd.DataFrame:
    c = pd.read_csv(data / "chinchilla_epoch.csv")
    out = pd.DataFrame({"N": c["Model Size"], "C": c["Training FLOP"], "loss": c["loss"]})
    out["D"] = out["C"] / (6.0 * out["N"])
    return out


def build(out: Path, data: Path = DATA) -> list[Path]:
    """Write the tasks under ``out``; return their folders."""
    tasks = []
    gadre = pd.read_csv(data / "gadre2024_overtraining.csv")
    for family in sorted(gadre["family"].unique()):
        short = family.split("_", 1)[1]
        for evaluation in GADRE_EVALS:
            s = gadre[(gadre["family"] == family) & (gadre["eval_name"] == evaluation)]
            big = s[(s["N"] >= 1.4e9) & np.isclose(s["chinchilla_multiplier"], 1.0)]
            note = f"Gadre et al. 2024 ({family}, {evaluation}); fit N <= 411M, predict N >= 1.4B at 20 tokens/param."
            tasks.append(_save(out, f"big_few_gadre_{short}_{evaluation[7:17]}", s[s["N"] <= 4.2e8], big, note,
                               "gadre2024"))  # fmt: skip
        s = gadre[(gadre["family"] == family) & (gadre["eval_name"] == "c4_val")]
        line = s[np.isclose(s["chinchilla_multiplier"], 1.0)]
        note = (
            f"Gadre et al. 2024 ({family}, C4 validation); the four runs N <= 411M at 20 tokens/param predict "
            "1.4B and 6.9B."
        )
        tasks.append(_save(out, f"one_line_gadre_{short}", line[line["N"] <= 4.2e8], line[line["N"] >= 1.4e9], note,
                           "gadre2024"))  # fmt: skip
    farseer = pd.concat(
        [pd.read_csv(data / "scalebench" / f"farseer_{split}.csv") for split in ("train", "test")], ignore_index=True
    )
    fit = farseer[farseer["N"] <= 6e8]
    big = farseer[(farseer["N"] >= 1.9e9) & (farseer["D"] <= 10 * farseer["N"])]
    target = big.sort_values("D").groupby("N").head(3)  # each size's three fewest-token runs
    note = "Farseer (Li et al. 2025) pool from ScaleBench; fit N <= 600M, predict N >= 1.9B at their fewest tokens."
    tasks.append(_save(out, "big_few_farseer", fit, target, note, "li2025farseer"))
    chin = _chinchilla(data)
    target = chin[(chin["N"] >= 4e9) & (chin["D"] <= 20 * chin["N"])]
    note = "Hoffmann et al. 2022 (Epoch extraction); fit N < 1B, predict N >= 4B at <= 20 tokens/param."
    tasks.append(_save(out, "big_few_chinchilla", chin[chin["N"] < 1e9], target, note, "hoffmann2022"))
    on_line = chin[(chin["D"] >= 15 * chin["N"]) & (chin["D"] <= 27 * chin["N"])].sort_values("N")
    note = "Hoffmann et al. 2022 runs at 15-27 tokens/param; fit the five smallest, predict those of N >= 2.5B."
    target = on_line[on_line["N"] >= 2.5e9]
    tasks.append(_save(out, "one_line_chinchilla", on_line.iloc[:5], target, note, "hoffmann2022"))
    porian = pd.read_csv(data / "porian2024_isoflop.csv")
    for family in PORIAN_FAMILIES:
        s = porian[porian["family"] == family]
        cut = np.sort(s["C"].unique())[-2] * 0.99
        note = (
            f"Porian et al. 2024 ({family}); lowest budgets badly under-trained; fit below the top two, predict them."
        )
        name = "undertrained_" + family.replace("porian2024_", "porian_")
        tasks.append(_save(out, name, s[s["C"] < cut], s[s["C"] >= cut], note, "porian2024"))
    return tasks


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for path in build(Path(sys.argv[1])):
        print(path, (path / "NOTE.txt").read_text().splitlines()[-1])
