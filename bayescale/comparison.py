"""Compare laws on the same runs: PSIS-LOO, leave-future-out, stacking weights and what each law implies.

Two questions, two scores, both in expected log predictive density (elpd) of the log loss
under each law's likelihood:

- **LOO** (``elpd_loo``): how well the law predicts a run like the ones already seen.
  ArviZ's PSIS-LOO on the fit's pointwise log-likelihood (``az.loo``); differences,
  their standard errors and stacking weights from ``az.compare``.
- **Leave-future-out** (``elpd_lfo``): how well it predicts *larger* runs -- the question a
  scaling law is for. Each law is re-fitted on the runs below a compute cutoff (the top
  :data:`LFO_HOLDOUT` of runs by compute held out, budgets kept whole) and scored on the
  held-out runs: ``elpd_i = log mean_s p(y_i | theta_s)``, summed, with standard error
  ``sqrt(n var(elpd_i))``. ``weight_lfo`` are stacking weights on these pointwise scores.

Beside the scores, each law's practical consequence: the posterior median and interval of
the allocation exponent ``a`` (N_opt grows as C^a) and of tokens per parameter at a
reference budget (default 100x the largest budget in the runs).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayescale.averaging import AveragedFit, AveragingError
from bayescale.errors import BayescaleError, BayescaleWarning
from bayescale.result import ScalingFit
from bayescale.stacking import stacking_weights

if TYPE_CHECKING:
    from bayescale.data import Runs

#: Default share of runs (top by compute) held out for the leave-future-out score.
LFO_HOLDOUT = 0.2
#: Pareto k above which PSIS-LOO is unreliable for a run.
PARETO_K_BAD = 0.7
#: Columns of :attr:`Comparison.table`, in order.
COLUMNS = [
    "law",
    "elpd_loo",
    "se",
    "elpd_diff",
    "dse",
    "p_loo",
    "weight",
    "n_bad_k",
    "elpd_lfo",
    "se_lfo",
    "elpd_lfo_diff",
    "weight_lfo",
    "n_lfo",
    "a_median",
    "a_lower",
    "a_upper",
    "tokens_per_param_median",
    "tokens_per_param_lower",
    "tokens_per_param_upper",
]


class ComparisonError(BayescaleError, ValueError):
    """Laws or settings that cannot be compared (unknown law, fewer than two, too few runs)."""


class ComparisonWarning(BayescaleWarning):
    """A comparison whose LOO estimate is unreliable for some runs (Pareto k > 0.7)."""


@dataclass
class Comparison:
    """The result of :func:`compare`: the table, the fits it was computed from, and LFO scores.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per law, best LOO first; columns :data:`COLUMNS`.
    fits : dict of str to ScalingFit
        The fits on all runs, by law name.
    lfo_pointwise : dict of str to numpy.ndarray
        Each law's pointwise leave-future-out elpd on the held-out runs.
    compute : float
        The reference budget of the allocation columns.
    """

    table: pd.DataFrame
    fits: dict[str, ScalingFit]
    lfo_pointwise: dict[str, np.ndarray] = field(default_factory=dict)
    compute: float = float("nan")

    def weights(self, kind: str = "stacking") -> dict[str, float]:
        """Model weights by law: ``"stacking"`` (on LOO) or ``"lfo"`` (stacking on leave-future-out)."""
        column = {"stacking": "weight", "lfo": "weight_lfo"}.get(kind)
        if column is None:
            raise ComparisonError(f"unknown weights {kind!r}; use 'stacking' or 'lfo'")
        return {row.law: float(getattr(row, column)) for row in self.table.itertuples()}

    def average(self, weights: str | Mapping[str, float] = "stacking", seed: int | None = None) -> AveragedFit:
        """Model-averaged fit: see :func:`bayescale.average`."""
        return average(self, weights=weights, seed=seed)


def _fit_laws(
    runs: Runs, laws: Sequence[str], priors: Mapping[str, Mapping[str, Any]] | None, fit_kwargs: Mapping[str, Any]
) -> dict[str, ScalingFit]:
    from bayescale.pipeline import fit

    fits = {}
    for name in laws:
        fits[name] = fit(runs, law=name, priors=(priors or {}).get(name), **fit_kwargs)
    return fits


def _check_laws(laws: Sequence[str], runs: Runs) -> list[str]:
    from bayescale.laws import LAWS, get_law

    names = [str(name).strip() for name in laws]
    if len(names) < 2:
        raise ComparisonError(f"compare needs at least 2 laws, got {len(names)}; e.g. --laws kaplan,chinchilla")
    resolved = []
    for name in names:
        try:
            law = get_law(name)
        except BayescaleError:
            raise ComparisonError(f"unknown law {name!r}; known laws: {', '.join(LAWS)}") from None
        missing = [x for x in law.inputs if not runs.has(x)]
        if missing:
            raise ComparisonError(
                f"law {name!r} needs {', '.join(missing)}, which the runs do not have "
                f"(they have {', '.join(runs.inputs)})"
            )
        resolved.append(law.name)
    if len(set(resolved)) < len(resolved):
        raise ComparisonError(f"each law once, please: {', '.join(names)}")
    return resolved


def _as_fits(data: Mapping[str, ScalingFit] | Sequence[ScalingFit | str | Path]) -> dict[str, ScalingFit]:
    from bayescale.result import load

    if isinstance(data, Mapping):
        items = list(data.items())
    else:
        loaded = [f if isinstance(f, ScalingFit) else load(f) for f in data]
        items = [(f.law.name, f) for f in loaded]
    fits = dict(items)
    if len(fits) < 2:
        raise ComparisonError(f"compare needs fits of at least 2 different laws, got {len(fits)}")
    first = next(iter(fits.values())).runs
    for name, f in fits.items():
        if len(f.runs) != len(first) or not np.allclose(f.runs.loss, first.loss):
            raise ComparisonError(f"fit {name!r} was made on other runs: LOO compares laws only on the same runs")
    return fits


def lfo_pointwise(
    fitted: ScalingFit, holdout: float, min_runs: int, fit_kwargs: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Re-fit ``fitted``'s law without the top ``holdout`` of runs by compute; pointwise elpd of those runs.

    Returns
    -------
    (elpd_i, held) : arrays
        The held-out runs' log predictive densities of their log loss, and the boolean
        mask of held-out runs.
    """
    from scipy.special import logsumexp
    from scipy.stats import t as student_t

    from bayescale.diagnostics import DiagnosticsWarning
    from bayescale.pipeline import fit
    from bayescale.predict import as_columns, law_log_loss
    from bayescale.splits import holdout_top_compute

    runs = fitted.runs
    held = holdout_top_compute(runs, holdout)
    if (~held).sum() < min_runs:
        raise ComparisonError(
            f"holding out the top {holdout:g} of runs by compute leaves {(~held).sum()} runs to fit "
            f"{fitted.law.name}; it needs at least {min_runs}: use a smaller --holdout-top"
        )
    train, test = runs.subset(~held), runs.subset(held)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)  # its scores are what is used; the full fit is checked
        sub = fit(train, law=fitted.law, priors=fitted.priors, discrepancy=False, calibrate=False, **fit_kwargs)
    p = as_columns(sub._sampled())
    mu = law_log_loss(sub.law, p, sub.reference, {x: test.values(x) for x in sub.law.inputs})
    logp = student_t.logpdf(sub.law.observed(test.loss)[None, :], df=p["nu"], loc=mu, scale=p["sigma"])
    return logsumexp(logp, axis=0) - np.log(logp.shape[0]), held


