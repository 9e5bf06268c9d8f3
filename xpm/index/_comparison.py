"""What the web view's comparison of jobs reads beyond their runs-table rows: every
parameter of each job and the curves of the results they reported with a step.

(The rows themselves: :func:`._runtables.page_rows`; the values of their upstream jobs:
:func:`._upstream.upstream_values`.)
"""

from __future__ import annotations

import sqlite3
from typing import Any


def compared_params(conn: sqlite3.Connection, ids: list[str]) -> list[tuple[str, str, Any, Any]]:
    """``(job id, path, value, meta)`` of every parameter of the jobs ``ids``, by path."""
    marks = ",".join("?" * len(ids))
    return conn.execute(
        f"SELECT job_id, path, value, meta FROM params WHERE job_id IN ({marks}) ORDER BY path",
        ids,
    ).fetchall()


def compared_curves(
    conn: sqlite3.Connection, ids: list[str]
) -> dict[str, dict[str, list[list[Any]]]]:
    """For each result one of the jobs ``ids`` reported with a step (numbers only): per job,
    its points ``[step, value, job id]`` in order of step and report."""
    marks = ",".join("?" * len(ids))
    curves: dict[str, dict[str, list[list[Any]]]] = {}
    for job_id, key, step, value in conn.execute(
        f"SELECT job_id, key, step, value FROM results WHERE job_id IN ({marks}) "
        "AND step IS NOT NULL AND type IN ('int', 'float') ORDER BY key, job_id, step, seq",
        ids,
    ):
        curves.setdefault(key, {}).setdefault(job_id, []).append([step, value, job_id])
    return curves
