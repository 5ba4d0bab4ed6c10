"""Compile once: everything a law's model takes from its runs is data; one build per structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayescale as bs
from bayescale import compiled
from bayescale.laws import get_law
from bayescale.model import build_model, constants, model_data, resolve_priors, structure
from bayescale.priors import Prior


def _runs(n: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    N = np.geomspace(1e7, 1e9, n)
    D = 20 * N * np.exp(rng.uniform(-1, 1, n))
    loss = 1.8 + 400 / N**0.34 + 2000 / D**0.36
    return bs.load_runs(pd.DataFrame({"N": N, "D": D, "loss": loss * np.exp(rng.normal(0, 0.01, n))}))


@pytest.mark.parametrize("prior_set", ["weak", "literature"])
def test_model_data_names_every_data_container_of_the_model(prior_set):
    law, runs = get_law("chinchilla"), _runs()
    priors = resolve_priors(law, runs, None, prior_set)
    model = build_model(law, runs, priors)
    values = model_data(law, runs, priors)
    assert set(values) == {v.name for v in model.data_vars}
    np.testing.assert_allclose(values["log_loss_observed"], np.log(runs.loss))
    np.testing.assert_allclose(values["log_inputs"], np.stack([runs.log("N"), runs.log("D")]))
    named = constants(law, runs, priors)
    assert named["ref_N"] == pytest.approx(np.mean(runs.log("N")))
    np.testing.assert_allclose(values["constants"], list(named.values()))
    assert len(model.data_vars) == 3  # nutpie's compile time grows with the number of containers


def test_structure_ignores_the_data_and_sees_families_and_fixed_values():
    law = get_law("chinchilla")
    a, b = _runs(12, 0), _runs(7, 1)
    pa, pb = resolve_priors(law, a), resolve_priors(law, b)
    assert structure(law, pa) == structure(law, pb)  # other runs, other data-scaled values: same build
    assert pa["E"].kwargs != pb["E"].kwargs
    other = dict(pa) | {"alpha": Prior("Normal", mu=0.3, sigma=0.1)}
    assert structure(law, other) != structure(law, pa)
    fixed1, fixed2 = dict(pa) | {"nu": Prior("Constant", value=5.0)}, dict(pa) | {"nu": Prior("Constant", value=7.0)}
    assert structure(law, fixed1) != structure(law, fixed2)
    assert structure(get_law("kaplan"), resolve_priors(get_law("kaplan"), a)) != structure(law, pa)


def test_a_structure_is_compiled_once_then_its_data_swapped(monkeypatch):
    import dataclasses

    builds, swaps = [], []

    @dataclasses.dataclass(frozen=True)
    class Fake:
        initial_point_func: object = None

        def with_data(self, **values):
            swaps.append(values)
            return self

    def fake_compile(model, what="model"):
        builds.append(model)
        return Fake()

    monkeypatch.setattr(compiled.model_cache, "compile_model", fake_compile)
    starts = []  # the models the swaps take their chains' initial points from
    monkeypatch.setattr(compiled, "initial_point_function", lambda model, first: starts.append(model))
    compiled.clear()
    law = get_law("chinchilla")
    a, b = _runs(12, 0), _runs(7, 1)
    compiled.law_model(law, a, resolve_priors(law, a))
    compiled.law_model(law, b, resolve_priors(law, b))
    assert len(builds) == 1 and len(swaps) == 1
    np.testing.assert_allclose(swaps[0]["log_loss_observed"], np.log(b.loss))
    assert swaps[0]["log_inputs"].shape == (2, 7)
    assert len(starts) == 1  # ... from a model built on b's runs, not the compiled one's (a's)
    observed = {v.name: v.get_value() for v in starts[0].data_vars}["log_loss_observed"]
    np.testing.assert_allclose(observed, np.log(b.loss))
    assert len(builds) == 1
    compiled.law_model(law, a, resolve_priors(law, a, prior_set="weak") | {"alpha": Prior("Normal", mu=0.3, sigma=0.1)})
    assert len(builds) == 2
    compiled.clear()


def test_numpy_log_likelihood_is_the_models(mock_sampler, demo_runs):
    import pymc as pm

    from bayescale.sampling import log_likelihood

    fit = bs.fit(demo_runs, seed=3, discrepancy=False, calibrate=False, retry=False)
    law, priors = fit.law, fit.priors
    model = build_model(law, fit.runs, priors)
    free = [rv.name for rv in model.free_RVs]
    post = fit.tree["posterior"].to_dataset()[free].isel(draw=slice(0, 20))
    tree = pm.compute_log_likelihood(
        xr.DataTree.from_dict({"posterior": post}), model=model, progressbar=False, extend_inferencedata=False
    )
    expected = tree["log_loss"].to_numpy()
    ours = log_likelihood(law, fit.runs, post, priors)["log_loss"].to_numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)


def test_a_swapped_model_starts_its_chains_where_a_fresh_compile_of_its_runs_would():
    """The initial points follow the new runs (nutpie's ``with_data`` alone keeps the first runs')."""
    import nutpie

    law = get_law("chinchilla")
    a, b = _runs(12, 0), _runs(7, 1)
    pa, pb = resolve_priors(law, a), resolve_priors(law, b)
    compiled.clear()
    compiled.law_model(law, a, pa)  # compiled for a
    swapped = compiled.law_model(law, b, pb)  # a's build, b's data
    fresh = nutpie.compile_pymc_model(build_model(law, b, pb))
    for seed in (0, 7):
        np.testing.assert_array_equal(swapped.initial_point_func(seed), fresh.initial_point_func(seed))
    stale = compiled._CACHE[structure(law, pa)].initial_point_func(0)  # what with_data alone would start from
    assert not np.array_equal(stale, fresh.initial_point_func(0))
    compiled.clear()
