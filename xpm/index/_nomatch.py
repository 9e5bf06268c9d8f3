"""Why a runs table's filters keep no job: what each filter keeps alone, and the values its
column holds.

"No job matches" after ``lr>0.5, seed=3`` left the reader guessing which filter was wrong
(a typo in a value, a threshold past every run, two filters that each keep jobs but never
the same ones).  Read only when a table is empty: it counts the task's jobs once per
filtered column.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

from ._runtables import FIXED, Column, Selection, job_count, literal

#: Values of a column listed (before "and N more"); a numeric column of more shows its range.
LISTED = 6
#: Columns of times and durations: always shown as a range.
TIMES = ("submitted", "started", "duration")


def no_match(
    conn: sqlite3.Connection,
    selection: Selection,
    columns: list[Column],
    texts: dict[str, str],
) -> list[dict[str, Any]]:
    """For each filtered column of ``selection`` (which keeps no job), in the order the
    filters were given: ``text`` (the filters' own, ``texts`` by ``repr((key, op, value))``), ``count``
    (the jobs they keep alone) and, when they keep none, what the column holds among the
    table's jobs: ``low`` and ``high`` for times and numbers of many values, else ``values``
    (up to :data:`LISTED`) and ``distinct``; ``empty`` when no job has a value there;
    ``together`` instead when each filter on the column keeps jobs alone, never together."""
    by_key = {c.key: c for c in columns}
    keys = list(dict.fromkeys(f[0] for f in selection.filters))
    out = []
    for key in keys:
        mine = [f for f in selection.filters if f[0] == key]
        alone = replace(selection, filters=mine, found={})
        entry: dict[str, Any] = {
            "key": key,
            "text": _text(mine, texts, key),
            "count": job_count(conn, alone, columns),
        }
        if (
            entry["count"] == 0
            and len(mine) > 1
            and all(
                job_count(conn, replace(selection, filters=[f], found={}), columns) for f in mine
            )
        ):
            entry["together"] = True  # lr>0.05, lr<0.02: each keeps jobs, never both
        elif entry["count"] == 0:
            entry.update(_held(conn, replace(selection, filters=[], found={}), key, by_key))
        out.append(entry)
    return out


def _text(mine: list[tuple[str, str, Any]], texts: dict[str, str], key: str) -> str:
    """The filters on one column as typed: several values are alternatives (``or``), the
    other comparisons all hold (as :meth:`Selection.where` reads them)."""
    said = [texts.get(repr(tuple(f)), key) for f in mine]
    equal = [text for f, text in zip(mine, said, strict=True) if f[1] == "="]
    rest = [text for f, text in zip(mine, said, strict=True) if f[1] != "="]
    return ", ".join(([" or ".join(equal)] if equal else []) + rest)


def _held(
    conn: sqlite3.Connection, every: Selection, key: str, by_key: dict[str, Column]
) -> dict[str, Any]:
    """What column ``key`` holds among the jobs of ``every`` (the table without filters)."""
    column = by_key.get(key)
    expr = column.expr() if column is not None else FIXED.get(key)
    if expr is None:
        return {}
    where, args = every.where(by_key)
    values = f"SELECT {expr} AS v FROM jobs j WHERE {where}"
    if column is not None and column.kind in ("param", "tag"):
        # Through the (path|key, value, job_id) index rather than a lookup per job.
        table, name = ("params", "path") if column.kind == "param" else ("tags", "key")
        values = (
            f"SELECT value AS v FROM {table} WHERE {name} = {literal(column.name)} "
            f"AND job_id IN (SELECT j.id FROM jobs j WHERE {where})"
        )
    numeric = key in TIMES or (column and column.numeric)
    if numeric:
        n, low, high = conn.execute(
            f"SELECT COUNT(DISTINCT v), MIN(v), MAX(v) FROM ({values}) "
            "WHERE typeof(v) IN ('integer', 'real')",
            args,
        ).fetchone()
        # A few values are listed (width=48 among 32 and 64 is not "from 32 to 64").
        if low is not None and (key in TIMES or n > LISTED):
            return {"low": low, "high": high}
    order = "v" if numeric else "COUNT(*) DESC, v"
    rows = conn.execute(
        f"SELECT v FROM ({values}) WHERE v IS NOT NULL GROUP BY v ORDER BY {order} LIMIT {LISTED}",
        args,
    ).fetchall()
    if not rows:
        return {"empty": True}
    (distinct,) = conn.execute(
        f"SELECT COUNT(DISTINCT v) FROM ({values}) WHERE v IS NOT NULL", args
    ).fetchone()
    return {"values": [r[0] for r in rows], "distinct": distinct}
