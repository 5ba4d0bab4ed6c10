"""Typed errors. Every error a user can cause is a :class:`BayescaleError`.

The command line prints the message of a :class:`BayescaleError` as one line and exits
with its ``exit_code``; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class BayescaleError(Exception):
    """Base class of the errors a user can cause; the message says what to do."""

    exit_code: int = 2


class RunsError(BayescaleError, ValueError):
    """The table of runs is missing, malformed or unsuitable for the law."""


class PriorError(BayescaleError, ValueError):
    """A prior specification cannot be parsed or does not fit the law."""


class LawError(BayescaleError, ValueError):
    """An unknown law, or a law that needs inputs the runs do not have."""


class FormulaError(LawError):
    """A law's formula cannot be read, or names something it may not (an unknown function, Python)."""


class FitFileError(BayescaleError, OSError):
    """A fit file is missing, corrupt, or not written by bayescale."""


class PredictionError(BayescaleError, ValueError):
    """Points to predict are invalid (non-positive, non-finite, missing inputs)."""


class BayescaleWarning(UserWarning):
    """Base class of the package's own warnings: the command line always shows them on stderr."""


class DiagnosticsError(BayescaleError, RuntimeError):
    """The sampler's diagnostics failed and ``strict`` was requested."""

    exit_code = 3


class GroupError(BayescaleError):
    """A group that a pooled fit does not have, or a group asked of a fit that has none."""
