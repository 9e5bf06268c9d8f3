"""The queries of the command line: list jobs, find one job, reconcile with disk, check.

Reads go through :func:`reconcile`: a job the index says is SUBMITTED or RUNNING is
compared with its directory, and a local job whose process is gone without leaving a
marker is recorded FAILED (marker and event in the job directory first, then the row),
so nothing is displayed as running forever.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .._jobdir import JobDir, iter_job_dirs
from .._vocabulary import ACTIVE_STATES, STATES, identifier_prefix
from ..errors import UsageError
from ._db import IndexDB
from ._settle import settle_crashed_runs, settle_workdir

#: States worth comparing with the job directory on each read.

IndexLike = IndexDB | str | os.PathLike[str]


@contextmanager
def _opened(index: IndexLike, readonly: bool = False) -> Iterator[IndexDB]:
    if isinstance(index, IndexDB):
        yield index
        return
    db = IndexDB(index, readonly=readonly)
    try:
        yield db
    finally:
        db.close()


def parse_tag_value(text: str) -> list[Any]:
    """Values a ``key=value`` filter written on the command line can match (typed first)."""
    candidates: list[Any] = []
    low = text.lower()
    if low in ("true", "false"):
        candidates.append(1 if low == "true" else 0)
    else:
        try:
            candidates.append(int(text))
        except ValueError:
            with suppress(ValueError):
                candidates.append(float(text))
    candidates.append(text)
    return candidates


def _as_time(since: float | datetime | str) -> float:
    if isinstance(since, datetime):
        return since.timestamp()
    if isinstance(since, (int, float)):
        return float(since)
    try:
        return datetime.fromisoformat(since).timestamp()
    except ValueError:
        raise UsageError(
            f"--since {since!r}: give a date or time like 2025-01-31 or 2025-01-31T14:00"
        ) from None


def list_jobs(
    index: IndexLike,
    *,
    state: str | Sequence[str] | None = None,
    task: str | None = None,
    tags: Mapping[str, Any] | None = None,
    experiment: str | None = None,
    since: float | datetime | str | None = None,
    commit: str | None = None,
    limit: int | None = None,
    reconcile_active: bool = True,
) -> list[dict[str, Any]]:
    """Jobs of the index matching every filter given, most recent first.

    ``state``: one state or several (case-insensitive); ``task``: a task id or its last
    part (``learn`` matches ``mymodule.learn``); ``tags``: ``{"model": "cnn"}`` (strings from
    the command line also match typed values: ``"3"`` matches the integer 3);
    ``experiment``: jobs submitted by a run of it; ``since``: jobs active since that time
    (Unix time, datetime or ISO text; compares the latest of end, start, submit and
    submission times); ``commit``: jobs whose latest attempt (the one behind their state and
    results) ran code at a commit (prefix).

    Each job is a dict of the ``jobs`` columns plus ``experiment`` and ``tags`` (a dict).
    Active jobs are first reconciled with their directories (see :func:`reconcile`).
    """
    where: list[str] = []
    params: list[Any] = []
    selective = False  # a state filter narrower than the tag filters: read jobs first
    if state is not None:
        states = [state] if isinstance(state, str) else list(state)
        states = [s.upper() for s in states]
        unknown = [s for s in states if s not in STATES]
        if unknown:
            raise UsageError(f"unknown state {unknown[0]!r}: use one of {', '.join(STATES)}")
        where.append(f"j.state IN ({','.join('?' * len(states))})")
        selective = "DONE" not in states
        params += states
    if task:
        where.append("(j.task_id = ? OR j.task_id LIKE ? ESCAPE '\\')")
        params += [task, "%." + task.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")]
    joins: list[str] = []
    join_params: list[Any] = []
    for n, (key, value) in enumerate((tags or {}).items()):
        values = parse_tag_value(value) if isinstance(value, str) else [value]
        joins.append(
            f" {{join}} tags t{n} ON t{n}.job_id = j.id AND t{n}.key = ? "
            f"AND t{n}.value IN ({','.join('?' * len(values))})"
        )
        join_params += [key, *values]
    if experiment:
        where.append(
            "j.id IN (SELECT s.job_id FROM submissions s JOIN runs r ON r.id = s.run "
            "WHERE r.experiment = ?)"
        )
        params.append(experiment)
    if since is not None:
        where.append(
            "MAX(COALESCE(j.end_time, 0), COALESCE(j.start_time, 0), COALESCE(j.submit_time, 0),"
            " COALESCE(j.last_submitted, 0)) >= ?"
        )
        params.append(_as_time(since))
    if commit:
        where.append(
            "j.id IN (SELECT jg.job_id FROM job_git_states jg"
            " JOIN git_states g ON g.id = jg.git_state WHERE g.commit_sha LIKE ?)"
        )
        params.append(commit.lower() + "%")
    sql = (
        "SELECT j.*, r.experiment FROM jobs j"
        + "".join(joins).replace("{join}", "CROSS JOIN" if selective else "JOIN")
        + " LEFT JOIN runs r ON r.id = j.last_run"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY COALESCE(j.end_time, j.start_time, j.submit_time, j.last_submitted) DESC,"
        " j.id" + (f" LIMIT {int(limit)}" if limit is not None else "")
    )
    with _opened(index, readonly=False) as db:
        if reconcile_active:
            settle_crashed_runs(db)
        jobs = db.query_dicts(sql, [*join_params, *params])
        if reconcile_active:
            moved = may_have_moved_on(db, jobs)
            fresh = reconcile(db, moved)
            for job in jobs:
                if job["id"] in fresh:
                    job.update(fresh[job["id"]])
            from ._ingest import catch_up_readers  # live results of running jobs

            catch_up_readers(db, moved)
        _attach_tags(db, jobs)
    return jobs


def rows_for_jobs(db: IndexDB, sql: str, ids: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    """Rows of ``sql`` (with ``{ids}`` where the ``IN (...)`` list goes) for many job ids,
    in chunks that stay under SQLite's limit on bound parameters."""
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        with db.errors():
            yield from db.conn.execute(sql.format(ids=",".join("?" * len(chunk))), chunk)


