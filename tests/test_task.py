"""Task fits (N, D) -> task loss -> metric: links, input checks, structure, predictions, CLI."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale import links
from bayescale.cli import main
from bayescale.diagnostics import DiagnosticsWarning
from bayescale.errors import PredictionError, RunsError
from bayescale.task_fit import NO_SIGNAL, TaskFit, has_signal


def _task_table(n: int = 12, seed: int = 0, tasks: tuple[str, ...] = ("easy", "hard"), flat: bool = False):
    """A long table: one ladder of losses shared by every task, each task's accuracy a sigmoid of it."""
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(5e7), np.log(2e9), n))
    D = 20 * N * np.exp(rng.uniform(-1, 1, n))
    loss = (1.8 + 400 * N**-0.34 + 410 * D**-0.28) * np.exp(rng.normal(0, 0.005, n))
    parts = []
    for i, task in enumerate(tasks):
        acc = 0.25 + 0.7 / (1 + np.exp(-6 * (-loss + 2.6 + 0.2 * i)))
        if flat:
            acc = np.full(n, 0.25)
        parts.append(
            pd.DataFrame({"task": task, "N": N, "D": D, "loss": loss, "accuracy": acc + rng.normal(0, 0.005, n)})
        )
    return pd.concat(parts, ignore_index=True).assign(chance=0.25)


def _quiet(*args, **kwargs) -> TaskFit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)  # mocked draws are not a converged posterior
        return bs.fit_task(*args, **kwargs)


# --- links -------------------------------------------------------------------------------


def test_sigmoid_link_runs_from_the_floor_to_its_ceiling():
    p = {"u0": -2.5, "k": 5.0, "h": 0.8}
    u = np.array([-50.0, -2.5, 50.0])
    np.testing.assert_allclose(links.SIGMOID.mean(p, u, 0.25), [0.25, 0.25 + 0.75 * 0.8 / 2, 0.25 + 0.75 * 0.8])


def test_exp_link_is_capped_at_one():
    p = {"log_h": np.log(0.2), "gamma": 2.0, "u_ref": -3.0}
    values = links.EXP.mean(p, np.array([-3.0, 10.0]), 0.1)
    np.testing.assert_allclose(values, [0.3, 1.0])


def test_unknown_link_is_refused():
    with pytest.raises(ValueError, match="unknown link 'probit'"):
        links.get_link("probit")


def test_signal_needs_a_rise_above_the_scatter():
    s = np.full(1000, 0.01)
    assert has_signal(np.full(1000, 0.2), s)
    assert not has_signal(np.random.default_rng(0).normal(0.005, 0.005, 1000), s)


# --- fits (mocked sampler) -------------------------------------------------------------------


def test_tasks_sharing_a_loss_ladder_share_step_one(mock_sampler):
    fit = _quiet(_task_table(), loss="loss", chance="chance", task="task", seed=1, calibrate=False)
    assert fit.names == ["easy", "hard"] and fit.through == "loss"
    assert fit.loss_fit("easy") is fit.loss_fit("hard")
    assert list(fit.tree["losses"].children) == ["l0"]
    assert fit.floor("easy") == 0.25


def test_predict_has_one_block_per_task_and_bands_in_order(mock_sampler):
    fit = _quiet(_task_table(), chance=0.25, task="task", seed=1, calibrate=False)
    table = fit.predict(N=[1e10, 7e10], D=[2e11, 1.4e12])
    assert list(table["task"]) == ["easy", "easy", "hard", "hard"]
    assert {"median", "lower", "upper", "loss_median", "loss_lower", "loss_upper", "chance", "note"} <= set(table)
    assert (table["lower"] <= table["median"]).all() and (table["median"] <= table["upper"]).all()
    assert table[["lower", "upper"]].stack().between(0, 1).all()


def test_predict_per_point_keeps_the_points_order(mock_sampler):
    fit = _quiet(_task_table(), chance=0.25, task="task", seed=1, calibrate=False)
    table = fit.predict(N=[1e10, 2e10, 3e10], D=[2e11, 4e11, 6e11], point_tasks=["hard", "easy", "hard"])
    assert list(table["task"]) == ["hard", "easy", "hard"]
    np.testing.assert_allclose(table["N"], [1e10, 2e10, 3e10])
    with pytest.raises(PredictionError, match="no task 'medium'"):
        fit.predict(N=[1e10], D=[2e11], point_tasks=["medium"])


