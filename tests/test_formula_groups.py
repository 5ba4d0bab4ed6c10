"""Formula laws: clamped and wide-bounded parameters, groups fitted separately, and their answers."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from bayescale.cli import main
from bayescale.diagnostics import DiagnosticsWarning
from bayescale.errors import FormulaError, RunsError
from bayescale.laws.formula import FormulaLaw
from bayescale.laws.formula.evaluate import evaluate
from bayescale.laws.formula.lawfile import by_group

CLAMPED = "max(A, 1e-6) * N^(-alpha) * D^(-beta) + c0"
BOUNDS = {"A": [-1e4, 1e4], "alpha": [-5, 5], "beta": [-5, 5], "c0": [-100, 100]}


# --- clamps and wide bounds ------------------------------------------------------------------
def test_a_clamped_amplitude_is_sampled_above_its_floor_and_gives_the_formula_s_values():
    """``max(A, 1e-6)`` with A bounded in [-1e4, 1e4]: the model samples A above 1e-6 (centred), and the law's
    values equal the formula as written wherever A is above the floor."""
    law = FormulaLaw(CLAMPED, ["N", "D", "loss"], bounds=BOUNDS)
    assert "max" not in law.model_tree.text() and "max" in law.tree.text()
    assert law.limits["A"] == (1e-6, 1e4) and law.bounds["A"] == (-1e4, 1e4)  # the saved spec is the user's
    assert law.params[0] == "log_A_ref" and "at or above its clamp's floor 1e-06" in law.describe()
    coords = {"N": np.log(np.array([1e8, 1e9])), "D": np.log(np.array([1e10, 1e11]))}
    p = {"A": 300.0, "alpha": 0.3, "beta": 0.2, "c0": 1.7}
    as_written = evaluate(law.tree, p, coords, {"N", "D"}, np)
    ref = {"N": 18.0, "D": 22.0}
    sampled = {"log_A_ref": np.log(300.0) - 0.3 * ref["N"] - 0.2 * ref["D"], "alpha": 0.3, "beta": 0.2, "c0": 1.7}
    np.testing.assert_allclose(law.value(sampled, coords, ref, np), as_written, rtol=1e-12)
    assert FormulaLaw.from_spec(law.spec()).model_tree == law.model_tree
    # a centred amplitude sampled below the floor is held at it, as max(A, 1e-6) holds it
    low = sampled | {"log_A_ref": np.log(1e-9) - 0.3 * ref["N"] - 0.2 * ref["D"]}
    p_low = p | {"A": 1e-9}
    np.testing.assert_allclose(law.value(low, coords, ref, np), evaluate(law.tree, p_low, coords, {"N", "D"}, np))
    # a fit saved before the rewrites (its spec has no "rewrite") rebuilds the law it sampled
    old = {k: v for k, v in law.spec().items() if k != "rewrite"}
    before = FormulaLaw.from_spec(old)
    assert before.params[0] == "A" and "max" in before.model_tree.text() and not before.log_scaled


def test_a_clamp_stays_where_removing_it_would_change_the_law():
    """An unbounded clamped coefficient (no amplitude: its prior allows values below the floor) keeps its clamp;
    so does one whose bounds lie below the floor, and one given a prior by the user."""
    assert "max" in FormulaLaw("L0 + max(k, 0.1) * log(N)", ["N", "loss"]).model_tree.text()
    law = FormulaLaw("L0 + max(k, 0.1) * log(N)", ["N", "loss"], bounds={"k": [-1, 0.05]})
    assert "max" in law.model_tree.text()
    law = FormulaLaw(CLAMPED, ["N", "D", "loss"], bounds=BOUNDS, priors={"A": "Normal(0, 1)"})
    assert "max" in law.model_tree.text() and law.params[0] == "A"
    # a parameter used both clamped and bare is not rewritten either
    assert "max" in FormulaLaw("max(a, 1e-3) * N^(-b) + a", ["N", "loss"]).model_tree.text()


def test_a_positive_parameter_bounded_across_decades_is_sampled_as_its_log(demo_runs):
    """Bounds [1e-6, 1e4] as a uniform prior put 99.99% of the mass above 1: sampled as log a, uniform in
    [log 1e-6, log 1e4]; narrow or signed bounds stay uniform on the value."""
    text = "L0 + exp(log(a) - alpha * log(N))"
    law = FormulaLaw(text, ["N", "loss"], bounds={"a": [1e-6, 1e4], "alpha": [0, 2], "L0": [0, 10]})
    assert law.params == ("L0", "log_a", "alpha") and law.log_scaled == {"a"}
    from bayescale.data import Runs

    runs = Runs(table=pd.DataFrame({"N": [1e8, 1e9], "loss": [3.0, 2.5]}), names=("N",))
    priors = law.default_priors(runs)
    assert priors["log_a"].dist == "Uniform"
    np.testing.assert_allclose([priors["log_a"].kwargs["lower"], priors["log_a"].kwargs["upper"]],
                               np.log([1e-6, 1e4]))  # fmt: skip
    assert priors["alpha"].kwargs == {"lower": 0.0, "upper": 2.0}
    assert law.natural({"L0": 1.0, "log_a": np.log(5.0), "alpha": 0.1}, {})["a"] == pytest.approx(5.0)


# --- groups --------------------------------------------------------------------------------------
def _grouped(n_per=10, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for g, (A, a, E) in {"small": (5.0, 0.3, 1.5), "large": (8.0, 0.35, 1.2)}.items():
        for P in np.geomspace(1e7, 1e10, n_per):
            S = float(rng.choice([1, 2, 4, 8]))
            y = E + A * (P * (1 + 0.3 * np.log(S)) / 1e8) ** (-a)
            rows.append({"grp": g, "P": P, "S": S, "loss": y * np.exp(rng.normal(0, 0.005))})
    return pd.DataFrame(rows)


LAW = "E + A*(P*(1 + k*log(S))/1e8)^(-alpha)"


def test_by_group_gives_each_group_its_law_and_runs():
    groups = by_group(_grouped(), "grp", law=LAW, cost="P*S")
    assert list(groups) == ["small", "large"]
    for law, runs in groups.values():
        assert law.inputs == ("P", "S") and len(runs) == 10 and runs.cost() is not None


def test_by_group_refuses_an_option_from_options_does_not_take():
    with pytest.raises(TypeError, match=r"unknown formula-law option.*: inptus"):
        by_group(_grouped(), "grp", law=LAW, inptus={"P": "params"})


@pytest.mark.parametrize(
    ("change", "column", "message"),
    [
        (lambda df: df, "group", "no such column"),
        (lambda df: df.assign(grp=df["grp"].where(df.index != 3)), "grp", "row 3 is empty"),
        (lambda df: df.assign(grp=df["grp"].where(df.index != 4, "  ")), "grp", "row 4 is empty"),  # a CSV's blank
        (lambda df: df.assign(grp=np.where(df.index < 2, "tiny", df["grp"])), "grp", "group 'tiny' of 'grp' has 2"),
    ],
)
def test_by_group_errors_name_the_column_the_row_or_the_group(change, column, message):
    with pytest.raises(RunsError, match=message):
        by_group(change(_grouped()), column, law=LAW)


def test_group_labels_read_alike_from_csv_and_parquet():
    """A blank cell is missing; 1.0 (a float column) and "1" name one group; spaces around a name do not count."""
    from bayescale.laws.formula.lawfile import group_labels

    assert list(group_labels(pd.Series([1.0, "1", " a ", "", None, float("nan"), 2.5]))) == [
        "1", "1", "a", "", "", "", "2.5"
    ]  # fmt: skip


def test_by_group_refuses_a_formula_that_uses_the_group_column_and_names_a_failing_group():
    df = _grouped()
    df["level"] = np.where(df["grp"] == "small", 1.0, 2.0)
    with pytest.raises(FormulaError, match="group column 'level'"):
        by_group(df, "level", law="E + A*P^(-alpha)*level")
    df.loc[df["grp"] == "small", "P"] = 1e8  # one P in a group: that group cannot fit the law
    df.loc[df["grp"] == "small", "S"] = 2.0
    with pytest.raises(RunsError, match="group 'small'"):
        by_group(df, "grp", law=LAW)


@pytest.fixture
def grouped_files(tmp_path):
    df = _grouped()
    fit_rows = df[df["P"] < 3e9]
    points = df[df["P"] >= 3e9].drop(columns="loss").iloc[::-1]  # the groups interleaved, in another order
    fit_rows.to_csv(tmp_path / "fit.csv", index=False)
    points.to_csv(tmp_path / "points.csv", index=False)
    return tmp_path


def test_cli_fits_each_group_of_a_formula_law_separately_and_predicts_each_row_by_its_group(
    mock_sampler, grouped_files, capsys
):
    """fit --law FORMULA --group COLUMN: one fit per group in one file; predict --points with the group
    column answers each row with its own group's fit, in the file's order; --group-value asks one group at
    every point; summary and report cover every group; an unknown group is a one-line error."""
    from bayescale.loading import load
    from bayescale.separate import SeparateFit

    d = grouped_files
    out = d / "f.nc"
    argv = ["fit", str(d / "fit.csv"), "--law", LAW, "--group", "grp", "--cost", "P*S", "--out", str(out),
            "--draws", "100", "--no-discrepancy", "--no-calibrate", "--seed", "1"]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)  # mocked draws are not a converged posterior
        assert main(argv) == 0
    err = capsys.readouterr().err
    assert "groups by grp, each fitted separately: small, large" in err and "group 2/2: grp = large" in err
    fit = load(out)
    assert isinstance(fit, SeparateFit) and fit.names == ["small", "large"]
    assert len(fit.group("small").runs) == len(fit.group("large").runs) == 8
    from bayescale.errors import GroupError

    with pytest.raises(GroupError, match="no population"):
        _ = fit.population
    points = pd.read_csv(d / "points.csv")
    assert main(["predict", str(out), "--points", str(d / "points.csv"), "--format", "csv"]) == 0
    pred = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(pred["group"]) == list(points["grp"]) and np.allclose(pred["P"], points["P"])
    for g in ("small", "large"):  # each row is its own group's answer
        rows = (points["grp"] == g).to_numpy()
        own = fit.group(g).predict(points={"P": points["P"][rows].to_numpy(), "S": points["S"][rows].to_numpy()})
        np.testing.assert_allclose(pred.loc[rows, "median"], own["median"])
    assert main(["predict", str(out), "--points", str(d / "points.csv"), "--group-value", "large",
                 "--format", "json"]) == 0  # fmt: skip
    one = pd.DataFrame(json.loads(capsys.readouterr().out))
    assert set(one["group"]) == {"large"} and len(one) == len(points)
    assert main(["summary", str(out), "--format", "csv"]) == 0
    summary = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert set(summary["group"]) == {"small", "large"} and "alpha" in set(summary["parameter"])
    assert main(["report", str(out), "--out", str(d / "r.html")]) == 0
    html = (d / "r.html").read_text()
    assert "grp = small: Parameters" in html and "grp = large: Parameters" in html
    capsys.readouterr()
    points.assign(grp=" " + points["grp"] + " ").to_csv(d / "spaced.csv", index=False)  # names with spaces: found
    assert main(["predict", str(out), "--points", str(d / "spaced.csv"), "--format", "csv"]) == 0
    spaced = pd.read_csv(io.StringIO(capsys.readouterr().out))
    np.testing.assert_allclose(spaced["median"], pred["median"])
    points.assign(grp="medium").to_csv(d / "bad.csv", index=False)
    assert main(["predict", str(out), "--points", str(d / "bad.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no group 'medium'" in err and "small, large" in err and "\n" not in err


def test_a_formula_law_without_a_cost_calibrates_by_its_positive_inputs_and_says_so(mock_sampler, caplog):
    """Inputs with no N, D, C and no --cost: the band calibration holds out the runs with the largest product
    of the positive inputs, and the log says so; with no positive input the fit is not calibrated."""
    import logging

    import bayescale as bs
    from bayescale.laws.formula import prepare
    from bayescale.splits import holdout_top_compute

    df = _grouped().drop(columns="grp")
    law, runs = prepare(df, LAW)
    held = holdout_top_compute(runs, 0.2)
    product = (df["P"] * df["S"]).to_numpy()
    assert held.sum() == 4 and product[held].min() >= product[~held].max()
    with caplog.at_level(logging.INFO, logger="bayescale"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        fit = bs.fit(runs, law=law, seed=1, draws=100, discrepancy=False, calibrate=True)
    assert "calibration" in fit.tree.children and "product of the positive inputs (P x S)" in caplog.text
    shifted = df.assign(P=np.log(df["P"]) - 20.0)  # P now takes negative values: no positive input
    law, runs = prepare(shifted.drop(columns="S"), "E + A*exp(-alpha*P)")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bayescale"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        fit = bs.fit(runs, law=law, seed=1, draws=100, discrepancy=False, calibrate=True)
    assert "calibration" not in fit.tree.children and "no band calibration" in caplog.text


def test_fits_of_two_formula_laws_average_at_points(mock_sampler):
    """The stacked (or weighted) average of formula laws' fits predicts at a table of points; a weight of 1
    gives that fit's own predictions; laws on different scales (log and identity) cannot be mixed."""
    import bayescale as bs
    from bayescale.averaging import AveragedFit, AveragingError
    from bayescale.laws.formula import prepare

    df = _grouped().drop(columns="grp")
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)  # mocked draws are not a converged posterior
        # no fractional power of 1 + k log(S): the mocked draws come from the prior, where that can be negative
        streams = "E + A*(P/1e8)^(-alpha)*S^(-g)"
        for name, text in (("streams", streams), ("plain", "E + A*(P/1e8)^(-alpha)")):
            law, runs = prepare(df, text, name=name)
            fits[name] = bs.fit(runs, law=law, seed=1, draws=100, discrepancy=False, calibrate=False)
        law, runs = prepare(df, streams, name="identity", link="identity")
        other = bs.fit(runs, law=law, seed=1, draws=100, discrepancy=False, calibrate=False)
    points = pd.DataFrame({"P": [1e10, 3e10], "S": [2.0, 4.0]})
    mixed = AveragedFit(fits, {"streams": 0.5, "plain": 0.5}).predict(points=points)
    # structure only: the mock's prior draws make the numbers wild (NaN where a law is undefined)
    assert list(mixed.columns) == list(fits["streams"].predict(points=points).columns) and len(mixed) == 2
    alone = AveragedFit(fits, {"streams": 1.0, "plain": 0.0}).predict(points=points)
    pd.testing.assert_frame_equal(alone, fits["streams"].predict(points=points))
    with pytest.raises(AveragingError, match="different scales"):
        AveragedFit({**fits, "identity": other}, {"streams": 0.5, "identity": 0.5}).predict(points=points)


