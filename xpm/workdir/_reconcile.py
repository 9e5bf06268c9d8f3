"""Reconciling a workdir's active jobs with their launcher: what Slurm (or any launcher
other than the local one) says about jobs the index still calls active, recorded in their
directories (:meth:`JobDir.settle`, the scheduler's rule) and then in the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._jobdir import JobDir
from .._vocabulary import ACTIVE_STATES, CAUGHT_SIGNAL, LOCAL_KIND, TERMINAL_STATES

if TYPE_CHECKING:
    from ..index import IndexDB
    from ..launchers import LaunchedJob, Launcher, LaunchOutcome


def _caught_signal(job: dict[str, Any]) -> bool:
    """Whether the job recorded its own end on a signal (``xpm.run``'s SIGTERM handler):
    Slurm may know better why (a TIMEOUT, a PREEMPTED...), see :meth:`JobDir.settle`."""
    return job["state"] == "CANCELLED" and str(job.get("reason") or "").startswith(CAUGHT_SIGNAL)


def reconcile_launchers(db: IndexDB, jobs: list[dict[str, Any]]) -> None:
    """Ask each launcher about the active jobs in ``jobs`` (one batched query per launcher
    the jobs recorded; local jobs are settled by their pid instead, see :meth:`JobDir.gone`).

    A job that its launcher reports ended (or no longer knows) without an outcome in its
    directory is recorded as the launcher says (FAILED with ``slurm: TIMEOUT``...), in the
    job directory (marker and event, by :meth:`JobDir.settle`, the scheduler's rule) then
    in the index.  Jobs are updated in place.  When a launcher cannot be asked (no
    ``squeue``, a launcher class that cannot be imported here), its jobs are left as they
    are and a warning is printed.
    """
    asked = [
        j
        for j in jobs
        if (j["state"] in ACTIVE_STATES or _caught_signal(j))
        and j.get("launcher") not in (None, LOCAL_KIND)
        and j.get("launcher_job_id")
    ]
    if not asked:
        return
    import sys

    from ..errors import LauncherError
    from ..launchers import LaunchedJob

    launched = {
        j["id"]: LaunchedJob(JobDir(db.workdir, j["task_id"], j["id"]), str(j["launcher_job_id"]))
        for j in asked
    }
    # By job identifier: two launchers may well use the same ids for different jobs.
    outcomes: dict[str, LaunchOutcome | None] = {}
    for group in by_recorded_launcher(list(launched.values())):
        try:
            answer = group.launcher().poll(group.jobs)
        except LauncherError as e:
            print(
                f"xpm: cannot ask {backend_name(group.kind)} about {len(group.jobs)} active "
                f"job(s): {e}",
                file=sys.stderr,
            )
            continue
        for one in group.jobs:
            outcomes[one.jobdir.identifier] = answer.get(one.launcher_job_id)
    fixed = []
    for job in asked:
        if job["id"] not in outcomes:
            continue  # its launcher could not be asked
        one = launched[job["id"]]
        outcome = outcomes[job["id"]]
        if outcome is not None and outcome.state not in TERMINAL_STATES:
            job["state"] = outcome.state  # shown, not written: the job directory is the truth
            continue
        # The scheduler's rule: an end the job recorded itself stays, unless it only
        # caught the backend's signal; otherwise the launcher's verdict, or lost.
        status = one.jobdir.read_status()
        if status.state in ACTIVE_STATES or status.terminal:
            one.jobdir.settle(outcome, f"{backend_name(status.launcher)} no longer knows it")
        fixed.append(job)
    refresh_rows(db, fixed)


def backend_name(kind: str | None) -> str:
    """How messages name a job's launcher: its class's :meth:`~xpm.launchers.Launcher.named`
    ("Slurm"), or "the <kind> launcher" for a kind this process cannot load."""
    from ..errors import LauncherError
    from ..launchers import launcher_class

    try:
        return launcher_class(str(kind)).named()
    except LauncherError:
        return f"the {kind} launcher"


@dataclass
class RecordedLauncher:
    """Jobs whose last attempts recorded the same launcher description (kind and options)."""

    kind: str
    description: dict[str, Any] | None
    jobs: list[LaunchedJob] = field(default_factory=list)

    def launcher(self) -> Launcher:
        """The launcher rebuilt from the description (a configured ``binpath`` is honoured);
        :class:`LauncherError` when its class cannot be found here."""
        from ..launchers import launcher_from_description

        return launcher_from_description(self.description, self.kind)


def by_recorded_launcher(launched: list[LaunchedJob]) -> list[RecordedLauncher]:
    """``launched`` grouped by the launcher their last attempt recorded (its
    :func:`~xpm.launchers.recorded_description`); jobs recorded by an older xpm, without a
    description, by the kind in their status."""
    from ..launchers import description_key

    groups: dict[str, RecordedLauncher] = {}
    for one in launched:
        status = one.jobdir.read_status()
        attempts = status.attempts
        described = attempts[-1].get("launcher_description") if attempts else None
        kind = str((described or {}).get("kind") or status.launcher or LOCAL_KIND)
        key = description_key(described, kind)
        if key not in groups:
            groups[key] = RecordedLauncher(kind, described)
        groups[key].jobs.append(one)
    return list(groups.values())


def refresh_rows(db: IndexDB, jobs: Sequence[dict[str, Any]]) -> None:
    """Rewrite the index rows of ``jobs`` from their directories and update the dicts."""
    if not jobs:
        return
    from ..index import read_job, write_jobs

    rows = []
    for job in jobs:
        jobdir = JobDir(db.workdir, job["task_id"], job["id"])
        if jobdir.path.is_dir():
            fresh = read_job(jobdir, full=False)
            rows.append(fresh)
            job.update(fresh.job)
    if rows and not db.readonly:
        db.write(lambda conn: write_jobs(conn, rows))