def test_chain_through_compute_without_a_loss(mock_sampler):
    table = _task_table().drop(columns="loss")
    fit = _quiet(table, chance=0.25, task="task", seed=1)
    assert fit.through == "compute" and fit.loss_fit("easy") is None
    pred = fit.predict(C=[1e21, 1e22], task="easy")
    assert "loss_median" not in pred and len(pred) == 2


def test_task_fit_saves_and_loads(mock_sampler, tmp_path):
    fit = _quiet(_task_table(), chance="chance", task="task", seed=3, calibrate=False)
    path = fit.save(tmp_path / "task.nc")
    loaded = bs.load(path)
    assert isinstance(loaded, TaskFit) and loaded.names == fit.names
    pd.testing.assert_frame_equal(loaded.predict(N=7e9, D=1.4e11), fit.predict(N=7e9, D=1.4e11))
    summary = loaded.summary()
    assert {"loss", "link"} == set(summary["stage"]) and "ceiling" in set(summary["parameter"])


def test_summary_of_one_task(mock_sampler):
    fit = _quiet(_task_table(), chance=0.25, task="task", seed=1, calibrate=False)
    assert set(fit.summary(task="hard")["task"]) == {"hard"}


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit, kwargs, message",
    [
        (lambda t: t.assign(accuracy=t["accuracy"] * 100), {}, "must be in \\[0, 1\\]"),
        (lambda t: t, {"chance": 0.99}, r"chance level 0\.99 is above the best run"),
        (lambda t: t[(t["task"] == "easy") | (t.index % 12 < 2)], {}, "task 'hard' has 2 runs"),
        (lambda t: t.assign(accuracy=t["accuracy"].astype(str).where(t.index != 3, "n/a")), {}, "not numeric"),
        (lambda t: t, {"metric": "acc"}, "no metric column 'acc'"),
        (lambda t: t, {"loss": "bpb"}, "no loss column 'bpb'"),
        (lambda t: t, {"link": "probit"}, "unknown link"),
        (lambda t: t, {"chance": "baseline"}, "neither a number nor a column"),
    ],
)
def test_bad_input_is_one_clear_error(edit, kwargs, message):
    with pytest.raises(RunsError, match=message):
        bs.fit_task(edit(_task_table()), task="task", **kwargs)


def test_a_row_outside_zero_one_is_named(tmp_path):
    table = _task_table()
    table.loc[5, "accuracy"] = 1.7
    path = tmp_path / "runs.csv"
    table.to_csv(path, index=False)
    with pytest.raises(RunsError, match=r"row 6 is 1\.7"):
        bs.fit_task(path, task="task")


# --- command line ------------------------------------------------------------------------------


def test_cli_fit_task_then_predict_a_long_table_of_targets(mock_sampler, tmp_path, capsys):
    runs, targets, out = tmp_path / "runs.csv", tmp_path / "targets.csv", tmp_path / "task.nc"
    _task_table().to_csv(runs, index=False)
    pd.DataFrame({"task": ["hard", "easy"], "N": ["7B", "13B"], "D": ["1.4T", "2T"]}).to_csv(targets, index=False)
    argv = ["fit-task", str(runs), "--out", str(out), "--chance", "chance", "--task-col", "task", "--no-calibrate"]
    assert main([*argv, "--seed", "1"]) == 0
    capsys.readouterr()
    assert main(["predict", str(out), "--points", str(targets), "--format", "csv"]) == 0
    table = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert list(table["task"]) == ["hard", "easy"] and list(table["N"]) == [7e9, 13e9]
    assert main(["summary", str(out), "--format", "csv"]) == 0
    assert "link" in capsys.readouterr().out


