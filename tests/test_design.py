"""Which runs next (bayescale.next_runs): ranking, greedy batches, budgets, errors, the command."""

from __future__ import annotations

import io
import logging

import numpy as np
import pandas as pd
import pytest

from bayescale.cli import main
from bayescale.next_runs import DesignError, candidate_grid, design

TARGET = (70e9, 1.4e12)


def candidates(fit) -> pd.DataFrame:
    """Candidates around the demo ladder: its sizes and 4x larger, at 5 to 80 tokens per parameter."""
    N = np.geomspace(fit.runs.values("N").min(), 4 * fit.runs.values("N").max(), 6)
    rows = [(n, r * n) for n in N for r in (5, 20, 80)]
    return pd.DataFrame(rows, columns=["N", "D"])


def test_ranking_and_batch_within_budget(real_fit):
    table = candidates(real_fit)
    budget = 6 * table["N"].max() * 20 * table["N"].max()  # the dearest 20-tokens-per-parameter run
    found = design(real_fit, TARGET, candidates=table, budget=budget, outcomes=32, draws=400, seed=1)
    assert len(found.candidates) == len(table)
    assert set(found.candidates.columns) >= {"N", "D", "C", "sd_after", "reduction", "reduction_per_flop", "pick"}
    batch = found.batch
    assert len(batch) >= 1 and batch["cumulative_C"].iloc[-1] <= budget * (1 + 1e-9)
    assert list(batch["pick"]) == list(range(1, len(batch) + 1))
    assert (np.diff(batch["sd_after"]) <= 1e-12).all() and found.sd_after < found.sd_before
    # every candidate is expected to narrow the band (reweighting never widens it on average)
    assert (found.candidates["reduction"] > -0.05 * found.sd_before**2).all()  # Monte Carlo error of 32 outcomes
    # picked rows come first, in order; the rest by value per FLOP
    picked = found.candidates[found.candidates["pick"] > 0]
    assert list(picked["pick"]) == list(range(1, len(batch) + 1))
    rest = found.candidates[found.candidates["pick"] == 0]["reduction_per_flop"].to_numpy()
    assert (np.diff(rest) <= 0).all()


def test_larger_runs_nearer_the_target_narrow_its_band_more(real_fit):
    table = candidates(real_fit)
    found = design(real_fit, TARGET, candidates=table, picks=1, outcomes=32, draws=400, seed=1)
    c = found.candidates.set_index(["N", "D"])["reduction"]
    small, large = table["N"].min(), table["N"].max()
    assert c.loc[(large, 20 * large)] > c.loc[(small, 20 * small)]


def test_a_second_copy_of_a_run_is_worth_less_than_the_first(real_fit):
    """Each pick is conditioned on the previous ones: the same run twice gains less the second time."""
    best = candidates(real_fit).iloc[[-2]]
    table = pd.concat([best, best], ignore_index=True)
    found = design(real_fit, TARGET, candidates=table, picks=2, outcomes=64, draws=400, seed=1)
    sd = [found.sd_before, *found.batch["sd_after"]]
    first, second = sd[0] ** 2 - sd[1] ** 2, sd[1] ** 2 - sd[2] ** 2
    assert 0 < second < first


def test_optimal_goal_and_default_grid(real_fit):
    cap = 10 * real_fit.runs.values("C").max()
    grid = candidate_grid(real_fit.runs, cap, real_fit.k)
    assert 0 < len(grid) <= 500 and (grid["C"] <= cap * (1 + 1e-9)).all()
    found = design(real_fit, TARGET, goal="optimal", max_compute=cap, picks=2, outcomes=16, draws=200, seed=2)
    assert found.goal == "optimal" and len(found.batch) == 2 and found.sd_after <= found.sd_before


