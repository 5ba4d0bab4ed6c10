"""Laws: numpy and PyTensor agree; the centred form equals the physical formula."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from bayescale.datasets import load_demo
from bayescale.errors import LawError, RunsError
from bayescale.laws import LAWS, chinchilla, data_constrained, default_law, get_law, kaplan, law_for, power

RNG = np.random.default_rng(0)
N = np.exp(RNG.uniform(np.log(1e7), np.log(1e11), 50))
D = np.exp(RNG.uniform(np.log(1e8), np.log(1e13), 50))
C = 6 * N * D
REF = {"N": 19.0, "D": 22.0, "C": 43.0}
SAMPLED = {
    "chinchilla": {"E": 1.8, "alpha": 0.34, "beta": 0.36, "log_A_ref": -0.9, "log_B_ref": -1.0},
    "kaplan": {"alpha_N": 0.076, "alpha_D": 0.103, "log_L_ref": 1.1, "share_N": 0.3},
    "power:C": {"E": 1.7, "gamma": 0.15, "log_T_ref": 0.2},
    "power:N": {"E": 0.0, "gamma": 0.076, "log_T_ref": 1.0},
    "power:D": {"E": 1.5, "gamma": 0.3, "log_T_ref": -0.5},
    "data-constrained": {"E": 1.8, "alpha": 0.34, "beta": 0.36, "log_A_ref": -0.9, "log_B_ref": -1.0,
                         "R_D_star": 15.0, "R_N_star": 5.0},
}  # fmt: skip
U = D / np.exp(RNG.uniform(np.log(0.5), np.log(2000), 50))  # from fresh data to 2,000 epochs
LOGX = {"N": np.log(N), "D": np.log(D), "C": np.log(C), "U": np.log(U)}


@pytest.mark.parametrize("name", LAWS)
def test_numpy_and_pytensor_agree(name):
    law = get_law(name)
    p = SAMPLED[name]
    expected = law.log_loss(p, LOGX, REF, np)
    sym = {k: pt.scalar(k) for k in p if not (name == "power:N" and k == "E")}
    xs = {x: pt.vector(x) for x in law.inputs}
    args = {**sym}
    params = {**p, **sym}
    fn = pytensor.function([*args.values(), *xs.values()], law.log_loss(params, xs, REF, pt))
    got = fn(*[p[k] for k in args], *[LOGX[x] for x in law.inputs])
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("name", LAWS)
def test_centred_form_equals_physical_formula(name):
    law = get_law(name)
    nat = law.natural(SAMPLED[name], REF)
    centred = np.exp(law.log_loss(SAMPLED[name], LOGX, REF, np))
    if name == "chinchilla":
        physical = chinchilla.loss(N, D, **nat)
    elif name == "kaplan":
        physical = kaplan.loss(N, D, **nat)
    elif name == "data-constrained":
        physical = data_constrained.loss(N, D, U, **nat)
    else:
        x = law.inputs[0]
        physical = power.loss({"N": N, "D": D, "C": C}[x], E=nat["E"], X_c=nat[f"{x}_c"], gamma=nat["gamma"])
    np.testing.assert_allclose(centred, physical, rtol=1e-10)


def test_kaplan_reference_values_are_plausible():
    # Kaplan et al.'s published joint law: 1B params on 20B tokens is about 2.6 nats? Check the formula shape.
    value = kaplan.loss(1e9, 2e10, N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103)
    assert 2.0 < value < 3.5


def test_registry_and_defaults():
    assert get_law("power").name == "power:C"
    assert get_law("POWER:n").name == "power:N"
    with pytest.raises(LawError, match="unknown law 'chinchila'; known laws: chinchilla"):
        get_law("chinchila")
    with pytest.raises(LawError, match="must be N, D or C"):
        get_law("power:Q")
    runs = load_demo()
    assert default_law(runs).name == "chinchilla"
    assert law_for(runs, None).name == "chinchilla"
    assert law_for(runs, "kaplan").name == "kaplan"
    assert law_for(runs, get_law("power:N")).name == "power:N"


def test_default_law_compute_only():
    import pandas as pd

    from bayescale.data import load_runs

    runs = load_runs(pd.DataFrame({"C": [1e18, 1e19, 1e20], "loss": [3.0, 2.7, 2.5]}))
    assert default_law(runs).name == "power:C"
    with pytest.raises(LawError, match="law chinchilla needs N and D but the runs have no N, D"):
        get_law("chinchilla").check_runs(runs)


def test_one_distinct_value_is_for_the_prior_no_variation_is_rejected():
    import pandas as pd

    from bayescale.data import load_runs

    one_N = load_runs(pd.DataFrame({"N": [1e8] * 4, "D": [1e9, 2e9, 4e9, 8e9], "loss": [3.0, 2.9, 2.8, 2.7]}))
    get_law("chinchilla").check_runs(one_N)  # D varies: the prior decides alpha
    none = load_runs(pd.DataFrame({"N": [1e8] * 3, "D": [1e9] * 3, "loss": [3.0, 2.9, 2.95]}))
    with pytest.raises(RunsError, match="every run has the same N and D"):
        get_law("chinchilla").check_runs(none)
    with pytest.raises(RunsError, match="every run has the same N"):
        get_law("power:N").check_runs(none)
