"""``meta.jobs_writes``: how many rows of ``jobs``, ``submissions`` and ``runs`` were ever
written, counted by triggers (schema 8); ``meta.settings_writes``: how many writes of
``jobs`` added, removed or moved a job or changed its parameters or tags (schema 9).

The web view keeps what it computes from an experiment's jobs (their order, states and
marks; the counts of a runs table's facets) while the index is written by a running
experiment: nearly every write then adds results only, and recomputing those took 50-120
ms per page over 100,000 jobs.  A value computed at a count is right while the count is
the same: every write of those tables (by xpm, a migration or any SQL) runs the triggers,
and the parameters and tags of a job are only written with its ``jobs`` row
(:func:`~._ingest.write_jobs`, the one writer of both; a test holds it).

What depends on the parameters and tags of a task's jobs alone (the counts of each tag
over a task's 100,000 jobs, their order by a tag: 80-150 ms) is kept by the second count:
a job that starts or ends does not change it.  ``write_jobs`` writes a job's
``params_digest`` (of its parameter and tag rows) with them, so a change of either
changes the digest.

Schema 10 logs which job (or run) each of those writes was for (``job_writes``, the last
:data:`LOGGED` of them): a value kept at an older count is then brought up to date from
the jobs written since (an experiment's 10,000 jobs took 100-180 ms to read again after
one of them started, while 1 to 3 rows were written), or kept as is when none of them is
among the jobs it was computed from.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

_T = TypeVar("_T")

#: The tables whose every written row counts.
COUNTED = ("jobs", "submissions", "runs")
#: The key of the count in ``meta``.
KEY = "jobs_writes"
#: The key of the count of writes changing a job's task, parameters or tags.
SETTINGS_KEY = "settings_writes"
#: The key of a random name given to an index file when it is made (schema 9): a file made
#: again (a damaged one replaced by a rebuild, one deleted and recorded anew) counts from
#: zero again, and a value kept at the old file's count must not pass for the new one's.
ID_KEY = "index_id"
#: The table of the latest writes and how many of them it keeps.
LOG = "job_writes"
LOGGED = 20_000


def create_counter(conn: sqlite3.Connection) -> None:
    """The ``meta`` row and the triggers counting (the migration to schema 8)."""
    conn.execute(f"INSERT OR IGNORE INTO meta (key, value) VALUES ('{KEY}', '0')")
    bump = f"UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = '{KEY}';"
    for table in COUNTED:
        for event in ("INSERT", "UPDATE", "DELETE"):
            conn.execute(
                f'CREATE TRIGGER IF NOT EXISTS "count_{table}_{event.lower()}" '
                f'AFTER {event} ON "{table}" BEGIN {bump} END'
            )


def create_settings_counter(conn: sqlite3.Connection) -> None:
    """The ``meta`` rows (the count, the index's name) and the triggers counting writes of
    a job's settings (schema 9)."""
    conn.execute(f"INSERT OR IGNORE INTO meta (key, value) VALUES ('{SETTINGS_KEY}', '0')")
    conn.execute(
        f"INSERT OR IGNORE INTO meta (key, value) VALUES ('{ID_KEY}', lower(hex(randomblob(16))))"
    )
    bump = f"UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = '{SETTINGS_KEY}';"
    for name, event in (
        ("insert", "INSERT ON jobs"),
        ("delete", "DELETE ON jobs"),
        (
            "update",
            "UPDATE OF task_id, params_digest ON jobs WHEN OLD.task_id IS NOT NEW.task_id "
            "OR OLD.params_digest IS NOT NEW.params_digest",
        ),
    ):
        conn.execute(
            f'CREATE TRIGGER IF NOT EXISTS "count_settings_{name}" AFTER {event} BEGIN {bump} END'
        )


def create_write_log(conn: sqlite3.Connection) -> None:
    """The triggers appending each write of ``jobs``, ``submissions`` and ``runs`` to
    ``job_writes`` and dropping the oldest past :data:`LOGGED` (schema 10)."""
    drop = f"DELETE FROM {LOG} WHERE seq <= (SELECT MAX(seq) FROM {LOG}) - {LOGGED};"
    log = f"INSERT INTO {LOG} (job_id, run, kind)"
    changed = (
        "CASE WHEN OLD.id IS NOT NEW.id OR OLD.task_id IS NOT NEW.task_id THEN 'moved' "
        "WHEN OLD.params_digest IS NOT NEW.params_digest THEN 'settings' ELSE 'written' END"
    )
    moved = "OLD.job_id IS NOT NEW.job_id OR OLD.run IS NOT NEW.run"
    bodies = {
        ("jobs", "INSERT"): f"{log} VALUES (NEW.id, NULL, 'added');",
        # The row before too when its key changed (never, as xpm writes them).
        ("jobs", "UPDATE"): f"{log} VALUES (NEW.id, NULL, {changed}); "
        f"{log} SELECT OLD.id, NULL, 'removed' WHERE OLD.id IS NOT NEW.id;",
        ("jobs", "DELETE"): f"{log} VALUES (OLD.id, NULL, 'removed');",
        ("submissions", "INSERT"): f"{log} VALUES (NEW.job_id, NEW.run, 'submitted');",
        ("submissions", "UPDATE"): f"{log} VALUES (NEW.job_id, NEW.run, 'submitted'); "
        f"{log} SELECT OLD.job_id, OLD.run, 'submitted' WHERE {moved};",
        ("submissions", "DELETE"): f"{log} VALUES (OLD.job_id, OLD.run, 'submitted');",
        ("runs", "INSERT"): f"{log} VALUES (NULL, NEW.id, 'run');",
        ("runs", "UPDATE"): f"{log} VALUES (NULL, NEW.id, 'run'); "
        f"{log} SELECT NULL, OLD.id, 'run' WHERE OLD.id IS NOT NEW.id;",
        ("runs", "DELETE"): f"{log} VALUES (NULL, OLD.id, 'run');",
    }
    for (table, event), body in bodies.items():
        conn.execute(
            f'CREATE TRIGGER IF NOT EXISTS "log_{table}_{event.lower()}" '
            f'AFTER {event} ON "{table}" BEGIN {body} {drop} END'
        )


@dataclass(frozen=True)
class Changes:
    """What was written since a write of the log (:func:`changes_since`)."""

    #: Every job written, or submitted, or whose submission was written.
    jobs: frozenset[str]
    #: The runs written (rows of ``runs``; a submission's run is not among them).
    runs: frozenset[str]
    #: Jobs added to the index (an insert: xpm's upsert of a job it has is an update).
    added: frozenset[str] = frozenset()
    #: Jobs removed, or whose id or task changed.
    removed: frozenset[str] = frozenset()
    #: Jobs written with another ``params_digest`` (other parameters or tags).
    resettled: frozenset[str] = frozenset()

    @property
    def settings_changed(self) -> frozenset[str]:
        """Jobs whose task, parameters or tags may differ now: added (or written over),
        removed, moved or resettled."""
        return self.added | self.removed | self.resettled


def last_write(conn: sqlite3.Connection) -> int | None:
    """The order of the latest logged write (0 when none; None for an index without the
    log)."""
    try:
        return int(conn.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {LOG}").fetchone()[0])
    except sqlite3.OperationalError:  # an index older than schema 10
        return None


def changes_since(conn: sqlite3.Connection, seq: int, limit: int = 2_000) -> Changes | None:
    """What was written after the write ``seq``; None when the log no longer holds every
    write since (more than :data:`LOGGED` ago), holds none as late as ``seq`` (an older
    copy of the file), or they wrote more than ``limit`` rows (reading everything again
    is then as quick).

    As xpm writes the index: a job's row is inserted once and upserted after
    (``INSERT OR REPLACE`` of a job by other SQL fires no delete trigger and would be
    logged as added only; a test holds that xpm never does it)."""
    first, last = conn.execute(f"SELECT MIN(seq), MAX(seq) FROM {LOG}").fetchone()
    if (first is not None and first > seq + 1) or (last or 0) < seq:
        return None  # writes since are gone, or the log went back (a file restored)
    rows = conn.execute(
        f"SELECT job_id, run, kind FROM {LOG} WHERE seq > ? ORDER BY seq LIMIT ?",
        (seq, limit + 1),
    ).fetchall()
    if len(rows) > limit:
        return None

    def of(*kinds: str) -> frozenset[str]:
        return frozenset(job for job, _run, kind in rows if kind in kinds)

    return Changes(
        frozenset(r[0] for r in rows if r[0] is not None),
        frozenset(run for _job, run, kind in rows if kind == "run"),
        added=of("added"),
        removed=of("removed", "moved"),
        resettled=of("settings"),
    )


def _count(conn: sqlite3.Connection, key: str) -> int | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    try:
        return int(row[0]) if row else None
    except (TypeError, ValueError):
        return None


def jobs_writes(conn: sqlite3.Connection) -> int | None:
    """The count (None for an index without it: nothing may be kept by it)."""
    return _count(conn, KEY)


def settings_writes(conn: sqlite3.Connection) -> int | None:
    """The count of writes changing a job's task, parameters or tags (None for an index
    without it)."""
    return _count(conn, SETTINGS_KEY)


def columns_fingerprint(conn: sqlite3.Connection) -> Hashable:
    """What ``task_columns`` holds (each task's tag, parameter and result keys): a result
    key appears with a report, not with a write of ``jobs``."""
    return tuple(conn.execute("SELECT task_id, kind, key FROM task_columns ORDER BY 1, 2, 3"))


class KeptByWrites:
    """Values computed from an index's jobs, submissions and runs (and from the parameters
    and tags written with them), kept while :func:`jobs_writes` is the same (one per
    served index; safe to share between threads).  The least recently used go first.

    ``count``: another count to keep by (:func:`settings_writes`: values computed from
    which jobs each task has and their parameters and tags only)."""

    def __init__(
        self, size: int = 64, count: Callable[[sqlite3.Connection], int | None] = jobs_writes
    ) -> None:
        self._size = size
        self._count = count
        # key -> (count, the file's name, also, value, the log's latest write then)
        self._kept: OrderedDict[Hashable, tuple[int, Any, Hashable, Any, int | None]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(
        self,
        conn: sqlite3.Connection,
        key: Hashable,
        compute: Callable[[], _T],
        also: Hashable = None,
        update: Callable[[_T, Changes], _T | None] | None = None,
    ) -> _T:
        """``compute()``, or what it gave for ``key`` at the same count of writes (and the
        same ``also``: what else the value depends on, read by the caller in the same
        snapshot).  Call it inside one read transaction, so the count and what
        ``compute`` reads are of the same index.

        ``update(value, changes)``: the value kept at an older count brought up to date
        from the jobs and runs written since (:class:`Changes`), or None when it cannot
        be (it is then computed again).
        """
        count = self._count(conn)
        if count is None:
            return compute()
        # The file's name too: a file made again counts from zero again.
        name = conn.execute(f"SELECT value FROM meta WHERE key = '{ID_KEY}'").fetchone()
        with self._lock:
            found = self._kept.get(key)
            if found is not None and found[:3] == (count, name, also):
                self._kept.move_to_end(key)
                return found[3]  # type: ignore[no-any-return]
        logged = last_write(conn) if update is not None else None
        value = None
        if found is not None and update is not None and logged is not None:
            _count, old_name, old_also, kept, seq = found
            if old_name == name and old_also == also and seq is not None:
                changes = changes_since(conn, seq)
                if changes is not None:
                    value = update(kept, changes)
        if value is None:
            value = compute()
        with self._lock:
            self._kept[key] = (count, name, also, value, logged)
            self._kept.move_to_end(key)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return value
