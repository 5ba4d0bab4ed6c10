"""A report of a fit for a design document: one self-contained HTML file, or Markdown and PNGs.

The HTML embeds every figure as a base64 PNG and its style inline: no network, no scripts,
no external fonts, so it opens anywhere (and in a browser with no network). Sections: data
summary, diagnostics with plain-language verdicts, parameter table, predictions at the
targets, allocation, calibration, comparison (when other fits are given), figures, and the
methods needed to reproduce the result.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayescale.errors import BayescaleError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bayescale.result import ScalingFit

FORMATS = ("html", "md")
_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: .85em; margin: .6em 0; display: block; overflow-x: auto;
        max-width: 100%; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; } th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
.ok { color: #1e7b34; font-weight: bold; } .bad { color: #b03a2e; font-weight: bold; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #555; } code { background: #f5f5f5; padding: 0 .2em; }
"""


class ReportError(BayescaleError, ValueError):
    """A report that cannot be written (bad target, unknown format, unwritable path)."""


def _verdicts(fit: ScalingFit) -> list[tuple[bool, str]]:
    d = fit.diagnostics
    out = [
        (d.max_rhat <= 1.01, f"Chains agree (largest R-hat {d.max_rhat:.3f}; should be at most 1.01)."),
        (
            min(d.min_ess_bulk, d.min_ess_tail) >= 400,
            f"Enough independent draws (smallest effective sample size {min(d.min_ess_bulk, d.min_ess_tail):.0f}; "
            "should be at least 400 for stable 90% intervals).",
        ),
        (
            d.divergences == 0,
            f"{d.divergences} divergent transitions (should be 0: the sampler explored the whole posterior).",
        ),
    ]
    if d.problems:
        out.append((False, "What to do: " + d.message()))
    return out


def _suspects(fit: ScalingFit, table: pd.DataFrame) -> list:
    """The runs outside their leave-one-out 90% band, down-weighted or influential (:mod:`bayescale.run_checks`)."""
    chance = 0.1 * len(fit.runs)
    text = (
        f"{len(table)} of {len(fit.runs)} runs listed: outside the 90% band the other runs predict for them "
        f"(leave-one-out; about {chance:.1f} fall outside by chance alone), down-weighted by the robust pass, or "
        "influential (Pareto k above 0.7). The most off first; they are marked on the residual plot."
    )
    columns = ["run", *fit.law.inputs, "loss", "law_median", "residual", "loo_pit", "reason"]
    return [text, table[columns]] if len(table) else [text]


def _targets(fit: ScalingFit, targets: Sequence[tuple[float, float]] | None) -> list[tuple[float, float]]:
    if targets:
        for N, D in targets:
            if not (np.isfinite(N) and np.isfinite(D) and N > 0 and D > 0):
                raise ReportError(f"a target needs positive N and D, got N={N}, D={D}")
        return [(float(N), float(D)) for N, D in targets]
    if not set(fit.law.inputs) >= {"N", "D"}:
        return []
    C = 100 * fit.runs.values("C").max()
    N = np.sqrt(C / (fit.k * 20.0))
    return [(float(N), float(20.0 * N))]


def _figures(
    fit: ScalingFit, targets: list[tuple[float, float]], comparison: object | None, suspects: pd.DataFrame
) -> list[tuple[str, Figure]]:
    from bayescale import plots

    has_nd = set(fit.law.inputs) >= {"N", "D"}
    target = targets[-1] if targets else None
    if fit.law.is_formula:  # its runs have only its own columns
        return [
            (
                "The target against each input: every run with its 90% band; residuals below.",
                plots.plot_inputs(fit, suspects=suspects),
            ),
            ("Each parameter's posterior against its prior.", plots.plot_posteriors(fit)),
            ("Joint posterior of the law's parameters.", plots.plot_pairs(fit)),
        ]
    figs = [
        (
            "Predicted loss against compute, extrapolated to the target (nested 50% and 90% bands).",
            plots.plot_loss(fit, target=target),
        )
    ]
    if has_nd:
        figs += [
            (
                "Predicted loss against model size along the same tokens-per-parameter path.",
                plots.plot_loss(fit, target=target, x="N"),
            ),
            (
                "IsoFLOP profiles: expected loss against N at fixed budgets; dots mark the optimum's posterior.",
                plots.plot_isoflop(fit),
            ),
            (
                "Compute-optimal N and D against compute, with Kaplan's and Chinchilla's slopes; tokens per parameter.",
                plots.plot_allocation(fit),
            ),
        ]
    figs += [
        ("Each parameter's posterior against its prior.", plots.plot_posteriors(fit)),
        ("Joint posterior of the law's parameters.", plots.plot_pairs(fit)),
        ("Residuals of the runs against the law.", plots.plot_residuals(fit, suspects)),
    ]
    if "U" in fit.law.inputs:
        figs.append(
            (
                "Loss against epochs at the model size and unique tokens with the most runs: repeated data against "
                "the same tokens fresh (90% bands).",
                plots.plot_epochs(fit),
            )
        )
    if comparison is not None:
        figs.append(("Comparison of laws: elpd with standard errors, and weights.", plots.plot_comparison(comparison)))
    return figs


