"""Slow checks of task fits on real runs (run in CI): emergence honesty on Pythia's final checkpoints."""

from __future__ import annotations

import pandas as pd
import pytest

import bayescale as bs
from bayescale.task_fit import NO_SIGNAL
from tests.conftest import SHARED_DATA, needs_shared

pytestmark = pytest.mark.slow


@needs_shared
def test_flat_tasks_keep_chance_in_their_band_and_a_rising_task_is_followed():
    """The 6 smallest Pythia models through compute, the 2 largest predicted: LAMBADA (rising from 0.19
    to 0.70) inside its bands; MMLU and LogiQA (at chance at every size) say they have no signal, and their
    bands hold chance without claiming a rise."""
    table = pd.read_csv(SHARED_DATA / "pythia_downstream.csv")
    table = table[(table["family"] == "pythia") & table["is_final"] & (table["num_fewshot"] == 0)]
    table = table[table["task"].isin(["lambada_openai", "mmlu", "logiqa"])]
    sizes = sorted(table["N"].unique())
    train, test = table[table["N"] <= sizes[5]], table[table["N"] > sizes[5]]
    fit = bs.fit_task(
        train[["task", "N", "D", "accuracy", "random_baseline"]], chance="random_baseline", task="task", seed=11
    )
    assert fit.through == "compute"
    pred = fit.predict(N=test["N"], D=test["D"], point_tasks=test["task"])
    pred["truth"] = test["accuracy"].to_numpy()
    inside = (pred["lower"] <= pred["truth"]) & (pred["truth"] <= pred["upper"])
    assert inside.all(), pred
    lambada, flat = pred[pred["task"] == "lambada_openai"], pred[pred["task"] != "lambada_openai"]
    assert (lambada["note"] == "").all() and (lambada["median"] > 0.5).all()
    assert (flat["note"] == NO_SIGNAL).all()
    assert ((flat["lower"] <= flat["chance"]) & (flat["chance"] <= flat["upper"])).all(), flat
    assert (flat["median"] - flat["chance"] < 0.05).all(), flat  # no claimed rise
