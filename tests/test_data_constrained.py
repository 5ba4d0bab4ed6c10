"""The data-constrained law (Muennighoff et al. 2023), unique-token inputs and allocation under a data budget."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.cli import main
from bayescale.data_budget import constrained_optimum
from bayescale.errors import LawError, RunsError
from bayescale.laws import Chinchilla, DataConstrained, default_law, get_law
from bayescale.laws.data_constrained import epochs_worth
from bayescale.predict import complete_inputs

#: Muennighoff et al.'s C4 coefficients (alpha = beta tied in the paper; beta moved here to test both).
PAPER = {"E": 1.869, "A": 520.8, "B": 1487.7, "alpha": 0.353, "beta": 0.37, "R_D_star": 15.39, "R_N_star": 5.31}
REF = {"N": np.log(1e8), "D": np.log(2e9), "U": np.log(1e9)}


def sampled(nat: dict[str, float], ref: dict[str, float] = REF) -> dict[str, np.ndarray]:
    """The law's sampled parameters (columns of one draw) from physical ones."""
    p = {
        "E": nat["E"],
        "alpha": nat["alpha"],
        "beta": nat["beta"],
        "log_A_ref": np.log(nat["A"]) - nat["alpha"] * ref["N"],
        "log_B_ref": np.log(nat["B"]) - nat["beta"] * ref["D"],
        "R_D_star": nat["R_D_star"],
        "R_N_star": nat["R_N_star"],
    }
    return {k: np.atleast_1d(np.asarray(v, dtype=float))[:, None] for k, v in p.items()}


def loss(law, p, N, D, U=None):
    logx = {"N": np.log(np.asarray(N, dtype=float))[None, :], "D": np.log(np.asarray(D, dtype=float))[None, :]}
    if U is not None:
        logx["U"] = np.log(np.asarray(U, dtype=float))[None, :]
    return np.exp(law.log_loss(p, logx, REF, np))[0]


def paper_runs(rng: np.random.Generator | None = None, sigma: float = 0.0) -> pd.DataFrame:
    """Runs from the law at PAPER: 4 sizes x 3 unique budgets x 5 epoch counts."""
    rows = [(N, U * e, U) for N in (2e7, 6e7, 2e8, 5e8) for U in (1e8, 5e8, 2e9) for e in (1, 3, 10, 40, 200)]
    table = pd.DataFrame(rows, columns=["N", "D", "U"])
    mu = loss(DataConstrained(), sampled(PAPER), table["N"], table["D"], table["U"])
    noise = rng.normal(0, sigma, len(table)) if rng is not None else 0.0
    return table.assign(loss=mu * np.exp(noise))


# --- the law ------------------------------------------------------------------------------


def test_the_law_is_chinchilla_without_repetition_at_any_size():
    """U >= D (one epoch or less): exactly Chinchilla -- also for models far above their tokens' optimal size."""
    p = sampled(PAPER)
    N = np.array([1e7, 1e8, 1e9, 1e10, 1e11])
    D = np.array([1e9, 1e8, 2e9, 1e9, 3e12])  # 1e10 params on 1e9 tokens: 0.1 tokens per parameter
    for U in (D, 2 * D, np.full_like(D, 1e15)):
        assert np.allclose(loss(DataConstrained(), p, N, D, U), loss(Chinchilla(), p, N, D), rtol=1e-12)
    assert np.allclose(loss(DataConstrained(), p, N, D), loss(Chinchilla(), p, N, D))  # no U: unlimited data


def test_repeated_tokens_are_worth_less_and_saturate():
    law, p = DataConstrained(), sampled(PAPER)
    N, U = np.full(4, 1e8), np.full(4, 1e9)
    D = U * np.array([2.0, 4.0, 40.0, 4000.0])
    repeated, fresh = loss(law, p, N, D, U), loss(law, p, N, D)
    assert (repeated > fresh).all()
    # a few epochs are nearly as good as fresh data (R_D = 1, 3 << R_D* = 15.4); thousands are not
    assert repeated[0] - fresh[0] < 0.01 and repeated[-1] - fresh[-1] > 0.1
    # saturation: effective data -> U (1 + R_D*), so 4,000 and 40,000 epochs give about the same loss
    far = loss(law, p, np.full(1, 1e8), np.full(1, 4e13), np.full(1, 1e9))
    assert abs(far[0] - repeated[-1]) < 1e-3
    _, log_Dp = law.effective(
        {k: v[:, 0] for k, v in p.items()}, {"N": np.log(1e8), "D": np.log(4e13), "U": np.log(1e9)}, REF, np
    )
    assert np.isclose(np.exp(log_Dp), 1e9 * (1 + PAPER["R_D_star"]), rtol=1e-3)


