"""Chart data: a result against a parameter, a tag or the step, grouped and averaged.

Jobs are read through :mod:`._runs`.  A chart groups the jobs into series by the values
of the columns that vary among them (except the x column and the one averaged over),
and averages y over the jobs of a series sharing an x value (seeds), with a spread band
(mean ± standard deviation).  :func:`parallel` gives the same jobs as parallel
coordinates.
"""

from __future__ import annotations

import math
import sqlite3
from statistics import fmean, pstdev
from typing import Any

from .._vocabulary import JOBS
from . import _jobs, _runs
from ._format import number


def choices(
    conn: sqlite3.Connection, experiment: str | None, task: str | None, metric: str | None = None
) -> dict[str, Any]:
    """What a chart of ``task`` in ``experiment`` can show: tasks, x, y and average columns.

    Without a (known) task: the first that reported ``metric``, else a numeric result.
    """
    experiments = [
        r[0] for r in conn.execute("SELECT name FROM experiments ORDER BY last_start DESC")
    ]
    tasks = [t for t, _n in _jobs.experiment_tasks(conn, experiment)] if experiment else []
    if task not in tasks:
        # The first task with a numeric result (what a chart can draw).
        by_task = {t: _runs.task_columns(conn, t, experiment) for t in tasks}
        task = next(
            (t for t in tasks if any(_metric(c) and c.name == metric for c in by_task[t])),
            next((t for t in tasks if any(_metric(c) for c in by_task[t])), None),
        ) or (tasks[0] if tasks else None)
        columns = by_task.get(task, []) if task else []
    else:
        columns = _runs.task_columns(conn, task, experiment)
    upstream = _upstream_keys(conn, task, experiment) if task else []
    return {
        "experiments": experiments,
        "tasks": tasks,
        "task": task,
        "metrics": [c.name for c in columns if c.kind == "result" and c.numeric],
        "stepped": _runs.stepped_results(conn, task, experiment, columns) if task else [],
        # Meta parameters (devices, paths, counters) never tell jobs apart: not offered.
        "axes": [c.key for c in columns if c.kind != "result" and not c.meta] + upstream,
        "columns": columns,
    }


def _upstream_keys(conn: sqlite3.Connection, task: str, experiment: str | None) -> list[str]:
    """The values of upstream jobs that vary among the latest jobs of the task (x choices)."""
    ids = _runs.selected_ids(conn, _runs.Selection(task, experiment), _runs.COLUMN_SAMPLE)
    values = _runs.upstream_values(conn, ids)
    rows = [{"values": v} for v in values.values()]
    return varying(rows, sorted({k for v in values.values() for k in v}))


def _rows(conn: sqlite3.Connection, ids: list[str], metric: str) -> list[dict[str, Any]]:
    """The jobs with ``metric``, their parameters (no Meta), tags and upstream jobs' values."""
    rows = _runs.rows_of(conn, ids, metric)
    upstream = _runs.upstream_values(conn, ids)
    for row in rows:
        row["values"].update(upstream.get(row["id"], {}))
    return rows


def _metric(column: _runs.Column) -> bool:
    return column.kind == "result" and column.numeric


def _label(key: str) -> str:
    return key.split(":", 1)[-1]


def _column_values(rows: list[dict[str, Any]], key: str) -> tuple[str, ...]:
    """What column ``key`` holds, job by job (comparable across columns)."""
    return tuple(repr(r["values"].get(key)) for r in rows)


def varying(rows: list[dict[str, Any]], keys: list[str]) -> list[str]:
    """The keys whose values differ among ``rows``, one of each set of identical columns.

    Tags come before parameters, and a job's own values before its upstream jobs'
    (``upstream:``), so a tagged parameter is named by its tag; paths into job
    directories (outputs of upstream jobs) are left out: they vary with everything, and
    the upstream jobs' values say what differs.
    """
    out: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for key in sorted(keys, key=lambda k: (not k.startswith("tag:"), k)):
        values = _column_values(rows, key)
        if len(set(values)) < 2 or values in seen:
            continue
        if any(
            isinstance(v, str) and v.startswith(f"{JOBS}/")
            for r in rows
            for v in [r["values"].get(key)]
        ):
            continue
        seen.add(values)
        out.append(key)
    return out


