"""What an experiment knows of its submission of a job, beside the scheduler's job.

The scheduler's :class:`~xpm._scheduler.Job` holds what launching and watching need
(directory, launcher, dependencies, state, backend handle); the experiment, its run record
and the index recorder need the rest, kept here: the task object, the tags, and what the
submission wrote to the job directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._task import Task


@dataclass
class JobSubmission:
    """One run's submission of a job."""

    task: Task
    tags: dict[str, Any] = field(default_factory=dict)
    #: The params.json document written at submission (None: read it from the file).
    params_doc: dict[str, Any] | None = field(default=None, repr=False)
    #: Whether this submission rewrote the job's tags.json.
    tags_changed: bool = False
    #: Generate mode, directory created by this submission: it holds only what the
    #: submission wrote (params, tags) and nothing will change it in this run.
    untouched: bool = False
    #: Whether the submit listeners (the index) were told about this job.
    announced: bool = False
    #: When this run submitted it (Unix time; the run record has the same).
    submitted: float | None = None
