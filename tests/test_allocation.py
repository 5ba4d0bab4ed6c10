"""Compute-optimal allocation: closed form vs numerical path, properties, errors, CLI."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayescale import allocation as al
from bayescale.cli import main
from bayescale.laws import get_law

KAPLAN = get_law("kaplan")
KAPLAN_REF = {"N": np.log(3e8), "D": np.log(6e9)}
RNG = np.random.default_rng(5)
KAPLAN_DRAWS = {
    "alpha_N": RNG.uniform(0.05, 0.12, 64),
    "alpha_D": RNG.uniform(0.08, 0.14, 64),
    "log_L_ref": RNG.normal(1.1, 0.05, 64),
    "share_N": RNG.normal(0.0, 0.5, 64),
}


def chin_draws(fit, n=200):
    return {k: v[:n] for k, v in fit._all_draws().items()}


@pytest.mark.parametrize("compute", [1e19, 1e21, 5.88e23, 1e26])
def test_closed_form_and_numerical_agree_on_every_draw(real_fit, compute):
    draws = real_fit._all_draws()
    closed = al.isoflop_optimum(real_fit.law, draws, real_fit.reference, real_fit.k, compute)
    numeric = al.isoflop_optimum(real_fit.law, draws, real_fit.reference, real_fit.k, compute, closed_form=False)
    assert not numeric["at_edge"].any()
    for q in al.QUANTITIES:
        np.testing.assert_allclose(numeric[q], closed[q], rtol=1e-6, err_msg=q)


def test_kaplan_numerical_exponent_matches_analysis():
    # minimising (N_c/N)^(aN/aD) + D_c k N / C over N gives N_opt ~ C^(aD / (aN + aD))
    ex = al.allocation_exponents(KAPLAN, KAPLAN_DRAWS, KAPLAN_REF, 6.0, 1e22)
    expected = KAPLAN_DRAWS["alpha_D"] / (KAPLAN_DRAWS["alpha_N"] + KAPLAN_DRAWS["alpha_D"])
    np.testing.assert_allclose(ex["a"], expected, rtol=1e-5)


def test_chinchilla_exponent_is_beta_share(real_fit):
    draws = real_fit._all_draws()
    ex = al.allocation_exponents(real_fit.law, draws, real_fit.reference, 6.0, 1e22)
    np.testing.assert_allclose(ex["a"], draws["beta"] / (draws["alpha"] + draws["beta"]), rtol=1e-9)


def test_tokens_for_loss_bisection_matches_closed_form(real_fit, monkeypatch):
    draws = chin_draws(real_fit)
    target = np.full(200, 2.3)
    closed = al.tokens_for_loss(real_fit.law, draws, real_fit.reference, 7e9, target)
    monkeypatch.setattr(type(real_fit.law), "tokens_closed_form", lambda self, nat, N, t: None)
    bisect = al.tokens_for_loss(real_fit.law, draws, real_fit.reference, 7e9, target)
    np.testing.assert_allclose(bisect, closed, rtol=1e-8)


def test_unreachable_loss_gives_infinite_tokens(real_fit):
    table = real_fit.tokens_to_reach(N=1e8, loss=1.0)
    assert table.loc[0, "prob_reachable"] == 0 and np.isinf(table.loc[0, "D_median"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(log_c=st.floats(np.log(1e20), np.log(1e26)))
def test_compute_constraint_holds_on_every_draw(real_fit, log_c):
    C = float(np.exp(log_c))
    for law, draws, ref in (
        (real_fit.law, chin_draws(real_fit), real_fit.reference),
        (KAPLAN, KAPLAN_DRAWS, KAPLAN_REF),
    ):
        opt = al.isoflop_optimum(law, draws, ref, 6.0, C)
        np.testing.assert_allclose(6.0 * opt["N_opt"] * opt["D_opt"], C, rtol=1e-9)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(log_c=st.floats(np.log(1e20), np.log(1e25)))
def test_zero_inference_reproduces_training_optimum(real_fit, log_c):
    C = float(np.exp(log_c))
    draws = chin_draws(real_fit, 100)
    opt = al.isoflop_optimum(real_fit.law, draws, real_fit.reference, 6.0, C)
    ia = al.inference_aware(real_fit.law, draws, real_fit.reference, 6.0, C, inference_tokens=0.0)
    np.testing.assert_allclose(ia["N"], opt["N_opt"], rtol=1e-4)
    np.testing.assert_allclose(ia["D"], opt["D_opt"], rtol=1e-4)
    np.testing.assert_allclose(ia["saving"], 0.0, atol=1e-8)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    log_c=st.floats(np.log(1e20), np.log(1e25)),
    log_inf=st.floats(np.log(1e9), np.log(1e15)),
    step=st.floats(np.log(1.5), np.log(100)),
)
def test_more_inference_means_smaller_models_trained_longer(real_fit, log_c, log_inf, step):
    C = float(np.exp(log_c))
    draws = chin_draws(real_fit, 100)
    few = al.inference_aware(real_fit.law, draws, real_fit.reference, 6.0, C, float(np.exp(log_inf)))
    many = al.inference_aware(real_fit.law, draws, real_fit.reference, 6.0, C, float(np.exp(log_inf + step)))
    assert (many["N"] <= few["N"] * (1 + 1e-6)).all()
    assert (many["D"] >= few["D"] * (1 - 1e-6)).all()
    assert (few["saving"] >= -1e-9).all()


def test_inference_aware_generic_path_is_monotone():
    few = al.inference_aware(KAPLAN, KAPLAN_DRAWS, KAPLAN_REF, 6.0, 1e22, 1e11)
    many = al.inference_aware(KAPLAN, KAPLAN_DRAWS, KAPLAN_REF, 6.0, 1e22, 1e13)
    assert (many["N"] < few["N"]).all() and (many["D"] > few["D"]).all()


def test_scale_up_follows_the_exponent(real_fit):
    table = real_fit.scale_up(factor=10, compute=1e22).set_index("quantity")
    a = np.median(real_fit.draws("beta") / (real_fit.draws("alpha") + real_fit.draws("beta")))
    assert table.loc["N", "median"] == pytest.approx(10**a, rel=1e-6)
    assert table.loc["N", "kaplan"] == pytest.approx(10**0.73) and table.loc["D", "chinchilla"] == pytest.approx(
        10**0.5
    )


def test_probability(real_fit):
    draws = real_fit.allocation_draws(1e22)
    assert real_fit.probability("tokens_per_param", above=20, compute=1e22) == pytest.approx(
        np.mean(draws["tokens_per_param"] > 20)
    )
    assert real_fit.probability("a", above=0.0) == 1.0
    with pytest.raises(ValueError, match="unknown quantity"):
        real_fit.probability("gamma", above=1)


def test_optimal_table_columns(real_fit):
    table = real_fit.optimal([1e21, 1e22], inference_tokens=1e12)
    assert len(table) == 2
    for q in (*al.QUANTITIES, "inf_aware_N", "inf_aware_saving"):
        assert {f"{q}_median", f"{q}_mean", f"{q}_lower", f"{q}_upper"} <= set(table.columns)
    fixed = real_fit.optimal(N=7e9, loss=2.2)
    assert "D_median" in fixed.columns


@pytest.mark.parametrize(
    ("compute", "message"), [(-1.0, "positive and finite"), (np.inf, "positive and finite"), (1e9, "too small")]
)
def test_bad_budgets(real_fit, compute, message):
    with pytest.raises(al.AllocationError, match=message):
        real_fit.optimal(compute)


def test_law_without_n_and_d():
    with pytest.raises(al.AllocationError, match="allocation needs a law of N and D; law power:C"):
        al.check_law(get_law("power"))


def test_cli_optimal(real_fit_path, capsys):
    assert main(["optimal", str(real_fit_path), "--compute", "1e21", "5.88e23", "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    expected = ["compute"] + [f"{q}_{s}" for q in al.QUANTITIES for s in ("median", "lower", "upper")]
    assert list(table.columns) == expected and len(table) == 2
    assert (
        main(["optimal", str(real_fit_path), "--compute", "1e22", "--inference-tokens", "1T", "--format", "csv"]) == 0
    )
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert {"inf_aware_N_median", "inf_aware_saving_upper", "inference_tokens"} <= set(table.columns)


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [(["--compute=-5"], "positive"), (["--compute", "1e8"], "too small"), (["--N", "7e9"], "--N needs --target-loss")],
)
def test_cli_optimal_bad_input(real_fit_path, capsys, argv, pattern):
    assert main(["optimal", str(real_fit_path), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and pattern in err[0]