def test_excess_parameters_decay_only_when_data_repeat():
    """N beyond the compute-optimal size for U decays in value (R_N*) in a multi-epoch run."""
    law = DataConstrained()
    p = {k: v[:, 0] for k, v in sampled(PAPER).items()}
    log_U = np.log(1e8)
    log_Nopt = law_opt = __import__("bayescale.laws.data_constrained", fromlist=["x"]).log_optimal_size(
        p, log_U, REF, np
    )
    nat = law.natural(p, REF)
    # alpha A / N^alpha = beta B / U^beta at N_opt(U)
    lhs = nat["alpha"] * nat["A"] * np.exp(-nat["alpha"] * law_opt)
    rhs = nat["beta"] * nat["B"] * np.exp(-nat["beta"] * log_U)
    assert np.allclose(lhs, rhs, rtol=1e-10)
    big = float(np.exp(log_Nopt[0])) * 50
    log_Np, _ = law.effective(p, {"N": np.log(big), "D": log_U + np.log(10), "U": log_U}, REF, np)
    U_N = np.exp(log_Nopt)
    assert np.allclose(np.exp(log_Np), U_N * (1 + PAPER["R_N_star"] * (1 - np.exp(-49 / PAPER["R_N_star"]))))
    log_Np_one, _ = law.effective(p, {"N": np.log(big), "D": log_U, "U": log_U}, REF, np)
    assert np.isclose(np.exp(log_Np_one), big)


def test_pytensor_and_numpy_agree():
    import pytensor.tensor as pt

    law = DataConstrained()
    p = {k: v[:, 0] for k, v in sampled(PAPER).items()}
    x = {"N": np.log([1e7, 3e9, 1e8]), "D": np.log([1e9, 1e11, 5e10]), "U": np.log([1e8, 1e12, 1e9])}
    symbolic = law.log_loss({k: pt.as_tensor(v) for k, v in p.items()}, {k: pt.as_tensor(v) for k, v in x.items()},
                            REF, pt).eval()  # fmt: skip
    assert np.allclose(symbolic, law.log_loss(p, x, REF, np))


def test_registry_default_law_and_literature_priors(demo_runs):
    assert get_law("data-constrained").name == "data-constrained"
    assert get_law("muennighoff").name == "data-constrained"
    repeated = bs.load_runs(pd.DataFrame({"N": [1e8, 2e8, 4e8], "D": [4e9, 4e9, 4e9], "U": [1e9, 4e9, 8e9],
                                          "loss": [3.2, 3.0, 2.9]}))  # fmt: skip
    assert default_law(repeated).name == "data-constrained"
    fresh = bs.load_runs(pd.DataFrame({"N": [1e8, 2e8, 4e8], "D": [4e9] * 3, "unique_tokens": [4e9] * 3,
                                       "loss": [3.2, 3.0, 2.9]}))  # fmt: skip
    assert fresh.has("U") and default_law(fresh).name == "chinchilla"
    from bayescale.model import resolve_priors

    priors = resolve_priors(DataConstrained(), repeated, prior_set="auto")
    assert priors["alpha"].kwargs == resolve_priors(Chinchilla(), repeated, prior_set="auto")["alpha"].kwargs
    assert {"R_D_star", "R_N_star"} <= set(priors)


# --- input --------------------------------------------------------------------------------


def test_unique_tokens_column_must_be_positive(runs_csv):
    path = runs_csv("N,D,U,loss\n1e8,4e9,1e9,3.2\n2e8,4e9,0,3.0\n4e8,4e9,1e9,2.9\n")
    with pytest.raises(RunsError, match=r"column 'U', row 2 is 0; U must be positive"):
        bs.load_runs(path)


def test_the_law_needs_unique_tokens():
    runs = bs.load_runs(pd.DataFrame({"N": [1e8, 2e8, 4e8], "D": [4e9] * 3, "loss": [3.2, 3.0, 2.9]}))
    with pytest.raises(LawError, match="needs the unique tokens"):
        DataConstrained().check_runs(runs)


