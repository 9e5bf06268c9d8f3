"""Writing index rows (built by :mod:`xpm.index._rows`) into the database, and rebuild.

The recorder (in the experiment process) and :func:`rebuild` write with the same
functions, so an index kept up to date while experiments run equals one rebuilt from the
directories.  Results of running jobs are caught up from where the index last read them.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._jobdir import JobDir, iter_job_dirs
from ._db import IndexDB, index_path
from ._digests import params_digest
from ._links import link_jobs, link_jobs_by_id
from ._rows import (
    RUN_KEYS,
    STATUS_COLUMNS,
    JobRows,
    ResultsCursor,
    RunRows,
    SubmissionRow,
    git_state_row,
    has_unread,
    read_job,
    read_results_from,
    read_run,
    run_records,
)
from ._schema import TABLE_NAMES
from ._tasktables import drop_task_tables, refresh_task_rows, values_of
from ._writecount import LOG


# --- jobs ----------------------------------------------------------------------------------
def _chunks(items: Sequence[str], n: int = 500) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def write_jobs(
    conn: sqlite3.Connection, jobs: Sequence[JobRows], *, link: bool = True, tables: bool = True
) -> None:
    """Upsert job rows and replace their params/tags/results/attempts (inside a
    transaction); ``link``: then point them at the run and git state of their latest
    attempt (:func:`link_jobs`); ``tables``: then their rows in the per-task tables.  A
    caller handling many jobs at once turns both off and does them itself, in that order."""
    if not jobs:
        return
    cols = ("id", "task_id", "path", *STATUS_COLUMNS)
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in cols[1:])
    conn.executemany(
        f"INSERT INTO jobs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
        f"ON CONFLICT(id) DO UPDATE SET {updates}",
        [tuple(j.job[c] for c in cols) for j in jobs],
    )
    ids = [j.job["id"] for j in jobs]
    full = [j for j in jobs if j.params is not None]
    full_ids = [j.job["id"] for j in full]
    for chunk in _chunks(full_ids):
        marks = ",".join("?" * len(chunk))
        conn.execute(f"DELETE FROM params WHERE job_id IN ({marks})", chunk)
        conn.execute(f"DELETE FROM tags WHERE job_id IN ({marks})", chunk)
    conn.executemany(
        "INSERT OR REPLACE INTO params (job_id, path, value, type, meta) VALUES (?, ?, ?, ?, ?)",
        [
            (j.job["id"], *p, 1 if j.meta and p[0] in j.meta else None)
            for j in full
            for p in j.params or ()
        ],
    )
    conn.executemany(
        "INSERT OR REPLACE INTO tags (job_id, key, value, type) VALUES (?, ?, ?, ?)",
        [(j.job["id"], *t) for j in full for t in j.tags or ()],
    )
    # In the same write as the rows: a kept copy of them is right while it is unchanged.
    conn.executemany(
        "UPDATE jobs SET params_digest = ? WHERE id = ?",
        [(_digest_of(j), j.job["id"]) for j in full],
    )
    write_results(conn, jobs)
    _write_attempts(conn, jobs, ids)
    if link:
        link_jobs_by_id(conn, ids)
    if tables:
        refresh_task_rows(conn, ids, known_values(jobs))


def _digest_of(job: JobRows) -> str:
    """The ``params_digest`` of ``job`` (its rows as :func:`write_jobs` writes them)."""
    meta = job.meta or ()
    return params_digest(
        ((*p, 1 if p[0] in meta else None) for p in job.params or ()), job.tags or ()
    )


def write_results(conn: sqlite3.Connection, jobs: Sequence[JobRows]) -> None:
    """Replace or extend the ``results`` rows of ``jobs`` and record how far each
    results.jsonl was read (``results_read``)."""
    replaced = [j.job["id"] for j in jobs if j.results_replace]
    for chunk in _chunks(replaced):
        marks = ",".join("?" * len(chunk))
        conn.execute(f"DELETE FROM results WHERE job_id IN ({marks})", chunk)
        conn.execute(f"DELETE FROM results_read WHERE job_id IN ({marks})", chunk)
    conn.executemany(
        "DELETE FROM results WHERE job_id = ? AND key = ? AND seq = ?",
        [(j.job["id"], key, seq) for j in jobs for key, seq in j.results_drop],
    )
    conn.executemany(
        "INSERT OR REPLACE INTO results (job_id, seq, key, value, type, step, time) "
        "VALUES (:job_id, :seq, :key, :value, :type, :step, :time)",
        [r for j in jobs for r in j.results],
    )
    conn.executemany(
        "INSERT OR REPLACE INTO results_read (job_id, bytes, lines, counts, file) "
        "VALUES (?, ?, ?, ?, ?)",
        [
            (
                j.job["id"],
                j.cursor.bytes,
                j.cursor.lines,
                json.dumps(j.cursor.counts),
                j.cursor.file,
            )
            for j in jobs
            if j.cursor is not None and j.cursor.bytes
        ],
    )


def read_cursors(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, ResultsCursor]:
    """The ``results_read`` rows of jobs ``ids`` (jobs without one are left out)."""
    out = {}
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        for job_id, size, lines, counts, file in conn.execute(
            "SELECT job_id, bytes, lines, counts, file FROM results_read "
            f"WHERE job_id IN ({marks})",
            chunk,
        ):
            try:
                parsed = json.loads(counts)
            except (TypeError, ValueError):
                continue  # damaged: read that file from the start again
            out[job_id] = ResultsCursor(size, lines, parsed, file)
    return out


def catch_up_results(
    conn: sqlite3.Connection, jobdirs: Iterable[JobDir], cursors: dict[str, ResultsCursor]
) -> dict[str, ResultsCursor]:
    """Add to the index what jobs ``jobdirs`` appended to their results.jsonl since
    ``cursors`` (read from ``results_read`` for jobs missing there), and their task-table
    rows.  Returns the new cursors of the jobs that had new lines (inside a transaction)."""
    dirs = list(jobdirs)
    missing = [j.identifier for j in dirs if j.identifier not in cursors]
    known = {**read_cursors(conn, missing), **cursors} if missing else cursors
    updates = []
    for jobdir in dirs:
        cursor = known.get(jobdir.identifier)
        try:
            stat = os.stat(jobdir.results)
        except OSError:
            continue
        if cursor is not None and not cursor.unread(stat):
            continue
        rows = JobRows({"id": jobdir.identifier})
        rows.results, rows.results_drop, rows.cursor, rows.results_replace = read_results_from(
            jobdir, cursor
        )
        if rows.cursor is not None and cursor is not None and rows.cursor.bytes == cursor.bytes:
            continue  # only part of a line so far
        updates.append(rows)
    if updates:
        write_results(conn, updates)
        refresh_task_rows(conn, [u.job["id"] for u in updates])
    return {u.job["id"]: u.cursor for u in updates if u.cursor is not None}


def catch_up_readers(db: IndexDB, jobs: Sequence[Mapping[str, Any]]) -> None:
    """For a reader (``xpm jobs list``, ``xpm results``): add what active ``jobs`` (rows
    with ``id`` and ``task_id``) appended to their results.jsonl since the index last read
    them (a detached run has no experiment process doing it).  A read-only index is left
    as it is; writing only when a file grew."""
    if not jobs:
        return
    from ..errors import IndexDatabaseError

    dirs = [JobDir(db.workdir, j["task_id"], j["id"]) for j in jobs]
    with db.errors():
        cursors = read_cursors(db.conn, [d.identifier for d in dirs])
    grown = []
    for jobdir in dirs:
        try:
            stat = os.stat(jobdir.results)
        except OSError:
            continue
        if has_unread(stat, cursors.get(jobdir.identifier)):
            grown.append(jobdir)
    if not grown or db.readonly:
        return
    with contextlib.suppress(IndexDatabaseError):  # e.g. a read-only file: shown later
        db.write(lambda conn: catch_up_results(conn, grown, cursors))


def known_values(jobs: Iterable[JobRows]) -> dict[str, dict[tuple[str, str], Any]]:
    """The task-table values of the jobs whose params, tags and results are all in memory."""
    return {
        j.job["id"]: values_of(j.params, j.tags or (), j.results, j.meta)
        for j in jobs
        if j.params is not None and j.results_replace
    }


def _write_attempts(conn: sqlite3.Connection, jobs: Sequence[JobRows], ids: list[str]) -> None:
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        conn.execute(f"DELETE FROM attempts WHERE job_id IN ({marks})", chunk)
        conn.execute(f"DELETE FROM attempt_git_states WHERE job_id IN ({marks})", chunk)
    attempts = [(j.job["id"], a) for j in jobs for a in j.attempts]
    if not attempts:
        return
    _insert_git_states(conn, [g for _, a in attempts for g in a["git"]])
    conn.executemany(
        "INSERT OR REPLACE INTO attempts (job_id, attempt, run, time, launcher, "
        "launcher_description, git_state) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                job_id,
                a["attempt"],
                a["run"],
                a["time"],
                a["launcher"],
                a["launcher_description"],
                a["git"][0]["id"] if a["git"] else None,
            )
            for job_id, a in attempts
        ],
    )
    conn.executemany(
        "INSERT OR REPLACE INTO attempt_git_states (job_id, attempt, position, git_state) "
        "VALUES (?, ?, ?, ?)",
        [
            (job_id, a["attempt"], n, g["id"])
            for job_id, a in attempts
            for n, g in enumerate(a["git"])
        ],
    )


# --- runs ----------------------------------------------------------------------------------
def write_runs(conn: sqlite3.Connection, runs: Sequence[RunRows]) -> None:
    """Upsert runs, their git states and experiments (inside a transaction)."""
    if not runs:
        return
    cols = ("id", *RUN_KEYS, "info")
    conn.executemany(
        f"INSERT OR REPLACE INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        [tuple(r.run[c] for c in cols) for r in runs],
    )
    for r in runs:
        rows = [git_state_row(s) for s in r.git_states]
        _insert_git_states(conn, rows)
        conn.execute("DELETE FROM run_git_states WHERE run = ?", (r.run["id"],))
        conn.executemany(
            "INSERT INTO run_git_states (run, position, git_state) VALUES (?, ?, ?)",
            [(r.run["id"], n, g["id"]) for n, g in enumerate(rows)],
        )
    for name in sorted({r.run["experiment"] for r in runs}):
        conn.execute(
            "INSERT OR REPLACE INTO experiments (name, first_start, last_start, runs) "
            "SELECT experiment, MIN(start_time), MAX(start_time), COUNT(*) FROM runs "
            "WHERE experiment = ? GROUP BY experiment",
            (name,),
        )


_GIT_COLUMNS = (
    "id",
    "repo",
    "commit_sha",
    "branch",
    "remote",
    "dirty",
    "diff",
    "untracked",
    "snapshot",
)


def _insert_git_states(conn: sqlite3.Connection, rows: Sequence[dict[str, Any]]) -> None:
    conn.executemany(
        f"INSERT OR IGNORE INTO git_states ({', '.join(_GIT_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(_GIT_COLUMNS))})",
        [tuple(g[c] for c in _GIT_COLUMNS) for g in rows],
    )


def write_submissions(
    conn: sqlite3.Connection, submissions: Sequence[SubmissionRow], *, link: bool = True
) -> None:
    """Record submissions and (``link``) point their jobs at the latest run that submitted
    them."""
    if not submissions:
        return
    conn.executemany(
        "INSERT OR REPLACE INTO submissions (run, job_id, time) VALUES (?, ?, ?)", submissions
    )
    if link:
        link_jobs_by_id(conn, sorted({s.job_id for s in submissions}))


# --- rebuild -------------------------------------------------------------------------------
def rebuild(workdir: str | os.PathLike[str], *, batch: int = 2000) -> dict[str, int]:
    """Recreate the whole index of ``workdir`` from its job directories and run records.

    A damaged index file is replaced; otherwise every row is deleted and written again in
    one transaction (readers see the old or the new content).  Returns row counts.
    """
    from ..errors import IndexDatabaseError, IndexTooNewError

    workdir = Path(workdir).absolute()
    path = index_path(workdir)
    try:
        index = IndexDB(workdir)
    except IndexTooNewError:
        raise  # never replace what a newer xpm wrote
    except IndexDatabaseError:
        if path.is_dir():
            raise  # a directory: not ours to delete
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        index = IndexDB(workdir)
    runs = [r for r in (read_run(p) for p in run_records(workdir)) if r is not None]
    jobdirs = list(iter_job_dirs(workdir))
    try:
        return _refill(index, runs, jobdirs, batch)
    except IndexDatabaseError as e:
        if "is unreadable (" not in str(e):  # locked, full disk, read-only: not damage
            raise
    # Damaged pages inside a file with a sound header ("database disk image is malformed")
    # show only when the tables are rewritten: start from an empty file.
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return _refill(IndexDB(workdir), runs, jobdirs, batch)


def _refill(index: IndexDB, runs: list[Any], jobdirs: list[JobDir], batch: int) -> dict[str, int]:
    """Replace every row of ``index`` in one transaction; returns row counts."""
    with index:

        def fill(conn: sqlite3.Connection) -> None:
            drop_task_tables(conn)
            for name in TABLE_NAMES:
                # meta keeps the counts and the file's name, and the log of writes logs
                # the rows deleted here: what a server kept is read again, never taken
                # for the rows rewritten with a log counting from 1 again.
                if name not in ("meta", LOG):
                    conn.execute(f'DELETE FROM "{name}"')
            write_runs(conn, runs)
            for start in range(0, len(jobdirs), batch):
                write_jobs(
                    conn,
                    [read_job(j) for j in jobdirs[start : start + batch]],
                    link=False,
                    tables=False,
                )
            write_submissions(conn, [s for r in runs for s in r.submissions], link=False)
            link_jobs(conn)
            refresh_task_rows(conn)

        index.write(fill)
        counts = {
            name: index.conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
            for name in TABLE_NAMES
        }
    return counts
