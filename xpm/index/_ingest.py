"""From the job directories and run records to index rows, and writing those rows.

The recorder (in the experiment process) and :func:`rebuild` use the same functions, so
an index kept up to date while experiments run equals one rebuilt from the directories.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._atomicio import read_json_lines
from .._jobdir import JobDir, JobStatus, iter_job_dirs
from .._vocabulary import experiments_root
from ._db import IndexDB, index_path
from ._schema import TABLE_NAMES
from ._tasktables import drop_task_tables, refresh_task_rows, values_of

#: Columns of ``jobs`` taken from the job directory's status.
STATUS_COLUMNS = (
    "state",
    "reason",
    "attempt",
    "submit_time",
    "start_time",
    "end_time",
    "exit_code",
    "signal",
    "launcher",
    "launcher_job_id",
    "host",
    "pid",
)


# --- values --------------------------------------------------------------------------------
def typed(value: Any) -> tuple[Any, str]:
    """A JSON value as (SQLite value, kind): integers stay integers, containers become JSON."""
    if value is None:
        return None, "null"
    if isinstance(value, bool):
        return int(value), "bool"
    if isinstance(value, int):
        # SQLite integers are 64-bit: a larger one is kept whole as text, still typed "int".
        return (value if -(2**63) <= value < 2**63 else str(value)), "int"
    if isinstance(value, float):
        return (value if not math.isnan(value) else None), "float"
    if isinstance(value, str):
        return value, "str"
    kind = "dict" if isinstance(value, dict) else "list"
    return json.dumps(value, sort_keys=True, default=str), kind


# JSON values stored as they are, by exact type (bool and float need converting).
_SCALAR_KINDS = {str: "str", type(None): "null"}


def flatten_params(doc: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(dotted path, value, kind) for every value of a params.json document.

    Nested configurations give a ``config`` row (value: their type id) and rows for their
    own values under ``path.``; lists and tuples give a JSON row, and rows ``path.N`` for
    the configurations they hold.
    """
    objects = doc.get("objects") or []
    rows: list[tuple[str, Any, str]] = []

    def obj(ref: Any) -> dict[str, Any] | None:
        if isinstance(ref, int) and 0 <= ref < len(objects) and isinstance(objects[ref], dict):
            return objects[ref]  # type: ignore[no-any-return]
        return None

    def plain(v: Any) -> Any:
        if isinstance(v, list):
            return [plain(x) for x in v]
        if not isinstance(v, dict):
            return v
        if "$config" in v:
            o = obj(v["$config"])
            return {"$config": o.get("typeid") if o else None}
        if "$path" in v:
            return v["$path"]
        if "$genpath" in v:
            return v["$genpath"]
        if "$enum" in v:
            return v.get("name")
        if "$float" in v:
            return v["$float"]
        if "$tuple" in v:
            return [plain(x) for x in v["$tuple"]]
        if "$dict" in v:
            return {k: plain(x) for k, x in v["$dict"].items()}
        return {k: plain(x) for k, x in v.items()}

    def walk(o: dict[str, Any], prefix: str, stack: tuple[int, ...]) -> None:
        values = o.get("values")
        if not isinstance(values, dict):
            return
        for key, v in values.items():
            kind = _SCALAR_KINDS.get(type(v))
            if kind is not None:  # most values: no need for emit's dispatch
                rows.append((f"{prefix}{key}", v, kind))
            else:
                emit(f"{prefix}{key}", v, stack)

    def emit(path: str, v: Any, stack: tuple[int, ...]) -> None:
        if isinstance(v, dict):
            if "$config" in v:
                ref = v["$config"]
                child = obj(ref)
                rows.append((path, child.get("typeid") if child else None, "config"))
                if child is not None and ref not in stack:
                    walk(child, path + ".", (*stack, ref))
                return
            if "$path" in v or "$genpath" in v:
                rows.append((path, v.get("$path", v.get("$genpath")), "path"))
                return
            if "$enum" in v:
                rows.append((path, v.get("name"), "enum"))
                return
            if "$float" in v:
                number = float(v["$float"])
                rows.append((path, None if math.isnan(number) else number, "float"))
                return
            if "$tuple" in v:
                emit_list(path, v["$tuple"], stack)
                return
            rows.append((path, json.dumps(plain(v.get("$dict", v)), sort_keys=True), "dict"))
            return
        if isinstance(v, list):
            emit_list(path, v, stack)
            return
        value, kind = typed(v)
        rows.append((path, value, kind))

    def emit_list(path: str, items: list[Any], stack: tuple[int, ...]) -> None:
        rows.append((path, json.dumps(plain(items)), "list"))
        for n, item in enumerate(items):
            if isinstance(item, dict) and "$config" in item:
                emit(f"{path}.{n}", item, stack)

    root_ref = doc.get("root")
    root = obj(root_ref)
    if root is not None:
        walk(root, "", (root_ref,))  # type: ignore[arg-type]
    return rows


