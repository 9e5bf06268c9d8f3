"""The plugin's pages: a job (``/-/xpm/job/<id>``) and a sweep chart (``/-/xpm/chart``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datasette.utils.asgi import NotFound, Response

from .._humanize import event_text, launcher_text
from .._vocabulary import identifier_prefix, shown_state
from ..index import active_job_count, find_job_row, read_job_details
from . import _charts, _files, _format
from ._metadata import DATABASE
from ._served import (
    curve_averages,
    kept_by_writes,
    kept_values,
    snapshot,
    while_unchanged,
    workdir_of,
)

STATIC = Path(__file__).parent / "static"
#: Lines of stdout/stderr shown on a job page.
TAIL_LINES = 40
_TYPES = {"js": "application/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}


def _when(value: Any) -> str:
    return _format.when(value)  # local time with its zone, as on every page of the plugin


async def static_file(request: Any, datasette: Any) -> Response:
    """The plugin's own static files (chart code, styles), served without any CDN."""
    name = request.url_vars["path"]
    path = STATIC / name
    kind = name.rsplit(".", 1)[-1]
    if kind not in _TYPES or not path.is_file():
        raise NotFound(f"no static file {name}")
    return Response(
        path.read_text(encoding="utf-8"),
        content_type=_TYPES[kind],
        headers={"Cache-Control": "max-age=60"},
    )


async def job_page(request: Any, datasette: Any) -> Response:
    """Parameters, tags, results, history, git state, launcher and log tails of one job.

    What it shows is :func:`xpm.index.read_job_details`'s record, as `xpm jobs show`
    prints it: the job directory for what it holds, the index for links between jobs.
    """
    db = datasette.get_database(DATABASE)
    ref = request.url_vars["job_id"]
    if not identifier_prefix(ref):
        raise NotFound(
            f"{ref!r} is not a job identifier: give its hex digits, or a prefix of them, as "
            "`xpm jobs show` takes them"
        )
    job = await db.execute_fn(lambda conn: find_job_row(conn, ref))
    if job is None:
        raise NotFound(f"no job {ref} in the index (or several start with it: give more digits)")
    workdir = workdir_of(datasette)
    # Only a directory inside the workdir's jobs/ (not a link elsewhere) is read.
    jobdir = _files.job_dir(workdir, job["path"]) if workdir else None
    details = await db.execute_fn(lambda conn: read_job_details(conn, job["id"], jobdir))
    if details is None:
        raise NotFound(f"no job {ref} in the index")
    logs: dict[str, str | None] = {"stdout": None, "stderr": None}
    if workdir is not None:
        for stream in logs:
            logs[stream] = _files.log_tail(workdir, job["path"], stream, TAIL_LINES)
    shown = details.job
    # Earlier attempts' logs and results (kept as stdout.1.log...), linked from Attempts.
    earlier = (
        [
            path.name
            for n in range(1, details.earlier_attempts + 1)
            for path in (jobdir.log("stdout", n), jobdir.log("stderr", n), jobdir.results_of(n))
            if path.is_file()
        ]
        if jobdir is not None
        else []
    )
    context = {
        "earlier": earlier,
        # The state as every view names it (a job not started yet: WAITING).
        "job": {**shown, "state": shown_state(shown["state"])},
        "details": details,
        "params": param_tree(details.params),
        "launcher_text": launcher_text,
        "index_behind": details.index_behind,
        "index_state": shown_state(details.index_state or ""),
        "times": {k: _when(shown.get(k)) for k in ("submit_time", "start_time", "end_time")},
        "history": [
            {**e, "when": _when(e.get("time")), "details": event_text(e)} for e in details.history
        ],
        "logs": logs,
        "jobdir": str(jobdir.path) if jobdir else None,
        "experiments": sorted({s["experiment"] for s in details.submissions}),
        "related": {"upstream": details.upstream, "downstream": details.downstream},
        "chart": _job_chart(details.latest),
        "when": _when,
        "database": DATABASE,
    }
    html = await datasette.render_template("xpm_job.html", context, request=request)
    return Response.html(html)


def _job_chart(results: list[dict[str, Any]]) -> dict[str, Any]:
    """What the job page's chart links show: the job's first result reported by step (its
    curves, beside those of the other jobs of its task), else its first numeric result."""
    numeric = [
        r
        for r in results
        if isinstance(r.get("value"), (int, float)) and not isinstance(r.get("value"), bool)
    ]
    stepped = [r for r in numeric if r.get("step") is not None]
    chosen = stepped or numeric
    return {"metric": chosen[0]["key"] if chosen else None, "step": bool(stepped)}


