"""The command line: clean stdout, one-line errors with exit 2, saved fits never clobbered."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bayescale.cli import main


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, pattern):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bayescale: error: ")
    assert pattern in lines[0], lines[0]


GOOD = "N,D,loss\n" + "".join(
    f"{n:g},{d:g},{3.0 - 0.1 * i}\n"
    for i, (n, d) in enumerate(
        [(1e8, 2e9), (2e8, 4e9), (4e8, 8e9), (1e8, 8e9), (4e8, 2e9), (2e8, 1e9), (8e8, 1e10), (8e8, 3e10)]
    )
)


@pytest.mark.parametrize(
    ("content", "extra", "pattern"),
    [
        (None, [], "not found"),
        ("", [], "is empty"),
        ("N,D,loss\n", [], "header only"),
        ("N,D,val\n1e8,1e9,3\n", [], "no loss column in"),
        ("N,D,loss\n1e8,abc,3\n", [], "column 'D', row 1: 'abc' is not a number"),
        ("N,D,loss\n1e8,1e9,nan\n", [], "column 'loss', row 1"),
        ("N,D,loss\n1e8,1e9,inf\n", [], "column 'loss', row 1"),
        ("N,D,loss\n0,1e9,3\n", [], "N must be positive"),
        ("N,D,loss\n1e8,1e9,-3\n", [], "loss must be positive"),
        ("N,D,loss\n1e8,1e9,30\n2e8,1e9,25\n", [], "perplexities"),
        ("N,D,loss\n1e8,1e9,3\n2e8,2e9,2.9\n", [], "at least 3 runs, got 2"),
        ("N,D,loss\n1e8,1e9,3\n1e8,1e9,2.9\n1e8,1e9,2.95\n", [], "every run has the same N and D"),
        (GOOD, ["--law", "chinchila"], "unknown law 'chinchila'"),
        (GOOD, ["--prior", "alpha=Normol(0, 1)"], "unknown distribution 'Normol'"),
        (GOOD, ["--prior", "gamma=Normal(0, 1)"], "has no parameter 'gamma'"),
        (GOOD, ["--n-col", "params"], "no column 'params'"),
    ],
)
def test_fit_bad_input(tmp_path, capsys, runs_csv, content, extra, pattern):
    path = tmp_path / "missing.csv" if content is None else runs_csv(content)
    out = tmp_path / "fit.nc"
    out.write_bytes(b"an older fit")
    code, stdout, err = run(["fit", path, "--out", out, *extra], capsys)
    assert_one_line_error(code, err, pattern)
    assert stdout == ""
    assert out.read_bytes() == b"an older fit"  # a failed fit never touches --out


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as ex:
        main(["predict", "x.nc", "--interval", "1.5"])
    assert ex.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_summary_formats(real_fit_path, capsys):
    code, out, _ = run(["summary", real_fit_path, "--interval", "0.99", "--format", "csv"], capsys)
    assert code == 0
    table = pd.read_csv(io.StringIO(out))
    assert list(table.columns) == [
        "parameter",
        "mean",
        "median",
        "sd",
        "lower",
        "upper",
        "contraction",
        "decided_by",
        "r_hat",
        "ess_bulk",
        "ess_tail",
    ]
    assert set(table["decided_by"]) <= {"data", "prior"}
    assert list(table["parameter"]) == ["E", "A", "B", "alpha", "beta", "sigma", "nu"]
    code, out, _ = run(["summary", real_fit_path, "--format", "json"], capsys)
    assert json.loads(out)[0]["parameter"] == "E"
    code, out, _ = run(["summary", real_fit_path], capsys)
    assert "alpha" in out and code == 0


def test_predict_single_point_csv(real_fit_path, capsys):
    code, out, err = run(["predict", real_fit_path, "--N", "7e10", "--D", "1.4T", "--format", "csv"], capsys)
    assert code == 0, err
    table = pd.read_csv(io.StringIO(out))
    assert len(table) == 1
    assert list(table.columns[:6]) == ["N", "D", "C", "median", "lower", "upper"]
    assert table.loc[0, "D"] == 1.4e12


def test_predict_points_file_10k_rows(real_fit_path, tmp_path, capsys, monkeypatch):
    import bayescale.data

    reads = []
    real_read = bayescale.data.read_table
    monkeypatch.setattr(bayescale.data, "read_table", lambda *a, **k: reads.append(a) or real_read(*a, **k))
    rng = np.random.default_rng(0)
    points = pd.DataFrame(
        {
            "name": [f"m{i}" for i in range(10_000)],
            "N": 10 ** rng.uniform(8, 11, 10_000),
            "D": 10 ** rng.uniform(9, 13, 10_000),
            "loss": 1.0,
        }
    )
    points.to_csv(tmp_path / "points.csv", index=False)
    code, out, err = run(["predict", real_fit_path, "--points", tmp_path / "points.csv", "--format", "csv"], capsys)
    assert code == 0, err
    table = pd.read_csv(io.StringIO(out))
    assert len(table) == 10_000 and "name" not in table.columns
    np.testing.assert_allclose(table["N"], points["N"], rtol=1e-9)
    assert (table["lower"] < table["upper"]).all()
    assert len(reads) == 1  # the points file is read once


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["--N=-7e10", "--D", "1e12"], "N must be positive"),
        (["--N", "0", "--D", "1e12"], "N must be positive"),
        (["--N", "7e10"], "needs N and D; give D"),
        ([], "give the points"),
    ],
)
def test_predict_bad_points(real_fit_path, capsys, argv, pattern):
    code, out, err = run(["predict", real_fit_path, *argv], capsys)
    assert_one_line_error(code, err, pattern)
    assert out == ""


def test_predict_bad_points_file(real_fit_path, runs_csv, capsys):
    code, _, err = run(["predict", real_fit_path, "--points", runs_csv("size,x\n1,2\n")], capsys)
    assert_one_line_error(code, err, "needs N and D (or C) columns")
    code, _, err = run(["predict", real_fit_path, "--points", runs_csv("N,D\n1e9,-1\n")], capsys)
    assert_one_line_error(code, err, "D must be positive")


def test_fit_file_errors(tmp_path, capsys):
    code, _, err = run(["summary", tmp_path / "nope.nc"], capsys)
    assert_one_line_error(code, err, "not found")
    (tmp_path / "bad.nc").write_text("not netcdf at all")
    code, _, err = run(["predict", tmp_path / "bad.nc", "--N", "1e9", "--D", "1e10"], capsys)
    assert_one_line_error(code, err, "not a readable fit file")


def test_fit_end_to_end_subprocess(tmp_path, demo_runs):
    """The real entry point: fit writes the file; stdout stays empty; logs go to stderr."""
    demo_runs.table.to_csv(tmp_path / "runs.csv", index=False)
    out = tmp_path / "fit.nc"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bayescale.cli",
            "fit",
            str(tmp_path / "runs.csv"),
            "--out",
            str(out),
            "--draws",
            "300",
            "--tune",
            "400",
            "--seed",
            "3",
            "--prior",
            "alpha=Normal(0.35, 0.1)",
            "--no-discrepancy",
            "--no-retry",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "saved" in proc.stderr
    import bayescale as bs

    fit = bs.load(out)
    assert fit.seed == 3 and str(fit.priors["alpha"]) == "Normal(mu=0.35, sigma=0.1)"
    assert fit.discrepancy is None  # --no-discrepancy
    assert fit.tree.attrs["retry"] == 0  # --no-retry


def test_log_lines_are_written_once_however_often_main_runs(real_fit_path, capsys):
    for _ in range(3):
        code, _, err = run(["predict", real_fit_path, "--N", "7e10", "--D", "1.4T", "--U", "1e12"], capsys)
        assert code == 0
        assert err.count("unique tokens U ignored") == 1, err


def test_the_packages_warnings_reach_stderr_and_library_deprecations_do_not(real_fit_path, capsys, monkeypatch):
    """compare's Pareto-k warning is shown (the CLI used to silence every warning but diagnostics')."""
    import warnings

    import pandas as pd

    from bayescale import comparison
    from bayescale.comparison import ComparisonWarning

    class Result:
        table = pd.DataFrame({"law": ["kaplan"], "elpd_loo": [1.0]})

    def fake_compare(*args, **kwargs):
        warnings.warn(
            "kaplan: 2 run(s) with Pareto k > 0.7: their LOO estimate is unreliable", ComparisonWarning, stacklevel=2
        )
        warnings.warn("numpy.foo is deprecated", DeprecationWarning, stacklevel=2)
        return Result()

    monkeypatch.setattr(comparison, "compare", fake_compare)
    code, out, err = run(["compare", real_fit_path, real_fit_path, "--format", "csv"], capsys)
    assert code == 0 and "elpd_loo" in out
    assert "warning: kaplan: 2 run(s) with Pareto k > 0.7" in err
    assert "deprecated" not in err
