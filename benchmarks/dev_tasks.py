"""Extra extrapolation tasks built from ../shared/data, to check that calibration generalises.

The five tasks in ../shared/tasks are few, and tuning on them alone would overfit. These
fifteen are built the same way from the same public datasets, on ladders the shared tasks
do not use: other evaluation sets of the Gadre et al. grid (fit N <= 411M, predict N >=
1.4B), other configurations of Porian et al. (fit below the top two budgets, predict
them), and Muennighoff et al.'s single-epoch runs (predict the two largest sizes).

Usage: python benchmarks/dev_tasks.py OUT_DIR   (writes OUT_DIR/<task>/fit.csv, target.csv, NOTE.txt, source.txt)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: Prefix of every task name built here.
PREFIX = "dev_"
GADRE_EVALS = ("openlm", "paloma_dolma_100_programing_languages", "val_de-en_100")
PORIAN_FAMILIES = (
    "porian2024_owt2_tuned_shortwarmup_const_standardN",
    "porian2024_rw_base_shortwarmup_chinchilla_standardN",
    "porian2024_owt2_base_longwarmup_kaplan_standardN",
    "porian2024_rw_tuned_shortwarmup_const_attentionN",
    "porian2024_owt2_base_shortwarmup_chinchilla_standardN",
)


def _save(out: Path, name: str, fit: pd.DataFrame, target: pd.DataFrame, note: str, source: str) -> Path:
    d = out / f"{PREFIX}{name}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "source.txt").write_text(source + "\n")  # the literature prior's id of the source: scored without it
    fit[["N", "D", "loss"]].to_csv(d / "fit.csv", index=False)
    target[["N", "D", "loss"]].to_csv(d / "target.csv", index=False)
    (d / "NOTE.txt").write_text(f"{note}\nfit rows: {len(fit)}, target rows: {len(target)}\n")
    return d


def build(out: Path, data: Path = DATA) -> list[Path]:
    """Write the tasks under ``out``; return their folders."""
    tasks = []
    gadre = pd.read_csv(data / "gadre2024_overtraining.csv")
    for family in sorted(gadre["family"].unique()):
        for evaluation in GADRE_EVALS:
            s = gadre[(gadre["family"] == family) & (gadre["eval_name"] == evaluation)]
            name = f"gadre_{family.split('_', 1)[1]}_{evaluation[:12]}"
            note = f"Gadre et al. 2024 ({family}, {evaluation}); fit N <= 411M, predict N >= 1.4B."
            tasks.append(_save(out, name, s[s["N"] <= 4.2e8], s[s["N"] >= 1.4e9], note, "gadre2024"))
    porian = pd.read_csv(data / "porian2024_isoflop.csv")
    for family in PORIAN_FAMILIES:
        s = porian[porian["family"] == family]
        cut = np.sort(s["C"].unique())[-2] * 0.99
        note = f"Porian et al. 2024 ({family}); fit below the top two budgets, predict them."
        fit, target = s[s["C"] < cut], s[s["C"] >= cut]
        tasks.append(_save(out, family.replace("porian2024_", "porian_"), fit, target, note, "porian2024"))
    m = pd.read_csv(data / "muennighoff2023_datablations.csv")
    s = m[m["epochs"] <= 1.01]
    cut = np.sort(s["N"].unique())[-2] * 0.99
    note = "Muennighoff et al. 2023 single-epoch runs; fit the smaller sizes, predict the two largest."
    fit, target = s[s["N"] < cut], s[s["N"] >= cut]
    tasks.append(_save(out, "muennighoff_1epoch_largestN", fit, target, note, "muennighoff2023"))
    return tasks


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for path in build(Path(sys.argv[1])):
        print(path)
