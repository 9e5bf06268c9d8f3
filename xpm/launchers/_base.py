"""The launcher interface: prepare and submit a job, poll many at once, cancel.

A launcher runs the job-side command (``python -m xpm.run JOBDIR``) somewhere
and reports what became of it.  The scheduler talks to every backend through
this interface only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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

    @abstractmethod
    def cancel(self, jobs: list[LaunchedJob]) -> None:
        """Stop the given jobs (queued or running)."""

    def describe(self) -> dict[str, Any]:
        """A JSON-able description recorded with the job."""
        return {"kind": self.kind}

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "kind")
        return f"{type(self).__name__}({options})"
