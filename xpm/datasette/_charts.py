"""Chart data: a result against a parameter, a tag or the step, grouped and averaged.

A chart groups the jobs into series by the values of the columns that vary among them
(except the x column and the one averaged over), and averages y over the jobs of a
series sharing an x value (seeds), with a spread band (mean ± standard deviation).
:func:`chart` also gives the same jobs as parallel coordinates.  What it reads comes from
the index (:func:`xpm.index.experiment_jobs`, :func:`xpm.index.column_values`,
:class:`xpm.index.CurveAverages`), once per page.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from statistics import fmean, stdev
from typing import Any

from .._vocabulary import JOBS, shown_state
from ..index import (
    COLUMN_SAMPLE,
    MAX_CHART_JOBS,
    UPSTREAM,
    Column,
    CurveAverages,
    KeptByWrites,
    KeptValues,
    TaskJobs,
    column_values,
    experiment_jobs,
    experiments_newest_first,
    task_columns,
)
from ._format import number


@dataclass(frozen=True)
class ChartAsked:
    """What a chart page asks for (each may be missing or wrong: :func:`chart` decides)."""

    experiment: str | None = None
    task: str | None = None
    metric: str | None = None
    x: str | None = None
    average: str | None = None
    view: str = "lines"


def _metric(column: Column) -> bool:
    return column.kind == "result" and column.numeric


def _label(key: str) -> str:
    return key.split(":", 1)[-1]


def _column(name: str | None, keys: list[str]) -> str | None:
    """``name`` among ``keys``, also written without its ``tag:``/``param:`` (``n_layers``);
    a tag no job has any more names the parameter it was (``tag:seed`` after ``seed``
    was untagged: ``param:seed``, or the one parameter whose path ends with it)."""
    for key in (name, f"tag:{name}", f"param:{name}"):
        if name and key in keys:
            return key
    if name and name.startswith("tag:"):
        tail = name[4:]
        found = [
            k
            for k in keys
            if k.startswith("param:") and k.rsplit(".", 1)[-1] in (f"param:{tail}", tail)
        ]
        if len(found) == 1:
            return found[0]
    return None


def chart(
    conn: Any,
    asked: ChartAsked,
    curves: CurveAverages | None = None,
    kept: KeptValues | None = None,
    writes: KeptByWrites | None = None,
) -> dict[str, Any]:
    """Everything a chart page shows, read in one pass over the experiment's jobs.

    ``choices``: the experiments, the experiment's tasks, the task's numeric results
    (``metrics``), whether the chosen one has curves (``stepped``) and what x and the averaged column can
    be (``axes``); then the chosen ``experiment``, ``task``, ``metric``, ``x``,
    ``average``, ``view``, ``valid_x`` and ``data`` (:func:`series` or :func:`parallel`).
    ``curves``, ``kept`` and ``writes``: what keeps the sums of curves, the values of jobs
    and the experiment's jobs between loads (the server's own).
    """
    experiments = experiments_newest_first(conn)
    experiment = asked.experiment or (experiments[0] if experiments else None)
    by_task = experiment_jobs(conn, experiment, writes) if experiment else {}
    tasks = sorted(by_task)
    task = asked.task
    if task in by_task:
        columns = _columns(conn, task, experiment, by_task[task].ids)
    else:
        # The first task with the metric, else with a numeric result (what a chart draws).
        found = {t: _columns(conn, t, experiment, by_task[t].ids) for t in tasks}
        task = next(
            (t for t in tasks if any(_metric(c) and c.name == asked.metric for c in found[t])),
            next((t for t in tasks if any(_metric(c) for c in found[t])), None),
        ) or (tasks[0] if tasks else None)
        columns = found.get(task, []) if task else []
    jobs = by_task[task] if task else TaskJobs([], [], [])
    ids = jobs.ids[:MAX_CHART_JOBS]
    metrics = [c.name for c in columns if _metric(c)]
    # Meta parameters (devices, paths, counters) never tell jobs apart: not offered.  A
    # parameter its tag marks is that tag (one setting, offered once, by the tag's name).
    axes = [c.key for c in columns if c.kind != "result" and not c.meta and not c.marked_by]
    axes += _upstream_keys(conn, ids[:COLUMN_SAMPLE])
    same = {c.key: f"tag:{c.marked_by}" for c in columns if c.marked_by}
    metric = asked.metric if asked.metric in metrics else (metrics[0] if metrics else None)
    # Only the chosen result is read (its latest values, whether it has curves): each
    # other result cost a pass.
    read = (kept or KeptValues()).read(conn, jobs, MAX_CHART_JOBS, metric) if metric else None
    stepped = [metric] if read is not None and read.stepped else []
    # A setting with one value among these jobs draws every point at one x: offered last,
    # with its value, and never the default (epochs=10 of a sweep over lr and seed was).
    constant = _constant(read.values, ids, axes) if read is not None else {}
    axes = [a for a in axes if a not in constant] + [a for a in axes if a in constant]
    valid_x = (["step"] if metric in stepped else []) + axes
    found_x = _column(_tag_of(asked.x, same), valid_x)
    x = found_x or (valid_x[0] if valid_x else None)
    found_average = _column(_tag_of(asked.average, same), axes)
    average = None if found_average == x else found_average
    # A link or bookmark naming a column these jobs lack is said, not silently redrawn.
    dropped = [
        (what, name)
        for what, name, found in (
            ("task", asked.task, task if asked.task in by_task else None),
            ("y", asked.metric, asked.metric if asked.metric in metrics else None),
            ("x", asked.x, found_x),
            ("average over", asked.average, found_average),
        )
        if name and found is None
    ]
    view = "parallel" if asked.view == "parallel" else "lines"
    data: dict[str, Any] = {"series": [], "points": 0}
    if experiment and task and metric and read is not None:
        values = _one_setting(read.values, same)
        if view == "parallel":
            data = parallel(values, ids, metric)
        elif x:
            data = series(
                conn, values, ids, metric, x, average, curves, (experiment, task), read.signatures
            )
        data = {"experiment": experiment, "task": task, **data}
        # Curves too: "4 without loss: 4 waiting" (it read "failed, running or not
        # reporting it" for jobs submitted again and waiting: a trial).
        data["without_why"] = why_without(values, ids, jobs.states, metric)
        if x != "step" or view == "parallel":
            data["unfinished"], data["unfinished_why"] = unfinished_why(
                values, ids, jobs.states, metric
            )
    return {
        "choices": {
            "experiments": experiments,
            "tasks": tasks,
            "task": task,
            "metrics": metrics,
            "stepped": stepped,
            "axes": axes,
            "constant": constant,
        },
        "experiment": experiment,
        "task": task,
        "metric": metric,
        "x": x,
        "average": average,
        "view": view,
        "valid_x": valid_x,
        "data": data,
        "dropped": dropped,
    }


def _constant(values: dict[str, dict[str, Any]], ids: list[str], keys: list[str]) -> dict[str, Any]:
    """The keys holding one value among the jobs ``ids`` (key -> that value)."""
    out = {}
    for key in keys:
        held = values.get(key, {})
        seen = {repr(held.get(i)) for i in ids}
        if len(seen) == 1:
            out[key] = held.get(ids[0]) if ids else None
    return out


def _one_setting(
    values: dict[str, dict[str, Any]], same: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """``values`` less each parameter its tag marks (``same``: parameter key -> tag key)
    where the two agree on every job having the parameter: one setting, which draws no
    line or axis of its own.  A job without the parameter's row (recorded before the
    parameter existed) takes its tag's value; where they disagree, both stay."""
    out = dict(values)
    for param, tag in same.items():
        tagged = values.get(tag, {})
        found = values.get(param, {})
        if all(
            job_id in tagged and tagged[job_id] == v and type(tagged[job_id]) is type(v)
            for job_id, v in found.items()
        ):
            out.pop(param, None)
    return out


