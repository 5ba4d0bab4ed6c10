"""Importance sampling of low-dimensional posteriors (bayescale.importance)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayescale import importance


def _gaussian(mean: np.ndarray, cov: np.ndarray):
    dist = stats.multivariate_normal(mean, cov)
    return lambda x: dist.logpdf(x)


def test_hessian_of_a_quadratic_is_exact():
    A = np.array([[2.0, 0.3], [0.3, 1.0]])
    H = importance.hessian(lambda x: 0.5 * x @ A @ x, np.array([0.4, -1.0]))
    np.testing.assert_allclose(H, A, atol=1e-6)


def test_laplace_scale_keeps_flat_directions_wide():
    cov = importance.laplace_scale(lambda x: 0.5 * 4.0 * x[0] ** 2, np.zeros(2), floor=1e-2)
    assert cov[0, 0] == pytest.approx(0.25, rel=1e-4)
    assert cov[1, 1] == pytest.approx(100.0)


def test_draws_follow_a_correlated_target_when_the_first_proposal_is_off():
    # the second coordinate leans on the first; the Laplace start is off in centre and scale
    def log_density(x):
        return stats.norm.logpdf(x[:, 0], 0.0, 0.5) + stats.norm.logpdf(x[:, 1] - 0.5 * x[:, 0], 1.0, 0.2)

    out = importance.sample(log_density, np.array([0.3, 0.8]), np.diag([0.1, 0.1]), 4000, np.random.default_rng(1))
    assert out.ok and out.ess > 1000
    assert out.draws.shape == (4000, 2)
    np.testing.assert_allclose(out.draws.mean(0), [0.0, 1.0], atol=0.05)
    np.testing.assert_allclose(out.draws.std(0), [0.5, np.sqrt(0.2**2 + 0.25**2)], rtol=0.08)


def test_a_target_far_heavier_than_the_proposal_is_flagged():
    def cauchy(x):
        return np.sum(stats.cauchy.logpdf(x), axis=1)

    # a proposal a hundred times too narrow, with too few proposals to adapt: the weights cannot be trusted
    out = importance.sample(cauchy, np.zeros(3), 1e-4 * np.eye(3), 1000, np.random.default_rng(2))
    assert not out.ok and out.khat > importance.MAX_KHAT


def test_points_outside_the_support_get_no_weight():
    def half(x):
        return np.where(x[:, 0] > 0, stats.norm.logpdf(x[:, 0]), -np.inf)

    out = importance.sample(half, np.array([0.5]), np.eye(1), 2000, np.random.default_rng(3))
    assert out.ok and np.all(out.draws > 0)
    assert np.mean(out.draws) == pytest.approx(np.sqrt(2 / np.pi), abs=0.05)
