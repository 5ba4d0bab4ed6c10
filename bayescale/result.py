"""The result of a fit: it owns the ``xarray.DataTree`` and answers questions from its draws.

Everything here works on saved draws with numpy and xarray; nothing imports PyMC, so a
loaded fit answers ``summary`` and ``predict`` without compiling a model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from bayescale import storage
from bayescale.data import COST, Runs
from bayescale.diagnostics import Diagnostics, assess
from bayescale.errors import FitFileError, PredictionError, RunsError
from bayescale.laws import Law, get_law
from bayescale.laws.formula.runs import points as formula_points
from bayescale.model import NOISE_PARAMS
from bayescale.predict import complete_inputs, log_draws, predict_table
from bayescale.priors import Prior, priors_from_json
from bayescale.stats import check_interval, interval_stats

if TYPE_CHECKING:
    from bayescale.calibration import PointScales
    from bayescale.discrepancy import Fitted
    from bayescale.next_runs import Design

SUMMARY_COLUMNS = [
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


class ScalingFit:
    """A fitted scaling law: posterior draws, runs, law, priors and diagnostics.

    Build one with :func:`bayescale.fit` or :func:`bayescale.load`.

    Parameters
    ----------
    tree : xarray.DataTree
        Groups ``posterior`` (sampled and physical parameters), ``sample_stats``,
        ``log_likelihood``, ``observed_data``, ``constant_data``, ``runs`` and
        ``diagnostics``; root attributes hold the law, reference scales, priors (JSON),
        seed, sampler settings and versions.
    """

    def __init__(self, tree: xr.DataTree) -> None:
        try:
            self.tree = tree
            attrs = tree.attrs
            self.law: Law = get_law(attrs["law"])
            self.reference: dict[str, float] = json.loads(attrs["reference"])
            self.priors: dict[str, Prior] = priors_from_json(attrs["priors"])
            self.seed: int = int(attrs["seed"])
            self.k: float = float(attrs["k"])
        except (KeyError, ValueError, TypeError) as ex:
            raise FitFileError(f"fit is missing or has a damaged attribute ({ex}); re-run bayescale fit") from None

    # --- draws -------------------------------------------------------------------------
    @property
    def posterior(self) -> xr.Dataset:
        """Posterior draws (chain, draw) of sampled and physical parameters."""
        return self.tree["posterior"].to_dataset()

    @cached_property
    def runs(self) -> Runs:
        """The runs the law was fitted to."""
        ds = self.tree["runs"].to_dataset()
        source = str(self.tree.attrs.get("source", ""))
        if self.law.is_formula:
            table = pd.DataFrame({c: ds[c].to_numpy() for c in (*self.law.inputs, "loss", COST) if c in ds})
            return Runs(table=table, k=self.k, source=source, columns={"loss": self.law.target},
                        names=self.law.inputs, linear=self.law.linear_inputs)  # fmt: skip
        table = pd.DataFrame({c: ds[c].to_numpy() for c in ("N", "D", "C", "U", "loss") if c in ds})
        return Runs(table=table, k=self.k, source=source)

    def draws(self, name: str) -> np.ndarray:
        """Flat posterior draws of parameter ``name`` (a fixed parameter gives a constant array)."""
        post = self.posterior
        if name in post:
            return post[name].to_numpy().reshape(-1)
        if name in self.priors and self.priors[name].is_fixed:
            return np.full(post.sizes["chain"] * post.sizes["draw"], self.priors[name].kwargs["value"])
        raise KeyError(f"no parameter {name!r}; parameters: {', '.join(self.parameters)}")

    @property
    def parameters(self) -> list[str]:
        """Reported parameters: the law's physical ones, then the noise ones."""
        return [*self.law.natural_params, *NOISE_PARAMS]

    def _sampled(self) -> dict[str, np.ndarray]:
        return {name: self.draws(name) for name in (*self.law.params, *NOISE_PARAMS)}

    # --- diagnostics -------------------------------------------------------------------
    @property
    def diagnostics(self) -> Diagnostics:
        """Convergence checks (R-hat, ESS, divergences) with remedies for failures."""
        table = self.tree["diagnostics"].to_dataset()
        attrs = self.tree.attrs
        return assess(table, int(attrs["divergences"]), int(attrs["chains"]), int(attrs["draws"]))

    # --- answers -----------------------------------------------------------------------
    def summary(self, interval: float = 0.9) -> pd.DataFrame:
        """One row per physical parameter and noise parameter.

        Parameters
        ----------
        interval : float, default 0.9
            Probability of the equal-tailed interval ``lower``-``upper``.

        Returns
        -------
        pandas.DataFrame
            Columns ``parameter, mean, median, sd, lower, upper, contraction, decided_by,
            r_hat, ess_bulk, ess_tail``. ``contraction`` is the share of the prior's spread
            the runs removed (:mod:`bayescale.contraction`; near 1: the runs decided, near 0:
            the prior did), ``decided_by`` says which (``data``, ``prior``, or empty for a
            fixed parameter).
        """
        from bayescale.contraction import PRIOR_DECIDED, contractions

        check_interval(interval)
        shrink = contractions(
            self.law, self.priors, self.reference, {n: self.draws(n) for n in self.parameters}, self.parameters
        )
        diag = self.tree["diagnostics"].to_dataset()
        diag_names = [str(p) for p in diag["parameter"].to_numpy()]
        rows = []
        for name in self.parameters:
            x = self.draws(name)
            stats = interval_stats(x, interval)
            i = diag_names.index(name) if name in diag_names else None
            stat = {
                s: float(diag[s].to_numpy()[i]) if i is not None else np.nan for s in ("r_hat", "ess_bulk", "ess_tail")
            }
            with np.errstate(over="ignore", invalid="ignore"):  # X_c can reach 1e300 when gamma is tiny
                sd = x.std(ddof=1)
            rows.append(
                {
                    "parameter": name,
                    "mean": stats["mean"],
                    "median": stats["median"],
                    "sd": sd,
                    "lower": stats["lower"],
                    "upper": stats["upper"],
                    "contraction": shrink[name],
                    "decided_by": ""
                    if not np.isfinite(shrink[name])
                    else ("data" if shrink[name] >= PRIOR_DECIDED else "prior"),
                    **stat,
                }
            )
        return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

    def predict(
        self,
        N: object = None,
        D: object = None,
        C: object = None,
        interval: float = 0.9,
        *,
        U: object = None,
        points: pd.DataFrame | Mapping[str, object] | None = None,
        independent: bool = False,
    ) -> pd.DataFrame:
        """Posterior predictive loss of new runs.

        Parameters
        ----------
        N, D, C : float or array_like, optional
            Parameters, tokens and FLOPs of the runs to predict; any two give the third
            through ``C = k N D``.
        U : float or array_like, optional
            Unique tokens of each run (D / U epochs), for the data-constrained law; without
            it, such a law predicts fresh data (U = D). Other laws ignore it.
        points : DataFrame or mapping, optional
            A formula law's points: a column (or array) per input of the law.
        interval : float, default 0.9
            Probability of the equal-tailed intervals.
        independent : bool, default False
            Draw each point's noise independently instead of sharing common random numbers
            across points (:func:`bayescale.predict.log_draws`): slower for many points; what
            the calibration split uses, whose held-out errors are pooled.

        Returns
        -------
        pandas.DataFrame
            ``N, D, C`` and, for a new run (observation noise included), ``median, lower,
            upper`` (no mean: :func:`bayescale.predict.predict_table` says why); for the
            law's expected loss, ``expected_median, expected_mean, expected_lower,
            expected_upper``. Both include the fitted model discrepancy (see :attr:`discrepancy`),
            which carries the law's local misfit into the prediction and widens bands
            away from the runs, and the calibrated band scale (:attr:`band_scale`).
            Noise draws are seeded from the fit's seed: repeated calls agree.
        """
        points, rng = self._points_and_rng(N, D, C, U, points)
        scale = self._scale_draws(points)
        return predict_table(
            self.law, self._sampled(), self.reference, points, interval, rng, self.discrepancy, scale, independent
        )

    def loss_draws(
        self,
        N: object = None,
        D: object = None,
        C: object = None,
        *,
        U: object = None,
        points: pd.DataFrame | Mapping[str, object] | None = None,
        expected: bool = False,
    ) -> np.ndarray:
        """Posterior predictive draws of a new run's loss at the points, shape (draws, points).

        The draws :meth:`predict` summarises (law, discrepancy, noise and band scale, common
        random numbers across points); with ``expected``, the law's expected loss instead.
        """
        points, rng = self._points_and_rng(N, D, C, U, points)
        parts = [
            law if expected else new
            for law, new in log_draws(
                self.law, self._sampled(), self.reference, points, rng, self.discrepancy, self._scale_draws(points)
            )
        ]
        return self.law.to_target(np.concatenate(parts, axis=1).astype(float))

    def _points_and_rng(
        self, N: object, D: object, C: object, U: object = None, points: object = None
    ) -> tuple[dict[str, np.ndarray], np.random.Generator]:
        """Validated points and the noise generator seeded from the fit: predict and pit draw alike."""
        rng = np.random.default_rng([self.seed, 1])
        if self.law.is_formula:
            if points is None:
                raise PredictionError(f"give the points as a table of {', '.join(self.law.inputs)} (points=...)")
            try:
                return formula_points(self.law, points), rng
            except RunsError as ex:
                raise PredictionError(str(ex)) from None
        if points is not None:
            points = dict(points)
            N, D, C, U = (points.get(x, v) for x, v in (("N", N), ("D", D), ("C", C), ("U", U)))
        return complete_inputs(self.law, self.k, N=N, D=D, C=C, U=U), rng

    def pit(
        self,
        N: object = None,
        D: object = None,
        C: object = None,
        *,
        loss: object,
        U: object = None,
        points: pd.DataFrame | Mapping[str, object] | None = None,
    ) -> np.ndarray:
        """Probability integral transform of observed losses under the new-run predictive.

        The share of predictive draws at or below each observed ``loss``: uniform on (0, 1)
        for calibrated predictions, piled at 0 and 1 for bands that are too narrow.
        """
        points, rng = self._points_and_rng(N, D, C, U, points)
        log_obs = self.law.observed(np.atleast_1d(np.asarray(loss, dtype=float)))
        parts, start = [], 0
        for _, log_new in log_draws(
            self.law, self._sampled(), self.reference, points, rng, self.discrepancy, self._scale_draws(points)
        ):
            stop = start + log_new.shape[1]
            parts.append((log_new <= log_obs[None, start:stop]).mean(axis=0))
            start = stop
        return np.concatenate(parts)

    @property
    def prior_set(self) -> str:
        """The prior set the fit used (``literature`` or ``weak``; ``weak`` for fits saved before prior sets)."""
        return str(self.tree.attrs.get("prior_set", "weak"))

    @property
    def band_scale(self) -> float:
        """Posterior median of the band scale (:mod:`bayescale.calibration`; 1 if not calibrated)."""
        return float(self.tree.attrs.get("band_scale", 1.0))

    def _scale_draws(self, points: dict[str, np.ndarray]) -> PointScales | float:
        """Band scale per posterior draw and point, seeded from the fit (1 if not calibrated).

        Draws of the scale's posterior; 1 at points beyond what the calibration split
        tested (:func:`bayescale.calibration.untested`); with the misfit's growth beyond the
        runs, drawn jointly with the scale, and each point's distance beyond them.
        """
        if "calibration" not in self.tree.children:
            return 1.0
        from bayescale import calibration as cal

        reach = json.loads(self.tree.attrs.get("calibration_reach", "{}"))
        untested = cal.untested(self.runs, points, reach)
        s, g, inputs = self._scale_growth
        if g is None:
            return cal.point_scales(s, untested)
        ranges = cal.input_ranges(self.runs, inputs)
        return cal.point_scales(s, untested, g, cal.distances_beyond(ranges, points))

    @cached_property
    def _scale_growth(self) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
        """Posterior draws of the band scale (S,) and of the misfit's growth per input (S, k), seeded from
        the fit, and those k inputs (growth None for fits saved before it was learned)."""
        from bayescale import calibration as cal

        held = self.tree["calibration"].to_dataset()
        z = held["z"].to_numpy()
        S, rng = len(self.draws("sigma")), np.random.default_rng([self.seed, 2])
        inputs = tuple(str(v).removeprefix(cal.DISTANCE) for v in held.data_vars if str(v).startswith(cal.DISTANCE))
        if "halfwidth" not in held:
            return cal.scale_draws(z, S, rng), None, ()
        d = np.column_stack([held[cal.DISTANCE + x].to_numpy() for x in inputs]) if inputs else np.zeros((z.size, 0))
        s, g = cal.scale_growth_draws(z, held["halfwidth"].to_numpy(), d, S, rng, cal.growth_unit(self.law, self.runs))
        return s, g, inputs

    @cached_property
    def discrepancy(self) -> Fitted | None:
        """The fitted model discrepancy (:mod:`bayescale.discrepancy`), or None for a law-only fit."""
        if "discrepancy" not in self.tree.children or "discrepancy_domain" not in self.tree.attrs:
            return None
        from bayescale.discrepancy import PARAMS, Domain, Fitted

        ds = self.tree["discrepancy"].to_dataset()
        n = ds.sizes["chain"] * ds.sizes["draw"]
        params = {k: ds[k].to_numpy().reshape(n, *ds[k].shape[2:]) for k in PARAMS}
        if n != len(self.draws("sigma")):
            raise FitFileError(
                f"the discrepancy has {n} draws but the law {len(self.draws('sigma'))}; re-run bayescale fit"
            )
        return Fitted(Domain.from_json(self.tree.attrs["discrepancy_domain"]), params)

    # --- allocation --------------------------------------------------------------------
    @property
    def reference_budget(self) -> float:
        """Default budget for allocation questions: 100x the largest compute in the runs."""
        if self.runs.has("C"):
            return 100.0 * float(self.runs.values("C").max())
        if self.runs.has("N") and self.runs.has("D"):
            return 100.0 * self.k * float((self.runs.values("N") * self.runs.values("D")).max())
        from bayescale.allocation import AllocationError

        raise AllocationError(
            f"allocation needs runs with N and D (compute k N D); these runs have {', '.join(self.runs.inputs)}"
        )

    def _all_draws(self) -> dict[str, np.ndarray]:
        """Flat draws of every parameter (sampled, physical, fixed)."""
        return {n: self.draws(n) for n in dict.fromkeys((*self.posterior.data_vars, *self.priors))}

    def allocation_draws(self, compute: float | None = None) -> dict[str, np.ndarray]:
        """Per-draw compute-optimal ``N_opt``, ``D_opt``, ``tokens_per_param``, ``loss_opt`` and exponents
        ``a``, ``b`` at one budget (default :attr:`reference_budget`): for probabilities and plots."""
        from bayescale import allocation as al

        C = float(al.check_budgets(self.reference_budget if compute is None else compute)[0])
        draws = self._all_draws()
        opt = al.isoflop_optimum(self.law, draws, self.reference, self.k, C)
        al.check_sensible(C, opt)
        exps = al.allocation_exponents(self.law, draws, self.reference, self.k, C)
        return {**{q: opt[q] for q in al.QUANTITIES}, **exps}

    def optimal(
        self,
        compute: object = None,
        interval: float = 0.9,
        *,
        inference_tokens: float | None = None,
        target_loss: float | None = None,
        N: float | None = None,
        loss: float | None = None,
        inference_flops: float = 2.0,
        unique_tokens: float | None = None,
        worth: float = 0.5,
    ) -> pd.DataFrame:
        """Compute-optimal allocation with posterior uncertainty.

        Parameters
        ----------
        compute : float or array_like, optional
            Budgets C in FLOPs (default :attr:`reference_budget`).
        interval : float, default 0.9
            Probability of the equal-tailed intervals.
        inference_tokens : float, optional
            Expected lifetime inference tokens D_inf: adds the inference-aware allocation
            (Sardana and Frankle 2024) minimising ``k N D + inference_flops N D_inf``
            for the loss the compute-optimal model reaches (or ``target_loss``).
        target_loss : float, optional
            Loss to reach in the inference-aware allocation.
        N, loss : float, optional
            The fixed-size question: with both given, returns :meth:`tokens_to_reach`.
        inference_flops : float, default 2
            FLOPs per parameter per inference token.
        unique_tokens : float, optional
            Unique tokens available (a data-constrained fit): the allocation under that
            budget, :func:`bayescale.data_budget.constrained_table` -- the loss-minimising N
            and D with their epochs, the loss lost against unlimited data, and the epochs
            worth running.
        worth : float, default 0.5
            With ``unique_tokens``: the share of the first epoch's value below which another
            epoch is not worth running (``epochs_worth``).

        Returns
        -------
        pandas.DataFrame
            One row per budget: ``compute`` and ``<q>_median``, ``<q>_mean``, ``<q>_lower``,
            ``<q>_upper`` for q in ``N_opt, D_opt, tokens_per_param, loss_opt``; with
            ``inference_tokens``, the same for ``inf_aware_N, inf_aware_D,
            inf_aware_tokens_per_param, inf_aware_total_flops, inf_aware_saving``.
        """
        from bayescale import allocation as al

        if N is not None or loss is not None:
            if N is None or loss is None:
                raise al.AllocationError("the fixed-size question needs both N and loss")
            return self.tokens_to_reach(N=N, loss=loss, interval=interval)
        if unique_tokens is not None:
            from bayescale.data_budget import constrained_table

            if inference_tokens is not None:
                raise al.AllocationError("give either unique tokens or inference tokens, not both")
            return constrained_table(
                self.law,
                self._all_draws(),
                self.reference,
                self.k,
                self.reference_budget if compute is None else compute,
                unique_tokens,
                check_interval(interval),
                worth,
            )
        return al.optimal_table(
            self.law,
            self._all_draws(),
            self.reference,
            self.k,
            self.reference_budget if compute is None else compute,
            check_interval(interval),
            inference_tokens,
            target_loss,
            inference_flops,
        )

    def design(self, target: tuple[float, float], **kwargs: Any) -> Design:
        """Which runs next: candidates ranked by how much they narrow the goal's band at ``target``
        per FLOP, and a greedy batch; see :func:`bayescale.next_runs.design` for the options."""
        from bayescale.next_runs import design

        return design(self, target, **kwargs)

    def tokens_to_reach(self, N: object, loss: float, interval: float = 0.9) -> pd.DataFrame:
        """Tokens a model of N parameters needs to reach an expected ``loss``, with its band.

        Returns
        -------
        pandas.DataFrame
            One row per N: ``N, loss, prob_reachable`` (share of draws whose loss at
            infinite data is below the target), and median, mean, interval of ``D`` and of
            the training FLOPs ``C`` (infinite where unreachable).
        """
        from bayescale import allocation as al

        check_interval(interval)
        Ns = al.check_budgets(N, "N")
        target = float(al.check_budgets(loss, "loss")[0])
        draws = self._all_draws()
        rows = []
        for n in Ns:
            D = al.tokens_for_loss(self.law, draws, self.reference, n, target)
            row = {"N": float(n), "loss": target, "prob_reachable": float(np.isfinite(D).mean())}
            for name, values in (("D", D), ("C", self.k * n * D)):
                row.update({f"{name}_{k}": float(v) for k, v in interval_stats(values, interval).items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def scale_up(self, factor: float = 10.0, compute: float | None = None, interval: float = 0.9) -> pd.DataFrame:
        """Posterior multipliers of N_opt and D_opt when the budget grows by ``factor``.

        Returns
        -------
        pandas.DataFrame
            Rows ``N`` and ``D``: median, mean, lower, upper of the multiplier, beside Kaplan
            et al.'s (``factor**0.73``, ``factor**0.27``) and Chinchilla's (``factor**0.5``) answers.
        """
        from bayescale import allocation as al

        check_interval(interval)
        factor = float(al.check_budgets(factor, "factor")[0])
        C = float(al.check_budgets(self.reference_budget if compute is None else compute)[0])
        draws = self._all_draws()
        base = al.isoflop_optimum(self.law, draws, self.reference, self.k, C)
        al.check_sensible(C, base)
        big = al.isoflop_optimum(self.law, draws, self.reference, self.k, C * factor)
        rows = []
        for name, key, kaplan in (("N", "N_opt", 0.73), ("D", "D_opt", 0.27)):
            stats = interval_stats(big[key] / base[key], interval)
            rows.append(
                {
                    "quantity": name,
                    "factor": factor,
                    "compute": C,
                    **{k: float(v) for k, v in stats.items()},
                    "kaplan": factor**kaplan,
                    "chinchilla": factor**0.5,
                }
            )
        return pd.DataFrame(rows)

    def probability(
        self, quantity: str, *, above: float | None = None, below: float | None = None, compute: float | None = None
    ) -> float:
        """Posterior probability that an allocation quantity exceeds (or falls below) a value.

        Examples: ``fit.probability("tokens_per_param", above=20, compute=5.88e23)``,
        ``fit.probability("a", above=0.6)``.
        """
        from bayescale.allocation import probability

        return probability(self.allocation_draws(compute), quantity, above=above, below=below)

    # --- persistence -------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fit to ``path`` (netCDF) atomically: a failure leaves an older file intact.

        Raises
        ------
        FitFileError
            If the fit was loaded with only some of its groups (``load(path, groups=...)``):
            saving it would drop the others.
        """
        if storage.PARTIAL in self.tree.attrs:
            raise FitFileError(
                "this fit was loaded with only some of its groups (load(path, groups=...)); load it in full to save it"
            )
        return storage.write_atomic(self.tree, path)

    def __repr__(self) -> str:
        post = self.posterior
        return (
            f"<ScalingFit {self.law.name}: {len(self.runs)} runs, {post.sizes['chain']} chains x "
            f"{post.sizes['draw']} draws, seed {self.seed}>"
        )


#: The groups :meth:`ScalingFit.predict` reads (the posterior is always read).
PREDICT_GROUPS = ("runs", "discrepancy", "calibration")


def load(path: str | Path, groups: Iterable[str] | None = None) -> ScalingFit:
    """Load a fit saved by :meth:`ScalingFit.save` (no PyMC import, no compilation).

    Parameters
    ----------
    path : str or Path
    groups : iterable of str, optional
        Read only these groups besides the posterior -- e.g. :data:`PREDICT_GROUPS` for
        predictions, half the reading time; such a fit cannot be saved again.

    Raises
    ------
    FitFileError
        If the file is missing, corrupt, not a bayescale fit, or a fit of several groups or tasks
        (:func:`bayescale.loading.load` reads those).
    """
    tree = storage.read_tree(path, groups)
    for marker, what in ((storage.POOLED, "groups"), (storage.TASK, "tasks")):
        if marker in tree.attrs:
            raise FitFileError(
                f"'{path}' is a fit of several {what} ({tree.attrs[marker]}); this needs a single fit "
                "(fit one group's or task's runs on their own)"
            )
    return ScalingFit(tree)
