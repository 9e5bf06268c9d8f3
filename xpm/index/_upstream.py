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
        uses = jobs_used(conn, ids)
    upstream = sorted({u for found in uses.values() for u in found})
    further = upstream_values(conn, upstream, depth - 1) if depth > 1 and upstream else {}
    return values_by_user(uses, values_as_upstream(conn, upstream), further)


def values_by_user(
    uses: dict[str, set[str]],
    values: dict[str, dict[str, Any]],
    further: dict[str, dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Job id -> the values of the jobs it uses (``uses``), from each upstream job's own
    ``values`` and those of its own upstream jobs (``further``): a job's own value wins
    over its upstream jobs' of the same name, and among the jobs one job uses, the one
    with the greatest id."""
    for up, found in further.items():
        values[up] = {**found, **values.get(up, {})}
    out: dict[str, dict[str, Any]] = {}
    for job_id, used in uses.items():
        for up in sorted(used):
            out.setdefault(job_id, {}).update(values.get(up, {}))
    return out


def jobs_used(conn: sqlite3.Connection, ids: list[str]) -> dict[str, set[str]]:
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


def values_as_upstream(conn: sqlite3.Connection, upstream: list[str]) -> dict[str, dict[str, Any]]:
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


def _used_id(value: str) -> str:
    """SQL of :func:`used_job`'s answer for the path ``value`` (an SQL expression) of a
    parameter: the ``<id>`` of ``jobs/<task>/<id>/...``."""
    rest = f"substr({value}, {len(JOBS) + 2})"  # <task>/<id>/...
    after = f"substr({rest}, instr({rest}, '/') + 1)"  # <id>/...
    return f"substr({after}, 1, instr({after} || '/', '/') - 1)"


def _uses_path(param: str) -> str:
    """SQL condition: the parameter row ``param`` is a path naming some job's directory."""
    value = f"{param}.value"
    rest = f"substr({value}, {len(JOBS) + 2})"
    return (
        f"{param}.type = 'path' AND substr({value}, 1, {len(JOBS) + 1}) = '{JOBS}/' "
        f"AND instr({rest}, '/') > 0"
    )


def upstream_expr(key: str, job: str = "j.id") -> str:
    """SQL of the value ``upstream:<key>`` (``learn.epochs``) of the job ``job`` (an SQL
    expression): what :func:`upstream_values` gives it, NULL when no upstream job in the
    index has it (the job it names was cleaned, or it uses none).

    So runs tables sort and filter by these values in SQL, counts and pages included: the
    upstream jobs are those :func:`used_job` names, up to :data:`UPSTREAM_DEPTH` levels,
    of the task named by ``key``'s first part; a job's tag wins over its parameter of the
    same name, and the values win in :func:`upstream_values`' order of precedence: among
    the jobs a job uses, the greatest id having the value (its own, else its upstream
    jobs', in the same order).
    """
    task, _, name = key.partition(".")
    return _nearest(job, UPSTREAM_DEPTH, task, name)


def _nearest(job: str, depth: int, task: str, name: str) -> str:
    """SQL of the value of the job ``job`` uses with the greatest id that has it, its own
    before its upstream jobs' (``depth`` levels).

    Nested scalar queries, each level asked only when the nearer one has no value
    (COALESCE stops at the first): 350 ms to sort 20,000 Evaluate jobs by a Learn job's
    value, where a recursive query walking every level took 1.2 s.
    """
    q = f"q{depth}"
    used = _used_id(f"{q}.value")
    short, quoted = (f"'{v}'" for v in (task.replace("'", "''"), name.replace("'", "''")))
    value = (
        "(SELECT CASE WHEN t.job_id IS NOT NULL THEN t.value ELSE p.value END FROM jobs uj "
        f"LEFT JOIN tags t ON t.job_id = uj.id AND t.key = {quoted} "
        f"LEFT JOIN params p ON p.job_id = uj.id AND p.path = {quoted} "
        "AND p.meta IS NOT 1 AND p.type != 'config' "
        # The task's short name, as upstream_values names it (learn of demo.learn).
        f"WHERE uj.id = {used} AND (uj.task_id = {short} "
        f"OR substr(uj.task_id, -{len(task) + 1}) = '.' || {short}) "
        "AND (t.job_id IS NOT NULL OR p.job_id IS NOT NULL))"
    )
    if depth > 1:
        value = f"COALESCE({value}, {_nearest(used, depth - 1, task, name)})"
    return (
        f"(SELECT {value} AS v FROM params {q} WHERE {q}.job_id = {job} AND {_uses_path(q)} "
        # A path into the job's own directory (its outputs) names no other job.
        f"AND {used} NOT IN ('', {job}) ORDER BY v IS NULL, {used} DESC LIMIT 1)"
    )


def chunks(ids: list[str]) -> list[list[str]]:
    """``ids`` 500 at a time (below SQLite's limit of bound values)."""
    return [ids[start : start + 500] for start in range(0, len(ids), 500)]
