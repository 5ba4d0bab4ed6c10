"""bayescale: Bayesian inference on neural scaling laws.

>>> import bayescale as bs
>>> runs = bs.load_runs("runs.csv")                      # doctest: +SKIP
>>> result = bs.fit(runs, law="chinchilla", seed=1)      # doctest: +SKIP
>>> result.predict(N=70e9, D=1.4e12)                     # doctest: +SKIP

Heavy modules (PyMC) are imported only when fitting.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("bayescale")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

_LAZY = {
    "load_runs": "bayescale.data",
    "Runs": "bayescale.data",
    "Prior": "bayescale.priors",
    "get_law": "bayescale.laws",
    "LAWS": "bayescale.laws",
    "fit": "bayescale.pipeline",
    "sample_prior_predictive": "bayescale.sampling",
    "ScalingFit": "bayescale.result",
    "backtest": "bayescale.backtesting",
    "compare": "bayescale.comparison",
    "Comparison": "bayescale.comparison",
    "average": "bayescale.comparison",
    "AveragedFit": "bayescale.averaging",
    "load": "bayescale.loading",
    "fit_task": "bayescale.task_pipeline",
    "TaskFit": "bayescale.task_fit",
    "PooledFit": "bayescale.pooled",
    "BayescaleError": "bayescale.errors",
    "datasets": "bayescale.datasets",
    "plots": "bayescale.plots",
    "fit_many": "bayescale.many",
    "Job": "bayescale.many",
    "write_report": "bayescale.report",
    "design": "bayescale.next_runs",
    "Design": "bayescale.next_runs",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'bayescale' has no attribute {name!r}")
    module = import_module(_LAZY[name])
    return module if name in ("datasets", "plots") else getattr(module, name)
