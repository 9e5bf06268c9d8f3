"""Derived columns that link each job to its runs and its code.

``jobs.last_run``/``last_submitted`` (its latest submission) and ``jobs.run``/``git_state``
(the run and git state of the attempt behind its state) are derived from ``submissions``,
``attempts`` and ``run_git_states``; the recorder, :func:`~._ingest.rebuild`, the settling
of lost jobs and the schema migration all set them with the statements here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any


def link_jobs(conn: sqlite3.Connection, where: str = "1", params: Sequence[Any] = ()) -> None:
    """Set the derived columns of the jobs matching ``where``: ``last_run`` and
    ``last_submitted`` (their latest submission), ``run`` and ``git_state`` (the run that
    launched their latest attempt and the git state it recorded; NULL while a job waits,
    even submitted again after it ended: no attempt is behind its state).

    An attempt launched before schema 2 recorded no run: it is the latest run that submitted
    the job before that launch (a submission always comes before the launch it causes).
    The recorder, :func:`rebuild` and the schema migration all use this one statement.
    """
    conn.execute(
        "UPDATE jobs SET (last_run, last_submitted) = (SELECT s.run, s.time FROM submissions s "
        "WHERE s.job_id = jobs.id ORDER BY s.time DESC, s.run DESC LIMIT 1), "
        # A waiting job (again, after it ended) has no attempt behind its state.
        "run = CASE WHEN jobs.state = 'UNSCHEDULED' THEN NULL ELSE "
        "COALESCE((SELECT a.run FROM attempts a WHERE a.job_id = jobs.id "
        "AND a.attempt = jobs.attempt), (SELECT s.run FROM submissions s "
        "WHERE s.job_id = jobs.id AND s.time <= jobs.submit_time "
        f"ORDER BY s.time DESC, s.run DESC LIMIT 1)) END WHERE {where}",
        params,
    )
    conn.execute(
        "UPDATE jobs SET git_state = CASE WHEN jobs.state = 'UNSCHEDULED' THEN NULL ELSE "
        "COALESCE((SELECT a.git_state FROM attempts a "
        "WHERE a.job_id = jobs.id AND a.attempt = jobs.attempt), (SELECT g.git_state "
        "FROM run_git_states g WHERE g.run = jobs.run AND g.position = 0)) END "
        f"WHERE {where}",
        params,
    )


def link_jobs_by_id(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    """:func:`link_jobs` for the jobs ``ids`` (in chunks: SQLite limits bound parameters)."""
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        link_jobs(conn, f"id IN ({','.join('?' * len(chunk))})", chunk)
