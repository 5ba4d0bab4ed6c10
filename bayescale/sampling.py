"""Where sampling happens: run NUTS (nutpie by default), check diagnostics, build the result."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayescale.data import Runs, load_runs
from bayescale.diagnostics import compute_table, importance_table
from bayescale.errors import BayescaleError
from bayescale.laws import Law, law_for
from bayescale.model import NOISE_PARAMS, build_model, check_identifiable, resolve_priors
from bayescale.priors import PriorLike, priors_to_json
from bayescale.result import ScalingFit
from bayescale.storage import MARKER

log = logging.getLogger("bayescale")

SAMPLERS = ("nutpie", "pymc")
#: target_accept of the automatic second attempt at a stage whose diagnostics failed.
RETRY_TARGET_ACCEPT = 0.99
#: ...and its thinning: at least twice the draws, every second one kept (same stored draws, about twice
#: the ESS); more where the first attempt's effective sample size fell further short (see _retry_thin).
RETRY_THIN = 2
#: The most the retry thins by (its cost grows with it: sampling is seconds on a small ladder).
RETRY_MAX_THIN = 8

#: Runs per piece of the per-run evaluations over all draws (pointwise log-likelihood, the
#: discrepancy's residuals): 4,000 draws x 256 runs, 8 MB per temporary.
LOG_LIKELIHOOD_CHUNK = 256


def _varying(post: xr.Dataset, names: list[str]) -> list[str]:
    """The ``names`` whose draws vary: a fixed parameter has no convergence to check."""
    return [n for n in names if n in post and np.ptp(post[n].to_numpy()) > 0]


def _stage_ok(idata: xr.DataTree, names: list[str], chains: int, draws: int) -> bool:
    """Whether one stage's draws pass the diagnostics (R-hat, bulk/tail ESS, no divergences)."""
    from bayescale.diagnostics import assess

    stats = idata["sample_stats"].to_dataset() if "sample_stats" in idata.children else None
    divergences = int(stats["diverging"].sum()) if stats is not None and "diverging" in stats else 0
    post = idata["posterior"].to_dataset()
    return assess(compute_table(post, _varying(post, names)), divergences, chains, draws).ok


def _retry_thin(idata: xr.DataTree, names: list[str], chains: int) -> int:
    """How much the retry thins: enough extra draws for twice the effective sample size the checks need.

    From the first attempt's smallest bulk or tail ESS: ``ceil(2 x needed / observed)``,
    between :data:`RETRY_THIN` and :data:`RETRY_MAX_THIN`.
    """
    from bayescale.diagnostics import MIN_ESS_PER_CHAIN

    post = idata["posterior"].to_dataset()
    names = _varying(post, names)
    if not names:
        return RETRY_THIN
    table = compute_table(post, names)
    ess = float(np.nanmin(np.minimum(table["ess_bulk"].to_numpy(), table["ess_tail"].to_numpy())))
    need = 2.0 * MIN_ESS_PER_CHAIN * chains
    thin = int(np.ceil(need / ess)) if np.isfinite(ess) and ess > 0 else RETRY_MAX_THIN
    return int(np.clip(thin, RETRY_THIN, RETRY_MAX_THIN))


def _as_runs(runs: Runs | pd.DataFrame | str | Path) -> Runs:
    return runs if isinstance(runs, Runs) else load_runs(runs)


def warn_unused_unique_tokens(runs: Runs, law: Law) -> None:
    """Say on stderr (once per fit, from :func:`bayescale.pipeline.fit`) when the runs give U and the law ignores it."""
    if runs.has("U") and "U" not in law.inputs:
        log.warning(
            "the runs give unique tokens U but law %s ignores them%s; fit --law data-constrained to use them",
            law.name,
            " (some runs repeat data)" if (runs.has("D") and (runs.values("D") > runs.values("U")).any()) else "",
        )


