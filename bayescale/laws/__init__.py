"""Scaling laws. Each family is one module; :data:`LAWS` is the registry.

>>> get_law("chinchilla").formula
'L(N, D) = E + A / N^alpha + B / D^beta'
"""

from __future__ import annotations

from bayescale.data import Runs
from bayescale.errors import LawError
from bayescale.laws._base import Law
from bayescale.laws.chinchilla import Chinchilla
from bayescale.laws.data_constrained import DataConstrained
from bayescale.laws.kaplan import Kaplan
from bayescale.laws.power import Power

#: Law names accepted by :func:`get_law` (``power`` means ``power:C``).
LAWS = ("chinchilla", "kaplan", "data-constrained", "power:C", "power:N", "power:D")


def get_law(name: str | Law) -> Law:
    """Return the law called ``name`` (``chinchilla``, ``kaplan``, ``power``, ``power:N``...)."""
    if isinstance(name, Law):
        return name
    if str(name).lstrip().startswith("{"):  # a formula law as a saved fit stores it (FormulaLaw.key)
        import json

        from bayescale.laws.formula import FormulaLaw

        return FormulaLaw.from_spec(json.loads(name))
    key = str(name).strip().lower()
    if key == "chinchilla":
        return Chinchilla()
    if key == "kaplan":
        return Kaplan()
    if key in ("data-constrained", "data_constrained", "muennighoff"):
        return DataConstrained()
    if key == "power":
        return Power("C")
    if key.startswith("power:"):
        return Power(str(name).strip().split(":", 1)[1].upper())
    raise LawError(f"unknown law {name!r}; known laws: {', '.join(LAWS)} (power = power:C)")


def default_law(runs: Runs) -> Law:
    """Chinchilla when N and D are known (data-constrained when some run repeats data, D > U),
    else the power law in C (or the one input there is)."""
    if runs.has("N") and runs.has("D") and runs.has("U") and (runs.values("D") > runs.values("U")).any():
        return DataConstrained()
    if runs.has("N") and runs.has("D"):
        return Chinchilla()
    if runs.has("C"):
        return Power("C")
    return Power(runs.inputs[0])


def law_for(runs: Runs, law: str | Law | None) -> Law:
    """The law named by ``law`` (a name or a Law), or the :func:`default_law` of ``runs`` when None."""
    return default_law(runs) if law is None else get_law(law)


__all__ = ["LAWS", "Chinchilla", "DataConstrained", "Kaplan", "Law", "Power", "default_law", "get_law", "law_for"]