def _tag_of(name: str | None, same: dict[str, str]) -> str | None:
    """``name`` (``param:model.n_layers`` or ``model.n_layers``), or the tag that marks the
    parameter it names (``same``: parameter key -> tag key): links asking for it work."""
    return same.get(name or "", same.get(f"param:{name}", name))


def _columns(conn: Any, task: str, experiment: str | None, ids: list[str]) -> list[Column]:
    return task_columns(conn, task, experiment, sample=ids[:COLUMN_SAMPLE])


def _upstream_keys(conn: Any, sample: list[str]) -> list[str]:
    """The values of upstream jobs that vary among the latest jobs of the task (x choices),
    less those holding what one of the jobs' own columns holds: an Evaluate job's tag
    n_layers is its Learn job's model.n_layers, one setting offered once (as the tag)."""
    values = column_values(conn, sample, None)
    return [k for k in varying(values, sample, sorted(values)) if k.startswith(f"{UPSTREAM}:")]


def _column_values(values: dict[str, dict[str, Any]], ids: list[str], key: str) -> tuple[Any, ...]:
    """What column ``key`` holds, job by job (comparable across columns)."""
    return tuple(map(values.get(key, {}).get, ids))


def varying(values: dict[str, dict[str, Any]], ids: list[str], keys: list[str]) -> list[str]:
    """The keys whose values differ among the jobs ``ids``, one of each set of identical
    columns (``values``: key -> job id -> value).

    Tags come before parameters, and a job's own values before its upstream jobs'
    (``upstream:``), so a tagged parameter is named by its tag; paths into job
    directories (outputs of upstream jobs) are left out: they vary with everything, and
    the upstream jobs' values say what differs.
    """
    out: list[str] = []
    seen: set[tuple[Any, ...]] = set()
    # Of identical columns, the tag, then the job's own, then the shortest name: an upstream
    # job's tag (upstream:learn.n_layers) before the parameter it marks (...model.n_layers).
    for key in sorted(
        keys, key=lambda k: (not k.startswith("tag:"), k.split(":")[0], k.count("."), k)
    ):
        column = values.get(key, {})
        if len(column) == len(ids) and len(set(column.values())) < 2:
            continue  # every job has it, with one value: the quick answer
        held = _column_values(values, ids, key)
        if len(set(held)) < 2 or held in seen:
            continue
        if any(isinstance(v, str) and v.startswith(f"{JOBS}/") for v in column.values()):
            continue
        seen.add(held)
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


