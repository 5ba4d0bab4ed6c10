"""Figures of fits, comparisons and backtests: each function returns a ``matplotlib.figure.Figure``.

Every figure is drawn on a figure object of its own (no pyplot state), so they work
headless (Agg) and in scripts; save one with ``fig.savefig("loss.png", dpi=150)``.

- :func:`plot_loss` -- loss vs compute (or N) with the runs, the posterior median and nested
  predictive bands, extrapolated to a target, the target marked;
- :func:`plot_isoflop` -- loss vs N at fixed budgets with bands and the posterior of the optimum;
- :func:`plot_allocation` -- N_opt and D_opt vs compute as fan charts, with Kaplan's (0.73) and
  Chinchilla's (0.5) slopes, and the tokens-per-parameter posterior at chosen budgets;
- :func:`plot_posteriors` -- each sampled parameter's posterior against its prior;
- :func:`plot_pairs` -- pair plot of the law's physical parameters;
- :func:`plot_comparison` -- elpd (LOO and leave-future-out) with standard errors, and weights;
- :func:`plot_backtest` -- predicted vs actual held-out loss with intervals, and the PIT histogram;
- :func:`plot_residuals` -- residuals against fitted loss and against compute;
- :func:`plot_inputs` -- a formula law's target against each input (each run's band) and its residuals;
- :func:`plot_groups` -- a pooled fit's groups with bands, and the difference of two from joint draws;
- :func:`plot_task` -- a task fit's metric against compute with bands, the runs and chance;
- :func:`plot_epochs` -- a data-constrained fit's loss against epochs, repeated against fresh data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from bayescale.errors import BayescaleError
from bayescale.predict import law_log_loss

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from bayescale.backtesting import BacktestResult
    from bayescale.comparison import Comparison
    from bayescale.result import ScalingFit

#: Band probabilities drawn by default, widest first.
INTERVALS = (0.9, 0.5)
#: Chinchilla's rule of thumb, marked on tokens-per-parameter plots.
CHINCHILLA_TOKENS_PER_PARAM = 20.0
_BAND = "#3b6ea5"
_RUNS = "#222222"
_TARGET = "#c0392b"


class PlotError(BayescaleError, ValueError):
    """A figure that cannot be drawn for this fit (e.g. allocation for a law of compute alone)."""


def _figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (6.4, 4.4)) -> tuple[Figure, np.ndarray]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _band_alpha(interval: float) -> float:
    return 0.18 if interval >= 0.8 else 0.35


def _has_nd(fit: ScalingFit) -> bool:
    return set(fit.law.inputs) >= {"N", "D"}


def _path(fit: ScalingFit, C: np.ndarray, tokens_per_param: float) -> dict[str, np.ndarray]:
    """Points along compute at a fixed D/N (laws of N and D) or along C alone."""
    if not _has_nd(fit):
        return {"C": C}
    N = np.sqrt(C / (fit.k * tokens_per_param))
    return {"N": N, "D": tokens_per_param * N}


def plot_loss(
    fit: ScalingFit,
    target: tuple[float, float] | None = None,
    x: str = "C",
    intervals: Sequence[float] = INTERVALS,
    tokens_per_param: float | None = None,
) -> Figure:
    """Loss against compute (or N): runs, posterior median and nested bands out to a target.

    Parameters
    ----------
    fit : ScalingFit
    target : (N, D), optional
        A run to extrapolate to, marked with its predicted band (default: 100x the largest
        run's compute along the path).
    x : "C" or "N", default "C"
        Horizontal axis: training FLOPs or parameters (laws of N and D).
    intervals : sequence of float, default (0.9, 0.5)
        Nested predictive bands (a new run's loss, noise included).
    tokens_per_param : float, optional
        D/N along the drawn path (default: the target's, else 20).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if x not in ("C", "N"):
        raise PlotError(f"x must be 'C' or 'N', got {x!r}")
    if x == "N" and not _has_nd(fit):
        raise PlotError(f"law {fit.law.name} has no N axis; use x='C'")
    runs = fit.runs
    ratio = tokens_per_param or (target[1] / target[0] if target else CHINCHILLA_TOKENS_PER_PARAM)
    c_runs = runs.values("C")
    c_target = fit.k * target[0] * target[1] if target else 100 * c_runs.max()
    C = np.geomspace(c_runs.min(), max(c_target, c_runs.max()) * 1.5, 80)
    pts = _path(fit, C, ratio)
    xs = C if x == "C" else pts["N"]
    fig, axes = _figure()
    ax = axes[0, 0]
    for level in sorted(intervals, reverse=True):
        p = fit.predict(**pts, interval=level)
        ax.fill_between(
            xs, p["lower"], p["upper"], color=_BAND, alpha=_band_alpha(level), lw=0, label=f"{level:.0%} band"
        )
    ax.plot(xs, p["median"], color=_BAND, lw=2, label="posterior median")  # the same for every interval
    ax.scatter(runs.values(x), runs.loss, s=12, color=_RUNS, zorder=3, label=f"runs ({len(runs)})")
    if target is not None:
        t = fit.predict(N=target[0], D=target[1], interval=max(intervals)).iloc[0]
        tx = t["C"] if x == "C" else t["N"]
        ax.errorbar(
            [tx],
            [t["median"]],
            yerr=[[t["median"] - t["lower"]], [t["upper"] - t["median"]]],
            fmt="*",
            color=_TARGET,
            ms=12,
            capsize=4,
            zorder=4,
            label=f"target N={target[0]:.3g}, D={target[1]:.3g}: {t['median']:.3f} ({t['lower']:.3f}-{t['upper']:.3f})",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOPs)" if x == "C" else "parameters N")
    ax.set_ylabel("final loss (nats/token)")
    path = f" along D/N = {ratio:.3g}" if _has_nd(fit) else ""
    ax.set_title(f"{fit.law.name}: predicted loss{path}")
    ax.legend(fontsize=8, loc="upper right")  # "best" searches the data: slow, and warns, on large fits
    return fig


def plot_isoflop(fit: ScalingFit, budgets: Sequence[float] | None = None, interval: float = 0.9) -> Figure:
    """IsoFLOP profiles: expected loss against N at fixed budgets, with bands and the optimum's posterior.

    Parameters
    ----------
    fit : ScalingFit
        A fit of a law of N and D.
    budgets : sequence of float, optional
        Budgets in FLOPs (default: four from the smallest run's compute to 100x the largest).
    interval : float, default 0.9
        Band of the expected loss (law plus discrepancy) and interval of N_opt.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not _has_nd(fit):
        raise PlotError(f"law {fit.law.name} has no N and D: isoFLOP profiles need both")
    c_runs = fit.runs.values("C")
    budgets = np.asarray(budgets if budgets is not None else np.geomspace(c_runs.min(), 100 * c_runs.max(), 4))
    opt = fit.optimal(budgets, interval=interval)
    fig, axes = _figure()
    ax = axes[0, 0]
    colors = _colors(len(budgets))
    for (_, row), color in zip(opt.iterrows(), colors, strict=True):
        C = row["compute"]
        N = np.geomspace(row["N_opt_median"] / 12, row["N_opt_median"] * 12, 60)
        p = fit.predict(N=N, D=C / (fit.k * N), interval=interval)
        ax.fill_between(N, p["expected_lower"], p["expected_upper"], color=color, alpha=0.2, lw=0)
        ax.plot(N, p["expected_median"], color=color, lw=1.8, label=f"C = {C:.2g} FLOPs")
        ax.errorbar(
            [row["N_opt_median"]],
            [row["loss_opt_median"]],
            xerr=[[row["N_opt_median"] - row["N_opt_lower"]], [row["N_opt_upper"] - row["N_opt_median"]]],
            fmt="o",
            color=color,
            capsize=3,
        )
        near = np.isclose(c_runs, C, rtol=0.05)
        if near.any():
            ax.scatter(fit.runs.values("N")[near], fit.runs.loss[near], s=14, color=color, edgecolor=_RUNS, zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("expected final loss (nats/token)")
    ax.set_title(f"isoFLOP profiles: {interval:.0%} bands; dots = N_opt with {interval:.0%} interval")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def _colors(n: int) -> list:
    from matplotlib import colormaps

    return [colormaps["viridis"](v) for v in np.linspace(0.1, 0.85, n)]


def plot_allocation(
    fit: ScalingFit,
    compute: Sequence[float] | None = None,
    budgets: Sequence[float] | None = None,
    interval: float = 0.9,
) -> Figure:
    """Compute-optimal N and D against compute as fan charts, and tokens per parameter at chosen budgets.

    Parameters
    ----------
    fit : ScalingFit
        A fit of a law of N and D.
    compute : sequence of float, optional
        The compute axis (default: 25 budgets from the smallest run to 1000x the largest).
    budgets : sequence of float, optional
        Budgets of the tokens-per-parameter panel (default: the largest run's compute and
        10x, 100x, 1000x it).
    interval : float, default 0.9
        Interval of the fans (a 50% fan is drawn inside).

    Returns
    -------
    matplotlib.figure.Figure
        Three panels: N_opt with Kaplan's (C^0.73) and Chinchilla's (C^0.5) slopes through
        the first median, D_opt likewise (C^0.27 and C^0.5), and tokens per parameter.
    """
    if not _has_nd(fit):
        raise PlotError(f"law {fit.law.name} has no N and D: allocation needs both")
    c_max = fit.runs.values("C").max()
    C = np.asarray(compute if compute is not None else np.geomspace(fit.runs.values("C").min(), 1000 * c_max, 25))
    wide, narrow = fit.optimal(C, interval=interval), fit.optimal(C, interval=0.5)
    fig, axes = _figure(1, 3, size=(5.0, 4.2))
    for ax, q, kaplan in ((axes[0, 0], "N_opt", 0.73), (axes[0, 1], "D_opt", 0.27)):
        ax.fill_between(
            C, wide[f"{q}_lower"], wide[f"{q}_upper"], color=_BAND, alpha=0.18, lw=0, label=f"{interval:.0%}"
        )
        ax.fill_between(C, narrow[f"{q}_lower"], narrow[f"{q}_upper"], color=_BAND, alpha=0.35, lw=0, label="50%")
        ax.plot(C, wide[f"{q}_median"], color=_BAND, lw=2, label="posterior median")
        m0 = wide[f"{q}_median"].iloc[0]
        ax.plot(C, m0 * (C / C[0]) ** kaplan, "--", color="#e67e22", label=f"Kaplan slope {kaplan}")
        ax.plot(C, m0 * (C / C[0]) ** 0.5, ":", color="#27ae60", label="Chinchilla slope 0.5")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training compute C (FLOPs)")
        ax.set_ylabel("parameters N_opt" if q == "N_opt" else "tokens D_opt")
        ax.legend(fontsize=7, loc="upper right")
    axes[0, 0].set_title("compute-optimal model size")
    axes[0, 1].set_title("compute-optimal tokens")
    ax = axes[0, 2]
    budgets = np.asarray(budgets if budgets is not None else c_max * np.array([1, 10, 100, 1000]))
    samples = [fit.allocation_draws(float(b))["tokens_per_param"] for b in budgets]
    ax.violinplot([np.log10(s) for s in samples], showmedians=True)
    ax.axhline(np.log10(CHINCHILLA_TOKENS_PER_PARAM), color="#27ae60", ls=":", label="Chinchilla: about 20")
    ax.set_xticks(range(1, len(budgets) + 1), [f"{b:.1e}" for b in budgets], fontsize=7)
    ax.set_xlabel("budget C (FLOPs)")
    ax.set_ylabel("log10 tokens per parameter (posterior)")
    ax.set_title("tokens per parameter")
    ax.legend(fontsize=7, loc="upper right")
    return fig


def plot_posteriors(fit: ScalingFit, params: Sequence[str] | None = None) -> Figure:
    """Each sampled parameter's posterior (histogram) against its prior density (line).

    Parameters
    ----------
    fit : ScalingFit
    params : sequence of str, optional
        Sampled parameters (default: every one with a prior that is not fixed).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from bayescale.priors import to_scipy

    names = list(params or [n for n, p in fit.priors.items() if not p.is_fixed and n in fit.posterior])
    unknown = [n for n in names if n not in fit.priors or n not in fit.posterior]
    if unknown:
        raise PlotError(f"no prior and posterior for {', '.join(unknown)}; parameters: {', '.join(fit.priors)}")
    ncols = min(4, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = _figure(nrows, ncols, size=(3.4, 2.7))
    for ax, name in zip(axes.flat, names, strict=False):
        draws = fit.draws(name)
        lo, hi = np.quantile(draws, [0.001, 0.999])
        span = hi - lo
        ax.hist(
            draws,
            bins=50,
            range=(lo - 0.2 * span, hi + 0.2 * span),
            density=True,
            color=_BAND,
            alpha=0.6,
            label="posterior",
        )
        grid = np.linspace(lo - 0.2 * span, hi + 0.2 * span, 300)
        prior = fit.priors[name]
        ax.plot(grid, to_scipy(prior).pdf(grid), color=_TARGET, lw=1.5, label="prior")
        ax.set_title(f"{name}  ~ {prior.dist}", fontsize=9)
        ax.set_yticks([])
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{fit.law.name}: posterior against prior (prior drawn over the posterior's range)")
    return fig


def plot_pairs(fit: ScalingFit, params: Sequence[str] | None = None, max_points: int = 2000) -> Figure:
    """Pair plot of the law's physical parameters (those with medians above 100, such as A, on log10).

    Parameters
    ----------
    fit : ScalingFit
    params : sequence of str, optional
        Default: the law's physical parameters that are not fixed (E, A, alpha, B, beta for
        Chinchilla's law).
    max_points : int, default 2000
        Draws shown in each scatter (a random subset).

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = list(params or [n for n in fit.law.natural_params if np.ptp(fit.draws(n)) > 0])
    values = {}
    for n in names:
        v = fit.draws(n)
        if np.all(v > 0) and np.median(v) > 100:  # amplitudes and critical scales: orders of magnitude
            values[f"log10 {n}"] = np.log10(v)
        else:
            values[n] = v
    labels = list(values)
    k = len(labels)
    rng = np.random.default_rng(0)
    n_draws = len(next(iter(values.values())))
    idx = rng.choice(n_draws, size=min(max_points, n_draws), replace=False)
    fig, axes = _figure(k, k, size=(2.1, 2.1))
    for i, yi in enumerate(labels):
        for j, xj in enumerate(labels):
            ax = axes[i, j]
            if j > i:
                ax.set_visible(False)
                continue
            if i == j:
                ax.hist(values[xj], bins=40, color=_BAND, alpha=0.7)
                ax.set_yticks([])
            else:
                ax.scatter(values[xj][idx], values[yi][idx], s=2, alpha=0.3, color=_BAND)
            if i == k - 1:
                ax.set_xlabel(xj, fontsize=8)
            if j == 0 and i != 0:
                ax.set_ylabel(yi, fontsize=8)
            ax.tick_params(labelsize=6)
    fig.suptitle(f"{fit.law.name}: joint posterior")
    return fig


def plot_comparison(comparison: Comparison) -> Figure:
    """Model comparison: elpd (LOO and leave-future-out) with standard errors, and weights.

    Parameters
    ----------
    comparison : Comparison
        From :func:`bayescale.compare`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    t = comparison.table
    y = np.arange(len(t))[::-1]
    has_lfo = bool(np.isfinite(t["elpd_lfo"]).any())
    fig, axes = _figure(1, 3 if has_lfo else 2, size=(4.2, 0.6 + 0.6 * len(t) + 1.6))
    ax = axes[0, 0]
    ax.errorbar(t["elpd_loo"], y, xerr=t["se"], fmt="o", color=_BAND, capsize=4, label="elpd_loo ± se")
    for yi, row in zip(y, t.itertuples(), strict=True):
        if row.elpd_diff != 0:
            ax.annotate(
                f"diff {row.elpd_diff:.1f} ± {row.dse:.1f}",
                (row.elpd_loo, yi),
                xytext=(0, 8),
                textcoords="offset points",
                ha="center",
                fontsize=7,
            )
    ax.set_yticks(y, t["law"])
    ax.set_xlabel("elpd (PSIS-LOO, higher is better)")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("leave-one-out")
    col = 1
    if has_lfo:
        ax = axes[0, 1]
        ax.errorbar(t["elpd_lfo"], y, xerr=t["se_lfo"], fmt="s", color=_TARGET, capsize=4)
        ax.set_yticks(y, t["law"])
        ax.set_xlabel("elpd of the largest-compute runs (fit to the rest)")
        ax.set_title("leave-future-out")
        col = 2
    ax = axes[0, col]
    width = 0.38
    ax.barh(y + width / 2, t["weight"], height=width, color=_BAND, label="stacking (LOO)")
    if has_lfo:
        ax.barh(y - width / 2, t["weight_lfo"], height=width, color=_TARGET, label="stacking (LFO)")
    ax.set_yticks(y, t["law"])
    ax.set_xlim(0, 1)
    ax.set_xlabel("weight")
    ax.set_title("model weights")
    ax.legend(fontsize=7, loc="upper right")
    return fig


def plot_backtest(result: BacktestResult, level: float = 0.9) -> Figure:
    """Backtest: predicted vs actual held-out loss with intervals, and the PIT histogram.

    Parameters
    ----------
    result : BacktestResult
        From :func:`bayescale.backtest`.
    level : float, default 0.9
        Which interval to draw (one of the backtest's levels).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from bayescale.backtesting import PIT_BINS

    p = result.predictions
    lower, upper = f"lower_{level:g}", f"upper_{level:g}"
    if lower not in p:
        levels = sorted({c.split("_", 1)[1] for c in p.columns if c.startswith("lower_")})
        raise PlotError(f"the backtest has no {level:g} interval; levels: {', '.join(levels)}")
    fig, axes = _figure(1, 2, size=(5.2, 4.4))
    ax = axes[0, 0]
    inside = (p["loss"] >= p[lower]) & (p["loss"] <= p[upper])
    for mask, color, label in ((inside, _BAND, "inside"), (~inside, _TARGET, "outside")):
        q = p[mask]
        ax.errorbar(
            q["loss"],
            q["median"],
            yerr=[q["median"] - q[lower], q[upper] - q["median"]],
            fmt="o",
            ms=4,
            color=color,
            capsize=2,
            label=f"{label} the {level:.0%} band ({int(mask.sum())})",
        )
    lo, hi = float(min(p["loss"].min(), p[lower].min())), float(max(p["loss"].max(), p[upper].max()))
    ax.plot([lo, hi], [lo, hi], color="#888", lw=1, ls="--")
    ax.set_xlabel("actual loss of the held-out run")
    ax.set_ylabel("predicted loss (median and band)")
    ax.set_title(f"held-out runs: coverage {inside.mean():.0%} (nominal {level:.0%})")
    ax.legend(fontsize=7, loc="upper right")
    ax = axes[0, 1]
    counts = result.pit_histogram
    ax.bar((np.arange(PIT_BINS) + 0.5) / PIT_BINS, counts, width=1 / PIT_BINS, color=_BAND, edgecolor="white")
    ax.axhline(counts.sum() / PIT_BINS, color="#888", ls="--", label="calibrated (flat)")
    ax.set_xlabel("PIT (share of predictive draws below the actual loss)")
    ax.set_ylabel("held-out runs")
    ax.set_title("PIT histogram: U-shaped = bands too narrow")
    ax.legend(fontsize=7, loc="upper right")
    return fig


def plot_residuals(fit: ScalingFit, suspects: pd.DataFrame | None = None) -> Figure:
    """Residuals of log loss (run minus the law's posterior median) against fitted loss and compute; the runs
    that look off (:func:`bayescale.run_checks.suspect_runs`) ringed, the five most off numbered.

    Parameters
    ----------
    fit : ScalingFit
    suspects : pandas.DataFrame, optional
        The runs that look off, when already computed (a report's table); else computed here.

    Returns
    -------
    matplotlib.figure.Figure
    """
    runs = fit.runs
    pts = {x: runs.values(x) for x in runs.inputs}
    fitted = fit.predict(**pts)
    med = fitted["expected_median"].to_numpy()
    law_only = np.median(law_log_loss(fit.law, fit._sampled(), fit.reference, pts), axis=0)
    resid = np.log(runs.loss) - law_only
    off = _off(fit, suspects)
    fig, axes = _figure(1, 2, size=(5.2, 4.0))
    for ax, xv, label, logx in (
        (axes[0, 0], np.exp(law_only), "fitted loss, law alone (nats/token)", False),
        (axes[0, 1], runs.values("C"), "training compute C (FLOPs)", True),
    ):
        ax.scatter(xv, 100 * resid, s=12, color=_BAND, label="run - law")
        ax.scatter(xv, 100 * (np.log(med) - law_only), s=6, color=_TARGET, marker="x", label="discrepancy (median)")
        if off.size:
            ax.scatter(xv[off], 100 * resid[off], s=70, facecolors="none", edgecolors=_TARGET, lw=1.2,
                       label=f"looks off ({off.size}: summary --runs)")  # fmt: skip
            for i in off[:5]:  # the five most off, by their run number
                ax.annotate(str(i + 1), (xv[i], 100 * resid[i]), fontsize=7, xytext=(4, 4), textcoords="offset points")
        ax.axhline(0, color="#888", lw=1)
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("residual (% of loss, log scale)")
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{fit.law.name}: residuals (structure here is what the discrepancy term absorbs)")
    return fig


def _off(fit: ScalingFit, suspects: pd.DataFrame | None) -> np.ndarray:
    """Row indices of the runs that look off, most off first."""
    from bayescale.run_checks import suspect_runs

    table = suspect_runs(fit) if suspects is None else suspects
    return table["run"].to_numpy() - 1


def plot_inputs(fit: ScalingFit, interval: float = 0.9, suspects: pd.DataFrame | None = None) -> Figure:
    """A formula law's target against each of its inputs: every run with its 90% predictive band
    (top row), and its residual from the posterior median of the expected value (bottom row).

    With several inputs varying at once, a curve along one input is not defined; each run's own
    band is drawn at its input's value instead. ``suspects``: the runs that look off, when already
    computed (ringed; see :func:`plot_residuals`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    law = fit.law
    runs = fit.runs
    inputs = list(law.inputs)
    pts = {x: runs.values(x) for x in inputs}
    p = fit.predict(points=pts, interval=interval)
    y = runs.loss
    log_scale = law.link == "log"
    resid = np.log(y) - np.log(p["expected_median"]) if log_scale else y - p["expected_median"]
    off = _off(fit, suspects)
    fig, axes = _figure(2, len(inputs), size=(4.2, 3.4))
    for j, x in enumerate(inputs):
        xv = pts[x]
        logx = x not in getattr(law, "linear_inputs", ()) and np.ptp(np.log(xv)) > np.log(20)
        ax = axes[0, j]
        ax.errorbar(xv, p["median"], yerr=[p["median"] - p["lower"], p["upper"] - p["median"]], fmt="none",
                    ecolor=_BAND, alpha=0.5, lw=1.2, label=f"{interval:.0%} band")  # fmt: skip
        ax.scatter(xv, y, s=12, color=_RUNS, zorder=3, label=f"runs ({len(runs)})")
        ax.set_ylabel(law.target)
        ax = axes[1, j]
        shown = np.asarray(100 * resid if log_scale else resid)
        ax.scatter(xv, shown, s=12, color=_BAND)
        if off.size:
            ax.scatter(xv[off], shown[off], s=70, facecolors="none", edgecolors=_TARGET, lw=1.2,
                       label=f"looks off ({off.size}: summary --runs)")  # fmt: skip
            ax.legend(fontsize=7, loc="best")
        ax.axhline(0, color="#888", lw=1)
        ax.set_ylabel("residual (% of target, log scale)" if log_scale else "residual (target units)")
        for ax in axes[:, j]:
            ax.set_xlabel(x)
            if logx:
                ax.set_xscale("log")
                ax.set_xlim(xv.min() / 1.3, xv.max() * 1.3)  # also where no run's value is finite (NaN law)
    axes[0, 0].legend(fontsize=7, loc="best")
    name = law.name if len(law.name) <= 40 else law.name[:37] + "..."
    fig.suptitle(f"{name}: {law.target} against each input, each run's band; residuals below", fontsize=10)
    return fig


def plot_literature(table: pd.DataFrame | None = None, population: dict | None = None) -> Figure:
    """The literature prior: each published ladder's estimate and the population's predictive band.

    Parameters
    ----------
    table : DataFrame, optional
        Per-ladder quantities (default: the shipped ``literature_ladders.csv``).
    population : dict, optional
        Per-quantity predictive ``mean`` and ``sd`` (default: the shipped prior).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per quantity: ladders (dots with +-1 se, one row per ladder, coloured by
        source), the predictive median and 90% band for a ladder of a new source.
    """
    from importlib.resources import files

    import pandas as pd

    from bayescale import literature
    from bayescale.metaanalysis import QUANTITIES

    if table is None:
        table = pd.read_csv(files("bayescale.priors_data").joinpath("literature_ladders.csv"))
    population = population if population is not None else literature.load()["quantities"]
    table = table[table["reach"] == "all"] if "reach" in table else table
    sources = sorted(table["source"].unique())
    colors = dict(zip(sources, _colors(len(sources)), strict=True))
    fig, axes = _figure(1, len(QUANTITIES), size=(3.3, 6.0))
    for ax, q in zip(axes.flat, QUANTITIES, strict=True):
        t = table[table["quantity"] == q].sort_values(["source", "ladder"]).reset_index(drop=True)
        for src, part in t.groupby("source", sort=True):
            ax.errorbar(part["estimate"], part.index, xerr=part["se"], fmt="o", ms=3, color=colors[src], label=src)
        m, s = population[q]["mean"], population[q]["sd"]
        ax.axvspan(m - 1.645 * s, m + 1.645 * s, color=_BAND, alpha=0.18, label="new ladder, 90%")
        ax.axvline(m, color=_BAND, lw=1.5)
        ax.set_title(q, fontsize=10)
        ax.set_yticks([])
    axes.flat[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Literature prior: published ladders (estimate +- se) and the population's predictive band")
    return fig


def plot_groups(
    pooled: object,
    a: str | None = None,
    b: str | None = None,
    tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM,
    reach: float = 100.0,
    interval: float = 0.9,
) -> Figure:
    """A pooled fit: each group's expected loss vs compute with its band, and the difference panel.

    Top: every group's runs and the expected loss (law, discrepancy, band scale) along
    ``D = tokens_per_param x N``, from the smallest run's compute to ``reach`` times the largest.
    Bottom: the expected loss of group ``a`` minus group ``b`` (default: the first two groups) with
    its band from joint draws (:mod:`bayescale.contrast`), zero marked.
    """
    from bayescale.contrast import expected_loss_draws

    names = list(pooled.names)
    a, b = a or names[0], b or names[1]
    fits = {n: pooled.group(n) for n in names}
    lo_C = min(float(f.runs.values("C").min()) for f in fits.values())
    hi_C = reach * max(float(f.runs.values("C").max()) for f in fits.values())
    C = np.geomspace(lo_C, hi_C, 60)
    first = fits[names[0]]
    points = _path(first, C, tokens_per_param)
    points = {**points, "C": C} if "N" in points else points
    q = [(1 - interval) / 2, 0.5, (1 + interval) / 2]
    fig, axes = _figure(2, 1, size=(6.8, 3.6))
    top, bottom = axes[0, 0], axes[1, 0]
    draws = {}
    for color, (name, fit) in zip(_colors(len(fits)), fits.items(), strict=True):
        draws[name] = expected_loss_draws(fit, points)
        lo, med, hi = np.quantile(draws[name], q, axis=0)
        top.fill_between(C, lo, hi, color=color, alpha=_band_alpha(interval), linewidth=0)
        top.plot(C, med, color=color, label=f"{name} ({len(fit.runs)} runs)")
        top.scatter(fit.runs.values("C"), fit.runs.loss, s=10, color=color, edgecolor="none")
    top.set(xscale="log", yscale="log", ylabel="loss", title=f"groups at {tokens_per_param:g} tokens per parameter")
    top.legend(fontsize=7)
    diff = draws[a] - draws[b]
    lo, med, hi = np.quantile(diff, q, axis=0)
    bottom.fill_between(C, lo, hi, color=_BAND, alpha=_band_alpha(interval), linewidth=0, label=f"{interval:.0%} band")
    bottom.plot(C, med, color=_BAND, label="median")
    bottom.axhline(0.0, color="0.3", linewidth=0.8)
    bottom.set(xscale="log", xlabel="compute C (FLOPs)", ylabel=f"loss {a} - {b}")
    bottom.legend(fontsize=7)
    return fig


def plot_task(
    task_fit: object,
    task: str | None = None,
    targets: dict[str, Sequence[float]] | None = None,
    reach: float = 100.0,
    interval: float = 0.9,
) -> Figure:
    """A task fit (:mod:`bayescale.task_fit`): the metric vs compute with bands, the runs and chance.

    The band is a new run's metric (both steps' uncertainty) along the runs' median tokens per
    parameter, from the smallest run's compute to ``reach`` times the largest (or past the
    largest target); ``targets`` (``{"N": [...], "D": [...]}``) are drawn with their own bands.
    A task whose runs show no rise above chance says so in the title.
    """
    from bayescale.task_fit import NO_SIGNAL

    name = task if task is not None else task_fit.names[0]
    runs = task_fit.runs(name)
    metric = task_fit.metric
    ratio = float(np.median(runs["D"] / runs["N"])) if {"N", "D"} <= set(runs.columns) else None
    hi = reach * float(runs["C"].max())
    if targets is not None:
        target_C = task_fit.k * np.asarray(targets["N"], dtype=float) * np.asarray(targets["D"], dtype=float)
        hi = max(hi, 2.0 * float(target_C.max()))
    C = np.geomspace(float(runs["C"].min()), hi, 50)
    if ratio is not None:
        N = np.sqrt(C / (task_fit.k * ratio))
        band = task_fit.predict(N=N, D=ratio * N, interval=interval, task=name)
    else:
        band = task_fit.predict(C=C, interval=interval, task=name)
    fig, axes = _figure(1, 1, size=(6.4, 4.2))
    ax = axes[0, 0]
    ax.fill_between(C, band["lower"], band["upper"], color=_BAND, alpha=_band_alpha(interval), linewidth=0,
                    label=f"{interval:.0%} band (new run)")  # fmt: skip
    ax.plot(C, band["median"], color=_BAND, label="median")
    ax.scatter(runs["C"], runs[metric], s=14, color=_RUNS, zorder=3, label=f"runs ({len(runs)})")
    ax.axhline(task_fit.floor(name), color="0.4", linestyle="--", linewidth=0.8, label="chance")
    if targets is not None:
        pred = task_fit.predict(N=targets["N"], D=targets["D"], interval=interval, task=name)
        yerr = np.vstack([pred["median"] - pred["lower"], pred["upper"] - pred["median"]])
        ax.errorbar(pred["C"], pred["median"], yerr=yerr, fmt="D", color=_TARGET, markersize=5, capsize=3,
                    label="targets")  # fmt: skip
    where = f"{ratio:.0f} tokens per parameter" if ratio is not None else "compute"
    title = f"{name}: {metric} along {where}"
    if not task_fit.signal(name):
        title += f"\n({NO_SIGNAL})"
    ax.set(xscale="log", xlabel="compute C (FLOPs)", ylabel=metric, title=title, ylim=(0, 1))
    ax.legend(fontsize=7)
    return fig


def plot_epochs(
    fit: ScalingFit,
    N: float | None = None,
    unique_tokens: float | None = None,
    max_epochs: float | None = None,
    interval: float = 0.9,
) -> Figure:
    """A data-constrained fit: loss against epochs of ``unique_tokens`` at model size ``N``, with bands.

    Two bands of a new run's loss over D = epochs x U: with the data repeated (the law's
    effective data), and with the same D of fresh data (U = D) -- the gap is what repetition
    costs. The runs of that (N, U) are drawn at their epochs. By default the (N, U) with the
    most runs, out to twice their largest epoch count (at least 100 epochs).
    """
    if "U" not in fit.law.inputs:
        raise PlotError(f"law {fit.law.name} has no unique tokens; fit --law data-constrained to plot epochs")
    runs = fit.runs
    table = runs.table
    if N is None or unique_tokens is None:
        counts = table.groupby(["N", "U"]).size()
        N_, U_ = counts.idxmax()
        N = float(N_ if N is None else N)
        unique_tokens = float(U_ if unique_tokens is None else unique_tokens)
    same = np.isclose(table["N"], N, rtol=1e-3) & np.isclose(table["U"], unique_tokens, rtol=1e-3)
    epochs_runs = (table["D"] / table["U"])[same].to_numpy()
    top = max_epochs or max(100.0, 2.0 * float(epochs_runs.max()) if epochs_runs.size else 100.0)
    epochs = np.geomspace(1.0, top, 60)
    D = epochs * unique_tokens
    repeated = fit.predict(N=np.full_like(D, N), D=D, U=np.full_like(D, unique_tokens), interval=interval)
    fresh = fit.predict(N=np.full_like(D, N), D=D, interval=interval)
    fig, axes = _figure(1, 1, size=(6.4, 4.2))
    ax = axes[0, 0]
    curves = ((fresh, "0.55", "fresh data (U = D)"), (repeated, _BAND, f"U = {unique_tokens:.3g} repeated"))
    for band, color, label in curves:
        ax.fill_between(epochs, band["lower"], band["upper"], color=color, alpha=_band_alpha(interval), lw=0)
        ax.plot(epochs, band["median"], color=color, lw=2, label=f"{label}: median, {interval:.0%} band")
    label = f"runs at this N and U ({same.sum()})"
    ax.scatter(epochs_runs, table["loss"][same], s=16, color=_RUNS, zorder=3, label=label)
    ax.set(xscale="log", yscale="log", xlabel=f"epochs (D / U), U = {unique_tokens:.3g} tokens",
           ylabel="final loss (nats/token)", title=f"{fit.law.name}: N = {N:.3g}, loss against epochs")  # fmt: skip
    ax.legend(fontsize=8)
    return fig


def plot_design(found: object) -> Figure:
    """A design (:mod:`bayescale.next_runs`): the candidates on the (N, D) plane coloured by expected
    reduction of the goal's variance per FLOP, the chosen batch numbered, the runs and the target."""
    import matplotlib.colors as mcolors

    table = found.candidates
    fig, axes = _figure(1, 1, size=(6.4, 4.8))
    ax = axes[0, 0]
    value = np.maximum(table["reduction_per_flop"].to_numpy(), np.finfo(float).tiny)
    norm = mcolors.LogNorm(vmin=max(value.min(), value.max() * 1e-6), vmax=value.max())
    dots = ax.scatter(table["N"], table["D"], c=value, norm=norm, cmap="viridis", s=18, label="candidates")
    fig.colorbar(dots, ax=ax, label="variance reduction per FLOP")
    runs = found.ladder
    if runs.has("N") and runs.has("D"):
        ax.scatter(runs.values("N"), runs.values("D"), marker="x", color=_RUNS, s=20, label=f"runs ({len(runs)})")
    batch = found.batch
    ax.scatter(batch["N"], batch["D"], facecolors="none", edgecolors=_TARGET, s=120, lw=1.5, label="batch")
    for row in batch.itertuples():
        ax.annotate(str(row.pick), (row.N, row.D), xytext=(5, 5), textcoords="offset points", color=_TARGET)
    ax.scatter([found.target[0]], [found.target[1]], marker="*", color=_TARGET, s=160, label="target")
    goal = "loss at the target" if found.goal == "loss" else "compute-optimal N at the target's budget"
    ax.set(xscale="log", yscale="log", xlabel="parameters N", ylabel="tokens D",
           title=f"Next runs for the {goal}: sd {found.sd_before:.3g} -> {found.sd_after:.3g}")  # fmt: skip
    ax.legend(fontsize=7, loc="upper left")
    return fig
