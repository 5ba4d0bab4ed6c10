"""Slow check of the design's preposterior (run in CI): predicted against realised variance reduction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

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


def _fit(table, priors=None):
    return bs.fit(table, law="chinchilla", priors=priors, seed=3, draws=2000, discrepancy=False, calibrate=False)


def _goal_variance(fit):
    index = np.arange(len(fit.draws("sigma")))
    return float(np.var(goal_draws(fit, "loss", TARGET, index)))


def _reweighted_variance(g, mu, sigma, nu, y):
    """The goal's variance after observing each ``y``, by re-weighting the draws (scipy, not the package)."""
    log_w = stats.t.logpdf(np.asarray(y)[:, None], nu, loc=mu, scale=sigma)
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    mean = w @ g
    return (w * (g - mean[:, None]) ** 2).sum(axis=1)


def test_predicted_variance_reduction_matches_the_realised_one():
    """A 9-run ladder (10M-100M parameters at 10-40 tokens per parameter) from a known law with 1% noise;
    ``design`` predicts the goal's variance (log loss at 10B / 200B tokens) after one more run at
    300M / 6B. Three checks, each against an independent computation:

    1. ``reweight``'s expected variance (512 simulated outcomes) against the preposterior mean over
       4,000 outcomes computed here with scipy: within 3 Monte Carlo standard errors of the two.
    2. ``linear`` is the variance left by the best *linear* predictor, an upper bound of the expected
       posterior variance: at least it (less 3 se) and at most 30% above.
    3. Real re-fits: 12 outcomes drawn as the preposterior assumes (a posterior draw of the law, the
       fit's noise), each re-fitted by NUTS with the same priors; each re-fit's variance against the
       re-weighted variance for *that* outcome (paired, so the outcomes' skewed spread cancels): mean
       ratio within 3 se + 10% of 1 (the 10%: the re-fit's centred parametrisation takes its reference
       point from the 10 runs, not the 9). Measured: ratio 0.91 +- 0.013; check 1: 0.001517 against
       0.001538 +- 0.000041; linear 0.001544.

    (Why not the realised mean against the expected variance directly: the posterior variance after
    one outcome is right-skewed across outcomes -- tail outcomes leave much more -- so 12 re-fits'
    mean sat 20% below the 512-outcome expectation, 4 of their own standard errors, on two machines.
    Drawn from the *true* law instead, this ladder's outcomes leave about 30% more variance than
    predicted: the preposterior averages over what the posterior believes. docs/design.md.)"""
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
    g = goal_draws(fit, "loss", TARGET, index)
    points = complete_inputs(fit.law, fit.k, N=[CANDIDATE[0]], D=[CANDIDATE[1]])
    mu = law_log_loss(fit.law, fit._sampled(), fit.reference, points)[:, 0]
    sigma, nu = fit.draws("sigma"), fit.draws("nu")

    def outcomes(size):
        j = rng.choice(index, size)
        return mu[j] + sigma[j] * rng.standard_t(nu[j])

    after = np.concatenate([_reweighted_variance(g, mu, sigma, nu, y) for y in np.split(outcomes(4000), 8)])
    expected = after.mean()
    se = after.std(ddof=1) * np.sqrt(1 / 512 + 1 / after.size)
    assert abs(predicted["reweight"] - expected) <= 3 * se, (predicted, expected, se)
    assert expected - 3 * se <= predicted["linear"] <= 1.3 * expected, (predicted, expected, se)

    ys = outcomes(REFITS)
    paired = _reweighted_variance(g, mu, sigma, nu, ys)
    realised = []
    for y in ys:
        extra = pd.DataFrame({"N": [CANDIDATE[0]], "D": [CANDIDATE[1]], "loss": [np.exp(y)]})
        realised.append(_goal_variance(_fit(pd.concat([base, extra], ignore_index=True), priors=fit.priors)))
    ratio = np.array(realised) / paired
    se_ratio = ratio.std(ddof=1) / np.sqrt(REFITS)
    assert abs(ratio.mean() - 1) <= 3 * se_ratio + 0.10, (ratio, realised, paired)
