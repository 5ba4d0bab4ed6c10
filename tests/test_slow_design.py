"""Slow check of the design's preposterior (run in CI): predicted against realised variance reduction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.laws.chinchilla import loss as chinchilla_loss
from bayescale.next_runs import design, goal_draws
from bayescale.predict import complete_inputs, law_log_loss

pytestmark = pytest.mark.slow

#: Besiroglu et al.'s refit of Chinchilla's runs: the known law of the simulation.
TRUTH = {"E": 1.817, "A": 482.0, "B": 2085.0, "alpha": 0.348, "beta": 0.366}
SIGMA = 0.01
TARGET = (1e10, 2e11)
CANDIDATE = (3e8, 6e9)
REFITS = 12


def _runs(N, D, rng):
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    return pd.DataFrame({"N": N, "D": D, "loss": chinchilla_loss(N, D, **TRUTH) * np.exp(rng.normal(0, SIGMA, N.size))})


def _fit(table):
    return bs.fit(table, law="chinchilla", seed=3, draws=2000, discrepancy=False, calibrate=False)


def _goal_variance(fit):
    index = np.arange(len(fit.draws("sigma")))
    return float(np.var(goal_draws(fit, "loss", TARGET, index)))


def test_predicted_variance_reduction_matches_the_realised_one():
    """A 9-run ladder (10M-100M parameters at 10-40 tokens per parameter) from a known law with 1% noise;
    ``design`` predicts the goal's variance (log loss at 10B / 200B tokens) after one more run at
    300M / 6B, by the linear-Gaussian update and by re-weighting the draws; 12 real re-fits with
    that run added give the realised variance, its outcome drawn as the preposterior analysis
    assumes (a posterior draw of the law, the fit's noise). Their mean must match each prediction
    within 3 standard errors (plus 5% for the prediction's own Monte Carlo error), and the run must
    be predicted to remove a real share. (Measured: 0.00133 linear, 0.00132 re-weighting, realised
    0.00114 +- 0.00005; before the run 0.00326.)

    (Drawn from the *true* law instead, the outcomes of this one ladder give a realised variance
    about 30% above the prediction -- 0.00173 +- 0.00014 against 0.00132 over 8 re-fits:
    the preposterior averages over what the posterior believes, and this ladder's posterior is off
    the truth in a direction where the target is less certain. docs/design.md.)"""
    rng = np.random.default_rng(0)
    N = np.repeat([1e7, 3e7, 1e8], 3)
    D = N * np.tile([10.0, 20.0, 40.0], 3)
    base = _runs(N, D, rng)
    fit = _fit(base)
    one = pd.DataFrame({"N": [CANDIDATE[0]], "D": [CANDIDATE[1]]})
    predicted = {}
    for method in ("linear", "reweight"):
        found = design(fit, TARGET, candidates=one, picks=1, method=method, outcomes=512, draws=8000, seed=1)
        predicted[method], before = found.sd_after**2, found.sd_before**2
        assert predicted[method] < 0.8 * before, (method, predicted, before)
    index = np.arange(len(fit.draws("sigma")))
    points = complete_inputs(fit.law, fit.k, N=[CANDIDATE[0]], D=[CANDIDATE[1]])
    mu = law_log_loss(fit.law, fit._sampled(), fit.reference, points)[:, 0]
    sigma, nu = fit.draws("sigma"), fit.draws("nu")
    realised = []
    for _ in range(REFITS):
        j = rng.choice(index)
        y = mu[j] + sigma[j] * rng.standard_t(nu[j])
        extra = pd.DataFrame({"N": [CANDIDATE[0]], "D": [CANDIDATE[1]], "loss": [np.exp(y)]})
        realised.append(_goal_variance(_fit(pd.concat([base, extra], ignore_index=True))))
    realised = np.array(realised)
    se = realised.std(ddof=1) / np.sqrt(REFITS)
    for method, value in predicted.items():
        assert abs(realised.mean() - value) <= 3 * se + 0.05 * value, (method, realised, predicted, before)
