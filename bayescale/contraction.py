"""What the runs decided: how far each parameter's posterior moved in from its prior.

For each reported parameter the *contraction* is ``1 - (w_post / w_prior)^2``, with ``w`` the
width of the central 90% interval of the posterior and of the prior (on the log scale for
the amplitudes, whose priors are heavy-tailed): the share of the prior's variance the runs
removed, in the robust form of Betancourt's posterior contraction. Near 1 the runs decided
the parameter; near 0 (or below: a posterior wider than its prior, as when runs conflict
with it) the answer is the prior's. Prior draws of the physical parameters come from the
sampled parameters' priors pushed through the law's :meth:`~bayescale.laws.Law.natural`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bayescale.laws import Law
from bayescale.priors import Prior, to_scipy

#: Parameters compared on the log scale.
LOG_SCALE = ("A", "B", "X_c", "N_c", "D_c", "C_c")
#: Prior draws used for the widths.
N_PRIOR_DRAWS = 20_000
#: Below this contraction a parameter is reported as resting on its prior.
PRIOR_DECIDED = 0.5


def prior_draws(
    law: Law, priors: Mapping[str, Prior], reference: Mapping[str, float], n: int = N_PRIOR_DRAWS, seed: int = 0
) -> dict[str, np.ndarray]:
    """Draws of every sampled and physical parameter from the prior (fixed ones constant)."""
    rng = np.random.default_rng(seed)
    sampled = {}
    for name, prior in priors.items():
        if prior.is_fixed:
            sampled[name] = np.full(n, float(prior.kwargs["value"]))
        else:
            sampled[name] = np.asarray(to_scipy(prior).rvs(size=n, random_state=rng), dtype=float)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        natural = law.natural({k: sampled[k] for k in law.params}, reference)
    return {**sampled, **natural}


def _width(x: np.ndarray, log: bool) -> float:
    x = np.asarray(x, dtype=float)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.log(x)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return float("nan")
    lo, hi = np.quantile(x, [0.05, 0.95])
    return float(hi - lo)


def contraction(prior: np.ndarray, posterior: np.ndarray, log: bool = False) -> float:
    """``1 - (w_post / w_prior)^2`` with ``w`` the central 90% width (NaN for a fixed parameter)."""
    wp, wq = _width(prior, log), _width(posterior, log)
    if not np.isfinite(wp) or wp <= 0:
        return float("nan")
    return float(1.0 - (wq / wp) ** 2)


def contractions(
    law: Law,
    priors: Mapping[str, Prior],
    reference: Mapping[str, float],
    posterior: Mapping[str, np.ndarray],
    names: list[str],
    seed: int = 0,
) -> dict[str, float]:
    """Contraction of each parameter in ``names`` (NaN where the parameter is fixed)."""
    drawn = prior_draws(law, priors, reference, seed=seed)
    out = {}
    for name in names:
        if name in priors and priors[name].is_fixed:
            out[name] = float("nan")
            continue
        out[name] = contraction(drawn[name], posterior[name], log=name in LOG_SCALE)
    return out
