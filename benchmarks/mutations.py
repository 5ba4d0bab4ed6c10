"""Mutation check: break the statistics on purpose, one breakage at a time, and show the tests catch it.

Usage: python benchmarks/mutations.py [--only NAME ...] [--stages "-m 'not slow'" "-m slow"]

For each mutation below, a copy of the repository (``git ls-files``, the working tree's versions) gets
one textual edit of the package's source, then the test suite CI runs goes over the copy in stages
(``python -m pytest -x -q`` per stage: by default the fast tests of the statistics' modules, the
end-to-end calibration test, then every fast and every slow test -- ordered so that a caught mutation
stops early; together they are what CI runs), with the copy
first on ``PYTHONPATH`` so that subprocesses (the command line, fit-many workers) run the mutant too.
A mutation is *caught* when a stage fails; the table prints the stage and the first failing test.
An edit that no longer applies (the code moved) is reported as such, never as caught.

The mutations are those of issue 37: the band scale doubled and halved, alpha and beta swapped in
the literature prior's mapping, the discrepancy silently skipped, the Student-t noise replaced by a
Normal, and a run dropped by the reader.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    what: str


MUTATIONS = (
    Mutation(
        "band-scale-x2",
        "bayescale/result.py",
        "        return point_scales(draws, untested(self.runs, points, reach))",
        "        return point_scales(2.0 * draws, untested(self.runs, points, reach))",
        "every calibrated band twice as wide as learned",
    ),
    Mutation(
        "band-scale-x0.5",
        "bayescale/result.py",
        "        return point_scales(draws, untested(self.runs, points, reach))",
        "        return point_scales(0.5 * draws, untested(self.runs, points, reach))",
        "every calibrated band half as wide as learned",
    ),
    Mutation(
        "literature-alpha-beta-swapped",
        "bayescale/literature.py",
        '        "alpha": Prior("LogNormal", mu=q["log_alpha"]["mean"], sigma=q["log_alpha"]["sd"]),\n'
        '        "beta": Prior("LogNormal", mu=q["log_beta"]["mean"], sigma=q["log_beta"]["sd"]),',
        '        "alpha": Prior("LogNormal", mu=q["log_beta"]["mean"], sigma=q["log_beta"]["sd"]),\n'
        '        "beta": Prior("LogNormal", mu=q["log_alpha"]["mean"], sigma=q["log_alpha"]["sd"]),',
        "the literature prior's exponents exchanged",
    ),
    Mutation(
        "discrepancy-skipped",
        "bayescale/pipeline.py",
        "        if discrepancy:\n            sampling.fit_discrepancy(result, runs, law, settings)",
        "        if False:\n            sampling.fit_discrepancy(result, runs, law, settings)",
        "the model discrepancy never fitted, without a word",
    ),
    Mutation(
        "normal-noise",
        "bayescale/model.py",
        'pm.StudentT("log_loss", nu=nu, mu=mu, sigma=sigma, observed=observed, dims="run")',
        'pm.Normal("log_loss", mu=mu, sigma=sigma, observed=observed, dims="run")',
        "the law's Student-t noise replaced by a Normal",
    ),
    Mutation(
        "reader-drops-a-run",
        "bayescale/data.py",
        "        table=table[ordered].reset_index(drop=True),",
        "        table=table[ordered].iloc[:-1].reset_index(drop=True),",
        "load_runs silently drops the last run",
    ),
)


def apply(mutation: Mutation, tree: Path) -> bool:
    """Apply ``mutation`` to the copy at ``tree``; False when its edit no longer applies."""
    path = tree / mutation.path
    text = path.read_text()
    new = text.replace(mutation.old, mutation.new, 1) if text.count(mutation.old) == 1 else None
    if new is None:
        return False
    path.write_text(new)
    return True


def copy_repository(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def run(mutation: Mutation, stages: list[list[str]], keep: bool) -> dict:
    """Apply ``mutation`` to a copy and run the test stages on it until one fails."""
    # the copy sits beside the checkout (../shared must be its sibling, as for the checkout)
    with tempfile.TemporaryDirectory(prefix="bayescale-mutant-", dir=ROOT.parent) as tmp:
        tree = Path(tmp)
        copy_repository(tree)
        if not apply(mutation, tree):
            return {"mutation": mutation.name, "result": "edit does not apply", "first_failure": "", "seconds": 0.0}
        # the mutant's package first on every path, subprocesses (the CLI, fit-many workers) included
        env = dict(os.environ, PYTHONPATH=str(tree))
        t0 = time.perf_counter()
        failed, code, stage_name = [], 0, ""
        for stage in stages:
            out = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *stage],
                cwd=tree,
                env=env,
                capture_output=True,
                text=True,
            )
            if keep:
                print(out.stdout[-3000:], file=sys.stderr)
            if out.returncode != 0:
                code, stage_name = out.returncode, " ".join(stage)
                failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out.stdout, flags=re.M) or [out.stdout.strip()[-200:]]
                break
        seconds = time.perf_counter() - t0
    return {
        "mutation": mutation.name,
        "result": "caught" if code != 0 else "NOT CAUGHT",
        "first_failure": failed[0] if failed else "",
        "stage": stage_name,
        "seconds": round(seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None, help="mutation names (default: all)")
    ap.add_argument(
        "--stages",
        nargs="*",
        default=[
            "tests/test_calibration.py tests/test_backtest.py tests/test_literature.py tests/test_discrepancy.py "
            "tests/test_data.py tests/test_fit.py tests/test_predict.py -m 'not slow'",
            "tests/test_slow_calibration.py",
            "-m 'not slow'",
            "-m slow",
        ],
        help="pytest argument strings run one after another until one fails (default: the statistics' fast tests, "
        "the end-to-end calibration test, then every fast and every slow test: together, what CI runs)",
    )
    ap.add_argument("--verbose", action="store_true", help="print the tail of each pytest run to stderr")
    a = ap.parse_args()
    rows = []
    for mutation in MUTATIONS:
        if a.only and mutation.name not in a.only:
            continue
        row = run(mutation, [shlex.split(stage) for stage in a.stages], a.verbose)
        rows.append(row)
        print(f"{row['mutation']}: {row['result']} ({row['first_failure']}) {row['seconds']} s", file=sys.stderr)
    width = max(len(r["mutation"]) for r in rows)
    print(f"{'mutation':<{width}}  result      stage            first failing test")
    for r in rows:
        print(f"{r['mutation']:<{width}}  {r['result']:<10}  {r['stage']:<15}  {r['first_failure']}")
    sys.exit(0 if all(r["result"] == "caught" for r in rows) else 1)


if __name__ == "__main__":
    main()
