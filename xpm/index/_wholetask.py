"""A task's runs table over every job it has (no experiment, no filter): its counts and
orders come from the indexes over every job of the index, less the other tasks' jobs.

Visiting each of a task's 100,000 jobs took 1.5 s for its table and 0.8-2.2 s for its
page 1,000 sorted by a tag; the indexes over every job (the ``(key, value, job_id)``
index of tags, the state index) give them in 5-80 ms, and the other tasks' jobs are
taken away by looking them up through the task index (two ranges: every task before
the shown one and every task after it).  Used only while the other tasks hold fewer
jobs than the shown one (:func:`others_count`).
"""

from __future__ import annotations

import bisect
import json
import sqlite3
from typing import Any

from ._writecount import Changes, KeptByWrites

#: The other tasks' values of a sorted name are kept while they are at most this many.
KEEP_OTHERS = 20_000
#: The jobs of every task but ``:task`` (through the task index, in two ranges).
OTHERS = (
    "SELECT id FROM jobs WHERE task_id < :task UNION ALL SELECT id FROM jobs WHERE task_id > :task"
)


def others_count(
    conn: sqlite3.Connection, task: str, kept: KeptByWrites | None = None
) -> int | None:
    """How many jobs the other tasks hold, when fewer than ``task``; None otherwise.

    ``kept`` (here and below): a :class:`~._writecount.KeptByWrites` by
    :func:`~._writecount.settings_writes`, keeping what depends on the jobs' tasks, tags
    and parameters only while a job's start or end is written.
    """
    others, mine = task_counts(conn, task, kept)
    return others if others <= mine else None


def task_counts(
    conn: sqlite3.Connection, task: str, kept: KeptByWrites | None = None
) -> tuple[int, int]:
    """(jobs of the other tasks, jobs of ``task``); ``kept``: counted again whenever a
    job's settings are written (10-15 ms: a job written over another, not as xpm writes,
    could move between tasks unseen by the log)."""

    def counts() -> tuple[int, int]:
        found = conn.execute(f"SELECT COUNT(*) FROM ({OTHERS})", {"task": task}).fetchone()
        return int(found[0]), _mine(conn, task)

    return kept.get(conn, ("others", task), counts) if kept is not None else counts()


def _mine(conn: sqlite3.Connection, task: str) -> int:
    """How many jobs ``task`` has (the task index: 5 ms for 100,000)."""
    return int(conn.execute("SELECT COUNT(*) FROM jobs WHERE task_id = ?", (task,)).fetchone()[0])


def in_task(conn: sqlite3.Connection, task: str, jobs: frozenset[str]) -> frozenset[str]:
    """Those of ``jobs`` that are ``task``'s now."""
    if not jobs:
        return frozenset()
    return frozenset(
        r[0]
        for r in conn.execute(
            "SELECT j.id FROM json_each(?) c CROSS JOIN jobs j ON j.id = c.value "
            "WHERE j.task_id = ?",
            (json.dumps(sorted(jobs)), task),
        )
    )


def others_unchanged(conn: sqlite3.Connection, task: str, changes: Changes) -> bool:
    """No job of another task was added, removed or written with other settings since
    ``changes`` began (the jobs of ``task`` may have been)."""
    touched = changes.added | changes.resettled
    return not changes.removed and in_task(conn, task, touched) == touched


def sortable(value: Any) -> tuple[int, Any]:
    """SQLite's order of values: NULL, numbers, text, blobs."""
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, value) if isinstance(value, str) else (3, value)


def less(every: list[Any], others: list[Any]) -> list[tuple[Any, ...]]:
    """Counts (the last item of each row) of ``every`` job less those of ``others``."""
    found = {tuple(row[:-1]): row[-1] for row in every}
    for row in others:
        found[tuple(row[:-1])] -= row[-1]
    return [(*key, n) for key, n in found.items() if n > 0]


def task_states(conn: sqlite3.Connection, task: str, others: int) -> list[tuple[Any, int]]:
    """(state, jobs) of ``task``, most first."""
    every = conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
    # The other tasks' states through the task index: testing each job's id against them
    # instead (id IN ...) took 41 ms for 10,000 other jobs, this 5 ms.
    theirs = (
        conn.execute(
            "SELECT state, COUNT(*) FROM (SELECT state FROM jobs WHERE task_id < :task "
            "UNION ALL SELECT state FROM jobs WHERE task_id > :task) GROUP BY state",
            {"task": task},
        ).fetchall()
        if others
        else []
    )
    return sorted(less(every, theirs), key=lambda s: (-s[1], s[0] or ""))


def task_tags(
    conn: sqlite3.Connection,
    task: str,
    others: int,
    keys: list[str],
    kept: KeptByWrites | None = None,
) -> list[tuple[str, Any, int]]:
    """(key, value, jobs) of ``task`` for each tag of ``keys``, in key and value order.

    ``kept``: the counts are brought up to date from the jobs added since (a job's start
    or end leaves them as they are); counting them again took 150-200 ms over 100,000
    jobs after each job submitted."""
    if kept is not None:
        return kept.get(
            conn,
            ("tags", task, tuple(keys)),
            lambda: (task_tags(conn, task, others, keys), _mine(conn, task)),
            update=lambda old, changes: _with_added(conn, task, keys, old, changes),
        )[0]
    args: dict[str, Any] = {"task": task, **{f"key{i}": k for i, k in enumerate(keys)}}
    marks = ",".join(f":key{i}" for i in range(len(keys)))
    every = conn.execute(
        f"SELECT key, value, COUNT(*) FROM tags WHERE key IN ({marks}) GROUP BY key, value", args
    ).fetchall()
    theirs = (
        conn.execute(
            # From the other jobs to their tags by primary key (68 ms for 10,000 other
            # jobs through job_id IN ..., 45 ms this way).
            f"SELECT t.key, t.value, COUNT(*) FROM ({OTHERS}) o CROSS JOIN tags t "
            f"ON t.job_id = o.id AND t.key IN ({marks}) GROUP BY t.key, t.value",
            args,
        ).fetchall()
        if others
        else []
    )
    return sorted(less(every, theirs), key=lambda r: (r[0], sortable(r[1])))


