"""Stopping jobs: SIGTERM to a local job's process group (SIGKILL after a grace period);
for jobs of any other launcher (Slurm's ``scancel``, or a launcher defined outside xpm),
one ``cancel()`` per launcher the jobs recorded.  Each stopped job is recorded CANCELLED
in its directory and then in the index.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._jobdir import JobDir
from .._process import process_alive
from .._vocabulary import ACTIVE_STATES, LOCAL_KIND, shown_state
from ..errors import UsageError
from ._reconcile import by_recorded_launcher, refresh_rows

#: Seconds a killed local job gets between SIGTERM and SIGKILL.
KILL_GRACE = 5.0


@dataclass
class KillResult:
    """What :func:`kill_jobs` did for one job: ``action`` is ``cancelled``, ``skipped`` (it
    had ended, or has nothing to stop yet) or ``failed`` (its launcher could not stop it:
    the job is left as it was)."""

    job: dict[str, Any]
    action: str
    detail: str


def _stop_local(pid: int, grace: float) -> str:
    """SIGTERM the process group of ``pid``, SIGKILL after ``grace`` seconds."""
    import signal  # lazy: `xpm jobs list` never needs it

    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "its process was already gone"
    except PermissionError:
        raise UsageError(
            f"not allowed to signal process group {pid}: the job belongs to another user"
        ) from None
    deadline = time.monotonic() + grace
    while process_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if process_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        return f"sent SIGTERM then SIGKILL to process group {pid}"
    return f"sent SIGTERM to process group {pid}"


def _cancel_word(launcher: Any) -> str:
    """How a backend job was stopped, for the report: its launcher's cancel command
    (``scancel``), else the backend that stopped it."""
    kind = type(launcher)
    return kind.cancel_command or f"cancelled by {kind.named()}:"


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our own child (tests launch jobs from this process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def kill_jobs(
    workdir: str | os.PathLike[str], jobs: Sequence[dict[str, Any]], *, grace: float = KILL_GRACE
) -> list[KillResult]:
    """Stop the active jobs among ``jobs`` and record them CANCELLED.

    Local jobs get SIGTERM on their process group (the pid comes from the job's status;
    SIGKILL after ``grace`` seconds); the jobs of any other launcher are cancelled by that
    launcher, rebuilt from what their last attempt recorded (one ``scancel`` for Slurm).  Each
    cancelled job gets a ``cancelled`` marker and event in its directory, then its index
    row is rewritten.  Jobs already ended are skipped; a local job running on another host
    is a :class:`UsageError` (kill it from there).
    """
    from ..index import open_index

    workdir = Path(workdir).absolute()
    import socket

    host = socket.gethostname()
    results: list[KillResult] = []
    local: list[tuple[dict[str, Any], JobDir, int]] = []
    backend: list[tuple[dict[str, Any], JobDir, str]] = []
    for job in jobs:
        jobdir = JobDir(workdir, job["task_id"], job["id"])
        status = jobdir.read_status()
        if status.terminal or status.state not in ACTIVE_STATES:
            results.append(KillResult(job, "skipped", f"not running ({shown_state(status.state)})"))
            continue
        if status.launcher not in (None, LOCAL_KIND):
            if not status.launcher_job_id:
                results.append(
                    KillResult(job, "skipped", f"no {status.launcher} job id recorded yet")
                )
                continue
            backend.append((job, jobdir, status.launcher_job_id))
            continue
        pid = status.pid or (int(status.launcher_job_id) if status.launcher_job_id else None)
        if status.host and status.host != host:
            raise UsageError(
                f"job {job['task_id']}/{job['id'][:12]} runs on host {status.host}, not "
                f"{host}: run `xpm jobs kill` there"
            )
        if pid is None:
            results.append(KillResult(job, "skipped", "no process id recorded yet"))
            continue
        if not jobdir.running_lock_held():
            # No job process holds running.lock: the recorded pid may belong to an
            # unrelated process by now (after a reboot or a SIGKILL); never signal it.
            results.append(KillResult(job, "skipped", "its job process is gone"))
            continue
        local.append((job, jobdir, int(pid)))
    cancelled: list[tuple[dict[str, Any], JobDir, str]] = []
    for job, jobdir, pid in local:
        cancelled.append((job, jobdir, _stop_local(pid, grace)))
    if backend:
        from ..errors import LauncherError
        from ..launchers import LaunchedJob

        rows = {jd.identifier: job for job, jd, _ in backend}
        ones = [LaunchedJob(jd, jid) for _, jd, jid in backend]
        for group in by_recorded_launcher(ones):
            try:
                stopping = group.launcher()
                stopping.cancel(group.jobs)
            except LauncherError as e:
                # Never record CANCELLED a job its launcher was not asked to stop.
                for one in group.jobs:
                    results.append(KillResult(rows[one.jobdir.identifier], "failed", str(e)))
                continue
            cancelled += [
                (
                    rows[one.jobdir.identifier],
                    one.jobdir,
                    f"{_cancel_word(stopping)} {one.launcher_job_id}",
                )
                for one in group.jobs
            ]
    for job, jobdir, detail in cancelled:
        ended = jobdir.name_the_sender("cancelled by `xpm jobs kill`")
        if ended is None:
            results.append(KillResult(job, "cancelled", detail))
        else:
            results.append(KillResult(job, "skipped", f"it ended {ended} before the kill"))
    if cancelled:
        with open_index(workdir) as db:
            refresh_rows(db, [job for job, _, _ in cancelled])
    return results
