"""One formula tree, two backends: numpy (``predict``) and PyTensor (the sampled model).

:func:`evaluate` walks an :class:`~bayescale.laws.formula.parse.Expr` with ``xp`` being
``numpy`` or ``pytensor.tensor``: the same walk builds the model's graph and the predictions'
arrays, so the two cannot drift apart (as ``Law.log_loss`` does for the built-in laws).

Inputs arrive as *coordinates*: the log of a column that is positive in every run (powers
and logs of it are then taken in log space: ``x^e = exp(e log x)``, ``log(x) = log x``,
exact and stable for inputs spanning many decades), or the value itself for a column that
may be zero or negative (``linear``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayescale.laws.formula.parse import Call, Expr, Num, Op, Var


def _sigmoid(x: Any, xp: Any) -> Any:
    if xp is np:
        from scipy.special import expit

        return expit(x)
    return xp.sigmoid(x)


def _softplus(x: Any, xp: Any) -> Any:
    if xp is np:
        return np.logaddexp(0.0, x)
    return xp.softplus(x)


_CALLS = {
    "log": lambda a, xp: xp.log(a[0]),
    "log10": lambda a, xp: xp.log10(a[0]),
    "log1p": lambda a, xp: xp.log1p(a[0]),
    "exp": lambda a, xp: xp.exp(a[0]),
    "sqrt": lambda a, xp: xp.sqrt(a[0]),
    "abs": lambda a, xp: xp.abs(a[0]),
    "tanh": lambda a, xp: xp.tanh(a[0]),
    "softplus": lambda a, xp: _softplus(a[0], xp),
    "sigmoid": lambda a, xp: _sigmoid(a[0], xp),
    "min": lambda a, xp: xp.minimum(a[0], a[1]),
    "max": lambda a, xp: xp.maximum(a[0], a[1]),
}


def evaluate(
    node: Expr,
    params: Mapping[str, Any],
    coords: Mapping[str, Any],
    log_inputs: frozenset[str] | set[str],
    xp: Any,
) -> Any:
    """The value of ``node`` (numpy array or PyTensor variable; arguments broadcast).

    Parameters
    ----------
    node : Expr
        The parsed formula.
    params : mapping
        A value per parameter name (scalars, draws as columns (S, 1), or tensors).
    coords : mapping
        A coordinate per input name (rows (1, n) or vectors): the log of the input for names
        in ``log_inputs``, else the input itself.
    log_inputs : set of str
        The inputs whose coordinate is their log.
    xp : module
        ``numpy`` or ``pytensor.tensor``.
    """

    def walk(n: Expr) -> Any:
        if isinstance(n, Num):
            return n.value
        if isinstance(n, Var):
            if n.name in coords:
                return xp.exp(coords[n.name]) if n.name in log_inputs else coords[n.name]
            return params[n.name]
        if isinstance(n, Call):
            if n.name == "log" and _is_log_input(n.args[0], coords, log_inputs):
                return coords[n.args[0].name]
            return _CALLS[n.name]([walk(a) for a in n.args], xp)
        assert isinstance(n, Op)
        if n.op == "neg":
            return -walk(n.args[0])
        left, right = n.args
        if n.op == "^":
            if _is_log_input(left, coords, log_inputs):
                return xp.exp(walk(right) * coords[left.name])
            if isinstance(right, Num) and float(right.value).is_integer() and abs(right.value) <= 4:
                return walk(left) ** int(right.value)  # x^2, x^-1: defined for negative x too
            return walk(left) ** walk(right)
        a, b = walk(left), walk(right)
        if n.op == "+":
            return a + b
        if n.op == "-":
            return a - b
        if n.op == "*":
            return a * b
        return a / b

    return walk(node)


def _is_log_input(n: Expr, coords: Mapping[str, Any], log_inputs: frozenset[str] | set[str]) -> bool:
    return isinstance(n, Var) and n.name in coords and n.name in log_inputs