def _png(fig: Figure, dpi: int = 90) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _fmt(df: pd.DataFrame) -> pd.DataFrame:
    def one(v: object) -> object:
        if isinstance(v, (float, np.floating)):
            return f"{v:.4g}" if np.isfinite(v) else ""
        return v

    return df.map(one)


def _markdown_table(df: pd.DataFrame) -> str:
    df = _fmt(df)
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


#: Shares of the unlimited optimum's tokens available as unique data in the report's data-wall table.
UNIQUE_SHARES = (0.5, 0.125, 1 / 32)
STATS = ("median", "lower", "upper")


def _repeated_data(fit: ScalingFit) -> list:
    """The data-constrained law's section: the allocation at the reference budget when only a share
    of the tokens the unlimited optimum wants exist as unique data."""
    C = fit.reference_budget
    D_free = float(np.median(fit.allocation_draws(C)["D_opt"]))
    rows = []
    for share in UNIQUE_SHARES:
        t = fit.optimal(C, unique_tokens=share * D_free).iloc[0]
        rows.append(
            {
                "unique tokens U": share * D_free,
                "share of unlimited D_opt": share,
                **{f"{q}_{s}": t[f"{q}_{s}"] for q in ("N_opt", "epochs", "loss_lost") for s in STATS},
                "epochs worth >= half the first": t["epochs_worth_median"],
            }
        )
    stars = fit.summary().set_index("parameter")
    R_D, R_N = stars.loc["R_D_star"], stars.loc["R_N_star"]
    return [
        f"Repeated tokens lose value with R_D* = {R_D['median']:.3g} "
        f"(90% interval {R_D['lower']:.3g}-{R_D['upper']:.3g}) "
        f"repeated epochs for a 1/e decay; excess parameters with R_N* = {R_N['median']:.3g} "
        f"({R_N['lower']:.3g}-{R_N['upper']:.3g}) (Muennighoff et al. 2023 fitted 15.4 and 5.3 on C4).",
        f"At {C:.3g} FLOPs, unlimited fresh data would be best used as a model trained on {D_free:.3g} tokens "
        "(median). With only a share of that as unique data: the loss-minimising model size and epochs, the "
        "loss lost against unlimited data (90% intervals), and the epochs each still worth at least half of "
        "the first (<code>bayescale optimal FIT --compute C --unique-tokens U</code>).",
        pd.DataFrame(rows),
    ]