def _order(value: Any) -> tuple[int, Any]:
    """Sort key putting numbers (in order) before text, and NULL last."""
    if value is None:
        return (2, "")
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def series(
    conn: sqlite3.Connection,
    experiment: str,
    task: str,
    metric: str,
    x: str,
    average: str | None = None,
) -> dict[str, Any]:
    """Series of ``result:metric`` against ``x`` (a column key or ``step``).

    Each series has a ``name`` (the values of the varying columns that define it),
    ``points`` ``[x, mean y, job id or list of job ids]`` sorted by x, and ``band``
    ``[x, low, high]`` where several jobs were averaged.  ``group``: the columns naming
    the series; ``merged`` and ``merged_least``: the most and fewest jobs behind a point.
    """
    ids = _runs.selected_ids(conn, _runs.Selection(task, experiment), _runs.MAX_CHART_JOBS)
    rows = _rows(conn, ids, metric)
    keys = sorted({k for r in rows for k in r["values"] if not k.startswith("result:")})
    # A column holding the same values as x or the averaged column (a tag and the
    # parameter it marks: tag:lr and param:lr) is that setting again, not another line.
    chosen = [_column_values(rows, k) for k in (x, average) if k and k != "step"]
    group = [
        k
        for k in varying(rows, keys)
        if k not in (x, average) and _column_values(rows, k) not in chosen
    ]
    buckets: dict[tuple[Any, ...], dict[Any, list[tuple[float, str]]]] = {}
    step_values = _runs.step_values(conn, ids, metric) if x == "step" else None
    for row in rows:
        name = tuple(row["values"].get(k) for k in group)
        bucket = buckets.setdefault(name, {})
        if step_values is not None:
            for step, value in step_values.get(row["id"], []):
                bucket.setdefault(step, []).append((value, row["id"]))
            continue
        y = _number(row["values"].get(f"result:{metric}"))
        xv = row["values"].get(x)
        if y is not None and xv is not None:
            bucket.setdefault(xv, []).append((y, row["id"]))
    out = []
    merged: list[int] = []  # jobs behind each point: averaged, on purpose or not
    for name in sorted(buckets, key=lambda t: [_order(v) for v in t]):
        points, band = [], []
        for xv in sorted(buckets[name], key=_order):
            ys = [y for y, _j in buckets[name][xv]]
            jobs = [j for _y, j in buckets[name][xv]]
            mean = fmean(ys)
            merged.append(len(set(jobs)))
            points.append([xv, mean, jobs[0] if len(jobs) == 1 else jobs])
            if len(ys) > 1:
                spread = pstdev(ys)
                band.append([xv, mean - spread, mean + spread])
        if points:
            label = " ".join(f"{_label(k)}={number(v)}" for k, v in zip(group, name, strict=True))
            out.append({"name": label or metric, "points": points, "band": band})
    return {
        "experiment": experiment,
        "task": task,
        "metric": metric,
        "x": x,
        "average": average,
        "group": [_label(k) for k in group],
        "series": out,
        "points": sum(len(s["points"]) for s in out),
        "jobs": len(rows),
        # A point of several jobs is their mean: the page says how many (and why, when
        # nothing was averaged over), and the y axis reads "mean".
        "merged": max(merged, default=1),
        "merged_least": min(merged, default=1),
    }


def parallel(conn: sqlite3.Connection, experiment: str, task: str, metric: str) -> dict[str, Any]:
    """Parallel coordinates: an axis per varying column and one for ``metric``; a line per job."""
    ids = _runs.selected_ids(conn, _runs.Selection(task, experiment), _runs.MAX_CHART_JOBS)
    rows = _rows(conn, ids, metric)
    keys = sorted({k for r in rows for k in r["values"] if not k.startswith("result:")})
    axes = [*varying(rows, keys), f"result:{metric}"]
    lines = [
        {"job": r["id"], "values": [r["values"].get(k) for k in axes]}
        for r in rows
        if _number(r["values"].get(f"result:{metric}")) is not None
    ]
    return {
        "experiment": experiment,
        "task": task,
        "metric": metric,
        "axes": [_label(k) for k in axes],
        "lines": lines,
        "points": len(lines),
    }
