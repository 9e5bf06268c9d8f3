"""What the web view's comparison of jobs reads beyond their runs-table rows: every
parameter of each job and the curves of the results they reported with a step.

(The rows themselves: :func:`._runtables.page_rows`; the values of their upstream jobs:
:func:`._upstream.upstream_values`.)
"""

from __future__ import annotations

import json
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


def telling_tags(conn: sqlite3.Connection, ids: list[str]) -> dict[str, str]:
    """Job id -> its tags whose values differ among the jobs ``ids`` (``seed=2``): what
    tells the jobs of a chart's line apart, to name one without its id."""
    tags: dict[str, dict[str, Any]] = {}
    for job_id, key, value in conn.execute(
        "SELECT t.job_id, t.key, t.value FROM json_each(?) sel JOIN tags t ON t.job_id = sel.value",
        (json.dumps(ids),),
    ):
        tags.setdefault(key, {})[job_id] = value
    differing = [
        k for k, by_job in sorted(tags.items()) if len({repr(by_job.get(j)) for j in ids}) > 1
    ]
    return {
        job_id: " ".join(f"{k}={tags[k][job_id]}" for k in differing if job_id in tags[k])
        for job_id in ids
    }
