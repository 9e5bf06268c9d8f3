"""What an experiment knows of its submission of a job, beside the scheduler's job.

The scheduler's :class:`~xpm._scheduler.Job` holds what launching and watching need
(directory, launcher, dependencies, state, backend handle); the experiment, its run record
and the index recorder need the rest, kept here: the task object, the tags, and what the
submission wrote to the job directory, and the tags it takes from upstream jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._scheduler import Job
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


def inherited_tags(
    label: str,
    dependencies: Sequence[Job],
    own: dict[str, Any],
    *,
    already_said: set[tuple[str, str]],
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The tags the job ``label`` takes from the jobs it depends on (the last one wins a
    key).  When two of them give one key different values and the job's own configuration
    does not tag that key, ``say`` tells which value the job records, once per task and key
    (``already_said`` holds those told): a sweep must not read one of them as the job's
    setting unawares."""
    tags: dict[str, Any] = {}
    givers: dict[str, Job] = {}
    for dep in dependencies:
        for key, value in dep.submission.tags.items():
            earlier = givers.get(key)
            said = (label.split("/")[0], key)
            if earlier is None or key in own or tags[key] == value:
                pass
            elif said not in already_said:
                already_said.add(said)
                say(
                    f"{label} depends on jobs tagged {key} differently ({tags[key]!r} in "
                    f"{earlier.task_id}/{earlier.identifier[:12]}, {value!r} in "
                    f"{dep.task_id}/{dep.identifier[:12]}): it records {key}={value!r}, the "
                    "last one's (said once per task and tag)"
                )
            tags[key] = value
            givers[key] = dep
    return tags
