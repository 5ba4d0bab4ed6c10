"""Loading runs: suffixes, column mapping, derived inputs, and every bad-input case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayescale.data import load_runs, parse_number
from bayescale.errors import RunsError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("70M", 70e6),
        ("1.4T", 1.4e12),
        ("7B", 7e9),
        ("7b", 7e9),
        ("3e21", 3e21),
        ("1,000", 1000.0),
        ("10K", 1e4),
        (" 2.5 G ", 2.5e9),
        ("1P", 1e15),
        (42, 42.0),
        (".5M", 5e5),
    ],
)
def test_parse_number_accepts_suffixes(text, value):
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["abc", "7X", "1.2.3", "M"])
def test_parse_number_rejects_text(text):
    with pytest.raises(ValueError, match="not a number"):
        parse_number(text)


def test_load_csv_with_suffixes_derives_compute(runs_csv):
    path = runs_csv("N,D,loss\n70M,1.4B,3.5\n160M,3.2B,3.1\n")
    runs = load_runs(path)
    assert list(runs.table.columns) == ["N", "D", "C", "loss"]
    np.testing.assert_allclose(runs.values("C"), 6 * np.array([70e6 * 1.4e9, 160e6 * 3.2e9]))


def test_any_two_inputs_give_the_third():
    base = pd.DataFrame({"N": [1e8, 2e8], "D": [2e9, 4e9], "loss": [3.0, 2.9]})
    base["C"] = 6 * base.N * base.D
    for drop in ("N", "D", "C"):
        runs = load_runs(base.drop(columns=drop))
        np.testing.assert_allclose(runs.table[["N", "D", "C"]].to_numpy(), base[["N", "D", "C"]].to_numpy())


def test_custom_k_is_used():
    runs = load_runs(pd.DataFrame({"N": [1e8, 2e8], "C": [8e17, 1.6e18], "loss": [3.0, 2.9]}), k=8.0)
    np.testing.assert_allclose(runs.values("D"), [1e9, 1e9])


def test_column_mapping_and_aliases(runs_csv):
    path = runs_csv("Model Size,Training FLOP,my loss,notes\n1e8,1e18,3.2,a\n2e8,4e18,3.0,b\n")
    runs = load_runs(path, loss_col="my loss")
    assert runs.has("N") and runs.has("C") and runs.has("D")
    assert runs.columns["loss"] == "my loss"


def test_parquet(tmp_path):
    df = pd.DataFrame({"N": [1e8, 2e8], "D": [2e9, 4e9], "loss": [3.0, 2.9]})
    df.to_parquet(tmp_path / "runs.parquet")
    assert len(load_runs(tmp_path / "runs.parquet")) == 2


def test_only_compute_is_enough():
    runs = load_runs(pd.DataFrame({"C": [1e18, 1e19], "loss": [3.0, 2.7]}))
    assert runs.inputs == ("C",)


# --- bad input: one specific line each --------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(RunsError, match=r"'.*nope.csv' not found"):
        load_runs(tmp_path / "nope.csv")


def test_empty_file(runs_csv):
    with pytest.raises(RunsError, match="is empty"):
        load_runs(runs_csv(""))


def test_header_only(runs_csv):
    with pytest.raises(RunsError, match=r"no runs .header only"):
        load_runs(runs_csv("N,D,loss\n"))


def test_missing_loss_column_lists_columns(runs_csv):
    with pytest.raises(RunsError, match=r"no loss column .*columns found: 'N', 'D', 'val'.*--loss-col"):
        load_runs(runs_csv("N,D,val\n1e8,1e9,3\n"))


def test_named_column_absent(runs_csv):
    with pytest.raises(RunsError, match=r"no column 'params' .*for N"):
        load_runs(runs_csv("N,D,loss\n1e8,1e9,3\n"), n_col="params")


def test_text_in_numeric_column_names_row(runs_csv):
    with pytest.raises(RunsError, match=r"column 'D', row 2: 'lots' is not a number"):
        load_runs(runs_csv("N,D,loss\n1e8,1e9,3\n2e8,lots,2.9\n"))


@pytest.mark.parametrize("bad", ["nan", "inf", ""])
def test_nan_or_infinite(runs_csv, bad):
    with pytest.raises(RunsError, match=r"column 'loss', row 2 .*missing, NaN or infinite"):
        load_runs(runs_csv(f"N,D,loss\n1e8,1e9,3\n2e8,2e9,{bad}\n"))


@pytest.mark.parametrize(("col", "row"), [("N", "0,1e9,3"), ("D", "1e8,-5,3"), ("loss", "1e8,1e9,-1")])
def test_non_positive(runs_csv, col, row):
    with pytest.raises(RunsError, match=rf"column '{col}', row 2 is .*; {col} must be positive"):
        load_runs(runs_csv(f"N,D,loss\n1e8,1e9,3\n{row}\n"))


def test_perplexity_rejected(runs_csv):
    with pytest.raises(RunsError, match="look like perplexities"):
        load_runs(runs_csv("N,D,loss\n1e8,1e9,33\n2e8,2e9,25\n"))


def test_no_scale_column(runs_csv):
    with pytest.raises(RunsError, match=r"no N .parameters., D .tokens. or C"):
        load_runs(runs_csv("size,loss\n1,3\n"))


def test_dataframe_rows_are_zero_based():
    with pytest.raises(RunsError, match="row 1"):
        load_runs(pd.DataFrame({"N": [1e8, -1], "D": [1e9, 1e9], "loss": [3, 3]}))
