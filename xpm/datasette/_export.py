"""A runs table as CSV (``/-/xpm/runs.csv``): every job it keeps, on all its pages, in its
order, with every column, for a notebook or a spreadsheet.

The URL takes the table's own arguments (``task``, ``experiment``, ``where``, ``sort``,
``meta``), so the page's link exports what the page shows.  Values are the stored ones
(whole floats, not the page's 4 digits), times ISO 8601 with their offset, durations in
seconds.
"""

from __future__ import annotations

import csv
import datetime
import io
from typing import Any

from datasette.utils.asgi import Response

from .. import index
from ._metadata import DATABASE
from ._served import kept_by_settings, snapshot
from ._views import asked_table, table_base

#: Jobs read per pass (their parameters, tags and results by id).
CHUNK = 500
#: The job fields first, as the table shows them.
FIELDS = ("id", "task", "state", "reason", "submitted", "started", "ended", "duration", "commit")


def _when(seconds: Any) -> str:
    if seconds is None:
        return ""
    return datetime.datetime.fromtimestamp(float(seconds)).astimezone().isoformat("T", "seconds")


def _fields(row: dict[str, Any]) -> list[Any]:
    start, end = row.get("start_time"), row.get("end_time")
    commit = row.get("commit_sha") or ""
    if commit and row.get("dirty"):
        commit += "*" + str(row.get("git_state") or "")[:4]  # a dirty tree and its state, as shown
    return [
        row["id"],
        row["task_id"],
        row["state"],
        row.get("reason") or "",
        _when(row.get("submit_time")),
        _when(start),
        _when(end),
        "" if start is None or end is None else round(float(end) - float(start), 3),
        commit,
    ]


def table_csv(
    conn: Any,
    selection: index.Selection,
    columns: list[index.Column],
    meta: bool,
    kept: index.KeptByWrites | None = None,
) -> str:
    """The CSV text of every job of ``selection``: the job fields, then a column per
    parameter (Meta ones when ``meta``), tag, result and upstream value, named by key
    (``param:lr``, ``tag:seed``, ``result:accuracy``, ``upstream:learn.epochs``)."""
    ids = index.ordered_ids(conn, selection, columns, kept)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        found = index.page_rows(conn, chunk, meta=meta)
        ups = index.upstream_values(conn, chunk)
        for row in found:
            row["values"].update(ups.get(row["id"], {}))
        rows += found
    keys = [c.key for c in columns if c.kind != "upstream" and (meta or not c.meta)]
    seen = set(keys)
    for row in rows:  # upstream values, in the order they come
        for key in row["values"]:
            if key not in seen:
                seen.add(key)
                keys.append(key)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*FIELDS, *keys])
    for row in rows:
        values = row["values"]
        writer.writerow(
            [*_fields(row), *("" if values.get(k) is None else values[k] for k in keys)]
        )
    return out.getvalue()


async def runs_csv(request: Any, datasette: Any) -> Response:
    """``/-/xpm/runs.csv?task=...[&experiment=...]`` and the table's filters and order."""
    db = datasette.get_database(DATABASE)
    task = request.args.get("task")
    experiment = request.args.get("experiment") or None
    if experiment is not None and not await db.execute_fn(
        lambda conn: index.has_experiment(conn, experiment)
    ):
        return Response.text(f"no experiment {experiment!r} in the index\n", status=404)
    base = await table_base(db, task, experiment)
    if base["task"] is None or (task and base["task"] != task):
        return Response.text(f"no job of task {task!r} in the index\n", status=404)
    asked = asked_table(request, base, experiment)
    if asked.errors:  # an export of another table than the one asked would mislead
        return Response.text("; ".join(asked.errors) + "\n", status=400)
    settings = kept_by_settings(db.path)

    def read(conn: Any) -> str:
        return table_csv(conn, asked.selection, base["columns"], asked.show_meta, settings)

    text = await db.execute_fn(snapshot(read))
    name = (experiment + "-" if experiment else "") + str(base["task"])
    return Response(
        text,
        content_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}.csv"'},
    )
