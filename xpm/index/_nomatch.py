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

from ._results import LISTED  # values listed, as `xpm results` lists them
from ._runtables import FIXED, Column, Selection, job_count, literal

#: Columns of times and durations: always shown as a range.
TIMES = ("submitted", "started", "duration")
#: Jobs past which a result's values are not read for the note (each job's latest value).
LARGE = 20_000


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
    if column is not None and column.kind in ("param", "tag"):
        return _held_setting(conn, column, every, by_key)
    where, args = every.where(by_key)
    expr = column.expr() if column is not None else FIXED.get(key)
    if expr is None:
        return {}
    if key not in TIMES and job_count(conn, every, list(by_key.values())) > LARGE:
        return {}  # a result's latest value job by job: too long to read over this many
    values = f"SELECT {expr} AS v FROM jobs j WHERE {where}"
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


def _held_setting(
    conn: sqlite3.Connection, column: Column, every: Selection, by_key: dict[str, Column]
) -> dict[str, Any]:
    """:func:`_held` for a parameter or a tag, through the ``(path|key, value, job_id)``
    index: its values in the whole index first (a few groups), then whether the table's
    jobs hold each, or the table's lowest and highest (each the first row found in index
    order).  Reading the value of each of a task's 100,000 jobs took a second."""
    table, name = ("params", "path") if column.kind == "param" else ("tags", "key")
    own = f"SELECT x.value, x.job_id FROM {table} x WHERE x.{name} = {literal(column.name)}"
    known = every.ids(conn, by_key)
    if known is not None:  # an experiment's jobs: looked up in Python, not per row in SQL
        ids = set(known)

        def mine(rows: Any) -> Any:
            return (value for value, job in rows if job in ids)

        args: dict[str, Any] = {}
    else:
        where, args = every.where(by_key)
        own += f" AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = x.job_id AND {where})"

        def mine(rows: Any) -> Any:
            return (value for value, _job in rows)

    def first(sql: str, **more: Any) -> Any:
        return next(mine(conn.execute(sql, {**args, **more})), None)

    anywhere = [
        r[0]
        for r in conn.execute(
            f"SELECT x.value FROM {table} x WHERE x.{name} = {literal(column.name)} "
            f"AND x.value IS NOT NULL GROUP BY x.value LIMIT {LISTED + 1}"
        )
    ]
    if len(anywhere) <= LISTED:
        held = [v for v in anywhere if first(f"{own} AND x.value = :xpm_v", xpm_v=v) is not None]
        return {"values": held, "distinct": len(held)} if held else {"empty": True}
    numbers = f"{own} AND typeof(x.value) IN ('integer', 'real') ORDER BY x.value"
    low = first(f"{numbers} ASC")
    if low is not None:
        return {"low": low, "high": first(f"{numbers} DESC")}
    values: list[Any] = []
    for value in mine(conn.execute(f"{own} AND x.value IS NOT NULL ORDER BY x.value", args)):
        if value not in values:
            values.append(value)
        if len(values) == LISTED:
            break
    # How many more there are is not counted (a pass over every job): "and more".
    return {"values": values, "distinct": LISTED + 1} if values else {"empty": True}
