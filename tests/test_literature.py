"""The literature prior: shipped file, priors from it, prior sets, the meta-analysis, small ladders."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from bayescale import literature, metaanalysis
from bayescale.data import load_runs
from bayescale.errors import PriorError, RunsError
from tests.conftest import ROOT, needs_shared


def _runs(n_sizes=4, D=None, ratio=20.0, noise=0.0, seed=0):
    N = np.geomspace(2e7, 4e8, n_sizes)
    D = np.full(n_sizes, D) if D is not None else ratio * N
    loss = (1.8 + 400 / N**0.34 + 400 / D**0.28) * np.exp(np.random.default_rng(seed).normal(0, noise, n_sizes))
    return load_runs(pd.DataFrame({"N": N, "D": D, "loss": loss}))


def test_shipped_prior_has_every_quantity_and_its_provenance():
    doc = literature.load()
    assert doc["law"] == "chinchilla" and doc["version"] >= 1
    assert set(doc["sources"]) == {"gadre2024", "hoffmann2022", "muennighoff2023", "porian2024"}
    for q in metaanalysis.QUANTITIES:
        s = doc["quantities"][q]
        assert np.isfinite(s["mean"]) and s["sd"] > 0
    # the exponents' population is centred on the field's values: alpha, beta between 0.15 and 0.7
    for q in ("log_alpha", "log_beta"):
        assert 0.15 < np.exp(doc["quantities"][q]["mean"]) < 0.7
    table = pd.read_csv(ROOT / "bayescale" / "priors_data" / "literature_ladders.csv")
    assert table.drop_duplicates(["source", "ladder"]).shape[0] == doc["ladders"]


def test_priors_for_scales_E_by_the_smallest_loss():
    runs = _runs()
    p = literature.priors_for("chinchilla", runs)
    assert set(p) == {"alpha", "beta", "E", "sigma"}
    assert p["E"].dist == "TruncatedNormal"
    assert p["E"].kwargs["upper"] == pytest.approx(runs.loss.min())
    assert 0 < p["E"].kwargs["mu"] < runs.loss.min()
    q = literature.load()["quantities"]
    assert p["alpha"].kwargs == {"mu": q["log_alpha"]["mean"], "sigma": q["log_alpha"]["sd"]}
    assert p["beta"].kwargs == {"mu": q["log_beta"]["mean"], "sigma": q["log_beta"]["sd"]}
    assert p["sigma"].kwargs == {"mu": q["log_sigma"]["mean"], "sigma": q["log_sigma"]["sd"]}
    frac_mean, frac_sd = literature.sigmoid_moments(q["logit_E_frac"]["mean"], q["logit_E_frac"]["sd"])
    assert p["E"].kwargs["mu"] == pytest.approx(frac_mean * runs.loss.min())
    assert p["E"].kwargs["sigma"] == pytest.approx(frac_sd * runs.loss.min())


def test_the_shipped_populations_pass_the_packages_own_diagnostics():
    """literature.json and each of its leave-one-source-out populations: R-hat <= 1.01, bulk ESS >= 400."""
    from bayescale.diagnostics import MAX_RHAT, MIN_ESS_PER_CHAIN

    doc = literature.load()
    populations = {"all": doc["quantities"]} | {s: w["quantities"] for s, w in doc["without"].items()}
    assert set(doc["without"]) == set(doc["sources"])
    for name, quantities in populations.items():
        assert set(quantities) == set(metaanalysis.QUANTITIES), name
        for q, s in quantities.items():
            assert s["max_rhat"] <= MAX_RHAT, (name, q, s["max_rhat"])
            assert s["min_ess_bulk"] >= 4 * MIN_ESS_PER_CHAIN, (name, q, s["min_ess_bulk"])
    for source, w in doc["without"].items():
        assert source not in w["sources"] and len(w["sources"]) == len(doc["sources"]) - 1
        assert all(s["sources"] == len(doc["sources"]) - 1 for s in w["quantities"].values())


def test_a_prior_set_can_leave_a_source_out():
    from bayescale.laws import get_law
    from bayescale.model import resolve_priors

    runs, law = _runs(), get_law("chinchilla")
    default = resolve_priors(law, runs, None, "auto")
    without = resolve_priors(law, runs, None, "auto without hoffmann2022")
    q = literature.load()["without"]["hoffmann2022"]["quantities"]
    assert without["alpha"].kwargs == {"mu": q["log_alpha"]["mean"], "sigma": q["log_alpha"]["sd"]}
    assert without["alpha"].kwargs != default["alpha"].kwargs
    assert without["log_A_ref"] == default["log_A_ref"]  # the amplitudes keep their weak priors either way
    assert literature.split_set("auto without gadre2024") == ("auto", "gadre2024")
    assert literature.with_exclusion("literature", "porian2024") == "literature without porian2024"
    with pytest.raises(PriorError, match=r"no literature prior without 'epoch'.*gadre2024"):
        resolve_priors(law, runs, None, "auto without epoch")
    with pytest.raises(PriorError, match="needs the literature prior"):
        resolve_priors(law, runs, None, "weak without gadre2024")


def test_prior_sets_resolve():
    assert literature.resolve_set("auto", "chinchilla") == "literature"
    assert literature.resolve_set("auto", "power:C") == "weak"
    assert literature.resolve_set("weak", "chinchilla") == "weak"
    with pytest.raises(PriorError, match="no literature prior for law kaplan"):
        literature.resolve_set("literature", "kaplan")
    with pytest.raises(PriorError, match="unknown prior set"):
        literature.resolve_set("strong", "chinchilla")


def test_sigmoid_moments_match_monte_carlo():
    x = np.random.default_rng(0).normal(0.9, 0.8, 400_000)
    f = 1 / (1 + np.exp(-x))
    m, s = literature.sigmoid_moments(0.9, 0.8)
    assert m == pytest.approx(f.mean(), abs=2e-3)
    assert s == pytest.approx(f.std(), abs=2e-3)


def test_user_prior_overrides_the_literature_one():
    from bayescale.laws import get_law
    from bayescale.model import resolve_priors

    runs = _runs()
    p = resolve_priors(get_law("chinchilla"), runs, {"alpha": "Normal(0.3, 0.01)"}, "literature")
    assert p["alpha"].dist == "Normal" and p["beta"].dist == "LogNormal"
    weak = resolve_priors(get_law("chinchilla"), runs, None, "weak")
    assert weak["alpha"].kwargs["mu"] == pytest.approx(np.log(0.3))


def test_ladder_quantities_rows():
    rng = np.random.default_rng(1)
    draws = {"E": rng.normal(1.8, 0.01, 500), "alpha": rng.lognormal(np.log(0.3), 0.05, 500)}
    draws |= {"beta": rng.lognormal(np.log(0.35), 0.05, 500), "sigma": rng.lognormal(np.log(0.01), 0.1, 500)}
    N = np.geomspace(1e7, 1e9, 20)
    C = 6 * N * 20 * N
    loss = 1.8 + 300 / N**0.3
    rows = pd.DataFrame(metaanalysis.ladder_quantities(draws, N, C, loss))
    assert set(rows["quantity"]) == set(metaanalysis.QUANTITIES)
    one = rows.set_index(["quantity", "reach"])
    assert one.loc[("log_alpha", "all"), "estimate"] == pytest.approx(np.log(0.3), abs=0.01)
    assert one.loc[("log_alpha", "all"), "se"] == pytest.approx(0.05, rel=0.15)
    frac = rows[rows["quantity"] == "logit_E_frac"]
    # sub-ladders of smaller models sit further above E: a lower share E / L_min
    assert (frac["estimate"].iloc[1:] < frac["estimate"].iloc[0]).all()


def test_three_run_floor(mock_sampler):
    import bayescale as bs

    with pytest.raises(RunsError, match="at least 3 runs"):
        bs.fit(pd.DataFrame({"N": [1e8, 2e8], "D": [2e9, 4e9], "loss": [3.2, 3.0]}), draws=10, tune=10)
    with pytest.raises(RunsError, match="every run has the same N and D"):
        bs.fit(pd.DataFrame({"N": [1e8] * 3, "D": [2e9] * 3, "loss": [3.2, 3.1, 3.0]}), draws=10, tune=10)


@pytest.mark.parametrize("kind", ["one_D", "one_line"])
def test_unidentified_ladders_fit_and_record_the_prior_set(mock_sampler, kind):
    import bayescale as bs

    runs = _runs(4, D=5e9) if kind == "one_D" else _runs(4, ratio=20.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mocked draws fail diagnostics
        f = bs.fit(runs, draws=20, tune=20, seed=1, retry=False)
    assert f.prior_set == "literature"
    assert f.tree.attrs["prior_set"] == "literature"
    assert f.priors["alpha"].dist == "LogNormal"


def test_cli_refuses_two_runs_with_one_line(runs_csv, tmp_path):
    path = runs_csv("N,D,loss\n1e8,2e9,3.2\n2e8,4e9,3.0\n")
    out = subprocess.run(
        [sys.executable, "-m", "bayescale.cli", "fit", str(path), "--out", str(tmp_path / "f.nc")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "at least 3 runs" in out.stderr


@pytest.mark.slow
def test_small_ladders_fit_cleanly_and_widen_off_their_line(tmp_path):
    """A 4-run one-line ladder and a 6-run one-budget ladder fit cleanly; their bands are finite and widen off the line.

    Clean: no diagnostics warning (R-hat, ESS, divergences of the law's chains; Pareto khat of
    the discrepancy's importance weights) -- with the retry at target_accept 0.99, which these
    ladders' curved posteriors need.
    """
    import bayescale as bs
    from bayescale.diagnostics import DiagnosticsWarning

    for runs, on, off in (
        # run-to-run noise of 0.5% of the loss, as on real ladders (noise-free losses push sigma towards 0,
        # a funnel of its own that no real ladder has)
        (_runs(4, ratio=20.0, noise=0.005), (4e9, 8e10), (4e9, 4e12)),
        (_runs(6, D=5e9, noise=0.005), (4e9, 5e9), (4e9, 5e11)),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("error", DiagnosticsWarning)
            f = bs.fit(runs, seed=5)
        assert f.diagnostics.ok and f.diagnostics.divergences == 0
        p = f.predict(N=[on[0], off[0]], D=[on[1], off[1]])
        rel = ((p["upper"] - p["lower"]) / p["median"]).to_numpy()
        assert np.isfinite(rel).all()
        assert rel[1] > 1.5 * rel[0]


@pytest.mark.slow
@needs_shared
def test_regeneration_script_runs_on_a_small_subset(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "learn_literature_prior.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    import json

    doc = json.loads((tmp_path / "literature.json").read_text())
    assert set(doc["quantities"]) == set(metaanalysis.QUANTITIES)
    assert len(doc["sources"]) == 4 and doc["ladders"] == 6  # two per source where a source has two
    assert 0.1 < np.exp(doc["quantities"]["log_alpha"]["mean"]) < 0.8
    ((left_out, rest),) = doc["without"].items()  # --quick: the first source's leave-one-out population
    assert left_out == doc["sources"][0] and left_out not in rest["sources"] and len(rest["sources"]) == 3
    assert set(rest["quantities"]) == set(metaanalysis.QUANTITIES)


def test_population_returns_each_quantitys_predictive_and_counts(mock_sampler):
    """metaanalysis.population on a small table (mocked draws: the structure, not the numbers)."""
    rng = np.random.default_rng(0)
    rows = []
    for source, n_ladders in (("a", 2), ("b", 3), ("c", 1)):
        for ladder in range(n_ladders):
            for q in metaanalysis.QUANTITIES:
                reaches = ("all", "top") if q == "logit_E_frac" else ("all",)
                for reach in reaches:
                    rows.append(
                        {
                            "source": source,
                            "ladder": f"l{ladder}",
                            "runs": 20,
                            "quantity": q,
                            "reach": reach,
                            "estimate": rng.normal(-1.0, 0.2),
                            "se": 0.05,
                        }
                    )
    table = pd.DataFrame(rows)
    pop = metaanalysis.population(table, draws=50, tune=50, chains=2, seed=1)
    assert set(pop) == set(metaanalysis.QUANTITIES)
    for q, s in pop.items():
        assert s["sources"] == 3 and s["ladders"] == 6
        assert s["rows"] == (12 if q == "logit_E_frac" else 6)
        assert np.isfinite(s["mean"]) and s["sd"] > 0
        assert s["tau_source"] > 0 and s["tau_ladder"] > 0
        assert ("tau_reach" in s) == (q == "logit_E_frac")
