"""Model comparison and averaging: table structure and errors with a mocked sampler, exact mixture identities."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.averaging import AveragingError, _mixture_indices
from bayescale.cli import main
from bayescale.comparison import COLUMNS, ComparisonError, ComparisonWarning, stacking_weights
from bayescale.diagnostics import DiagnosticsWarning
from bayescale.splits import holdout_top_compute

# short fits for structure: a retry at target_accept 0.99 could not make 50 draws converge either
FAST = {"draws": 50, "tune": 50, "discrepancy": False, "calibrate": False, "seed": 3, "retry": False}


@pytest.fixture
def comparison(mock_sampler, demo_runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mocked draws: diagnostics and Pareto k are meaningless
        return bs.compare(demo_runs, ["kaplan", "chinchilla"], **FAST)


def test_table_has_one_row_per_law_and_the_documented_columns(comparison, demo_runs):
    t = comparison.table
    assert list(t.columns) == COLUMNS
    assert sorted(t["law"]) == ["chinchilla", "kaplan"]
    assert t["elpd_diff"].iloc[0] == 0.0 and (t["elpd_diff"] <= 0).all()
    assert (t["elpd_loo"].diff().dropna() <= 0).all()  # best LOO first
    assert t["weight"].sum() == pytest.approx(1.0) and t["weight_lfo"].sum() == pytest.approx(1.0)
    held = holdout_top_compute(demo_runs, 0.2).sum()
    assert (t["n_lfo"] == held).all()
    assert t["elpd_lfo_diff"].max() == 0.0
    assert np.isfinite(t[["a_median", "tokens_per_param_median"]].to_numpy()).all()
    assert (t["a_lower"] <= t["a_median"]).all() and (t["a_median"] <= t["a_upper"]).all()
    assert set(comparison.fits) == {"kaplan", "chinchilla"}


def test_lfo_columns_can_be_skipped(mock_sampler, demo_runs):
    with warnings.catch_warnings():
        # mocked draws (prior draws) are no converged posterior and give Pareto k > 0.7: both named, nothing else
        warnings.simplefilter("ignore", DiagnosticsWarning)
        warnings.simplefilter("ignore", ComparisonWarning)
        t = bs.compare(demo_runs, ["kaplan", "power"], holdout_top=None, **FAST).table
    assert t[["elpd_lfo", "weight_lfo"]].isna().all().all()
    assert t.set_index("law").loc["power:C", ["a_median", "tokens_per_param_median"]].isna().all()  # no allocation


@pytest.mark.parametrize(
    ("laws", "message"),
    [
        (["chinchilla"], "at least 2 laws"),
        (["chinchilla", "hoffmann"], "unknown law 'hoffmann'; known laws: chinchilla, kaplan"),
        (["chinchilla", "chinchilla"], "each law once"),
    ],
)
def test_bad_law_lists_fail_before_sampling(demo_runs, laws, message):
    with pytest.raises(ComparisonError, match=message):
        bs.compare(demo_runs, laws)


def test_laws_that_need_missing_inputs_are_refused():
    runs = bs.load_runs(pd.DataFrame({"C": [1e18, 1e19, 1e20, 1e21], "loss": [3.5, 3.2, 3.0, 2.9]}))
    with pytest.raises(ComparisonError, match="law 'chinchilla' needs N, D"):
        bs.compare(runs, ["power", "chinchilla"])


def test_a_holdout_that_leaves_too_few_runs_is_refused(demo_runs):
    with pytest.raises(ComparisonError, match=r"leaves \d+ runs; the laws need at least"):
        bs.compare(demo_runs.subset(np.arange(len(demo_runs)) < 12), ["kaplan", "chinchilla"], holdout_top=0.6)
    with pytest.raises(ComparisonError, match="between 0 and 1"):
        bs.compare(demo_runs, ["kaplan", "chinchilla"], holdout_top=1.5)


def test_stacking_on_lfo_scores_prefers_the_law_that_predicts_every_run_better():
    rng = np.random.default_rng(0)
    good = rng.normal(1.0, 0.1, 10)
    w = stacking_weights({"a": good, "b": good - 3.0})
    assert w["a"] > 0.99
    w = stacking_weights({"a": good, "b": good.copy()})
    assert w["a"] == pytest.approx(0.5, abs=0.01)


def test_mixture_takes_draws_in_proportion_and_all_of_a_fit_with_weight_one():
    idx = _mixture_indices({"a": 100, "b": 100}, {"a": 0.25, "b": 0.75}, seed=1)
    assert len(idx["a"]) == 25 and len(idx["b"]) == 75 and len(set(idx["b"])) == 75
    idx = _mixture_indices({"a": 100, "b": 40}, {"a": 1.0, "b": 0.0}, seed=1)
    assert list(idx) == ["a"]
    np.testing.assert_array_equal(idx["a"], np.arange(100))


def test_average_with_one_weight_equals_the_single_fit(real_fit, mock_sampler):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        other = bs.fit(real_fit.runs, law="kaplan", **FAST)
    avg = bs.average({"chinchilla": real_fit, "kaplan": other}, weights={"chinchilla": 1.0, "kaplan": 0.0})
    points = {"N": [1e9, 7e10], "D": [2e10, 1.4e12]}
    pd.testing.assert_frame_equal(avg.predict(**points), real_fit.predict(**points))
    pd.testing.assert_frame_equal(avg.optimal([1e22, 1e23]), real_fit.optimal([1e22, 1e23]))


def test_average_mixes_the_fits(real_fit, mock_sampler):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        other = bs.fit(real_fit.runs, law="kaplan", **FAST)
    fits = {"chinchilla": real_fit, "kaplan": other}
    avg = bs.average(fits, weights={"chinchilla": 1.0, "kaplan": 1.0})  # normalised to 0.5 each
    assert avg.weights == {"chinchilla": 0.5, "kaplan": 0.5}
    point = {"N": 7e10, "D": 1.4e12}
    med = [f.predict(**point)["median"].iloc[0] for f in fits.values()]
    # a mixture's median lies between its components'; each component contributes half its
    # draws here, whose median carries Monte Carlo error (~0.05% of the loss): allow 0.2%
    assert min(med) * (1 - 2e-3) <= avg.predict(**point)["median"].iloc[0] <= max(med) * (1 + 2e-3)
    assert 0.0 <= avg.probability("tokens_per_param", above=20) <= 1.0


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"chinchilla": 1, "gpt": 1}, "unknown fits gpt"),
        ({"chinchilla": 0}, "not all zero"),
        ("bma", "unknown weights"),
    ],
)
def test_bad_weights(real_fit, weights, message):
    with pytest.raises(AveragingError, match=message):
        bs.average({"chinchilla": real_fit, "copy": real_fit}, weights=weights)


def test_compare_refuses_fits_on_different_runs(real_fit, mock_sampler):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        other = bs.fit(real_fit.runs.subset(np.arange(len(real_fit.runs)) > 0), law="kaplan", **FAST)
    with pytest.raises(ComparisonError, match="other runs"):
        bs.compare({"chinchilla": real_fit, "kaplan": other})


def test_cli_compare_csv(mock_sampler, demo_runs, tmp_path, capsys):
    path = tmp_path / "runs.csv"
    demo_runs.table[["N", "D", "loss"]].to_csv(path, index=False)
    fast = ["--draws", "50", "--tune", "50", "--no-discrepancy", "--no-calibrate", "--no-retry", "--seed", "1"]
    code = main(["compare", str(path), "--laws", "kaplan,chinchilla", "--format", "csv", *fast])
    assert code == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(table.columns) == COLUMNS and len(table) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--laws", "chinchilla"], "at least 2 laws"),
        (["--laws", "kaplan,gpt4"], "unknown law 'gpt4'; known laws:"),
        (["--holdout-top", "0.97"], "use a smaller --holdout-top"),
    ],
)
def test_cli_compare_bad_input_exits_2_with_one_line(demo_runs, tmp_path, capsys, args, message):
    path = tmp_path / "runs.csv"
    demo_runs.table[["N", "D", "loss"]].to_csv(path, index=False)
    assert main(["compare", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_compare_bad_share_is_an_argument_error(demo_runs, tmp_path, capsys):
    path = tmp_path / "runs.csv"
    demo_runs.table[["N", "D", "loss"]].to_csv(path, index=False)
    with pytest.raises(SystemExit) as ex:
        main(["compare", str(path), "--holdout-top", "1.2"])
    assert ex.value.code == 2 and "share from 0 to below 1" in capsys.readouterr().err