def _attach_tags(db: IndexDB, jobs: list[dict[str, Any]]) -> None:
    by_id = {j["id"]: j for j in jobs}
    for job in jobs:
        job["tags"] = {}
    sql = "SELECT job_id, key, value, type FROM tags WHERE job_id IN ({ids})"
    for job_id, key, value, kind in rows_for_jobs(db, sql, list(by_id)):
        by_id[job_id]["tags"][key] = bool(value) if kind == "bool" else value


def find_job(index: IndexLike, ref: str) -> dict[str, Any]:
    """The job named by ``ref``: an identifier prefix, or ``task/prefix`` (task id or its last part).

    Raises :class:`~xpm.errors.UsageError` when no job or several jobs match.
    """
    ref = ref.strip()
    task, _, prefix = ref.rpartition("/")
    if task.startswith("jobs/"):
        task = task[len("jobs/") :]
    prefix = prefix.lower()
    if (not prefix and not task) or (prefix and not identifier_prefix(prefix)):
        raise UsageError(
            f"job {ref!r}: give an identifier prefix (hex digits) or TASK/PREFIX, "
            "as `xpm jobs list` shows them"
        )
    matches = list_jobs_by_prefix(index, prefix, task or None)
    if not matches:
        raise UsageError(f"no job matches {ref!r}: `xpm jobs list` shows the jobs of the index")
    if len(matches) > 1:
        names = ", ".join(f"{j['task_id']}/{j['id'][:12]}" for j in matches[:5])
        more = "..." if len(matches) > 5 else ""
        raise UsageError(f"{ref!r} matches several jobs ({names}{more}): give more digits")
    return matches[0]


def list_jobs_by_prefix(
    index: IndexLike, prefix: str, task: str | None = None
) -> list[dict[str, Any]]:
    """Jobs whose identifier starts with ``prefix`` (optionally of ``task``), reconciled."""
    where = "j.id >= ? AND j.id < ?"
    params: list[Any] = [prefix, prefix + "g"]  # hex digits sort below 'g'
    if task:
        where += " AND (j.task_id = ? OR j.task_id LIKE ?)"
        params += [task, "%." + task]
    with _opened(index) as db:
        settle_crashed_runs(db)
        jobs = db.query_dicts(
            "SELECT j.*, r.experiment FROM jobs j LEFT JOIN runs r ON r.id = j.last_run "
            f"WHERE {where} ORDER BY j.id LIMIT 6",
            params,
        )
        fresh = reconcile(db, may_have_moved_on(db, jobs))
        for job in jobs:
            job.update(fresh.get(job["id"], {}))
        _attach_tags(db, jobs)
    return jobs