def test_cli_bad_unique_tokens_exit_2_with_one_line(runs_csv, tmp_path, capsys):
    bad = runs_csv("N,D,U,loss\n1e8,4e9,1e9,3.2\n2e8,4e9,-1,3.0\n4e8,4e9,1e9,2.9\n", "bad.csv")
    missing = runs_csv("N,D,loss\n1e8,4e9,3.2\n2e8,4e9,3.0\n4e8,4e9,2.9\n", "missing.csv")
    for path, message in ((bad, "U must be positive"), (missing, "needs the unique tokens")):
        assert main(["fit", str(path), "--law", "data-constrained", "--out", str(tmp_path / "f.nc")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]
        assert not (tmp_path / "f.nc").exists()


def test_a_law_that_ignores_given_unique_tokens_warns_once(mock_sampler, caplog):
    """Once per fit: the calibration re-fit, which runs the stages again, does not repeat it."""
    import warnings

    from bayescale.diagnostics import DiagnosticsWarning

    fast = {"draws": 200, "tune": 50, "seed": 3, "retry": False, "discrepancy": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)  # mocked draws
        with caplog.at_level(logging.WARNING, logger="bayescale"):
            bs.fit(paper_runs(), law="chinchilla", **fast)
        assert caplog.text.count("ignores them (some runs repeat data)") == 1
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="bayescale"):
            bs.fit(paper_runs(), law="data-constrained", **fast)
    assert "ignores" not in caplog.text


def test_points_take_unique_tokens_for_the_law_that_uses_them():
    pts = complete_inputs(DataConstrained(), 6.0, N=[1e9, 2e9], D=[2e10, 4e10], U=[1e10, 1e11])
    assert np.allclose(pts["U"], [1e10, 1e11])
    assert np.allclose(complete_inputs(DataConstrained(), 6.0, N=1e9, D=2e10)["U"], 2e10)  # fresh data
    assert "U" not in complete_inputs(Chinchilla(), 6.0, N=1e9, D=2e10, U=1e9)
    with pytest.raises(bs.BayescaleError, match="U must be positive"):
        complete_inputs(DataConstrained(), 6.0, N=1e9, D=2e10, U=0)


# --- allocation under a unique-token budget -----------------------------------------------


def test_epochs_worth_matches_the_effective_data_of_each_epoch():
    R = np.array([2.0, 15.39, 60.0])
    for worth in (0.3, 0.5, 0.8):
        e = epochs_worth(R, worth)
        for r, last in zip(R, e, strict=True):

            def gain(k, r=r):  # effective data added by epoch k (k >= 2), relative to the first epoch's U
                return r * (np.exp(-(k - 2) / r) - np.exp(-(k - 1) / r))

            if last == 1.0:  # not even the second epoch is worth that much
                assert gain(2.0) < worth
            else:
                assert np.isclose(gain(last), worth, rtol=1e-9)
    assert epochs_worth(np.array([0.3]), 0.9)[0] == 1.0  # even the second epoch is worth less
    with pytest.raises(LawError, match="between 0 and 1"):
        epochs_worth(R, 1.5)


def test_constrained_optimum_against_a_brute_force_grid():
    law = DataConstrained()
    p = {k: v[:, 0] for k, v in sampled(PAPER).items()}
    draws = {**p, **law.natural(p, REF)}
    C, k = 1e21, 6.0
    for U in (1e9, 1e14):
        opt = constrained_optimum(law, draws, REF, k, C, U)
        N = np.geomspace(1e6, 1e12, 20001)
        grid = loss(law, {key: np.atleast_1d(v)[:, None] for key, v in p.items()}, N, C / (k * N), np.full_like(N, U))
        assert np.isclose(opt["loss_opt"][0], grid.min(), rtol=1e-6)
        assert np.isclose(opt["N_opt"][0], N[np.argmin(grid)], rtol=2e-3)
        assert np.isclose(opt["epochs"][0], opt["D_opt"][0] / U)
    scarce = constrained_optimum(law, draws, REF, k, C, 1e9)
    plenty = constrained_optimum(law, draws, REF, k, C, 1e14)
    assert scarce["loss_lost"][0] > 0.01 and scarce["epochs"][0] > 5
    assert abs(plenty["loss_lost"][0]) < 1e-9 and plenty["epochs"][0] < 1
    # scarce data with R_N* < R_D*: excess parameters lose value faster than repeated tokens, so the
    # optimum shifts to a smaller model trained for more epochs (Muennighoff et al.'s finding)
    assert scarce["N_opt"][0] < plenty["N_opt"][0]


