"""What the web view's charts read: the values of jobs by column, and the per-step means
of a result, computed in SQL.

A chart's first load after a write to the index read the jobs of its experiment three
times and every value of up to 5,000 jobs row by row (400-850 ms over 100,000 jobs).  Now
the experiment's jobs are read once per page (:func:`._experimentjobs.experiment_jobs`), the
values come column by column (:func:`column_values`), and curves over steps are averaged
by SQLite, keeping what the jobs that ended contributed (:mod:`._curves`).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ._upstream import upstream_values, used_job

#: Most jobs a chart reads (the newest of its task in its experiment).
MAX_CHART_JOBS = 5000


def _ids(ids: list[str]) -> str:
    """``ids`` as one bound value (read with ``json_each``): no limit on their number."""
    return json.dumps(ids)


def column_values(
    conn: sqlite3.Connection, ids: list[str], result: str | None
) -> dict[str, dict[str, Any]]:
    """Column key -> job id -> value, for the jobs ``ids``: their parameters (Meta apart: a
    chart never groups, averages or draws an axis by them), tags, the latest value of the
    result ``result`` (none: a chart over steps reads them apart) and the values of their
    upstream jobs (:func:`upstream_values`).  The web view's charts read them through
    :class:`~._keptvalues.KeptValues`, which keeps those of ended jobs."""
    values: dict[str, dict[str, Any]] = {}
    uses: dict[str, set[str]] = {}
    for job_id, (own, used) in own_values(conn, ids).items():
        for key, value in own.items():
            put(values, key, job_id, value)
        if used:
            uses[job_id] = used
    if result is not None:
        # The latest report of each job: one step back along (job_id, key, seq) per job.
        latest = values.setdefault(f"result:{result}", {})
        for job_id, value in conn.execute(
            "SELECT sel.value, (SELECT x.value FROM results x WHERE x.job_id = sel.value "
            "AND x.key = :result ORDER BY x.seq DESC LIMIT 1) FROM json_each(:ids) sel",
            {"ids": _ids(ids), "result": result},
        ):
            if value is not None:
                latest[job_id] = value
    for job_id, found in upstream_values(conn, ids, uses=uses).items():
        for key, value in found.items():
            put(values, key, job_id, value)
    return values


def own_values(
    conn: sqlite3.Connection, ids: list[str]
) -> dict[str, tuple[dict[str, Any], set[str]]]:
    """Job id -> (its parameters (Meta apart) and tags by column key (``param:<path>``,
    ``tag:<key>``), the jobs whose output it uses), for each of ``ids``."""
    out: dict[str, tuple[dict[str, Any], set[str]]] = {j: ({}, set()) for j in ids}
    ids_arg = _ids(ids)
    # Every parameter, Meta ones included: their paths name the upstream jobs.
    for path, job_id, value, kind, meta in conn.execute(
        "SELECT p.path, p.job_id, p.value, p.type, p.meta FROM json_each(:ids) sel "
        "JOIN params p ON p.job_id = sel.value",
        {"ids": ids_arg},
    ):
        own, uses = out[job_id]
        used = used_job(job_id, kind, value)
        if used is not None:
            uses.add(used)
        if meta != 1:
            own[f"param:{path}"] = value
    for key, job_id, value in conn.execute(
        "SELECT t.key, t.job_id, t.value FROM json_each(:ids) sel JOIN tags t ON t.job_id = sel.value",
        {"ids": ids_arg},
    ):
        out[job_id][0][f"tag:{key}"] = value
    return out


def put(values: dict[str, dict[str, Any]], key: str, job_id: str, value: Any) -> None:
    """``values[key][job_id] = value``, making ``values[key]`` when missing."""
    column = values.get(key)
    if column is None:
        column = values[key] = {}
    column[job_id] = value


def stepped_results(conn: sqlite3.Connection, ids: list[str], names: list[str]) -> list[str]:
    """The results of ``names`` that one of the jobs ``ids`` reported with a step (curves)."""
    out = []
    for name in names:
        # The first job with a step answers; a result without steps costs a seek per job.
        found = conn.execute(
            "SELECT 1 FROM json_each(:ids) sel JOIN results x ON x.job_id = sel.value "
            "AND x.key = :key WHERE x.step IS NOT NULL LIMIT 1",
            {"ids": _ids(ids), "key": name},
        ).fetchone()
        if found:
            out.append(name)
    return out
