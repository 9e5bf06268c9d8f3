"""The launcher interface: prepare and submit a job, poll many at once, cancel.

A launcher runs the job-side command (``python -m xpm.run JOBDIR``) somewhere
and reports what became of it.  The scheduler talks to every backend through
this interface only.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .._jobdir import JobDir
from .._vocabulary import JobState
from ..errors import LauncherError

if TYPE_CHECKING:
    from ..launcherfinder import Host, HostEntry, Requirement


@dataclass
class LaunchedJob:
    """A job handed to a launcher: its directory and the launcher's id for it."""

    jobdir: JobDir
    launcher_job_id: str
    handle: Any = field(default=None, repr=False)


@dataclass
class LaunchOutcome:
    """What a launcher knows about one job: an xpm state and why."""

    state: JobState
    reason: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    #: The backend itself ended the job (a time limit, a node failure, a preemption, an
    #: out-of-memory kill, a cancel): it knows why better than the job process does.
    ended_by_backend: bool = False


class Launcher(ABC):
    """Where and how jobs run.  Subclasses: ``LocalLauncher``, ``SlurmLauncher``."""

    #: Short name recorded with each job ("local", "slurm").
    kind: ClassVar[str] = "abstract"
    #: How messages name the backend ("Slurm"; empty: "the <kind> launcher").
    backend_name: ClassVar[str] = ""
    #: The command that stops a job, as `xpm jobs kill` reports it ("scancel"; empty: none).
    cancel_command: ClassVar[str] = ""
    #: Whether dependencies can be handed to the backend (so the plan survives the experiment).
    supports_dependencies: ClassVar[bool] = False
    #: Seconds between two polls of this launcher's jobs (None: the launcher notifies).
    poll_interval: float | None = None
    #: A submitted job starts at once (RUNNING, not SUBMITTED): there is no queue between.
    starts_at_once: ClassVar[bool] = False
    #: Jobs outlive the experiment in the backend, so a later run can re-attach to them
    #: (a local job's process cannot be adopted by another experiment process).
    reattachable: ClassVar[bool] = False
    #: The launcher calls :attr:`on_exit` when one of its jobs ends, so the scheduler is
    #: woken instead of waiting for its next poll.
    notifies_exit: ClassVar[bool] = False
    #: Independent jobs can be submitted together (:meth:`submit_array`).
    supports_arrays: ClassVar[bool] = False
    #: Set by the scheduler on launchers that notify exits (:attr:`notifies_exit`).
    on_exit: Callable[[], None] | None = None

    @property
    def max_parallel(self) -> int | None:
        """How many jobs of this launcher may run at once (None: no limit from xpm)."""
        return None

    @property
    def max_array_size(self) -> int | None:
        """Most jobs in one :meth:`submit_array` call (None: no limit)."""
        return None

    #: Keys a launchers.yaml host of this kind may set beyond the common ones (``name``,
    #: ``type``, ``cpus``, ``memory``, ...): Slurm's ``partition``, ``account``, ...
    #: :meth:`host_settings` reads them into the host's ``settings``.
    host_keys: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def host_settings(cls, entry: HostEntry) -> dict[str, Any]:
        """The host's ``settings``: the :attr:`host_keys` that the launchers.yaml host
        ``entry`` sets, checked and converted (default: as written).  Raise the entry's
        one-line errors (``entry.expected(key, "...")``, ``entry.error("...")``) for a bad
        value."""
        return {key: entry.data[key] for key in cls.host_keys if entry.data.get(key) is not None}

    @classmethod
    def named(cls) -> str:
        """The backend as messages name it: :attr:`backend_name`, or "the <kind> launcher"."""
        return cls.backend_name or f"the {cls.kind} launcher"

    @classmethod
    def describe_host(cls, host: Host) -> list[str]:
        """What ``str(host)`` shows of the host's ``settings``, after its kind (default:
        nothing; Slurm: its partition)."""
        del host
        return []

    @classmethod
    def options_for(cls, host: Host, requirement: Requirement) -> dict[str, Any]:
        """The keyword arguments of this launcher running ``requirement`` (one alternative
        of a resource spec) on ``host`` (a launchers.yaml host of this kind): how
        :func:`~xpm.launcherfinder.find_launcher` configures it."""
        raise LauncherError(
            f"{cls.__name__} cannot be chosen by find_launcher: it defines no options_for()"
        )

    def room(self) -> int | None:
        """How many more jobs the backend accepts now (None: it sets no such limit).

        The scheduler asks before submitting, outside its lock, and submits only what fits;
        the rest waits until a later answer makes room.  Raises
        :class:`~xpm.errors.LauncherError` when the backend cannot be asked.
        """
        return None

    def warm_up(self) -> None:  # noqa: B027 - optional: most launchers need nothing
        """Get ready before the first submission of an experiment (default: nothing)."""

    def job_command(self, jobdir: JobDir) -> list[str]:
        """The command that runs the job of ``jobdir``: the job side's own
        (``python -m xpm.run JOBDIR``, from :func:`xpm.run.job_command`)."""
        from ..run import job_command

        return job_command(jobdir.path)

    def job_environment(self) -> dict[str, str]:
        """What a job's environment adds to the submitting process's (the job side's
        :func:`xpm.run.job_environment`: the same modules and the same xpm)."""
        from ..run import job_environment

        return job_environment()

    def submit_array(
        self,
        jobdirs: Sequence[JobDir],
        array_dir: Path,
        dependencies: Sequence[LaunchedJob] = (),
        task_ids: Sequence[int] | None = None,
        aftercorr: str | None = None,
    ) -> list[LaunchedJob]:
        """Submit independent jobs as one unit; called only when :attr:`supports_arrays`.

        ``task_ids`` numbers the jobs (default 0..n-1); ``aftercorr`` names an array whose
        task of the same number each job waits for.
        """
        raise NotImplementedError(f"{type(self).__name__} does not submit arrays")

    @abstractmethod
    def submit(self, jobdir: JobDir, dependencies: Sequence[LaunchedJob] = ()) -> LaunchedJob:
        """Start (or queue) the job of ``jobdir`` (its :meth:`job_command`, with
        :meth:`job_environment` added); returns the launched job."""

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
        """A JSON-able description recorded with each attempt of a job: ``kind`` and the
        options :meth:`from_description` takes back."""
        return {"kind": self.kind}

    @classmethod
    def from_description(cls, options: dict[str, Any]) -> Launcher:
        """The launcher :meth:`describe` recorded (``options``: what it returned, less
        ``kind``), to ask about or stop the jobs it launched from another process."""
        try:
            return cls(**options)
        except (TypeError, LauncherError):
            # Recorded by another xpm version (or another version of a lab's subclass) with
            # options this one does not take: keep those it takes (a configured binpath
            # still matters), the defaults for the rest.
            params = inspect.signature(cls.__init__).parameters
            known = {k: v for k, v in options.items() if k in params and k != "self"}
            try:
                return cls(**known)
            except (TypeError, LauncherError):
                return cls()

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "kind")
        return f"{type(self).__name__}({options})"