def _sections(
    fit: ScalingFit, targets: list[tuple[float, float]], comparison: object | None, suspects: pd.DataFrame
) -> list[tuple[str, list]]:
    """Report content as (heading, blocks); a block is str (paragraph), DataFrame, or ("verdicts", list)."""
    runs = fit.runs
    attrs = fit.tree.attrs
    data = pd.DataFrame(
        [
            {
                "quantity": x,
                "min": runs.values(x).min(),
                "max": runs.values(x).max(),
                "distinct values": len(np.unique(runs.values(x))),
            }
            for x in (*runs.inputs, "loss")
            if x == "loss" or runs.has(x)
        ]
    )
    data.loc[data["quantity"] == "loss", ["min", "max"]] = [runs.loss.min(), runs.loss.max()]
    sections: list[tuple[str, list]] = [
        (
            "Data",
            [f"{len(runs)} runs from <code>{html.escape(str(attrs.get('source', 'a table')))}</code>.", data],
        ),
        ("Diagnostics", [("verdicts", _verdicts(fit))]),
        ("Runs that look off", _suspects(fit, suspects)),
        (
            "Parameters",
            [
                "Posterior median, mean, standard deviation and 90% interval of each parameter. "
                f"Priors: the <b>{html.escape(fit.prior_set)}</b> set. <code>contraction</code> is the share of the "
                "prior's spread the runs removed: near 1 the runs decided the parameter (<code>decided_by</code> "
                "data), below 0.5 the answer rests on the prior (<code>decided_by</code> prior).",
                fit.summary(),
            ],
        ),
    ]
    if targets:
        pred = fit.predict(N=[t[0] for t in targets], D=[t[1] for t in targets])
        sections.append(
            (
                "Predictions",
                [
                    "Loss of a new run at each target: median and 90% band (observation noise, model discrepancy "
                    "and calibrated band width included); <code>expected_</code> columns are the law plus discrepancy "
                    "without run noise.",
                    pred,
                ],
            )
        )
    if set(fit.law.inputs) >= {"N", "D"}:
        budgets = fit.reference_budget * np.array([0.1, 1.0, 10.0])
        opt = fit.optimal(budgets)
        opt = opt[[c for c in opt.columns if not c.endswith("_mean")]]
        sections.append(
            (
                "Allocation",
                [
                    "Compute-optimal model size, tokens, tokens per parameter and loss at three budgets around the "
                    "reference budget (100x the largest run), with 90% intervals.",
                    opt,
                    "Probability that more than 20 tokens per parameter is optimal at "
                    f"{fit.reference_budget:.3g} FLOPs: {fit.probability('tokens_per_param', above=20):.2f}.",
                ],
            )
        )
    if "U" in fit.law.inputs:
        sections.append(("Repeated data", _repeated_data(fit)))
    calib = [f"Band scale (posterior median): {fit.band_scale:.2f}."]
    z = fit.tree["calibration"].to_dataset()["z"].to_numpy() if "calibration" in fit.tree.children else None
    if z is not None and np.isfinite(z).sum() == 0:
        calib.append("The calibration re-fit had too few runs to hold any out: the bands are the model's own.")
    elif z is not None:
        reach = json.loads(attrs.get("calibration_reach", "{}"))
        where = (
            "The scale applies as far out as those runs reached (in log units beyond the re-fit's largest value: "
            + ", ".join(f"{k} {v:.2f}" for k, v in reach.items())
            + "); beyond, bands are the model's own."
            if reach
            else "The scale applies at every point."
        )
        calib.append(
            f"A re-fit without the top 20% of runs by compute predicted the {z.size} held-out runs; "
            f"{np.mean(np.abs(z) <= 1.645):.0%} fell inside its 90% bands. {where}"
        )
    else:
        calib.append("The fit was not calibrated (--no-calibrate).")
    if z is not None and fit._scale_growth[1] is not None:
        from bayescale.calibration import GROWTH_PRIOR_SD

        unit = "in log loss" if fit.law.link == "log" else f"in {fit.runs.target}"
        _, g, inputs = fit._scale_growth
        growth = ", ".join(f"{x} {v:.2g}" for x, v in zip(inputs, np.median(g, axis=0), strict=True))
        calib.append(
            "Beyond the runs' ranges the band is at least as wide as a misfit whose standard deviation grows "
            f"{unit} per e-fold of extrapolation along each input by {growth} (posterior medians; half-normal "
            f"prior of scale {GROWTH_PRIOR_SD:g}), learned with the scale from how far the held-out runs lay beyond "
            "the re-fit's."
        )
    sections.append(("Calibration", calib))
    if comparison is not None:
        sections.append(
            (
                "Comparison of laws",
                [
                    "PSIS-LOO elpd (higher is better), its difference to the best law with standard error, stacking "
                    "weights, and each law's allocation at the reference budget. Leave-future-out columns need "
                    "re-fits: <code>bayescale compare</code>.",
                    comparison.table.drop(columns=[c for c in comparison.table.columns if "lfo" in c]),
                ],
            )
        )
    priors = pd.DataFrame([{"parameter": k, "prior": str(p)} for k, p in fit.priors.items()])
    versions = json.loads(attrs.get("versions", "{}"))
    methods = [
        f"Law: {html.escape(fit.law.name)}, <code>{html.escape(fit.law.formula)}</code>. "
        "Likelihood: Student-t on log loss (scale sigma, degrees of freedom nu).",
        "Model discrepancy: "
        + ("a Gaussian process on the law's residuals, fitted as a second stage." if fit.discrepancy else "none."),
        f"Sampler: {attrs.get('sampler')} NUTS, {attrs.get('chains')} chains x {attrs.get('tune')} tuning + "
        f"{attrs.get('draws')} draws, target acceptance {attrs.get('target_accept')}, seed {fit.seed}. "
        f"FLOPs per parameter per token k = {fit.k:g}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        priors,
    ]
    sections.append(("Methods", methods))
    return sections


