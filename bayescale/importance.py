"""Importance sampling of a low-dimensional posterior, checked by Pareto-smoothed weights.

Where a posterior has a handful of parameters and a log density that is cheap to evaluate
for many points at once (the discrepancy stage: three or four hyperparameters with the
basis coefficients integrated out), independent draws by importance sampling cost a
fraction of NUTS: no compilation, no tuning, no chains that can disagree. The proposal is a
multivariate Student-t centred at the posterior mode with the inverse Hessian as its scale
(a Laplace approximation with heavier tails), refined once by the weighted moments of its
own draws (adaptive importance sampling). Pareto-smoothed importance sampling (Vehtari et
al. 2024) both stabilises the weights and says whether they can be trusted: its shape
estimate ``khat`` below 0.7 means the proposal covers the posterior; above it the caller
must fall back to MCMC.

Everything here is numpy and scipy; the PSIS weights come from ArviZ (``arviz_stats``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Largest Pareto shape at which importance weights are trusted (Vehtari et al. 2024).
MAX_KHAT = 0.7
#: Degrees of freedom of the Student-t proposal: heavier tails than the posterior's.
PROPOSAL_DF = 5.0
#: Widening of the proposal's scale over the inverse Hessian.
PROPOSAL_WIDEN = 1.6
#: Proposals of the first round, which only adapts the proposal's centre and scale.
ADAPT_PROPOSALS = 1000
#: Share of the proposal drawn from a component twice as wide (defensive importance sampling,
#: Hesterberg 1995): weights stay bounded where the posterior has a longer tail than the
#: Laplace approximation says -- the exponential tail of log eta when the runs show no
#: discrepancy, whose mode sits at a sharp bend.
DEFENSIVE = 0.1
#: Effective sample size the final round extends to (more proposals from the same proposal,
#: up to :data:`MAX_PROPOSAL_ROUNDS` times as many), when the trusted weights fall short.
MIN_ESS = 1000
MAX_PROPOSAL_ROUNDS = 4

LogDensity = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ImportanceDraws:
    """Draws resampled from a weighted importance sample, and how far to trust them.

    Attributes
    ----------
    draws : array (S, P)
        ``S`` draws of the ``P`` parameters (unconstrained scale), resampled in proportion to
        the Pareto-smoothed weights.
    khat : float
        Pareto shape of the weights' tail; at most :data:`MAX_KHAT` for trustworthy draws.
    ess : float
        Effective sample size of the weighted sample, ``1 / sum(w^2)``.
    proposals : int
        Points at which the log density was evaluated.
    """

    draws: np.ndarray
    khat: float
    ess: float
    proposals: int

    @property
    def ok(self) -> bool:
        """Whether the weights can be trusted (``khat`` at most :data:`MAX_KHAT`)."""
        return bool(np.isfinite(self.khat) and self.khat <= MAX_KHAT)


def hessian(f: Callable[[np.ndarray], float], x: np.ndarray, step: float = 1e-3) -> np.ndarray:
    """Central-difference Hessian of a scalar function ``f`` at ``x``.

    A fixed step: ``2 p^2 + 1`` evaluations for ``p`` (at most four) hyperparameters, each one Cholesky
    factor of the collapsed posterior. ``scipy.differentiate.hessian`` adapts its steps with several times
    as many evaluations and wants a vectorised ``f``; at a mode found by L-BFGS-B on a smooth density, a
    fixed step of 1e-3 on the log scale errs by order 1e-6 (the step squared), ample for a proposal's scale.
    """
    x = np.asarray(x, dtype=float)
    p = x.size
    H = np.empty((p, p))
    f0 = f(x)
    for i in range(p):
        ei = np.zeros(p)
        ei[i] = step
        H[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / step**2
        for j in range(i):
            ej = np.zeros(p)
            ej[j] = step
            H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * step**2)
    return H


def laplace_scale(neg_log_density: Callable[[np.ndarray], float], mode: np.ndarray, floor: float = 1e-4) -> np.ndarray:
    """Covariance of the Laplace approximation at ``mode``: the inverse Hessian, made positive definite.

    At a mode on a boundary (a length-scale at its floor) or in a flat direction the Hessian
    is not positive definite; its eigenvalues are clipped from below, so that the proposal
    stays wide along such directions (at most ``1 / floor`` in variance).
    """
    H = hessian(neg_log_density, mode)
    H = 0.5 * (H + H.T)
    values, vectors = np.linalg.eigh(H)
    values = np.clip(values, floor, None)
    return (vectors / values) @ vectors.T


def _t_logpdf(x: np.ndarray, mean: np.ndarray, chol: np.ndarray, df: float) -> np.ndarray:
    """Log density of the multivariate Student-t with scale ``chol @ chol.T`` (scipy.stats.multivariate_t)."""
    from scipy.stats import multivariate_t

    return np.atleast_1d(multivariate_t(loc=mean, shape=chol @ chol.T, df=df).logpdf(x))


def _t_draws(rng: np.random.Generator, mean: np.ndarray, chol: np.ndarray, df: float, n: int) -> np.ndarray:
    """Draws of that Student-t. Written out rather than ``multivariate_t.rvs``: the same distribution, but
    scipy consumes the generator in another order, and this order is what every saved seeded fit drew."""
    z = rng.standard_normal((n, mean.size))
    g = rng.chisquare(df, size=(n, 1)) / df
    return mean + (z / np.sqrt(g)) @ chol.T


def _proposal_draws(rng: np.random.Generator, mean: np.ndarray, chol: np.ndarray, n: int) -> np.ndarray:
    """Draws of the defensive mixture: the Student-t, and with probability :data:`DEFENSIVE` one twice as wide."""
    wide = rng.random((n, 1)) < DEFENSIVE
    return np.where(wide, _t_draws(rng, mean, 2 * chol, PROPOSAL_DF, n), _t_draws(rng, mean, chol, PROPOSAL_DF, n))


def _proposal_logpdf(x: np.ndarray, mean: np.ndarray, chol: np.ndarray) -> np.ndarray:
    return np.logaddexp(
        np.log1p(-DEFENSIVE) + _t_logpdf(x, mean, chol, PROPOSAL_DF),
        np.log(DEFENSIVE) + _t_logpdf(x, mean, 2 * chol, PROPOSAL_DF),
    )


def _weighted(log_target: np.ndarray, log_proposal: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Normalised PSIS weights, their Pareto shape and effective sample size."""
    from arviz_stats.base import array_stats

    log_ratio = np.where(np.isfinite(log_target), log_target - log_proposal, -np.inf)
    finite = np.isfinite(log_ratio)
    if finite.sum() < 10:
        return np.zeros_like(log_ratio), float("inf"), 0.0
    log_ratio = np.where(finite, log_ratio, np.min(log_ratio[finite]) - 1e3)
    # arviz_stats takes the negated log ratios (for PSIS-LOO: the log-likelihood of the left-out point)
    lw, khat = array_stats.psislw(np.max(log_ratio) - log_ratio)
    lw = np.asarray(lw, dtype=float)
    w = np.exp(lw - np.max(lw))
    w = np.where(finite, w, 0.0)
    w /= w.sum()
    return w, float(khat), float(1.0 / np.sum(w**2))