_TagCounts = tuple[list[tuple[str, Any, int]], int]


def _with_added(
    conn: sqlite3.Connection, task: str, keys: list[str], old: _TagCounts, changes: Changes
) -> _TagCounts | None:
    """``task``'s tag counts ``old`` (with its number of jobs then) and the tags of the
    jobs added to it since; None when a job of it may have been removed or written with
    other tags (what it had before is not known)."""
    added = in_task(conn, task, changes.added)
    if changes.removed or in_task(conn, task, changes.resettled - changes.added):
        return None
    counts, jobs = old
    now = _mine(conn, task)
    if now != jobs + len(added):  # a job written over another (not as xpm writes them)
        return None
    if not added:
        return old
    found = {(key, value): n for key, value, n in counts}
    marks = ",".join("?" * len(keys))
    for key, value in conn.execute(
        f"SELECT t.key, t.value FROM json_each(?) c CROSS JOIN tags t "
        f"ON t.job_id = c.value AND t.key IN ({marks})",
        (json.dumps(sorted(added)), *keys),
    ):
        found[(key, value)] = found.get((key, value), 0) + 1
    rows = sorted(((*k, n) for k, n in found.items()), key=lambda r: (r[0], sortable(r[1])))
    return rows, now


def sorted_page(
    conn: sqlite3.Connection,
    task: str,
    kind: str,
    name: str,
    descending: bool,
    offset: int,
    size: int,
    count: int,
    kept: KeptByWrites | None = None,
) -> list[str] | None:
    """Ids of ``task``'s jobs ``offset`` to ``offset + size`` ordered by the value of a tag
    or parameter (``kind``; then by id, in the same direction), from the ``(name, value,
    job_id)`` index over every job; None when some of the ``count`` jobs of the task have
    no value or a NULL one (SQL's ``NULLS LAST`` order then).

    The other tasks' jobs are skipped in Python: their positions in the index order are
    known from their values, so the page starts at most that many rows after ``offset``.
    Testing each of the rows before the page against the other jobs took 70 ms at page
    1,000 (10,000 other jobs); this takes 55-90 ms, and 7-13 ms once the other jobs'
    values are kept.
    """
    table, column = ("params", "path") if kind == "param" else ("tags", "key")
    args = {"task": task, "name": name}
    others, mine = task_counts(conn, task, kept)
    if kept is not None and mine >= others > KEEP_OTHERS:
        kept = None  # too many to keep (about 400 bytes each): read each time
    found = (
        kept.get(
            conn,
            ("others' values", task, kind, name),
            lambda: (*_others_values(conn, args, table, column), others),
            # The other tasks' values as they were (while they hold as many jobs); how
            # many jobs have the name, again.
            update=lambda old, changes: (
                (_having(conn, args, table, column), *old[1:3], others)
                if others_unchanged(conn, task, changes) and old[3] == others
                else None
            ),
        )
        if kept is not None
        else (*_others_values(conn, args, table, column), others)
    )
    having, ordered, skipped, _others = found
    if having - len(ordered) != count:
        return None
    order = "DESC" if descending else "ASC"
    window = conn.execute(
        f"SELECT value, job_id FROM {table} WHERE {column} = :name "
        f"ORDER BY value {order}, job_id {order} LIMIT :limit OFFSET :offset",
        {**args, "limit": size + len(ordered), "offset": offset},
    ).fetchall()
    if not window:
        return []
    # The other jobs before the window's first row (in the index order): as many of the
    # task's jobs in the window come before the page.
    first = (sortable(window[0][0]), window[0][1])
    before = (
        len(ordered) - bisect.bisect_right(ordered, first)
        if descending
        else bisect.bisect_left(ordered, first)
    )
    page = [job_id for _value, job_id in window if job_id not in skipped]
    return page[before : before + size]


def _others_values(
    conn: sqlite3.Connection, args: dict[str, Any], table: str, column: str
) -> tuple[float, list[tuple[tuple[int, Any], str]], set[str]]:
    """Rows of the name's value over every job (infinite when one of them is NULL: never
    every job of a task), and the other tasks' jobs among them, in order and as a set."""
    having = _having(conn, args, table, column)
    theirs = conn.execute(
        f"SELECT t.value, t.job_id FROM ({OTHERS}) o CROSS JOIN {table} t "
        f"ON t.job_id = o.id AND t.{column} = :name",
        args,
    ).fetchall()
    ordered = sorted((sortable(value), job_id) for value, job_id in theirs)
    return having, ordered, {job_id for _v, job_id in theirs}


def _having(conn: sqlite3.Connection, args: dict[str, Any], table: str, column: str) -> float:
    """How many jobs have a value of the name (infinite when one of them is NULL)."""
    having, nulls = conn.execute(
        f"SELECT COUNT(*), COUNT(*) - COUNT(value) FROM {table} WHERE {column} = :name", args
    ).fetchone()
    return float("inf") if nulls else float(having)