def test_the_python_api_takes_a_formula_as_the_law(mock_sampler):
    """bs.fit(table, law="E + A*P^(-alpha)"): a formula (or a named formula law) works from Python as from the
    command line; a built-in family's name with a minus sign is still that family."""
    import bayescale as bs
    from bayescale.laws.formula import FormulaLaw
    from bayescale.sampling import is_formula_law

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)  # mocked draws are not a converged posterior
        fit = bs.fit(_grouped().drop(columns="grp"), law="E + A*(P/1e8)^(-alpha)", draws=100, seed=1,
                     discrepancy=False, calibrate=False)  # fmt: skip
    assert isinstance(fit.law, FormulaLaw) and fit.law.inputs == ("P",)
    assert is_formula_law("farseer") and not is_formula_law("data-constrained") and not is_formula_law("kaplan")


def test_a_formula_law_backtests_by_its_cost(mock_sampler, tmp_path, capsys):
    """backtest --law FORMULA --cost EXPR: the costliest runs held out, predicted at their own inputs."""
    from bayescale.backtesting import backtest
    from bayescale.laws.formula import prepare

    df = _grouped().drop(columns="grp")
    law, runs = prepare(df, "E + A*(P/1e8)^(-alpha)*S^(-g)", cost="P*S")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)  # mocked draws are not a converged posterior
        result = backtest(runs, law=law, draws=100, seed=1, discrepancy=False, calibrate=False)
    held = result.predictions
    cost = df["P"] * df["S"]
    assert len(held) == 4 and set(held["P"] * held["S"]) == set(cost.nlargest(4))
    assert {"P", "S", "loss", "median", "pit"} <= set(held.columns)
    df.to_csv(tmp_path / "runs.csv", index=False)
    assert main(["backtest", str(tmp_path / "runs.csv"), "--target", "loss"]) == 2
    assert "for formula laws" in capsys.readouterr().err