def sample(
    log_density: LogDensity,
    mode: np.ndarray,
    cov: np.ndarray,
    draws: int,
    rng: np.random.Generator,
    proposals: int | None = None,
) -> ImportanceDraws:
    """Draws from ``exp(log_density)`` by adaptive importance sampling from a Student-t proposal.

    Parameters
    ----------
    log_density : callable
        Unnormalised log density of a batch of points (B, P) -> (B,); ``-inf`` outside the support.
    mode, cov : array
        Centre (P,) and covariance (P, P) of the first proposal (the Laplace approximation).
    draws : int
        Draws to return.
    rng : numpy.random.Generator
    proposals : int, optional
        Proposals of the final round (default ``draws``, at least 1,000). Two rounds: the
        Laplace proposal (:data:`ADAPT_PROPOSALS` points), then a proposal with the weighted
        mean and covariance of the first round's draws; the round whose weights have the
        smaller Pareto shape (or, both trusted, the larger effective size) is kept, and
        extended by more draws of its proposal while its effective size is below
        :data:`MIN_ESS`. Each proposal is a defensive mixture (:data:`DEFENSIVE`).

    Returns
    -------
    ImportanceDraws
    """
    mode = np.asarray(mode, dtype=float)
    m = max(int(proposals or draws), 1000)
    best: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    best_fit = (np.inf, 0.0)
    mean, scale = mode, np.linalg.cholesky(PROPOSAL_WIDEN**2 * cov + 1e-12 * np.eye(mode.size))
    evaluated = 0
    # round 1 only locates the posterior (its mean and covariance): ADAPT_PROPOSALS points suffice
    for size in (min(m, ADAPT_PROPOSALS), m):
        x = _proposal_draws(rng, mean, scale, size)
        log_target, log_proposal = log_density(x), _proposal_logpdf(x, mean, scale)
        evaluated += size
        w, khat, ess = _weighted(log_target, log_proposal)
        if best is None or khat < best_fit[0] or (khat <= MAX_KHAT and ess > best_fit[1]):
            best, best_fit = (x, log_target, log_proposal, mean, scale), (khat, ess)
        if ess < 20:
            break
        mean = w @ x
        centred = x - mean
        moment = (centred * w[:, None]).T @ centred
        try:
            scale = np.linalg.cholesky(PROPOSAL_WIDEN**2 * moment + 1e-12 * np.eye(mode.size))
        except np.linalg.LinAlgError:
            break
    x, log_target, log_proposal, mean, scale = best
    w, khat, ess = _weighted(log_target, log_proposal)
    # too few effective draws from a trusted proposal: more of the same proposal, pooled
    for _ in range(MAX_PROPOSAL_ROUNDS - 1):
        if not (khat <= MAX_KHAT and ess < MIN_ESS):
            break
        more = _proposal_draws(rng, mean, scale, m)
        evaluated += m
        x = np.concatenate([x, more])
        log_target = np.concatenate([log_target, log_density(more)])
        log_proposal = np.concatenate([log_proposal, _proposal_logpdf(more, mean, scale)])
        w, khat, ess = _weighted(log_target, log_proposal)
    # systematic resampling: draws in proportion to the weights, with the least added noise
    positions = (rng.random() + np.arange(draws)) / draws
    index = np.minimum(np.searchsorted(np.cumsum(w), positions), x.shape[0] - 1)
    return ImportanceDraws(draws=x[rng.permutation(index)], khat=khat, ess=ess, proposals=evaluated)
