"""Which runs look off: leave-one-out bands, the robust pass's weights and Pareto k, in summary and report."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from bayescale.cli import main
from bayescale.run_checks import COLUMNS, suspect_runs


def test_every_run_gets_its_leave_one_out_figures_and_the_listed_ones_a_reason(real_fit):
    table = suspect_runs(real_fit, every=True)
    assert len(table) == len(real_fit.runs) and list(table.columns) == ["run", "N", "D", *COLUMNS]
    assert table["loo_pit"].between(0, 1).all() and np.isfinite(table["pareto_k"]).all()
    outside = (table["loo_pit"] < 0.05) | (table["loo_pit"] > 0.95)
    assert (table.loc[outside, "reason"].str.contains("leave-one-out 90% band")).all()
    listed = suspect_runs(real_fit)
    assert set(listed["run"]) == set(table.loc[table["reason"] != "", "run"])
    # a correct law on its own ladder: about a tenth of the runs fall outside a 90% band by chance, not most
    assert outside.mean() < 0.3
    wider = suspect_runs(real_fit, level=0.99)
    assert len(wider) <= len(listed)


def test_summary_runs_prints_the_table(real_fit_path, capsys):
    assert main(["summary", str(real_fit_path), "--runs", "--all-runs", "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert {"run", "loo_pit", "pareto_k", "run_weight", "reason"} <= set(table.columns)
    assert main(["summary", str(real_fit_path), "--all-runs"]) == 2
    assert "--all-runs goes with --runs" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_shifted_on_purpose_is_listed_first_with_its_reasons(real_fit):
    """The demo ladder with one run's loss raised 6%: that run is the most off -- above its leave-one-out
    band and down-weighted by the robust pass; in the unshifted fit it is not listed at all."""
    import bayescale as bs
    from bayescale.datasets import load_demo

    df = load_demo().table.copy()
    row = 17
    df.loc[row, "loss"] *= 1.06
    fit = bs.fit(df, law="chinchilla", draws=500, tune=500, seed=7)
    listed = suspect_runs(fit)
    first = listed.iloc[0]
    assert first["run"] == row + 1 and first["loo_pit"] > 0.95 and first["run_weight"] < 0.5
    assert "higher than the others predict" in first["reason"] and "down-weighted" in first["reason"]
    assert row + 1 not in set(suspect_runs(real_fit)["run"])