def test_default_priors_are_widened_until_their_prior_predictive_covers_the_targets(caplog):
    """loss = 10 log N (about 200): a coefficient's default Normal(0, 2) reaches about +-100 there, so the
    prior predictive misses every run; the default widens until it covers them, and says so. A law the
    priors cover keeps them as they are."""
    import logging

    from bayescale.laws.formula import prepare

    N = np.geomspace(1e7, 1e10, 12)
    law, runs = prepare(pd.DataFrame({"N": N, "loss": 10 * np.log(N)}), "c * log(N)")
    narrow = law._role_priors(float(np.sqrt(np.mean(runs.loss**2))), 1.0)
    assert law.prior_misses(runs, narrow) == len(runs)
    with caplog.at_level(logging.INFO, logger="bayescale"):
        priors = law.default_priors(runs)
    assert priors["c"].kwargs["sigma"] > 2.0 and law.prior_misses(runs, priors) == 0
    assert "missed 12 of 12 runs' targets" in caplog.text and "widened" in caplog.text
    law, runs = prepare(pd.DataFrame({"N": N, "loss": 1.7 + 400 / N**0.3}), "E + A/N^alpha")
    assert law.prior_misses(runs, law.default_priors(runs)) == 0
    assert law.default_priors(runs) == law._role_priors(float(np.sqrt(np.mean(runs.loss**2))), 1.0)


def test_a_uniform_prior_is_the_parameter_s_bounds():
    """--prior A=Uniform(-1e4, 1e4) means what a law file's bounds mean: a clamped amplitude is still centred
    above its floor, and the law round-trips with the bounds."""
    law = FormulaLaw(CLAMPED, ["N", "D", "loss"], priors={k: f"Uniform({lo}, {hi})" for k, (lo, hi) in BOUNDS.items()})
    assert law.user_priors == {} and law.bounds["A"] == (-1e4, 1e4) and law.params[0] == "log_A_ref"
    again = FormulaLaw.from_spec(law.spec())
    assert again == law and again.model_tree == law.model_tree
