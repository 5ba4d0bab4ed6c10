"""Pooled fits of several ladders: input checks, the hierarchical model, per-group answers, contrasts."""

from __future__ import annotations

import types
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

import bayescale as bs
from bayescale import pooling
from bayescale.cli import main
from bayescale.diagnostics import DiagnosticsWarning
from bayescale.errors import GroupError, PriorError, RunsError
from bayescale.laws import get_law
from bayescale.model import resolve_priors
from bayescale.pooled import PooledFit


def _quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)  # mocked draws are not a converged posterior
        return bs.fit(*args, **kwargs)


SCIPY = types.SimpleNamespace(exp=np.exp, erfc=special.erfc, erfcinv=special.erfcinv)


def _ladder(seed: int, n: int = 12, E: float = 1.8, alpha: float = 0.34) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(2e7), np.log(1e9), n))
    D = N * np.exp(rng.uniform(np.log(5), np.log(80), n))
    loss = (E + 400 * N**-alpha + 410 * D**-0.28) * np.exp(rng.normal(0, 0.01, n))
    return pd.DataFrame({"N": N, "D": D, "loss": loss})


def _groups(*specs) -> pd.DataFrame:
    return pd.concat([_ladder(i, **spec).assign(mix=f"mix{i}") for i, spec in enumerate(specs)], ignore_index=True)


@pytest.mark.parametrize(
    "dist, kwargs, frozen",
    [
        ("Normal", {"mu": 0.4, "sigma": 1.2}, stats.norm(0.4, 1.2)),
        ("LogNormal", {"mu": -1.2, "sigma": 0.6}, stats.lognorm(0.6, scale=np.exp(-1.2))),
        ("HalfNormal", {"sigma": 0.05}, stats.halfnorm(scale=0.05)),
        ("Uniform", {"lower": 0.1, "upper": 0.9}, stats.uniform(0.1, 0.8)),
        (
            "TruncatedNormal",
            {"mu": 1.4, "sigma": 0.8, "lower": 0.0, "upper": 2.4},
            stats.truncnorm(-1.4 / 0.8, 1.0 / 0.8, loc=1.4, scale=0.8),
        ),
    ],
)
def test_quantile_map_is_the_priors_inverse_cdf(dist, kwargs, frozen):
    """theta = F^-1(Phi(w)): with w ~ N(0, 1), theta has the group's own prior."""
    w = np.linspace(-2.5, 2.5, 11)
    np.testing.assert_allclose(pooling.quantile(dist, kwargs, w, SCIPY), frozen.ppf(stats.norm.cdf(w)), rtol=1e-9)


def test_unpoolable_prior_is_refused():
    with pytest.raises(PriorError, match="cannot use a Gamma prior"):
        pooling.quantile("Gamma", {"alpha": 2.0, "beta": 1.0}, 0.0, SCIPY)


def test_load_groups_splits_in_order_of_appearance(tmp_path):
    path = tmp_path / "runs.csv"
    _groups({}, {}).to_csv(path, index=False)
    groups = pooling.load_groups(path, "mix")
    assert list(groups) == ["mix0", "mix1"] and [len(r) for r in groups.values()] == [12, 12]


