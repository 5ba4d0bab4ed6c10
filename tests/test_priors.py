"""Priors: parsing, validation and serialisation round trips."""

from __future__ import annotations

import pytest

from bayescale.errors import PriorError
from bayescale.priors import DISTRIBUTIONS, Prior, as_prior, parse_assignment, priors_from_json, priors_to_json


def test_parse_positional_and_keyword():
    assert Prior.parse("Normal(0.35, 0.1)") == Prior("Normal", mu=0.35, sigma=0.1)
    assert Prior.parse("Normal(mu=0.35, sigma=0.1)") == Prior("Normal", mu=0.35, sigma=0.1)
    assert Prior.parse("TruncatedNormal(1.8, 0.2, upper=2.0)").kwargs == {"mu": 1.8, "sigma": 0.2, "upper": 2.0}


def test_number_fixes_parameter():
    p = Prior.parse("0")
    assert p.is_fixed and p.kwargs == {"value": 0.0}
    assert as_prior(-1.5).kwargs == {"value": -1.5}


def test_round_trips():
    priors = {"alpha": Prior("LogNormal", mu=-1.0, sigma=0.5), "E": Prior("Constant", value=0.0)}
    assert priors_from_json(priors_to_json(priors)) == priors
    for p in priors.values():
        assert Prior.from_dict(p.to_dict()) == p
        assert as_prior(p.to_dict()) == p


def test_assignment():
    assert parse_assignment("alpha=Normal(0.35, 0.1)") == ("alpha", Prior("Normal", mu=0.35, sigma=0.1))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Normol(0, 1)", "unknown distribution 'Normol'"),
        ("Normal(0, x)", "must be numbers"),
        ("Normal(0, 1, 2)", "at most 2 arguments"),
        ("Normal(0)", "needs sigma"),
        ("Normal(0,", "cannot parse"),
        ("Normal(0, nu=1)", "takes mu, sigma"),
        ("Normal(0, 1e999)", "finite number"),
    ],
)
def test_bad_priors(text, message):
    with pytest.raises(PriorError, match=message):
        Prior.parse(text)


def test_bad_assignment():
    with pytest.raises(PriorError, match="NAME=DISTRIBUTION"):
        parse_assignment("Normal(0, 1)")


VALID_ARGS = {
    "Normal": {"mu": 0.3, "sigma": 0.1},
    "HalfNormal": {"sigma": 0.5},
    "LogNormal": {"mu": -1.0, "sigma": 0.5},
    "TruncatedNormal": {"mu": 1.0, "sigma": 0.5, "lower": 0.0, "upper": 2.0},
    "StudentT": {"nu": 4.0, "mu": 0.0, "sigma": 1.0},
    "HalfStudentT": {"nu": 4.0, "sigma": 1.0},
    "Cauchy": {"alpha": 0.0, "beta": 1.0},
    "HalfCauchy": {"beta": 1.0},
    "Uniform": {"lower": 0.0, "upper": 2.0},
    "Gamma": {"alpha": 2.0, "beta": 0.5},
    "InverseGamma": {"alpha": 3.0, "beta": 1.0},
    "Exponential": {"lam": 2.0},
    "Beta": {"alpha": 2.0, "beta": 3.0},
    "Weibull": {"alpha": 1.5, "beta": 1.0},
}


@pytest.mark.parametrize("dist", [d for d in DISTRIBUTIONS if d != "Constant"])
def test_every_distribution_has_a_density_that_integrates_to_one(dist):
    from scipy.integrate import quad

    from bayescale.priors import to_scipy

    rv = to_scipy(Prior(dist, **VALID_ARGS[dist]))
    lo, hi = rv.ppf(0.001), rv.ppf(0.999)  # the density's mass between its own quantiles
    mass, _ = quad(lambda x: float(rv.pdf(x)), lo, hi, limit=200)
    assert mass == pytest.approx(0.998, abs=1e-4)


def test_a_fixed_prior_has_no_density():
    from bayescale.priors import to_scipy

    with pytest.raises(PriorError, match="no prior density"):
        to_scipy(Prior("Constant", value=0.0))
