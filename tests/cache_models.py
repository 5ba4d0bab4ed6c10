"""A small PyMC model for the compiled-model cache's tests (importable by their subprocesses)."""

from __future__ import annotations

import sys

import numpy as np


def tiny_model(n: int = 20, seed: int = 0, prior_sd: float = 5.0):
    """A linear regression with two data containers and a positive scale: a few seconds to compile."""
    import pymc as pm

    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 1.0 + 2.0 * x + rng.normal(scale=0.5, size=n)
    with pm.Model() as model:
        xd = pm.Data("x", x)
        yd = pm.Data("y", y)
        a = pm.Normal("a", 0.0, prior_sd)
        b = pm.Normal("b", 0.0, prior_sd)
        s = pm.HalfNormal("s", 1.0)
        pm.Normal("obs", a + b * xd, s, observed=yd)
    return model


if __name__ == "__main__":  # python -m tests.cache_models: compile (through the cache) and print the log density
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    from bayescale import model_cache

    compiled = model_cache.compile_model(tiny_model(), "tiny")
    code, logp, _ = model_cache._call_logp(compiled, np.zeros(compiled.n_dim))
    print(code, repr(logp))
