"""Slow check (run in CI): the Chinchilla law written as a formula agrees with the built-in class."""

from __future__ import annotations

import numpy as np
import pytest

import bayescale as bs
from bayescale.datasets import load_chinchilla
from bayescale.laws.formula import prepare

pytestmark = pytest.mark.slow


def test_the_chinchilla_formula_gives_the_built_in_posterior():
    """On the 245 Chinchilla runs, the formula ``E + A/N^alpha + B/D^beta`` (default priors by role) and
    the built-in class (its weak data-scaled priors) give posterior medians of E, A, B, alpha, beta
    within half a posterior sd of each other: the same law, sampled the same way (centred amplitudes),
    with priors the 245 runs overwhelm."""
    runs = load_chinchilla()
    law, formula_runs = prepare(runs.table[["N", "D", "loss"]], "E + A/N^alpha + B/D^beta")
    kwargs = {"seed": 5, "discrepancy": False, "calibrate": False}
    built_in = bs.fit(runs, law="chinchilla", prior_set="weak", **kwargs)
    formula = bs.fit(formula_runs, law=law, **kwargs)
    assert formula.diagnostics.ok and built_in.diagnostics.ok
    a, b = built_in.summary().set_index("parameter"), formula.summary().set_index("parameter")
    for name in ("E", "A", "B", "alpha", "beta"):
        gap = abs(a.loc[name, "median"] - b.loc[name, "median"])
        assert gap <= 0.5 * min(a.loc[name, "sd"], b.loc[name, "sd"]), (name, a.loc[name], b.loc[name])
    np.testing.assert_allclose(
        formula.predict(points={"N": [7e10], "D": [1.4e12]})["median"],
        built_in.predict(N=7e10, D=1.4e12)["median"],
        rtol=0.005,
    )