def may_have_moved_on(index: IndexDB, jobs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The ``jobs`` whose directory may hold a newer state than the index: the active ones,
    and those the index has not seen start whose directory has a history (a generated job
    run by hand, ``python -m xpm.run DIR``, never touches the index; one stat each)."""
    return [
        job
        for job in jobs
        if job["state"] in ACTIVE_STATES
        or (
            job["state"] == "UNSCHEDULED"
            and os.path.exists(JobDir(index.workdir, job["task_id"], job["id"]).events)
        )
    ]


def reconcile(index: IndexDB, jobs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Compare jobs the index says are active (or :func:`may_have_moved_on`) with their
    directories; fix what disagrees.

    A job of this host whose process is gone (:meth:`~xpm._jobdir.JobDir.gone`) and that
    left no marker is settled FAILED as lost in its directory (marker and event).  Rows whose directory says
    something else are rewritten (unless the index is read-only).  Returns the corrected
    ``jobs`` columns by identifier.
    """
    if not jobs:
        return {}
    host = socket.gethostname()
    fixed: list[Any] = []
    for job in jobs:
        jobdir = JobDir(index.workdir, job["task_id"], job["id"])
        if not jobdir.path.is_dir():
            continue
        status = jobdir.read_status()
        detail = jobdir.gone(status, host)
        if detail is not None:
            jobdir.settle(None, detail, pid=status.pid)
        from ._rows import read_job

        rows = read_job(jobdir, full=False)
        if any(rows.job.get(k) != job.get(k) for k in ("state", "end_time", "attempt", "reason")):
            fixed.append(rows)
    if fixed and not index.readonly:
        from ._ingest import write_jobs

        index.write(lambda conn: write_jobs(conn, fixed))
    return {r.job["id"]: r.job for r in fixed}


@dataclass(frozen=True)
class Mismatch:
    """A difference between the index and the job directories."""

    kind: str  # "missing-row", "missing-dir", "state", "attempt", "missing-run", "corrupt",
    # "task-table"
    job: str  # "task_id/identifier" ("" for problems of the file itself)
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.job} {self.detail}".replace("  ", " ")


def check(workdir: str | os.PathLike[str]) -> list[Mismatch]:
    """Every mismatch between the index of ``workdir`` and its job directories.

    Job directory without row, row without directory, state or attempt disagreeing (the
    directory's is the truth), run record without row, per-task tables disagreeing with
    the index's other tables, and damage found by SQLite's ``quick_check``.  What a crashed run left is settled first
    (:func:`settle_crashed_runs`); the rest is only read: fix it with
    :func:`~xpm.index.rebuild`.  An unreadable index raises
    :class:`~xpm.errors.IndexDatabaseError`.
    """
    workdir = Path(workdir).absolute()
    out: list[Mismatch] = []
    settle_workdir(workdir)  # what a crashed run left, settled once
    with IndexDB(workdir, readonly=True) as db:
        for problem in db.query("PRAGMA quick_check"):
            if problem[0] != "ok":
                out.append(Mismatch("corrupt", "", str(problem[0])))
        rows = {r["id"]: dict(r) for r in db.query("SELECT id, task_id, state, attempt FROM jobs")}
        runs = {r[0] for r in db.query("SELECT id FROM runs")}
        from ._tasktables import mismatches

        with db.errors():
            derived = [Mismatch("task-table", what, detail) for what, detail in mismatches(db.conn)]
    seen: set[str] = set()
    for jobdir in iter_job_dirs(workdir):
        seen.add(jobdir.identifier)
        name = f"{jobdir.task_id}/{jobdir.identifier}"
        found = rows.get(jobdir.identifier)
        if found is None:
            out.append(Mismatch("missing-row", name, "has a job directory but no row in the index"))
            continue
        status = jobdir.read_status()
        state = status.state
        if found["state"] != state:
            out.append(
                Mismatch("state", name, f"index says {found['state']}, directory says {state}")
            )
        elif (found["attempt"] or 0) != status.attempt:
            # The same ending again (a run the index missed reran it: an older xpm's).
            out.append(
                Mismatch(
                    "attempt",
                    name,
                    f"index says attempt {found['attempt']}, directory says {status.attempt}",
                )
            )
    for ident, job in sorted(rows.items()):
        if ident not in seen:
            out.append(
                Mismatch(
                    "missing-dir", f"{job['task_id']}/{ident}", "has a row but no job directory"
                )
            )
    from ._rows import read_run, run_records

    for record in run_records(workdir):
        run = read_run(record, submissions=False)
        if run is not None and run.run["id"] not in runs:
            out.append(
                Mismatch("missing-run", run.run["id"], "has a run record but no row in the index")
            )
    # A job already reported (its state differs...) differs in its task table too: once.
    reported = {m.job for m in out}
    return out + [m for m in derived if m.job not in reported]
