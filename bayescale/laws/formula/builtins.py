"""The field's laws beyond N and D, by name: each one formula, its inputs' standard names and a citation.

``bayescale fit RUNS --law farseer`` uses the formula with the runs' columns named as below; other
column names are mapped with ``--input NAME=COLUMN`` (e.g. ``--input P=parallel_size``). Priors
are the formula engine's defaults by role (:mod:`bayescale.laws.formula.structure`) unless given.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Builtin:
    """A named law: formula over standard input names, what each input is, and where it comes from."""

    formula: str
    inputs: dict[str, str]
    citation: str
    cost: str | None = None


BUILTINS: dict[str, Builtin] = {
    "farseer": Builtin(
        "exp(s * N^q + S) + exp(B * N^b + Q) * D^(-exp(A * N^a + E))",
        {"N": "parameters", "D": "training tokens"},
        "Li et al. 2025, Farseer: a refined scaling law in large language models (data exponent varies with N)",
        "6 * N * D",
    ),
    "parscale": Builtin(
        "(A / (N * (k * log(P) + 1)))^alpha + E",
        {"N": "parameters", "P": "parallel streams"},
        "Chen et al. 2025, Parallel scaling law for language models",
        "N",
    ),
    "moe": Builtin(
        "exp(d + a * log(N) + b * log(X) + c * log(N) * log(X))",
        {"N": "dense parameters", "X": "number of experts"},
        "Clark et al. 2022, Unified scaling laws for routed language models (log L bilinear in log N, log E)",
        "N * X",
    ),
    "moe_granular": Builtin(
        "c + (g / G^gamma + a) / N^alpha + b / D^beta",
        {"N": "active non-embedding parameters", "D": "training tokens", "G": "granularity (d_ff / d_expert)"},
        "Krajewski et al. 2024, Scaling laws for fine-grained mixture of experts",
        "6 * N * D",
    ),
    "vocab": Builtin(
        "-E + A1 / N^alpha1 + A2 / V^alpha2 + B / H^beta",
        {"N": "non-vocabulary parameters", "V": "vocabulary size", "H": "training characters"},
        "Tao et al. 2024, Scaling laws with vocabulary (unigram-normalised loss; V for vocabulary parameters)",
        "N * H",
    ),
    "steplaw": Builtin(
        "E + A / N^alpha + B / D^beta + g * (log(lr) - (l0 - l1 * log(N) + l2 * log(D)))^2"
        " + h * (log(bsz) - (b0 + b1 * log(D)))^2",
        {"N": "non-embedding parameters", "D": "training tokens", "lr": "peak learning rate", "bsz": "batch size"},
        "Li et al. 2025, Predictable scale: Step Law (optimal lr ~ N^-0.713 D^0.307, batch ~ D^0.571); the quadratic "
        "penalty in log lr and log batch around that optimum is bayescale's",
        "6 * N * D",
    ),
}
