"""Formula laws: the whitelist parser, one tree on two backends, roles and centring, runs and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bayescale.cli import main
from bayescale.errors import FormulaError, PriorError, RunsError
from bayescale.laws import get_law
from bayescale.laws.formula import FormulaLaw, parse, prepare
from bayescale.laws.formula.evaluate import evaluate
from bayescale.laws.formula.lawfile import check_names, from_options, is_formula, read_law_file
from bayescale.laws.formula.least_squares import baseline, initial_values, predict_natural
from bayescale.laws.formula.parse import Call, Num, Op, Var

CHINCHILLA = "E + A/N^alpha + B/D^beta"


def _ladder(n=24, seed=0, noise=0.005):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e9), n))
    D = N * np.exp(rng.uniform(np.log(5), np.log(80), n))
    loss = (1.8 + 480 / N**0.34 + 2000 / D**0.37) * np.exp(rng.normal(0, noise, n))
    return pd.DataFrame({"N": N, "D": D, "loss": loss})


# --- the parser --------------------------------------------------------------------------
def test_parse_builds_the_tree_and_both_power_signs_agree():
    tree = parse(CHINCHILLA)
    assert tree == parse("E + A/N**alpha + B/D**beta")
    assert tree.names() == {"E", "A", "N", "alpha", "B", "D", "beta"}
    assert parse("-x^2") == Op("neg", (Op("^", (Var("x"), Num(2.0))),))  # power binds tighter than the sign
    assert parse("max(a, log(N))") == Call("max", (Var("a"), Call("log", (Var("N"),))))


@pytest.mark.parametrize(
    "text",
    [CHINCHILLA, "(A / (N * (k * log(P) + 1)))^alpha + E", "exp(s * N^q + S) + exp(B * N^b) * D^(-exp(a))",
     "c + k * exp(t1 * r1 + t2 * r2)", "-E + A / (N - 1)^2 + sigmoid(x) * softplus(y) - tanh(z) / sqrt(abs(w))"],
)  # fmt: skip
def test_text_round_trips(text):
    tree = parse(text)
    assert parse(tree.text()) == tree


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("__import__('os').system('true')", "calls something other than a function name"),
        ("(lambda x: x)(N)", "calls something other than a function name"),
        ("lambda x: x", "a lambda"),
        ("N.real + A", "an attribute"),
        ("x[0] + A", "a subscript"),
        ("'a' + A", "only numbers"),
        ("foo(N) + A", "unknown function 'foo'"),
        ("E + (A / N^alpha", "unbalanced brackets"),
        ("log(x=N)", "no keyword"),
        ("min(N)", "takes 2 argument"),
        ("N > 1", "a comparison"),
        ("N and A", "and/or"),
        ("", "empty"),
        ("_x + N", "may not start with '_'"),
        ("log + N", "is a function"),
        ("N // A", "FloorDiv"),
    ],
)
def test_parse_refuses_anything_outside_the_whitelist(text, message):
    with pytest.raises(FormulaError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse(text)


# --- one tree, two backends -----------------------------------------------------------------
def test_numpy_and_pytensor_give_the_same_values():
    import pytensor
    import pytensor.tensor as pt

    text = "E + A * N^(-a) * exp(b * log(D)) + min(c, D / N) - max(c, 0.5) * sigmoid(z) + softplus(w) * tanh(z)"
    tree = parse(text)
    rng = np.random.default_rng(1)
    N, D = np.exp(rng.uniform(15, 20, 7)), np.exp(rng.uniform(18, 23, 7))
    params = {"E": 1.7, "A": 30.0, "a": 0.3, "b": -0.05, "c": 2.0, "z": 0.4, "w": -1.2}
    coords = {"N": np.log(N), "D": np.log(D)}
    expected = 1.7 + 30 * N**-0.3 * D**-0.05 + np.minimum(2.0, D / N)
    expected += -2.0 / (1 + np.exp(-0.4)) + np.log1p(np.exp(-1.2)) * np.tanh(0.4)
    got_np = evaluate(tree, params, coords, {"N", "D"}, np)
    symbols = {k: pt.dscalar(k) for k in params}
    xs = {k: pt.dvector(k) for k in coords}
    graph = evaluate(tree, symbols, xs, {"N", "D"}, pt)
    f = pytensor.function([*symbols.values(), *xs.values()], graph)
    got_pt = f(*params.values(), *coords.values())
    np.testing.assert_allclose(got_np, expected, rtol=1e-12)
    np.testing.assert_allclose(got_pt, expected, rtol=1e-12)


def test_linear_inputs_are_used_as_they_are():
    tree = parse("c + k * p^2 + t * p")
    p = np.array([0.0, 0.5, -1.0])
    got = evaluate(tree, {"c": 1.0, "k": 2.0, "t": 3.0}, {"p": p}, set(), np)
    np.testing.assert_allclose(got, 1 + 2 * p**2 + 3 * p)


# --- roles, centring, the law ------------------------------------------------------------------
def test_roles_and_centred_amplitudes_of_the_chinchilla_formula():
    law = FormulaLaw(CHINCHILLA, ["N", "D", "loss"])
    assert law.roles() == {"E": "offset", "A": "amplitude", "alpha": "decay", "B": "amplitude", "beta": "decay"}
    assert law.params == ("E", "log_A_ref", "alpha", "log_B_ref", "beta")
    other = FormulaLaw("(A / (N * (k * log(P) + 1)))^alpha + E + q * N^g", ["N", "P", "loss"])
    assert other.roles() == {"A": "coefficient", "k": "coefficient", "alpha": "exponent", "E": "offset",
                             "q": "amplitude", "g": "exponent"}  # fmt: skip


def test_centred_parameters_map_back_to_the_formula_exactly():
    """The model's value from centred parameters is the formula's at the natural ones they map to."""
    law = FormulaLaw("c0 + cN * N^(-alpha) + cS * S^(-beta)", ["N", "S", "loss"], bounds={"cS": [-50, 50]})
    assert law.params == ("c0", "log_cN_ref", "alpha", "cS_ref", "beta")  # cS may be negative: not logged
    ref = {"N": 19.0, "S": 1.0}
    p = {"c0": 1.2, "log_cN_ref": -0.7, "alpha": 0.31, "cS_ref": -0.2, "beta": 0.5}
    nat = law.natural(p, ref)
    assert nat["cN"] * np.exp(-0.31 * 19.0) == pytest.approx(np.exp(-0.7))  # the term at the reference
    assert nat["cS"] * np.exp(-0.5 * 1.0) == pytest.approx(-0.2)
    coords = {"N": np.log([1e7, 1e9]), "S": np.log([1.0, 8.0])}
    direct = evaluate(law.tree, nat, coords, {"N", "S"}, np)
    np.testing.assert_allclose(law.value(p, coords, ref, np), direct, rtol=1e-12)
    np.testing.assert_allclose(law.log_loss(p, coords, ref, np), np.log(direct), rtol=1e-12)


def test_a_user_prior_keeps_an_amplitude_uncentred():
    law = FormulaLaw(CHINCHILLA, ["N", "D", "loss"], priors={"A": "LogNormal(6, 1)"})
    assert "A" in law.params and "log_B_ref" in law.params


def test_law_errors():
    with pytest.raises(FormulaError, match="uses no column"):
        FormulaLaw("E + A", ["N", "loss"])
    with pytest.raises(FormulaError, match="no parameter"):
        FormulaLaw("N * D", ["N", "D", "loss"])
    with pytest.raises(FormulaError, match="target column"):
        FormulaLaw("loss + A * N", ["N", "loss"])
    with pytest.raises(FormulaError, match="reserved"):
        FormulaLaw("sigma + A * N", ["N", "loss"])
    with pytest.raises(PriorError, match="inverted"):
        FormulaLaw(CHINCHILLA, ["N", "D", "loss"], bounds={"alpha": [2, 0]})
    with pytest.raises(PriorError, match="no parameter 'gamma'"):
        FormulaLaw(CHINCHILLA, ["N", "D", "loss"], bounds={"gamma": [0, 1]})
    with pytest.raises(FormulaError, match="neither a column"):
        FormulaLaw("E + A/N^alpha + B/Dd^beta", ["N", "D", "loss"], parameters=["E", "A", "alpha", "B", "beta"])


def test_a_misspelt_column_is_caught_and_a_declared_name_is_not():
    with pytest.raises(FormulaError, match="looks like the column 'params'"):
        check_names("E + A/prams^alpha", ["params", "loss"], "loss", None)
    assert check_names("E + A/prams^alpha", ["params", "loss"], "loss", ["E", "A", "prams", "alpha"]) == [
        "E", "A", "prams", "alpha"
    ]  # fmt: skip
    assert is_formula(CHINCHILLA) and not is_formula("chinchilla")


def test_the_law_round_trips_through_its_key():
    law = FormulaLaw(CHINCHILLA, ["N", "D", "loss"], bounds={"alpha": [0, 2]}, name="mine", citation="me")
    again = get_law(law.key)
    assert again == law and again.params == law.params and json.loads(again.key)["citation"] == "me"


# --- runs ----------------------------------------------------------------------------------
def test_prepare_checks_columns_and_chooses_the_link():
    df = pd.DataFrame({"N": [1e7, 1e8, 1e9], "p": [0.0, 0.5, 1.0], "y": [-2.0, -1.5, -1.0], "loss": [3.0, 2.8, 2.6]})
    law, runs = prepare(df, "c + k * p + A/N^alpha", target="y")
    assert law.link == "identity" and law.linear_inputs == {"p"} and runs.inputs == ("p", "N")
    np.testing.assert_array_equal(runs.log("p"), df["p"].to_numpy())
    law, _ = prepare(df, "E + A/N^alpha")
    assert law.link == "log"
    with pytest.raises(RunsError, match=r"column 'p', row 0 is 0.*takes the log"):
        prepare(df, "E + A * log(p) + B/N^b")
    with pytest.raises(RunsError, match="log link needs a positive target"):
        prepare(df, "c + A/N^alpha", target="y", link="log")
    with pytest.raises(RunsError, match="no target column 'lost'"):
        prepare(df, "E + A/N^alpha", target="lost")
    with pytest.raises(FormulaError, match="not a column"):
        prepare(df, "E + A/N^alpha", cost="6 * N * T")
    with pytest.raises(RunsError, match="must be positive"):
        prepare(df, "E + A/N^alpha", cost="p")
    _, runs = prepare(df, "E + A/N^alpha", cost="6 * N")
    np.testing.assert_allclose(runs.cost(), 6 * df["N"].to_numpy())


def test_law_file(tmp_path):
    path = tmp_path / "law.toml"
    path.write_text(
        'name = "chin"\ncitation = "Hoffmann et al. 2022"\nformula = "E + A/N^alpha + B/D^beta"\n'
        'parameters = ["E", "A", "alpha", "B", "beta"]\n[priors]\nalpha = "Uniform(0, 2)"\n[bounds]\nB = [0, 1e6]\n'
    )
    spec = read_law_file(path)
    assert spec["priors"] == {"alpha": "Uniform(0, 2)"}
    csv = tmp_path / "runs.csv"
    _ladder(8).to_csv(csv, index=False)
    law, runs = from_options(csv, law_file=path)
    assert law.name == "chin" and law.citation.startswith("Hoffmann") and len(runs) == 8
    assert str(law.default_priors(runs)["alpha"]) == "Uniform(lower=0, upper=2)"
    (tmp_path / "bad.toml").write_text('formula = "E + A/N"\nwhat = 1\n')
    with pytest.raises(FormulaError, match="unknown key 'what'"):
        read_law_file(tmp_path / "bad.toml")


# --- least squares --------------------------------------------------------------------------
def test_least_squares_recovers_a_noiseless_law():
    df = _ladder(30, noise=0.0)
    law, runs = prepare(df, CHINCHILLA)
    bounds = {"E": [0, 3], "A": [1, 1e4], "alpha": [0.05, 1], "B": [1, 1e5], "beta": [0.05, 1]}
    found = baseline(law, runs, bounds, starts=16)
    pred = predict_natural(law, found.params, {"N": df["N"].to_numpy(), "D": df["D"].to_numpy()})
    np.testing.assert_allclose(pred, df["loss"], rtol=1e-4)
    start = initial_values(law, runs, law.default_priors(runs))
    assert set(start) == set(law.params) and abs(start["alpha"] - 0.34) < 0.1


# --- the command line -------------------------------------------------------------------------
USER = "E + A/params^alpha + B/tokens^beta"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--law", "__import__('os')"], "unknown function '__import__'"),
        (["--law", "E + (lambda x: x)(params)"], "other than a function name"),
        (["--law", "E + A/params^alpha + zz(tokens)"], "unknown function 'zz'"),
        (["--law", "E + (A/params^alpha"], "unbalanced brackets"),
        (["--law", "E + A/prams^alpha + B/tokens^beta"], "looks like the column 'params'"),
        (["--law", "E + A*log(z)"], "column 'z', row 3 is 0"),
        (["--law", USER, "--prior", "alpha=Uniform(2, 0)"], "inverted"),
        (["--law", USER, "--target", "nope"], "no target column 'nope'"),
        (["--law", "chinchilla", "--target", "loss"], "for formula laws"),
    ],
)
def test_cli_bad_formula_input_exits_2_with_one_line_and_writes_nothing(runs_csv, tmp_path, capsys, args, message):
    path = runs_csv("params,tokens,z,loss\n1e7,2e8,1,3.5\n1e8,2e9,2,3.0\n1e9,2e10,0,2.6\n", "runs.csv")
    out = tmp_path / "fit.nc"
    assert main(["fit", str(path), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_prior_rejects_inverted_bounds():
    from bayescale.priors import Prior

    with pytest.raises(PriorError, match="inverted"):
        Prior("Uniform", lower=1.0, upper=0.0)
    with pytest.raises(PriorError, match="inverted"):
        Prior("TruncatedNormal", mu=0.0, sigma=1.0, lower=1.0, upper=1.0)


def test_cli_formula_fit_summary_and_predict(tmp_path, capsys):
    """One small real fit through the command line: a formula over columns named as a user has them,
    listed back before sampling, saved, summarised, and predicted at a points file."""
    df = _ladder(20).rename(columns={"N": "params", "D": "tokens"})
    df.to_csv(tmp_path / "runs.csv", index=False)
    target = pd.DataFrame({"params": [3e9], "tokens": [6e10]})
    target.to_csv(tmp_path / "target.csv", index=False)
    fit = tmp_path / "f.nc"
    argv = ["fit", str(tmp_path / "runs.csv"), "--out", str(fit), "--law", "E + A/params^alpha + B/tokens^beta",
            "--cost", "6*params*tokens", "--draws", "300", "--tune", "300", "--seed", "2",
            "--no-discrepancy"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "parameters: E (offset), A (amplitude, sampled as log_A_ref), alpha (decay)" in err
    assert "band scale" in err  # calibrated by the cost
    assert main(["summary", str(fit), "--format", "csv"]) == 0
    summary = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert list(summary["parameter"][:5]) == ["E", "A", "alpha", "B", "beta"]
    alpha = summary.set_index("parameter").loc["alpha"]
    assert alpha["lower"] < 0.34 < alpha["upper"]
    assert main(["predict", str(fit), "--points", str(tmp_path / "target.csv"), "--format", "csv"]) == 0
    pred = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    truth = 1.8 + 480 / 3e9**0.34 + 2000 / 6e10**0.37
    assert pred["lower"][0] < truth < pred["upper"][0]
    assert main(["predict", str(fit), "--N", "1e9", "--D", "2e10"]) == 2
    assert "--points" in capsys.readouterr().err


# --- answers (mocked sampler: structure) ------------------------------------------------------
def _mocked_fit(runs, law):
    import warnings

    import bayescale as bs
    from bayescale.diagnostics import DiagnosticsWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)  # mocked draws are not a converged posterior
        return bs.fit(runs, law=law, seed=1, draws=100, discrepancy=False, calibrate=False)


def test_a_negative_target_fits_on_its_own_scale_and_round_trips(mock_sampler, tmp_path):
    """A target with negative values (ScaleBench's vocabulary loss) gets the identity link: predictions on
    the target's scale, finite; the saved fit rebuilds the law and predicts the same."""
    import bayescale as bs

    rng = np.random.default_rng(3)
    N = np.exp(rng.uniform(16, 21, 12))
    H = np.exp(rng.uniform(19, 23, 12))
    y = -1.0 - 40 / N**0.3 - 300 / H**0.3 + rng.normal(0, 0.01, 12)
    df = pd.DataFrame({"N": N, "H": H, "y": y})
    law, runs = prepare(df, "E + A/N^alpha + B/H^beta", target="y", cost="N * H")
    assert law.link == "identity"
    fit = _mocked_fit(runs, law)
    points = pd.DataFrame({"N": [1e9, 1e10], "H": [1e10, 1e11]})
    pred = fit.predict(points=points)
    assert list(pred.columns[:2]) == ["N", "H"] and np.isfinite(pred[["median", "lower", "upper"]]).all().all()
    assert (pred["lower"] <= pred["median"]).all() and (pred["median"] <= pred["upper"]).all()
    path = fit.save(tmp_path / "f.nc")
    again = bs.load(path)
    assert again.law == law and again.runs.target == "y"
    pd.testing.assert_frame_equal(again.predict(points=points), pred)
    with pytest.raises(bs.errors.PredictionError, match="positive"):
        again.predict(points={"N": [0.0], "H": [1e10]})
    with pytest.raises(bs.errors.PredictionError, match="give the points"):
        again.predict(N=1e9, D=1e10)


def test_compare_two_formula_laws(mock_sampler):
    """Two formulas fitted to the same runs compare by LOO; no allocation columns for laws without N and D."""
    import bayescale as bs

    df = _ladder(16).rename(columns={"N": "params", "D": "tokens"})
    fits = []
    for text in ("E + A/params^alpha + B/tokens^beta", "E + A/(params*tokens)^alpha"):
        law, runs = prepare(df, text, cost="6*params*tokens")
        fits.append(_mocked_fit(runs, law))
    import warnings

    from bayescale.comparison import ComparisonWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ComparisonWarning)  # prior draws (the mock) make every run influential
        table = bs.compare(fits, holdout_top=None).table
    assert len(table) == 2 and set(table["law"]) == {f.law.name for f in fits}
    assert table["tokens_per_param_median"].isna().all()


def test_a_law_of_three_inputs_fits_without_a_discrepancy(mock_sampler, caplog):
    """The discrepancy's tensor basis takes one or two inputs: a law of three says so and fits without it."""
    import logging
    import warnings

    import bayescale as bs
    from bayescale.diagnostics import DiagnosticsWarning

    rng = np.random.default_rng(4)
    df = pd.DataFrame({x: np.exp(rng.uniform(16, 22, 12)) for x in ("N", "D", "H")})
    df["loss"] = 1.5 + 30 / df["N"] ** 0.3 + 40 / df["D"] ** 0.3 + 20 / df["H"] ** 0.2
    law, runs = prepare(df, "E + A/N^a + B/D^b + C/H^c")
    assert law.discrepancy_inputs == ()
    with caplog.at_level(logging.INFO, logger="bayescale"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)  # mocked draws are not a converged posterior
        fit = bs.fit(runs, law=law, seed=1, draws=100, discrepancy=True, calibrate=False)
    assert fit.discrepancy is None and "no model discrepancy" in caplog.text
