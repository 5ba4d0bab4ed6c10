"""Every plot function draws on a small real fit (or hand-made results) and labels its axes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from bayescale import plots
from bayescale.backtesting import BacktestResult
from bayescale.comparison import COLUMNS, Comparison


def _labelled(fig: Figure) -> list:
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert axes
    return axes


def test_plot_loss_against_compute_and_n_marks_the_target(real_fit, tmp_path):
    fig = plots.plot_loss(real_fit, target=(70e9, 1.4e12))
    (ax,) = _labelled(fig)
    assert "compute" in ax.get_xlabel() and "loss" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(label.startswith("target N=7e+10") for label in labels)
    assert any("90% band" in label for label in labels) and any("50% band" in label for label in labels)
    assert ax.get_xlim()[1] > 6 * 70e9 * 1.4e12  # drawn out to the target
    fig.savefig(tmp_path / "loss.png")
    (ax,) = _labelled(plots.plot_loss(real_fit, x="N"))
    assert ax.get_xlabel() == "parameters N"


def test_plot_loss_rejects_an_unknown_axis(real_fit):
    with pytest.raises(plots.PlotError, match="x must be 'C' or 'N'"):
        plots.plot_loss(real_fit, x="D")


def test_plot_isoflop_draws_one_profile_per_budget(real_fit):
    fig = plots.plot_isoflop(real_fit, budgets=[1e19, 1e21])
    (ax,) = _labelled(fig)
    assert len(ax.get_legend().get_texts()) == 2 and ax.get_xlabel() == "parameters N"


def test_plot_allocation_has_fans_reference_slopes_and_tokens_per_param(real_fit):
    fig = plots.plot_allocation(real_fit, budgets=[1e21, 1e23])
    axes = _labelled(fig)
    assert len(axes) == 3
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert "Kaplan slope 0.73" in legend and "Chinchilla slope 0.5" in legend
    assert "tokens per parameter" in axes[2].get_ylabel()


def test_plot_posteriors_one_panel_per_sampled_parameter(real_fit):
    fig = plots.plot_posteriors(real_fit)
    sampled = [n for n, p in real_fit.priors.items() if not p.is_fixed and n in real_fit.posterior]
    assert len(_labelled(fig)) == len(sampled)
    with pytest.raises(plots.PlotError, match="no prior and posterior for gamma"):
        plots.plot_posteriors(real_fit, ["gamma"])


def test_plot_pairs_is_a_lower_triangle_over_the_physical_parameters(real_fit):
    fig = plots.plot_pairs(real_fit)
    k = len(real_fit.law.natural_params)  # E, A, B, alpha, beta
    assert len(_labelled(fig)) == k * (k + 1) // 2
    assert any(ax.get_xlabel() == "log10 A" for ax in fig.axes)


def test_plot_residuals(real_fit):
    axes = _labelled(plots.plot_residuals(real_fit))
    assert len(axes) == 2 and "residual" in axes[0].get_ylabel()


def test_plot_comparison_from_a_table():
    rows = [
        dict.fromkeys(COLUMNS, 0.0)
        | {"law": "chinchilla", "elpd_loo": 10.0, "se": 2.0, "weight": 0.9, "weight_lfo": 0.7},
        dict.fromkeys(COLUMNS, 0.0)
        | {
            "law": "kaplan",
            "elpd_loo": 4.0,
            "se": 2.0,
            "elpd_diff": -6.0,
            "dse": 1.0,
            "weight": 0.1,
            "weight_lfo": 0.3,
        },
    ]
    fig = plots.plot_comparison(Comparison(pd.DataFrame(rows, columns=COLUMNS), fits={}))
    axes = _labelled(fig)
    assert len(axes) == 3 and axes[-1].get_xlabel() == "weight"


def test_plot_backtest_counts_runs_inside_and_outside():
    pred = pd.DataFrame(
        {
            "loss": [2.0, 2.5, 3.0],
            "median": [2.0, 2.4, 3.5],
            "lower_0.9": [1.9, 2.3, 3.2],
            "upper_0.9": [2.1, 2.6, 3.8],
            "pit": [0.55, 0.75, 0.0],
        }
    )
    fig = plots.plot_backtest(BacktestResult(metrics=pd.DataFrame(), predictions=pred))
    left, right = _labelled(fig)
    labels = [t.get_text() for t in left.get_legend().get_texts()]
    assert labels == ["inside the 90% band (2)", "outside the 90% band (1)"]
    assert "67%" in left.get_title()
    heights = [p.get_height() for p in right.patches]
    np.testing.assert_array_equal(heights, [1, 0, 0, 0, 0, 1, 0, 1, 0, 0])
    with pytest.raises(plots.PlotError, match=r"no 0\.5 interval"):
        plots.plot_backtest(BacktestResult(metrics=pd.DataFrame(), predictions=pred), level=0.5)


def test_plot_literature_one_panel_per_quantity_with_every_ladder(tmp_path):
    from bayescale.metaanalysis import QUANTITIES

    fig = plots.plot_literature()
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == list(QUANTITIES)
    # one error bar per ladder and source group: 41 ladders in the shipped table
    n_points = sum(len(line.get_xdata()) for line in axes[0].lines if line.get_marker() == "o")
    assert n_points == 41
    fig.savefig(tmp_path / "literature.png")