async def _chart_context(request: Any, datasette: Any) -> dict[str, Any]:
    db = datasette.get_database(DATABASE)
    args = request.args
    asked = _charts.ChartAsked(
        experiment=args.get("experiment") or None,
        task=args.get("task"),
        metric=args.get("metric"),
        x=args.get("x"),
        average=args.get("average"),
        view=args.get("view") or "lines",
    )

    curves, kept, writes = curve_averages(db.path), kept_values(db.path), kept_by_writes(db.path)

    def read(conn: Any) -> tuple[dict[str, Any], int]:
        return _charts.chart(conn, asked, curves, kept, writes), active_job_count(conn)

    # Reading 5,000 jobs took 300-500 ms on every load; whether anything runs is cached
    # with the data (both change only with the index) so a live chart never stops
    # refreshing on data older than its "nothing runs".  The form's choices and the data
    # are read together: both need the experiment's jobs.
    found, active = await while_unchanged(
        db.path, ("chart", asked), lambda: db.execute_fn(snapshot(read))
    )
    context = dict(found)
    data = dict(context["data"])  # a copy: the axes' scales below are the request's
    # Not asked (a first visit, a link): x spanning two decades or more is drawn on a log
    # axis (lr 0.001, 0.01, 0.1 put 0.001 on the y axis); the form says so, and sends
    # logx=0 when unticked.
    asked_logx = args.getlist("logx")
    data["logy"] = args.get("logy") == "1"
    x_axis = str(context["x"]).split(":", 1)[-1] if context["x"] else None
    if "lines" in data:
        # Parallel coordinates: each parameter spanning two decades is drawn on a log axis,
        # the form's x as its box says once asked, the result's as "log y".
        auto = [a for a in _charts.decade_axes(data) if a != x_axis]
        data["logx"] = "1" in asked_logx if asked_logx else x_axis in _charts.decade_axes(data)
        logs = [(data["logx"], x_axis), (data["logy"], str(context["metric"]))]
        data["log_axes"] = auto + [key for wanted, key in logs if wanted and key]
    else:
        data["logx"] = "1" in asked_logx if asked_logx else _charts.spans_decades(data)
        logs = [(data["logx"], context["x"]), (data["logy"], context["metric"])]
        data["log_axes"] = [str(key).split(":", 1)[-1] for wanted, key in logs if wanted and key]
    asked_experiment = args.get("experiment")
    experiments = context["choices"]["experiments"]
    # A mistyped experiment is named, with the ones there are (not "no result").
    unknown = asked_experiment if asked_experiment and asked_experiment not in experiments else None
    return {**context, "unknown": unknown, "data": data, "active": active}


def param_tree(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Nested ``{name: {"value", "type", "meta", "children"}}`` from dotted parameter paths
    (:attr:`xpm.index.JobDetails.params`; a bool shown as ``true``/``false``, a list or
    dict as JSON)."""
    root: dict[str, Any] = {}
    for row in sorted(rows, key=lambda r: str(r["path"]).split(".")):
        node = root
        parts = str(row["path"]).split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {"value": None, "type": "", "children": {}})["children"]
        entry = node.setdefault(parts[-1], {"value": None, "type": "", "children": {}})
        value = row["value"]
        if row["type"] == "bool" and value in (0, 1):
            value = "true" if value else "false"
        elif isinstance(value, (list, dict)):
            value = json.dumps(value, sort_keys=isinstance(value, dict))
        entry["value"], entry["type"], entry["meta"] = value, row["type"], bool(row.get("meta"))
    return root


async def chart_page(request: Any, datasette: Any) -> Response:
    """A result metric against a tag or a step for one experiment, drawn as SVG in the page."""
    context = await _chart_context(request, datasette)
    context["data_json"] = json.dumps(context["data"], default=str).replace("</", "<\\/")
    context["job_url"] = datasette.urls.path("-/xpm/job/")
    html = await datasette.render_template("xpm_chart.html", context, request=request)
    return Response.html(html)


async def chart_json(request: Any, datasette: Any) -> Response:
    """The chart's data as JSON (same arguments as the chart page)."""
    context = await _chart_context(request, datasette)
    keys = ("experiment", "task", "metric", "x", "average", "view", "data")
    return Response.json({k: context[k] for k in keys})
