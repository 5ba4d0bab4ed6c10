"""Calibrating extrapolation bands on the user's own runs (leave-future-out).

A law fitted to small runs is only approximately right, and its error grows with the
distance of the extrapolation. The posterior alone cannot see this: it measures how well
the law fits the runs, not how far its form holds. So at fit time bayescale re-fits the
law on the runs below a compute cutoff, predicts the runs above it, and asks how much
larger the errors are than the sub-fit's own predictive spread, as a function of the
distance d of each held-out run outside the sub-fit's data (in natural-log units of N, D
or C, whichever is furthest). With

    log L_observed - median log L_predicted ~ Normal(0, s_i^2 + (kappa d_i)^2),

where s_i is the sub-fit's predictive scale, the growth rate kappa is estimated by maximum
likelihood over the held-out runs of all cutoffs. Predictions of the full fit then add a
discrepancy ``Normal(0, (kappa d)^2)`` to the log loss, d measured outside the full data.
Inside the data (d = 0) nothing changes, and kappa = 0 when the user's runs show no excess
error: bands widen only where the runs say extrapolation fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bayescale.data import INPUTS, Runs

#: Share of runs (top by compute) held out at each leave-future-out cutoff.
DEFAULT_HOLDOUTS: tuple[float, ...] = (0.2, 0.35)
#: Grid of the discrepancy growth rate kappa (log loss per unit of log scale).
KAPPA_GRID = np.concatenate([[0.0], np.geomspace(1e-4, 0.5, 400)])
#: Gaussian approximation: the 90% central interval spans 2 x 1.6449 standard deviations.
_Z90 = 1.6448536269514722


def log_ranges(runs: Runs) -> dict[str, tuple[float, float]]:
    """Range (min, max) of log N, log D, log C over the runs (the inputs they have)."""
    return {x: (float(runs.log(x).min()), float(runs.log(x).max())) for x in INPUTS if runs.has(x)}


def extrapolation_distance(points: Mapping[str, np.ndarray], ranges: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """Distance of each point outside the data, in natural-log units: the largest over N, D, C.

    Zero inside the data's range on every input; ``log(10) = 2.30`` for a model ten times
    larger than the largest run.
    """
    d = None
    for x, (lo, hi) in ranges.items():
        values = np.asarray(points.get(x, np.full(1, np.nan)), dtype=float)
        if np.isnan(values).all():
            continue
        lx = np.log(values)
        dx = np.maximum(0.0, np.maximum(lx - hi, lo - lx))
        d = dx if d is None else np.maximum(d, dx)
    if d is None:
        raise ValueError("no input in common between the points and the data ranges")
    return d


def estimate_kappa(residuals: np.ndarray, scales: np.ndarray, distances: np.ndarray) -> float:
    """Maximum-likelihood growth rate of the discrepancy (0 when errors fit the bands).

    Parameters
    ----------
    residuals : array
        Observed minus predicted median, in log loss, of held-out runs.
    scales : array
        The sub-fits' predictive standard deviations (log loss) at those runs.
    distances : array
        Extrapolation distances of those runs outside the sub-fits' data.
    """
    r, s, d = (np.asarray(a, dtype=float)[None, :] for a in (residuals, scales, distances))
    var = s**2 + (KAPPA_GRID[:, None] * d) ** 2
    loglik = -0.5 * (np.log(var) + r**2 / var).sum(axis=1)
    return float(KAPPA_GRID[int(np.argmax(loglik))])


def holdout_top_compute(runs: Runs, fraction: float) -> np.ndarray:
    """Boolean mask of the runs in the top ``fraction`` by compute (at least one run).

    Runs tied at the cutoff budget are held out together, so a budget is never split.
    """
    C = runs.values("C") if runs.has("C") else np.exp(sum(runs.log(x) for x in runs.inputs))
    n_out = max(1, round(fraction * len(C)))
    cutoff = np.sort(C)[::-1][n_out - 1]
    return C >= cutoff


def subset(runs: Runs, keep: np.ndarray) -> Runs:
    """The runs where ``keep`` is true."""
    return Runs(table=runs.table[keep].reset_index(drop=True), k=runs.k, source=runs.source, columns=runs.columns)


def leave_future_out(
    runs: Runs,
    law: str,
    priors: Mapping[str, object],
    min_runs: int,
    holdouts: Sequence[float] = DEFAULT_HOLDOUTS,
    seed: int = 0,
    draws: int = 300,
    tune: int = 400,
    chains: int = 2,
) -> dict[str, np.ndarray]:
    """Fit below compute cutoffs and collect residuals, predictive scales and distances above them.

    Cutoffs that would leave fewer than ``min_runs`` runs to fit are skipped.
    """
    import warnings

    from bayescale.diagnostics import DiagnosticsWarning
    from bayescale.sampling import fit

    out: dict[str, list[np.ndarray]] = {"residual": [], "scale": [], "distance": [], "holdout": []}
    for i, fraction in enumerate(holdouts):
        held = holdout_top_compute(runs, fraction)
        if (~held).sum() < min_runs or held.sum() == 0:
            continue
        train, test = subset(runs, ~held), subset(runs, held)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DiagnosticsWarning)  # short sub-fits: their spread is what is used
            sub = fit(
                train, law=law, priors=priors, draws=draws, tune=tune, chains=chains, seed=seed + 1 + i, calibrate=False
            )
        pred = sub.predict(**{x: test.values(x) for x in test.inputs}, interval=0.9)
        log_med = np.log(pred["median"].to_numpy())
        scale = (np.log(pred["upper"].to_numpy()) - np.log(pred["lower"].to_numpy())) / (2 * _Z90)
        out["residual"].append(np.log(test.loss) - log_med)
        out["scale"].append(scale)
        out["distance"].append(extrapolation_distance({x: test.values(x) for x in test.inputs}, log_ranges(train)))
        out["holdout"].append(np.full(len(test), fraction))
    return {k: np.concatenate(v) if v else np.empty(0) for k, v in out.items()}
