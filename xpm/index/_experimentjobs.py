"""The jobs an experiment submitted, by task, newest first: read once per page, and kept
by the web view while the index is written, brought up to date from the jobs written since
(:class:`~._writecount.KeptByWrites`, ``job_writes``).

Reading an experiment's 10,000 jobs again took 100-180 ms after each job's start or end;
bringing them up to date reads the 1 to 3 jobs written (a few ms).
"""

from __future__ import annotations

import bisect
import json
import math
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from ._writecount import Changes, KeptByWrites

#: Jobs written since, up to which the kept jobs are brought up to date (else read again).
UPDATE_AT_MOST = 1_000

_ROW = "j.task_id, j.id, j.state, j.submit_time, j.params_digest, j.attempt, j.end_time"


@dataclass(frozen=True)
class TaskJobs:
    """The jobs of one task that one experiment submitted, newest first, with their state
    and, per job, what changes whenever its parameters, tags or latest attempt do
    (``marks``: its ``params_digest``, attempt and end; :class:`~._keptvalues.KeptValues`)."""

    ids: list[str]
    states: list[str | None]
    marks: list[tuple[Any, ...]] = field(default_factory=list)


#: A job's place in the order of the index's pages, oldest first (the pages are newest
#: first: ``submit_time DESC NULLS LAST, id DESC``): jobs never submitted come first.
_Key = tuple[int, float, str]


def _key(job_id: str, submitted: float | None) -> _Key:
    return (0, 0.0, job_id) if submitted is None else (1, float(submitted), job_id)


@dataclass
class ExperimentJobs:
    """What :func:`experiment_jobs` keeps of an experiment: its tasks' jobs and, to bring
    them up to date, each job's task, place and state, when each job and each task's first
    job was submitted, and the experiment's runs."""

    tasks: dict[str, TaskJobs]
    order: dict[str, list[_Key]]  # task -> its jobs' places, oldest first
    job: dict[str, tuple[str, _Key, str | None, tuple[Any, ...]]]  # id -> task, place, state, marks
    first: dict[str, float]
    sent: dict[str, float | None] = field(default_factory=dict)  # id -> first submitted
    runs: frozenset[str] = frozenset()

    def task_jobs(self, task: str) -> TaskJobs:
        """The jobs of ``task`` as pages list them (from :attr:`order`)."""
        ids = [k[2] for k in reversed(self.order[task])]
        found = [self.job[i] for i in ids]
        return TaskJobs(ids, [f[2] for f in found], [f[3] for f in found])

    def ordered(self) -> ExperimentJobs:
        # The task submitted first comes first (the experiment's main one: Learn before the
        # Evaluate of its output), the table's default.
        names = sorted(self.order, key=lambda t: (self.first.get(t, math.inf), t))
        self.tasks = {t: self.tasks[t] for t in names}
        return self


def experiment_jobs(
    conn: sqlite3.Connection, experiment: str, kept: KeptByWrites | None = None
) -> dict[str, TaskJobs]:
    """Task -> its jobs that ``experiment`` submitted (:class:`TaskJobs`); ``kept``: kept
    there while no job is written, and brought up to date from the jobs written since
    (charts and runs tables of one experiment share it).

    One pass over the experiment's submissions: a page needs its tasks, their number of
    jobs, the newest jobs (a table's columns, a chart), and the state of each (the state
    facet).  Each of these looked the experiment's jobs up again (50 ms each over an
    experiment of 10,000 jobs).
    """
    if kept is None:
        return read_experiment_jobs(conn, experiment).tasks
    return kept.get(
        conn,
        ("experiment jobs", experiment),
        lambda: read_experiment_jobs(conn, experiment),
        update=lambda old, changes: updated(conn, experiment, old, changes),
    ).tasks


