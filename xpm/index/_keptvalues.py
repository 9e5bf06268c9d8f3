"""The values a chart reads of each job, kept between loads while they cannot have changed.

A chart of 5,000 jobs reads their parameters, tags and the latest value of a result
(:func:`._chartdata.column_values`): three passes of 5,000 lookups, 100-170 ms on every
load after a write to the index, which is every live refresh while an experiment runs.
Most of those jobs ended long ago.  A job's parameters and tags change only when the
index rewrites them, and its ``params_digest`` changes in the same write
(:mod:`._digests`); the reports of a job that ended change only with its state, attempt
or end, or with what the index read of its results file (as for :mod:`._curves`).  So
both are kept per job under those marks, and each load reads only the jobs whose marks
changed, or that still run.  The values of the jobs whose output they use (upstream jobs)
are kept the same way, under their digests.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

from .._vocabulary import TERMINAL_STATES
from ._chartdata import own_values, put
from ._experimentjobs import TaskJobs
from ._upstream import UPSTREAM_DEPTH, jobs_used, values_as_upstream, values_by_user
from ._writecount import KeptByWrites, settings_writes

#: Jobs whose values are kept (per kind); past it, what was kept is dropped and read again.
MAX_KEPT_JOBS = 200_000


@dataclass(frozen=True)
class _Own:
    """A job's own values: parameters (Meta apart) and tags by column key, the jobs whose
    output it uses (:func:`~._upstream.used_job`)."""

    digest: str
    values: dict[str, Any]
    uses: frozenset[str]


@dataclass(frozen=True)
class _Reported:
    """What a job reported of one result: its latest value (None: none), whether some
    report has a step."""

    mark: tuple[Any, ...]
    latest: Any
    stepped: bool


@dataclass(frozen=True)
class ChartValues:
    """The values of a chart's jobs: column key -> job id -> value (as
    :func:`._chartdata.column_values`), and whether one of them reported the result with a
    step (its curves)."""

    values: dict[str, dict[str, Any]]
    stepped: bool
    #: Job id -> its state, attempt, end and how much of its results file the index read
    #: (as :func:`._curves.job_signatures`), read with the result's values.
    signatures: dict[str, tuple[Any, ...]] = dataclasses.field(default_factory=dict)


def _json(value: Any) -> str:
    return json.dumps(value)


class KeptValues:
    """Reads :class:`ChartValues`, keeping what ended jobs hold between calls (one per
    served index; safe to share between threads)."""

    def __init__(self, size: int = MAX_KEPT_JOBS) -> None:
        self._size = size
        self._own: dict[str, _Own] = {}
        self._reported: dict[tuple[str, str], _Reported] = {}
        # Upstream jobs: their values named as upstream values (upstream:<task>.<name>).
        self._as_upstream: dict[str, _Own] = {}
        # Upstream jobs' digests, while none of them is added, removed or given other
        # settings (33-47 ms for 5,000 after each report otherwise).
        self._digests = KeptByWrites(size=8, count=settings_writes)
        self._lock = threading.Lock()

    def read(
        self, conn: sqlite3.Connection, jobs: TaskJobs, count: int, result: str | None
    ) -> ChartValues:
        """The values of the first ``count`` jobs of ``jobs`` (read by
        :func:`~._experimentjobs.experiment_jobs` in this snapshot of the index): parameters
        (Meta apart), tags, values of upstream jobs and, with ``result``, its latest value
        (key ``result:<result>``) and whether it has steps."""
        ids = jobs.ids[:count]
        marks = dict(zip(ids, jobs.marks, strict=False))
        values: dict[str, dict[str, Any]] = {}
        uses: dict[str, set[str]] = {}
        missing: list[str] = []
        for job_id in ids:
            own = self._own.get(job_id)
            digest = marks.get(job_id, (None,))[0]
            if own is None or digest is None or own.digest != digest:
                missing.append(job_id)
                continue
            for key, value in own.values.items():
                put(values, key, job_id, value)
            if own.uses:
                uses[job_id] = set(own.uses)
        if missing:
            fresh = own_values(conn, missing)
            for job_id, (found, used) in fresh.items():
                for key, value in found.items():
                    put(values, key, job_id, value)
                if used:
                    uses[job_id] = set(used)
            self._keep(
                self._own,
                {
                    j: _Own(marks[j][0], v, frozenset(u))
                    for j, (v, u) in fresh.items()
                    if marks.get(j, (None,))[0] is not None
                },
            )
        for job_id, found in self._upstream_values(conn, uses, UPSTREAM_DEPTH).items():
            for key, value in found.items():
                put(values, key, job_id, value)
        stepped, signatures = False, {}
        if result is not None:
            read = _results_read(conn, ids)
            # As _curves.job_signatures reads them (a chart over steps needs them too).
            signatures = {
                j: (state, m[1], m[2], *read.get(j, (None, None, None)))
                for j, state, m in zip(ids, jobs.states, jobs.marks, strict=False)
            }
            stepped = self._results(
                conn, ids, signatures, jobs, result, values.setdefault(f"result:{result}", {})
            )
        return ChartValues(values, stepped, signatures)

    def _upstream_values(
        self, conn: sqlite3.Connection, uses: dict[str, set[str]], depth: int
    ) -> dict[str, dict[str, Any]]:
        """:func:`~._upstream.upstream_values` of the jobs of ``uses`` (job id -> the jobs
        whose output it uses), each upstream job's own values kept under its digest."""
        upstream = sorted({u for found in uses.values() for u in found})
        values: dict[str, dict[str, Any]] = {}
        further: dict[str, set[str]] = {}
        missing: list[str] = []
        digests = self._digests.get(
            conn,
            ("digests", len(upstream), upstream[0] if upstream else None),
            lambda: _digests(conn, upstream),
            also=tuple(upstream),
            update=lambda old, changes: (
                old if changes.settings_changed.isdisjoint(upstream) else None
            ),
        )
        for job_id in upstream:
            kept = self._as_upstream.get(job_id)
            digest = digests.get(job_id)
            if kept is None or digest is None or kept.digest != digest:
                missing.append(job_id)
                continue
            if kept.values:
                values[job_id] = dict(kept.values)
            if kept.uses:
                further[job_id] = set(kept.uses)
        if missing:
            read = values_as_upstream(conn, missing)
            used = jobs_used(conn, missing)
            for job_id in missing:
                if job_id in read:
                    values[job_id] = read[job_id]
                if job_id in used:
                    further[job_id] = used[job_id]
            keep = {}
            for job_id in missing:
                digest = digests.get(job_id)
                if digest is not None:
                    keep[job_id] = _Own(
                        digest, read.get(job_id, {}), frozenset(used.get(job_id, ()))
                    )
            self._keep(self._as_upstream, keep)
        deeper = self._upstream_values(conn, further, depth - 1) if depth > 1 and further else {}
        return values_by_user(uses, values, deeper)

    def _results(
        self,
        conn: sqlite3.Connection,
        ids: list[str],
        signatures: dict[str, tuple[Any, ...]],
        jobs: TaskJobs,
        result: str,
        latest: dict[str, Any],
    ) -> bool:
        """Fill ``latest`` (job id -> latest value of ``result``); whether one job reported
        it with a step.  A job's reports are kept under its ``signatures`` (state, attempt,
        end, results read) and its parameter digest."""
        marks = {
            j: (*signatures[j], m[0])
            for j, m in zip(ids, jobs.marks, strict=False)
            if j in signatures
        }
        stepped = False
        missing: list[str] = []
        for job_id in ids:
            kept = self._reported.get((job_id, result))
            if kept is None or kept.mark != marks.get(job_id):
                missing.append(job_id)
                continue
            if kept.latest is not None:
                latest[job_id] = kept.latest
            stepped = stepped or kept.stepped
        keep: dict[tuple[str, str], _Reported] = {}
        for job_id, value, has_steps in conn.execute(
            "SELECT sel.value, (SELECT x.value FROM results x WHERE x.job_id = sel.value "
            "AND x.key = :key ORDER BY x.seq DESC LIMIT 1), EXISTS (SELECT 1 FROM results x "
            "WHERE x.job_id = sel.value AND x.key = :key AND x.step IS NOT NULL) "
            "FROM json_each(:ids) sel",
            {"ids": _json(missing), "key": result},
        ):
            if value is not None:
                latest[job_id] = value
            stepped = stepped or bool(has_steps)
            mark = marks.get(job_id)
            # Only a job that ended keeps its reports: a running one adds some any time.
            if mark is not None and mark[0] in TERMINAL_STATES:
                keep[(job_id, result)] = _Reported(mark, value, bool(has_steps))
        with self._lock:
            if len(self._reported) + len(keep) > self._size:
                self._reported.clear()
            self._reported.update(keep)
        return stepped

    def _keep(self, kept: dict[str, _Own], found: dict[str, _Own]) -> None:
        with self._lock:
            if len(kept) + len(found) > self._size:
                kept.clear()
            kept.update(found)


def _digests(conn: sqlite3.Connection, ids: list[str]) -> dict[str, str | None]:
    """Job id -> its ``params_digest``, for those of ``ids`` in the index."""
    return dict(
        conn.execute(
            "SELECT j.id, j.params_digest FROM json_each(:ids) sel JOIN jobs j ON j.id = sel.value",
            {"ids": _json(ids)},
        ).fetchall()
    )


def _results_read(conn: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """Job id -> how much of its results file the index read (bytes, lines, which file)."""
    return {
        row[0]: row[1:]
        for row in conn.execute(
            "SELECT r.job_id, r.bytes, r.lines, r.file FROM json_each(:ids) sel "
            "JOIN results_read r ON r.job_id = sel.value",
            {"ids": _json(ids)},
        )
    }
