"""Jobs side by side: their parameters, latest results and per-step curves.

Rows come from :func:`._runs.page_rows`, as in a runs table.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ._runs import page_rows

#: Most jobs compared at once.
MAX_COMPARE = 20


def compare(conn: sqlite3.Connection, ids: list[str]) -> dict[str, Any]:
    """Jobs side by side: ``params`` (path, values, differs), ``results``, per-step ``curves``.

    Parameters that differ come first.  ``curves``: for each result reported with a
    step by any of the jobs, one series per job (points ``[step, value, job id]``).
    """
    jobs = page_rows(conn, ids)
    ids = [j["id"] for j in jobs]
    marks = ",".join("?" * len(ids))
    by_path: dict[str, list[Any]] = {}
    for job_id, path, value in conn.execute(
        f"SELECT job_id, path, value FROM params WHERE job_id IN ({marks}) ORDER BY path", ids
    ):
        by_path.setdefault(path, [None] * len(ids))[ids.index(job_id)] = value
    params = [
        (path, values, len({repr(v) for v in values}) > 1) for path, values in by_path.items()
    ]
    params.sort(key=lambda p: (not p[2], p[0]))
    keys = sorted({k[7:] for j in jobs for k in j["values"] if k.startswith("result:")})
    results = [(k, [j["values"].get(f"result:{k}") for j in jobs]) for k in keys]
    curves: dict[str, dict[str, list[list[Any]]]] = {}
    for job_id, key, step, value in conn.execute(
        f"SELECT job_id, key, step, value FROM results WHERE job_id IN ({marks}) "
        "AND step IS NOT NULL AND type IN ('int', 'float') ORDER BY key, job_id, step, seq",
        ids,
    ):
        curves.setdefault(key, {}).setdefault(job_id, []).append([step, value, job_id])
    return {"jobs": jobs, "params": params, "results": results, "curves": curves}
