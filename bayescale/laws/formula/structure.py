"""What each parameter of a formula does: the roles that choose its default prior and centring.

Roles, read from where a parameter sits in the tree:

- ``amplitude``: a bare parameter multiplying a product that holds a power of an input with a
  parameter exponent (``A`` in ``A / N^alpha``, ``cS`` in ``cS * S^(-beta)``), appearing
  nowhere else. It is *centred*: the model samples the term's value at a reference point of the
  inputs (the mean of the log inputs) instead of the amplitude, which removes the near-perfect
  correlation between an amplitude and its exponent -- what made the built-in laws mix.
- ``decay``: the exponent of a power of an input that decreases with it (``alpha`` in
  ``N^(-alpha)`` or ``A / N^alpha``): positive by default.
- ``exponent``: any other parameter exponent of an input (``q`` in ``N^q``): either sign.
- ``offset``: a bare parameter added at the top level (``E`` in ``E + ...``).
- ``coefficient``: everything else (``k`` in ``1 + k log(P)``, the weights inside ``exp``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bayescale.laws.formula.parse import Call, Expr, Num, Op, Var

ROLES = ("amplitude", "decay", "exponent", "offset", "coefficient")


@dataclass(frozen=True)
class Amplitude:
    """A centred amplitude: ``name`` multiplies ``prod x^e`` for each ``(input, exponent)`` in ``powers``."""

    name: str
    powers: tuple[tuple[str, Expr], ...]


@dataclass
class Structure:
    """The roles of a formula's parameters and its centrable amplitudes."""

    roles: dict[str, str] = field(default_factory=dict)
    amplitudes: dict[str, Amplitude] = field(default_factory=dict)


def analyse(tree: Expr, inputs: set[str], params: list[str], log_inputs: set[str]) -> Structure:
    """Roles of ``params`` in ``tree`` and the amplitudes that can be centred.

    Parameters
    ----------
    tree : Expr
        The parsed formula.
    inputs : set of str
        Names that are input columns.
    params : list of str
        Names that are parameters, in order of appearance.
    log_inputs : set of str
        Inputs positive in every run (only their powers are centred).
    """
    counts: dict[str, int] = {}
    for node in tree.walk():
        if isinstance(node, Var):
            counts[node.name] = counts.get(node.name, 0) + 1
    out = Structure()
    for node, parent in _with_parents(tree, None):
        if isinstance(node, Op) and node.op in "*/" and not (isinstance(parent, Op) and parent.op in "*/"):
            amp = _amplitude(node, inputs, log_inputs, counts)
            if amp is not None and amp.name not in out.amplitudes:
                out.amplitudes[amp.name] = amp
        if isinstance(node, Op) and node.op == "^" and node.args[0].names() & inputs:
            sign = _power_sign(node, tree)
            exponent = node.args[1]
            if isinstance(exponent, Op) and exponent.op == "neg":
                sign, exponent = -sign, exponent.args[0]
            if isinstance(exponent, Var) and exponent.name not in inputs:
                out.roles.setdefault(exponent.name, "decay" if sign < 0 else "exponent")
    for name in out.amplitudes:
        out.roles[name] = "amplitude"
    for term in _summands(tree):
        if isinstance(term, Var) and term.name not in inputs:
            out.roles.setdefault(term.name, "offset")
    for name in params:
        out.roles.setdefault(name, "coefficient")
    out.roles = {name: out.roles[name] for name in params}
    return out


def _with_parents(node: Expr, parent: Expr | None):
    yield node, parent
    for arg in getattr(node, "args", ()):
        yield from _with_parents(arg, node)


def _factors(node: Expr, sign: int = 1) -> list[tuple[Expr, int]]:
    """The factors of a product, each with +1 (numerator) or -1 (denominator)."""
    if isinstance(node, Op) and node.op == "*":
        return _factors(node.args[0], sign) + _factors(node.args[1], sign)
    if isinstance(node, Op) and node.op == "/":
        return _factors(node.args[0], sign) + _factors(node.args[1], -sign)
    return [(node, sign)]


