"""Laws from formulas: parsed (never evaluated as Python), turned into the sampled model's PyTensor
graph and ``predict``'s numpy from one tree, with default priors by each parameter's role.

``parse`` reads the text, ``structure`` finds the parameters' roles, ``evaluate`` computes the tree
on either backend, ``law`` is the :class:`FormulaLaw`, ``runs`` checks a table against it,
``lawfile`` reads a law kept in TOML, ``builtins`` holds the field's laws by name.
"""

from bayescale.laws.formula.law import FormulaLaw
from bayescale.laws.formula.parse import FUNCTIONS, parse
from bayescale.laws.formula.runs import prepare

__all__ = ["FUNCTIONS", "FormulaLaw", "parse", "prepare"]
