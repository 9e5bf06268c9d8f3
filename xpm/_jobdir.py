"""The one owner of the job-directory layout.

Every file of a job directory is named here and nowhere else::

    WORKDIR/jobs/<task id>/<identifier hex>/
        params.json      configuration of the task (written once, atomically)
        tags.json        tags of the job (written at submission)
        events.jsonl     state history: one JSON object per transition (append only);
                         a ``SUBMITTED`` event starts an attempt and records its provenance
                         (``run``, ``git``, ``launcher_description``)
        done             marker: the job finished successfully (atomic)
        failed           marker: the job failed; JSON with the reason (atomic)
        stdout.log       standard output of the current attempt
        stderr.log       standard error of the current attempt
        stdout.N.log     the same for earlier attempts (N = 1, 2, ...)
        results.jsonl    results reported by the current attempt (append only)
        results.N.jsonl  the same for earlier attempts (N as for the logs)
        lock             inter-process lock held by the scheduler that launches the job
        running.lock     inter-process lock held by the job process while it runs
        job.sh           launcher script (Slurm)

Writers: the scheduler creates the directory, params.json, tags.json and
appends ``submitted``/``failed`` events (and ``unscheduled`` for an ended job submitted
again); the job process appends ``running`` and
writes the markers.  Readers derive the status from markers first (the
markers are the truth), then from the last event.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _atomicio  # read through the module: replacing a function there reaches JobDir
from ._jobstatus import JobStatus, fold_events
from ._process import process_gone
from ._vocabulary import JOBS, LOCAL_KIND, TERMINAL_STATES, JobState, job_state, jobs_root
from .errors import JobDirectoryError

if TYPE_CHECKING:
    from .launchers import LaunchOutcome


_PARAMS = "params.json"
#: The one wording for a job whose process is gone without recording how it ended: every
#: such reason starts with it (``xpm jobs list --state failed`` shows them together).
LOST = "lost: the job ended without recording an outcome"
#: Why a job whose launcher reports success is FAILED all the same (no ``done`` marker).
NOT_MARKED_DONE = "the job process exited without marking the job done"
DONE_MARKER_MISSING = "its done marker was removed after it ended: the next run runs it again"


def lost_reason(detail: str | None = None) -> str:
    """The reason recorded for a lost job; ``detail`` says how it was found gone."""
    return f"{LOST} ({detail})" if detail else LOST


def tags_text(tags: dict[str, Any]) -> str:
    """The text of a tags.json file."""
    return json.dumps(tags, sort_keys=True)


class JobDir:
    """A job directory: every path in it, atomic writes and status reading."""

    __slots__ = ("location", "task_id", "identifier", "_path")

    def __init__(self, workdir: Path, task_id: str, identifier: str) -> None:
        # Each part is one path component, so the directory stays inside WORKDIR/jobs
        # whatever a params.json, an index row or a command line says.
        for part in (task_id, identifier):
            if not part or "/" in part or "\0" in part or part in (".", ".."):
                raise JobDirectoryError(
                    f"{part!r} cannot name a job directory under {os.fspath(workdir)}/jobs: "
                    "expected one path component (no '/', '.', '..' or NUL)"
                )
        self.task_id = task_id
        self.identifier = identifier
        #: The directory as a string: submission writes through it, since building a
        #: ``Path`` costs more than the mkdir it is for.
        self.location = f"{os.fspath(workdir)}/{JOBS}/{task_id}/{identifier}"
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        """The job directory."""
        path = self._path
        if path is None:
            path = self._path = Path(self.location)
        return path

    @classmethod
    def from_path(cls, path: Path) -> JobDir:
        """The job directory at ``path`` (``WORKDIR/jobs/<task id>/<hex>``)."""
        path = Path(path).absolute()
        if path.parent.parent.name != JOBS:
            raise JobDirectoryError(
                f"{path} is not a job directory: expected WORKDIR/jobs/<task id>/<identifier>"
            )
        return cls(path.parent.parent.parent, path.parent.name, path.name)

    @property
    def workdir(self) -> Path:
        """The workdir holding this job directory."""
        return self.path.parent.parent.parent

    @property
    def relpath(self) -> str:
        """The job directory relative to the workdir (``jobs/<task>/<hex>``)."""
        return f"{JOBS}/{self.task_id}/{self.identifier}"

    # --- file names -------------------------------------------------------------------------
    @property
    def params(self) -> Path:
        return self.path / _PARAMS

    @property
    def tags(self) -> Path:
        return self.path / "tags.json"

    @property
    def events(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def done_marker(self) -> Path:
        return self.path / "done"

    @property
    def failed_marker(self) -> Path:
        return self.path / "failed"

    @property
    def stdout(self) -> Path:
        return self.path / "stdout.log"

    @property
    def stderr(self) -> Path:
        return self.path / "stderr.log"

    @property
    def results(self) -> Path:
        return self.path / "results.jsonl"

    @property
    def lock(self) -> Path:
        return self.path / "lock"

    @property
    def running_lock(self) -> Path:
        return self.path / "running.lock"

    @property
    def script(self) -> Path:
        return self.path / "job.sh"

    def log(self, stream: str, attempt: int | None = None) -> Path:
        """The log of ``stream`` ('stdout' or 'stderr'); ``attempt`` N names a rotated one."""
        if stream not in ("stdout", "stderr"):
            raise JobDirectoryError(f"unknown log stream {stream!r}: use 'stdout' or 'stderr'")
        if attempt is None:
            return self.path / f"{stream}.log"
        return self.path / f"{stream}.{attempt}.log"

    def inside(self, relative: str | os.PathLike[str]) -> Path:
        """``relative`` resolved inside the job directory; refuses paths that would leave it."""
        rel = Path(relative)
        if rel.is_absolute() or ".." in rel.parts:
            raise JobDirectoryError(
                f"path {str(relative)!r} would leave the job directory: use a relative path without '..'"
            )
        return self.path / rel

    # --- writes -----------------------------------------------------------------------------
    def create(self) -> bool:
        """Create the directory; True when it did not exist before."""
        try:
            os.mkdir(self.location)
        except FileExistsError:
            return False
        except FileNotFoundError:  # the first job of its task: make the parents too
            try:
                os.makedirs(self.location)
            except FileExistsError:
                return False
        return True

    def exists(self) -> bool:
        return self.params.exists()

    def write_params(self, text: str, fresh: bool = False) -> None:
        """Write params.json; ``fresh``: the caller just created the directory.

        In a fresh directory a plain write is safe and saves a rename: another process
        submitting the same job replaces the file atomically, and a job process only
        starts after its launcher wrote (or replaced) the whole file.
        """
        if fresh:
            fd = os.open(f"{self.location}/{_PARAMS}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, text.encode("utf-8"))
            finally:
                os.close(fd)
        else:
            _atomicio.atomic_write_text(self.params, text)

    def write_tags(self, tags: dict[str, Any]) -> None:
        self.write_tags_text(tags_text(tags))

    def write_tags_text(self, text: str) -> None:
        """Write tags.json as rendered by :func:`tags_text`."""
        _atomicio.atomic_write_text(self.tags, text)

    def read_tags(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.tags.read_bytes().decode("utf-8", errors="replace")))
        except (FileNotFoundError, json.JSONDecodeError, TypeError, ValueError):
            return {}

    def add_event(self, state: JobState | None, **info: Any) -> None:
        """Append a state transition (or, with ``state=None``, information) to the history."""
        record: dict[str, Any] = {"time": time.time(), **info}
        if state is not None:
            record["state"] = state
        _atomicio.append_json_line(self.events, record)

    def mark_done(self, **info: Any) -> None:
        _atomicio.atomic_write_text(self.done_marker, json.dumps({"time": time.time(), **info}))

    def mark_failed(self, reason: str, **info: Any) -> None:
        _atomicio.atomic_write_text(
            self.failed_marker, json.dumps({"time": time.time(), "reason": reason, **info})
        )

    def end(self, state: JobState, reason: str | None = None, **info: Any) -> None:
        """Record how the job ended: the marker (the truth, written atomically) then the
        event (the history).  ``state``: DONE, FAILED or CANCELLED; ``info``: exit code,
        signal... recorded in both (the ``done`` marker holds only its time)."""
        if state == "DONE":
            self.mark_done()
            self.add_event("DONE", **info)
            return
        if state not in TERMINAL_STATES:
            raise JobDirectoryError(f"a job cannot end as {state!r}: use DONE, FAILED or CANCELLED")
        reason = reason or state.lower()
        self.mark_failed(reason, state=state, **info)
        self.add_event(state, reason=reason, **info)

    def requeue(self, run: str) -> bool:
        """Record that ``run`` submitted this ended job (FAILED or CANCELLED) again: it waits
        to run, no longer failed.  Until its new attempt starts, the directory (and so the
        index, the web view and ``xpm jobs list``) said FAILED with the old reason while the
        run counted it waiting.  Its logs and results are kept as the ended attempt's
        (``stdout.N.log``...), then the failed marker goes; its event stays in the history.

        The event comes first: a crash before the marker goes leaves it, so the job still
        reads FAILED and the next run requeues it again.  Returns whether it was ended."""
        ended = self.read_marker(self.failed_marker)
        if ended is None:
            return False
        self.add_event("UNSCHEDULED", requeued_by=run, after=ended.get("state") or "FAILED")
        # The ended attempt's logs and results become an earlier attempt's now, not at the
        # launch: a waiting job showed them as its own (a trial).  Then the marker goes.
        self.rotate_for_new_attempt()
        return True

    def settle(
        self, verdict: LaunchOutcome | None, lost: str | None = None, **info: Any
    ) -> tuple[JobState, str | None]:
        """The one rule for a job whose process is gone: what happened to it.

        An outcome the job recorded itself wins (its markers).  Otherwise the launcher's
        ``verdict`` is recorded (a launcher reporting success without a ``done`` marker is a
        failure), and with no verdict (the launcher forgot the job, or there is no launcher
        to ask) the job is FAILED as lost, ``lost`` saying how it was found gone.  Writes
        the outcome (:meth:`end`) when it was not on disk; returns ``(state, reason)``.
        The scheduler, the workdir reconciler and the index's readers all settle with it.
        """
        if self.is_done():
            return "DONE", None
        failed = self.read_marker(self.failed_marker)
        # A backend ending a job (walltime, node failure, preemption) first sends it SIGTERM:
        # the job records only that it caught a signal, so the backend's verdict replaces it.
        replaced = (
            failed is not None
            and verdict is not None
            and verdict.ended_by_backend
            and failed.get("caught_signal") is not None
        )
        if failed is not None and not replaced:
            return job_state(failed.get("state")), failed.get("reason")
        if replaced and verdict is not None and verdict.exit_code is None and failed is not None:
            info = {"exit_code": failed.get("exit_code"), **info}  # the job's own (143...)
        state: JobState
        if verdict is None:
            state, reason = "FAILED", lost_reason(lost)
        else:
            state, reason = verdict.state, verdict.reason or "failed"
            info = {"exit_code": verdict.exit_code, "signal": verdict.signal, **info}
            if state == "DONE":
                state, reason = "FAILED", NOT_MARKED_DONE
        self.end(state, reason, **info)
        return state, reason

    def name_the_sender(self, reason: str) -> str | None:
        """Record that ``reason`` (``xpm jobs kill``) stopped this job, unless it ended on
        its own first; returns None when recorded, else the state it had ended in.

        A job stopped by a signal records one end, "terminated by SIGTERM", not knowing who
        sent it: the marker is rewritten to name the sender (an information event says so
        in the history), instead of a second CANCELLED beside the job's own.  A job killed
        before it could record anything (SIGKILL, a backend still stopping it) gets the end
        here.  A job that had succeeded or failed by itself keeps that end.
        """
        if self.is_done():
            return "DONE"
        failed = self.read_marker(self.failed_marker)
        if failed is None:
            self.end("CANCELLED", reason)
            return None
        if failed.get("caught_signal") is None:
            return str(failed.get("state", "FAILED"))
        kept = {k: v for k, v in failed.items() if k not in ("time", "reason", "caught_signal")}
        self.mark_failed(reason, **{**kept, "state": "CANCELLED"})
        self.add_event(None, signal_sent_by=reason)
        return None

    def ended_by_sender(self) -> bool:
        """Whether :meth:`name_the_sender` recorded this job's end (CANCELLED, no signal
        caught by the job): the job's own end on catching that signal must not replace it."""
        ended = self.read_marker(self.failed_marker)
        return (
            ended is not None and ended.get("state") == "CANCELLED" and "caught_signal" not in ended
        )

    def gone(self, status: JobStatus, host: str) -> str | None:
        """How this local job's recorded process is known to be gone, for :meth:`settle`
        (None: it may still run, or it runs elsewhere, or under a launcher such as Slurm
        whose own verdict the workdir reconciler records).

        On this host only, and safe against pid reuse (the process start time recorded
        with the pid must match): a RUNNING job whose process is gone, or a job launched
        locally that never started and whose launching process (the experiment) is gone.
        Either way no process may hold ``running.lock``.
        """
        if status.launcher not in (None, LOCAL_KIND):
            return None  # a batch system's verdict says more (TIMEOUT...): ask it instead
        if status.state == "RUNNING" and status.host == host and status.pid:
            if not process_gone(int(status.pid), status.pid_start):
                return None
            detail = f"its process {status.pid} on {host} is gone"
        elif status.state == "SUBMITTED" and status.launcher == LOCAL_KIND:
            by = status.submitter or {}
            pid = by.get("pid")
            if by.get("host") != host or not isinstance(pid, int):
                return None
            if not process_gone(pid, by.get("start")):
                return None
            detail = f"the experiment process {pid} on {host} that launched it is gone"
        else:
            return None
        if self.is_done() or self.failed_marker.exists() or self.running_lock_held():
            return None
        return detail

    def is_done(self) -> bool:
        return self.done_marker.exists()

    def running_lock_held(self) -> bool:
        """Whether a process holds ``running.lock`` (the job process, while it runs).

        Probed with the POSIX record lock the job process takes (``fcntl.lockf``, as
        fasteners does), and the file is always closed again: a probe repeated while
        waiting for another process must not leak a descriptor each time.  (POSIX locks
        belong to the process: never call this from a process that holds the lock.)
        """
        import fcntl

        try:
            fd = os.open(self.running_lock, os.O_RDWR)
        except FileNotFoundError:
            return False  # no job process ever started here
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EAGAIN):
                return True
            raise JobDirectoryError(
                f"cannot lock {self.running_lock} ({e.strerror}): xpm needs a file system "
                "with POSIX locks for its workdir"
            ) from e
        finally:
            os.close(fd)  # also drops the lock this probe took
        return False

    def results_of(self, attempt: int) -> Path:
        """The results an earlier attempt reported, kept as ``results.N.jsonl``."""
        return self.path / f"results.{attempt}.jsonl"

    def rotate_for_new_attempt(self) -> int:
        """Keep the previous attempt's logs (``stdout.N.log``) and results
        (``results.N.jsonl``) and clear its outcome, so that what the new attempt writes
        is never mixed with what an earlier one (other code, perhaps) produced.

        Returns the number the previous attempt's files now carry (0 when there were none).
        """
        current = [f for f in (self.stdout, self.stderr, self.results) if f.exists()]
        if not current:
            self.failed_marker.unlink(missing_ok=True)
            return 0
        n = self.earlier_attempts() + 1
        now_files = (self.stdout, self.stderr, self.results)
        for now, kept in zip(now_files, self._attempt_files(n), strict=True):
            if now in current:
                os.replace(now, kept)
        self.failed_marker.unlink(missing_ok=True)
        return n

    def restarted_by_backend(self) -> int:
        """Begin a run of the job that its backend restarted (a Slurm requeue): the killed
        run's outcome (a ``failed`` marker saying it caught SIGTERM) is not this one's, and
        its results go to ``results.N.jsonl`` like an earlier attempt's.  Its logs stay where
        they are: the backend appends this run's to them.  Returns N (0: no results)."""
        self.failed_marker.unlink(missing_ok=True)
        if not self.results.exists():
            return 0
        n = self.earlier_attempts() + 1
        os.replace(self.results, self.results_of(n))
        return n

    def earlier_attempts(self) -> int:
        """How many earlier attempts kept their logs and results here (``*.N.*``, N = 1...)."""
        n = 0
        while any(f.exists() for f in self._attempt_files(n + 1)):
            n += 1
        return n

    def _attempt_files(self, attempt: int) -> tuple[Path, Path, Path]:
        return self.log("stdout", attempt), self.log("stderr", attempt), self.results_of(attempt)

    # --- reads ------------------------------------------------------------------------------
    def read_marker(self, marker: Path) -> dict[str, Any] | None:
        try:
            text = marker.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError):
            # There but unreadable (a directory, no permission, damaged bytes): the marker
            # still says how the job ended, without details; readers must not fail on it.
            return {}
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            data = {}
        return data if isinstance(data, dict) else {}

    def read_status(self) -> JobStatus:
        """Fold the event history and the markers into a :class:`JobStatus`."""
        status = fold_events(_atomicio.read_json_lines(self.events))
        # The markers win over the event log: they are written first and atomically.
        if self.is_done():
            status.state = "DONE"
            status.reason = None
        elif status.state == "DONE":
            # The event follows the marker (:meth:`end`): this marker was removed since, and
            # the next run will run the job again, so the record must not say it is done.
            status.state, status.reason = "FAILED", DONE_MARKER_MISSING
        else:
            failed = self.read_marker(self.failed_marker)
            if failed is not None:
                status.state = job_state(failed.get("state"))
                status.reason = failed.get("reason", status.reason)
                status.exit_code = failed.get("exit_code", status.exit_code)
                status.signal = failed.get("signal", status.signal)
                status.end_time = failed.get("time", status.end_time)
        return status


def iter_job_dirs(workdir: Path) -> Iterator[JobDir]:
    """Every job directory (one holding a params.json) under ``WORKDIR/jobs``."""
    jobs = jobs_root(workdir)
    if not jobs.is_dir():
        return
    for task_dir in sorted(jobs.iterdir()):
        if not task_dir.is_dir() or task_dir.is_symlink():
            continue
        for job_dir in sorted(task_dir.iterdir()):
            if job_dir.is_dir() and not job_dir.is_symlink() and (job_dir / _PARAMS).exists():
                yield JobDir(Path(workdir), task_dir.name, job_dir.name)
