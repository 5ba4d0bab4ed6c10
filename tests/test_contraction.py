"""Posterior contraction: what the runs decided, against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from bayescale.contraction import contraction, contractions, prior_draws
from bayescale.laws import get_law
from bayescale.priors import Prior


def test_contraction_of_a_conjugate_normal():
    # prior Normal(0, 1), 3 observations of sd 1: posterior sd 1/2, contraction 1 - 1/4
    rng = np.random.default_rng(0)
    prior = rng.normal(0, 1, 200_000)
    posterior = rng.normal(0.3, 0.5, 200_000)
    assert contraction(prior, posterior) == pytest.approx(0.75, abs=0.01)


def test_contraction_is_zero_when_the_posterior_is_the_prior_and_negative_when_wider():
    rng = np.random.default_rng(1)
    assert contraction(rng.normal(0, 1, 200_000), rng.normal(0, 1, 200_000)) == pytest.approx(0, abs=0.02)
    assert contraction(rng.normal(0, 1, 200_000), rng.normal(0, 2, 200_000)) < -2


def test_log_scale_for_amplitudes():
    rng = np.random.default_rng(2)
    prior = np.exp(rng.normal(5, 2, 200_000))
    posterior = np.exp(rng.normal(5, 0.2, 200_000))
    assert contraction(prior, posterior, log=True) == pytest.approx(0.99, abs=0.005)


def test_prior_draws_go_through_the_law():
    law = get_law("chinchilla")
    priors = {
        "E": Prior("TruncatedNormal", mu=1.5, sigma=0.2, lower=0, upper=2),
        "alpha": Prior("LogNormal", mu=np.log(0.3), sigma=0.1),
        "beta": Prior("Constant", value=0.3),
        "log_A_ref": Prior("Normal", mu=0.0, sigma=1.0),
        "log_B_ref": Prior("Normal", mu=0.0, sigma=1.0),
        "sigma": Prior("HalfNormal", sigma=0.05),
        "nu": Prior("Gamma", alpha=2.0, beta=0.1),
    }
    ref = {"N": np.log(1e8), "D": np.log(2e9)}
    d = prior_draws(law, priors, ref, n=5000)
    assert (d["E"] < 2).all() and (d["beta"] == 0.3).all()
    np.testing.assert_allclose(d["A"], np.exp(d["log_A_ref"] + d["alpha"] * ref["N"]))
    c = contractions(law, priors, ref, {n: d[n] for n in ("E", "beta")}, ["E", "beta"])
    assert c["E"] == pytest.approx(0, abs=0.05)
    assert np.isnan(c["beta"])  # fixed


def test_summary_reports_contraction(real_fit):
    table = real_fit.summary()
    assert {"contraction", "decided_by"} <= set(table.columns)
    row = table.set_index("parameter")
    # the demo ladder (many runs on a grid) decides the exponents; nu's tails stay with the prior
    assert row.loc["alpha", "contraction"] > 0.5 and row.loc["alpha", "decided_by"] == "data"
    assert row.loc["nu", "decided_by"] == "prior"
