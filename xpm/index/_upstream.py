"""Upstream values: what tells apart jobs that differ only by the job whose output they use.

Runs tables, charts and comparisons of the web view read them here (one function, so they
agree on which upstream job names which value).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .._vocabulary import JOBS

#: How a column of an upstream job's value is named (``upstream:learn.epochs``).
UPSTREAM = "upstream"


#: How many levels of upstream jobs name a job's values (Evaluate of Finetune of Learn: 2).
UPSTREAM_DEPTH = 3


def used_job(job_id: str, kind: str, value: Any) -> str | None:
    """The job whose output the parameter ``value`` of type ``kind`` of job ``job_id``
    names (a path ``jobs/<task>/<id>/...``), None for any other value."""
    if kind != "path" or not isinstance(value, str) or not value.startswith(f"{JOBS}/"):
        return None
    parts = value.split("/")
    # A path inside the job's own directory (its outputs) names no other job.
    return parts[2] if len(parts) >= 3 and parts[2] != job_id else None


def upstream_values(
    conn: sqlite3.Connection,
    ids: list[str],
    depth: int = UPSTREAM_DEPTH,
    uses: dict[str, set[str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Job id -> ``upstream:<task>.<name>`` -> value: the tags and parameters (Meta and
    nested configurations apart) of the jobs whose output each of ``ids`` uses.

    Two Evaluate jobs of two Learn jobs differing by their epochs differ, in their own
    parameters, by a Meta path into each Learn job's directory only: these values are
    what tells them apart.  The index keeps no dependency list: such a path
    (``jobs/<task>/<id>/...``, Meta or not) names the upstream job.  A tag and a
    parameter of the same name hold the same value; the tag's is kept.  The upstream jobs'
    own upstream jobs count too, up to ``depth`` levels (the nearest job's value wins a
    name): an Evaluate of a Finetune of a Learn differs by the Learn job's seed.

    ``uses``: job id -> the upstream jobs it uses (:func:`used_job`), when the caller read
    the parameters of ``ids`` already.
    """
    if uses is None:
        uses = _uses(conn, ids)
    upstream = sorted({u for found in uses.values() for u in found})
    values = _values_of(conn, upstream)
    if depth > 1 and upstream:
        for up, further in upstream_values(conn, upstream, depth - 1).items():
            values[up] = {**further, **values.get(up, {})}
    out: dict[str, dict[str, Any]] = {}
    for job_id, found in uses.items():
        for up in sorted(found):
            out.setdefault(job_id, {}).update(values.get(up, {}))
    return out


def _uses(conn: sqlite3.Connection, ids: list[str]) -> dict[str, set[str]]:
    """Job id -> the jobs whose output it uses, for ``ids``."""
    uses: dict[str, set[str]] = {}
    for chunk in chunks(ids):
        marks = ",".join("?" * len(chunk))
        for job_id, value in conn.execute(
            f"SELECT job_id, value FROM params WHERE job_id IN ({marks}) AND type = 'path' "
            f"AND value LIKE '{JOBS}/%'",
            chunk,
        ):
            used = used_job(job_id, "path", value)
            if used is not None:
                uses.setdefault(job_id, set()).add(used)
    return uses


def _values_of(conn: sqlite3.Connection, upstream: list[str]) -> dict[str, dict[str, Any]]:
    """Job id -> ``upstream:<task>.<name>`` -> value, for the jobs ``upstream`` themselves."""
    values: dict[str, dict[str, Any]] = {}
    for chunk in chunks(upstream):
        marks = ",".join("?" * len(chunk))
        tasks = dict(conn.execute(f"SELECT id, task_id FROM jobs WHERE id IN ({marks})", chunk))
        for sql in (
            f"SELECT job_id, path, value FROM params WHERE job_id IN ({marks}) "
            "AND meta IS NOT 1 AND type != 'config'",
            f"SELECT job_id, key, value FROM tags WHERE job_id IN ({marks})",
        ):
            for job_id, name, value in conn.execute(sql, chunk):
                if job_id in tasks:
                    task = str(tasks[job_id]).rsplit(".", 1)[-1]
                    values.setdefault(job_id, {})[f"{UPSTREAM}:{task}.{name}"] = value
    return values


def chunks(ids: list[str]) -> list[list[str]]:
    """``ids`` 500 at a time (below SQLite's limit of bound values)."""
    return [ids[start : start + 500] for start in range(0, len(ids), 500)]
