"""Verdicts on diagnostics tables: chains (R-hat, ESS, divergences) and importance weights (khat)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayescale.diagnostics import assess, importance_table


def _chains(rhat: float, ess: float) -> xr.Dataset:
    return xr.Dataset(
        {
            "r_hat": ("parameter", [1.001, rhat]),
            "ess_bulk": ("parameter", [2000.0, ess]),
            "ess_tail": ("parameter", [2000.0, ess]),
            "khat": ("parameter", [np.nan, np.nan]),
        },
        coords={"parameter": np.array(["E", "alpha"], dtype=object)},
    )


def test_chains_that_agree_pass_and_an_importance_stage_needs_no_rhat():
    table = xr.concat([_chains(1.004, 900.0), importance_table(["delta_eta"], ess=1500.0, khat=0.2)], dim="parameter")
    verdict = assess(table, divergences=0, chains=4, draws=1000)
    assert verdict.ok, verdict.message()
    assert verdict.max_rhat == 1.004 and verdict.max_khat == 0.2


def test_each_failure_names_its_parameter_and_a_remedy():
    verdict = assess(_chains(1.05, 900.0), divergences=0, chains=4, draws=1000)
    assert not verdict.ok and "R-hat up to 1.050 (for alpha" in verdict.message()
    verdict = assess(_chains(1.0, 120.0), divergences=0, chains=4, draws=1000)
    assert "effective sample size down to 120 (for alpha" in verdict.message()
    table = xr.concat([_chains(1.0, 900.0), importance_table(["delta_eta"], ess=1500.0, khat=0.9)], dim="parameter")
    verdict = assess(table, divergences=0, chains=4, draws=1000)
    assert not verdict.ok and "Pareto khat 0.90 (for delta_eta" in verdict.message()


def test_a_stage_can_name_its_own_remedies():
    default = assess(_chains(1.05, 900.0), divergences=3, chains=4, draws=1000).message()
    assert "give alpha a stronger prior" in default and "priors on the exponents" in default
    own = assess(
        _chains(1.05, 900.0), divergences=3, chains=4, draws=1000,
        remedies={"alpha": "expect it here."}, divergence_remedy="Raise target_accept.",
    ).message()  # fmt: skip
    assert "(--tune 2000) or expect it here." in own and "3 divergent transitions: the posterior may be biased. " \
        "Raise target_accept." in own  # fmt: skip
    assert "stronger prior" not in own


def test_a_missing_rhat_of_a_chained_stage_fails():
    verdict = assess(_chains(np.nan, 900.0), divergences=0, chains=4, draws=1000)
    assert not verdict.ok and "R-hat" in verdict.message()


def test_tables_saved_before_khat_existed_are_judged_as_chains():
    verdict = assess(_chains(1.0, 900.0).drop_vars("khat"), divergences=0, chains=4, draws=1000)
    assert verdict.ok and np.isnan(verdict.max_khat)