def read_experiment_jobs(conn: sqlite3.Connection, experiment: str) -> ExperimentJobs:
    """Every job ``experiment`` submitted, read from the index."""
    runs = frozenset(
        r[0] for r in conn.execute("SELECT id FROM runs WHERE experiment = ?", (experiment,))
    )
    out = ExperimentJobs({}, {}, {}, {}, {}, runs)
    for task, job_id, state, submitted, *marks, sent in conn.execute(
        f"SELECT {_ROW}, s.time FROM runs r JOIN submissions s ON s.run = r.id "
        "JOIN jobs j ON j.id = s.job_id WHERE r.experiment = ?",
        (experiment,),
    ):
        if sent is not None and sent < out.first.get(task, math.inf):
            out.first[task] = sent
        earliest = out.sent.get(job_id)
        if earliest is None or (sent is not None and sent < earliest):
            out.sent[job_id] = sent
        if job_id not in out.job:  # submitted again by a later run of the experiment
            key = _key(job_id, submitted)
            out.job[job_id] = (task, key, state, tuple(marks))
            out.order.setdefault(task, []).append(key)
    for task, keys in out.order.items():
        keys.sort()
        out.tasks[task] = out.task_jobs(task)
    return out.ordered()


def updated(
    conn: sqlite3.Connection, experiment: str, old: ExperimentJobs, changes: Changes
) -> ExperimentJobs | None:
    """``old`` with the jobs of ``changes`` as the index has them now; None when it must be
    read again: too many jobs written, a run of the experiment written (or one written
    into it), or a job that left the experiment or its task or whose first submission
    moved (when its task's first job was submitted may have changed)."""
    if len(changes.jobs) > UPDATE_AT_MOST:
        return None
    if changes.runs & old.runs or (
        changes.runs
        and conn.execute(
            "SELECT 1 FROM json_each(?) c JOIN runs r ON r.id = c.value WHERE r.experiment = ?",
            (json.dumps(sorted(changes.runs)), experiment),
        ).fetchone()
    ):
        # A run of the experiment written (at its start and end; deleted, moved): its
        # submissions may have been recorded before it, when they did not count as the
        # experiment's, or stopped counting with it.
        return None
    if not changes.jobs:
        return old
    rows = conn.execute(
        f"SELECT {_ROW}, (SELECT MIN(s.time) FROM submissions s JOIN runs r ON r.id = s.run "
        "WHERE s.job_id = j.id AND r.experiment = :experiment), EXISTS (SELECT 1 FROM "
        "submissions s JOIN runs r ON r.id = s.run WHERE s.job_id = j.id "
        "AND r.experiment = :experiment) FROM json_each(:ids) c "
        "CROSS JOIN jobs j ON j.id = c.value",
        {"experiment": experiment, "ids": json.dumps(sorted(changes.jobs))},
    ).fetchall()
    now = {row[1]: row for row in rows if row[-1]}
    new = ExperimentJobs(
        dict(old.tasks), {}, dict(old.job), dict(old.first), dict(old.sent), old.runs
    )
    touched: set[str] = set()

    def order(task: str) -> list[_Key]:
        if task not in new.order:  # copied once: ``old`` may be in use by another page
            new.order[task] = list(old.order.get(task, []))
            touched.add(task)
        return new.order[task]

    for job_id in changes.jobs:
        before, row = old.job.get(job_id), now.get(job_id)
        if before is not None and (
            row is None or row[0] != before[0] or row[-2] != old.sent.get(job_id)
        ):
            # Left the experiment or its task, or its first submission moved: when its
            # task's first job was submitted may have changed.
            return None
        if before is not None:
            keys = order(before[0])
            at = bisect.bisect_left(keys, before[1])
            if at == len(keys) or keys[at] != before[1]:
                return None  # cannot happen: read everything again rather than guess
            del keys[at]
            del new.job[job_id]
        if row is not None:
            task, _id, state, submitted, *marks, sent, _member = row
            key = _key(job_id, submitted)
            bisect.insort(order(task), key)
            new.job[job_id] = (task, key, state, tuple(marks))
            new.sent[job_id] = sent
            if sent is not None and sent < new.first.get(task, math.inf):
                new.first[task] = sent
    new.order = {**old.order, **new.order}
    for task in touched:
        new.tasks[task] = new.task_jobs(task)
    return new.ordered()