def _pooled_sections(pooled: Any, target: tuple[float, float]) -> list[tuple[str, list]]:
    """A pooled fit's report: its groups, the ranking and the first two groups' contrast at the target,
    each group's exponents, the population, and the checks."""
    N, D = target
    groups = pd.DataFrame(
        [
            {"group": name, "runs": len(f.runs), "min C": f.runs.values("C").min(), "max C": f.runs.values("C").max(),
             "band scale": f.band_scale}
            for name, f in ((n, pooled.group(n)) for n in pooled.names)
        ]
    )  # fmt: skip
    a, b = pooled.names[0], pooled.names[1]
    exps = pooled.group(a).law.exponents
    summary = pooled.summary()
    summary = summary[summary["parameter"].isin(exps)][["group", "parameter", "median", "lower", "upper", "r_hat"]]
    population = pooled.population
    pop = pd.DataFrame(
        [{"parameter": v, "median": float(population[v].median()), "lower": float(population[v].quantile(0.05)),
          "upper": float(population[v].quantile(0.95))} for v in population.data_vars]
    )  # fmt: skip
    diag = pooled.diagnostics
    return [
        (
            "Groups",
            [
                f"One hierarchical fit of {len(pooled.names)} groups by <code>{html.escape(pooled.column)}</code>: "
                "each group's exponents drawn from a population whose location and spread are learned; E and the "
                "amplitudes each group's own; each group's own noise scale and band scale (from its held-out runs).",
                groups,
            ],
        ),
        (
            f"Ranking at N = {N:.3g}, D = {D:.3g}",
            [
                "Expected loss per group and the probability that each is lowest, from joint draws.",
                pooled.rank(N=N, D=D),
            ],
        ),
        (
            f"Contrast: {a} against {b}",
            [
                "Differences are a minus b, formed draw by draw (never two bands compared).",
                pooled.contrast(a, b, N=N, D=D),
            ],
        ),
        ("Exponents per group (90% intervals)", [summary]),
        ("Population (prior-quantile units: mu the location, tau the spread between groups)", [pop]),
        ("Checks", [("verdicts", [(diag.ok, "convergence: " + diag.message())])]),
    ]


def _pooled_figures(pooled: Any, target: tuple[float, float]) -> list[tuple[str, Figure]]:
    from bayescale import plots

    a, b = pooled.names[0], pooled.names[1]
    return [
        (
            f"Each group's expected loss at 20 tokens per parameter with 90% bands; {a} minus {b} from joint draws.",
            plots.plot_groups(pooled, a, b),
        )
    ]


def _task_target(task_fit: Any, targets: Sequence[tuple[float, float]] | None) -> list[tuple[float, float]]:
    """The task report's targets: the given ones, else 100x the largest run's compute at the runs'
    median tokens per parameter."""
    if targets:
        return [(float(N), float(D)) for N, D in targets]
    runs = task_fit.runs(task_fit.names[0])
    ratio = float(np.median(runs["D"] / runs["N"]))
    N = float(np.sqrt(100 * runs["C"].max() / (task_fit.k * ratio)))
    return [(N, ratio * N)]


