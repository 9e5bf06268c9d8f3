"""The columns of a runs table: which parameters, tags and results its jobs have, and
which tag and parameter are one setting.

(The rows, filters, facets and pages of the table: :mod:`._runtables`.)
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3

from ._runtables import Column, Selection, distinct_values, selected_ids
from ._upstream import UPSTREAM, upstream_values

#: Jobs whose values name the columns of a runs table at once (the latest of the table).
COLUMN_SAMPLE = 200
_COLUMN_TABLES = (("result", "results", "key"), ("tag", "tags", "key"), ("param", "params", "path"))


def task_columns(
    conn: sqlite3.Connection, task: str, experiment: str | None, sample: list[str] | None = None
) -> list[Column]:
    """The parameters (nested configurations flattened), tags and results of the jobs.

    Names come from the indexes (one seek per distinct name); the latest jobs (``sample``,
    when the caller has them: the newest :data:`COLUMN_SAMPLE`) say at once which belong
    to this table and whether they are numbers, and only names they lack are looked for
    among the other jobs.
    """
    selection = Selection(task, experiment)
    where, args = selection.where({})
    if sample is None:
        sample = selected_ids(conn, selection, COLUMN_SAMPLE)
    marks = ",".join("?" * len(sample))
    registered = _registered_keys(conn, task)
    out = []
    for kind, table, name in _COLUMN_TABLES:
        types: dict[str, set[str]] = {}
        meta: set[str] = set()  # parameters recorded as Meta (not before schema 5)
        flag = "x.meta = 1" if kind == "param" else "0"
        if sample:
            for key, kind_of, is_meta in conn.execute(
                f"SELECT DISTINCT x.{name}, x.type, {flag} FROM {table} x "
                f"WHERE x.job_id IN ({marks})",
                sample,
            ):
                types.setdefault(key, set()).add(kind_of)
                if is_meta:
                    meta.add(key)
        known = registered.get(kind) if registered is not None else None
        for key in known if known is not None else distinct_values(conn, table, name):
            if key not in types:
                found = conn.execute(
                    # From the name's rows (SQLite started from the task's jobs: 100,000
                    # seeks for a name only another task has).
                    f"SELECT x.type, {flag} FROM {table} x CROSS JOIN jobs j ON j.id = x.job_id "
                    f"WHERE x.{name} = :xpm_key AND {where} LIMIT {COLUMN_SAMPLE}",
                    {**args, "xpm_key": key},
                ).fetchall()
                if found:
                    types[key] = {r[0] for r in found}
                    if any(r[1] for r in found):
                        meta.add(key)
        for key in sorted(types):
            if kind == "param" and "config" in types[key]:
                continue  # a nested configuration: its own values are columns
            numeric = types[key] <= {"int", "float", "null"}
            out.append(Column(kind, key, numeric, key in meta))
    return one_setting(conn, out, sample)


def one_setting(conn: sqlite3.Connection, columns: list[Column], sample: list[str]) -> list[Column]:
    """``columns`` with each tag and the parameter it marks linked (``marks``/``marked_by``).

    ``Model(n_layers=tag(3))`` records the tag ``n_layers=3`` beside the parameter
    ``model.n_layers=3``: one setting, which a table shows once (as the tag).  A tag
    marks the one non-Meta parameter whose path ends with its key when they hold the
    same values (and types) on every job of ``sample``.  Two such parameters (a tagged
    ``model.n_layers`` and an untagged ``head.n_layers``), or one value apart (a
    parameter tagged in some jobs only, a tag set by hand), and both stay: a difference
    is never hidden.  The sample is the newest jobs the page read its columns from
    (:data:`COLUMN_SAMPLE`): comparing every job would visit each of 100,000 jobs on
    every load after a write; older jobs where they differ still show through either
    name's filter, which looks at every job.
    """
    params: dict[str, list[Column]] = {}
    for c in columns:
        if c.kind == "param" and not c.meta:
            params.setdefault(c.name.rsplit(".", 1)[-1], []).append(c)
    pairs: dict[str, str] = {}  # tag key -> parameter path
    for tag in (c for c in columns if c.kind == "tag"):
        found = params.get(tag.name, [])
        if sample and len(found) == 1 and _same_values(conn, tag.name, found[0].name, sample):
            pairs[tag.name] = found[0].name
    if not pairs:
        return columns
    marked = {path: key for key, path in pairs.items()}
    return [
        dataclasses.replace(c, marks=pairs[c.name])
        if c.kind == "tag" and c.name in pairs
        else dataclasses.replace(c, marked_by=marked[c.name])
        if c.kind == "param" and c.name in marked
        else c
        for c in columns
    ]


def _same_values(conn: sqlite3.Connection, key: str, path: str, sample: list[str]) -> bool:
    """Whether the tag ``key`` and the parameter ``path`` hold the same value and type (or
    are both missing) on each job of ``sample`` that has the parameter.

    A job with the tag but no row for the parameter was recorded before the parameter
    existed (a parameter added with a default keeps the jobs' identifiers, and a DONE
    job keeps the params.json it ran with): its tag, given again, is its value.  Counted
    apart, such a tag split a sweep into runs "wd=" and "wd=0" (new-user trial)."""
    differs = conn.execute(
        "SELECT 1 FROM json_each(:ids) s "
        "LEFT JOIN tags t ON t.job_id = s.value AND t.key = :key "
        "LEFT JOIN params p ON p.job_id = s.value AND p.path = :path "
        "WHERE (p.job_id IS NOT NULL OR t.job_id IS NULL) "
        "AND (t.value IS NOT p.value OR t.type IS NOT p.type) LIMIT 1",
        {"ids": json.dumps(sample), "key": key, "path": path},
    ).fetchone()
    return differs is None


def _registered_keys(conn: sqlite3.Connection, task: str) -> dict[str, list[str]] | None:
    """Kind -> the names the task's own table has columns for (``task_columns``); None
    when the task has no table (an index written by hand).

    The names every task has (``distinct_values``) each cost a look among this task's jobs
    when the newest jobs lacked them: 130 ms for a chart of one task beside another task's
    100,000 jobs, on the first load after each write.
    """
    if conn.execute("SELECT 1 FROM task_tables WHERE task_id = ?", (task,)).fetchone() is None:
        return None
    out: dict[str, list[str]] = {"param": [], "tag": [], "result": []}
    for kind, key in conn.execute(
        "SELECT kind, key FROM task_columns WHERE task_id = ? ORDER BY key", (task,)
    ):
        out["param" if kind == "meta" else kind].append(key)
    return out


def upstream_columns(
    conn: sqlite3.Connection, task: str, experiment: str | None, sample: list[str] | None = None
) -> list[Column]:
    """The values of upstream jobs (``upstream:learn.epochs``) of the task's latest jobs
    (``sample``, as :func:`task_columns`), as columns a runs table sorts and filters by
    (:func:`._upstream.upstream_expr`).

    Numeric when every value the sample holds is a number (or missing).
    """
    if sample is None:
        sample = selected_ids(conn, Selection(task, experiment), COLUMN_SAMPLE)
    kinds: dict[str, set[type]] = {}
    for values in upstream_values(conn, sample).values():
        for key, value in values.items():
            kinds.setdefault(key.split(":", 1)[1], set()).add(type(value))
    return [
        Column(UPSTREAM, name, numeric=kinds[name] <= {int, float, type(None)})
        for name in sorted(kinds)
    ]
