"""The report: self-contained HTML (checked in headless Chromium when available), Markdown, CLI, errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings

import numpy as np
import pytest

import bayescale as bs
from bayescale.cli import main
from bayescale.diagnostics import DiagnosticsWarning
from bayescale.report import ReportError, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: In CI the browser check must run: .ci/run installs Debian's chromium.
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="chromium not installed (CI installs it)"
)


@pytest.fixture(scope="module")
def report_html(real_fit, tmp_path_factory):
    return write_report(
        real_fit, tmp_path_factory.mktemp("report") / "report.html", targets=[(7e9, 2e12), (70e9, 1.4e12)]
    )


def test_html_is_self_contained_with_the_figures_and_sections(report_html):
    text = report_html.read_text()
    images = re.findall(r'<img [^>]*src="([^"]+)"', text)
    assert len(images) >= 7 and all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(https?:)?//', text) and "@import" not in text and "url(" not in text
    assert "<script" not in text
    assert report_html.stat().st_size < 10e6
    for heading in ("Data", "Diagnostics", "Parameters", "Predictions", "Allocation", "Calibration", "Methods"):
        assert f"<h2>{heading}</h2>" in text
    assert "70000000000" in text or "7e+10" in text  # the target's row
    assert re.search(r"per e-fold of extrapolation along each input by N [\d.e-]+, D [\d.e-]+", text)  # the growth
    assert "seed 7" in text and "pymc" in text  # reproducible: seed and versions


@needs_chromium
def test_report_renders_in_headless_chromium_with_every_image_loaded(report_html, tmp_path):
    assert CHROMIUM, "CI must install chromium (see .ci/run)"
    probe = tmp_path / "probe.html"
    # the report has no script; this copy adds one that records how many images decoded
    script = (
        "<script>window.addEventListener('load', () => { const im = [...document.images];"
        " document.body.setAttribute('data-loaded', im.filter(i => i.complete && i.naturalWidth > 0).length"
        " + '/' + im.length); });</script></body>"
    )
    probe.write_text(report_html.read_text().replace("</body>", script))
    offline = ["--headless", "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND"]
    dom = subprocess.run(
        [CHROMIUM, *offline, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    loaded, total = map(int, re.search(r'data-loaded="(\d+)/(\d+)"', dom).groups())
    assert total >= 7 and loaded == total
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, *offline, f"--screenshot={shot}", "--window-size=1200,4000", report_html.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[0] >= 1000 and pixels[..., :3].std() > 0.05  # a page with figures, not a blank one


def test_markdown_report_writes_pngs_beside_it(real_fit, tmp_path):
    path = write_report(real_fit, tmp_path / "r.md", fmt="md")
    text = path.read_text()
    pngs = sorted((tmp_path / "r_files").glob("*.png"))
    assert len(pngs) >= 7 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert "## Parameters" in text and "![Figure 1](r_files/figure_1.png)" in text and "<code>" not in text


def test_report_with_a_comparison(real_fit, mock_sampler, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        short = {"draws": 50, "tune": 50, "discrepancy": False, "calibrate": False, "retry": False}
        other = bs.fit(real_fit.runs, law="kaplan", seed=1, **short)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # mocked kaplan draws: Pareto k
        text = write_report(real_fit, tmp_path / "c.html", compare=[other]).read_text()
    assert "<h2>Comparison of laws</h2>" in text and "kaplan" in text
    with pytest.raises(ReportError, match="two fits of law chinchilla"):
        write_report(real_fit, tmp_path / "d.html", compare=[real_fit])


def test_bad_targets_and_formats(real_fit, tmp_path):
    with pytest.raises(ReportError, match="positive N and D"):
        write_report(real_fit, tmp_path / "x.html", targets=[(7e9, -1.0)])
    with pytest.raises(ReportError, match="unknown report format"):
        write_report(real_fit, tmp_path / "x.pdf", fmt="pdf")


def test_a_failed_report_leaves_an_older_file_intact(real_fit, tmp_path):
    path = tmp_path / "keep.html"
    path.write_text("older report")
    with pytest.raises(ReportError):
        write_report(real_fit, path, targets=[(np.nan, 1e12)])
    assert path.read_text() == "older report"


def test_cli_report(real_fit_path, tmp_path, capsys):
    out = tmp_path / "cli.html"
    assert main(["report", str(real_fit_path), "-o", str(out), "--target", "7B,2T", "70B,1.4T"]) == 0
    assert out.read_text().count("<img ") >= 7
    assert main(["report", str(real_fit_path), "-o", str(tmp_path / "no" / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
