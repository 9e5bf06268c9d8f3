"""Settling what a crashed experiment left: its jobs, its run record, its rows.

When an experiment, its fork server and its jobs die together (the OOM killer, a reboot,
``kill -9`` of the process group), nobody records how the jobs ended: their directories
say SUBMITTED or RUNNING, their rows may still say UNSCHEDULED, and the run stays open.
Every reader of the index (``xpm jobs list|show``, ``xpm index check``, ``xpm serve``)
calls :func:`settle_crashed_runs` first: an open run of this host whose experiment process
is gone (pid and start time compared, so a reused pid is not mistaken for it) is settled
once, with the rule the scheduler uses (:meth:`xpm._jobdir.JobDir.settle`), and the index
is brought level with the directories.  It costs one query on the ``runs`` table when
nothing crashed.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._atomicio import atomic_write_text
from .._jobdir import iter_job_dirs
from .._process import process_gone
from .._vocabulary import TERMINAL_STATES, run_record
from ..errors import IndexDatabaseError
from ._db import IndexDB, index_path
from ._ingest import write_jobs, write_runs, write_submissions
from ._links import link_jobs_by_id
from ._rows import JobRows, RunRows, read_job, read_run
from ._tasktables import refresh_task_rows

#: The outcome recorded in the run record of a run whose process died without closing it.
RUN_LOST = "lost: the experiment process ended without closing its run"


def _echo(text: str) -> None:
    print(text, file=sys.stderr)


def crashed_runs(db: IndexDB) -> list[dict[str, Any]]:
    """The open runs of this host whose experiment process is gone."""
    host = socket.gethostname()
    rows = db.query_dicts(
        "SELECT id, experiment, run_id, pid, info FROM runs WHERE end_time IS NULL AND host = ?",
        [host],
    )
    out = []
    for row in rows:
        try:
            info = json.loads(row["info"] or "{}")
        except ValueError:
            info = {}
        start = info.get("pid_start") if isinstance(info, dict) else None
        if isinstance(row["pid"], int) and process_gone(row["pid"], start):
            out.append(row)
    return out


def settle_crashed_runs(db: IndexDB, echo: Callable[[str], None] = _echo) -> int:
    """Settle the runs :func:`crashed_runs` finds; returns the number of jobs settled lost.

    Each job directory whose process is known gone (:meth:`~xpm._jobdir.JobDir.gone`) is
    settled FAILED as lost; each run record is closed (``outcome``: :data:`RUN_LOST`);
    then every row that disagrees with its directory, and the runs with their submissions,
    are written again as a rebuild would write them.  A read-only index is left alone.
    """
    if db.readonly:
        return 0
    crashed = crashed_runs(db)
    if not crashed:
        return 0
    try:
        return _settle(db, crashed, echo)
    except OSError as e:  # a read-only or full workdir: read it as it is, say why once
        where = f"{e.strerror or e}: {e.filename}" if e.filename else str(e.strerror or e)
        echo(
            f"xpm: run(s) {', '.join(r['id'] for r in crashed)} ended without closing but "
            f"cannot be settled here ({where}); their jobs show as left until a run or "
            "`xpm jobs list` on a writable workdir settles them"
        )
        return 0


def _settle(db: IndexDB, crashed: list[dict[str, Any]], echo: Callable[[str], None]) -> int:
    workdir = db.workdir
    host = socket.gethostname()
    settled = 0
    jobdirs = list(iter_job_dirs(workdir))
    for jobdir in jobdirs:
        status = jobdir.read_status()
        if status.state in TERMINAL_STATES:
            continue
        detail = jobdir.gone(status, host)
        if detail is not None:
            jobdir.settle(None, detail)
            settled += 1
    runs: list[RunRows] = []
    for row in crashed:
        path = run_record(workdir, row["experiment"], row["run_id"])
        _close_record(path)
        rows = read_run(path)
        if rows is not None:
            runs.append(rows)
    stale = _stale_rows(db, jobdirs)

    def write(conn: Any) -> None:
        write_runs(conn, runs)
        # Linked and tabled below, once the submissions are right (the order rebuild uses).
        write_jobs(conn, stale, link=False, tables=False)
        touched: set[str] = set()
        for run in runs:
            # The record is the truth: the run's submissions are exactly those it holds.
            key = run.run["id"]
            before = [
                r[0] for r in conn.execute("SELECT job_id FROM submissions WHERE run = ?", (key,))
            ]
            conn.execute("DELETE FROM submissions WHERE run = ?", (key,))
            write_submissions(conn, run.submissions, link=False)
            touched.update(before, (s.job_id for s in run.submissions))
        touched.update(r.job["id"] for r in stale)
        ids = sorted(touched)
        link_jobs_by_id(conn, ids)
        refresh_task_rows(conn, ids)

    db.write(write)
    names = ", ".join(f"{r['id']} (process {r['pid']})" for r in crashed)
    lost = (
        f"{settled} job(s) left running settled as FAILED (lost); "
        if settled
        else "none of its jobs was lost; "
    )
    echo(
        f"xpm: run(s) {names} on {host} ended without closing: {lost}"
        "the index is up to date with their directories"
    )
    return settled


def writable_index(workdir: str | os.PathLike[str]) -> IndexDB | None:
    """The index of ``workdir`` opened for writing, for a reader that may settle what it
    finds; None when it is missing, read-only or unusable (then it is only read)."""
    workdir = Path(workdir).absolute()
    path = index_path(workdir)
    if not path.exists() or not os.access(path, os.W_OK) or not os.access(workdir, os.W_OK):
        return None
    try:
        return IndexDB(workdir)
    except IndexDatabaseError:
        return None  # reading it read-only reports what is wrong with it


def settle_workdir(workdir: str | os.PathLike[str]) -> None:
    """:func:`settle_crashed_runs` on the index of ``workdir`` when it can be written."""
    db = writable_index(workdir)
    if db is not None:
        with db:
            settle_crashed_runs(db)


def _close_record(path: Path) -> None:
    """Give the run record of a dead run its end (the experiment never wrote it)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(record, dict) or record.get("end_time") is not None:
        return
    record["end_time"] = time.time()
    record["outcome"] = RUN_LOST
    atomic_write_text(path, json.dumps(record, indent=1, default=str))


def _stale_rows(db: IndexDB, jobdirs: list[Any]) -> list[JobRows]:
    """Rows (as a rebuild reads them) of the jobs whose row is missing or disagrees."""
    rows = {
        r["id"]: r for r in db.query_dicts("SELECT id, state, end_time, attempt, reason FROM jobs")
    }
    out = []
    for jobdir in jobdirs:
        status = read_job(jobdir, full=False).job
        known = rows.get(jobdir.identifier)
        if known is None or any(
            known[k] != status.get(k) for k in ("state", "end_time", "attempt", "reason")
        ):
            out.append(read_job(jobdir))
    return out