def is_formula_law(text: str) -> bool:
    """Whether a law's name is a formula or a named formula law (not a built-in family's name)."""
    from bayescale.errors import LawError
    from bayescale.laws import get_law
    from bayescale.laws.formula.builtins import BUILTINS
    from bayescale.laws.formula.lawfile import is_formula

    try:
        get_law(text)  # "data-constrained" holds a minus sign and is no formula
        return False
    except LawError:
        return is_formula(text) or text.strip().lower() in BUILTINS


def resolve(runs: Runs | pd.DataFrame | str | Path, law: str | Law | None) -> tuple[Runs, Law]:
    """The runs and the law a fit is asked for: a formula (or a named formula law) reads the runs'
    columns as its inputs and models ``loss``; any other name is a built-in family (default by the runs)."""
    if isinstance(law, str) and is_formula_law(law):  # "E + A/N^alpha" or a named formula law ("farseer")
        from bayescale.laws.formula.lawfile import from_options

        source = runs.table if isinstance(runs, Runs) else runs
        formula_law, formula_runs = from_options(source, law=law, k=runs.k if isinstance(runs, Runs) else 6.0)
        return formula_runs, formula_law
    runs = _as_runs(runs)
    return runs, law_for(runs, law)


def prepare(
    runs: Runs | pd.DataFrame | str | Path,
    law: str | Law | None,
    priors: Mapping[str, PriorLike] | None,
    prior_set: str = "auto",
):
    runs, law = resolve(runs, law)
    resolved = resolve_priors(law, runs, priors, prior_set)
    check_identifiable(law, runs, resolved)
    return runs, law, resolved


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("bayescale", "pymc", "pytensor", "arviz", "nutpie", "numpy", "xarray"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def stage_settings(
    prior_set: str,
    draws: int,
    tune: int,
    chains: int,
    seed: int | None,
    sampler: str,
    target_accept: float,
    progress: bool,
    retry: bool,
) -> dict[str, Any]:
    """The sampler settings every stage of a fit uses, checked; a random seed when none is given.

    Raises
    ------
    BayescaleError
        For draws, tune or chains below 1, or target_accept outside (0, 1).
    """
    for name, value in (("draws", draws), ("tune", tune), ("chains", chains)):
        if int(value) < 1:
            raise BayescaleError(f"{name} must be at least 1, got {value}")
    if not 0 < target_accept < 1:
        raise BayescaleError(f"target_accept must be between 0 and 1, got {target_accept}")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**31))
    return {
        "retry": retry,
        "prior_set": prior_set,
        "seed": seed,
        "sampler": pick_sampler(sampler),
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "target_accept": target_accept,
        "progress": progress,
    }


#: Most draws and tuning steps per chain of a calibration re-fit (its spread is what is used).
REFIT_DRAWS = 500


