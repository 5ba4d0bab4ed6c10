"""benchmarks/reach_tasks.py builds the dev set for bands that reach: every task extrapolates in the
way its name says, from the shared data (skipped when it is not beside the checkout)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import SHARED_DATA, needs_shared

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import reach_tasks


@needs_shared
def test_the_tasks_extrapolate_as_named(tmp_path: Path) -> None:
    folders = reach_tasks.build(tmp_path, SHARED_DATA)
    assert len(folders) == 21
    for d in folders:
        fit, target = pd.read_csv(d / "fit.csv"), pd.read_csv(d / "target.csv")
        assert list(fit.columns) == ["N", "D", "loss"] and list(target.columns) == ["N", "D", "loss"]
        assert (fit.to_numpy() > 0).all() and (target.to_numpy() > 0).all()
        assert (d / "source.txt").read_text().strip()
        name = d.name.removeprefix(reach_tasks.PREFIX)
        if name.startswith(("big_few", "one_line")):
            assert target["N"].min() > 2 * fit["N"].max()  # larger models than any fitted
        if name.startswith("one_line"):
            tpp = pd.concat([fit, target])["D"] / pd.concat([fit, target])["N"]
            assert 3 <= len(fit) <= 5 and np.ptp(np.log(tpp)) < np.log(2)  # one tokens-per-parameter line
        if name.startswith("undertrained"):
            assert (target["D"] * target["N"]).min() > (fit["D"] * fit["N"]).max()  # beyond every fitted budget