def _task_sections(task_fit: Any, targets: list[tuple[float, float]]) -> list[tuple[str, list]]:
    """A task fit's report: the chain, each task's prediction at the targets, the link parameters,
    the tasks without signal, and the checks."""
    from bayescale.task_fit import NO_SIGNAL

    N = [t[0] for t in targets]
    D = [t[1] for t in targets]
    pred = task_fit.predict(N=N, D=D)
    keep = [c for c in ("task", "N", "D", "median", "lower", "upper", "loss_median", "chance", "note") if c in pred]
    summary = task_fit.summary()
    link = summary[summary["stage"] == "link"][["task", "parameter", "median", "lower", "upper", "r_hat"]]
    silent = [n for n in task_fit.names if not task_fit.signal(n)]
    through = (
        f"the task loss <code>{html.escape(str(task_fit.tree.attrs.get('loss_column', '')))}</code>"
        if task_fit.through == "loss"
        else "compute (no task loss given)"
    )
    diag = task_fit.diagnostics
    return [
        (
            "The chain",
            [
                f"{len(task_fit.names)} task(s); {html.escape(task_fit.metric)} through {through} by a "
                f"{task_fit.link.name} link: <code>{html.escape(task_fit.link.formula)}</code>. Step 1 (the law of "
                "the task loss, with its discrepancy and calibrated band) and step 2 (the link) are independent "
                "posteriors; each predictive draw pushes a draw of a new run's task loss through a draw of the link "
                "and adds the metric's scatter, so the bands carry both steps' uncertainty.",
            ],
        ),
        (f"Predictions ({len(targets)} target(s), 90% bands of a new run)", [pred[keep]]),
        (
            "Tasks without signal above chance",
            [
                f"{len(silent)} of {len(task_fit.names)}: {html.escape(', '.join(silent)) or 'none'}. "
                f"For these, {NO_SIGNAL}: the band spans what the link's prior allows, from chance upwards."
            ],
        ),
        ("Link parameters (90% intervals)", [link]),
        ("Checks", [("verdicts", [(diag.ok, "convergence: " + diag.message())])]),
    ]


def _task_figures(task_fit: Any, targets: list[tuple[float, float]], most: int = 6) -> list[tuple[str, Figure]]:
    from bayescale import plots

    given = {"N": [t[0] for t in targets], "D": [t[1] for t in targets]}
    return [
        (f"{name}: a new run's {task_fit.metric} vs compute with its 90% band, the runs, chance and the targets.",
         plots.plot_task(task_fit, name, targets=given))
        for name in task_fit.names[:most]
    ]  # fmt: skip


def _html(title: str, sections: list, figures: list[tuple[str, bytes]]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Written by bayescale on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.</p>",
    ]
    for heading, blocks in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for block in blocks:
            if isinstance(block, pd.DataFrame):
                parts.append(_fmt(block).to_html(index=False, border=0, escape=True))
            elif isinstance(block, tuple) and block[0] == "verdicts":
                parts.append("<ul>")
                for ok, text in block[1]:
                    mark = '<span class="ok">OK</span>' if ok else '<span class="bad">CHECK</span>'
                    parts.append(f"<li>{mark} {html.escape(text)}</li>")
                parts.append("</ul>")
            else:
                parts.append(f"<p>{block}</p>")
    parts.append("<h2>Figures</h2>")
    for i, (caption, png) in enumerate(figures, 1):
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f'<figure><img alt="Figure {i}" src="data:image/png;base64,{data}">'
            f"<figcaption>Figure {i}. {html.escape(caption)}</figcaption></figure>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def _markdown(title: str, sections: list, figures: list[tuple[str, str]]) -> str:
    import re

    out = [f"# {title}", ""]
    for heading, blocks in sections:
        out += [f"## {heading}", ""]
        for block in blocks:
            if isinstance(block, pd.DataFrame):
                out += [_markdown_table(block), ""]
            elif isinstance(block, tuple) and block[0] == "verdicts":
                out += [f"- {'OK' if ok else 'CHECK'}: {text}" for ok, text in block[1]] + [""]
            else:
                out += [re.sub(r"</?code>", "`", block), ""]
    out += ["## Figures", ""]
    for i, (caption, rel) in enumerate(figures, 1):
        out += [f"![Figure {i}]({rel})", "", f"Figure {i}. {caption}", ""]
    return "\n".join(out)


def _write_atomic(path: Path, content: bytes) -> None:
    from bayescale.storage import replace_atomic

    replace_atomic(path, lambda tmp: Path(tmp).write_bytes(content))


