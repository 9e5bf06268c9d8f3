"""The launcher interface: prepare and submit a job, poll many at once, cancel.

A launcher runs the job-side command (``python -m xpm.run JOBDIR``) somewhere
and reports what became of it.  The scheduler talks to every backend through
this interface only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .._jobdir import JobDir


@dataclass
class LaunchedJob:
    """A job handed to a launcher: its directory and the launcher's id for it."""

    jobdir: JobDir
    launcher_job_id: str
    handle: Any = field(default=None, repr=False)


@dataclass
class LaunchOutcome:
    """What a launcher knows about one job: an xpm state and why."""

    state: str
    reason: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    #: The backend itself ended the job (a time limit, a node failure, a preemption, an
    #: out-of-memory kill, a cancel): it knows why better than the job process does.
    ended_by_backend: bool = False


def backend_decides(outcome: LaunchOutcome | None, marker: dict[str, Any] | None) -> bool:
    """Whether the backend's final ``outcome`` replaces the job's own failed ``marker``.

    A backend ending a job first sends it SIGTERM; the job process (``xpm.run``) records
    "terminated by SIGTERM" (``caught_signal`` in its marker) without knowing why.  Slurm
    knows (TIMEOUT, NODE_FAIL, PREEMPTED...): its state wins over such a marker, never over
    one the task itself wrote.
    """
    return (
        outcome is not None
        and outcome.ended_by_backend
        and marker is not None
        and marker.get("caught_signal") is not None
    )


class Launcher(ABC):
    """Where and how jobs run.  Subclasses: ``LocalLauncher``, ``SlurmLauncher``."""

    #: Short name recorded with each job ("local", "slurm").
    kind: ClassVar[str] = "abstract"
    #: Whether dependencies can be handed to the backend (so the plan survives the experiment).
    supports_dependencies: ClassVar[bool] = False
    #: Seconds between two polls of this launcher's jobs (None: the launcher notifies).
    poll_interval: float | None = None

    @property
    def max_parallel(self) -> int | None:
        """How many jobs of this launcher may run at once (None: no limit from xpm)."""
        return None

    @abstractmethod
    def submit(
        self,
        jobdir: JobDir,
        command: list[str],
        env: dict[str, str],
        dependencies: list[LaunchedJob],
    ) -> LaunchedJob:
        """Start (or queue) ``command`` for ``jobdir``; returns the launched job."""

    @abstractmethod
    def poll(self, jobs: list[LaunchedJob]) -> dict[str, LaunchOutcome]:
        """The outcome of every job still known to the backend, in one batched query.

        Keys are ``launcher_job_id``.  A job missing from the answer has left the backend
        without the backend knowing its fate; the scheduler then reads the job directory.
        """

    #: Set by the scheduler on launchers that can submit held: their jobs start only once
    #: the scheduler has recorded their ids and called :meth:`release`.
    hold_until_released: bool = False

    def release(self, jobs: Sequence[LaunchedJob]) -> None:
        """Let ``jobs`` start, once their ids are recorded (launchers that submit held)."""
        del jobs  # nothing is held by default

    @abstractmethod
    def cancel(self, jobs: list[LaunchedJob]) -> None:
        """Stop the given jobs (queued or running)."""

    def describe(self) -> dict[str, Any]:
        """A JSON-able description recorded with the job."""
        return {"kind": self.kind}

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "kind")
        return f"{type(self).__name__}({options})"
