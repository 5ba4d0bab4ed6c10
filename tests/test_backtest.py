"""Backtests: split logic and metrics on hand-made cases with known answers; structure with a mocked sampler."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.backtesting import BacktestError, backtest, interval_metrics, pit_histogram
from bayescale.cli import main
from bayescale.diagnostics import DiagnosticsWarning
from bayescale.splits import holdout_masks

RUNS = bs.load_runs(
    pd.DataFrame(
        {
            "N": [1e7, 1e7, 1e8, 1e8, 1e9, 1e9],
            "D": [1e9, 1e10, 1e9, 1e10, 1e9, 1e10],
            "loss": [4.0, 3.6, 3.5, 3.1, 3.2, 2.8],
        }
    )
)  # C = 6 N D: 6e16, 6e17, 6e17, 6e18, 6e18, 6e19


def test_top_compute_split():
    [(name, mask)] = holdout_masks(RUNS, "top-compute:0.2")
    assert name == "top-compute:0.2"
    np.testing.assert_array_equal(mask, [False, False, False, False, False, True])
    [(_, mask)] = holdout_masks(RUNS, "top-compute:0.4")  # budget 6e18 held out whole
    np.testing.assert_array_equal(mask, [False, False, False, True, True, True])


def test_largest_n_and_conditions():
    np.testing.assert_array_equal(holdout_masks(RUNS, "largest-N:1")[0][1], [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(holdout_masks(RUNS, "largest-N:2")[0][1], [0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(holdout_masks(RUNS, "C>=6e18")[0][1], [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(holdout_masks(RUNS, "D > 1B")[0][1], [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(holdout_masks(RUNS, "N<1e8")[0][1], [1, 1, 0, 0, 0, 0])


def test_rolling_gives_one_split_per_cutoff():
    splits = holdout_masks(RUNS, "rolling")
    assert [n for n, _ in splits] == ["top-compute:0.1", "top-compute:0.2", "top-compute:0.3", "top-compute:0.4"]
    sizes = [m.sum() for _, m in splits]
    assert sizes == sorted(sizes)


@pytest.mark.parametrize("spec", ["top-compute:1.5", "top-compute:x", "largest-N:0", "Q>=3", "sometimes", "C>=lots"])
def test_bad_holdout(spec):
    with pytest.raises(BacktestError):
        holdout_masks(RUNS, spec)


def test_interval_metrics_known_answers():
    truth = np.array([1.0, 2.0, 4.0, 10.0])
    median = np.array([1.1, 2.0, 4.0, 8.0])
    lower = np.array([0.9, 1.5, 4.5, 9.0])
    upper = np.array([1.2, 2.5, 5.0, 11.0])
    m = interval_metrics(truth, median, lower, upper, level=0.9)
    assert m["coverage"] == 0.75  # the third truth lies below its interval
    np.testing.assert_allclose(m["median_are"], np.median([0.1, 0.0, 0.0, 0.2]))
    np.testing.assert_allclose(m["max_are"], 0.2)
    np.testing.assert_allclose(m["median_width"], np.median([0.3 / 1.1, 0.5, 0.125, 0.25]))
    # interval score / truth: widths 0.3, 1.0, 0.5 + 2/0.1 * 0.5 = 10.5, 2.0 -> 0.3, 0.5, 2.625, 0.2
    np.testing.assert_allclose(m["interval_score"], np.median([0.3, 0.5, 2.625, 0.2]))


def test_pit_histogram():
    np.testing.assert_array_equal(pit_histogram(np.array([0.0, 0.05, 0.5, 0.99, 1.0])), [2, 0, 0, 0, 0, 1, 0, 0, 0, 2])


def test_pit_is_uniform_for_draws_from_the_predictive(real_fit):
    """Losses drawn from the fit's own new-run predictive (law, discrepancy, noise and band scale: the
    draws predict summarises) give a uniform PIT: the PIT code is not biased."""
    rng = np.random.default_rng(3)
    n = 400
    N = np.geomspace(1e8, 1e10, n)
    D = 20 * N
    draws = real_fit.loss_draws(N=N, D=D)
    assert real_fit.band_scale != 1.0 and real_fit.discrepancy is not None  # the full predictive is exercised
    loss = draws[rng.integers(0, draws.shape[0], n), np.arange(n)]
    pit = real_fit.pit(N=N, D=D, loss=loss)
    # uniform: mean 0.5 (standard error 0.014 for 400 points), share below 0.25 is 0.25 (standard error 0.022)
    assert abs(pit.mean() - 0.5) < 4 * np.sqrt(1 / 12 / n)
    assert abs(np.mean(pit < 0.25) - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n)


def test_backtest_structure(mock_sampler, demo_runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        result = backtest(demo_runs, holdout="rolling", seed=1, discrepancy=False)
    assert set(result.metrics["split"]) == {
        "top-compute:0.1",
        "top-compute:0.2",
        "top-compute:0.3",
        "top-compute:0.4",
        "all",
    }
    assert list(result.metrics.columns) == [
        "split",
        "level",
        "n",
        "coverage",
        "median_are",
        "max_are",
        "median_width",
        "interval_score",
    ]
    assert {"pit", "lower_0.9", "upper_0.95"} <= set(result.predictions.columns)
    assert result.pit_histogram.sum() == len(result.predictions)


def test_backtest_refuses_too_few_runs(demo_runs):
    with pytest.raises(BacktestError, match=r"leaves .* runs to fit"):
        backtest(demo_runs, holdout="C>=1e17")


def test_cli_backtest(mock_sampler, runs_csv, demo_runs, capsys):
    path = runs_csv(demo_runs.table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        code = main(
            [
                "backtest",
                str(path),
                "--holdout",
                "top-compute:0.2",
                "--format",
                "csv",
                "--seed",
                "1",
                "--no-discrepancy",
            ]
        )
    out = capsys.readouterr().out
    assert code == 0
    table = pd.read_csv(io.StringIO(out))
    assert list(table["level"]) == [0.5, 0.8, 0.9, 0.95]
    assert main(["backtest", str(path), "--holdout", "sometimes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown hold-out 'sometimes'" in err[0]
