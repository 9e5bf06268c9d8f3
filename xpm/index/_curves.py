"""Curves over steps: the per-step means of a result over groups of jobs, with what the
jobs that ended contributed kept between loads of a chart.

A chart by step of 5,000 jobs reporting 100 steps averages 500,000 reports: 500 ms of
SQLite sorting them, on every load after a write to the index, which is every live
refresh while an experiment runs.  The reports of a job that ended do not change (its
state, attempt, end and how much of its results file the index read say so), so their
sums per group and step are kept; each load adds those of the other jobs (running, or
ended since), a few rows.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from .._vocabulary import TERMINAL_STATES

#: Sums kept (one per chart: experiment, task, result, grouping), the least used go first.
KEPT_CHARTS = 16
#: Jobs ended since the sums were kept that are summed on every load before the kept
#: sums are redone (at least this many, or this part of the chart's jobs).
REDO_AFTER, REDO_PART = 500, 0.1

#: (group, step) -> [reports, sum of (value - shift), sum of its squares].
Sums = dict[tuple[int, Any], list[float]]


@dataclass(frozen=True)
class StepMean:
    """The mean of a result over the reports of a group of jobs at one step."""

    group: int
    step: Any
    mean: float
    spread: float  # the sample's standard deviation (0 for one value)
    reports: int


def _json(value: Any) -> str:
    """``value`` as one bound JSON value (read with ``json_each``): no limit on its size."""
    return json.dumps(value)


def first_report(conn: sqlite3.Connection, ids: list[str], key: str) -> float | None:
    """One numeric report of result ``key`` by one of the jobs ``ids`` at a step."""
    found = conn.execute(
        "SELECT x.value FROM json_each(:ids) sel JOIN results x ON x.job_id = sel.value "
        "AND +x.key = :key WHERE x.step IS NOT NULL AND x.type IN ('int', 'float') LIMIT 1",
        {"ids": _json(ids), "key": key},
    ).fetchone()
    return None if found is None else float(found[0])


def step_sums(conn: sqlite3.Connection, groups: dict[str, int], key: str, shift: float) -> Sums:
    """Per group of jobs (``groups``: job id -> group number) and step, the numeric reports
    of result ``key``: their number, the sum of their values less ``shift`` and of its
    squares (shifted by a reported value, a result far from zero with a small spread, a
    time in ns, keeps its digits)."""
    if not groups:
        return {}
    return {
        (group, step): [reports, total, squares]
        for group, step, reports, total, squares in conn.execute(
            "SELECT g.value, x.step, COUNT(*), SUM(x.value - :shift), "
            "SUM((x.value - :shift) * (x.value - :shift)) "
            "FROM json_each(:groups) g JOIN results x ON x.job_id = g.key AND +x.key = :key "
            "WHERE x.step IS NOT NULL AND x.type IN ('int', 'float') GROUP BY g.value, x.step",
            {"groups": _json(groups), "key": key, "shift": shift},
        )
    }


def reporting(conn: sqlite3.Connection, ids: list[str], key: str) -> int:
    """How many of the jobs ``ids`` reported result ``key`` at some step (a chart over steps
    says how many have no curve: failed before their first report, or not reporting it)."""
    if not ids:
        return 0
    found = conn.execute(
        "SELECT COUNT(*) FROM json_each(:ids) sel WHERE EXISTS (SELECT 1 FROM results x "
        "WHERE x.job_id = sel.value AND x.key = :key AND x.step IS NOT NULL "
        "AND x.type IN ('int', 'float'))",
        {"ids": _json(ids), "key": key},
    ).fetchone()
    return int(found[0])


def means_of(sums: Sums, shift: float) -> list[StepMean]:
    """The :class:`StepMean` of each (group, step) of ``sums``, by group then step."""
    out = []
    for (group, step), (reports, total, squares) in sums.items():
        n = int(reports)
        mean = total / n
        # The sample's standard deviation (n - 1), as `xpm results --agg std` gives it.
        variance = max(0.0, squares / n - mean * mean) * n / max(1, n - 1)
        out.append(StepMean(group, step, mean + shift, math.sqrt(variance), n))
    return out


def step_means(conn: sqlite3.Connection, groups: dict[str, int], key: str) -> list[StepMean]:
    """Per group of jobs (``groups``: job id -> group number) and step, the mean of the
    numeric reports of result ``key`` and their spread (the sample's standard deviation),
    averaged by SQLite (Python took 2.5 s over 500,000 reports)."""
    shift = first_report(conn, list(groups), key)
    if shift is None:
        return []
    return means_of(step_sums(conn, groups, key, shift), shift)


def job_signatures(conn: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """Job id -> what changes whenever its reports may have: its state, attempt and end,
    and how much of its results file the index read (and which file)."""
    return {
        row[0]: row[1:]
        for row in conn.execute(
            "SELECT j.id, j.state, j.attempt, j.end_time, r.bytes, r.lines, r.file "
            "FROM json_each(:ids) sel JOIN jobs j ON j.id = sel.value "
            "LEFT JOIN results_read r ON r.job_id = j.id",
            {"ids": _json(ids)},
        )
    }


@dataclass
class _Kept:
    """What the ended jobs of one chart contributed when it was last computed."""

    jobs: dict[str, tuple[tuple[Any, ...], int]]  # job id -> (signature, group)
    shift: float
    sums: Sums
    reported: int


class CurveAverages:
    """:func:`step_means` of a chart, keeping what its ended jobs contributed between
    calls (one per served index; safe to share between threads)."""

    def __init__(self, size: int = KEPT_CHARTS) -> None:
        self._size = size
        self._kept: OrderedDict[Hashable, _Kept] = OrderedDict()
        self._lock = threading.Lock()

    def means(
        self,
        conn: sqlite3.Connection,
        chart: Hashable,
        groups: dict[str, int],
        key: str,
        signatures: dict[str, tuple[Any, ...]] | None = None,
    ) -> tuple[list[StepMean], int]:
        """The step means of result ``key`` over ``groups`` (job id -> group number), and how
        many of those jobs reported it (:func:`reporting`).  ``chart`` names the chart
        (what it keeps is found again under it).  ``signatures``: the jobs'
        :func:`job_signatures` when the caller read them in this snapshot of the index."""
        if not groups:
            return [], 0
        if signatures is None or not all(j in signatures for j in groups):
            signatures = job_signatures(conn, list(groups))
        with self._lock:
            kept = self._kept.get((chart, key))
        if kept is not None and not self._still_right(kept, groups, signatures):
            kept = None
        if kept is None:
            kept = self._keep(conn, chart, groups, key, signatures)
        others = {j: g for j, g in groups.items() if j not in kept.jobs}
        sums = {k: list(v) for k, v in kept.sums.items()}
        for at, (reports, total, squares) in step_sums(conn, others, key, kept.shift).items():
            found = sums.get(at)
            if found is None:
                sums[at] = [reports, total, squares]
            else:
                found[0] += reports
                found[1] += total
                found[2] += squares
        reported = kept.reported + reporting(conn, list(others), key)
        return means_of(sums, kept.shift), reported

    @staticmethod
    def _still_right(
        kept: _Kept, groups: dict[str, int], signatures: dict[str, tuple[Any, ...]]
    ) -> bool:
        """Whether every job ``kept`` summed is still in the chart, in the same group, with
        the same reports, and few enough jobs ended since to sum them on each load (running
        jobs are summed on each load whatever is kept)."""
        for job_id, (signature, group) in kept.jobs.items():
            if groups.get(job_id) != group or signatures.get(job_id) != signature:
                return False
        ended_since = sum(
            1
            for job_id in groups
            if job_id not in kept.jobs and signatures.get(job_id, ("",))[0] in TERMINAL_STATES
        )
        return ended_since <= max(REDO_AFTER, REDO_PART * len(groups))

    def _keep(
        self,
        conn: sqlite3.Connection,
        chart: Hashable,
        groups: dict[str, int],
        key: str,
        signatures: dict[str, tuple[Any, ...]],
    ) -> _Kept:
        ended = {
            j: g
            for j, g in groups.items()
            if j in signatures and signatures[j][0] in TERMINAL_STATES
        }
        shift = first_report(conn, list(groups), key)
        kept = _Kept(
            jobs={j: (signatures[j], g) for j, g in ended.items()},
            shift=0.0 if shift is None else shift,
            sums=step_sums(conn, ended, key, 0.0 if shift is None else shift),
            reported=reporting(conn, list(ended), key),
        )
        with self._lock:
            self._kept[(chart, key)] = kept
            self._kept.move_to_end((chart, key))
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return kept
