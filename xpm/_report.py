"""Reporting results from a running task: ``xpm.report(accuracy=0.9, step=3)``."""

from __future__ import annotations

from typing import Any

from .errors import XpmError


def report(step: int | None = None, **values: Any) -> None:
    """Record results of the task running in this job process (see ``Task.report``)."""
    from ._task import Task, append_results
    from .run import current_task

    task = current_task()
    if not isinstance(task, Task):
        raise XpmError("xpm.report() works inside a running task; call it from execute()")
    append_results(task.__xpm_jobdir__, values, step)