def refit_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A calibration re-fit's settings from the fit's: at most :data:`REFIT_DRAWS` draws and tuning
    steps, its own seed (``seed + 2``), no progress bar and no retry (its spread is what is used,
    not its diagnostics)."""
    return {
        **settings,
        "draws": min(int(settings["draws"]), REFIT_DRAWS),
        "tune": min(int(settings["tune"]), REFIT_DRAWS),
        "seed": int(settings["seed"]) + 2,
        "progress": False,
        "retry": False,
    }


def pick_sampler(sampler: str) -> str:
    if sampler not in SAMPLERS:
        raise BayescaleError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if sampler == "nutpie":
        try:
            import nutpie  # noqa: F401
        except ImportError:
            log.warning("nutpie is not installed; falling back to PyMC's NUTS (slower)")
            return "pymc"
    return sampler


def assemble(
    idata: xr.DataTree,
    law: Law,
    runs: Runs,
    priors: Mapping[str, Any],
    settings: Mapping[str, Any],
    reference: Mapping[str, float] | None = None,
) -> ScalingFit:
    """Turn the sampler's DataTree into a :class:`ScalingFit`.

    Adds the physical parameters to the posterior, the runs and diagnostics groups and the
    root attributes; drops sample statistics of object type, which netCDF cannot store.
    ``reference``: the log reference scales of the draws (default: the runs' own).
    """
    post = idata["posterior"].to_dataset()
    ref = law.reference(runs) if reference is None else dict(reference)
    sampled = {n: post[n].to_numpy() if n in post else priors[n].kwargs["value"] for n in law.params}
    with np.errstate(over="ignore"):  # a tiny exponent sends X_c to inf: a legitimate draw
        natural = law.natural(sampled, ref)
    for name, values in natural.items():
        if name not in post:
            post[name] = (("chain", "draw"), np.broadcast_to(values, (post.sizes["chain"], post.sizes["draw"])).copy())
    names = dict.fromkeys((*law.params, *law.natural_params, *NOISE_PARAMS))
    checked = _varying(post, list(names))
    diag = compute_table(post, checked)
    groups = {name: idata[name].to_dataset() for name in idata.children}
    groups["posterior"] = post
    if "sample_stats" in groups:
        stats = groups["sample_stats"]
        groups["sample_stats"] = stats.drop_vars([v for v in stats.data_vars if stats[v].dtype == object])
        divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    else:
        divergences = 0
    groups["runs"] = xr.Dataset(
        {c: ("run", runs.values(c)) for c in runs.table.columns}, coords={"run": np.arange(len(runs))}
    )
    groups["diagnostics"] = diag
    tree = xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()})
    tree.attrs = {
        MARKER: _versions()["bayescale"],
        "law": law.key,
        "formula": law.formula,
        "reference": json.dumps(ref),
        "priors": priors_to_json(priors),
        "prior_set": str(settings.get("prior_set", "weak")),
        "seed": int(settings["seed"]),
        "k": float(runs.k),
        "source": runs.source,
        "columns": json.dumps(dict(runs.columns)),
        "sampler": str(settings["sampler"]),
        "draws": int(settings["draws"]),
        "tune": int(settings["tune"]),
        "chains": int(settings["chains"]),
        "target_accept": float(settings["target_accept"]),
        "retry": int(bool(settings.get("retry", True))),  # netCDF attributes hold no booleans
        "divergences": divergences,
        "versions": json.dumps(_versions()),
    }
    return ScalingFit(tree)


def fit_law(
    law: Law, runs: Runs, priors: Mapping[str, Any], settings: Mapping[str, Any], checked: list[str]
) -> ScalingFit:
    """The law's stage: NUTS on the law's posterior (retried at 0.99 when its chains fail), pointwise
    log-likelihood, physical parameters and diagnostics, as a :class:`ScalingFit`.

    ``settings`` holds the sampler settings (see :func:`_sample_checked`); ``checked`` the
    parameters whose convergence is judged.
    """
    from bayescale import chain_stacking

    chains, draws = int(settings["chains"]), int(settings["draws"])

    def with_log_likelihood(idata: xr.DataTree) -> xr.DataTree:
        if "log_likelihood" not in idata.children:
            idata["log_likelihood"] = log_likelihood(law, runs, idata["posterior"].to_dataset(), priors)
        return idata

    def rescue(idata: xr.DataTree) -> xr.DataTree | None:
        # chains that settled in separate modes: when stacking drops the poor ones and the kept chains pass,
        # the retry (smaller steps, more draws: minutes on a multimodal law) cannot do better
        if chains < 2:
            return None
        idata = with_log_likelihood(idata)
        stacked = chain_stacking.stack_chains(idata["log_likelihood"].to_dataset())
        if stacked.dropped and _stage_ok(chain_stacking.kept_chains(idata, stacked), checked, chains, draws):
            rescued.append(stacked)  # the stack of the draws returned: not computed again below
            return idata
        return None

    rescued: list[chain_stacking.ChainStack] = []
    model = law_stage(law, runs, priors, settings["sampler"])
    idata = with_log_likelihood(_sample_checked(model, settings, checked, "the law", low_rank=True, rescue=rescue))
    if chains > 1 and not _stage_ok(idata, checked, chains, draws):
        return _stacked(idata, law, runs, priors, settings, rescued[0] if rescued else None)
    return assemble(idata, law, runs, priors, settings)


def _stacked(
    idata: xr.DataTree,
    law: Law,
    runs: Runs,
    priors: Mapping[str, Any],
    settings: Mapping[str, Any],
    stacked: Any = None,
) -> ScalingFit:
    """A stage whose chains disagree: its chains stacked on their leave-one-out predictions
    (:mod:`bayescale.chain_stacking`; ``stacked``, when already computed for these draws); the fit
    reports the kept chains' diagnostics."""
    from bayescale import chain_stacking

    if stacked is None:
        stacked = chain_stacking.stack_chains(idata["log_likelihood"].to_dataset())
    if not stacked.dropped:
        return assemble(idata, law, runs, priors, settings)
    log.info(
        "the law: the chains disagree; stacked on their leave-one-out predictions (Yao et al. 2022), weights %s: "
        "%d of %d chains kept, the fit's diagnostics are theirs",
        ", ".join(f"{w:.2f}" for w in stacked.weights),
        stacked.kept.size,
        stacked.weights.size,
    )
    fit = assemble(chain_stacking.resample(idata, stacked, int(settings["seed"])), law, runs, priors, settings)
    kept = assemble(chain_stacking.kept_chains(idata, stacked), law, runs, priors, settings)
    fit.tree["diagnostics"] = kept.tree["diagnostics"].to_dataset()
    fit.tree.attrs["divergences"] = kept.tree.attrs["divergences"]
    fit.tree.attrs["chain_weights"] = json.dumps([round(float(w), 4) for w in stacked.weights])
    return fit


def law_stage(law: Law, runs: Runs, priors: Mapping[str, Any], sampler: str) -> Any:
    """What the law's stage samples: nutpie's compiled model (compiled once per process per
    structure, see :mod:`bayescale.compiled`) or, for PyMC's sampler, a fresh ``pm.Model``."""
    from bayescale import compiled

    model = compiled.law_model(law, runs, priors) if sampler == "nutpie" else None
    return build_model(law, runs, priors) if model is None else model


def log_likelihood(
    law: Law, runs: Runs, posterior: xr.Dataset, priors: Mapping[str, Any], reference: Mapping[str, float] | None = None
) -> xr.Dataset:
    """Pointwise log-likelihood of each run under each draw (``log_loss``: chain, draw, run), for PSIS-LOO.

    ``reference``: the log reference scales the draws are centred on (default: the runs' own,
    ``law.reference(runs)``; a pooled fit's groups share the pooled runs').

    The Student-t density of the model (:func:`bayescale.model.build_model`) evaluated with
    numpy on the draws: no compiled function. Runs are taken in chunks on the prediction
    thread pool, so the temporaries stay small (draws x 10,000 runs in one piece: 320 MB
    each) and both cores work. float32 halves the largest group of a fit (draws x runs);
    PSIS-LOO needs no more precision.
    """
    from bayescale.predict import law_log_loss, ordered_map
    from bayescale.stats import student_t_logpdf

    shape = (posterior.sizes["chain"], posterior.sizes["draw"])

    def flat(name: str) -> np.ndarray:
        if name in posterior:
            return posterior[name].to_numpy().reshape(-1)
        return np.full(shape[0] * shape[1], float(priors[name].kwargs["value"]))

    sampled = {name: flat(name) for name in (*law.params, *NOISE_PARAMS)}
    nu, sigma = sampled["nu"][:, None], sampled["sigma"][:, None]
    ref = law.reference(runs) if reference is None else reference
    inputs = {x: runs.values(x) for x in law.inputs}
    log_loss = law.observed(runs.loss)

    def chunk(sl: slice) -> np.ndarray:
        mu = law_log_loss(law, sampled, ref, {x: v[sl] for x, v in inputs.items()})
        return student_t_logpdf(log_loss[None, sl], nu, mu, sigma).astype("float32")

    slices = [slice(start, start + LOG_LIKELIHOOD_CHUNK) for start in range(0, len(runs), LOG_LIKELIHOOD_CHUNK)]
    values = np.concatenate(list(ordered_map(chunk, slices)), axis=1)
    return xr.Dataset(
        {"log_loss": (("chain", "draw", "run"), values.reshape(*shape, -1))},
        coords={"chain": posterior["chain"], "draw": posterior["draw"], "run": np.arange(len(runs))},
    )


def _sample(
    model: Any,
    sampler: str,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    target_accept: float,
    progress: bool,
    low_rank: bool,
    thin: int = 1,
) -> xr.DataTree:
    """Run NUTS on ``model`` (a ``pm.Model``, or nutpie's compiled model) with the package's sampler settings.

    ``thin`` > 1 draws ``thin`` times as many and keeps every ``thin``-th: the same number of
    stored draws (the stages stay aligned draw by draw) with less autocorrelation.
    """
    import pymc as pm

    if not isinstance(model, pm.Model):  # nutpie's compiled model
        import nutpie

        idata = nutpie.sample(
            model,
            draws=int(draws) * int(thin),
            tune=int(tune),
            chains=int(chains),
            seed=int(seed),
            target_accept=float(target_accept),
            adaptation="low_rank" if low_rank else "diag",
            save_warmup=False,
            progress_bar=progress,
        )
        return _thin(idata, thin)
    nuts: dict[str, Any] = {"target_accept": float(target_accept)}
    if sampler == "nutpie" and low_rank:
        # A low-rank mass matrix absorbs the E-exponent-amplitude correlation that
        # centring cannot remove: 3-4x the ESS per second of the diagonal adaptation.
        nuts["adaptation"] = "low_rank"
    with model:
        idata = pm.sample(
            draws=int(draws) * int(thin),
            tune=int(tune),
            chains=int(chains),
            random_seed=int(seed),
            nuts_sampler=sampler,
            nuts=nuts,
            progressbar=progress,
            cores=min(int(chains), 2) if sampler == "pymc" else None,
        )
    return _thin(idata, thin)


def _thin(idata: xr.DataTree, thin: int) -> xr.DataTree:
    """Every ``thin``-th draw of the posterior and sample statistics."""
    if thin > 1:
        for group in ("posterior", "sample_stats"):
            if group in idata.children:
                idata[group] = idata[group].to_dataset().isel(draw=slice(thin - 1, None, thin))
    return idata


def _sample_checked(
    model: Any,
    stage: Mapping[str, Any],
    checked: list[str],
    what: str,
    low_rank: bool,
    rescue: Callable[[xr.DataTree], xr.DataTree | None] | None = None,
) -> xr.DataTree:
    """Sample one stage; when its chains fail their diagnostics, sample it once more at 0.99.

    ``stage`` holds the sampler settings (sampler, draws, tune, chains, seed, target_accept,
    progress, retry). The retry -- smaller steps through the narrow, curved posteriors of
    ladders with few sizes, twice the tuning, and draws thinned by 2 to 8 by how short the
    first attempt's ESS fell (:func:`_retry_thin`) -- is taken only when ``retry`` is true and
    ``target_accept`` is below :data:`RETRY_TARGET_ACCEPT`, and ``rescue`` (given the first attempt)
    returns None: a rescue that returns draws (the law's chains stacked, see :func:`fit_law`) ends it.
    """

    def run(tune: int, target_accept: float, thin: int = 1) -> xr.DataTree:
        return _sample(
            model, stage["sampler"], stage["draws"], tune, stage["chains"], stage["seed"], target_accept,
            stage["progress"], low_rank=low_rank, thin=thin,
        )  # fmt: skip

    target_accept = float(stage["target_accept"])
    idata = run(int(stage["tune"]), target_accept)
    if (
        stage.get("retry", True)
        and target_accept < RETRY_TARGET_ACCEPT
        and not _stage_ok(idata, checked, stage["chains"], stage["draws"])
    ):
        rescued = rescue(idata) if rescue is not None else None
        if rescued is not None:
            log.info("%s: the chains disagree; stacked, the kept chains pass their checks: no retry", what)
            return rescued
        thin = _retry_thin(idata, checked, stage["chains"])
        log.info(
            "%s: the chains did not converge at target_accept %.2f; sampling again at %.2f (smaller steps, "
            "twice the tuning, %d times the draws thinned by %d)",
            what,
            target_accept,
            RETRY_TARGET_ACCEPT,
            thin,
            thin,
        )
        idata = run(2 * int(stage["tune"]), RETRY_TARGET_ACCEPT, thin)
    return idata


def fit_discrepancy(result: ScalingFit, runs: Runs, law: Law, settings: Mapping[str, Any]) -> None:
    """Second stage: fit the model discrepancy to the law's residuals; store it in the result's tree.

    The residuals are taken against the law's posterior median at each run; the law is not
    updated (a cut posterior, see :mod:`bayescale.discrepancy`).

    Call it with BLAS held to one thread, as :func:`bayescale.pipeline.fit` does: the stage is
    thousands of small (K x K) factorisations and solves, alternating between numpy's and
    scipy's BLAS, and with two threads each the threads of one library spin while the other
    works (a 144 x 144 Cholesky factor: 3.6 ms instead of 0.2 ms; the two passes of a default
    fit on 245 runs, the fit's and the calibration re-fit's: 16 s instead of 7 s).
    """
    from bayescale import discrepancy
    from bayescale.predict import law_log_loss, ordered_map

    sampled = result._sampled()
    inputs = {x: runs.values(x) for x in law.inputs}
    log_loss = law.observed(runs.loss)

    def per_run(sl: slice) -> tuple[np.ndarray, np.ndarray]:
        # the law's median log loss and its outlier weight at each run of the chunk, over the draws
        log_law = law_log_loss(law, sampled, result.reference, {x: v[sl] for x, v in inputs.items()})
        weights = discrepancy.law_weights(log_loss[None, sl] - log_law, sampled["sigma"], sampled["nu"])
        return np.median(log_law, axis=0), weights

    slices = [slice(i, i + LOG_LIKELIHOOD_CHUNK) for i in range(0, len(runs), LOG_LIKELIHOOD_CHUNK)]
    medians, starts = zip(*ordered_map(per_run, slices), strict=True)
    fitted = np.concatenate(medians)
    residuals = log_loss - fitted
    start = np.concatenate(starts)
    domain = discrepancy.Domain.of_runs(runs, law.discrepancy_inputs)
    X = domain.log_inputs(runs.table)
    priors = discrepancy.default_priors()
    nu = float(np.median(sampled["nu"]))
    domain, robust = discrepancy.choose_regime(residuals, X, domain, priors, nu, [start, None], fitted)
    weights = robust.weights
    log.info(
        "discrepancy: robust first pass in %d EM steps (eta %.3f at the runs' best regime, %.1fx at their worst;"
        " nu %.1f; %d of %d runs weighted below 0.5)",
        robust.iterations,
        robust.eta,
        float(np.exp(domain.regime.gamma)) if domain.regime is not None else 1.0,
        robust.nu,
        int(np.sum(weights < 0.5)),
        weights.size,
    )
    log.info("fitting the model discrepancy (GP on the law's residuals over log %s)", ", log ".join(domain.inputs))
    shape = (int(settings["chains"]), int(settings["draws"]))
    flat, imp = discrepancy.sample_hyperparameters(
        residuals,
        X,
        domain,
        priors,
        weights,
        robust.theta,
        shape[0] * shape[1],
        np.random.default_rng(settings["seed"] + 1),
    )
    idata = None
    if imp.ok:
        log.info(
            "discrepancy hyperparameters by importance sampling: %d proposals, Pareto khat %.2f, ESS %.0f",
            imp.proposals,
            imp.khat,
            imp.ess,
        )
        post = xr.Dataset(
            {
                "eta": (("chain", "draw"), flat["eta"].reshape(shape)),
                "ls": (("chain", "draw", "input"), flat["ls"].reshape(*shape, -1)),
                "sigma": (("chain", "draw"), flat["sigma"].reshape(shape)),
            },
            coords={"chain": np.arange(shape[0]), "draw": np.arange(shape[1]), "input": list(domain.inputs)},
        )
        table = importance_table(["eta", "ls", "sigma"], imp.ess, imp.khat)
    else:
        log.info("importance sampling of the discrepancy did not cover it (Pareto khat %.2f): NUTS instead", imp.khat)
        model = discrepancy.build_model(residuals, X, domain, priors, weights)
        stage = dict(settings) | {"seed": settings["seed"] + 1}
        idata = _sample_checked(model, stage, ["eta", "ls", "sigma"], "the discrepancy", low_rank=False)
        post = idata["posterior"].to_dataset()
        shape = (post.sizes["chain"], post.sizes["draw"])
        flat = {"eta": post["eta"].to_numpy().reshape(-1), "sigma": post["sigma"].to_numpy().reshape(-1)}
        flat["ls"] = post["ls"].to_numpy().reshape(flat["eta"].size, -1)
        table = compute_table(post, ["eta", "ls", "sigma"])
    z = discrepancy.draw_coefficients(domain, X, residuals, flat, np.random.default_rng(settings["seed"] + 3), weights)
    post["z"] = (("chain", "draw", "basis"), z.reshape(*shape, -1))
    # the new-run noise: Student-t with the robust pass's nu and the sampled sigma
    post["nu"] = (("chain", "draw"), np.full(shape, robust.nu))
    post["run_weight"] = ("run", weights)
    result.tree["discrepancy"] = post[[*discrepancy.PARAMS, "run_weight"]]
    result.tree.attrs["discrepancy_domain"] = domain.to_json()
    # the second stage's convergence joins the fit's diagnostics (as delta_eta, delta_ls, delta_sigma)
    table = table.assign_coords(parameter=np.array([f"delta_{p}" for p in ("eta", "ls", "sigma")], dtype=object))
    result.tree["diagnostics"] = xr.concat([result.tree["diagnostics"].to_dataset(), table], dim="parameter")
    stats = idata["sample_stats"].to_dataset() if idata is not None and "sample_stats" in idata.children else None
    if stats is not None and "diverging" in stats:
        result.tree.attrs["divergences"] = int(result.tree.attrs["divergences"]) + int(stats["diverging"].sum())
    log.info(
        "discrepancy amplitude eta: median %.4f (log loss; 90%% of draws below %.4f)",
        float(np.median(post["eta"])),
        float(np.quantile(post["eta"], 0.9)),
    )


def sample_prior_predictive(
    runs: Runs | pd.DataFrame | str | Path,
    law: str | Law | None = None,
    priors: Mapping[str, PriorLike] | None = None,
    *,
    prior_set: str = "auto",
    draws: int = 500,
    seed: int | None = None,
) -> xr.DataTree:
    """Draw from the prior and prior predictive at the runs' inputs.

    Use it to check that the priors put the loss in a plausible range before fitting.

    Returns
    -------
    xarray.DataTree
        Groups ``prior`` and ``prior_predictive`` (``log_loss``, the log of the loss).
    """
    import pymc as pm

    runs, law, resolved = prepare(runs, law, priors, prior_set)
    with build_model(law, runs, resolved), warnings.catch_warnings():
        # PyTensor's numba backend draws TruncatedNormal in object mode: slower, not wrong.
        warnings.filterwarnings("ignore", message="Numba will use object mode", category=UserWarning)
        return pm.sample_prior_predictive(draws=draws, random_seed=seed)
