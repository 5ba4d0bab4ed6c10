"""The ``bayescale`` command line: a thin layer over the Python API.

Machine-readable results go to stdout; progress and logs go to stderr. A user error
prints one line ``bayescale: error: ...`` and exits with code 2 (3 for failed diagnostics
under ``--strict``). PyMC is imported only by the commands that sample (``fit``, ``backtest``, ``compare``, ``demo``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from bayescale.errors import BayescaleError
from bayescale.output import FORMATS, render

log = logging.getLogger("bayescale")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other user error
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"interval must be a number between 0 and 1, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"interval must be between 0 and 1 (e.g. 0.9), got {text}")
    return value


def _number(text: str) -> float:
    from bayescale.data import parse_number

    try:
        return parse_number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r} (e.g. 7e10, 70B, 1.4T)") from None


def _target(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"a target is N,D (e.g. 7B,2T), got {text!r}")
    N, D = (_number(p.strip()) for p in parts)
    if N <= 0 or D <= 0:
        raise argparse.ArgumentTypeError(f"a target needs positive N and D, got {text!r}")
    return N, D


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a share from 0 to below 1 (e.g. 0.2), got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_columns(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("columns of the runs file (common names are recognised without these)")
    g.add_argument("--n-col", help="column of parameters N")
    g.add_argument("--d-col", help="column of training tokens D")
    g.add_argument("--c-col", help="column of training FLOPs C")
    g.add_argument("--loss-col", help="column of final loss (nats/token)")
    g.add_argument("--u-col", help="column of unique tokens U (D / U epochs; the data-constrained law)")
    g.add_argument("--k", type=float, default=6.0, help="FLOPs per parameter per token in C = k N D (default 6)")


def _add_sampling(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampling")
    g.add_argument(
        "--priors",
        choices=("auto", "literature", "weak"),
        default="auto",
        help="prior set: literature (learned from published ladders; lets 3+ runs, one budget or one "
        "tokens-per-parameter line fit), weak (data-scaled defaults), auto (literature where the law has one; default)",
    )
    g.add_argument(
        "--literature-exclude",
        metavar="SOURCE",
        default=None,
        help="the literature prior re-learned without SOURCE (a source id of literature.json: gadre2024, "
        "hoffmann2022, muennighoff2023, porian2024), for scoring a ladder of that source out of sample",
    )
    g.add_argument("--draws", type=_positive_int, default=1000, help="posterior draws per chain (default 1000)")
    g.add_argument("--tune", type=_positive_int, default=1000, help="tuning steps per chain (default 1000)")
    g.add_argument("--chains", type=_positive_int, default=4, help="chains (default 4)")
    g.add_argument("--seed", type=int, default=None, help="random seed (default: random, stored in the fit)")
    g.add_argument("--target-accept", type=float, default=0.95, help="NUTS target acceptance (default 0.95)")
    g.add_argument("--sampler", choices=("nutpie", "pymc"), default="nutpie", help="NUTS implementation")
    g.add_argument("--strict", action="store_true", help="fail (exit 3) when diagnostics fail instead of warning")
    g.add_argument(
        "--no-discrepancy",
        action="store_true",
        help="skip the model-discrepancy stage (faster; bands from the law alone, over-confident when extrapolating)",
    )
    g.add_argument(
        "--no-calibrate",
        action="store_true",
        help="skip the leave-future-out calibration of the band width (one extra, shorter fit)",
    )
    g.add_argument(
        "--no-retry",
        action="store_true",
        help="do not re-sample a stage whose diagnostics fail at target_accept 0.99 (faster short trial fits)",
    )


def _add_formula(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("formula laws (--law FORMULA, a named formula law, or --law-file)")
    g.add_argument("--law-file", metavar="FILE", help="a law kept in TOML: formula, target, priors, bounds, cost")
    g.add_argument("--target", metavar="COLUMN", help="the column a formula law models (default loss)")
    g.add_argument(
        "--cost",
        metavar="EXPR",
        help='each run\'s cost, a formula over columns (e.g. "6*N*D"): calibration holds out the costliest '
        "runs (default: C, or k N D with N and D columns; else the product of the law's positive inputs)",
    )
    g.add_argument(
        "--link",
        choices=("log", "identity"),
        help="Student-t on the log of the target or on the target itself (default: log if every value is positive)",
    )
    g.add_argument(
        "--params",
        metavar="A,B,...",
        help="declare the formula's parameters: any other name that is not a column is then an error",
    )
    g.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=COLUMN",
        help="for a named formula law: the column holding its input NAME (e.g. --input P=parallel_size)",
    )


def _uses_formula(args: argparse.Namespace) -> bool:
    from bayescale.sampling import is_formula_law

    if args.law_file is not None:
        return True
    return args.law is not None and is_formula_law(args.law)


def _formula_law_and_runs(args: argparse.Namespace, priors: dict):
    """The formula law and its runs from fit's options; the law is listed back on stderr."""
    from bayescale.laws.formula.lawfile import by_group, from_options

    inputs = {}
    for spec in args.input:
        name, sep, column = spec.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise BayescaleError(f"--input needs NAME=COLUMN, e.g. --input P=parallel_size; got {spec!r}")
        inputs[name.strip()] = column.strip()
    params = [p.strip() for p in args.params.split(",") if p.strip()] if args.params else None
    options = dict(law=args.law, law_file=args.law_file, target=args.target, cost=args.cost, link=args.link,
                   params=params, inputs=inputs, priors=priors, k=args.k)  # fmt: skip
    if args.group is not None:  # a law and runs per group: {name: (law, runs)}
        groups = by_group(args.runs, args.group, **options)
        law = next(iter(groups.values()))[0]
        for line in law.describe().splitlines():
            log.info("%s", line)
        log.info("  groups by %s, each fitted separately: %s", args.group, ", ".join(groups))
        return law, groups
    law, runs = from_options(args.runs, **options)
    for line in law.describe().splitlines():
        log.info("%s", line)
    return law, runs