def test_bad_questions_raise_one_line_errors(real_fit, caplog):
    table = candidates(real_fit)
    with pytest.raises(DesignError, match="smaller than the cheapest candidate"):
        design(real_fit, TARGET, candidates=table, budget=table.eval("6 * N * D").min() / 2)
    with pytest.raises(DesignError, match="two of the columns N, D, C"):
        design(real_fit, TARGET, candidates=pd.DataFrame({"N": [1e9], "loss": [2.0]}))
    with pytest.raises(DesignError, match="unknown goal"):
        design(real_fit, TARGET, goal="width", candidates=table)
    with pytest.raises(DesignError, match="--max-compute"):
        design(real_fit, TARGET)
    inside = (real_fit.runs.values("N")[0], real_fit.runs.values("D")[0])
    with caplog.at_level(logging.WARNING, logger="bayescale"):
        design(real_fit, inside, candidates=table, picks=1, outcomes=8, draws=100)
    assert "nothing to extrapolate" in caplog.text


def test_cli_design(real_fit, real_fit_path, tmp_path, capsys):
    path = tmp_path / "candidates.csv"
    candidates(real_fit).to_csv(path, index=False)
    png = tmp_path / "design.png"
    code = main(["design", str(real_fit_path), "--target", "70B,1.4T", "--candidates", str(path), "--picks", "2",
                 "--format", "csv", "--plot", str(png)])  # fmt: skip
    assert code == 0
    out = capsys.readouterr()
    table = pd.read_csv(io.StringIO(out.out))
    assert len(table) == 18 and (table["pick"] > 0).sum() == 2
    assert "sd now" in out.err and png.stat().st_size > 1000
    code = main(["design", str(real_fit_path), "--target", "70B,1.4T", "--candidates", str(path), "--picks", "1",
                 "--method", "reweight", "--format", "json"])  # fmt: skip
    assert code == 0 and '"pick"' in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("params_m,loss\n1,2\n")
    for args, message in (
        (["--candidates", str(bad)], "needs N and D"),
        (["--candidates", str(tmp_path / "nope.csv")], "candidate runs file"),
        (["--candidates", str(path), "--budget", "1"], "smaller than the cheapest"),
        ([], "either --candidates"),
    ):
        assert main(["design", str(real_fit_path), "--target", "70B,1.4T", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


@pytest.mark.parametrize("engine", ["linear", "reweight"])
def test_both_engines_give_the_closed_form_variance_after_a_run(engine):
    """A Gaussian toy with a known answer: theta ~ N(0, 1); candidate c observes a_c theta + N(0, s^2) noise,
    after which Var(theta) = 1 / (1 + a_c^2 / s^2). Both engines must reproduce it, hence rank by it."""
    from bayescale.next_runs import _Linear, _Reweight

    rng = np.random.default_rng(0)
    S, s = 4000, 0.5
    theta = rng.standard_normal(S)
    a = np.array([0.25, 0.5, 1.0, 2.0])
    mu = theta[:, None] * a[None, :]
    sigma, nu = np.full(S, s), np.full(S, 1e6)  # Student-t with nu -> inf: Gaussian noise
    exact = 1.0 / (1.0 / np.var(theta) + a**2 / s**2)  # the draws' own variance in place of 1
    if engine == "linear":
        got = _Linear(mu, theta, sigma, nu).expected()
        np.testing.assert_allclose(got, exact, rtol=1e-5)  # its noise sigma^2 (nu + 3) / (nu + 1): 2e-6 above s^2
    else:
        got = _Reweight(mu, theta, sigma, nu, outcomes=400, rng=np.random.default_rng(1)).expected()
        np.testing.assert_allclose(got, exact, rtol=0.1)  # 400 outcomes x 4,000 draws: a few % Monte Carlo error
    assert list(np.argsort(got)) == [3, 2, 1, 0]  # the most informative run first


def test_conditioning_on_a_pick_is_the_sequential_closed_form():
    """After observing candidate 0, candidate 1's value is what a second observation adds."""
    from bayescale.next_runs import _Linear

    rng = np.random.default_rng(2)
    theta = rng.standard_normal(4000)
    s = 0.5
    engine = _Linear(np.stack([theta, theta], axis=1), theta, np.full(4000, s), np.full(4000, 1e6))
    engine.add(0)
    v = np.var(theta)
    after_one = 1.0 / (1.0 / v + 1.0 / s**2)
    assert engine.variance == pytest.approx(after_one, rel=1e-5)
    assert engine.expected()[1] == pytest.approx(1.0 / (1.0 / v + 2.0 / s**2), rel=1e-5)
