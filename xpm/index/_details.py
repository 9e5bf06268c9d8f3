"""Everything shown about one job, gathered once for ``xpm jobs show`` and the web job page.

:func:`read_job_details` returns a :class:`JobDetails`; the command line and the Datasette
page only render it, so the two cannot disagree.  Which source holds the truth, field by
field, is said on the class.  The job directory is read with the same functions the
index's ingest uses (:mod:`._rows`), so what is shown equals what a caught-up index holds;
the index is read for what no job directory holds (links between jobs, the runs that
submitted a job) and for a job whose directory is not there to read.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._jobdir import JobDir
from .._vocabulary import identifier_prefix, run_record
from ._rows import (
    ResultsCursor,
    flatten_params,
    read_results,
    read_results_from,
    status_columns,
)

#: Most jobs listed as using a job's output.
MAX_DOWNSTREAM = 200
_HEX = re.compile(r"[0-9a-f]{64}")
_RESULT_KEYS = ("job_id", "seq", "key", "value", "type", "step", "time")


@dataclass
class JobDetails:
    """One job as ``xpm jobs show`` and the web job page show it.

    Sources (``source`` says which one was read: ``"directory"``, or ``"index"`` when the
    job directory is gone or was not given, e.g. a cleaned job or an index served without
    its workdir):

    - ``job``: the ``jobs`` row plus ``experiment`` (of its latest submission); its status
      columns (state, reason, attempt, times, exit code, signal, launcher, launcher job id,
      host, pid) are the job directory's (events and markers), the rest the index's.
      ``index_state``: the state the index holds, which lags behind a detached run's jobs
      until a command catches it up (``index_behind`` when it differs).
    - ``params``: params.json, flattened as the index flattens it (``path``, ``value``,
      ``type``, ``meta``); a bool is a bool, a list or dict its value (the index stores
      them as 0/1 and JSON text).
    - ``tags``: tags.json.  ``results``: every report of results.jsonl when ``every`` is
      asked (as ``xpm jobs show`` does), else the latest report of each key: the
      index's, updated by the lines past its read offset (parsed by the ingest's own
      function, so a page refreshed while a job reports millions of values does not parse
      them all again).  ``reports``: how many values were reported (all keys);
      ``latest``: the last report of each key.  (Without the directory: the index's
      latest reports.)
    - ``history``: the events.  ``attempts``: each attempt's provenance (run, time,
      launcher, its description), newest first.
    - ``run``, ``git``, ``launcher_description``: the run that launched the attempt behind
      the state and results, the git states of its code (as recorded: ``repo``,
      ``commit``, ``branch``, ``remote``, ``dirty``, ``diff``, ``untracked``,
      ``snapshot``...) and its launcher, from the directory's provenance.  A job never
      launched (``launched`` False), or launched by an xpm that did not record it there,
      gets the newest run that submitted it (before that launch) in the index and the git
      states of that run's record.
    - ``submissions`` (runs that submitted the job, newest first), ``upstream`` (the jobs
      whose output it uses: the configurations its params.json holds, as the index knows
      them) and ``downstream`` (jobs holding a path inside its directory among their
      parameters): the index, the one place that links jobs and runs.
    - ``paths``, ``earlier_attempts``: the job directory (its layout is :class:`JobDir`'s).
    """

    job: dict[str, Any]
    source: str
    index_state: str | None
    params: list[dict[str, Any]] = field(default_factory=list)
    #: Why ``params`` is empty or partial (params.json missing or unreadable).
    params_note: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    reports: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    run: str | None = None
    launched: bool = False
    git: list[dict[str, Any]] = field(default_factory=list)
    launcher_description: dict[str, Any] | None = None
    submissions: list[dict[str, Any]] = field(default_factory=list)
    upstream: list[dict[str, Any]] = field(default_factory=list)
    downstream: list[dict[str, Any]] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)
    earlier_attempts: int = 0

    @property
    def index_behind(self) -> bool:
        """Whether the index holds another state than the job directory."""
        return self.index_state is not None and self.index_state != self.job.get("state")

    @property
    def latest(self) -> list[dict[str, Any]]:
        """The last report of each result, by key."""
        last: dict[str, dict[str, Any]] = {}
        for report in self.results:
            last[report["key"]] = report
        return [last[k] for k in sorted(last)]

    @property
    def last_submitted_by(self) -> str | None:
        """The newest run that submitted the job (its launch may be older: a DONE job
        submitted again is not run again)."""
        return self.submissions[0]["run"] if self.submissions else None

    @property
    def launcher(self) -> dict[str, Any]:
        """Where the current attempt runs or ran: ``kind``, ``job_id``, ``host``, ``pid``."""
        j = self.job
        return {
            "kind": j.get("launcher"),
            "job_id": j.get("launcher_job_id"),
            "host": j.get("host"),
            "pid": j.get("pid"),
        }


# --- the index's side ----------------------------------------------------------------------------
def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def find_job_row(conn: sqlite3.Connection, ref: str) -> dict[str, Any] | None:
    """The ``jobs`` row whose id is ``ref`` or starts with it (None when none or several)."""
    ref = ref.lower()
    if not identifier_prefix(ref):
        return None
    rows = _dicts(
        conn.execute("SELECT * FROM jobs WHERE id >= ? AND id < ? || 'g' LIMIT 2", (ref, ref))
    )
    return rows[0] if len(rows) == 1 else None


def jobs_by_ids(conn: sqlite3.Connection, ids: list[str]) -> list[dict[str, Any]]:
    """The jobs (id, task_id, state) among ``ids``, by task then id."""
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    return _dicts(
        conn.execute(
            f"SELECT id, task_id, state FROM jobs WHERE id IN ({marks}) ORDER BY task_id, id",
            ids,
        )
    )


def downstream_jobs(conn: sqlite3.Connection, job_path: str) -> list[dict[str, Any]]:
    """Other jobs with a path parameter inside the job directory ``job_path`` (its users).

    The index keeps no dependency list: a job that uses another's output holds a path of
    that output (``jobs/<task>/<id>/...``) among its parameters.
    """
    prefix = job_path.rstrip("/") + "/"
    return _dicts(
        conn.execute(
            "SELECT id, task_id, state FROM jobs WHERE id IN (SELECT job_id FROM params "
            "WHERE type = 'path' AND value >= ? AND value < ?) AND path != ? "
            f"ORDER BY task_id, id LIMIT {MAX_DOWNSTREAM}",
            (prefix, prefix[:-1] + "0", job_path),
        )
    )


def _submissions(conn: sqlite3.Connection, job_id: str) -> list[dict[str, Any]]:
    """The runs that submitted the job, newest first, each saying which attempts it launched."""
    return _dicts(
        conn.execute(
            "SELECT r.id AS run, r.experiment, r.run_mode, r.start_time, r.end_time, r.host, "
            "r.user, r.pid, s.time, r.id IS j.run AS launched, "
            "(SELECT group_concat(a.attempt, ', ') FROM attempts a "
            "WHERE a.job_id = s.job_id AND a.run = r.id) AS attempts FROM submissions s "
            "JOIN runs r ON r.id = s.run JOIN jobs j ON j.id = s.job_id "
            "WHERE s.job_id = ? ORDER BY s.time DESC, r.id DESC",
            (job_id,),
        )
    )


def _value(value: Any, kind: str | None) -> Any:
    """A value as the index stores it, back to its JSON value (bool, list, dict)."""
    if kind == "bool" and value in (0, 1):
        return bool(value)
    if kind in ("list", "dict") and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _git_state(row: dict[str, Any]) -> dict[str, Any]:
    """A ``git_states`` row as the recorded git state it was made from."""
    try:
        untracked = json.loads(row.get("untracked") or "[]")
    except ValueError:
        untracked = []
    return {
        "repo": row.get("repo"),
        "commit": row.get("commit_sha"),
        "branch": row.get("branch"),
        "remote": row.get("remote"),
        "dirty": bool(row.get("dirty")),
        "diff": row.get("diff") or "",
        "untracked": untracked,
        "snapshot": row.get("snapshot"),
    }


def _from_index(conn: sqlite3.Connection, details: JobDetails) -> None:
    """Fill ``details`` from the index's copy of the job directory (it is not there)."""
    from ._ingest import read_cursors

    one = (details.job["id"],)
    params = _dicts(
        conn.execute("SELECT path, value, type, meta FROM params WHERE job_id = ?", one)
    )
    details.params = [
        {**p, "value": _value(p["value"], p["type"]), "meta": bool(p["meta"])} for p in params
    ]
    details.tags = {
        k: _value(v, t)
        for k, v, t in conn.execute(
            "SELECT key, value, type FROM tags WHERE job_id = ? ORDER BY key", one
        )
    }
    details.results = _indexed_latest(conn, details.job["id"])
    cursor = read_cursors(conn, [details.job["id"]]).get(details.job["id"])
    details.reports = _count(cursor) if cursor is not None else len(details.results)
    attempts = _dicts(
        conn.execute(
            "SELECT attempt, run, time, launcher, launcher_description FROM attempts "
            "WHERE job_id = ? ORDER BY attempt DESC",
            one,
        )
    )
    for a in attempts:
        a["launcher_description"] = _value(a["launcher_description"], "dict")
    details.attempts = attempts
    current = [a for a in attempts if a["attempt"] == details.job.get("attempt")]
    details.git = [
        _git_state(g)
        for g in _dicts(
            conn.execute(
                "SELECT g.* FROM job_git_states jg JOIN git_states g ON g.id = jg.git_state "
                "WHERE jg.job_id = ? ORDER BY jg.position",
                one,
            )
        )
    ]
    details.run = details.job.get("run")
    # A job waiting again (submitted anew after it ended) has no launched attempt behind it.
    details.launched = (
        bool(details.job.get("attempt")) and details.job.get("state") != "UNSCHEDULED"
    )
    if current:
        details.launcher_description = current[0]["launcher_description"]


# --- the job directory's side ----------------------------------------------------------------------
def _upstream_ids(doc: Any) -> list[str]:
    """Identifiers of the configurations a params.json document holds, except the job's own."""
    objects = doc.get("objects") if isinstance(doc, dict) else None
    if not isinstance(objects, list):
        return []
    ids = []
    for i, obj in enumerate(objects):
        if i != doc.get("root") and isinstance(obj, dict):
            ident = obj.get("identifier")
            if isinstance(ident, str) and _HEX.fullmatch(ident):
                ids.append(ident)
    return ids


def _run_git(workdir: Path, run: str) -> list[dict[str, Any]]:
    """The git states of a run record (``experiment/run_id``); none when it is unreadable."""
    experiment, _, run_id = run.rpartition("/")
    try:
        data = json.loads(run_record(workdir, experiment, run_id).read_text(encoding="utf-8"))
        states = data.get("git") or []
    except (OSError, ValueError, AttributeError):
        return []
    states = [states] if isinstance(states, dict) else states
    return [s for s in states if isinstance(s, dict)]


def _indexed_latest(conn: sqlite3.Connection, job_id: str) -> list[dict[str, Any]]:
    """The index's latest report of each result of the job."""
    return _dicts(
        conn.execute(
            "SELECT job_id, seq, key, value, type, step, time FROM latest_results WHERE job_id = ?",
            (job_id,),
        )
    )


def _count(cursor: ResultsCursor) -> int:
    """How many values the results.jsonl read up to ``cursor`` reports (all keys)."""
    return sum(int(n) for n, _latest in cursor.counts.values())


def _results(
    conn: sqlite3.Connection, jobdir: JobDir, every: bool
) -> tuple[list[dict[str, Any]], int]:
    """The job's reports from its results.jsonl (see :class:`JobDetails`), and their number."""
    if every:
        rows = read_results(jobdir)
        return [{k: r[k] for k in _RESULT_KEYS} for r in rows], len(rows)
    from ._ingest import read_cursors

    # As the ingest catches a job up: what the index read, then the lines past its offset.
    cursor = read_cursors(conn, [jobdir.identifier]).get(jobdir.identifier)
    new, _drop, cursor, replace = read_results_from(jobdir, cursor)
    latest = {} if replace else {r["key"]: r for r in _indexed_latest(conn, jobdir.identifier)}
    for row in new:
        latest[row["key"]] = {k: row[k] for k in _RESULT_KEYS}
    return sorted(latest.values(), key=lambda r: (r["seq"], r["key"])), _count(cursor)


def _from_directory(
    conn: sqlite3.Connection, jobdir: JobDir, details: JobDetails, every: bool
) -> dict[str, Any]:
    """Fill ``details`` from the job directory; returns its params.json document."""
    status = jobdir.read_status()
    details.job.update(status_columns(status))
    details.history = status.history
    details.attempts = [
        {k: a.get(k) for k in ("attempt", "run", "time", "launcher", "launcher_description")}
        for a in reversed(status.attempts)
    ]
    provenance = status.provenance
    details.launched = status.launched
    if provenance is not None:
        details.run = str(provenance["run"]) if provenance.get("run") else None
        details.git = [g for g in provenance.get("git") or [] if isinstance(g, dict)]
        details.launcher_description = provenance.get("launcher_description")
    doc: Any = {}
    try:
        doc = json.loads(jobdir.params.read_text(encoding="utf-8"))
    except FileNotFoundError:
        details.params_note = "params.json is gone"
    except (OSError, ValueError) as e:
        details.params_note = f"params.json is unreadable ({e})"
    if isinstance(doc, dict):
        meta: set[str] = set()
        flat = flatten_params(doc, meta)
        details.params = [
            {"path": p, "value": _value(v, t), "type": t, "meta": p in meta} for p, v, t in flat
        ]
    details.tags = jobdir.read_tags()
    details.results, details.reports = _results(conn, jobdir, every)
    details.earlier_attempts = jobdir.earlier_attempts()
    return doc if isinstance(doc, dict) else {}


def read_job_details(
    conn: sqlite3.Connection, job_id: str, jobdir: JobDir | None, *, every: bool = False
) -> JobDetails | None:
    """The :class:`JobDetails` of the job ``job_id`` (None when the index has no such job).

    ``conn``: the index, only read.  ``jobdir``: the job's directory, None when it cannot
    be read (the web view gives None for a directory that is a link out of the workdir);
    without a directory on disk the index's copy is shown (``source == "index"``).
    ``every``: every report of results.jsonl, none thinned out (else as the index keeps
    them: the same latest values and number of reports).
    """
    found = _dicts(
        conn.execute(
            "SELECT j.*, r.experiment FROM jobs j LEFT JOIN runs r ON r.id = j.last_run "
            "WHERE j.id = ?",
            (job_id,),
        )
    )
    if not found:
        return None
    row = found[0]
    details = JobDetails(job=row, source="index", index_state=row["state"])
    details.submissions = _submissions(conn, row["id"])
    doc: dict[str, Any] = {}
    if jobdir is not None:
        details.paths = {
            "directory": str(jobdir.path),
            "params": str(jobdir.params),
            "stdout": str(jobdir.stdout),
            "stderr": str(jobdir.stderr),
            "results": str(jobdir.results),
        }
    if jobdir is not None and jobdir.path.is_dir():
        details.source = "directory"
        doc = _from_directory(conn, jobdir, details, every)
        if details.run is None and details.submissions:
            # Not recorded in the directory: the newest run that submitted the job (before
            # its launch, when it was launched), whose code ran it or would run it.
            before = row.get("submit_time") if details.launched else None
            found = [
                s
                for s in details.submissions
                if before is None or (s["time"] is not None and s["time"] <= before)
            ]
            if found:
                details.run = found[0]["run"]
                details.git = _run_git(jobdir.workdir, found[0]["run"])
        upstream = _upstream_ids(doc)
    else:
        _from_index(conn, details)
        upstream = []  # the index keeps no identifiers of upstream configurations
    details.upstream = jobs_by_ids(conn, [i for i in upstream if i != row["id"]])
    details.downstream = downstream_jobs(conn, row["path"]) if row.get("path") else []
    return details


__all__ = [
    "JobDetails",
    "downstream_jobs",
    "find_job_row",
    "jobs_by_ids",
    "read_job_details",
]
