"""Jobs side by side: their parameters, latest results and per-step curves.

Rows come from :func:`xpm.index.page_rows`, as in a runs table; every parameter and the
curves from :func:`xpm.index.compared_params` and :func:`xpm.index.compared_curves`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from ..index import (
    compared_curves,
    compared_params,
    page_rows,
    reports_at_step,
    telling_tags,
    upstream_values,
)

#: Most jobs compared at once.
MAX_COMPARE = 20


@dataclass(frozen=True)
class AtStep:
    """A point of a curve over steps: its result and step (``?metric=loss&step=40``)."""

    metric: str
    step: float

    @classmethod
    def asked(cls, args: Any) -> AtStep | None:
        """The point a chart's link names, None when it names none (or a step that is not
        a number: every job given is compared)."""
        metric, text = args.get("metric"), args.get("step")
        if not metric or text is None:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
        # A whole step as an int, as reported (40, not 40.0, in what the page says).
        return cls(metric, int(number) if number.is_integer() else number)


def compare(conn: sqlite3.Connection, ids: list[str], at: AtStep | None = None) -> dict[str, Any]:
    """Jobs side by side: ``params`` and ``meta`` (path, values, differs), ``results``,
    per-step ``curves``; with ``at``, ``at_step``.

    Parameters that differ come first, then the values of upstream jobs that differ
    (``upstream:learn.epochs``, see :func:`xpm.index.upstream_values`): two Evaluate jobs
    of two Learn jobs differ by nothing else.  ``meta``: the Meta parameters, by path, apart:
    they do not make jobs different (a model path differs for every job), so they are
    never among the parameters that differ.  ``curves``: for each result reported with
    a step by any of the jobs, one series per job (points ``[step, value, job id]``).

    ``at``: a point of a curve over steps, whose line's jobs are ``ids``: only the jobs that
    reported its result at its step are compared (a chart's point lists its line's jobs,
    seeds that failed before the step included).  ``at_step`` says which (``metric``,
    ``step``, ``given``: how many jobs the line had, ``values``: job id -> its value
    there, ``missing``: :class:`xpm.index.StepReport` of the jobs left out).
    """
    at_step = None
    if at is not None:
        reports = reports_at_step(conn, ids, at.metric, at.step)
        ids = [r.job_id for r in reports if r.reported]
        missing = [r for r in reports if not r.reported]
        at_step = {
            "metric": at.metric,
            "step": at.step,
            "given": len(reports),
            "values": {r.job_id: r.value for r in reports if r.reported},
            "missing": missing,
            # "seed=2", not only an id: what tells the jobs of the line apart.
            "named": telling_tags(conn, [r.job_id for r in reports]) if missing else {},
        }
    jobs = page_rows(conn, ids)
    ids = [j["id"] for j in jobs]
    by_path: dict[str, list[Any]] = {}
    meta_paths: set[str] = set()
    for job_id, path, value, meta in compared_params(conn, ids):
        by_path.setdefault(path, [_MISSING] * len(ids))[ids.index(job_id)] = value
        if meta:
            meta_paths.add(path)
    # A missing row takes the tag's value within one task only: across tasks a path one
    # task lacks is not its default (an Evaluate's model.lr read as its Learn job's lr tag
    # put model.lr among the parameters "equal in all").
    one_task = len({j["task_id"] for j in jobs}) == 1
    for path, values in by_path.items():
        by_path[path] = (
            _from_tags(path, values, jobs)
            if one_task
            else [None if v is _MISSING else v for v in values]
        )
    rows = [(path, values, len({repr(v) for v in values}) > 1) for path, values in by_path.items()]
    params = sorted((p for p in rows if p[0] not in meta_paths), key=lambda p: (not p[2], p[0]))
    params[sum(p[2] for p in params) : 0] = _upstream_differences(conn, ids, params)
    meta = [p for p in rows if p[0] in meta_paths]
    keys = sorted({k[7:] for j in jobs for k in j["values"] if k.startswith("result:")})
    results = [(k, [j["values"].get(f"result:{k}") for j in jobs], _steps(jobs, k)) for k in keys]
    curves = compared_curves(conn, ids)
    return {
        "jobs": jobs,
        "params": params,
        "meta": meta,
        "results": results,
        "curves": curves,
        "at_step": at_step,
    }


def _upstream_differences(
    conn: sqlite3.Connection, ids: list[str], params: list[tuple[str, list[Any], bool]]
) -> list[tuple[str, list[Any], bool]]:
    """Rows of the upstream jobs' values that differ and that no parameter already shows."""
    upstream = upstream_values(conn, ids)
    shown = {repr(values) for _path, values, differs in params if differs}
    keys = sorted({k for values in upstream.values() for k in values})
    out = []
    for key in keys:
        values = [upstream.get(i, {}).get(key) for i in ids]
        if len({repr(v) for v in values}) > 1 and repr(values) not in shown:
            shown.add(repr(values))
            out.append((key, values, True))
    return out


def _steps(jobs: list[dict[str, Any]], key: str) -> list[Any] | None:
    """The step of each job's latest ``key`` when they are not all the same (a failed
    seed's latest loss is from an earlier step than the others'), else None."""
    steps = [j["steps"].get(key) for j in jobs if f"result:{key}" in j["values"]]
    if len({repr(s) for s in steps}) < 2:
        return None
    return [j["steps"].get(key) for j in jobs]


#: A parameter a job has no row for (recorded before the parameter existed).
_MISSING = object()


def _from_tags(path: str, values: list[Any], jobs: list[dict[str, Any]]) -> list[Any]:
    """``values`` of the parameter ``path`` per job, a missing row taking the value of the
    job's tag of the parameter's name: a parameter added with its default keeps the jobs'
    identifiers, and a job already done keeps the params.json it ran with, so only its
    tag, given again, says its value (compare showed "wd 0 | — | —" for three jobs all at
    the default).  Without such a tag the value stays unknown (None)."""
    name = path.rsplit(".", 1)[-1]
    out = []
    for value, job in zip(values, jobs, strict=True):
        if value is _MISSING:
            value = job["values"].get(f"tag:{name}")
        out.append(value)
    return out