def _add_group_value(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--group-value",
        action="append",
        metavar="NAME",
        help="for a pooled fit: answer for this group (repeatable; default every group, with a group column)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bayescale`` command."""
    from bayescale import __version__

    parser = _Parser(prog="bayescale", description="Bayesian inference on neural scaling laws.")
    parser.add_argument("--version", action="version", version=f"bayescale {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("fit", help="fit a law to a CSV/Parquet of runs and save the posterior")
    p.add_argument("runs", help="CSV or Parquet file, one row per run")
    p.add_argument("--out", required=True, help="where to save the fit (netCDF, e.g. fit.nc)")
    p.add_argument(
        "--law",
        default=None,
        help="chinchilla, kaplan, data-constrained (needs U), power (= power:C), power:N, power:D "
        "(default: chinchilla; data-constrained when some run repeats data, D > U); a formula over any "
        'columns, e.g. "E + A/N^alpha + B/D^beta" (names that are columns are inputs, others parameters); '
        "or a named formula law: farseer, parscale, moe, vocab, steplaw (docs/formula-laws.md)",
    )
    p.add_argument(
        "--prior",
        action="append",
        default=[],
        metavar="NAME=DIST",
        help='override a prior, e.g. --prior "alpha=Normal(0.35, 0.1)"; a number fixes it ("E=0")',
    )
    p.add_argument(
        "--group",
        metavar="COLUMN",
        help="pool the ladders named by COLUMN (data mixes, eval sets): one hierarchical fit of all groups; "
        "with a formula law, each group is fitted on its own (predict --points then uses each row's group)",
    )
    _add_formula(p)
    _add_columns(p)
    _add_sampling(p)

    p = sub.add_parser(
        "fit-task", help="fit a downstream metric through a task loss (or compute) and save the two-step posterior"
    )
    p.add_argument("runs", help="CSV or Parquet file, one row per run (and task)")
    p.add_argument("--out", required=True, help="where to save the fit (netCDF, e.g. task.nc)")
    p.add_argument("--metric", default="accuracy", help="metric column, in [0, 1], higher is better (default accuracy)")
    p.add_argument(
        "--loss",
        metavar="COLUMN",
        help="task-loss column, e.g. task_bpb (default: a loss column if any, else the chain goes through compute)",
    )
    p.add_argument("--link", choices=("sigmoid", "exp"), default="sigmoid", help="loss-to-metric link")
    p.add_argument(
        "--chance", metavar="P|COLUMN", help="chance level (the link floor): a number or a column per task; default 0"
    )
    p.add_argument("--task-col", metavar="COLUMN", help="column naming the tasks of a long table: one chain per task")
    p.add_argument("--law", default=None, help="step 1's law of the task loss (default as bayescale fit)")
    p.add_argument("--prior", action="append", default=[], metavar="NAME=DIST", help="override a step-1 prior")
    p.add_argument("--k", type=float, default=6.0, help="FLOPs per parameter per token in C = k N D (default 6)")
    _add_sampling(p)

    p = sub.add_parser("summary", help="posterior summary of the law's parameters")
    p.add_argument("fit", help="a fit file written by bayescale fit")
    _add_group_value(p)
    p.add_argument("--interval", type=_interval, default=0.9, help="interval probability (default 0.9)")
    p.add_argument(
        "--runs",
        action="store_true",
        help="instead: the runs that look off (outside their leave-one-out band at --interval, down-weighted by "
        "the robust pass, or influential), most off first, with the reason",
    )
    p.add_argument("--all-runs", action="store_true", help="with --runs: every run, the reason empty where none")
    p.add_argument("--format", choices=FORMATS, default="table")

    p = sub.add_parser("predict", help="predicted loss of new runs with bands")
    p.add_argument("fit", help="a fit file written by bayescale fit")
    p.add_argument(
        "--points", help="CSV with N and D (or C) columns, and U for a data-constrained fit; other columns are ignored"
    )
    p.add_argument("--N", type=_number, help="parameters, e.g. 7e10 or 70B")
    p.add_argument("--D", type=_number, help="training tokens, e.g. 1.4T")
    p.add_argument("--C", type=_number, help="training FLOPs")
    p.add_argument("--U", type=_number, help="unique tokens (data-constrained fits; D / U epochs; default U = D)")
    p.add_argument("--interval", type=_interval, default=0.9, help="interval probability (default 0.9)")
    p.add_argument("--format", choices=FORMATS, default="table")
    _add_group_value(p)

    p = sub.add_parser("contrast", help="two groups of a pooled fit against each other, from joint draws")
    p.add_argument("fit", help="a pooled fit file (bayescale fit --group COLUMN)")
    p.add_argument("--a", required=True, help="first group")
    p.add_argument("--b", required=True, help="second group (differences are a minus b)")
    p.add_argument("--points", help="CSV with N and D (or C) columns: loss differences there")
    p.add_argument("--N", type=_number, help="parameters, e.g. 7e10 or 70B")
    p.add_argument("--D", type=_number, help="training tokens, e.g. 1.4T")
    p.add_argument("--C", type=_number, help="training FLOPs")
    p.add_argument("--compute", type=_number, help="budget of the allocation rows (default 100x the largest run)")
    p.add_argument("--interval", type=_interval, default=0.9, help="interval probability (default 0.9)")
    p.add_argument("--format", choices=FORMATS, default="table")

    p = sub.add_parser("optimal", help="compute-optimal N, D and tokens per parameter for budgets")
    p.add_argument("fit", help="a fit file written by bayescale fit (a law of N and D)")
    p.add_argument("--compute", type=_number, nargs="+", help="budgets in FLOPs (default 100x the largest run)")
    p.add_argument("--inference-tokens", type=_number, help="lifetime inference tokens: adds inference-aware columns")
    p.add_argument("--target-loss", type=_number, help="loss to reach (inference-aware, or with --N)")
    p.add_argument("--N", type=_number, nargs="+", help="fixed model sizes: tokens needed to reach --target-loss")
    p.add_argument(
        "--unique-tokens",
        type=_number,
        help="unique tokens available (a data-constrained fit): the optimum with D / U epochs and the loss lost",
    )
    p.add_argument(
        "--worth",
        type=_interval,
        default=0.5,
        help="with --unique-tokens: epochs are worth running while each adds at least this share of the first "
        "(default 0.5)",
    )
    p.add_argument("--interval", type=_interval, default=0.9, help="interval probability (default 0.9)")
    p.add_argument("--format", choices=FORMATS, default="table")
    _add_group_value(p)

    p = sub.add_parser("backtest", help="fit on smaller runs, predict the held-out larger ones, score the bands")
    p.add_argument("runs", help="CSV or Parquet file, one row per run")
    p.add_argument(
        "--holdout",
        default="top-compute:0.2",
        help="top-compute:F, largest-N:K, a condition such as C>=1e21, or rolling (default top-compute:0.2)",
    )
    p.add_argument("--law", default=None, help="as for fit (a built-in law, a formula or a named formula law)")
    p.add_argument("--prior", action="append", default=[], metavar="NAME=DIST", help="as for fit")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(group=None)
    _add_formula(p)
    _add_columns(p)
    _add_sampling(p)

    p = sub.add_parser("compare", help="compare laws by PSIS-LOO and leave-future-out, with stacking weights")
    p.add_argument("runs", nargs="+", help="a CSV/Parquet of runs (every --laws law is fitted), or fit files (.nc)")
    p.add_argument(
        "--laws",
        default="kaplan,chinchilla",
        help="comma-separated laws, e.g. kaplan,chinchilla,power (default kaplan,chinchilla)",
    )
    p.add_argument(
        "--holdout-top",
        type=_share,
        default=0.2,
        help="share of runs (top by compute) held out for the leave-future-out columns (default 0.2; 0 skips them)",
    )
    p.add_argument("--compute", type=_number, help="budget of the allocation columns (default 100x the largest run)")
    p.add_argument("--interval", type=_interval, default=0.9, help="interval probability (default 0.9)")
    p.add_argument("--format", choices=FORMATS, default="table")
    _add_columns(p)
    _add_sampling(p)

    p = sub.add_parser("report", help="write a self-contained HTML (or Markdown) report of a fit")
    p.add_argument("fit", help="a fit file written by bayescale fit")
    p.add_argument("-o", "--out", required=True, help="report file: .html (one self-contained file) or .md")
    p.add_argument("--compare", nargs="+", default=[], metavar="OTHER.nc", help="fits of other laws to the same runs")
    p.add_argument(
        "--target",
        nargs="+",
        type=_target,
        default=None,
        metavar="N,D",
        help="runs to predict, e.g. 7B,2T 70B,1.4T (default: 100x the largest run at 20 tokens per parameter)",
    )
    p.add_argument("--format", choices=("html", "md"), default=None, help="default: from the file name (.md or .html)")
    p.add_argument("--title", help="report title")

    p = sub.add_parser("design", help="which runs next: candidates ranked by how much they narrow a target's band")
    p.add_argument("fit", help="a fit file written by bayescale fit")
    p.add_argument("--target", required=True, type=_target, metavar="N,D", help="the run the decision is about")
    p.add_argument(
        "--goal",
        choices=("loss", "optimal"),
        default="loss",
        help="loss: the target's expected loss (default); optimal: the compute-optimal N at its budget",
    )
    p.add_argument("--candidates", help="CSV of candidate runs (N and D, or C with one of them)")
    p.add_argument("--max-compute", type=_number, help="without --candidates: a grid of candidates below this FLOPs")
    p.add_argument("--budget", type=_number, help="total FLOPs of the batch (default: --picks runs, no cap)")
    p.add_argument("--picks", type=_positive_int, help="most runs in the batch (default 5 without --budget)")
    p.add_argument(
        "--method",
        choices=("linear", "reweight"),
        default="linear",
        help="linear-Gaussian update (default) or simulated outcomes re-weighting the draws",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the simulated outcomes (default: the fit's)")
    p.add_argument("--plot", metavar="PNG", help="also draw the candidates, the batch and the runs to this file")
    p.add_argument("--format", choices=FORMATS, default="table")

    p = sub.add_parser("fit-many", help="fit many run files (or a JOBS.csv) at once, one process per core")
    p.add_argument(
        "inputs", nargs="+", help="run files or glob patterns, or one JOBS.csv with columns runs[,law,seed,out]"
    )
    p.add_argument("--out-dir", required=True, help="folder for the fits (<run file stem>.nc, or the out column)")
    p.add_argument("--law", default=None, help="law for every job without its own (as for fit)")
    p.add_argument("--workers", type=_positive_int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--format", choices=FORMATS, default="table")
    _add_columns(p)
    _add_sampling(p)

    p = sub.add_parser("cache", help="the compiled-model cache shared by bayescale processes: info or clear")
    p.add_argument("action", choices=("info", "clear"), help="info: where, how big, entries; clear: delete them")
    p.add_argument("--format", choices=FORMATS, default="table")

    p = sub.add_parser("demo", help="fit the embedded demo ladder and predict a 70B model on 1.4T tokens")
    p.add_argument("--out-dir", default="bayescale-demo", help="folder for the demo's files (default ./bayescale-demo)")
    p.add_argument("--draws", type=_positive_int, default=1000)
    p.add_argument("--tune", type=_positive_int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    return parser


def _read_points_table(path: str, what: str = "points"):
    from bayescale.data import read_table

    df = read_table(Path(path), what)
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _load_points(path: str, what: str = "points", df=None):
    """N, D, C columns of the points file ``path`` (``df``: its table, when already read)."""
    from bayescale.data import _to_numbers
    from bayescale.errors import PredictionError

    df = _read_points_table(path, what) if df is None else df
    if len(df) == 0:
        raise PredictionError(f"'{path}' has no points (header only)")
    cols = {}
    for name in ("N", "D", "C"):
        if name in df.columns:
            cols[name] = _to_numbers(df[name], name, f"'{path}'", 1)
    if not cols:
        found = ", ".join(repr(c) for c in df.columns)
        raise PredictionError(f"'{path}' needs N and D (or C) columns; columns found: {found}")
    return cols


def _columns(args: argparse.Namespace) -> dict[str, object]:
    """Keyword arguments of :func:`bayescale.load_runs` from the column option group."""
    return {
        "n_col": args.n_col,
        "d_col": args.d_col,
        "c_col": args.c_col,
        "loss_col": args.loss_col,
        "u_col": args.u_col,
        "k": args.k,
    }


def _unique_tokens(args: argparse.Namespace, result: object, df=None) -> dict[str, object]:
    """``{"U": ...}`` for a fit whose law uses unique tokens, from --U or a U column of the
    --points table ``df``.

    A law that ignores U gets nothing (and a warning when U was given); a law of U without one
    predicts fresh data (U = D), which is said on stderr.
    """
    from bayescale.data import ALIASES, _to_numbers

    U = getattr(args, "U", None)
    if df is not None:
        column = next((c for c in ALIASES["U"] if c in df.columns), None)
        if column is not None:
            U = _to_numbers(df[column], column, f"'{args.points}'", 1)
    law = getattr(result, "law", None)
    uses_U = law is not None and "U" in law.inputs
    if U is not None and not uses_U:
        log.warning("unique tokens U ignored: the fit's law does not use them (fit --law data-constrained)")
        return {}
    if U is None:
        if uses_U:
            log.info("no unique tokens U given: predicting fresh data (U = D, one epoch); give --U or a U column")
        return {}
    return {"U": U}


def _sampling_options(args: argparse.Namespace) -> dict[str, object]:
    """Keyword arguments of :func:`bayescale.fit` from the sampling option group."""
    from bayescale.literature import with_exclusion

    return {
        "prior_set": with_exclusion(args.priors, args.literature_exclude),
        "draws": args.draws,
        "tune": args.tune,
        "chains": args.chains,
        "seed": args.seed,
        "sampler": args.sampler,
        "target_accept": args.target_accept,
        "discrepancy": not args.no_discrepancy,
        "calibrate": not args.no_calibrate,
        "retry": not args.no_retry,
    }


def _cmd_fit(args: argparse.Namespace) -> int:
    from bayescale.data import load_runs
    from bayescale.pipeline import fit
    from bayescale.priors import parse_assignment

    out = Path(args.out)
    if not out.parent.exists() and str(out.parent):
        raise BayescaleError(f"cannot write --out {out}: folder '{out.parent}' does not exist")
    priors = dict(parse_assignment(spec) for spec in args.prior)
    columns = _columns(args)
    law = args.law
    if _uses_formula(args):
        law, runs = _formula_law_and_runs(args, priors)
        priors = {}  # the law holds them (a prior given to an amplitude keeps it uncentred)
        if args.group is not None:
            return _fit_separate(args, out, runs)
    elif any(v is not None for v in (args.target, args.cost, args.link, args.params)) or args.input:
        raise BayescaleError("--target, --cost, --link, --params and --input are for formula laws (--law FORMULA)")
    elif args.group is not None:
        return _fit_pooled(args, out, priors, columns)
    else:
        runs = load_runs(args.runs, **columns)
    result = fit(
        runs,
        law=law,
        priors=priors,
        strict=args.strict,
        progress=not args.quiet and sys.stderr.isatty(),
        **_sampling_options(args),
    )
    result.save(out)
    _log_saved(out, f"{result.law.name}, {len(runs)} runs", result.diagnostics)
    return 0


def _log_saved(out: Path, what: str, d) -> None:
    """The one line a saved fit ends with: where, what, and its convergence."""
    khat = f"; importance weights' Pareto khat {d.max_khat:.2f}" if d.max_khat == d.max_khat else ""  # not NaN
    log.info(
        "saved %s (%s; max R-hat %.3f, min ESS %.0f, %d divergences%s)",
        out,
        what,
        d.max_rhat,
        min(d.min_ess_bulk, d.min_ess_tail),
        d.divergences,
        khat,
    )


def _fit_separate(args: argparse.Namespace, out: Path, groups: dict) -> int:
    from bayescale.separate_pipeline import fit_separate

    result = fit_separate(
        groups,
        args.group,
        strict=args.strict,
        progress=not args.quiet and sys.stderr.isatty(),
        **_sampling_options(args),
    )
    result.save(out)
    what = f"{result.group(result.names[0]).law.name} by {result.column}: {len(result.names)} groups fitted separately"
    _log_saved(out, what, result.diagnostics)
    return 0


def _fit_pooled(args: argparse.Namespace, out: Path, priors: dict, columns: dict) -> int:
    from bayescale.pipeline import check_diagnostics
    from bayescale.pooled_pipeline import fit_pooled

    result = fit_pooled(
        args.runs,
        args.group,
        args.law,
        priors,
        progress=not args.quiet and sys.stderr.isatty(),
        **_sampling_options(args),
        **columns,
    )
    check_diagnostics(result.diagnostics, args.strict)
    result.save(out)
    what = f"{result.group(result.names[0]).law.name} pooled by {result.column}: {len(result.names)} groups"
    _log_saved(out, what, result.diagnostics)
    return 0


def _cmd_fit_task(args: argparse.Namespace) -> int:
    from bayescale.priors import parse_assignment
    from bayescale.task_pipeline import fit_task

    out = Path(args.out)
    if not out.parent.exists() and str(out.parent):
        raise BayescaleError(f"cannot write --out {out}: folder '{out.parent}' does not exist")
    options = _sampling_options(args)
    result = fit_task(
        args.runs,
        metric=args.metric,
        loss=args.loss,
        link=args.link,
        chance=args.chance,
        task=args.task_col,
        law=args.law,
        priors=dict(parse_assignment(spec) for spec in args.prior),
        progress=not args.quiet and sys.stderr.isatty(),
        k=args.k,
        strict=args.strict,
        **options,
    )
    result.save(out)
    tasks = f"{len(result.names)} task{'' if len(result.names) == 1 else 's'}"
    _log_saved(out, f"{result.metric} through {result.through}, {tasks}", result.diagnostics)
    return 0


def _answer(result, args: argparse.Namespace, ask):
    """``ask(fit)`` of a single fit, or of the asked groups of a pooled fit (with a group column)."""
    from bayescale.errors import GroupError
    from bayescale.pooled import PooledFit
    from bayescale.task_fit import TaskFit

    if isinstance(result, TaskFit):  # every task, one row block per task
        if args.group_value:
            raise GroupError(f"--group-value: '{args.fit}' is a task fit; its tasks: {', '.join(result.names)}")
        return ask(result)
    if isinstance(result, PooledFit):
        return result.per_group(ask, args.group_value)
    if args.group_value:
        raise GroupError(f"--group-value {args.group_value[0]!r}: '{args.fit}' is not a pooled fit (it has no groups)")
    return ask(result)


def _cmd_summary(args: argparse.Namespace) -> int:
    from bayescale.loading import load

    result = load(args.fit)
    if args.all_runs and not args.runs:
        raise BayescaleError("--all-runs goes with --runs (the runs that look off)")
    if args.runs:
        from bayescale.run_checks import suspect_runs
        from bayescale.task_fit import TaskFit

        if isinstance(result, TaskFit):
            raise BayescaleError(f"'{args.fit}' is a task fit; --runs checks the runs of a fit of the loss")
        table = _answer(result, args, lambda f: suspect_runs(f, level=args.interval, every=args.all_runs))
        if len(table) == 0:
            log.info("no run looks off: every run is inside its leave-one-out %.0f%% band", 100 * args.interval)
    else:
        table = _answer(result, args, lambda f: f.summary(interval=args.interval))
    sys.stdout.write(render(table, args.format))
    return 0


def _cmd_contrast(args: argparse.Namespace) -> int:
    from bayescale.errors import GroupError
    from bayescale.loading import load
    from bayescale.pooled import PooledFit

    points = _points(args)
    result = load(args.fit)
    if not isinstance(result, PooledFit):
        raise GroupError(f"'{args.fit}' is not a pooled fit; fit with: bayescale fit RUNS --group COLUMN --out FIT")
    table = result.contrast(args.a, args.b, **points, compute=args.compute, interval=args.interval)
    sys.stdout.write(render(table, args.format))
    return 0


def _points(args: argparse.Namespace, df=None) -> dict:
    """The points of --points CSV (``df``: its table, when already read), or of --N/--D/--C (not both)."""
    from bayescale.errors import PredictionError

    if args.points and any(v is not None for v in (args.N, args.D, args.C)):
        raise PredictionError("give either --points or --N/--D/--C, not both")
    return _load_points(args.points, df=df) if args.points else {"N": args.N, "D": args.D, "C": args.C}


def _cmd_predict(args: argparse.Namespace) -> int:
    from bayescale.loading import load_for_prediction
    from bayescale.task_fit import TaskFit

    targets = _read_points_table(args.points) if args.points else None  # read once
    result = load_for_prediction(args.fit)
    if _is_formula_fit(result):
        return _predict_formula(args, result, targets)
    points = _points(args, targets)
    if args.points and args.U is not None:
        from bayescale.errors import PredictionError

        raise PredictionError("give either --points (with a U column) or --U, not both")
    points.update(_unique_tokens(args, result, targets))
    column = str(result.tree.attrs.get("task_column", "")) if isinstance(result, TaskFit) else ""
    if column and targets is not None and column in targets.columns:
        # a long table of targets: each row is predicted for its own task
        points["point_tasks"] = targets[column].astype(str).str.strip().to_numpy()
    table = _answer(result, args, lambda f: f.predict(**points, interval=args.interval))
    sys.stdout.write(render(table, args.format))
    return 0


def _is_formula_fit(result: object) -> bool:
    from bayescale.separate import SeparateFit

    if isinstance(result, SeparateFit):
        return result.group(result.names[0]).law.is_formula
    law = getattr(result, "law", None)  # a pooled or task fit has no single law
    return law is not None and law.is_formula


def _predict_formula(args: argparse.Namespace, result, targets) -> int:
    """predict of a formula law's fit: the --points table's columns named as the law's inputs."""
    from bayescale.errors import PredictionError
    from bayescale.laws.formula.runs import points as formula_points
    from bayescale.separate import SeparateFit

    separate = isinstance(result, SeparateFit)
    law = result.group(result.names[0]).law if separate else result.law
    if targets is None or any(v is not None for v in (args.N, args.D, args.C, args.U)):
        raise PredictionError(
            f"a formula law's fit predicts at --points FILE with columns {', '.join(law.inputs)} (not --N/--D/--C)"
        )
    if len(targets) == 0:
        raise PredictionError(f"'{args.points}' has no points (header only)")
    try:
        points = formula_points(law, targets, where=f"'{args.points}'")
    except BayescaleError as ex:
        raise PredictionError(str(ex)) from None
    if not separate:
        table = result.predict(points=points, interval=args.interval)
    elif result.column in targets.columns and not args.group_value:  # each point by its own group's fit
        from bayescale.laws.formula.lawfile import group_labels

        labels = group_labels(targets[result.column])
        empty = (labels == "").to_numpy()
        if empty.any():
            row = int(empty.argmax()) + 1
            raise PredictionError(f"'{args.points}': group column {result.column!r}, row {row} is empty")
        table = result.predict_rows(points, labels.to_numpy(), interval=args.interval)
    else:  # every asked group at every point
        table = result.per_group(lambda f: f.predict(points=points, interval=args.interval), args.group_value)
    sys.stdout.write(render(table, args.format))
    return 0


def _cmd_optimal(args: argparse.Namespace) -> int:
    from bayescale.allocation import AllocationError
    from bayescale.loading import load
    from bayescale.pooled import PooledFit

    result = load(args.fit)
    if not hasattr(result, "optimal"):  # a task fit: allocation is a question about the loss
        raise AllocationError(
            f"'{args.fit}' is a task fit; the compute-optimal allocation is a question about the loss: "
            "run bayescale optimal on a fit of the loss (bayescale fit RUNS --out FIT)"
        )
    compute = args.compute
    if compute is None and isinstance(result, PooledFit):  # one default budget for every group
        compute = max(result.group(n).reference_budget for n in result.names)

    def ask(fit):
        if args.N is not None:
            if args.target_loss is None:
                raise AllocationError("--N needs --target-loss: the tokens a model of that size needs to reach it")
            return fit.tokens_to_reach(N=args.N, loss=args.target_loss, interval=args.interval)
        if args.unique_tokens is not None:
            return fit.optimal(compute, interval=args.interval, unique_tokens=args.unique_tokens, worth=args.worth)
        return fit.optimal(
            compute, interval=args.interval, inference_tokens=args.inference_tokens, target_loss=args.target_loss
        )

    table = _answer(result, args, ask)
    table = table.drop(columns=[c for c in table.columns if c.endswith("_mean")])
    sys.stdout.write(render(table, args.format))
    return 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    import json

    from bayescale.backtesting import backtest
    from bayescale.data import load_runs
    from bayescale.priors import parse_assignment

    priors = dict(parse_assignment(spec) for spec in args.prior)
    if _uses_formula(args):
        law, runs = _formula_law_and_runs(args, priors)
        priors = {}  # the law holds them
    elif any(v is not None for v in (args.target, args.cost, args.link, args.params)) or args.input:
        raise BayescaleError("--target, --cost, --link, --params and --input are for formula laws (--law FORMULA)")
    else:
        law, runs = args.law, load_runs(args.runs, **_columns(args))
    result = backtest(runs, holdout=args.holdout, law=law, priors=priors, **_sampling_options(args))
    hist = result.pit_histogram
    if args.format == "json":
        payload = {"metrics": json.loads(render(result.metrics, "json")), "pit_histogram": hist.tolist()}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        sys.stdout.write(render(result.metrics, args.format))
        if args.format == "table":
            sys.stdout.write("PIT histogram (10 bins, flat when calibrated): " + " ".join(map(str, hist)) + "\n")
        else:
            log.info("PIT histogram (10 bins): %s", " ".join(map(str, hist)))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from bayescale.comparison import compare
    from bayescale.data import load_runs

    holdout = args.holdout_top or None
    fit_files = [p for p in args.runs if p.lower().endswith((".nc", ".h5", ".netcdf"))]
    if fit_files:
        if len(fit_files) != len(args.runs):
            raise BayescaleError("give either one runs file or several fit files (.nc), not both")
        result = compare(args.runs, holdout_top=holdout, compute=args.compute, interval=args.interval)
    else:
        if len(args.runs) != 1:
            raise BayescaleError(f"give one runs file (got {len(args.runs)}), or fit files (.nc) of different laws")
        runs = load_runs(args.runs[0], **_columns(args))
        laws = [name for name in args.laws.split(",") if name.strip()]
        result = compare(
            runs,
            laws,
            holdout_top=holdout,
            compute=args.compute,
            interval=args.interval,
            strict=args.strict,
            progress=not args.quiet and sys.stderr.isatty(),
            **_sampling_options(args),
        )
    sys.stdout.write(render(result.table, args.format))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from bayescale.loading import load
    from bayescale.pooled import PooledFit
    from bayescale.report import write_report
    from bayescale.task_fit import TaskFit

    out = Path(args.out)
    fmt = args.format or ("md" if out.suffix.lower() in (".md", ".markdown") else "html")
    fit = load(args.fit)
    others = [load(path) for path in args.compare]
    if isinstance(fit, PooledFit):
        kind = "separate fits" if getattr(fit, "separate", False) else "pooled fit"
        log.info("writing the %s report of %s (%s of %d groups)", fmt, args.fit, kind, len(fit.names))
    elif isinstance(fit, TaskFit):
        log.info("writing the %s report of %s (task fit of %d task(s))", fmt, args.fit, len(fit.names))
    else:
        log.info("writing the %s report of %s (%s, %d runs)", fmt, args.fit, fit.law.name, len(fit.runs))
    path = write_report(fit, out, compare=others, targets=args.target, fmt=fmt, title=args.title)
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return 0


def _cmd_fit_many(args: argparse.Namespace) -> int:
    import glob

    import pandas as pd

    from bayescale.data import load_runs, read_table
    from bayescale.many import Job, fit_many, read_jobs

    out_dir = Path(args.out_dir)
    if not out_dir.is_dir():
        raise BayescaleError(f"--out-dir '{out_dir}' does not exist; create it first")
    paths = []
    for pattern in args.inputs:
        matches = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        if not matches:
            raise BayescaleError(f"no files match {pattern!r}")
        paths += matches
    first = Path(paths[0])
    columns = _columns(args)
    if len(paths) == 1 and first.exists() and "runs" in [str(c).strip() for c in read_table(first).columns]:
        specs = read_jobs(first)
    else:
        specs = [Job(runs=p, name=None) for p in paths]
    options = _sampling_options(args)
    options.pop("seed")  # --seed seeds the batch: each job gets its own seed from it (fit_many)
    jobs, outs = [], []
    for spec in specs:
        runs = load_runs(spec.runs, **columns)  # bad input fails here, before any sampling
        out = out_dir / (spec.name or f"{Path(spec.runs).stem}.nc")
        if out in outs:
            raise BayescaleError(f"two jobs would write {out}; give each an 'out' name")
        outs.append(out)
        jobs.append(Job(runs=runs, law=spec.law or args.law, options={**options, **spec.options}, name=str(spec.runs)))
    log.info("fit-many: %d jobs on %s workers", len(jobs), args.workers or "all")
    results = fit_many(jobs, max_workers=args.workers, seed=args.seed)
    rows = []
    for job, out, result in zip(jobs, outs, results, strict=True):
        result.save(out)
        d = result.diagnostics
        rows.append(
            {
                "runs": job.name,
                "law": result.law.name,
                "n_runs": len(result.runs),
                "out": str(out),
                "seed": result.seed,
                "max_rhat": d.max_rhat,
                "min_ess": min(d.min_ess_bulk, d.min_ess_tail),
                "divergences": d.divergences,
            }
        )
    sys.stdout.write(render(pd.DataFrame(rows), args.format))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from bayescale.datasets import load_demo
    from bayescale.pipeline import fit

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = load_demo()
    log.info("demo: fitting chinchilla to the embedded ladder (%d synthetic runs, 1e17-1e20 FLOPs)", len(runs))
    result = fit(runs, law="chinchilla", draws=args.draws, tune=args.tune, seed=args.seed, progress=sys.stderr.isatty())
    fit_path = result.save(out_dir / "demo_fit.nc")
    pred = result.predict(N=70e9, D=1.4e12, interval=0.9)
    pred_path = out_dir / "prediction_70B_1.4T.csv"
    pred.to_csv(pred_path, index=False)
    row = pred.iloc[0]
    print(f"Predicted loss of a 70B-parameter model on 1.4T tokens (C = {row['C']:.3g} FLOPs):")
    print(f"  median {row['median']:.3f} nats/token, 90% band {row['lower']:.3f} - {row['upper']:.3f}")
    print(
        f"  (expected loss, no run noise: median {row['expected_median']:.3f}, 90% {row['expected_lower']:.3f} - "
        f"{row['expected_upper']:.3f})"
    )
    print(f"Fit saved to {fit_path}; prediction table to {pred_path}")
    print(f"Next: bayescale summary {fit_path}")
    return 0


def _cmd_design(args: argparse.Namespace) -> int:
    from bayescale.loading import load
    from bayescale.next_runs import DesignError, design
    from bayescale.result import ScalingFit

    if (args.candidates is None) == (args.max_compute is None):
        raise DesignError("give either --candidates FILE or --max-compute C (a grid below it), not both or neither")
    result = load(args.fit)
    if not isinstance(result, ScalingFit):
        raise DesignError(
            f"'{args.fit}' is not a single fit of the loss; design needs one (bayescale fit RUNS --out FIT)"
        )
    candidates = _load_points(args.candidates, "candidate runs") if args.candidates else None
    if args.plot and not Path(args.plot).parent.exists() and str(Path(args.plot).parent):
        raise BayescaleError(f"cannot write --plot {args.plot}: folder '{Path(args.plot).parent}' does not exist")
    found = design(
        result,
        args.target,
        goal=args.goal,
        candidates=candidates,
        max_compute=args.max_compute,
        budget=args.budget,
        picks=args.picks,
        method=args.method,
        seed=args.seed,
    )
    log.info(
        "goal (%s) sd now %.4g; after the batch of %d runs (%.3g FLOPs): %.4g expected",
        "log loss at the target" if args.goal == "loss" else "log N_opt at the target's budget",
        found.sd_before,
        len(found.batch),
        float(found.batch["cumulative_C"].iloc[-1]) if len(found.batch) else 0.0,
        found.sd_after,
    )
    if args.plot:
        from bayescale.plots import plot_design

        plot_design(found).savefig(args.plot, dpi=120)
        log.info("figure written to %s", args.plot)
    table = found.candidates
    if args.format == "table":
        table = table.head(max(20, len(found.batch)))
    sys.stdout.write(render(table, args.format))
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    import pandas as pd

    from bayescale import model_cache

    if args.action == "clear":
        removed = model_cache.clear()
        log.info("removed %d files from %s", removed, model_cache.cache_dir())
    info = model_cache.info()
    table = pd.DataFrame([{**info, "megabytes": round(info["bytes"] / 1e6, 2)}])
    sys.stdout.write(render(table, args.format))
    return 0


COMMANDS = {
    "fit": _cmd_fit,
    "fit-task": _cmd_fit_task,
    "summary": _cmd_summary,
    "predict": _cmd_predict,
    "contrast": _cmd_contrast,
    "optimal": _cmd_optimal,
    "backtest": _cmd_backtest,
    "compare": _cmd_compare,
    "report": _cmd_report,
    "fit-many": _cmd_fit_many,
    "design": _cmd_design,
    "demo": _cmd_demo,
    "cache": _cmd_cache,
}


class _StderrHandler(logging.StreamHandler):
    """Log lines to whatever ``sys.stderr`` is when they are written (a test's capture, a redirected stream)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # logging's attribute, read at every record
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # logging sets it once at construction; sys.stderr is read instead
        pass


#: Library warnings the user cannot act on, by category (message filters for the few named ones below).
LIBRARY_CHATTER = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def show_warnings() -> None:
    """The command line's warning filters: the package's own warnings always, named library chatter never.

    Every :class:`~bayescale.errors.BayescaleWarning` (diagnostics, comparison) goes to stderr as
    ``warning: ...``. Silenced by category: the libraries' deprecation notices
    (:data:`LIBRARY_CHATTER`: about their APIs, not the user's runs); numba's performance and
    caching notes (whatever numba's modules issue); floating-point notes from NumPy, SciPy, PyTensor, PyMC and
    nutpie (``RuntimeWarning``: an overflow in the sampler's warm-up is handled there); and PyMC's
    note that prior predictive draws ignore a ``Potential`` (the discrepancy's collapsed likelihood
    is one, by design). Any other warning is shown.
    """
    from bayescale.errors import BayescaleWarning

    warnings.resetwarnings()
    warnings.simplefilter("default")
    for category in LIBRARY_CHATTER:
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", module=r"numba(\.|$)")  # by module: importing numba for its category costs 0.5 s
    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"(numpy|scipy|pytensor|pymc|nutpie)(\.|$)")
    warnings.filterwarnings("ignore", message="The effect of Potentials", category=UserWarning)
    warnings.filterwarnings("always", category=BayescaleWarning)
    warnings.showwarning = lambda message, category, *a, **k: log.warning("warning: %s", message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayescale`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):  # once per process, however many calls
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.ERROR if args.quiet else logging.INFO)
    log.propagate = False
    logging.getLogger("pymc").setLevel(logging.ERROR)
    show_warnings()
    try:
        return COMMANDS[args.command](args)
    except BayescaleError as ex:
        print(f"bayescale: error: {ex}", file=sys.stderr)
        return ex.exit_code
    except KeyboardInterrupt:
        print("bayescale: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The console script: :func:`main`, then exit without the collector's last passes.

    After a fit the process holds PyTensor's and numba's large object graphs; collecting them
    at interpreter shutdown took 1.2 s of a 20 s command. ``gc.freeze`` leaves them to the OS.
    """
    import gc

    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