def git_state_id(state: dict[str, Any]) -> str:
    """The content key of a git state: sha256 of its canonical JSON."""
    text = json.dumps(state, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- jobs ----------------------------------------------------------------------------------
#: Reports of one key of one job kept in ``results`` before thinning (the file keeps all).
RESULTS_CAP = 10_000


def keep_report(n: int) -> bool:
    """Whether the ``n``-th report (0 first) of a key of a job is kept in ``results``: the
    first :data:`RESULTS_CAP`, then one in 2 up to twice that, one in 4 up to 4 times...
    (about RESULTS_CAP / 2 more rows per doubling: 45,000 rows for 1,000,000 reports).
    The latest report of each key is kept as well, whatever its number."""
    if n < RESULTS_CAP:
        return True
    stride = 2 << ((n // RESULTS_CAP).bit_length() - 1)
    return n % stride == 0


@dataclass
class ResultsCursor:
    """How much of a job's results.jsonl the index holds (the ``results_read`` row)."""

    bytes: int = 0
    lines: int = 0  # records read: the seq of the next one
    counts: dict[str, list[int]] = field(default_factory=dict)  # key -> [reports, latest seq]

    def copy(self) -> ResultsCursor:
        return ResultsCursor(self.bytes, self.lines, {k: list(v) for k, v in self.counts.items()})


@dataclass
class JobRows:
    """What the index holds about one job directory (``params``/``tags`` None: leave them).

    ``results``: rows read from results.jsonl; they replace the job's rows in ``results``
    when ``results_replace`` (read from the start), else they are added after dropping
    ``results_drop`` ((key, seq) of latest reports that newer ones make thinned out).
    """

    job: dict[str, Any]
    params: list[tuple[str, Any, str]] | None = None
    tags: list[tuple[str, Any, str]] | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    #: Attempts that recorded their provenance (see :func:`attempt_rows`).
    attempts: list[dict[str, Any]] = field(default_factory=list)
    results_replace: bool = True
    results_drop: list[tuple[str, int]] = field(default_factory=list)
    cursor: ResultsCursor | None = None


def attempt_rows(status: JobStatus) -> list[dict[str, Any]]:
    """Rows of ``attempts`` (with their git states under ``git``) from a job's status."""
    rows = []
    for a in status.attempts:
        states = [g for g in a.get("git") or [] if isinstance(g, dict)]
        description = a.get("launcher_description")
        rows.append(
            {
                "attempt": a["attempt"],
                "run": a.get("run"),
                "time": a.get("time"),
                "launcher": a.get("launcher"),
                "launcher_description": None
                if description is None
                else json.dumps(description, sort_keys=True, default=str),
                "git": [git_state_row(g) for g in states],
            }
        )
    return rows


def status_columns(status: JobStatus) -> dict[str, Any]:
    """The ``jobs`` columns that come from the job's status."""
    return {
        "state": status.state,
        "reason": status.reason,
        "attempt": status.attempt,
        "submit_time": status.submit_time,
        "start_time": status.start_time,
        "end_time": status.end_time,
        "exit_code": status.exit_code,
        "signal": status.signal,
        "launcher": status.launcher,
        "launcher_job_id": status.launcher_job_id,
        "host": status.host,
        "pid": status.pid,
    }


def read_results_from(
    jobdir: JobDir, cursor: ResultsCursor | None = None
) -> tuple[list[dict[str, Any]], list[tuple[str, int]], ResultsCursor, bool]:
    """Rows of ``results`` from the job's results.jsonl, from ``cursor`` on (whole lines
    only: a line being written is read next time), else from the start.

    Returns (rows, (key, seq) of rows to drop, the new cursor, whether the rows replace
    all of the job's).  Only the rows :func:`keep_report` keeps, and the latest of each key.
    """
    replace = cursor is None
    start = cursor.copy() if cursor is not None else ResultsCursor()
    try:
        with open(jobdir.results, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < start.bytes:  # not the file read before: from the start
                replace, start = True, ResultsCursor()
            fh.seek(start.bytes)
            data = fh.read(size - start.bytes)
    except FileNotFoundError:
        return [], [], ResultsCursor(), True
    end = data.rfind(b"\n") + 1
    start.bytes += end
    rows: list[dict[str, Any]] = []
    drop: list[tuple[str, int]] = []
    pending: dict[str, int] = {}  # key -> index in rows of a latest-only row
    identifier = jobdir.identifier
    for line in data[:end].decode("utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        seq = start.lines
        start.lines += 1
        values = record.get("values") if isinstance(record, dict) else None
        if not isinstance(values, dict):
            continue
        step = record.get("step")
        for key, v in values.items():
            key = str(key)
            count = start.counts.setdefault(key, [0, -1])
            n, previous = count
            if n and not keep_report(n - 1):  # the previous latest is thinned out now
                if key in pending:
                    rows[pending.pop(key)] = {}
                else:
                    drop.append((key, previous))
            value, kind = typed(v)
            rows.append(
                {
                    "job_id": identifier,
                    "seq": seq,
                    "key": key,
                    "value": value,
                    "type": kind,
                    "step": step,
                    "time": record.get("time"),
                }
            )
            if not keep_report(n):
                pending[key] = len(rows) - 1
            count[0], count[1] = n + 1, seq
    return [r for r in rows if r], drop, start, replace


def read_results(jobdir: JobDir) -> list[dict[str, Any]]:
    """Every report of the job's results.jsonl as ``results`` rows, none thinned out (for
    showing one job; the index keeps what :func:`read_results_from` gives)."""
    rows = []
    for seq, record in enumerate(read_json_lines(jobdir.results)):
        values = record.get("values")
        if not isinstance(values, dict):
            continue
        step = record.get("step")
        for key, v in values.items():
            value, kind = typed(v)
            rows.append(
                {
                    "job_id": jobdir.identifier,
                    "seq": seq,
                    "key": str(key),
                    "value": value,
                    "type": kind,
                    "step": step,
                    "time": record.get("time"),
                }
            )
    return rows


# File names, checked against the layout owner (JobDir) at import.
_PROBE = JobDir(Path("/w"), "t", "i")
_PARAMS, _TAGS, _RESULTS = _PROBE.params.name, _PROBE.tags.name, _PROBE.results.name
_STATUS_FILES = frozenset({_PROBE.events.name, _PROBE.done_marker.name, _PROBE.failed_marker.name})


def read_job(
    jobdir: JobDir,
    *,
    full: bool = True,
    tags: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    untouched: bool = False,
    cursor: ResultsCursor | None = None,
) -> JobRows:
    """The rows of ``jobdir``: status and results; with ``full`` also params and tags.

    ``tags``/``params``: the job's tags and params.json document when the caller has them in
    memory (as written to the job directory), to save reading them back.  ``untouched``:
    the caller created the directory and wrote only those into it, so there is no status or
    result to read.  ``cursor``: read results.jsonl from there (see :func:`read_results_from`).
    """
    names: set[str] = set()
    if not untouched:
        # One listdir instead of opening files that a fresh job directory does not have.
        with contextlib.suppress(OSError):
            names = set(os.listdir(jobdir.location))
    has_status = not names.isdisjoint(_STATUS_FILES)
    status = jobdir.read_status() if has_status else JobStatus()
    job = {"id": jobdir.identifier, "task_id": jobdir.task_id, "path": jobdir.relpath}
    job.update(status_columns(status))
    rows = JobRows(job, attempts=attempt_rows(status))
    if _RESULTS in names:
        rows.results, rows.results_drop, rows.cursor, rows.results_replace = read_results_from(
            jobdir, cursor
        )
    if full:
        doc: Any = params
        if doc is None:
            try:
                with open(os.path.join(jobdir.path, _PARAMS), encoding="utf-8") as fh:
                    doc = json.load(fh)
            except (OSError, ValueError):
                doc = {}
        rows.params = flatten_params(doc) if isinstance(doc, dict) else []
        tag_values = tags if tags is not None else jobdir.read_tags() if _TAGS in names else {}
        rows.tags = [(str(k), *typed(v)) for k, v in sorted(tag_values.items())]
    return rows


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
        "INSERT OR REPLACE INTO params (job_id, path, value, type) VALUES (?, ?, ?, ?)",
        [(j.job["id"], *p) for j in full for p in j.params or ()],
    )
    conn.executemany(
        "INSERT OR REPLACE INTO tags (job_id, key, value, type) VALUES (?, ?, ?, ?)",
        [(j.job["id"], *t) for j in full for t in j.tags or ()],
    )
    write_results(conn, jobs)
    _write_attempts(conn, jobs, ids)
    if link:
        for chunk in _chunks(ids):
            link_jobs(conn, f"id IN ({','.join('?' * len(chunk))})", chunk)
    if tables:
        refresh_task_rows(conn, ids, known_values(jobs))


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
        "INSERT OR REPLACE INTO results_read (job_id, bytes, lines, counts) VALUES (?, ?, ?, ?)",
        [
            (j.job["id"], j.cursor.bytes, j.cursor.lines, json.dumps(j.cursor.counts))
            for j in jobs
            if j.cursor is not None and j.cursor.bytes
        ],
    )


def read_cursors(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, ResultsCursor]:
    """The ``results_read`` rows of jobs ``ids`` (jobs without one are left out)."""
    out = {}
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        for job_id, size, lines, counts in conn.execute(
            f"SELECT job_id, bytes, lines, counts FROM results_read WHERE job_id IN ({marks})",
            chunk,
        ):
            try:
                parsed = json.loads(counts)
            except (TypeError, ValueError):
                continue  # damaged: read that file from the start again
            out[job_id] = ResultsCursor(size, lines, parsed)
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
            size = os.stat(jobdir.results).st_size
        except OSError:
            continue
        if cursor is not None and size == cursor.bytes:
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
            size = os.stat(jobdir.results).st_size
        except OSError:
            continue
        cursor = cursors.get(jobdir.identifier)
        if size > (cursor.bytes if cursor is not None else 0):
            grown.append(jobdir)
    if not grown or db.readonly:
        return
    with contextlib.suppress(IndexDatabaseError):  # e.g. a read-only file: shown later
        db.write(lambda conn: catch_up_results(conn, grown, cursors))


def known_values(jobs: Iterable[JobRows]) -> dict[str, dict[tuple[str, str], Any]]:
    """The task-table values of the jobs whose params, tags and results are all in memory."""
    return {
        j.job["id"]: values_of(j.params, j.tags or (), j.results)
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
@dataclass
class RunRows:
    """What the index holds about one run record."""

    run: dict[str, Any]
    git_states: list[dict[str, Any]]
    submissions: list[tuple[str, str, float | None]]


RUN_KEYS = ("experiment", "run_id", "run_mode", "start_time", "end_time", "host", "user", "pid")


def run_records(workdir: Path) -> Iterator[Path]:
    """Every run record ``WORKDIR/experiments/<name>/runs/<run_id>.json``."""
    root = experiments_root(workdir)
    if not root.is_dir():
        return
    yield from sorted(root.glob("*/runs/*.json"))


def read_run(record_path: Path, *, submissions: bool = True) -> RunRows | None:
    """The rows of one run record (None when it is unreadable)."""
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or "run_id" not in record:
        return None
    experiment = str(record.get("experiment") or record_path.parent.parent.name)
    run_id = str(record["run_id"])
    key = f"{experiment}/{run_id}"
    info = {k: v for k, v in record.items() if k not in RUN_KEYS and k != "git"}
    run = {k: record.get(k) for k in RUN_KEYS}
    run.update(
        id=key,
        experiment=experiment,
        run_id=run_id,
        info=json.dumps(info, sort_keys=True, default=str),
    )
    states = record.get("git") or []
    if isinstance(states, dict):
        states = [states]
    git_states = [s for s in states if isinstance(s, dict)]
    subs: list[tuple[str, str, float | None]] = []
    if submissions:
        for line in read_json_lines(record_path.with_name(f"{run_id}.jobs.jsonl")):
            ident = line.get("identifier")
            if isinstance(ident, str):
                subs.append((key, ident, line.get("time")))
    return RunRows(run, git_states, subs)


def git_state_row(state: dict[str, Any]) -> dict[str, Any]:
    """A ``git_states`` row from a git-state dict of a run record."""
    untracked = state.get("untracked")
    dirty = state.get("dirty")
    return {
        "id": git_state_id(state),
        "repo": state.get("repo"),
        "commit_sha": state.get("commit"),
        "branch": state.get("branch"),
        "remote": state.get("remote"),
        "dirty": None if dirty is None else int(bool(dirty)),
        "diff": state.get("diff"),
        "untracked": json.dumps(list(untracked)) if isinstance(untracked, (list, tuple)) else None,
        "snapshot": state.get("snapshot"),
    }


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
    conn: sqlite3.Connection,
    submissions: Sequence[tuple[str, str, float | None]],
    *,
    link: bool = True,
) -> None:
    """Record submissions and point their jobs at the latest run that submitted them."""
    if not submissions:
        return
    conn.executemany(
        "INSERT OR REPLACE INTO submissions (run, job_id, time) VALUES (?, ?, ?)", submissions
    )
    if link:
        ids = sorted({s[1] for s in submissions})
        for chunk in _chunks(ids):
            link_jobs(conn, f"id IN ({','.join('?' * len(chunk))})", chunk)


def link_jobs(conn: sqlite3.Connection, where: str, params: Sequence[Any] = ()) -> None:
    """Set the derived columns of the jobs matching ``where``: ``last_run`` and
    ``last_submitted`` (their latest submission), ``run`` and ``git_state`` (the run that
    launched their latest attempt and the git state it recorded).

    An attempt launched before schema 2 recorded no run: it is the latest run that submitted
    the job before that launch (a submission always comes before the launch it causes).
    The recorder, :func:`rebuild` and the schema migration all use this one statement.
    """
    conn.execute(
        "UPDATE jobs SET (last_run, last_submitted) = (SELECT s.run, s.time FROM submissions s "
        "WHERE s.job_id = jobs.id ORDER BY s.time DESC, s.run DESC LIMIT 1), "
        "run = COALESCE((SELECT a.run FROM attempts a WHERE a.job_id = jobs.id "
        "AND a.attempt = jobs.attempt), (SELECT s.run FROM submissions s "
        "WHERE s.job_id = jobs.id AND s.time <= jobs.submit_time "
        f"ORDER BY s.time DESC, s.run DESC LIMIT 1)) WHERE {where}",
        params,
    )
    conn.execute(
        "UPDATE jobs SET git_state = COALESCE((SELECT a.git_state FROM attempts a "
        "WHERE a.job_id = jobs.id AND a.attempt = jobs.attempt), (SELECT g.git_state "
        "FROM run_git_states g WHERE g.run = jobs.run AND g.position = 0)) "
        f"WHERE {where}",
        params,
    )


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
                if name != "meta":
                    conn.execute(f'DELETE FROM "{name}"')
            write_runs(conn, runs)
            for start in range(0, len(jobdirs), batch):
                write_jobs(
                    conn,
                    [read_job(j) for j in jobdirs[start : start + batch]],
                    link=False,
                    tables=False,
                )
            conn.executemany(
                "INSERT OR REPLACE INTO submissions (run, job_id, time) VALUES (?, ?, ?)",
                [s for r in runs for s in r.submissions],
            )
            link_jobs(conn, "1")
            refresh_task_rows(conn)

        index.write(fill)
        counts = {
            name: index.conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
            for name in TABLE_NAMES
        }
    return counts