def _keys(values: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(k for k in values if not k.startswith("result:"))


def series(
    conn: Any,
    values: dict[str, dict[str, Any]],
    ids: list[str],
    metric: str,
    x: str,
    average: str | None = None,
    curves: CurveAverages | None = None,
    chart: Any = None,
    signatures: dict[str, tuple[Any, ...]] | None = None,
) -> dict[str, Any]:
    """Series of ``result:metric`` against ``x`` (a column key or ``step``).

    Each series has a ``name`` (the values of the varying columns that define it),
    ``jobs`` (its job ids), ``points`` ``[x, mean y, job id or list of job ids]`` sorted
    by x (over steps: ``[step, mean y, number of values]``), and ``band`` ``[x, low,
    high]`` where several values were averaged.  ``group``: the columns naming the
    series; ``merged`` and ``merged_least``: the most and fewest jobs behind a point.
    ``curves`` keeps the sums of curves between loads of the chart named ``chart``
    (experiment and task).
    """
    # A column holding the same values as x or the averaged column (a tag and the
    # parameter it marks: tag:lr and param:lr) is that setting again, not another line.
    chosen = [_column_values(values, ids, k) for k in (x, average) if k and k != "step"]
    group = [
        k
        for k in varying(values, ids, _keys(values))
        if k not in (x, average) and _column_values(values, ids, k) not in chosen
    ]
    columns = [values.get(k, {}) for k in group]
    names: dict[tuple[Any, ...], list[str]] = {}
    for job_id in ids:
        names.setdefault(tuple(c.get(job_id) for c in columns), []).append(job_id)
    ordered = sorted(names, key=lambda t: [_order(v) for v in t])
    if x == "step":
        chart_name = (chart, tuple(group))
        lines, merged, reported = _step_lines(
            conn,
            [names[n] for n in ordered],
            metric,
            curves or CurveAverages(),
            chart_name,
            signatures,
        )
        without = len(ids) - reported
    else:
        lines, merged = _value_lines(values, [names[n] for n in ordered], metric, x)
        without = _without(values, ids, metric)
    out = []
    # A tag and a parameter of one name that differ somewhere are both lines' keys: the
    # parameter is then named as such ("aug=2 param:aug=—", not "aug=2 aug=—").
    short = [_label(k) for k in group]
    labels = [
        k if short.count(_label(k)) > 1 and not k.startswith("tag:") else _label(k) for k in group
    ]
    for name, jobs, (points, band) in zip(ordered, (names[n] for n in ordered), lines, strict=True):
        if points:
            label = " ".join(
                f"{shown}={'—' if v is None else number(v)}"
                for shown, v in zip(labels, name, strict=True)
            )
            out.append({"name": label or metric, "jobs": jobs, "points": points, "band": band})
    return {
        "metric": metric,
        "x": x,
        "average": average,
        "group": [_label(k) for k in group],
        "series": out,
        "points": sum(len(s["points"]) for s in out),
        "jobs": len(ids),
        # Jobs without a value of the result (failed, or still running): said, not hidden.
        "without": without,
        # A point of several jobs is their mean: the page says how many (and why, when
        # nothing was averaged over), and the y axis reads "mean".
        "merged": max(merged, default=1),
        "merged_least": min(merged, default=1),
    }


_Line = tuple[list[list[Any]], list[list[Any]]]


def _value_lines(
    values: dict[str, dict[str, Any]], groups: list[list[str]], metric: str, x: str
) -> tuple[list[_Line], list[int]]:
    """Points and bands of each group of jobs, y against the column ``x``."""
    ys, xs = values.get(f"result:{metric}", {}), values.get(x, {})
    lines, merged = [], []
    for jobs in groups:
        buckets: dict[Any, list[tuple[float, str]]] = {}
        for job_id in jobs:
            y, xv = _number(ys.get(job_id)), xs.get(job_id)
            if y is not None and xv is not None:
                buckets.setdefault(xv, []).append((y, job_id))
        points, band = [], []
        for xv in sorted(buckets, key=_order):
            found = [y for y, _j in buckets[xv]]
            at = [j for _y, j in buckets[xv]]
            mean = fmean(found)
            merged.append(len(set(at)))
            points.append([xv, mean, at[0] if len(at) == 1 else at])
            if len(found) > 1:
                spread = stdev(found)  # the sample's, as `xpm results --agg std`
                band.append([xv, mean - spread, mean + spread])
        lines.append((points, band))
    return lines, merged


def _step_lines(
    conn: Any,
    groups: list[list[str]],
    metric: str,
    curves: CurveAverages,
    chart_name: Any,
    signatures: dict[str, tuple[Any, ...]] | None = None,
) -> tuple[list[_Line], list[int], int]:
    """Points and bands of each group of jobs, y against the step (averaged by SQLite), and
    how many of the jobs reported ``metric`` (``signatures``: the jobs', when read)."""
    means, reported = curves.means(
        conn,
        chart_name,
        {j: n for n, jobs in enumerate(groups) for j in jobs},
        metric,
        signatures,
    )
    by_group: dict[int, list[Any]] = {}
    for mean in means:
        by_group.setdefault(mean.group, []).append(mean)
    lines, merged = [], []
    for n, _jobs in enumerate(groups):
        found = sorted(by_group.get(n, []), key=lambda m: _order(m.step))
        points = [[m.step, m.mean, m.reports] for m in found]
        band = [[m.step, m.mean - m.spread, m.mean + m.spread] for m in found if m.reports > 1]
        # The values behind each point: fewer where a job stopped reporting (failed early),
        # which the page says ("up to 5") rather than "5 jobs" for every point.
        merged += [m.reports for m in found]
        lines.append((points, band))
    return lines, merged, reported


def parallel(values: dict[str, dict[str, Any]], ids: list[str], metric: str) -> dict[str, Any]:
    """Parallel coordinates: an axis per varying column and one for ``metric``; a line per job."""
    axes = [*varying(values, ids, _keys(values)), f"result:{metric}"]
    columns = [values.get(k, {}) for k in axes]
    ys = values.get(f"result:{metric}", {})
    lines = [
        {"job": job_id, "values": [c.get(job_id) for c in columns]}
        for job_id in ids
        if _number(ys.get(job_id)) is not None
    ]
    return {
        "metric": metric,
        "axes": [_label(k) for k in axes],
        "lines": lines,
        "points": len(lines),
        "jobs": len(ids),
        "without": len(ids) - len(lines),
    }


def _without(values: dict[str, dict[str, Any]], ids: list[str], metric: str) -> int:
    """How many of the jobs ``ids`` have no numeric value of ``metric``."""
    ys = values.get(f"result:{metric}", {})
    return sum(1 for job_id in ids if _number(ys.get(job_id)) is None)


def why_without(
    values: dict[str, dict[str, Any]], ids: list[str], states: list[str | None], metric: str
) -> str | None:
    """Why some of the jobs ``ids`` (``states``: theirs, in that order) have no value of
    ``metric``: how many in each state and the tags and parameters they all share that
    the others do not all have ("6 failed, all seed=2"); None when every job has one."""
    ys = values.get(f"result:{metric}", {})
    missing = [j for j in ids if _number(ys.get(j)) is None]
    words = {"DONE": "done without reporting it", "RUNNING": "running"}
    return _describe(values, ids, states, missing, words) if missing else None


def unfinished_why(
    values: dict[str, dict[str, Any]], ids: list[str], states: list[str | None], metric: str
) -> tuple[int, str | None]:
    """How many of the jobs ``ids`` drawn with a value of ``metric`` did not finish
    (failed, running, cancelled), and how they read ("8 failed, all seed=3"): their value
    is the latest they reported, maybe from an earlier step than the others' (a trial
    saw a failed seed's loss at step 2 averaged with the others' at step 4, unsaid)."""
    ys = values.get(f"result:{metric}", {})
    state_of = dict(zip(ids, states, strict=False))
    unfinished = [
        j for j in ids if _number(ys.get(j)) is not None and state_of.get(j) not in (None, "DONE")
    ]
    if not unfinished:
        return 0, None
    return len(unfinished), _describe(values, ids, states, unfinished, {"RUNNING": "running"})


def _describe(
    values: dict[str, dict[str, Any]],
    ids: list[str],
    states: list[str | None],
    some: list[str],
    words: dict[str, str],
) -> str:
    """``some`` of the jobs ``ids``: how many in each state (``words`` for a state) and the
    tags and parameters they all share that the others do not all have."""
    state_of = dict(zip(ids, states, strict=False))
    counts = Counter(shown_state(state_of.get(j) or "") for j in some)
    parts = [f"{n} {words.get(state, state.lower())}" for state, n in counts.most_common()]
    shared = []
    # Tags first, then parameters (a seed left untagged names the failed seed too).
    keys = sorted(k for k in values if k.startswith("tag:"))
    keys += sorted(k for k in values if k.startswith("param:"))
    for key in keys:
        column = values[key]
        first = column.get(some[0])
        if (
            first is not None
            and all(column.get(j) == first for j in some)
            and any(column.get(j) != first for j in ids)
        ):
            shared.append(f"{_label(key)}={number(first)}")
    return ", ".join(parts) + (f", all {' '.join(shared)}" if shared else "")


def decade_axes(data: dict[str, Any], decades: float = 2.0) -> list[str]:
    """The parameter axes of parallel coordinates (``data`` of :func:`parallel`, the
    result's axis left out) whose values are all positive numbers spanning ``decades``
    powers of ten or more: drawn on a log axis unless asked otherwise, as a line chart's x
    (lr 0.001, 0.01, 0.1 squeezed 0.001 and 0.01 together)."""
    lines = data.get("lines") or []
    return [
        name
        for k, name in enumerate(data.get("axes", [])[:-1])
        if _spans([line["values"][k] for line in lines], decades)
    ]


def _spans(xs: list[Any], decades: float) -> bool:
    """Whether ``xs`` are all positive numbers spanning ``decades`` powers of ten."""
    numbers = [x for x in xs if isinstance(x, (int, float)) and not isinstance(x, bool)]
    if not numbers or len(numbers) != len(xs) or min(numbers) <= 0:
        return False
    return math.log10(max(numbers) / min(numbers)) >= decades - 1e-9


def spans_decades(data: dict[str, Any], decades: float = 2.0) -> bool:
    """Whether the numeric x values of a chart's lines (``data`` of :func:`chart`) are all
    positive and span ``decades`` powers of ten or more (a log axis reads them)."""
    if data.get("x") == "step":
        return False
    return _spans([p[0] for line in data.get("series") or [] for p in line["points"]], decades)