@pytest.mark.parametrize(
    "column, edit, message",
    [
        ("family", None, "no group column 'family'"),
        ("mix", lambda t: t.assign(mix="mix0"), "one value"),
        ("mix", lambda t: t.iloc[:13], "group 'mix1' .* has 1 run"),
        ("mix", lambda t: t.assign(mix=t["mix"].where(t.index != 3, "")), "row 4 is empty"),
    ],
)
def test_bad_group_input_names_the_fault(tmp_path, column, edit, message):
    table = _groups({}, {})
    table = edit(table) if edit else table
    path = tmp_path / "runs.csv"
    table.to_csv(path, index=False)
    with pytest.raises(RunsError, match=message):
        pooling.load_groups(path, column)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--group", "family"], "no group column 'family'"),
        (["--group", "mix", "--law", "chinchilla"], "has 1 run"),
    ],
)
def test_cli_bad_group_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    path = tmp_path / "runs.csv"
    _groups({}, {}).iloc[:13].to_csv(path, index=False)
    out = tmp_path / "fit.nc"
    assert main(["fit", str(path), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bayescale: error:")
    assert pytest.importorskip("re").search(message, err[0])
    assert not out.exists()


def test_pooled_model_has_population_offsets_and_group_parameters():
    table = _groups({}, {}, {"n": 6})
    groups = pooling.load_groups(table, "mix")
    law = get_law("chinchilla")
    resolved = {g: resolve_priors(law, r, None, "weak") for g, r in groups.items()}
    model = pooling.build_model(law, groups, resolved)
    names = {v.name for v in model.free_RVs}
    # exponents from a population; E and the amplitudes each group's own, under its own prior
    assert {"alpha_mu", "alpha_tau", "alpha_z", "beta_mu", "E", "log_A_ref", "sigma", "nu"} <= names
    assert not {"E_mu", "log_A_ref_tau"} & names
    assert model.named_vars_to_dims["alpha"] == ("group",) and model.named_vars_to_dims["E"] == ("group",)
    assert list(model.coords["group"]) == ["mix0", "mix1", "mix2"]
    # each group's E is bounded by its own smallest loss
    arguments = pooling.model_data(law, groups, resolved)["prior_arguments"]
    columns, _ = pooling.prior_table(law, resolved)
    np.testing.assert_allclose(arguments[:, columns.index("E__upper")], [r.loss.min() for r in groups.values()])
    ip = model.initial_point()
    assert np.isfinite(model.compile_logp()(ip))


def test_pooled_fit_structure_with_mocked_sampler(mock_sampler, tmp_path):
    table = _groups({}, {"alpha": 0.3}, {"n": 6})
    result = _quiet_fit(table, law="chinchilla", group="mix", draws=200, tune=50, seed=3, calibrate=True)
    assert isinstance(result, PooledFit) and result.names == ["mix0", "mix1", "mix2"]
    summary = result.summary()
    assert summary["group"].unique().tolist() == ["mix0", "mix1", "mix2"]
    assert "alpha" in set(summary["parameter"])
    pred = result.predict(N=7e10, D=1.4e12, group="mix1")
    assert pred["group"].tolist() == ["mix1"] and (pred["lower"] <= pred["upper"]).all()
    # the groups' draws are joint: the same draw of the shared noise tail in every group
    np.testing.assert_array_equal(result.group("mix0").draws("nu"), result.group("mix2").draws("nu"))
    assert not np.array_equal(result.group("mix0").draws("sigma"), result.group("mix2").draws("sigma"))
    assert "alpha_tau" in result.population
    # each group's calibration holds what the growth of the misfit beyond the runs is learned from
    held = result.group("mix1").tree["calibration"].to_dataset()
    assert {"z", "halfwidth", "distance_N", "distance_D", "C"} == set(held.data_vars)
    assert result.group("mix1")._scale_growth[2] == ("N", "D")
    path = result.save(tmp_path / "pooled.nc")
    loaded = bs.load(path)
    assert isinstance(loaded, PooledFit) and loaded.names == result.names
    pd.testing.assert_frame_equal(loaded.predict(N=7e10, D=1.4e12), result.predict(N=7e10, D=1.4e12))
    with pytest.raises(GroupError, match=r"no group 'mix9'.*groups: mix0, mix1, mix2"):
        result.group("mix9")


def test_contrast_table_and_errors(mock_sampler):
    table = _groups({}, {})
    result = _quiet_fit(table, law="chinchilla", group="mix", draws=200, tune=50, seed=4, calibrate=False)
    out = result.contrast("mix0", "mix1", N=[7e10, 1e9], D=[1.4e12, 2e10], compute=1e21)
    assert out["quantity"].tolist()[:2] == ["loss_difference", "loss_difference"]
    assert {"a_difference", "tokens_per_param_difference", "crossover_compute"} <= set(out["quantity"])
    assert out["probability"].between(0, 1).all()
    with pytest.raises(GroupError, match="no group 'mix7'"):
        result.contrast("mix0", "mix7", N=7e10, D=1.4e12)
    with pytest.raises(GroupError, match="itself"):
        result.contrast("mix0", "mix0", N=7e10, D=1.4e12)


def test_cli_group_value_on_a_single_fit_is_an_error(real_fit_path, capsys):
    assert main(["predict", str(real_fit_path), "--N", "7e10", "--D", "1.4e12", "--group-value", "a"]) == 2
    assert "not a pooled fit" in capsys.readouterr().err


def test_cli_contrast_of_a_single_fit_is_an_error(real_fit_path, capsys):
    assert main(["contrast", str(real_fit_path), "--a", "x", "--b", "y", "--N", "7e10", "--D", "1.4e12"]) == 2
    assert "not a pooled fit" in capsys.readouterr().err


def test_cli_pooled_fit_then_per_group_answers_and_contrast(mock_sampler, tmp_path, capsys):
    import io

    path = tmp_path / "runs.csv"
    _groups({}, {"alpha": 0.3}).to_csv(path, index=False)
    out = tmp_path / "pooled.nc"
    args = ["fit", str(path), "--group", "mix", "--out", str(out), "--draws", "200", "--tune", "50", "--no-calibrate"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)  # mocked draws
        assert main(args) == 0
    capsys.readouterr()
    assert main(["predict", str(out), "--N", "7e10", "--D", "1.4e12", "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert table["group"].tolist() == ["mix0", "mix1"]
    assert main(["summary", str(out), "--group-value", "mix1", "--format", "csv"]) == 0
    assert set(pd.read_csv(io.StringIO(capsys.readouterr().out))["group"]) == {"mix1"}
    assert (
        main(["contrast", str(out), "--a", "mix1", "--b", "mix0", "--N", "70B", "--D", "1.4T", "--format", "json"]) == 0
    )
    rows = pd.read_json(io.StringIO(capsys.readouterr().out))
    assert rows["quantity"].iloc[0] == "loss_difference"
    assert main(["contrast", str(out), "--a", "mix1", "--b", "mixX", "--N", "70B", "--D", "1.4T"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no group 'mixX'" in err[0]
    assert main(["predict", str(out), "--N", "7e10", "--D", "1.4e12", "--group-value", "nope"]) == 2


def test_rank_and_group_figure(mock_sampler):
    from bayescale import plots

    table = _groups({}, {}, {})
    result = _quiet_fit(table, law="chinchilla", group="mix", draws=200, tune=50, seed=6, calibrate=False)
    ranking = result.rank(N=7e9, D=1.4e11)
    assert sorted(ranking["group"]) == ["mix0", "mix1", "mix2"]
    assert ranking["p_best"].sum() == pytest.approx(1.0) and ranking["mean_rank"].is_monotonic_increasing
    fig = plots.plot_groups(result, "mix1", "mix0")
    assert len(fig.axes) == 2 and "mix1 - mix0" in fig.axes[1].get_ylabel()


def test_report_of_a_pooled_fit(mock_sampler, tmp_path):
    table = _groups({}, {})
    result = _quiet_fit(table, law="chinchilla", group="mix", draws=200, tune=50, seed=8, calibrate=False)
    path = bs.write_report(result, tmp_path / "pooled.html")
    text = path.read_text()
    assert "Ranking at N" in text and "Contrast: mix0 against mix1" in text and "data:image/png;base64" in text
    md = bs.write_report(result, tmp_path / "pooled.md", fmt="md")
    assert "## Exponents per group" in md.read_text()


@pytest.mark.parametrize("kwargs, message", [({"target_accept": 1.5}, "target_accept"), ({"draws": 0}, "draws")])
def test_pooled_fit_checks_its_sampler_settings_as_a_single_fit_does(kwargs, message):
    from bayescale.errors import BayescaleError

    with pytest.raises(BayescaleError, match=message):
        bs.fit(_groups({}, {}), law="chinchilla", group="mix", **kwargs)