def _allocation_columns(fitted: ScalingFit, compute: float, interval: float) -> dict[str, float]:
    from bayescale.stats import interval_stats

    out = {}
    try:
        draws = fitted.allocation_draws(compute)
    except BayescaleError:  # a law of compute alone has no allocation
        draws = {}
    for q in ("a", "tokens_per_param"):
        stats = interval_stats(draws[q], interval) if q in draws else {}
        for k in ("median", "lower", "upper"):
            out[f"{q}_{k}"] = float(stats.get(k, np.nan))
    return out


def compare(
    data: Runs | pd.DataFrame | str | Path | Mapping[str, ScalingFit] | Sequence[ScalingFit | str | Path],
    laws: Sequence[str] = ("kaplan", "chinchilla"),
    *,
    priors: Mapping[str, Mapping[str, Any]] | None = None,
    holdout_top: float | None = LFO_HOLDOUT,
    compute: float | None = None,
    interval: float = 0.9,
    **fit_kwargs: Any,
) -> Comparison:
    """Compare scaling laws by PSIS-LOO and leave-future-out, with stacking weights.

    Parameters
    ----------
    data : runs (Runs, DataFrame or path), or fits
        Runs to fit every law in ``laws`` to, or already-fitted results of different laws
        on the same runs (a mapping name -> ScalingFit, or a sequence of fits or fit paths).
    laws : sequence of str, default ("kaplan", "chinchilla")
        Laws to fit (ignored when ``data`` are fits).
    priors : mapping, optional
        Prior overrides per law name, e.g. ``{"chinchilla": {"E": 0}}``.
    holdout_top : float or None, default 0.2
        Share of runs (top by compute) held out for the leave-future-out columns; None
        skips them (no re-fits).
    compute : float, optional
        Budget of the allocation columns (default 100x the largest budget in the runs).
    interval : float, default 0.9
        Probability of the allocation intervals.
    **fit_kwargs
        Passed to :func:`bayescale.fit` (``draws``, ``tune``, ``chains``, ``seed``,
        ``discrepancy``, ``calibrate``...). The leave-future-out re-fits use the same
        sampler settings and each law's priors, and fit the law alone.

    Returns
    -------
    Comparison
        ``.table`` (columns :data:`COLUMNS`, best LOO first), ``.fits``,
        ``.weights("stacking" | "lfo")`` and ``.average(...)``.

    Warns
    -----
    ComparisonWarning
        When some runs have Pareto k > 0.7 (their LOO estimate is unreliable).
    """
    import arviz as az

    from bayescale.model import n_free_params, resolve_priors
    from bayescale.stats import check_interval

    check_interval(interval)
    if holdout_top is not None and not 0 < holdout_top < 1:
        raise ComparisonError(f"holdout_top must be a share between 0 and 1 (e.g. 0.2), got {holdout_top}")
    if isinstance(data, Mapping) or (isinstance(data, Sequence) and not isinstance(data, str)):
        fits = _as_fits(data)
    else:
        from bayescale.sampling import _as_runs

        runs = _as_runs(data)
        names = _check_laws(laws, runs)
        if holdout_top is not None:  # fail before hours of sampling, not after
            from bayescale.laws import get_law
            from bayescale.splits import holdout_top_compute

            left = int((~holdout_top_compute(runs, holdout_top)).sum())
            need = max(n_free_params(resolve_priors(get_law(n), runs, (priors or {}).get(n))) + 1 for n in names)
            if left < need:
                raise ComparisonError(
                    f"holding out the top {holdout_top:g} of runs by compute leaves {left} runs; "
                    f"the laws need at least {need}: use a smaller --holdout-top"
                )
        fits = _fit_laws(runs, names, priors, fit_kwargs)

    first = next(iter(fits.values()))
    try:
        budget = float(first.reference_budget if compute is None else compute)
    except BayescaleError:  # laws of other inputs than N and D (formula laws): no allocation columns
        budget = float("nan")
    loos = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ArviZ's Pareto-k warning: counted and re-issued below
        for name, f in fits.items():
            loos[name] = az.loo(f.tree, pointwise=True, var_name="log_loss")
        table = az.compare(loos, round_to="none")
    rows = []
    for name, row in table.iterrows():
        n_bad = int((np.asarray(loos[name].pareto_k) > PARETO_K_BAD).sum())
        rows.append(
            {
                "law": str(name),
                "elpd_loo": float(row["elpd"]),
                "se": float(row["se"]),
                "elpd_diff": float(row["elpd_diff"]),
                "dse": float(row["dse"]),
                "p_loo": float(row["p"]),
                "weight": float(row["weight"]),
                "n_bad_k": n_bad,
            }
        )
        if n_bad:
            warnings.warn(
                f"{name}: {n_bad} run(s) with Pareto k > {PARETO_K_BAD}: their LOO estimate is unreliable "
                "(influential runs); the leave-future-out columns do not rely on PSIS",
                ComparisonWarning,
                stacklevel=2,
            )

    pointwise: dict[str, np.ndarray] = {}
    if holdout_top is not None:
        settings = first.tree.attrs
        sub_kwargs = {
            "draws": int(fit_kwargs.get("draws", settings.get("draws", 1000))),
            "tune": int(fit_kwargs.get("tune", settings.get("tune", 1000))),
            "chains": int(fit_kwargs.get("chains", settings.get("chains", 4))),
            "seed": int(fit_kwargs.get("seed") or first.seed) + 3,
            "sampler": fit_kwargs.get("sampler", settings.get("sampler", "nutpie")),
            "target_accept": float(fit_kwargs.get("target_accept", settings.get("target_accept", 0.95))),
        }
        for name, f in fits.items():
            pointwise[name], _ = lfo_pointwise(f, holdout_top, n_free_params(f.priors) + 1, sub_kwargs)
        best = max(pointwise, key=lambda n: pointwise[n].sum())
        lfo_weights = stacking_weights(pointwise)
    for row in rows:
        e = pointwise.get(row["law"])
        if e is None:
            row.update({k: np.nan for k in ("elpd_lfo", "se_lfo", "elpd_lfo_diff", "weight_lfo", "n_lfo")})
        else:
            row.update(
                {
                    "elpd_lfo": float(e.sum()),
                    "se_lfo": float(np.sqrt(e.size * e.var())),
                    "elpd_lfo_diff": float(e.sum() - pointwise[best].sum()),
                    "weight_lfo": lfo_weights[row["law"]],
                    "n_lfo": int(e.size),
                }
            )
        row.update(_allocation_columns(fits[row["law"]], budget, interval))
    return Comparison(pd.DataFrame(rows, columns=COLUMNS), fits, pointwise, budget)


