"""A law's formula, parsed into a small expression tree -- never evaluated as Python.

The text is read by Python's own parser (``ast.parse`` in ``eval`` mode, after ``^`` becomes
``**``), and the tree is then checked node by node against a whitelist: numbers, names,
``+ - * /``, powers, unary signs and calls of the functions in :data:`FUNCTIONS`. Anything else
-- attributes, subscripts, strings, ``lambda``, keywords, comparisons -- is a
:class:`~bayescale.errors.FormulaError` naming what was found, before any value is computed.
The checked tree becomes :class:`Expr` nodes (:class:`Num`, :class:`Var`, :class:`Op`,
:class:`Call`), which :mod:`bayescale.laws.formula.evaluate` turns into numpy or PyTensor.

>>> parse("E + A/N^alpha")
Op(op='+', args=(Var(name='E'), Op(op='/', args=(Var(name='A'), Op(op='^', args=(Var(name='N'), Var(name='alpha')))))))
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from bayescale.errors import FormulaError

#: Functions a formula may call, with their number of arguments.
FUNCTIONS: dict[str, int] = {
    "log": 1,
    "log10": 1,
    "log1p": 1,
    "exp": 1,
    "sqrt": 1,
    "abs": 1,
    "tanh": 1,
    "softplus": 1,
    "sigmoid": 1,
    "min": 2,
    "max": 2,
}

MAX_LENGTH = 4000

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "^"}
_UNARY = {ast.USub: "neg", ast.UAdd: "pos"}
_WHAT = {
    ast.Attribute: "an attribute (a.b)",
    ast.Subscript: "a subscript (a[i])",
    ast.Lambda: "a lambda",
    ast.Compare: "a comparison",
    ast.BoolOp: "and/or",
    ast.IfExp: "an if-expression",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.JoinedStr: "a string",
    ast.NamedExpr: "an assignment (:=)",
    ast.Starred: "a starred argument",
    ast.GeneratorExp: "a generator",
    ast.ListComp: "a comprehension",
}


class Expr:
    """A node of a parsed formula."""

    def names(self) -> set[str]:
        """Every name in the expression (inputs and parameters)."""
        out: set[str] = set()
        for node in self.walk():
            if isinstance(node, Var):
                out.add(node.name)
        return out

    def walk(self):
        """This node and every node below it, depth first."""
        yield self
        for arg in getattr(self, "args", ()):
            yield from arg.walk()

    def text(self) -> str:
        """The expression as formula text (fully bracketed where precedence needs it)."""
        return _text(self, 0)


@dataclass(frozen=True)
class Num(Expr):
    """A number."""

    value: float


@dataclass(frozen=True)
class Var(Expr):
    """A name: an input column or a parameter."""

    name: str


@dataclass(frozen=True)
class Op(Expr):
    """An arithmetic operation: ``+ - * / ^`` (two arguments) or ``neg`` (one)."""

    op: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Call(Expr):
    """A call of one of :data:`FUNCTIONS`."""

    name: str
    args: tuple[Expr, ...]


def parse(text: str) -> Expr:
    """Parse a formula into an :class:`Expr` without evaluating anything.

    Parameters
    ----------
    text : str
        E.g. ``"E + A/N^alpha + B/D^beta"``; ``^`` and ``**`` both mean power.

    Raises
    ------
    FormulaError
        For empty text, a syntax error (e.g. unbalanced brackets), or anything outside the
        whitelist (unknown functions, attributes, strings, lambdas...), with what was found.
    """
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("the formula is empty; write the law, e.g. --law 'E + A/N^alpha + B/D^beta'")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"the formula is {len(text)} characters long; the limit is {MAX_LENGTH}")
    source = text.strip().replace("^", "**")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as ex:
        opened, closed = source.count("("), source.count(")")
        if opened != closed:
            raise FormulaError(
                f"unbalanced brackets in the formula {text!r}: {opened} '(' against {closed} ')'"
            ) from None
        where = f" at character {ex.offset}" if ex.offset else ""
        raise FormulaError(f"cannot read the formula {text!r}{where}: {ex.msg}") from None
    return _convert(tree.body, text)


def _convert(node: ast.AST, text: str) -> Expr:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise FormulaError(
                f"the formula {text!r} holds {node.value!r}; only numbers, names and operators are allowed"
            )
        return Num(float(node.value))
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise FormulaError(f"name {node.id!r} in the formula: names may not start with '_'")
        if node.id in FUNCTIONS:
            raise FormulaError(f"{node.id!r} is a function; call it, e.g. {node.id}(x)")
        return Var(node.id)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return Op(_BINARY[type(node.op)], (_convert(node.left, text), _convert(node.right, text)))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        inner = _convert(node.operand, text)
        return inner if isinstance(node.op, ast.UAdd) else Op("neg", (inner,))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise FormulaError(f"the formula {text!r} calls something other than a function name; allowed: {_known()}")
        name = node.func.id
        if name not in FUNCTIONS:
            raise FormulaError(f"unknown function {name!r} in the formula; allowed: {_known()}")
        if node.keywords:
            raise FormulaError(f"{name}() takes no keyword arguments")
        if len(node.args) != FUNCTIONS[name]:
            raise FormulaError(f"{name}() takes {FUNCTIONS[name]} argument(s), got {len(node.args)}")
        return Call(name, tuple(_convert(a, text) for a in node.args))
    what = _WHAT.get(type(node), type(node).__name__)
    if isinstance(node, ast.BinOp):
        what = f"the operator {type(node.op).__name__}"
    elif isinstance(node, ast.UnaryOp):
        what = f"the operator {type(node.op).__name__}"
    raise FormulaError(f"the formula {text!r} holds {what}; only numbers, names, + - * / ^ and {_known()} are allowed")


def _known() -> str:
    return ", ".join(FUNCTIONS)


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "^": 4}


def _text(node: Expr, parent: int) -> str:
    if isinstance(node, Num):
        return f"{node.value:g}"
    if isinstance(node, Var):
        return node.name
    if isinstance(node, Call):
        return f"{node.name}({', '.join(_text(a, 0) for a in node.args)})"
    assert isinstance(node, Op)
    mine = _PRECEDENCE[node.op]
    if node.op == "neg":
        out = f"-{_text(node.args[0], mine)}"
    elif node.op == "^":
        out = f"{_text(node.args[0], mine + 1)}^{_text(node.args[1], mine)}"
    else:
        right = mine + 1 if node.op in "-/" else mine
        out = f"{_text(node.args[0], mine)} {node.op} {_text(node.args[1], right)}"
    return f"({out})" if mine < parent or (mine == parent and node.op == "^") else out