@pytest.mark.parametrize(
    "edit, extra, message",
    [
        (lambda t: t.assign(accuracy=t["accuracy"] * 100), [], "must be in [0, 1]"),
        (lambda t: t, ["--chance", "0.99"], "is above the best run"),
        (lambda t: t[(t["task"] == "easy") | (t.index % 12 < 2)], [], "has 2 runs"),
        (lambda t: t.assign(accuracy="high"), [], "not numeric"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, edit, extra, message):
    runs, out = tmp_path / "runs.csv", tmp_path / "task.nc"
    edit(_task_table()).to_csv(runs, index=False)
    assert main(["fit-task", str(runs), "--out", str(out), "--task-col", "task", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not out.exists()


def test_the_no_signal_note_follows_the_recorded_verdict(mock_sampler):
    """predict's note reads the fit's verdict both ways (that a real flat task gets it: test_slow_task.py)."""
    fit = _quiet(_task_table(flat=True, tasks=("flat",)), chance=0.2, task="task", seed=1, calibrate=False)
    fit.tree["tasks/t0"].attrs["signal"] = 1
    assert (fit.predict(N=7e9, D=1.4e11)["note"] == "").all()
    fit.tree["tasks/t0"].attrs["signal"] = 0
    assert (fit.predict(N=7e9, D=1.4e11)["note"] == NO_SIGNAL).all()


def test_has_signal_compares_the_rises_5_percent_quantile_with_one_runs_scatter():
    from bayescale.task_fit import has_signal

    rng = np.random.default_rng(0)
    scatter = np.full(4000, 0.02)
    assert has_signal(rng.normal(0.10, 0.01, 4000), scatter)  # q05 0.084 > 0.02
    assert not has_signal(rng.normal(0.03, 0.01, 4000), scatter)  # q05 0.014 < 0.02: within one run's noise
    assert not has_signal(rng.normal(0.10, 0.01, 4000), np.full(4000, 0.09))


def test_report_and_figure_of_a_task_fit(mock_sampler, tmp_path, capsys):
    import matplotlib

    matplotlib.use("Agg")
    from bayescale import plots

    fit = _quiet(_task_table(), chance=0.25, task="task", seed=1, calibrate=False)
    fig = plots.plot_task(fit, "hard", targets={"N": [7e10], "D": [1.4e12]})
    assert fig.axes[0].get_ylabel() == "accuracy"
    path = bs.write_report(fit, tmp_path / "task.html", targets=[(7e10, 1.4e12)])
    text = path.read_text()
    assert "The chain" in text and "Tasks without signal above chance" in text and "data:image/png;base64" in text


def test_optimal_of_a_task_fit_is_refused(mock_sampler, tmp_path, capsys):
    fit = _quiet(_task_table(), chance=0.25, task="task", seed=1, calibrate=False)
    path = fit.save(tmp_path / "task.nc")
    assert main(["optimal", str(path), "--compute", "1e23"]) == 2
    assert "is a task fit" in capsys.readouterr().err


def test_link_band_scale_holds_only_as_far_as_its_split_reached(mock_sampler):
    """Beyond the calibration split's reach in progress, the link keeps its own band (scale 1), as the loss does."""
    import xarray as xr

    table = _task_table().drop(columns="loss")
    fit = _quiet(table, chance=0.25, task="task", seed=1)
    node = fit._task("easy")
    u_max = float(np.log(6 * table["N"] * table["D"]).max())
    assert node.attrs["progress_max"] == pytest.approx(u_max)
    reach = float(node.attrs["calibration_reach"])
    assert reach >= 0.0
    C = np.exp([u_max - 1.0, u_max + reach + 1.0])  # inside the runs' progress; beyond the split's reach
    node["calibration"] = xr.Dataset({"z": ("heldout", np.full(30, 2.0))})  # bands 1.9 times too narrow
    calibrated = fit.predict(C=C, task="easy")
    node["calibration"] = xr.Dataset({"z": ("heldout", np.empty(0))})  # no evidence: scale 1 everywhere
    plain = fit.predict(C=C, task="easy")
    width = {name: (t["upper"] - t["lower"]).to_numpy() for name, t in (("calibrated", calibrated), ("plain", plain))}
    assert width["calibrated"][0] > 1.3 * width["plain"][0]
    np.testing.assert_allclose(
        calibrated[["lower", "median", "upper"]].iloc[1], plain[["lower", "median", "upper"]].iloc[1]
    )


def test_a_link_that_does_not_converge_gets_a_remedy_for_links(mock_sampler):
    """Links take no --prior: their remedy names what a task near chance implies, not a prior to set."""
    fit = _quiet(_task_table(), loss="loss", chance="chance", task="task", seed=1, calibrate=False)
    table = fit.tree["tasks/t0/diagnostics"].to_dataset()
    first = str(table["parameter"].to_numpy()[0])
    fit.tree["tasks/t0/diagnostics"] = table.assign(
        r_hat=table["r_hat"].copy(data=np.full(table.sizes["parameter"], 1.5))
    )
    message = fit.diagnostics.message()
    assert f"R-hat up to 1.500 (for {first}" in message
    assert "near chance" in message and f"give {first} a stronger prior" not in message
