"""Model discrepancy: the Hilbert-space basis, its stationary limit, storage and its effect on bands."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale import discrepancy as disc
from bayescale.diagnostics import DiagnosticsWarning


def _domain(d: int = 2, n_basis: int = disc.N_BASIS) -> disc.Domain:
    return disc.Domain(("N", "D")[:d], center=(20.0, 23.0)[:d], half=(2.0, 3.0)[:d], n_basis=n_basis)


def _se_kernel(X: np.ndarray, ls: np.ndarray) -> np.ndarray:
    d2 = (((X[:, None, :] - X[None, :, :]) / ls) ** 2).sum(-1)
    return np.exp(-0.5 * d2)


def test_domain_round_trips_and_spans_the_runs(demo_runs):
    domain = disc.Domain.of_runs(demo_runs, ("N", "D"))
    assert disc.Domain.from_json(domain.to_json()) == domain
    lo, hi = demo_runs.log("N").min(), demo_runs.log("N").max()
    assert domain.center[0] == pytest.approx((lo + hi) / 2)
    assert domain.half[0] == pytest.approx((hi - lo) / 2)
    np.testing.assert_allclose(domain.L, disc.BOX * np.asarray(domain.half))


def test_half_range_is_floored_for_a_single_size():
    runs = bs.load_runs(pd.DataFrame({"N": [1e8, 1e8, 1e8], "D": [1e9, 2e9, 4e9], "loss": [3.0, 2.9, 2.8]}))
    assert disc.Domain.of_runs(runs, ("N", "D")).half[0] == disc.MIN_HALF_RANGE


def test_basis_reproduces_the_squared_exponential_kernel_inside_the_data():
    domain = _domain()
    rng = np.random.default_rng(0)
    X = np.asarray(domain.center) + rng.uniform(-1, 1, size=(40, 2)) * np.asarray(domain.half)
    ls = np.asarray(domain.half)  # the prior's median length-scale
    phi = domain.basis(X)
    spd = np.exp(disc.log_spectral_density(ls, domain.frequencies(), np))
    approx = (phi * spd) @ phi.T
    np.testing.assert_allclose(approx, _se_kernel(X, ls), atol=0.02)


def test_basis_is_zero_outside_the_box():
    domain = _domain()
    far = np.asarray(domain.center)[None, :] + np.array([[domain.L[0] + 0.1, 0.0], [0.0, -domain.L[1] - 5]])
    assert np.all(domain.basis(far) == 0)
    assert domain.basis(far).shape == (2, domain.n_basis**2)


def test_prior_draws_have_variance_eta_squared_everywhere():
    """Basis part plus top-up: Var delta(x) = eta^2 inside the data, at the box edge and far outside."""
    domain = _domain()
    S = 20000
    rng = np.random.default_rng(1)
    K = domain.n_basis**2
    params = {"eta": np.full(S, 0.03), "ls": np.tile(np.asarray(domain.half), (S, 1)), "z": rng.standard_normal((S, K))}
    c, L = np.asarray(domain.center), domain.L
    X = np.stack([c, c + 0.5 * np.asarray(domain.half), c + 0.97 * L, c + 3 * L])
    draws = disc.draws_at(domain, params, X, rng)
    np.testing.assert_allclose(draws.std(axis=0), 0.03, rtol=0.05)
    np.testing.assert_allclose(draws.mean(axis=0), 0.0, atol=0.002)


def test_far_from_the_runs_the_discrepancy_forgets_them():
    """A posterior draw with a large basis part still gives Normal(0, eta^2) beyond the box."""
    domain = _domain(d=1)
    S = 5000
    rng = np.random.default_rng(2)
    params = {"eta": np.full(S, 0.05), "ls": np.full((S, 1), 1.0), "z": np.full((S, domain.n_basis), 3.0)}
    near = disc.draws_at(domain, params, np.array([[domain.center[0]]]), rng)
    far = disc.draws_at(domain, params, np.array([[domain.center[0] + 2 * domain.L[0]]]), rng)
    assert abs(near.mean()) > 0.03  # the fitted misfit carries into the prediction near the runs
    assert abs(far.mean()) < 0.003 and far.std() == pytest.approx(0.05, rel=0.05)


def test_fit_stores_the_discrepancy(mock_sampler, demo_runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        result = bs.fit(demo_runs, seed=2)
        plain = bs.fit(demo_runs, seed=2, discrepancy=False)
    assert "discrepancy" in result.tree.children
    ds = result.tree["discrepancy"].to_dataset()
    assert set(ds.data_vars) == {*disc.PARAMS, "run_weight"}
    assert ds["z"].dims == ("chain", "draw", "basis") and ds.sizes["basis"] == disc.N_BASIS**2
    fitted = result.discrepancy
    assert fitted is not None and fitted.domain.inputs == ("N", "D")
    names = [str(p) for p in result.tree["diagnostics"]["parameter"].to_numpy()]
    assert {"delta_eta", "delta_ls", "delta_sigma"} <= set(names)
    assert plain.discrepancy is None and "discrepancy" not in plain.tree.children


def test_saved_fit_predicts_the_same_with_its_discrepancy(real_fit, real_fit_path):
    loaded = bs.load(real_fit_path)
    assert loaded.discrepancy is not None
    pd.testing.assert_frame_equal(real_fit.predict(N=7e10, D=1.4e12), loaded.predict(N=7e10, D=1.4e12))


def test_no_widening_where_the_law_holds(real_fit):
    """The demo ladder follows its law with independent noise: the discrepancy stays small."""
    post = real_fit.tree["discrepancy"].to_dataset()
    # the runs pull eta to under half its prior's 90% point (HalfNormal(0.02): 0.033); NUTS and importance
    # sampling both put this fit's 90% point near 0.010, its 95% point near 0.015
    prior_q90 = 1.645 * disc.default_priors()["eta"].kwargs["sigma"]
    assert float(np.quantile(post["eta"], 0.9)) < 0.5 * prior_q90
    from bayescale.predict import predict_table

    points = {"N": np.array([7e10]), "D": np.array([1.4e12]), "C": np.array([6 * 7e10 * 1.4e12])}
    rng = np.random.default_rng(0)
    plain = predict_table(real_fit.law, real_fit._sampled(), real_fit.reference, points, 0.9, rng)
    # the discrepancy's own widening (the band scale and the floor for the distance beyond the runs apart)
    args = (real_fit.law, real_fit._sampled(), real_fit.reference, points, 0.9, np.random.default_rng(0))
    full = predict_table(*args, real_fit.discrepancy)
    width_plain = float((plain["upper"] - plain["lower"]).iloc[0])
    width_full = float((full["upper"] - full["lower"]).iloc[0])
    assert width_full < 1.25 * width_plain


def test_one_input_laws_get_a_one_dimensional_discrepancy(mock_sampler, demo_runs):
    runs = bs.load_runs(pd.DataFrame({"C": demo_runs.values("C"), "loss": demo_runs.loss}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        result = bs.fit(runs, law="power:C", seed=3)
    assert result.discrepancy.domain.inputs == ("C",)
    assert result.tree["discrepancy"].to_dataset().sizes["basis"] == disc.N_BASIS
    pred = result.predict(C=[1e20, 1e24])
    assert np.isfinite(pred[["lower", "median", "upper"]].to_numpy()).all()


def _direct_marginal_logp(r, phi, eta, spd, d):
    """log Normal(r | 0, eta^2 Phi diag(spd) Phi' + diag(d)), written out in the run space."""
    cov = eta**2 * (phi * spd) @ phi.T + np.diag(d)
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (r @ np.linalg.solve(cov, r) + logdet + r.size * np.log(2 * np.pi))


@pytest.mark.parametrize("n", [6, 40])  # n < K: run space; n > K: Woodbury (K = 5^2 = 25)
def test_collapsed_likelihood_is_the_gaussian_marginal(n):
    rng = np.random.default_rng(n)
    dom = _domain(n_basis=5)
    X = np.column_stack([rng.uniform(18.5, 21.5, n), rng.uniform(21, 25, n)])
    r = rng.normal(0, 0.02, n)
    weights = rng.uniform(0.05, 1.2, n)
    model = disc.build_model(r, X, dom, disc.default_priors(), weights)
    point = model.initial_point()
    point |= {"eta_log__": np.log(0.015), "sigma_log__": np.log(0.01)}
    ls = disc.ls_floor(dom) + np.array([0.4, 0.6])  # the prior is truncated at the basis' floor
    value = model.rvs_to_values[model["ls"]]
    point[value.name] = model.rvs_to_transforms[model["ls"]].forward(ls, *model["ls"].owner.inputs).eval()
    graph = model.replace_rvs_by_values([model.potentials[0]])[0]
    potential = model.compile_fn(graph, inputs=model.value_vars, on_unused_input="ignore")(point)
    spd = np.exp(disc.log_spectral_density(ls, dom.frequencies(), np))
    expected = _direct_marginal_logp(r, dom.basis(X), 0.015, spd, 0.01**2 / weights)
    assert float(potential) == pytest.approx(expected, rel=1e-8)


def test_coefficient_draws_follow_their_gaussian_conditional():
    rng = np.random.default_rng(3)
    dom = _domain(n_basis=4)
    n, S = 12, 20_000
    X = np.column_stack([rng.uniform(18.5, 21.5, n), rng.uniform(21, 25, n)])
    r = rng.normal(0, 0.02, n)
    params = {"eta": np.full(S, 0.02), "ls": np.tile([1.5, 2.5], (S, 1)), "sigma": np.full(S, 0.01)}
    weights = rng.uniform(0.05, 1.2, n)
    z = disc.draw_coefficients(dom, X, r, params, np.random.default_rng(4), weights)
    phi = dom.basis(X)
    U = phi * 0.02 * np.exp(0.5 * disc.log_spectral_density(np.array([1.5, 2.5]), dom.frequencies(), np))
    Dinv = weights / 0.01**2
    precision = np.eye(U.shape[1]) + U.T @ (Dinv[:, None] * U)
    mean = np.linalg.solve(precision, U.T @ (Dinv * r))
    cov = np.linalg.inv(precision)
    se = np.sqrt(np.diag(cov) / S)
    assert np.all(np.abs(z.mean(0) - mean) < 5 * se)
    np.testing.assert_allclose(np.cov(z.T), cov, atol=0.05 * np.abs(cov).max())


def test_robust_pass_downweights_an_outlier_but_not_a_smooth_misfit():
    rng = np.random.default_rng(5)
    dom = disc.Domain(("N", "D"), center=(19.5, 23.0), half=(1.5, 2.0))
    n = 40
    X = np.column_stack([rng.uniform(18, 21, n), rng.uniform(21, 25, n)])
    smooth = 0.02 * np.tanh(2 * (X[:, 0] - 20.5))  # a structured departure of the largest sizes
    r = smooth + rng.normal(0, 0.002, n)
    r[7] += 0.08  # one diverged run
    out = disc.robust_pass(r, X, dom, disc.default_priors(), nu=5.0)
    assert out.weights[7] < 0.1
    others = np.delete(out.weights, 7)
    assert np.median(others) > 0.8
    assert disc.NU_BOUNDS[0] <= out.nu <= disc.NU_BOUNDS[1] and out.iterations >= 1


def test_robust_pass_keeps_a_noise_with_a_variance_when_a_few_runs_are_gross_outliers(monkeypatch):
    # Five runs 25-200 scatters off (diverged or over-trained runs) among 35 tight ones: the mode of nu
    # runs to 1 (Cauchy tails for every new run's band) unless nu keeps a variance; the outliers lose
    # their weight either way.
    rng = np.random.default_rng(3)
    dom = disc.Domain(("N", "D"), center=(19.5, 23.0), half=(1.5, 2.0))
    X = np.column_stack([rng.uniform(18, 21, 40), rng.uniform(21, 25, 40)])
    r = rng.normal(0, 0.002, 40)
    r[:5] += [0.05, 0.1, 0.2, 0.3, 0.4]
    out = disc.robust_pass(r, X, dom, disc.default_priors(), nu=5.0)
    assert out.nu >= 2.0
    assert np.all(out.weights[:5] < 0.01) and np.median(out.weights[5:]) > 0.8
    monkeypatch.setattr(disc, "NU_BOUNDS", (1.0, 100.0))  # the bound is what keeps it there
    assert disc.robust_pass(r, X, dom, disc.default_priors(), nu=5.0).nu < 1.5


def test_elbo_is_the_gaussian_marginal_when_nu_is_large():
    # With nu -> infinity the noise is Gaussian, q(tau) collapses on 1 and the bound is exact: the weighted
    # marginal likelihood at w = 1 plus the log hyperpriors.
    from scipy import stats

    rng = np.random.default_rng(2)
    dom = disc.Domain(("N", "D"), center=(19.5, 23.0), half=(1.5, 2.0))
    X = np.column_stack([rng.uniform(18, 21, 30), rng.uniform(21, 25, 30)])
    r = rng.normal(0, 0.01, 30)
    priors = disc.default_priors()
    phi = dom.basis(X)
    theta = np.concatenate([[np.log(0.02)], np.log(np.asarray(dom.half)), [np.log(0.01)]])
    nu = 1e7
    exact = disc.log_posterior(theta, r, X, dom, priors)[0] + stats.gamma.logpdf(nu, 2.0, scale=10.0)
    w = np.ones(30)
    assert disc.elbo(r, w, phi, dom, theta, nu, priors) == pytest.approx(exact, abs=1e-2)
    # at a small nu the bound is lower than the Gaussian marginal of the same weights would suggest, never NaN
    assert np.isfinite(disc.elbo(r, w, phi, dom, theta, 3.0, priors))


def test_best_robust_pass_leaves_a_bad_start_for_the_better_mode():
    # A start that calls the smoothly departing largest sizes outliers: EM from there can stay put, EM from
    # equal weights explains them by the GP; the pass kept is the one of higher bound, and it keeps their weight.
    rng = np.random.default_rng(5)
    dom = disc.Domain(("N", "D"), center=(19.5, 23.0), half=(1.5, 2.0))
    n = 40
    X = np.column_stack([rng.uniform(18, 21, n), rng.uniform(21, 25, n)])
    corner = X[:, 0] > 20.5
    r = 0.03 * np.tanh(2 * (X[:, 0] - 20.5)) * corner + rng.normal(0, 0.002, n)
    bad = np.where(corner, 0.01, 1.0)
    priors = disc.default_priors()
    passes = [disc.robust_pass(r, X, dom, priors, nu=5.0, weights=w) for w in (bad, None)]
    assert np.median(passes[0].weights[corner]) < 0.5  # the setting has two modes: the bad start stays in one
    best = disc.best_robust_pass(r, X, dom, priors, nu=5.0, starts=[bad, None])
    assert best.elbo == pytest.approx(max(p.elbo for p in passes))
    assert np.median(best.weights[corner]) > 0.5


@pytest.mark.parametrize("n", [6, 40])  # run space and basis space (K = 25)
def test_log_posterior_is_the_nuts_target_on_the_log_scale(n):
    rng = np.random.default_rng(10 + n)
    dom = _domain(n_basis=5)
    X = np.column_stack([rng.uniform(18.5, 21.5, n), rng.uniform(21, 25, n)])
    r = rng.normal(0, 0.02, n)
    weights = rng.uniform(0.05, 1.2, n)
    priors = disc.default_priors()
    model = disc.build_model(r, X, dom, priors, weights)
    logp = model.compile_logp(jacobian=False)  # the density of eta, ls, sigma themselves
    floor = disc.ls_floor(dom)
    thetas = np.array(
        [
            [np.log(0.015), *np.log(floor + np.array([0.4, 0.6])), np.log(0.01)],
            [np.log(0.004), *np.log(floor + np.array([1.5, 0.2])), np.log(0.03)],
            [np.log(0.05), *np.log(floor + np.array([0.1, 2.0])), np.log(0.02)],
        ]
    )
    ours = disc.log_posterior(thetas, r, X, dom, priors, weights)
    theirs = []
    for t in thetas:
        point = {}
        for name, value in (("eta", np.exp(t[0])), ("ls", np.exp(t[1:-1])), ("sigma", np.exp(t[-1]))):
            rv = model[name]
            point[model.rvs_to_values[rv].name] = model.rvs_to_transforms[rv].forward(value, *rv.owner.inputs).eval()
        theirs.append(float(logp(point)) + float(np.sum(t)))  # + log |d(eta, ls, sigma) / d theta|
    # equal up to the prior's normalising constants
    np.testing.assert_allclose(ours - ours[0], np.array(theirs) - theirs[0], atol=1e-8)
    below = thetas[:1].copy()
    below[0, 1] = np.log(floor[0]) - 0.1
    assert disc.log_posterior(below, r, X, dom, priors, weights)[0] == -np.inf


def test_em_densities_are_scipys():
    from scipy import stats

    e = np.random.default_rng(0).exponential(1e-4, 50)
    for nu, sigma in ((1.5, 0.01), (30.0, 0.003)):
        expected = np.sum(stats.t.logpdf(np.sqrt(e), nu, scale=sigma))
        assert disc._student_t_log_likelihood(e / sigma**2, nu, sigma) == pytest.approx(expected, rel=1e-12)
        nu_prior = disc.to_scipy(disc.default_priors()["nu"])  # the EM's prior of nu: Gamma(2, rate 0.1)
        assert nu_prior.logpdf(nu) == pytest.approx(stats.gamma.logpdf(nu, 2.0, scale=10.0), rel=1e-12)


@pytest.mark.parametrize("n", [10, 300])
def test_collapsed_posterior_gradient_is_exact(n):
    from scipy.optimize import approx_fprime

    rng = np.random.default_rng(n)
    dom = disc.Domain(("N", "D"), center=(19.5, 23.0), half=(1.5, 2.0))
    X = np.column_stack([rng.uniform(18, 21, n), rng.uniform(21, 25, n)])
    r = 0.02 * np.sin(X[:, 0] - 20) + rng.normal(0, 0.005, n)
    post = disc.CollapsedPosterior(r, X, dom, disc.default_priors(), rng.uniform(0.1, 1.2, n))
    floor = np.log(disc.ls_floor(dom))
    for theta in ([np.log(0.02), floor[0] + 0.5, floor[1] + 0.3, np.log(0.01)], [-6.0, floor[0] + 2, floor[1], -5.3]):
        theta = np.array(theta)
        value, grad = post.value_and_grad(theta)
        assert value == pytest.approx(post(theta)[0], rel=1e-10)
        numeric = approx_fprime(theta + np.array([0, 0, 1e-5, 0]), lambda t: post(t)[0], 1e-6)
        np.testing.assert_allclose(grad, numeric, rtol=1e-3, atol=1e-3 * np.abs(numeric).max())
    below = np.array([-4.0, floor[0] - 0.1, floor[1], -4.0])
    assert post.value_and_grad(below)[0] == -np.inf


def test_importance_draws_of_the_hyperparameters_match_their_posterior():
    rng = np.random.default_rng(21)
    dom = _domain(n_basis=5)
    n = 30
    X = np.column_stack([rng.uniform(18.5, 21.5, n), rng.uniform(21, 25, n)])
    r = 0.02 * np.sin(X[:, 0] - 20) + rng.normal(0, 0.005, n)
    priors = disc.default_priors()
    start = np.array([np.log(0.01), *np.log(np.asarray(dom.half)), np.log(0.01)])
    params, draws = disc.sample_hyperparameters(r, X, dom, priors, None, start, 4000, np.random.default_rng(3))
    assert draws.ok and draws.ess > 1000
    assert params["eta"].shape == (4000,) and params["ls"].shape == (4000, 2)
    assert np.all(params["ls"] >= disc.ls_floor(dom))
    # against a dense quadrature of the same posterior over (log eta, log sigma) at the draws' median ls
    ls = np.median(params["ls"], axis=0)
    grid = np.linspace(-8, 0, 121)
    E, S = np.meshgrid(grid, grid, indexing="ij")
    theta = np.column_stack([E.ravel(), np.tile(np.log(ls), (E.size, 1)), S.ravel()])
    lp = disc.log_posterior(theta, r, X, dom, priors, None).reshape(E.shape)
    w = np.exp(lp - lp.max())
    mean_log_sigma = float((w * S).sum() / w.sum())
    assert np.mean(np.log(params["sigma"])) == pytest.approx(mean_log_sigma, abs=0.1)


def test_fit_falls_back_to_nuts_when_importance_weights_fail(mock_sampler, demo_runs, monkeypatch):
    from bayescale import importance

    calls = []
    original = importance.sample

    def failing(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append(out)
        return importance.ImportanceDraws(out.draws, khat=1.5, ess=3.0, proposals=out.proposals)

    monkeypatch.setattr(importance, "sample", failing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiagnosticsWarning)
        result = bs.fit(demo_runs, seed=2, calibrate=False, retry=False)
    assert calls
    table = result.tree["diagnostics"].to_dataset()
    khat = table["khat"].sel(parameter="delta_eta")
    assert np.isnan(float(khat))  # the NUTS fallback's row: chains, no importance weights


def test_fit_samples_the_discrepancy_by_importance_when_it_can(real_fit):
    """The real demo fit: its discrepancy by importance sampling (khat, no R-hat), not the NUTS fallback."""
    table = real_fit.tree["diagnostics"].to_dataset()
    delta = [p for p in table["parameter"].to_numpy() if str(p).startswith("delta_")]
    assert {"delta_eta", "delta_ls"} <= set(delta)
    table = table.sel(parameter=delta)
    assert np.isfinite(table["khat"]).all() and (table["khat"] <= 0.7).all()
    assert np.isnan(table["r_hat"]).all() and (table["ess_bulk"] > 0).all()


def test_the_written_out_hyperprior_is_scipys_density():
    """_log_prior (with its hand-written gradient) is the density of the default priors, up to a constant."""
    from bayescale.priors import Prior, to_scipy

    dom = disc.Domain(("N", "D"), center=(19.5, 23.0), half=(1.5, 2.0))
    priors = disc.default_priors()
    rng = np.random.default_rng(0)
    theta = rng.normal([-4.0, 0.3, 0.6, -3.5], 0.8, size=(50, 4))  # log eta, log ls_N, log ls_D, log sigma

    def scipy_log_prior(t):
        out = to_scipy(priors["eta"]).logpdf(np.exp(t[0])) + t[0] + to_scipy(priors["sigma"]).logpdf(np.exp(t[-1]))
        out += t[-1]
        for i, half in enumerate(dom.half):  # log ls ~ Normal(log half + mu, sigma): LogNormal(ls) x ls
            ls = Prior("LogNormal", mu=np.log(half) + priors["ls"].kwargs["mu"], sigma=priors["ls"].kwargs["sigma"])
            out += to_scipy(ls).logpdf(np.exp(t[1 + i])) + t[1 + i]
        return out

    ours = disc._log_prior(theta, dom, priors)
    theirs = np.array([scipy_log_prior(t) for t in theta])
    np.testing.assert_allclose(ours - ours[0], theirs - theirs[0], atol=1e-9)
    step = 1e-6
    for k in range(4):  # the gradient is the density's
        e = np.zeros(4)
        e[k] = step
        numeric = (disc._log_prior(theta[0] + e, dom, priors) - disc._log_prior(theta[0] - e, dom, priors)) / (2 * step)
        assert disc._log_prior_grad(theta[0], dom, priors)[k] == pytest.approx(numeric, rel=1e-5, abs=1e-6)
    with pytest.raises(ValueError, match="eta prior must be HalfNormal"):
        disc._log_prior(theta[0], dom, priors | {"eta": Prior("Exponential", lam=50.0)})


def _regime_runs(rng: np.random.Generator, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Runs on a (log N, log D) grid and a law's fitted log loss that falls with both."""
    X = np.column_stack([rng.uniform(18, 21, n), rng.uniform(21, 25, n)])
    return X, 3.0 - 0.1 * (X[:, 0] - 18) - 0.05 * (X[:, 1] - 21)


def test_regime_axis_runs_from_the_best_runs_to_the_worst_and_stops_there():
    X, fitted = _regime_runs(np.random.default_rng(0))
    regime = disc.Regime.of_runs(X, fitted, gamma=2.0)
    u = regime.position(X)
    assert u[np.argmin(fitted)] == pytest.approx(0.0) and u[np.argmax(fitted)] == pytest.approx(1.0)
    beyond = np.array([[23.0, 26.0], [16.0, 19.0]])  # a much larger model; a much smaller one
    np.testing.assert_allclose(regime.amplitude(beyond), [1.0, np.exp(2.0)])
    domain = disc.Domain(("N", "D"), center=(19.5, 23.0), half=(1.5, 2.0), regime=regime)
    assert disc.Domain.from_json(domain.to_json()) == domain
    old = json.dumps({k: v for k, v in json.loads(domain.to_json()).items() if k != "regime"})
    assert disc.Domain.from_json(old).regime is None  # fits saved before: a stationary GP


def test_prior_draws_have_the_regimes_amplitude_inside_and_beyond_the_box():
    X, fitted = _regime_runs(np.random.default_rng(1))
    regime = disc.Regime.of_runs(X, fitted, gamma=1.5)
    domain = disc.Domain(("N", "D"), center=(19.5, 23.0), half=(1.5, 2.0), regime=regime)
    S, rng = 20000, np.random.default_rng(2)
    params = {
        "eta": np.full(S, 0.02),
        "ls": np.tile(np.asarray(domain.half), (S, 1)),
        "z": rng.standard_normal((S, domain.n_basis**2)),
    }
    points = np.array([X[np.argmin(fitted)], X[np.argmax(fitted)], [30.0, 35.0]])
    draws = disc.draws_at(domain, params, points, rng)
    np.testing.assert_allclose(draws.std(axis=0), 0.02 * regime.amplitude(points), rtol=0.05)


def test_choose_regime_finds_misfit_confined_to_the_worst_runs():
    rng = np.random.default_rng(3)
    X, fitted = _regime_runs(rng, 80)
    dom = disc.Domain(("N", "D"), center=(19.5, 23.0), half=(1.5, 2.0))
    u = disc.Regime.of_runs(X, fitted).position(X)
    worst = 0.05 * np.sin(3 * X[:, 0]) * u**2  # a misfit that only the most under-trained runs show
    chosen, _ = disc.choose_regime(worst + rng.normal(0, 0.002, 80), X, dom, disc.default_priors(), 5.0, [None], fitted)
    assert chosen.regime.gamma >= 2.0
    even = 0.02 * np.sin(3 * X[:, 0]) + rng.normal(0, 0.002, 80)  # the same misfit everywhere
    chosen, _ = disc.choose_regime(even, X, dom, disc.default_priors(), 5.0, [None], fitted)
    assert chosen.regime.gamma <= 1.0
