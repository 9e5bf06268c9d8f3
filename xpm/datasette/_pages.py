"""The plugin's pages: a job (``/-/xpm/job/<id>``) and a sweep chart (``/-/xpm/chart``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datasette.utils.asgi import NotFound, Response

from .._humanize import launcher_text
from .._vocabulary import shown_state
from ..index import find_job_row, read_job_details
from . import _charts, _data, _files, _format, _jobs
from ._metadata import DATABASE
from ._served import snapshot, while_unchanged, workdir_of

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
    context = {
        # The state as every view names it (a job not started yet: WAITING).
        "job": {**shown, "state": shown_state(shown["state"])},
        "details": details,
        "params": _data.param_tree(details.params),
        "launcher_text": launcher_text,
        "index_behind": details.index_behind,
        "index_state": shown_state(details.index_state or ""),
        "times": {k: _when(shown.get(k)) for k in ("submit_time", "start_time", "end_time")},
        "history": [{**e, "when": _when(e.get("time"))} for e in details.history],
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


def _column(name: str | None, keys: list[str]) -> str | None:
    """``name`` among ``keys``, also written without its ``tag:``/``param:`` (``n_layers``)."""
    for key in (name, f"tag:{name}", f"param:{name}"):
        if name and key in keys:
            return key
    return None


async def _choices(
    db: Any, experiment: str | None, task: str | None, metric: str | None = None
) -> dict[str, Any]:
    """:func:`._charts.choices`, read again only when the index changed."""
    found = await while_unchanged(
        db.path,
        ("chart choices", experiment, task, metric),
        lambda: db.execute_fn(lambda conn: _charts.choices(conn, experiment, task, metric)),
    )
    return dict(found)  # a copy: the page removes "columns"


async def _chart_context(request: Any, datasette: Any) -> dict[str, Any]:
    db = datasette.get_database(DATABASE)
    experiment = request.args.get("experiment")
    if not experiment:
        first = await _choices(db, None, None)
        experiment = (first["experiments"] or [None])[0]
    task = request.args.get("task")
    metric = request.args.get("metric")
    choices = await _choices(db, experiment, task, metric)
    task = choices["task"]
    if metric not in choices["metrics"]:
        metric = (choices["metrics"] or [None])[0]
    valid_x = (["step"] if metric in choices["stepped"] else []) + choices["axes"]
    x = _column(request.args.get("x"), valid_x) or (valid_x[0] if valid_x else None)
    average = _column(request.args.get("average"), choices["axes"])
    if average == x:
        average = None
    view = "parallel" if request.args.get("view") == "parallel" else "lines"

    def read(conn: Any) -> tuple[dict[str, Any], int]:
        data: dict[str, Any] = {"series": [], "points": 0}
        if experiment and task and metric and view == "parallel":
            data = _charts.parallel(conn, experiment, task, metric)
        elif experiment and task and metric and x:
            data = _charts.series(conn, experiment, task, metric, x, average)
        return data, _jobs.active_jobs(conn)

    # Reading 5,000 jobs took 300-500 ms on every load; whether anything runs is cached
    # with the data (both change only with the index) so a live chart never stops
    # refreshing on data older than its "nothing runs".
    data, active = await while_unchanged(
        db.path,
        ("chart data", experiment, task, metric, x, average, view),
        lambda: db.execute_fn(snapshot(read)),
    )
    data = dict(data)  # a copy: the axes' scales below are the request's
    data["logx"] = request.args.get("logx") == "1"
    data["logy"] = request.args.get("logy") == "1"
    # Parallel coordinates: the axis of the form's x and the result's follow its log choices.
    logs = [(data["logx"], x), (data["logy"], metric)]
    data["log_axes"] = [str(key).split(":", 1)[-1] for wanted, key in logs if wanted and key]
    choices.pop("columns")
    asked = request.args.get("experiment")
    return {
        # A mistyped experiment is named, with the ones there are (not "no result").
        "unknown": asked if asked and asked not in choices["experiments"] else None,
        "choices": choices,
        "valid_x": valid_x,
        "experiment": experiment,
        "task": task,
        "metric": metric,
        "x": x,
        "average": average,
        "view": view,
        "data": data,
        "active": active,
    }


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
