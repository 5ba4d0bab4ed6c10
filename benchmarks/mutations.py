"""Mutation check: break the statistics on purpose, one breakage at a time, and show the tests catch it.

Usage: python benchmarks/mutations.py [--only NAME ...] [--pytest-args "-m 'not slow'"]

For each mutation below, a copy of the repository (``git ls-files``, the working tree's versions) gets
one textual edit of the package's source, then the test suite runs on the copy (``python -m pytest
-x -q`` with ``--pytest-args``, by default the tests CI runs that each mutation's breakage could
reach -- every test, fast and slow, selected by ``-k`` only where stated). A mutation is *caught*
when pytest fails; the table prints which test failed first. An edit that no longer applies (the
code moved) is reported as such, never as caught.

The mutations are those of issue 37: the band scale doubled and halved, alpha and beta swapped in
the literature prior's mapping, the discrepancy silently skipped, the Student-t noise replaced by a
Normal, and a run dropped by the reader.
"""

from __future__ import annotations

import argparse
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


def run(mutation: Mutation, pytest_args: list[str], keep: bool) -> dict:
    # the copy sits beside the checkout (../shared must be its sibling, as for the checkout)
    with tempfile.TemporaryDirectory(prefix="bayescale-mutant-", dir=ROOT.parent) as tmp:
        tree = Path(tmp)
        copy_repository(tree)
        if not apply(mutation, tree):
            return {"mutation": mutation.name, "result": "edit does not apply", "first_failure": "", "seconds": 0.0}
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *pytest_args],
            cwd=tree,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - t0
        failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out.stdout, flags=re.M)
        if keep:
            print(out.stdout[-3000:], file=sys.stderr)
    return {
        "mutation": mutation.name,
        "result": "caught" if out.returncode != 0 else "NOT CAUGHT",
        "first_failure": failed[0] if failed else ("" if out.returncode == 0 else out.stdout.strip()[-200:]),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None, help="mutation names (default: all)")
    ap.add_argument("--pytest-args", default="", help="extra pytest arguments, e.g. \"-m 'not slow'\"")
    ap.add_argument("--verbose", action="store_true", help="print the tail of each pytest run to stderr")
    a = ap.parse_args()
    rows = []
    for mutation in MUTATIONS:
        if a.only and mutation.name not in a.only:
            continue
        row = run(mutation, shlex.split(a.pytest_args), a.verbose)
        rows.append(row)
        print(f"{row['mutation']}: {row['result']} ({row['first_failure']}) {row['seconds']} s", file=sys.stderr)
    width = max(len(r["mutation"]) for r in rows)
    print(f"{'mutation':<{width}}  result      first failing test")
    for r in rows:
        print(f"{r['mutation']:<{width}}  {r['result']:<10}  {r['first_failure']}")
    sys.exit(0 if all(r["result"] == "caught" for r in rows) else 1)


if __name__ == "__main__":
    main()