# --- through the fit ----------------------------------------------------------------------


@pytest.fixture
def dc_fit(mock_sampler):
    return bs.fit(
        paper_runs(), law="data-constrained", draws=200, tune=50, chains=2, seed=3, calibrate=False, discrepancy=False
    )


def test_a_fit_keeps_unique_tokens_and_answers_with_them(dc_fit, tmp_path):
    assert dc_fit.runs.has("U")
    path = dc_fit.save(tmp_path / "dc.nc")
    loaded = bs.load(path)
    assert np.allclose(loaded.runs.values("U"), paper_runs()["U"])
    pred = loaded.predict(N=[1e9, 1e9], D=[1e11, 1e11], U=[1e11, 1e9])
    assert list(pred["U"]) == [1e11, 1e9]
    assert pred["expected_median"].iloc[1] > pred["expected_median"].iloc[0]  # 100 epochs cost loss
    table = loaded.optimal(compute=1e21, unique_tokens=1e9, worth=0.5)
    assert {"epochs_median", "loss_lost_median", "epochs_worth_median", "N_opt_upper"} <= set(table.columns)
    assert (table["loss_lost_median"] >= -1e-9).all()


def test_cli_optimal_with_unique_tokens(dc_fit, real_fit_path, tmp_path, capsys):
    path = dc_fit.save(tmp_path / "dc.nc")
    assert main(["optimal", str(path), "--compute", "1e21", "--unique-tokens", "1e9", "--format", "csv"]) == 0
    table = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert {"epochs_median", "loss_lost_median", "epochs_worth_median"} <= set(table.columns)
    assert main(["optimal", str(real_fit_path), "--unique-tokens", "1e9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ignores unique tokens" in err[0]


def test_cli_predict_reads_unique_tokens_from_points(dc_fit, tmp_path, capsys):
    path = dc_fit.save(tmp_path / "dc.nc")
    points = tmp_path / "points.csv"
    points.write_text("N,D,unique_tokens\n1e9,1e11,1e9\n1e9,1e11,1e11\n")
    assert main(["predict", str(path), "--points", str(points), "--format", "csv"]) == 0
    table = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert list(table["U"]) == [1e9, 1e11]
    assert main(["predict", str(path), "--N", "1e9", "--D", "1e11", "--U", "1e9", "--format", "csv"]) == 0
    assert "U" in capsys.readouterr().out.splitlines()[0]


def test_plot_epochs_draws_both_bands(dc_fit, real_fit):
    from bayescale.plots import PlotError, plot_epochs

    fig = plot_epochs(dc_fit)
    ax = fig.axes[0]
    assert len(ax.collections) >= 3  # two bands and the runs
    assert "epochs" in ax.get_xlabel()
    with pytest.raises(PlotError, match="no unique tokens"):
        plot_epochs(real_fit)


def test_report_has_a_repeated_data_section(dc_fit, tmp_path):
    from bayescale.report import write_report

    path = write_report(dc_fit, tmp_path / "report.md", fmt="md")
    text = path.read_text()
    assert "## Repeated data" in text and "R_D* =" in text and "loss_lost_median" in text
    assert "Loss against epochs" in text


def test_compare_the_data_constrained_law_with_chinchilla_on_the_same_runs(mock_sampler):
    """compare fits both laws to the runs with U (Chinchilla ignores U, which is said) and ranks them by LOO."""
    import warnings

    fast = {"draws": 200, "tune": 50, "discrepancy": False, "calibrate": False, "seed": 3, "retry": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mocked draws: diagnostics and Pareto k are meaningless
        result = bs.compare(paper_runs(), ["chinchilla", "data-constrained"], **fast)
    assert sorted(result.table["law"]) == ["chinchilla", "data-constrained"]
    assert np.isfinite(result.table["elpd_loo"]).all() and np.isfinite(result.table["elpd_lfo"]).all()
    assert "U" in result.fits["data-constrained"].runs.inputs
