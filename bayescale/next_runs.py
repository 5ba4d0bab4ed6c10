"""Which runs next: rank candidate runs by how much they are expected to narrow the band that matters.

A preposterior analysis on the fit's draws (Chaloner and Verdinelli 1995). The *goal* is a
quantity per posterior draw: the law's expected log loss at a target run (``loss``), or the log
compute-optimal model size at the target's budget (``optimal``). A candidate is worth the
expected reduction of the goal's variance once its outcome is observed, per FLOP it costs
(C = k N D). Two ways to compute the expected variance after a batch, from the same draws:

- ``linear`` (default): the linear-Gaussian (Bayes linear) update -- the draws' covariances of
  the candidates' log loss with each other and with the goal, and the run noise, give the variance
  after conditioning in closed form; exact for a Gaussian posterior, deterministic, any batch size;
- ``reweight``: outcomes simulated from the posterior predictive (a draw of the parameters, the
  law's loss at the candidate, the fit's Student-t noise) re-weight every draw by their likelihood;
  the mean over outcomes of the goal's weighted variance. Faithful to non-linearity and heavy tails,
  but in batches of many runs the weights fall on a few draws and the variance is understated.

A batch is chosen greedily within a compute budget, each pick conditioned on the previous ones:
once by reduction per FLOP, once by reduction alone (which can afford one large run the per-FLOP
rule never reaches), keeping the batch with the lower expected variance (the budgeted greedy of
Leskovec et al. 2007).

What the variance covers: the law's parameters and, for a fit with one, the model discrepancy
(the law's misfit, a Gaussian process over log N and log D): a run's outcome carries the
discrepancy at its point and the target's loss the discrepancy there, so runs close together share
their misfit (a cluster of small runs is worth less than the law alone says) and a run near the
target also informs the misfit at the target. Observation noise is left out of the goal: no run
reduces it. Both methods stand in for re-fits; ``tests/test_slow_design.py`` checks them against real ones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logsumexp, stdtrit

from bayescale.data import Runs
from bayescale.errors import BayescaleError
from bayescale.predict import complete_inputs, law_log_loss
from bayescale.stats import student_t_logpdf

log = logging.getLogger("bayescale")

GOALS = ("loss", "optimal")
#: Posterior draws the analysis uses (an even thinning of the fit's draws).
DESIGN_DRAWS = 1000
#: Simulated outcomes per candidate.
OUTCOMES = 64
#: Candidates of the default grid, at most.
MAX_GRID = 500
#: Picks of a batch when no budget bounds it.
DEFAULT_PICKS = 5
#: Picks reported one by one on stderr (the rest are in the table).
LOGGED_PICKS = 10


class DesignError(BayescaleError, ValueError):
    """A design question that cannot be answered (goal, candidates or budget)."""


@dataclass
class Design:
    """Candidates ranked by expected reduction of the goal's variance per FLOP, and a greedy batch.

    Attributes
    ----------
    candidates : pandas.DataFrame
        One row per candidate: ``N, D, C``, ``sd_after`` (expected sd of the goal after this run
        alone), ``reduction`` (expected reduction of the goal's variance), ``reduction_per_flop``,
        ``pick`` (order in the batch, 0 if not picked); sorted by pick, then by reduction per FLOP.
    batch : pandas.DataFrame
        The picks in order: ``pick, N, D, C, cumulative_C, sd_after`` (the goal's expected sd
        after this pick and the previous ones).
    goal : str
        ``loss`` (log loss at the target) or ``optimal`` (log N_opt at the target's budget).
    target : (float, float)
        The target run (N, D).
    sd_before : float
        The goal's posterior sd now.

    The fit's runs ride along in ``ladder``, for figures.
    """

    candidates: pd.DataFrame
    batch: pd.DataFrame
    goal: str
    target: tuple[float, float]
    sd_before: float
    ladder: Runs

    @property
    def sd_after(self) -> float:
        """The goal's expected sd after the whole batch."""
        return float(self.batch["sd_after"].iloc[-1]) if len(self.batch) else self.sd_before


def goal_draws(fit: object, goal: str, target: tuple[float, float], index: np.ndarray) -> np.ndarray:
    """The goal per posterior draw (at ``index`` of the fit's flat draws)."""
    N, D = target
    if goal == "loss":
        points = complete_inputs(fit.law, fit.k, N=N, D=D)
        return law_log_loss(fit.law, _subset(fit._sampled(), index), fit.reference, points)[:, 0]
    if goal == "optimal":
        from bayescale.allocation import check_law, isoflop_optimum

        check_law(fit.law)
        opt = isoflop_optimum(fit.law, _subset(fit._all_draws(), index), fit.reference, fit.k, fit.k * N * D)
        return np.log(opt["N_opt"])
    raise DesignError(f"unknown goal {goal!r}; choose one of {', '.join(GOALS)}")


def _subset(draws: Mapping[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {k: (np.asarray(v)[index] if np.ndim(v) else v) for k, v in draws.items()}


def candidate_grid(runs: Runs, max_compute: float, k: float, size: int = MAX_GRID) -> pd.DataFrame:
    """A grid of candidate runs below ``max_compute``: log-spaced N (the runs' smallest to 4x their
    largest) by log-spaced tokens per parameter (the runs' range, widened 2x each way)."""
    if not (np.isfinite(max_compute) and max_compute > 0):
        raise DesignError(f"--max-compute must be a positive number of FLOPs, got {max_compute}")
    if not (runs.has("N") and runs.has("D")):
        raise DesignError("a grid of candidates needs runs with N and D; give --candidates")
    N_runs, ratio = runs.values("N"), runs.values("D") / runs.values("N")
    Ns = np.geomspace(N_runs.min(), 4 * N_runs.max(), 30)
    ratios = np.geomspace(ratio.min() / 2, ratio.max() * 2, 30)
    N, R = (a.ravel() for a in np.meshgrid(Ns, ratios, indexing="ij"))
    C = k * N * (R * N)
    keep = C <= max_compute
    if not keep.any():
        raise DesignError(
            f"--max-compute {max_compute:g} FLOPs is below every candidate of the grid (cheapest {C.min():.3g}); "
            "raise it"
        )
    grid = pd.DataFrame({"N": N[keep], "D": (R * N)[keep], "C": C[keep]})
    if len(grid) > size:  # thin evenly, keeping the cheapest and the dearest
        grid = grid.sort_values("C").iloc[np.unique(np.linspace(0, len(grid) - 1, size).round().astype(int))]
    return grid.reset_index(drop=True)


def design(
    fit: object,
    target: tuple[float, float],
    *,
    goal: str = "loss",
    candidates: pd.DataFrame | Mapping[str, object] | None = None,
    max_compute: float | None = None,
    budget: float | None = None,
    picks: int | None = None,
    method: str = "linear",
    outcomes: int = OUTCOMES,
    draws: int = DESIGN_DRAWS,
    seed: int | None = None,
) -> Design:
    """Rank candidate runs by expected reduction of the goal's variance per FLOP; pick a batch.

    Parameters
    ----------
    fit : ScalingFit
        The fit of the runs so far.
    target : (N, D)
        The run the decision is about (e.g. 70B parameters on 1.4T tokens).
    goal : {"loss", "optimal"}, default "loss"
        ``loss``: the expected log loss at the target; ``optimal``: the log compute-optimal N
        at the target's budget k N D.
    candidates : DataFrame or mapping, optional
        Candidate runs with columns N and D (or C with one of them). Default: a grid below
        ``max_compute`` (:func:`candidate_grid`).
    max_compute : float, optional
        FLOPs cap of the default grid (needed without ``candidates``).
    budget : float, optional
        Total FLOPs of the batch; default: no cap, ``picks`` runs.
    picks : int, optional
        Most runs in the batch (default 5 without a budget, else as many as the budget allows).
    method : {"linear", "reweight"}, default "linear"
        How the goal's variance after a batch is predicted from the draws: the linear-Gaussian
        update (:class:`_Linear`: exact for Gaussian posteriors, any batch size) or simulated
        outcomes re-weighting the draws (:class:`_Reweight`: non-linear, heavy tails, but its
        weights degenerate in large batches).
    outcomes, draws : int
        Simulated outcomes per candidate (``reweight``) and posterior draws used.
    seed : int, optional
        Seed of the simulation (``reweight``; default: the fit's).

    Returns
    -------
    Design

    Raises
    ------
    DesignError
        For an unknown goal, candidates without N/D/C, or a budget below the cheapest candidate.
    """
    if goal not in GOALS:
        raise DesignError(f"unknown goal {goal!r}; choose one of {', '.join(GOALS)}")
    N_t, D_t = (float(v) for v in target)
    if not (N_t > 0 and D_t > 0 and np.isfinite(N_t) and np.isfinite(D_t)):
        raise DesignError(f"a target needs positive N and D, got {target}")
    runs = fit.runs
    if runs.has("C") and fit.k * N_t * D_t <= runs.values("C").max():
        log.warning(
            "the target (%.3g FLOPs) is inside the runs (largest %.3g FLOPs): nothing to extrapolate; "
            "the design narrows an interpolation",
            fit.k * N_t * D_t,
            runs.values("C").max(),
        )
    if candidates is None:
        if max_compute is None:
            raise DesignError("give candidate runs (--candidates FILE) or a FLOPs cap for a grid (--max-compute C)")
        table = candidate_grid(runs, float(max_compute), fit.k)
    else:
        table = _candidate_table(fit, candidates)
    if budget is not None:
        if not (np.isfinite(budget) and budget > 0):
            raise DesignError(f"--budget must be a positive number of FLOPs, got {budget}")
        if budget < table["C"].min():
            raise DesignError(
                f"--budget {budget:g} FLOPs is smaller than the cheapest candidate ({table['C'].min():.3g} FLOPs); "
                "raise the budget or add cheaper candidates"
            )
    if picks is not None and picks < 1:
        raise DesignError(f"picks must be at least 1, got {picks}")
    max_picks = picks if picks is not None else (len(table) if budget is not None else DEFAULT_PICKS)

    total = len(fit.draws("sigma"))
    index = np.unique(np.linspace(0, total - 1, min(draws, total)).round().astype(int))
    g = goal_draws(fit, goal, (N_t, D_t), index)
    sampled = _subset(fit._sampled(), index)
    points = complete_inputs(fit.law, fit.k, N=table["N"].to_numpy(), D=table["D"].to_numpy())
    mu = law_log_loss(fit.law, sampled, fit.reference, points)  # (S, n)
    sigma, nu = np.asarray(sampled["sigma"], dtype=float), np.asarray(sampled["nu"], dtype=float)
    if fit.discrepancy is not None:
        # the law's misfit: a run's outcome carries the discrepancy at its point, the target's loss the
        # discrepancy there; draws of one basis are joint across points, so runs near each other share
        # their misfit and a run near the target also informs the misfit at the target
        top_up = np.random.default_rng([fit.seed if seed is None else seed, 11])
        mu = mu + fit.discrepancy.delta(points, top_up)[index]
        if goal == "loss":
            g = g + fit.discrepancy.delta(complete_inputs(fit.law, fit.k, N=N_t, D=D_t), top_up)[index, 0]
        noise = fit.discrepancy.noise
        sigma, nu = (np.asarray(noise[k], dtype=float)[index] for k in ("sigma", "nu"))
    S, n = mu.shape
    if method == "linear":
        log.info("design: %d candidates, %d posterior draws, linear-Gaussian update (goal: %s)", n, S, goal)
        engine = _Linear(mu, g, sigma, nu)
    elif method == "reweight":
        log.info("design: %d candidates x %d simulated outcomes x %d posterior draws (goal: %s)", n, outcomes, S, goal)
        rng = np.random.default_rng([fit.seed if seed is None else seed, 7])
        engine = _Reweight(mu, g, sigma, nu, outcomes, rng)
    else:
        raise DesignError(f"unknown method {method!r}; choose 'linear' or 'reweight'")
    variance_now = engine.fresh().variance
    alone = engine.expected()
    cost = table["C"].to_numpy()
    # budgeted greedy: by gain per FLOP, and by gain alone (which can afford one large run the per-FLOP
    # rule never reaches); the batch with the lower expected variance wins (Leskovec et al. 2007)
    paths = [_greedy(engine.fresh(), cost, budget, max_picks, per_flop) for per_flop in (True, False)]
    chosen, variances = min(paths, key=lambda path: path[1][-1] if path[1] else variance_now)
    rows = []
    spent = 0.0
    for i, (c, v) in enumerate(zip(chosen, variances, strict=True), start=1):
        spent += cost[c]
        rows.append({"pick": i, "N": table["N"].iloc[c], "D": table["D"].iloc[c], "C": cost[c],
                     "cumulative_C": spent, "sd_after": float(np.sqrt(max(v, 0.0)))})  # fmt: skip
        log.log(
            logging.INFO if i <= LOGGED_PICKS else logging.DEBUG,
            "design pick %d: N=%.3g D=%.3g (C %.3g, total %.3g): goal sd %.4g -> %.4g",
            i,
            table["N"].iloc[c],
            table["D"].iloc[c],
            cost[c],
            spent,
            np.sqrt(variance_now),
            np.sqrt(max(v, 0.0)),
        )
    out = table.copy()
    out["sd_after"] = np.sqrt(np.maximum(alone, 0.0))
    out["reduction"] = variance_now - alone
    out["reduction_per_flop"] = out["reduction"] / out["C"]
    out["pick"] = 0
    out.loc[out.index[chosen], "pick"] = np.arange(1, len(chosen) + 1)
    order = np.lexsort((-out["reduction_per_flop"].to_numpy(), np.where(out["pick"] > 0, out["pick"], np.inf)))
    return Design(
        candidates=out.iloc[order].reset_index(drop=True),
        batch=pd.DataFrame(rows, columns=["pick", "N", "D", "C", "cumulative_C", "sd_after"]),
        goal=goal,
        target=(N_t, D_t),
        sd_before=float(np.sqrt(variance_now)),
        ladder=runs,
    )


def _greedy(
    engine: _Linear | _Reweight, cost: np.ndarray, budget: float | None, max_picks: int, per_flop: bool
) -> tuple[list[int], list[float]]:
    """Greedy picks within the budget: each the affordable candidate of largest expected reduction
    (per FLOP, or not); stops when none is affordable or none narrows the band. Returns the picks and
    the expected variance after each."""
    chosen: list[int] = []
    variances: list[float] = []
    current, spent = engine.variance, 0.0
    while len(chosen) < max_picks:
        expected = engine.expected()
        gain = current - expected
        affordable = np.ones(len(cost), dtype=bool) if budget is None else (spent + cost <= budget * (1 + 1e-9))
        affordable[chosen] = False
        score = np.where(affordable & (gain > 0), gain / cost if per_flop else gain, -np.inf)
        c = int(np.argmax(score))
        if not np.isfinite(score[c]):
            break
        chosen.append(c)
        spent += cost[c]
        current = float(expected[c])
        variances.append(current)
        engine.add(c)
    return chosen, variances


class _Linear:
    """The linear-Gaussian (Bayes linear) update from the draws: after observing candidates B,
    Var(g | y_B) = Var(g) - c_B' (F_BB + r I)^-1 c_B, with F the draws' covariance of the candidates'
    log loss, c their covariance with the goal, and r the noise variance of a run -- the Student-t's
    Fisher-information equivalent sigma^2 (nu + 3) / (nu + 1), averaged over draws. Exact for a
    Gaussian posterior and a law linear in its parameters near the draws; no simulation noise, any
    batch size. Sequential conditioning (a Kalman update per pick) keeps each step O(n^2)."""

    def __init__(self, mu: np.ndarray, g: np.ndarray, sigma: np.ndarray, nu: np.ndarray) -> None:
        F = mu - mu.mean(axis=0)
        G = g - g.mean()
        S = len(g)
        self._start = (F.T @ F / S, F.T @ G / S, float(G @ G / S))  # moments of the draws (as np.var)
        self.noise = float(np.mean(sigma**2 * (nu + 3) / (nu + 1)))
        self.fresh()

    def fresh(self) -> _Linear:
        """Back to the current posterior (no picks)."""
        cov, cross, variance = self._start
        self.cov, self.cross, self.variance = cov.copy(), cross.copy(), variance
        return self

    def expected(self) -> np.ndarray:
        """Per candidate, the goal's variance after also observing it."""
        return self.variance - self.cross**2 / (np.diag(self.cov) + self.noise)

    def add(self, c: int) -> None:
        """Condition on candidate ``c``'s outcome (its variance and covariances shrink)."""
        denom = self.cov[c, c] + self.noise
        row, cross_c = self.cov[c, :].copy(), float(self.cross[c])
        gain = row / denom
        self.variance = float(self.variance - cross_c**2 / denom)
        self.cross = self.cross - gain * cross_c
        self.cov = self.cov - np.outer(gain, row)


class _Reweight:
    """Simulated outcomes re-weight the posterior draws (importance sampling): for each candidate,
    ``outcomes`` outcomes from the posterior predictive (one parameter draw per simulation, shared by
    a batch; independent Student-t noise per candidate), each giving the goal's weighted variance.
    Faithful to non-linear laws and heavy tails for single runs and small batches; with many runs in
    a batch the weights fall on a few draws and the variance after is understated."""

    def __init__(
        self, mu: np.ndarray, g: np.ndarray, sigma: np.ndarray, nu: np.ndarray, outcomes: int, rng: np.random.Generator
    ) -> None:
        S, n = mu.shape
        j = rng.integers(S, size=outcomes)
        y = mu[j, :] + sigma[j][:, None] * stdtrit(nu[j][:, None], rng.uniform(size=(outcomes, n)))  # (M, n)
        self.loglik = np.empty((n, outcomes, S), dtype=np.float32)
        for c in range(n):
            self.loglik[c] = student_t_logpdf(y[:, c][:, None], nu[None, :], mu[None, :, c], sigma[None, :])
        self.g = np.asarray(g, dtype=float)
        self.fresh()

    def fresh(self) -> _Reweight:
        """Back to the current posterior (no picks)."""
        self.base = np.zeros(self.loglik.shape[1:])
        self.variance = float(np.var(self.g))
        return self

    def expected(self) -> np.ndarray:
        """Per candidate, the mean over simulated outcomes of the goal's variance after also observing it."""
        return _expected_variance(self.base, self.loglik, self.g)

    def add(self, c: int) -> None:
        """Condition the simulated outcomes on candidate ``c``'s."""
        self.base = self.base + self.loglik[c]
        self.variance = float(_expected_variance(self.base, np.zeros((1, *self.base.shape), np.float32), self.g)[0])


def _expected_variance(base: np.ndarray, loglik: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Per candidate, the mean over simulated outcomes of the goal's re-weighted variance.

    ``base`` (M, S) holds the batch's log-likelihoods so far; ``loglik`` (n, M, S) each candidate's.
    """
    out = np.empty(loglik.shape[0])
    g = np.asarray(g, dtype=float)
    g2 = g**2
    for c in range(loglik.shape[0]):
        logw = base + loglik[c]
        w = np.exp(logw - logsumexp(logw, axis=1, keepdims=True))
        mean = w @ g
        out[c] = float(np.mean(w @ g2 - mean**2))
    return out


def _candidate_table(fit: object, candidates: pd.DataFrame | Mapping[str, object]) -> pd.DataFrame:
    """Candidates as N, D, C (validated; any two of N, D, C give the third)."""
    frame = pd.DataFrame(candidates) if not isinstance(candidates, pd.DataFrame) else candidates
    cols = {x: frame[x].to_numpy(dtype=float) for x in ("N", "D", "C") if x in frame.columns}
    if len(cols) < 2:
        found = ", ".join(repr(str(c)) for c in frame.columns)
        raise DesignError(f"candidate runs need two of the columns N, D, C; columns found: {found}")
    if len(frame) == 0:
        raise DesignError("the candidate table has no runs")
    points = complete_inputs(fit.law, fit.k, **cols)
    if not ({"N", "D"} <= set(points) and np.isfinite(points["N"]).all() and np.isfinite(points["D"]).all()):
        raise DesignError("candidate runs need N and D (or C with one of them)")
    return pd.DataFrame({"N": points["N"], "D": points["D"], "C": fit.k * points["N"] * points["D"]})
