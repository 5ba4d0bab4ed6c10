"""Load any fit file: a single fit, a pooled fit of several ladders, separate fits of groups or a task fit."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bayescale import storage
from bayescale.pooled import PooledFit, is_pooled
from bayescale.result import PREDICT_GROUPS, ScalingFit
from bayescale.separate import SeparateFit, is_separate
from bayescale.task_fit import TaskFit, is_task_fit

#: What :func:`load` returns.
AnyFit = ScalingFit | PooledFit | SeparateFit | TaskFit


def load(path: str | Path, groups: Iterable[str] | None = None) -> AnyFit:
    """Load any fit saved by bayescale: a :class:`~bayescale.result.ScalingFit`, a
    :class:`~bayescale.pooled.PooledFit`, a :class:`~bayescale.separate.SeparateFit` or a
    :class:`~bayescale.task_fit.TaskFit`.

    Parameters
    ----------
    path : str or Path
    groups : iterable of str, optional
        For a single fit, read only these groups of the file (see :func:`bayescale.result.load`);
        pooled and task fits are always read whole.

    Raises
    ------
    FitFileError
        If the file is missing, corrupt or not a bayescale fit.
    """
    tree = storage.read_tree(path, groups)
    if is_separate(tree):
        return SeparateFit(tree)
    if is_pooled(tree):
        return PooledFit(tree)
    if is_task_fit(tree):
        return TaskFit(tree)
    return ScalingFit(tree)


def load_for_prediction(path: str | Path) -> AnyFit:
    """:func:`load` with only the groups a prediction needs (:data:`~bayescale.result.PREDICT_GROUPS`)."""
    return load(path, PREDICT_GROUPS)
