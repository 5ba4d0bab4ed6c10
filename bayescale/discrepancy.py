"""Model discrepancy: a Gaussian process on the law's residuals, fitted after the law.

A scaling law is only approximately right. Its misfit is structured -- runs of one model
size or one token budget share an error, a region of the (N, D) plane sits above the law --
and the law's own posterior cannot see how large that misfit is where there are no runs.
Following Kennedy and O'Hagan (2001), bayescale writes the log loss of a run as

    log L = log L_law(N, D) + delta(log N, log D) + noise,

with ``delta`` a Gaussian process (squared-exponential kernel, amplitude ``eta``, one
length-scale per input in natural-log units) and Student-t noise. Far from the runs,
``delta`` reverts to its prior: a band of about +-1.64 eta, learned from how far the runs
themselves stray from the law. Near the runs it carries the local misfit into the
prediction. Where the law fits, ``eta`` shrinks towards zero and bands do not widen.

The discrepancy and the law are confounded: a flexible ``delta`` can explain what the law
should. To keep the law's parameters (and with them the allocation answers) those of the
law alone, the discrepancy is fitted in a second stage to the residuals of the law's
posterior median, without feedback into the law (a *modular* or *cut* posterior; Liu,
Bayarri and Berger 2009). Predictions add independent draws of both stages.

The GP is fitted with the Hilbert-space approximation of Solin and Saerkkae (2020)
(Riutort-Mayol et al. 2023): ``delta(x) = Phi(x) (eta sqrt(S(w)) z)``, ``z ~ Normal(0, 1)``,
with the sine basis ``Phi`` of a box ``BOX`` times larger than the data. Predictions top up
the variance the truncated basis misses, ``eta^2 - sum_j S_j phi_j(x)^2``, with independent
noise, so that far outside the box -- where the basis vanishes -- ``delta`` has its exact
stationary distribution Normal(0, eta^2).

The amplitude may change with the runs' regime (:class:`Regime`, chosen by :func:`choose_regime`):
``eta * exp(gamma * u(x))``, larger where the worst-fitted runs are (the most under-trained), so that
their misfit does not set the band where the best runs are and beyond.

Everything here but :func:`build_model` is numpy: a saved fit predicts without PyMC.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from bayescale.data import Runs
from bayescale.importance import ImportanceDraws
from bayescale.priors import Prior, to_scipy

if TYPE_CHECKING:
    import pymc as pm

#: Basis functions per input dimension.
N_BASIS = 12
#: Half-width of the approximation box, in half-ranges of the data on each input.
BOX = 3.0
#: Floor of the half-range (natural-log units): a ladder spanning less than e^1 on an input.
MIN_HALF_RANGE = 0.5
#: Parameters of the discrepancy stage, in the order they are stored.
PARAMS = ("eta", "ls", "z", "sigma", "nu")
#: Bounds of the noise's degrees of freedom in the robust pass. Below 2 a Student-t has no
#: variance: a few gross outliers among tightly scattered runs (a diverged run, a model trained
#: for hundreds of epochs) pull the mode of ``nu`` to 1, and every new run's band then takes the
#: Cauchy tails that the bulk of the runs does not show. The outliers keep weights near 0 at
#: ``nu = 2`` all the same (their weight is ``3 / (2 + (r / sigma)^2)``).
NU_BOUNDS = (2.0, 100.0)


@dataclass(frozen=True)
class Domain:
    """Where the discrepancy's basis lives: inputs, centre, half-ranges and box of the runs.

    Attributes
    ----------
    inputs : tuple of str
        The law's inputs (``N``, ``D`` or ``C``); the GP works on their natural logs.
    center, half : tuple of float
        Mid-point and half-range of the runs' log inputs (half-range floored at
        :data:`MIN_HALF_RANGE`).
    box : float
        Half-width of the approximation box in half-ranges.
    n_basis : int
        Basis functions per input.
    regime : Regime, optional
        The discrepancy's amplitude by regime (None: the same everywhere, a stationary GP).
    """

    inputs: tuple[str, ...]
    center: tuple[float, ...]
    half: tuple[float, ...]
    box: float = BOX
    n_basis: int = N_BASIS
    regime: Regime | None = None

    @classmethod
    def of_runs(cls, runs: Runs, inputs: Sequence[str], n_basis: int = N_BASIS, box: float = BOX) -> Domain:
        """The domain spanned by ``runs`` on ``inputs``."""
        lo = np.array([runs.log(x).min() for x in inputs])
        hi = np.array([runs.log(x).max() for x in inputs])
        half = np.maximum((hi - lo) / 2, MIN_HALF_RANGE)
        return cls(tuple(inputs), tuple(map(float, (lo + hi) / 2)), tuple(map(float, half)), float(box), int(n_basis))

    @property
    def L(self) -> np.ndarray:
        """Half-widths of the approximation box (natural-log units)."""
        return self.box * np.asarray(self.half)

    def to_json(self) -> str:
        """Serialise (stored in the saved fit's attributes)."""
        d = {"inputs": self.inputs, "center": self.center, "half": self.half, "box": self.box, "n_basis": self.n_basis}
        if self.regime is not None:
            d["regime"] = {k: getattr(self.regime, k) for k in ("direction", "lo", "hi", "gamma")}
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> Domain:
        """Inverse of :meth:`to_json` (fits saved before the regime: a stationary GP)."""
        d = json.loads(text)
        r = d.get("regime")
        regime = None if r is None else Regime(tuple(r["direction"]), float(r["lo"]), float(r["hi"]), float(r["gamma"]))
        return cls(tuple(d["inputs"]), tuple(d["center"]), tuple(d["half"]), float(d["box"]), int(d["n_basis"]), regime)

    def amplitude(self, X: np.ndarray) -> np.ndarray:
        """The discrepancy's amplitude at log inputs ``X`` (n, d) relative to ``eta`` (all 1 without a regime)."""
        return np.ones(len(X)) if self.regime is None else self.regime.amplitude(X)

    def log_inputs(self, points: Mapping[str, np.ndarray]) -> np.ndarray:
        """Log inputs of ``points`` as an (n, d) array."""
        return np.stack([np.log(np.asarray(points[x], dtype=float)) for x in self.inputs], axis=1)

    def frequencies(self) -> np.ndarray:
        """Square roots of the Laplacian eigenvalues, shape (n_basis^d, d)."""
        j = np.arange(1, self.n_basis + 1)
        grid = np.meshgrid(*[j] * len(self.inputs), indexing="ij")
        J = np.stack([g.reshape(-1) for g in grid], axis=1)
        return np.pi * J / (2 * self.L[None, :])

    def basis(self, X: np.ndarray) -> np.ndarray:
        """Basis functions at log inputs ``X`` (n, d): shape (n, n_basis^d), zero outside the box;
        each row times the :meth:`amplitude` at its point."""
        L, w = self.L, self.frequencies()
        Xc = np.asarray(X, dtype=float) - np.asarray(self.center)[None, :]
        inside = (np.abs(Xc) < L[None, :]).all(axis=1)
        phi = np.ones((Xc.shape[0], w.shape[0]))
        for d in range(Xc.shape[1]):
            phi *= np.sin(w[None, :, d] * (Xc[:, d : d + 1] + L[d])) / np.sqrt(L[d])
        return phi * (inside * self.amplitude(X))[:, None]


#: Log-ratios of the discrepancy's amplitude between the runs' worst and best regimes that the
#: fit chooses among (:func:`choose_regime`), and the prior's scale on that log-ratio.
REGIME_GAMMAS = (-1.0, 0.0, 1.0, 2.0, 3.0)
REGIME_PRIOR_SD = 1.5


@dataclass(frozen=True)
class Regime:
    """A discrepancy whose amplitude changes with the runs' regime: ``eta * exp(gamma * u(x))``.

    ``u`` is where a point lies between the runs' best regime (0: lowest fitted loss, the side the
    ladder extrapolates to) and their worst (1: e.g. the most under-trained runs), along the
    direction in the log inputs in which the law's fitted log loss changes (its least-squares
    gradient over the runs), clipped to [0, 1]: a point beyond the best runs gets the best runs'
    amplitude -- the misfit of runs far from it does not widen its band, and how far it lies
    beyond the runs is the calibration's business (:mod:`bayescale.calibration`). ``gamma = 0``
    is the stationary GP.

    Attributes
    ----------
    direction : tuple of float
        Weights of the log inputs in ``u`` before scaling.
    lo, hi : float
        The runs' range of ``direction . x`` (``u = (direction . x - lo) / (hi - lo)``).
    gamma : float
        Log-ratio of the amplitude at the worst regime to that at the best.
    """

    direction: tuple[float, ...]
    lo: float
    hi: float
    gamma: float

    @classmethod
    def of_runs(cls, X: np.ndarray, fitted: np.ndarray, gamma: float = 0.0) -> Regime:
        """The regime axis of runs at log inputs ``X`` (n, d) whose fitted target (likelihood units) is
        ``fitted``: the least-squares gradient of ``fitted`` in ``X``, oriented so that ``u`` falls as
        the runs' total log input (their size, compute) grows."""
        X = np.asarray(X, dtype=float)
        A = np.column_stack([np.ones(len(X)), X])
        direction = np.linalg.lstsq(A, np.asarray(fitted, dtype=float), rcond=None)[0][1:]
        u = X @ direction
        if np.cov(u, X.sum(axis=1))[0, 1] > 0:
            direction, u = -direction, -u
        return cls(tuple(map(float, direction)), float(u.min()), float(u.max()), float(gamma))

    def position(self, X: np.ndarray) -> np.ndarray:
        """``u`` at log inputs ``X`` (n, d): 0 at the runs' best regime and beyond, 1 at their worst."""
        span = self.hi - self.lo
        if not span > 0:
            return np.zeros(len(X))
        return np.clip((np.asarray(X, dtype=float) @ np.asarray(self.direction) - self.lo) / span, 0.0, 1.0)

    def amplitude(self, X: np.ndarray) -> np.ndarray:
        """``exp(gamma * u)`` at log inputs ``X``."""
        return np.exp(self.gamma * self.position(X))


def log_spectral_density(ls: Any, w: np.ndarray, xp: Any) -> Any:
    """Log spectral density (unit amplitude) of the squared-exponential kernel at frequencies ``w``.

    ``ls`` has shape (d,) or (S, d); the result (K,) or (S, K). ``xp`` is numpy or pytensor.tensor.
    """
    d = w.shape[1]
    return (
        0.5 * d * np.log(2 * np.pi)
        + xp.sum(xp.log(ls), axis=-1)[..., None]
        - 0.5 * xp.sum((ls[..., None, :] * w) ** 2, axis=-1)
    )


def spectral_weights(ls: np.ndarray, w: np.ndarray, power: float = 0.5, dtype: type = np.float64) -> np.ndarray:
    """``S(w)^power`` (numpy) with the negligible values set to exactly zero.

    A long length-scale makes the high frequencies' densities underflow towards subnormal
    numbers (with ``ls`` near its upper bound, several of the 144 weights do in float32), on
    which x86 arithmetic runs many times slower. Values below the square root of the smallest
    normal number of ``dtype`` (so that their products stay normal) carry nothing and become
    zero.
    """
    value = np.exp(power * log_spectral_density(np.asarray(ls, dtype=float), w, np))
    return np.where(value < np.sqrt(np.finfo(dtype).tiny), 0.0, value)


def default_priors() -> dict[str, Prior]:
    """Priors of the discrepancy stage.

    ``eta`` ~ HalfNormal(0.02): systematic departures from the law of a few percent of the
    loss at most, unless the runs insist; ``ls`` ~ LogNormal(log half-range, 0.7) per
    input: smooth on the scale of the ladder; ``sigma`` as the law's noise; ``nu`` ~ Gamma(2, 0.1)
    as the law's. (``nu`` is not sampled in the second stage: the robust pass puts it at its mode,
    within :data:`NU_BOUNDS`, and the new-run noise keeps that value, see :func:`robust_pass`.)
    """
    return {
        "eta": Prior("HalfNormal", sigma=0.02),
        "ls": Prior("LogNormal", mu=0.0, sigma=0.7),  # mu is added to the log half-range per input
        "sigma": Prior("HalfNormal", sigma=0.05),
        "nu": Prior("Gamma", alpha=2.0, beta=0.1),
    }


@dataclass(frozen=True)
class RobustPass:
    """The robust first pass of the second stage: per-run weights and the noise's degrees of freedom.

    Attributes
    ----------
    weights : array (n,)
        Expected precision multipliers ``E[1 / lambda_i]`` of the Student-t noise as a scale
        mixture (``lambda_i ~ InverseGamma(nu/2, nu/2)``): about 1 for a run the GP and the
        noise explain, small for an outlier.
    nu : float
        Degrees of freedom of the Student-t noise.
    iterations : int
        EM iterations until the weights settled.
    elbo : float
        The variational objective at the end (:func:`elbo`): the lower bound on the log
        marginal posterior of the hyperparameters and ``nu`` that EM climbs; of two passes
        from different starts, the higher is the better mode.
    eta : float
        The GP amplitude at the pass's mode.
    theta : array, optional
        The hyperparameters at the pass's mode, ``(log eta, log ls..., log sigma)``.
    """

    weights: np.ndarray
    nu: float
    iterations: int
    elbo: float = float("nan")
    eta: float = float("nan")
    theta: np.ndarray | None = None


def _hyper(theta: np.ndarray) -> tuple[float, np.ndarray, float]:
    """(eta, ls, sigma) from the unconstrained vector ``log eta, log ls..., log sigma``."""
    return float(np.exp(theta[0])), np.exp(theta[1:-1]), float(np.exp(theta[-1]))


def _scale(domain: Domain, eta: float, ls: np.ndarray, sigma: float) -> np.ndarray:
    return eta * spectral_weights(ls, domain.frequencies()) / sigma


#: The hyperprior families :func:`_log_prior` writes out (and differentiates in :func:`_log_prior_grad`).
PRIOR_FAMILIES = {"eta": "HalfNormal", "ls": "LogNormal", "sigma": "HalfNormal"}


def _log_prior(theta: np.ndarray, domain: Domain, priors: Mapping[str, Prior]) -> Any:
    """Log density of the hyperpriors on the log scale (Jacobian included): a float for one ``theta``
    (P,), an array for a batch (B, P).

    Written out, up to a constant, rather than through :func:`bayescale.priors.to_scipy`: the EM step
    and the importance sampler's mode search need its exact gradient (:func:`_log_prior_grad`), which
    scipy does not give, and it is evaluated for batches of thousands of proposals. It is the same
    density as scipy's (``tests/test_discrepancy.py`` compares them), for the families in
    :data:`PRIOR_FAMILIES` only: other families raise here instead of being silently misread.
    """
    for name, family in PRIOR_FAMILIES.items():
        if priors[name].dist != family:
            raise ValueError(f"the discrepancy's {name} prior must be {family}, got {priors[name].dist}")
    t = np.asarray(theta, dtype=float)
    mu = np.log(np.asarray(domain.half)) + priors["ls"].kwargs["mu"]
    lp = -0.5 * (np.exp(t[..., 0]) / priors["eta"].kwargs["sigma"]) ** 2 + t[..., 0]
    lp = lp - 0.5 * (np.exp(t[..., -1]) / priors["sigma"].kwargs["sigma"]) ** 2 + t[..., -1]
    lp = lp + np.sum(-0.5 * ((t[..., 1:-1] - mu) / priors["ls"].kwargs["sigma"]) ** 2, axis=-1)
    return float(lp) if t.ndim == 1 else lp


def _log_prior_grad(theta: np.ndarray, domain: Domain, priors: Mapping[str, Prior]) -> np.ndarray:
    """Gradient of :func:`_log_prior` at one ``theta`` (P,)."""
    t = np.asarray(theta, dtype=float)
    mu = np.log(np.asarray(domain.half)) + priors["ls"].kwargs["mu"]
    g = np.empty_like(t)
    g[0] = 1.0 - (np.exp(t[0]) / priors["eta"].kwargs["sigma"]) ** 2
    g[-1] = 1.0 - (np.exp(t[-1]) / priors["sigma"].kwargs["sigma"]) ** 2
    g[1:-1] = -(t[1:-1] - mu) / priors["ls"].kwargs["sigma"] ** 2
    return g


def ls_floor(domain: Domain) -> np.ndarray:
    """Per input, the smallest length-scale the basis represents faithfully.

    Riutort-Mayol et al. (2023): ``m`` basis functions over a box of ``c`` half-ranges ``S``
    need ``m >= 1.75 c S / ls``, so ``ls >= 1.75 c S / m``.

    Below it the truncated basis carries only part of the GP's variance ``eta^2``: the
    posterior can then trade a small length-scale for a large ``eta`` that the data never
    saw, and the top-up of the missing variance in predictions turns it into bands as wide
    as ``eta``.
    """
    return 1.75 * domain.box * np.asarray(domain.half) / domain.n_basis


def law_weights(residuals: np.ndarray, sigma: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """The law's view of which runs are outliers: ``E[1 / lambda_i]`` under its Student-t posterior.

    ``(nu + 1) / (nu + (r_i / sigma)^2)`` averaged over the law's draws (``residuals`` (S, n)
    against each draw's law, ``sigma`` and ``nu`` (S,)).
    """
    r = np.asarray(residuals, dtype=float)
    sigma = np.asarray(sigma, dtype=float)[:, None]
    nu = np.asarray(nu, dtype=float)[:, None]
    return ((nu + 1) / (nu + (r / sigma) ** 2)).mean(axis=0)


def robust_pass(
    residuals: np.ndarray,
    X: np.ndarray,
    domain: Domain,
    priors: Mapping[str, Prior],
    nu: float,
    weights: np.ndarray | None = None,
    max_iter: int = 50,
    tol: float = 1e-3,
) -> RobustPass:
    """EM for the GP with Student-t noise: per-run weights and ``nu`` at the posterior mode.

    The Student-t noise is a scale mixture of normals. E-step: given the hyperparameters
    (``eta``, ``ls``, ``sigma``) and the weights, the discrepancy at the runs is Gaussian;
    with ``e_i`` the expected squared error of run ``i`` under it, its weight is
    ``(nu + 1) / (nu + e_i / sigma^2)``. M-step: the hyperparameters at the mode of their
    marginal posterior (coefficients integrated out) given the weights, and ``nu`` at the
    mode of the Student-t likelihood of the runs' errors (prior ``priors["nu"]``, within
    :data:`NU_BOUNDS`: a noise with a variance). Unlike
    weights taken from the law's fit, these see the discrepancy: a group of runs that the
    GP explains keeps its weight, an isolated outlier loses it.

    Parameters
    ----------
    residuals, X, domain, priors
        As for :func:`build_model`.
    nu : float
        Starting degrees of freedom (the law's posterior median).
    weights : array (n,), optional
        Starting weights (default all 1). The posterior can have two modes when a corner
        of the ladder strays far from the law -- a large, smooth discrepancy that bends
        through those runs, or outlying runs on a small one -- and EM finds the one nearest
        its start: :func:`best_robust_pass` starts from both and keeps the higher
        :func:`elbo`.
    """
    from scipy import optimize

    r = np.asarray(residuals, dtype=float)
    phi = domain.basis(X)
    start_ls = np.log(np.maximum(np.asarray(domain.half), 1.01 * ls_floor(domain)))
    theta = np.concatenate([[np.log(0.01)], start_ls, [np.log(max(np.std(r), 1e-4))]])
    wt = np.ones(r.size) if weights is None else np.clip(np.asarray(weights, dtype=float), 1e-6, None)
    nu = float(np.clip(nu, *NU_BOUNDS))
    nu_prior = to_scipy(priors["nu"])
    it = 0
    while it < max_iter:
        it += 1
        posterior = CollapsedPosterior(r, X, domain, priors, wt, basis=phi)

        def neg(t: np.ndarray, posterior: CollapsedPosterior = posterior) -> tuple[float, np.ndarray]:
            value, grad = posterior.value_and_grad(t)
            return (-value, -grad) if np.isfinite(value) else (1e300, np.zeros_like(t))

        ls_bounds = [(float(lo), max(float(lo) + 1.0, 6.0)) for lo in np.log(ls_floor(domain))]
        theta = optimize.minimize(neg, theta, jac=True, method="L-BFGS-B", bounds=[(-12, 2), *ls_bounds, (-12, 2)]).x
        sigma = _hyper(theta)[2]
        e = posterior.expected_squared_errors(theta)

        def neg_nu(v: float, e: np.ndarray = e, sigma: float = sigma) -> float:
            return -_student_t_log_likelihood(e / sigma**2, v, sigma) - float(nu_prior.logpdf(v))

        nu = float(optimize.minimize_scalar(neg_nu, bounds=NU_BOUNDS, method="bounded").x)
        new = (nu + 1) / (nu + e / sigma**2)
        change = float(np.max(np.abs(new - wt)))
        wt = new
        if change < tol:
            break
    return RobustPass(
        weights=wt,
        nu=nu,
        iterations=it,
        elbo=elbo(r, wt, phi, domain, theta, nu, priors),
        eta=_hyper(theta)[0],
        theta=theta,
    )


def _student_t_log_likelihood(squared: np.ndarray, nu: float, sigma: float) -> float:
    """Sum of Student-t log densities (``nu`` degrees of freedom, scale ``sigma``) at errors whose squares
    over ``sigma^2`` are ``squared``: the formula, without scipy.stats' per-call overhead (the EM's inner loop)."""
    from scipy.special import gammaln

    n = squared.size
    const = gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi) - np.log(sigma)
    return float(n * const - 0.5 * (nu + 1) * np.sum(np.log1p(squared / nu)))


def elbo(
    r: np.ndarray,
    wt: np.ndarray,
    phi: np.ndarray,
    domain: Domain,
    theta: np.ndarray,
    nu: float,
    priors: Mapping[str, Prior],
) -> float:
    """Mean-field lower bound on ``log p(r, theta, nu)`` that the robust pass's EM climbs.

    The noise precision multipliers ``tau_i ~ Gamma(nu/2, nu/2)`` get their optimal factor
    ``q(tau_i) = Gamma((nu + 1)/2, (nu + e_i / sigma^2)/2)`` (``e_i`` as in the E-step), the
    discrepancy its Gaussian posterior given ``E[tau]``. With that ``q(delta)`` the Gaussian
    part collapses to the weighted marginal likelihood, so the bound is the marginal at
    ``w = E[tau]`` with ``log w_i`` replaced by ``E[log tau_i]``, minus the KL divergences of
    the ``q(tau_i)`` from their prior, plus the log hyperpriors.
    """
    from scipy import special

    sigma = _hyper(theta)[2]
    e = CollapsedPosterior(r, None, domain, priors, wt, basis=phi).expected_squared_errors(theta)
    a = 0.5 * (nu + 1)
    b = 0.5 * (nu + e / sigma**2)
    w = a / b
    # the weighted marginal likelihood and the log hyperpriors
    value = CollapsedPosterior(r, None, domain, priors, w, basis=phi).value_and_grad(theta)[0]
    value += 0.5 * float(np.sum(special.digamma(a) - np.log(b) - np.log(w)))
    a0 = b0 = 0.5 * nu
    kl = (a - a0) * special.digamma(a) - special.gammaln(a) + special.gammaln(a0)
    kl = kl + a0 * (np.log(b) - np.log(b0)) + a * (b0 - b) / b
    value -= float(np.sum(kl))
    return value + float(to_scipy(priors["nu"]).logpdf(nu))


def best_robust_pass(
    residuals: np.ndarray,
    X: np.ndarray,
    domain: Domain,
    priors: Mapping[str, Prior],
    nu: float,
    starts: Sequence[np.ndarray | None],
) -> RobustPass:
    """The robust pass from each of ``starts`` (weights, ``None`` for all 1); the one of highest :func:`elbo`.

    The posterior of the discrepancy can have two modes when a corner of the ladder strays
    from the law (see :func:`robust_pass`); EM finds the one nearest its start. Starting from
    both the law's weights and equal weights and keeping the higher bound chooses between
    them by the marginal posterior rather than by where EM began.
    """
    passes = [robust_pass(residuals, X, domain, priors, nu=nu, weights=w) for w in starts]
    return max(passes, key=lambda p: p.elbo if np.isfinite(p.elbo) else -np.inf)


def choose_regime(
    residuals: np.ndarray,
    X: np.ndarray,
    domain: Domain,
    priors: Mapping[str, Prior],
    nu: float,
    starts: Sequence[np.ndarray | None],
    fitted: np.ndarray,
) -> tuple[Domain, RobustPass]:
    """The discrepancy's amplitude by regime (:class:`Regime`) and the robust pass under it.

    Each log-ratio in :data:`REGIME_GAMMAS` is scored by its robust pass's :func:`elbo` plus its
    log prior (Normal(0, :data:`REGIME_PRIOR_SD`)); the best is kept: an empirical-Bayes choice,
    as the robust pass's own hyperparameters are. ``fitted`` is the law's fitted target at the runs
    (it orients the regime axis). A ladder whose worst runs alone misfit gets a small amplitude
    where its best runs are, instead of the worst runs' amplitude everywhere.
    """
    from dataclasses import replace

    axis = Regime.of_runs(X, fitted)
    best: tuple[float, Domain, RobustPass] | None = None
    for gamma in REGIME_GAMMAS:
        candidate = replace(domain, regime=replace(axis, gamma=gamma))
        found = best_robust_pass(residuals, X, candidate, priors, nu=nu, starts=starts)
        score = (found.elbo if np.isfinite(found.elbo) else -np.inf) - 0.5 * (gamma / REGIME_PRIOR_SD) ** 2
        if best is None or score > best[0]:
            best = (score, candidate, found)
    assert best is not None
    return best[1], best[2]


class CollapsedPosterior:
    """The log posterior of the hyperparameters, coefficients integrated out, as a function of ``theta``.

    The density :func:`build_model` gives NUTS, on the unconstrained scale ``theta = (log eta,
    log ls..., log sigma)``, Jacobian included: ``-inf`` below the length-scale floor
    (:func:`ls_floor`, where the prior is truncated). The basis at the runs, ``G = Phi' W Phi``
    and ``h = Phi' W r`` are computed once, on construction (``basis``: the basis at the runs,
    when already computed; ``X`` is then not used).

    Calling it evaluates a batch ``theta`` (B, 2 + d): the marginal likelihood in the run space
    or the basis space, whichever costs less (the run space for fewer than about K / 2 runs),
    in batches of ``chunk`` points. :meth:`value_and_grad` gives one point's value and its
    exact gradient (basis space) for the mode searches.
    """

    def __init__(
        self,
        residuals: np.ndarray,
        X: np.ndarray | None,
        domain: Domain,
        priors: Mapping[str, Prior],
        weights: np.ndarray | None = None,
        chunk: int = 64,
        basis: np.ndarray | None = None,
    ) -> None:
        self.r = np.asarray(residuals, dtype=float)
        self.n = self.r.size
        self.wt = np.ones(self.n) if weights is None else np.asarray(weights, dtype=float)
        self.domain, self.priors, self.chunk = domain, priors, chunk
        self.phi = domain.basis(X) if basis is None else basis
        self.K = self.phi.shape[1]
        self.w = domain.frequencies()
        self.log_floor = np.log(ls_floor(domain))
        self.G = self.phi.T @ (self.wt[:, None] * self.phi)
        self.h = self.phi.T @ (self.wt * self.r)
        self.rWr = float(np.sum(self.wt * self.r**2))
        self.log_det_w = float(np.sum(np.log(self.wt)))
        # the run space costs n^2 K + n^3 / 3 per point (forming and factoring the covariance), the basis
        # space K^3 / 3 (G is formed once): the cheaper one
        self.run_space = self.n * self.n * self.K + self.n**3 / 3 < self.K**3 / 3

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        """Log posterior at each row of ``theta`` (B, 2 + d); ``-inf`` outside the support."""
        from scipy.linalg import solve_triangular

        r, n, wt, phi = self.r, self.n, self.wt, self.phi
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        out = np.full(theta.shape[0], -np.inf)
        inside = np.all(theta[:, 1:-1] >= self.log_floor, axis=1)
        inside &= np.all(np.isfinite(theta), axis=1) & np.all(np.abs(theta) < 30, axis=1)
        eta, ls, sigma = np.exp(theta[:, 0]), np.exp(theta[:, 1:-1]), np.exp(theta[:, -1])
        lp = _log_prior(theta, self.domain, self.priors)
        rows = np.flatnonzero(inside)
        for start in range(0, rows.size, self.chunk):
            idx = rows[start : start + self.chunk]
            spd = spectral_weights(ls[idx], self.w, power=1.0)  # (b, K)
            if self.run_space:  # one n x n factor per point
                cov = (phi[None] * (eta[idx, None] ** 2 * spd)[:, None, :]) @ phi.T  # (b, n, n) by BLAS
                cov[:, np.arange(n), np.arange(n)] += sigma[idx, None] ** 2 / wt
            else:  # basis space (Woodbury)
                scale = eta[idx, None] * np.sqrt(spd) / sigma[idx, None]
                cov = _precisions(scale, self.G)
            try:
                factors = np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:  # one of the batch is not positive definite: factor one by one
                factors = None
            for j, i in enumerate(idx):
                try:
                    L = factors[j] if factors is not None else np.linalg.cholesky(cov[j])
                except np.linalg.LinAlgError:
                    continue
                if self.run_space:
                    a = solve_triangular(L, r, lower=True, check_finite=False)
                    quad = float(a @ a)
                    logdet = 2 * float(np.sum(np.log(np.diag(L))))
                else:
                    c = solve_triangular(L, scale[j] * self.h, lower=True, check_finite=False) / sigma[i]
                    quad = self.rWr / sigma[i] ** 2 - float(c @ c)
                    logdet = 2 * n * theta[i, -1] - self.log_det_w + 2 * float(np.sum(np.log(np.diag(L))))
                out[i] = lp[i] - 0.5 * (quad + logdet + n * np.log(2 * np.pi))
        return out

    def expected_squared_errors(self, theta: np.ndarray) -> np.ndarray:
        """``E[(r_i - delta_i)^2]`` under the Gaussian posterior of the discrepancy at hyperparameters ``theta``
        (the robust pass's E-step)."""
        eta, ls, sigma = _hyper(theta)
        scale = _scale(self.domain, eta, ls, sigma)
        M = _precisions(scale[None], self.G)[0]
        A = self.phi * (sigma * scale)[None, :]  # delta = A z
        mean = A @ np.linalg.solve(M, scale * self.h / sigma)
        var = np.einsum("ik,ik->i", A, np.linalg.solve(M, A.T).T)
        return (self.r - mean) ** 2 + var

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Log posterior at one ``theta`` (2 + d,) and its gradient, by the basis-space formula.

        With ``s = eta sqrt(S(w)) / sigma``, ``M = I + diag(s) G diag(s)``, ``u = s h / sigma``
        and ``a = M^-1 u``, the negative log marginal likelihood has derivative
        ``1 - a_k^2 - (M^-1)_kk`` along ``log s_k`` and ``n - r'Wr / sigma^2 + u'a`` along
        ``log sigma`` at fixed ``s``; the chain rule through ``log S_k`` (whose derivative along
        ``log ls_j`` is ``1 - ls_j^2 w_kj^2``) gives the rest. ``(-inf, 0)`` outside the support
        or where ``M`` is not positive definite.
        """
        from scipy.linalg import solve_triangular

        t = np.asarray(theta, dtype=float)
        if not (np.all(t[1:-1] >= self.log_floor) and np.all(np.isfinite(t)) and np.all(np.abs(t) < 30)):
            return -np.inf, np.zeros_like(t)
        eta, ls, sigma = _hyper(t)
        s = eta * spectral_weights(ls, self.w) / sigma
        try:
            L = np.linalg.cholesky(_precisions(s[None], self.G)[0])
        except np.linalg.LinAlgError:
            return -np.inf, np.zeros_like(t)
        u = s * self.h / sigma
        c = solve_triangular(L, u, lower=True, check_finite=False)
        a = solve_triangular(L, c, lower=True, trans="T", check_finite=False)
        L_inv = solve_triangular(L, np.eye(self.K), lower=True, check_finite=False)
        m_inv_diag = np.sum(L_inv**2, axis=0)
        quad = self.rWr / sigma**2 - float(c @ c)
        logdet = 2 * self.n * t[-1] - self.log_det_w + 2 * float(np.sum(np.log(np.diag(L))))
        value = _log_prior(t, self.domain, self.priors) - 0.5 * (quad + logdet + self.n * np.log(2 * np.pi))
        g = 1.0 - a**2 - m_inv_diag  # d(-log marginal) / d log s_k
        neg_grad = np.empty_like(t)
        neg_grad[0] = g.sum()
        neg_grad[1:-1] = 0.5 * (g[:, None] * (1.0 - (ls[None, :] * self.w) ** 2)).sum(axis=0)
        neg_grad[-1] = self.n - self.rWr / sigma**2 + float(u @ a) - g.sum()
        return value, _log_prior_grad(t, self.domain, self.priors) - neg_grad


def log_posterior(
    theta: np.ndarray,
    residuals: np.ndarray,
    X: np.ndarray,
    domain: Domain,
    priors: Mapping[str, Prior],
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """:class:`CollapsedPosterior` of the runs, evaluated at ``theta`` (B, 2 + d) once."""
    return CollapsedPosterior(residuals, X, domain, priors, weights)(theta)


def sample_hyperparameters(
    residuals: np.ndarray,
    X: np.ndarray,
    domain: Domain,
    priors: Mapping[str, Prior],
    weights: np.ndarray | None,
    start: np.ndarray,
    draws: int,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], ImportanceDraws]:
    """Independent posterior draws of ``eta``, ``ls``, ``sigma`` by importance sampling.

    The same posterior :func:`build_model` gives NUTS (:func:`log_posterior`), sampled from a
    Student-t proposal at its mode with the inverse Hessian as scale, refined once
    (:func:`bayescale.importance.sample`). Three or four hyperparameters and a density that
    costs one small Cholesky factor: a few thousand evaluations replace compiling and tuning
    NUTS. The caller checks ``ok`` (Pareto ``khat`` at most 0.7) and falls back to NUTS when
    the proposal did not cover the posterior.

    Parameters
    ----------
    residuals, X, domain, priors, weights
        As for :func:`build_model`.
    start : array
        Where to start the search for the mode (the robust pass's ``theta``).
    draws : int
        Draws to return.
    rng : numpy.random.Generator

    Returns
    -------
    params : dict
        ``eta`` (S,), ``ls`` (S, d), ``sigma`` (S,).
    draws : ImportanceDraws
        The draws on the unconstrained scale, with ``khat`` and the effective sample size.
    """
    from scipy import optimize

    from bayescale import importance

    density = CollapsedPosterior(residuals, X, domain, priors, weights)

    def neg(t: np.ndarray) -> float:
        value = float(density(t)[0])
        return -value if np.isfinite(value) else 1e300

    def neg_and_grad(t: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = density.value_and_grad(t)
        return (-value, -grad) if np.isfinite(value) else (1e300, np.zeros_like(t))

    floor = np.log(ls_floor(domain))
    bounds = [(-12.0, 2.0), *[(float(lo), max(float(lo) + 1.0, 6.0)) for lo in floor], (-12.0, 2.0)]
    start = np.clip(np.asarray(start, dtype=float), [b[0] for b in bounds], [b[1] for b in bounds])
    mode = optimize.minimize(neg_and_grad, start, jac=True, method="L-BFGS-B", bounds=bounds).x
    # a mode on the length-scale floor: the Hessian is taken just inside, where the density is finite
    inner = np.concatenate([[mode[0]], np.maximum(mode[1:-1], floor + 2e-3), [mode[-1]]])
    cov = importance.laplace_scale(neg, inner)
    result = importance.sample(density, inner, cov, draws, rng)
    eta, ls, sigma = np.exp(result.draws[:, 0]), np.exp(result.draws[:, 1:-1]), np.exp(result.draws[:, -1])
    return {"eta": eta, "ls": ls, "sigma": sigma}, result


def build_model(
    residuals: np.ndarray,
    X: np.ndarray,
    domain: Domain,
    priors: Mapping[str, Prior],
    weights: np.ndarray | None = None,
) -> pm.Model:
    """The discrepancy stage as a ``pm.Model``, with the basis coefficients integrated out.

    Given the hyperparameters the residuals are Gaussian, ``r ~ Normal(0, U U' + sigma^2 W^-1)``
    with ``U = eta Phi diag(sqrt(S(w)))`` and ``W`` the runs' robust weights
    (:func:`robust_pass`): the Student-t noise of the law, with each run's scale fixed at its
    posterior expectation. The marginal likelihood is evaluated in the run space (one n x n
    Cholesky factor) when there are no more runs than basis functions, else in the basis
    space (Woodbury): with ``G = Phi' W Phi`` and ``h = Phi' W r`` computed once, each
    gradient costs one Cholesky factor of a K x K matrix, whatever the number of runs. NUTS explores only
    ``eta``, ``ls`` and ``sigma`` -- without the funnel between ``eta`` and the coefficients
    that sampling them explicitly had (tree depth 8-10, chains that disagreed on ladders with
    few sizes). :func:`draw_coefficients` draws the coefficients ``z`` afterwards, exactly,
    from their Gaussian conditional posterior.

    Parameters
    ----------
    residuals : array (n,)
        Observed log loss minus the law's posterior-median log loss.
    X : array (n, d)
        Log inputs of the runs.
    domain : Domain
    priors : mapping
        ``eta``, ``ls`` (its ``mu`` offsets the log half-range), ``sigma``.
    weights : array (n,), optional
        Precision weights of the runs (default: all 1, Gaussian noise).
    """
    import pymc as pm
    import pytensor.tensor as pt
    from pytensor.tensor.linalg import cholesky, solve_triangular

    r = np.asarray(residuals, dtype=float)
    n = r.size
    wt = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    phi = domain.basis(X)
    G = phi.T @ (wt[:, None] * phi)
    h = phi.T @ (wt * r)
    rWr = float(np.sum(wt * r**2))
    log_det_w = float(np.sum(np.log(wt)))
    w = domain.frequencies()
    K = phi.shape[1]
    ls_prior = priors["ls"]
    with pm.Model(coords={"input": list(domain.inputs)}) as model:
        eta = pm.HalfNormal("eta", sigma=priors["eta"].kwargs["sigma"])
        # length-scales below what the basis can represent are cut off: there the truncated
        # basis carries only part of eta^2 and eta grows to make up for it (see ls_floor)
        ls = pm.Truncated(
            "ls",
            pm.LogNormal.dist(
                mu=np.log(np.asarray(domain.half)) + ls_prior.kwargs["mu"], sigma=ls_prior.kwargs["sigma"]
            ),
            lower=ls_floor(domain),
            dims="input",
        )
        sigma = pm.HalfNormal("sigma", sigma=priors["sigma"].kwargs["sigma"])
        if n <= K:  # run space: one n x n Cholesky factor of the covariance
            spd = eta**2 * pt.exp(log_spectral_density(ls, w, pt))
            cov = pt.dot(phi * spd[None, :], phi.T) + pt.diag(sigma**2 / wt)
            L = cholesky(cov)
            a = solve_triangular(L, r, lower=True)
            quad = pt.sum(a**2)
            logdet = 2 * pt.sum(pt.log(pt.diagonal(L)))
        else:  # basis space (Woodbury): one K x K factor, whatever the number of runs
            scale = eta * pt.exp(0.5 * log_spectral_density(ls, w, pt)) / sigma  # (K,)
            L = cholesky(pt.eye(K) + scale[:, None] * G * scale[None, :])
            c = solve_triangular(L, scale * h, lower=True) / sigma
            quad = rWr / sigma**2 - pt.sum(c**2)
            logdet = 2 * n * pt.log(sigma) - log_det_w + 2 * pt.sum(pt.log(pt.diagonal(L)))
        pm.Potential("residual", -0.5 * (quad + logdet + n * np.log(2 * np.pi)))
    return model


def _precisions(scale: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``I + diag(s) G diag(s)`` for each row ``s`` of ``scale`` (B, K): (B, K, K), one pass over memory."""
    M = np.einsum("bi,ij,bj->bij", scale, G, scale)
    diagonal = np.arange(G.shape[0])
    M[:, diagonal, diagonal] += 1.0
    return M


def draw_coefficients(
    domain: Domain,
    X: np.ndarray,
    residuals: np.ndarray,
    params: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    weights: np.ndarray | None = None,
    chunk: int = 500,
) -> np.ndarray:
    """Draws (S, K) of the basis coefficients ``z`` from their conditional posterior, one per draw.

    Given ``eta``, ``ls`` and ``sigma`` of a draw, ``z`` is Gaussian with precision
    ``M = I + U' D^-1 U`` and mean ``M^-1 U' D^-1 r`` (``D = sigma^2 W^-1``, notation of
    :func:`build_model`); ``z = mean + L^-T xi`` with ``L L' = M``. Draws that share their
    hyperparameters (importance resampling repeats the heavier proposals) share one factor.
    """
    from scipy.linalg import solve_triangular

    r = np.asarray(residuals, dtype=float)
    wt = np.ones(r.size) if weights is None else np.asarray(weights, dtype=float)
    phi = domain.basis(X)
    G = phi.T @ (wt[:, None] * phi)
    h = phi.T @ (wt * r)
    hyper = np.column_stack([params["eta"], np.asarray(params["ls"]).reshape(len(params["eta"]), -1), params["sigma"]])
    unique, which = np.unique(hyper, axis=0, return_inverse=True)
    which = which.reshape(-1)
    sigma = unique[:, -1]
    scale = unique[:, :1] * spectral_weights(unique[:, 1:-1], domain.frequencies()) / sigma[:, None]  # (U, K)
    U, K = scale.shape
    xi = rng.standard_normal((which.size, K))
    out = np.empty((which.size, K))
    order = np.argsort(which, kind="stable")
    bounds = np.searchsorted(which[order], np.arange(U + 1))
    for start in range(0, U, chunk):
        stop = min(start + chunk, U)
        L = np.linalg.cholesky(_precisions(scale[start:stop], G))
        b = scale[start:stop] * h[None, :] / sigma[start:stop, None]
        for u in range(start, stop):
            # z = M^-1 b + L^-T xi = L^-T (L^-1 b + xi): one factor, two triangular solves per draw
            y = solve_triangular(L[u - start], b[u - start], lower=True, check_finite=False)
            rows = order[bounds[u] : bounds[u + 1]]
            out[rows] = solve_triangular(
                L[u - start], y[:, None] + xi[rows].T, lower=True, trans="T", check_finite=False
            ).T
    return out


def basis_weights(domain: Domain, params: Mapping[str, np.ndarray], dtype: type = np.float32) -> dict[str, np.ndarray]:
    """Per-draw weights of the basis functions, computed once for any number of points.

    Returns ``coef`` (K, S), the basis coefficients ``sqrt(S(w)) z``; ``var`` (K, S), the
    spectral densities ``S(w)`` (each basis function's share of the unit prior variance);
    and ``eta`` (1, S).
    """
    sqrt_spd = spectral_weights(params["ls"], domain.frequencies(), dtype=dtype)
    return {
        "coef": np.ascontiguousarray((sqrt_spd * params["z"]).T, dtype=dtype),
        "var": np.ascontiguousarray((sqrt_spd**2).T, dtype=dtype),
        "eta": np.asarray(params["eta"], dtype=dtype)[None, :],
    }


def draws_at(
    domain: Domain,
    params: Mapping[str, np.ndarray],
    X: np.ndarray,
    top_up: np.random.Generator | np.ndarray,
    dtype: type = np.float32,
    weights: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Posterior draws of the discrepancy at log inputs ``X``: shape (S, n), of ``dtype``.

    ``params`` holds flat draws ``eta`` (S,), ``ls`` (S, d) and ``z`` (S, K). The variance the
    truncated basis misses is topped up with normal deviates, so that far from the runs the
    draws are Normal(0, (eta a(x))^2), ``a`` the amplitude by regime: independent ones from a
    generator ``top_up``, or, given an array (S,) of standard normal deviates, one per draw shared by all points (common
    random numbers: the same marginal distribution at every point). ``weights`` are
    :func:`basis_weights` of ``params``, when already computed.
    """
    w = basis_weights(domain, params, dtype) if weights is None else weights
    phi = domain.basis(X).astype(dtype)  # (n, K), with the amplitude by regime a(x)
    a = domain.amplitude(X).astype(dtype)[:, None]
    mean = phi @ w["coef"]  # (n, S): point by point
    covered = (phi**2) @ w["var"] / a**2  # the basis' share of the unit prior variance
    missing = a * np.sqrt(np.clip(1.0 - covered, 0.0, None))
    if isinstance(top_up, np.random.Generator):
        deviates = top_up.standard_normal(mean.shape, dtype=dtype)
    else:
        deviates = np.asarray(top_up, dtype=dtype)[None, :]
    return (w["eta"] * (mean + missing * deviates)).T


@dataclass(frozen=True)
class Fitted:
    """A fitted discrepancy: its domain and flat posterior draws (S draws, aligned with the law's).

    Attributes
    ----------
    domain : Domain
    params : dict
        ``eta`` (S,), ``ls`` (S, d), ``z`` (S, K), ``sigma`` (S,), ``nu`` (S,).
    """

    domain: Domain
    params: Mapping[str, np.ndarray]

    def delta(self, points: Mapping[str, np.ndarray], top_up: np.random.Generator | np.ndarray) -> np.ndarray:
        """Draws (S, n) of the discrepancy at ``points`` (arrays of N, D, C); ``top_up`` as :func:`draws_at`."""
        return draws_at(self.domain, self.params, self.domain.log_inputs(points), top_up, weights=self._weights)

    @cached_property
    def _weights(self) -> dict[str, np.ndarray]:
        """:func:`basis_weights` of the draws, computed on first use."""
        return basis_weights(self.domain, self.params)

    @property
    def noise(self) -> dict[str, np.ndarray]:
        """The new-run noise after the discrepancy: Student-t ``sigma`` and ``nu`` draws (S,)."""
        return {"sigma": self.params["sigma"], "nu": self.params["nu"]}
