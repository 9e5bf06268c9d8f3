"""Reconciling a workdir's active jobs with their launcher: what Slurm says about jobs the
index still calls active, recorded in their directories (:meth:`JobDir.settle`, the
scheduler's rule) and then in the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._jobdir import JobDir
from .._vocabulary import ACTIVE_STATES, TERMINAL_STATES

if TYPE_CHECKING:
    from ..index import IndexDB
    from ..launchers import LaunchedJob, Launcher


def _caught_signal(job: dict[str, Any]) -> bool:
    """Whether the job recorded its own end on a signal (``xpm.run``'s SIGTERM handler):
    Slurm may know better why (a TIMEOUT, a PREEMPTED...), see ``backend_decides``."""
    return job["state"] == "CANCELLED" and str(job.get("reason") or "").startswith("terminated by")


def reconcile_launchers(db: IndexDB, jobs: list[dict[str, Any]]) -> None:
    """Ask each launcher about the active jobs in ``jobs`` (one batched query per kind).

    A Slurm job that Slurm reports ended (or no longer knows) without an outcome in its
    directory is recorded as Slurm says (FAILED with ``slurm: TIMEOUT``...), in the job
    directory (marker and event, by :meth:`JobDir.settle`, the scheduler's rule) then in
    the index.  Jobs are
    updated in place.  When the launcher cannot be asked (no ``squeue``), they are left as
    they are and a warning is printed.
    """
    slurm = [
        j
        for j in jobs
        if (j["state"] in ACTIVE_STATES or _caught_signal(j))
        and j.get("launcher") == "slurm"
        and j.get("launcher_job_id")
    ]
    if not slurm:
        return
    import sys

    from ..errors import LauncherError
    from ..launchers import LaunchedJob, backend_decides

    launched = {
        j["id"]: LaunchedJob(JobDir(db.workdir, j["task_id"], j["id"]), str(j["launcher_job_id"]))
        for j in slurm
    }
    outcomes: dict[str, Any] = {}
    try:
        for launcher, group in by_recorded_launcher(list(launched.values()), "slurm"):
            outcomes.update(launcher.poll(group))
    except LauncherError as e:
        print(f"xpm: cannot ask Slurm about {len(slurm)} active job(s): {e}", file=sys.stderr)
        return
    fixed = []
    for job in slurm:
        one = launched[job["id"]]
        outcome = outcomes.get(one.launcher_job_id)
        if outcome is not None and outcome.state not in TERMINAL_STATES:
            job["state"] = outcome.state  # shown, not written: the job directory is the truth
            continue
        jobdir = one.jobdir
        status = jobdir.read_status()
        marker = jobdir.read_marker(jobdir.failed_marker)
        if (status.state in ACTIVE_STATES and marker is None) or backend_decides(outcome, marker):
            jobdir.settle(outcome, "Slurm no longer knows it")
        fixed.append(job)
    refresh_rows(db, fixed)


def by_recorded_launcher(
    launched: list[LaunchedJob], kind: str
) -> list[tuple[Launcher, list[LaunchedJob]]]:
    """``launched`` grouped by the launcher their last attempt recorded (its ``describe()``),
    each group with that launcher rebuilt: a configured ``binpath`` is honoured."""
    from ..launchers import description_key, launcher_from_description

    groups: dict[str, tuple[Launcher, list[LaunchedJob]]] = {}
    for one in launched:
        attempts = one.jobdir.read_status().attempts
        described = attempts[-1].get("launcher_description") if attempts else None
        key = description_key(described, kind)
        if key not in groups:
            groups[key] = (launcher_from_description(described, kind), [])
        groups[key][1].append(one)
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
