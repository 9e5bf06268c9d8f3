"""From the job directories and run records to index rows; no database here.

What a job directory says (status, attempts, params, tags, results.jsonl) and what a run
record says, as the rows :mod:`xpm.index._ingest` writes.  The recorder (in the experiment
process) and :func:`~xpm.index._ingest.rebuild` build rows with the same functions, so an
index kept up to date while experiments run equals one rebuilt from the directories.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .._atomicio import read_json_lines
from .._jobdir import JobDir, JobStatus
from .._vocabulary import experiments_root

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


def flatten_params(doc: dict[str, Any], meta: set[str] | None = None) -> list[tuple[str, Any, str]]:
    """(dotted path, value, kind) for every value of a params.json document.

    Nested configurations give a ``config`` row (value: their type id) and rows for their
    own values under ``path.``; lists and tuples give a JSON row, and rows ``path.N`` for
    the configurations they hold.  ``meta``, when given, receives the paths of the rows
    that are ``Meta`` parameters or lie under one (each object of the document lists its
    Meta names under ``"meta"``; documents written before xpm recorded them have none).
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
        metas = o.get("meta") if meta is not None else None
        for key, v in values.items():
            first = len(rows)
            kind = _SCALAR_KINDS.get(type(v))
            if kind is not None:  # most values: no need for emit's dispatch
                rows.append((f"{prefix}{key}", v, kind))
            else:
                emit(f"{prefix}{key}", v, stack)
            if metas and key in metas and meta is not None:
                meta.update(r[0] for r in rows[first:])  # the value and all under it

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
    #: The file read (its inode): a new attempt starts a new results.jsonl, which must be
    #: read from its start even once it has grown past what was read of the earlier one.
    file: int | None = None

    def copy(self) -> ResultsCursor:
        return ResultsCursor(
            self.bytes, self.lines, {k: list(v) for k, v in self.counts.items()}, self.file
        )

    def unread(self, stat: os.stat_result) -> bool:
        """Whether the results.jsonl that ``stat`` describes has lines this cursor lacks."""
        if self.file is not None and stat.st_ino != self.file:
            return stat.st_size > 0 or self.bytes > 0
        return stat.st_size != self.bytes


def has_unread(stat: os.stat_result, cursor: ResultsCursor | None) -> bool:
    """Whether a job's results.jsonl (``stat``) has lines the index lacks (``cursor``)."""
    return stat.st_size > 0 if cursor is None else cursor.unread(stat)


@dataclass
class JobRows:
    """What the index holds about one job directory (``params``/``tags`` None: leave them).

    ``results``: rows read from results.jsonl; they replace the job's rows in ``results``
    when ``results_replace`` (read from the start), else they are added after dropping
    ``results_drop`` ((key, seq) of latest reports that newer ones make thinned out).
    """

    job: dict[str, Any]
    params: list[tuple[str, Any, str]] | None = None
    #: The paths of ``params`` that are ``Meta`` parameters (or under one).
    meta: set[str] = field(default_factory=set)
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
            stat = os.fstat(fh.fileno())
            size = stat.st_size
            if size < start.bytes or start.file not in (None, stat.st_ino):
                # Not the file read before (a new attempt's): from the start.
                replace, start = True, ResultsCursor()
            start.file = stat.st_ino
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
        rows.params = flatten_params(doc, rows.meta) if isinstance(doc, dict) else []
        tag_values = tags if tags is not None else jobdir.read_tags() if _TAGS in names else {}
        rows.tags = [(str(k), *typed(v)) for k, v in sorted(tag_values.items())]
    return rows


# --- runs ----------------------------------------------------------------------------------
class SubmissionRow(NamedTuple):
    """A ``submissions`` row: run ``run`` (``experiment/run_id``) submitted job ``job_id``."""

    run: str
    job_id: str
    time: float | None


@dataclass
class RunRows:
    """What the index holds about one run record."""

    run: dict[str, Any]
    git_states: list[dict[str, Any]]
    submissions: list[SubmissionRow]


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
    subs: list[SubmissionRow] = []
    if submissions:
        for line in read_json_lines(record_path.with_name(f"{run_id}.jobs.jsonl")):
            ident = line.get("identifier")
            if isinstance(ident, str):
                subs.append(SubmissionRow(key, ident, line.get("time")))
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
