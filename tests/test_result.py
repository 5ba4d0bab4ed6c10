"""Results: summary, predictions from draws, exact save/load round trip, atomic saves."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayescale as bs
from bayescale.datasets.simulate import DEMO_PARAMS
from bayescale.errors import FitFileError, PredictionError
from bayescale.laws import chinchilla
from bayescale.predict import predict_table
from bayescale.result import SUMMARY_COLUMNS


def test_summary_columns(real_fit):
    table = real_fit.summary(interval=0.9)
    assert list(table.columns) == SUMMARY_COLUMNS
    assert list(table["parameter"]) == ["E", "A", "B", "alpha", "beta", "sigma", "nu"]
    assert (table["lower"] <= table["median"]).all() and (table["median"] <= table["upper"]).all()
    wide = real_fit.summary(interval=0.99)
    assert (wide["upper"] - wide["lower"] > table["upper"] - table["lower"]).all()


def test_predict_columns_and_consistency(real_fit):
    pred = real_fit.predict(N=[7e10, 1e9], D=[1.4e12, 2e10], interval=0.9)
    assert list(pred.columns[:6]) == ["N", "D", "C", "median", "lower", "upper"]
    assert "mean" not in pred.columns  # a new run's loss has no mean under Student-t noise on log loss
    assert {"expected_median", "expected_mean", "expected_lower", "expected_upper"} <= set(pred.columns)
    np.testing.assert_allclose(pred["C"], 6 * pred["N"] * pred["D"])
    # a new run's band includes observation noise: it is wider than the law's
    assert ((pred["upper"] - pred["lower"]) > (pred["expected_upper"] - pred["expected_lower"])).all()
    # without the discrepancy, the expected-loss median is the law's at the posterior draws (numpy)
    draws = {k: real_fit.draws(k) for k in ("E", "A", "B", "alpha", "beta")}
    law = chinchilla.loss(7e10, 1.4e12, **draws)
    points = {"N": np.array([7e10]), "D": np.array([1.4e12]), "C": np.array([6 * 7e10 * 1.4e12])}
    law_only = predict_table(
        real_fit.law, real_fit._sampled(), real_fit.reference, points, 0.9, np.random.default_rng(0)
    )
    assert law_only.loc[0, "expected_median"] == pytest.approx(np.median(law), rel=1e-6)  # float32 draws
    # the demo ladder follows its law: the discrepancy moves the median by well under 1%
    assert pred.loc[0, "expected_median"] == pytest.approx(np.median(law), rel=0.01)


def test_predict_from_n_and_c_equals_n_and_d(real_fit):
    a = real_fit.predict(N=7e10, D=1.4e12)
    b = real_fit.predict(N=7e10, C=6 * 7e10 * 1.4e12)
    pd.testing.assert_frame_equal(a, b)


def test_predict_demo_truth_inside_band(real_fit):
    truth = chinchilla.loss(7e10, 1.4e12, **DEMO_PARAMS)
    row = real_fit.predict(N=7e10, D=1.4e12, interval=0.9).iloc[0]
    assert row["lower"] < truth < row["upper"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"N": -1, "D": 1e9}, "N must be positive"),
        ({"N": 1e9, "D": 0}, "D must be positive"),
        ({"N": np.nan, "D": 1e9}, "missing or infinite"),
        ({"N": 1e9}, "needs N and D; give D"),
        ({}, "give the points"),
        ({"N": [1e9, 2e9], "D": [1e9]}, "same length"),
    ],
)
def test_predict_bad_points(real_fit, kwargs, message):
    with pytest.raises(PredictionError, match=message):
        real_fit.predict(**kwargs)


def test_save_load_round_trip_is_exact(real_fit, real_fit_path):
    loaded = bs.load(real_fit_path)
    assert loaded.tree.attrs == real_fit.tree.attrs
    for group in real_fit.tree.children:
        xr.testing.assert_identical(loaded.tree[group].to_dataset(), real_fit.tree[group].to_dataset())
    pd.testing.assert_frame_equal(loaded.predict(N=7e10, D=1.4e12), real_fit.predict(N=7e10, D=1.4e12))
    pd.testing.assert_frame_equal(loaded.summary(), real_fit.summary())
    assert loaded.priors == real_fit.priors


def test_partial_load_predicts_alike_and_refuses_to_save(real_fit, real_fit_path, tmp_path):
    from bayescale.result import PREDICT_GROUPS

    partial = bs.load(real_fit_path, groups=PREDICT_GROUPS)
    assert "log_likelihood" not in partial.tree.children and "sample_stats" not in partial.tree.children
    assert {k: v for k, v in partial.tree.attrs.items() if k != "bayescale_partial_read"} == real_fit.tree.attrs
    pd.testing.assert_frame_equal(
        partial.predict(N=[7e10, 1e9], D=[1.4e12, 2e10]), real_fit.predict(N=[7e10, 1e9], D=[1.4e12, 2e10])
    )
    with pytest.raises(FitFileError, match="only some of its groups"):
        partial.save(tmp_path / "copy.nc")
    assert not (tmp_path / "copy.nc").exists()


def test_predictions_from_saved_fit_do_not_import_pymc(real_fit_path):
    code = (
        "import sys, bayescale as bs; f = bs.load(sys.argv[1]); f.predict(N=7e10, D=1.4e12); f.summary();"
        "bad = [m for m in ('pymc', 'pytensor', 'nutpie') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code, str(real_fit_path)], check=True)


def test_failed_save_leaves_existing_file(real_fit, tmp_path, monkeypatch):
    target = tmp_path / "fit.nc"
    target.write_bytes(b"precious")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", boom)
    with pytest.raises(OSError, match="disk full"):
        real_fit.save(target)
    assert target.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["fit.nc"]  # no temporary left behind


def test_load_errors(tmp_path):
    with pytest.raises(FitFileError, match="not found"):
        bs.load(tmp_path / "missing.nc")
    corrupt = tmp_path / "corrupt.nc"
    corrupt.write_bytes(b"\x89HDF\r\n garbage")
    with pytest.raises(FitFileError, match="not a readable fit file"):
        bs.load(corrupt)
    other = tmp_path / "other.nc"
    xr.DataTree.from_dict({"/x": xr.Dataset({"a": ("i", [1.0])})}).to_netcdf(other, engine="h5netcdf")
    with pytest.raises(FitFileError, match="not a bayescale fit"):
        bs.load(other)