def write_report(
    fit: ScalingFit,
    path: str | Path,
    *,
    compare: Sequence[ScalingFit] = (),
    targets: Sequence[tuple[float, float]] | None = None,
    fmt: str = "html",
    title: str | None = None,
) -> Path:
    """Write a report of ``fit`` to ``path``.

    Parameters
    ----------
    fit : ScalingFit
    path : str or Path
        Output file (``.html``, or ``.md`` with a folder ``<stem>_files/`` of PNGs beside it).
        Written through a temporary file and a rename: a failure leaves an older report intact.
    compare : sequence of ScalingFit, optional
        Fits of other laws to the same runs: adds a PSIS-LOO comparison section and figure.
    targets : sequence of (N, D), optional
        Runs to predict (default: 100x the largest run's compute at 20 tokens per parameter).
    fmt : "html" or "md", default "html"
    title : str, optional

    Returns
    -------
    Path
        The report's path.
    """
    import matplotlib

    from bayescale.run_checks import suspect_runs

    matplotlib.use("Agg", force=False)
    if fmt not in FORMATS:
        raise ReportError(f"unknown report format {fmt!r}; choose html or md")
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ReportError(f"cannot write '{path}': folder '{folder}' does not exist")
    if hasattr(fit, "link"):  # a TaskFit (bayescale.task_fit): its own sections
        if compare:
            raise ReportError("--compare takes single fits of the loss; a task fit has its own report")
        title = title or f"Task fit: {fit.metric} of {len(fit.names)} task(s) through {fit.through}"
        chosen = _task_target(fit, targets)
        sections = _task_sections(fit, chosen)
        figures = [(caption, _png(fig)) for caption, fig in _task_figures(fit, chosen)]
        return _write(path, fmt, title, sections, figures)
    if getattr(fit, "separate", False):  # a SeparateFit (bayescale.separate): each group's own report
        if compare:
            raise ReportError("--compare takes single fits; a separate fit's groups are reported one after another")
        title = title or f"Scaling-law fits of {len(fit.names)} groups by {fit.column}, each on its own"
        sections, figures = [], []
        for name in fit.names:
            group = fit.group(name)
            chosen = _targets(group, targets)
            off = suspect_runs(group, level=0.9)
            sections += [(f"{fit.column} = {name}: {head}", body) for head, body in _sections(group, chosen, None, off)]
            figures += [
                (f"{fit.column} = {name}: {caption}", _png(f)) for caption, f in _figures(group, chosen, None, off)
            ]
        return _write(path, fmt, title, sections, figures)
    if hasattr(fit, "names"):  # a PooledFit (bayescale.pooled): its own sections
        if compare:
            raise ReportError("--compare takes single fits; a pooled fit's groups are compared in its report")
        title = title or f"Pooled scaling-law fit: {len(fit.names)} groups by {fit.column}"
        target = _targets(fit.group(fit.names[0]), targets)[0]
        sections = _pooled_sections(fit, target)
        figures = [(caption, _png(fig)) for caption, fig in _pooled_figures(fit, target)]
        return _write(path, fmt, title, sections, figures)
    comparison = None
    if compare:
        from bayescale.comparison import compare as compare_fits

        fits = {fit.law.name: fit}
        for other in compare:
            if other.law.name in fits:
                raise ReportError(f"two fits of law {other.law.name}: compare fits of different laws")
            fits[other.law.name] = other
        comparison = compare_fits(fits, holdout_top=None)
    targets = _targets(fit, targets)
    title = title or f"Scaling-law fit: {fit.law.name} on {len(fit.runs)} runs"
    off = suspect_runs(fit, level=0.9)
    sections = _sections(fit, targets, comparison, off)
    figures = [(caption, _png(fig)) for caption, fig in _figures(fit, targets, comparison, off)]
    return _write(path, fmt, title, sections, figures)


def _write(path: Path, fmt: str, title: str, sections: list, figures: list[tuple[str, bytes]]) -> Path:
    """Write the report: one HTML file, or Markdown with a folder of PNGs beside it."""
    if fmt == "html":
        _write_atomic(path, _html(title, sections, figures).encode("utf-8"))
        return path
    folder = path.with_name(f"{path.stem}_files")
    folder.mkdir(exist_ok=True)
    rel = []
    for i, (caption, png) in enumerate(figures, 1):
        _write_atomic(folder / f"figure_{i}.png", png)
        rel.append((caption, f"{folder.name}/figure_{i}.png"))
    _write_atomic(path, _markdown(title, sections, rel).encode("utf-8"))
    return path
