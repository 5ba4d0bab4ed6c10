"""Predictive draws: stratified common random numbers for the new-run noise."""

from __future__ import annotations

import numpy as np
import pytest


def test_stratified_uniforms_fill_every_stratum_once():
    from bayescale.predict import stratified_uniforms

    u = stratified_uniforms(1000, np.random.default_rng(3))
    assert ((u > 0) & (u < 1)).all()
    np.testing.assert_array_equal(np.sort(np.floor(u * 1000)), np.arange(1000))


def test_new_run_noise_quantiles_are_exact_to_the_stratum():
    """With the law's spread removed, a new run's band is the Student-t noise's, almost exactly."""
    from scipy import stats

    from bayescale.laws import get_law
    from bayescale.predict import log_draws

    law = get_law("power")
    S = 4000
    params = {"E": np.zeros(S), "gamma": np.full(S, 0.3), "log_T_ref": np.zeros(S), "sigma": np.full(S, 0.01)}
    params["nu"] = np.full(S, 3.0)
    points = {"N": np.array([1e9]), "D": np.array([2e10]), "C": np.array([1.2e20])}
    ref = {x: 20.0 for x in ("N", "D", "C")}
    for seed in range(3):
        log_law, log_new = next(log_draws(law, params, ref, points, np.random.default_rng(seed)))
        noise = (log_new - log_law)[:, 0]
        q = np.quantile(noise, [0.05, 0.95])
        np.testing.assert_allclose(q, 0.01 * stats.t.ppf([0.05, 0.95], 3.0), rtol=0.01)


@pytest.mark.parametrize("independent", [False, True])
def test_noise_is_shared_across_points_unless_independent(independent):
    """Common random numbers give one noise deviate per draw; ``independent`` one per draw and point."""
    from scipy import stats

    from bayescale.laws import get_law
    from bayescale.predict import log_draws

    law = get_law("power")
    S = 4000
    params = {"E": np.zeros(S), "gamma": np.full(S, 0.3), "log_T_ref": np.zeros(S), "sigma": np.full(S, 0.01)}
    params["nu"] = np.full(S, 5.0)
    points = {"N": np.array([1e9, 1e10]), "D": np.array([2e10, 2e11]), "C": np.array([1.2e20, 1.2e22])}
    ref = {x: 20.0 for x in ("N", "D", "C")}
    log_law, log_new = next(log_draws(law, params, ref, points, np.random.default_rng(0), independent=independent))
    noise = log_new - log_law
    corr = np.corrcoef(noise[:, 0], noise[:, 1])[0, 1]
    assert corr < 0.1 if independent else corr > 0.999
    q = np.quantile(noise[:, 1], [0.05, 0.95])  # each point's marginal is the Student-t noise either way
    np.testing.assert_allclose(q, 0.01 * stats.t.ppf([0.05, 0.95], 5.0), rtol=0.05)


def test_the_table_runs_blas_on_one_thread_while_its_own_threads_work(monkeypatch):
    """Chunks run on WORKERS threads; a multi-threaded BLAS inside them would oversubscribe the cores."""
    from threadpoolctl import threadpool_info

    from bayescale import predict

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads()
    if max(before, default=1) < 2:
        pytest.skip("BLAS runs on one thread here already: nothing to limit")
    seen: list[list[int]] = []

    def chunks():
        seen.append(blas_threads())
        yield np.zeros((4, 3), dtype=np.float32), np.zeros((4, 3), dtype=np.float32)

    monkeypatch.setattr(predict, "WORKERS", 2)
    points = {x: np.ones(3) for x in ("N", "D", "C")}
    table = predict.draws_table(chunks(), points, 0.9)
    assert len(table) == 3 and seen and all(n == 1 for n in seen[0])
    assert blas_threads() == before  # restored afterwards