def _amplitude(product: Expr, inputs: set[str], log_inputs: set[str], counts: dict[str, int]) -> Amplitude | None:
    factors = _factors(product)
    powers: list[tuple[str, Expr]] = []
    candidate = None
    for f, sign in factors:
        if isinstance(f, Var) and f.name not in inputs:
            if sign > 0 and counts[f.name] == 1 and candidate is None:
                candidate = f.name
        elif isinstance(f, Op) and f.op == "^" and isinstance(f.args[0], Var) and f.args[0].name in log_inputs:
            exponent = f.args[1]
            if exponent.names() and not exponent.names() & inputs:
                powers.append((f.args[0].name, exponent if sign > 0 else Op("neg", (exponent,))))
        elif isinstance(f, Var) and f.name in log_inputs:
            powers.append((f.name, Num(float(sign))))
    if candidate is None or not any(e.names() for _, e in powers):
        return None
    return Amplitude(candidate, tuple(powers))


def _power_sign(power: Op, tree: Expr) -> int:
    """-1 if ``power`` sits in the denominator of the product that holds it, else +1."""
    for node in tree.walk():
        if isinstance(node, Op) and node.op in "*/":
            for f, sign in _factors(node):
                if f is power:
                    return sign
    return 1


def _summands(node: Expr) -> list[Expr]:
    if isinstance(node, Op) and node.op == "+":
        return _summands(node.args[0]) + _summands(node.args[1])
    if isinstance(node, Op) and node.op == "-":
        return [*_summands(node.args[0]), Op("neg", (node.args[1],))]
    return [node]


def uses_log_of(tree: Expr, inputs: set[str]) -> set[str]:
    """Inputs that the formula takes a log, square root or non-integer power of (so must be positive)."""
    out: set[str] = set()
    for node in tree.walk():
        if isinstance(node, Call) and node.name in ("log", "log10", "sqrt"):
            arg = node.args[0]
            if isinstance(arg, Var) and arg.name in inputs:
                out.add(arg.name)
        if isinstance(node, Op) and node.op == "^" and isinstance(node.args[0], Var) and node.args[0].name in inputs:
            e = node.args[1]
            if not (isinstance(e, Num) and float(e.value).is_integer()):
                out.add(node.args[0].name)
    return out


def clamp_floors(tree: Expr, params: set[str]) -> dict[str, float]:
    """Parameters clamped from below at every use, ``max(p, c)`` with a number ``c > 0``: their floors.

    Below its floor such a parameter gives one and the same law, a flat plateau that prior volume
    fills and the chains cannot leave (ScaleBench's ``max(A, 1e-6) * N^(-alpha)``); :func:`unclamp`
    rewrites the clamp away so the parameter is sampled above the floor instead.
    """
    floors: dict[str, float] = {}
    clamped: dict[str, int] = {}
    for node in tree.walk():
        floor = _clamp(node, params)
        if floor is not None:
            name, c = floor
            floors[name] = max(c, floors.get(name, c))
            clamped[name] = clamped.get(name, 0) + 1
    uses: dict[str, int] = {}
    for node in tree.walk():
        if isinstance(node, Var) and node.name in floors:
            uses[node.name] = uses.get(node.name, 0) + 1
    return {name: c for name, c in floors.items() if uses[name] == clamped[name]}


def unclamp(tree: Expr, floors: dict[str, float]) -> Expr:
    """``tree`` with every ``max(p, c)`` of a parameter in ``floors`` replaced by ``p``."""
    found = _clamp(tree, set(floors))
    if found is not None:
        return Var(found[0])
    if isinstance(tree, Op):
        return Op(tree.op, tuple(unclamp(a, floors) for a in tree.args))
    if isinstance(tree, Call):
        return Call(tree.name, tuple(unclamp(a, floors) for a in tree.args))
    return tree


def _clamp(node: Expr, params: set[str]) -> tuple[str, float] | None:
    if not (isinstance(node, Call) and node.name == "max"):
        return None
    a, b = node.args
    if isinstance(b, Var) and isinstance(a, Num):
        a, b = b, a
    if isinstance(a, Var) and a.name in params and isinstance(b, Num) and b.value > 0:
        return a.name, float(b.value)
    return None
