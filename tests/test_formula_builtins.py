"""The named laws of the field (bayescale.laws.formula.builtins): each parses, its parameters are the
formula's other names, its cost uses its inputs, and published fitted values give plausible losses."""

from __future__ import annotations

import numpy as np
import pytest

from bayescale.laws.formula import FormulaLaw, parse
from bayescale.laws.formula.builtins import BUILTINS
from bayescale.laws.formula.evaluate import evaluate

#: Fitted values published with the laws (sources in docs/formula-laws.md), and a point inside each
#: paper's range with the loss the values should give there (within ``tol``).
PUBLISHED = {
    # Li et al. 2025 (Step Law) fits the optimum's location only: checked in its own test below
    "parscale": (  # QwenLM/ParScale parametric_fit.py on its Stack-V2-Python table (A in parameters)
        {"E": 0.6912, "A": 1.1306e7, "alpha": 0.18937, "k": 0.39345},
        {"N": 1.6e9, "P": 4.0},
        (0.9, 1.3),
    ),
    "moe_granular": (  # Krajewski et al. 2024, the fitted law (N active non-embedding parameters, D tokens)
        {"a": 18.1, "alpha": 0.115, "b": 30.8, "beta": 0.147, "g": 2.1, "gamma": 0.58, "c": 0.47},
        {"N": 1e9, "D": 2e10, "G": 8.0},
        (2.0, 3.5),
    ),
}


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_each_builtin_is_a_formula_over_its_inputs(name: str) -> None:
    builtin = BUILTINS[name]
    law = FormulaLaw(builtin.formula, list(builtin.inputs), name=name, citation=builtin.citation)
    assert set(law.inputs) == set(builtin.inputs)
    assert set(law.natural_params) == parse(builtin.formula).names() - set(builtin.inputs)
    assert builtin.citation and any(ch.isdigit() for ch in builtin.citation)  # an author and a year
    if builtin.cost is not None:
        assert parse(builtin.cost).names() <= set(builtin.inputs)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_values_give_a_loss_in_the_papers_range(name: str) -> None:
    params, point, (low, high) = PUBLISHED[name]
    builtin = BUILTINS[name]
    law = FormulaLaw(builtin.formula, list(builtin.inputs))
    coords = {x: np.log(np.array([v])) for x, v in point.items()}
    value = float(np.asarray(evaluate(law.tree, params, coords, set(law.inputs), np)).ravel()[0])
    assert low < value < high
    # and a larger model is predicted lower, all else equal
    bigger = dict(coords, N=coords["N"] + np.log(10.0))
    assert float(np.asarray(evaluate(law.tree, params, bigger, set(law.inputs), np)).ravel()[0]) < value


def test_steplaw_penalty_is_zero_at_the_published_optimum() -> None:
    """Step Law's optimum (lr* = 1.79 N^-0.713 D^0.307, batch* = 0.58 D^0.571): with l0 = log 1.79,
    l1 = 0.713, l2 = 0.307, b0 = log 0.58, b1 = 0.571 the penalties vanish there and grow either side."""
    builtin = BUILTINS["steplaw"]
    law = FormulaLaw(builtin.formula, list(builtin.inputs))
    params = {"E": 1.8, "A": 400.0, "alpha": 0.34, "B": 400.0, "beta": 0.28, "g": 0.05, "h": 0.02,
              "l0": np.log(1.79), "l1": 0.713, "l2": 0.307, "b0": np.log(0.58), "b1": 0.571}  # fmt: skip
    N, D = 1e9, 1e11
    lr, bsz = 1.79 * N**-0.713 * D**0.307, 0.58 * D**0.571

    def loss(lr_: float, bsz_: float) -> float:
        coords = {"N": np.log([N]), "D": np.log([D]), "lr": np.log([lr_]), "bsz": np.log([bsz_])}
        return float(np.asarray(evaluate(law.tree, params, coords, set(law.inputs), np)).ravel()[0])

    at = loss(lr, bsz)
    assert at == pytest.approx(1.8 + 400 / N**0.34 + 400 / D**0.28)
    assert loss(2 * lr, bsz) > at and loss(lr / 2, bsz) > at and loss(lr, 2 * bsz) > at