def average(
    results: Comparison | Mapping[str, ScalingFit] | Sequence[ScalingFit | str | Path],
    weights: str | Mapping[str, float] = "stacking",
    seed: int | None = None,
) -> AveragedFit:
    """Average fits of different laws by weights.

    Parameters
    ----------
    results : Comparison, mapping name -> ScalingFit, or sequence of fits / fit paths
        The fits to average (a sequence is named by law).
    weights : "stacking", "lfo" or mapping, default "stacking"
        Stacking weights on PSIS-LOO, stacking weights on the leave-future-out scores
        (both from :func:`bayescale.comparison`, run here when ``results`` are fits), or
        explicit non-negative weights by name (normalised to sum 1).
    seed : int, optional
        Seed of the choice of draws (default: the first fit's seed).

    Returns
    -------
    AveragedFit
    """
    if isinstance(results, Comparison):
        comparison, fits = results, results.fits
    else:
        comparison, fits = None, _as_fits(results)
    if isinstance(weights, str):
        if weights not in ("stacking", "lfo"):
            raise AveragingError(f"unknown weights {weights!r}; use 'stacking', 'lfo' or a mapping of law to weight")
        if comparison is None:
            comparison = compare(fits, holdout_top=0.2 if weights == "lfo" else None)
        w = comparison.weights(weights)
    else:
        unknown = sorted(set(weights) - set(fits))
        if unknown:
            raise AveragingError(f"weights for unknown fits {', '.join(unknown)}; the fits are {', '.join(fits)}")
        w = {name: float(weights.get(name, 0.0)) for name in fits}
    values = np.array(list(w.values()))
    if not np.all(np.isfinite(values)) or (values < 0).any() or values.sum() <= 0:
        raise AveragingError(f"weights must be non-negative and not all zero, got {w}")
    w = {name: v / values.sum() for name, v in w.items()}
    first = next(iter(fits.values()))
    return AveragedFit(fits, w, first.seed if seed is None else seed)
