"""What ``xpm jobs list --watch`` shows at each refresh: counts by state and the visible jobs.

A refresh reads only what fits on the screen: the counts come from one grouped query (or
the filtered selection), the rows from the index with a limit, active jobs first, and a
running job's latest report is read from the tail of its results.jsonl (the index gets
results when the job ends).  The terminal handling is the command line's (cli/_jobs.py)
and the drawing is cli/_render.py's.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._jobdir import JobDir
from ._vocabulary import ACTIVE_STATES
from .workdir import JobFilter, select_jobs

#: Bytes read from the end of a running job's results.jsonl for its latest report.
_TAIL = 16384


@dataclass
class Snapshot:
    """One refresh of the live view."""

    workdir: Path
    taken: float
    #: Jobs matching the filters in each state (as stored in the index).
    counts: dict[str, int]
    #: The jobs shown: active ones first, then the most recent; ``live`` is set on running
    #: jobs with ``{"step": ..., "values": {...}}`` from their latest report.
    jobs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Jobs matching the filters."""
        return sum(self.counts.values())


def latest_report(path: Path) -> dict[str, Any] | None:
    """The latest value of each key reported in a results.jsonl, and the latest step, as
    ``{"step": ..., "values": {...}}`` (only its tail is read: keys last reported before it
    are left out), or None.  One report may carry only some keys (``loss`` every step,
    ``lr`` now and then): each key shows its own latest value."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - _TAIL))
            tail = fh.read()
    except OSError:
        return None
    values: dict[str, Any] = {}
    step = None
    found = False
    for line in reversed(tail.split(b"\n")):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by the tail's start, or being written
        if not isinstance(record, dict):
            continue
        found = True
        if step is None:
            step = record.get("step")
        for key, value in (record.get("values") or {}).items():
            values.setdefault(str(key), value)
    return {"step": step, "values": values} if found else None


def snapshot(workdir: Path, filters: JobFilter, rows: int) -> Snapshot:
    """Counts by state and at most ``rows`` jobs matching ``filters`` (active jobs first,
    reconciled with their directories and launchers as ``xpm jobs list`` does)."""
    wanted = set(filters.states)
    active_states = [s for s in ACTIVE_STATES if not wanted or s in wanted]
    jobs: list[dict[str, Any]] = []
    if active_states and rows > 0:
        jobs = select_jobs(workdir, replace(filters, states=active_states, limit=rows))
    if len(jobs) < rows:
        seen = {j["id"] for j in jobs}
        recent = select_jobs(workdir, replace(filters, limit=rows), reconcile=False)
        jobs += [j for j in recent if j["id"] not in seen][: rows - len(jobs)]
    for job in jobs:
        if job["state"] == "RUNNING":
            latest = latest_report(JobDir(workdir, job["task_id"], job["id"]).results)
            if latest is not None:
                job["live"] = latest
    return Snapshot(workdir, time.time(), _counts(workdir, filters), jobs)


def _counts(workdir: Path, filters: JobFilter) -> dict[str, int]:
    from .index import index_path, open_index, state_counts

    if not index_path(workdir).exists():
        return {}
    if filters.empty():
        with open_index(workdir, readonly=True) as db:
            return state_counts(db)
    counts: dict[str, int] = {}
    for job in select_jobs(workdir, replace(filters, limit=None), reconcile=False):
        counts[job["state"]] = counts.get(job["state"], 0) + 1
    return counts
