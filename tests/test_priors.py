"""Priors: parsing, validation and serialisation round trips."""

from __future__ import annotations

import pytest

from bayescale.errors import PriorError
from bayescale.priors import Prior, as_prior, parse_assignment, priors_from_json, priors_to_json


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
