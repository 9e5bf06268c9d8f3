"""Selecting the jobs of a workdir: filters, names (identifier prefixes), the latest results.

The selection behind ``xpm jobs list|show|kill|clean``: rows of the index, the active ones
reconciled first with their directories and their launcher (:mod:`._reconcile`).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._vocabulary import ACTIVE_STATES
from ..errors import UsageError
from ._locate import no_index_hint
from ._reconcile import reconcile_launchers

if TYPE_CHECKING:
    from ..index import IndexDB


# --- filters ---------------------------------------------------------------------------------
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """``--since``: a duration back from now (``30m``, ``2h``, ``3d``, ``1w``) or an ISO date
    or time (``2025-01-31``, ``2025-01-31T14:00``); returns a Unix time."""
    match = _DURATION.match(text)
    if match:
        return (time.time() if now is None else now) - float(match[1]) * _UNITS[match[2]]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise UsageError(
            f"--since {text!r}: give a duration back from now (30m, 2h, 3d, 1w) or a date "
            "or time (2025-01-31, 2025-01-31T14:00)"
        ) from None


def parse_tags(items: Iterable[str]) -> dict[str, str]:
    """``--tag key=value`` options as a dict; a malformed one is a :class:`UsageError`."""
    tags: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--tag {item!r}: write KEY=VALUE (e.g. --tag model=cnn)")
        tags[key.strip()] = value
    return tags


@dataclass
class JobFilter:
    """The filters of ``xpm jobs list|kill|clean`` (every one optional; all must match)."""

    states: Sequence[str] = ()
    task: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    experiment: str | None = None
    since: str | None = None
    commit: str | None = None
    limit: int | None = None

    def empty(self) -> bool:
        """Whether no filter is set (every job matches)."""
        return not (
            self.states or self.task or self.tags or self.experiment or self.since or self.commit
        )


def _commit_jobs(db: IndexDB, rev: str) -> set[str]:
    """Jobs whose latest attempt ran code at ``rev`` or at a commit rewritten into it (git
    hooks' records)."""
    commits: set[str] = set()
    try:
        from ..git import commits_for, repo_root

        repo = repo_root(Path.cwd())
        if repo is not None:
            commits = commits_for(repo, rev)
    except Exception:  # noqa: BLE001 - no git, no repository: match the prefix alone
        commits = set()
    from ..index import jobs_at_commits

    return jobs_at_commits(db, rev, commits)


def select_jobs(
    workdir: str | os.PathLike[str],
    filters: JobFilter,
    *,
    reconcile: bool = True,
    differing: bool = False,
) -> list[dict[str, Any]]:
    """The jobs of ``workdir``'s index matching ``filters``, most recent first, reconciled.

    Each job is a dict of the ``jobs`` columns plus ``experiment``, ``tags`` (a dict),
    ``results`` (latest value of each result) and, with ``differing``, ``also`` (the
    parameters that differ among the listed jobs of its task with the same tags: what
    `xpm jobs list`'s table shows, not read for every redraw of ``--watch``).  Jobs the
    index says are active are compared with their directories and their launcher first,
    and corrections are written back.
    A workdir without an index has no jobs.
    """
    from ..index import index_path, list_jobs, open_index

    workdir = Path(workdir).absolute()
    if not index_path(workdir).exists():
        return []
    since = parse_since(filters.since) if filters.since else None
    wanted = sorted({s.upper() for s in filters.states})
    query: dict[str, Any] = {
        "task": filters.task,
        "tags": dict(filters.tags),
        "experiment": filters.experiment,
        "since": since,
        "reconcile_active": reconcile,
    }
    # A --commit filter is applied after the query: the limit must wait for it.
    limit = None if filters.commit else filters.limit
    with open_index(workdir) as db:
        if wanted and reconcile and not set(wanted) >= set(ACTIVE_STATES):
            # Active rows may be stale (a detached job that ended, a queued job now
            # running): read them (few) to reconcile them, and the wanted states with
            # the limit in SQL, then merge.
            active = list_jobs(db, state=list(ACTIVE_STATES), **query)
            rest = list_jobs(db, state=wanted, limit=limit, **query)
            merged = {j["id"]: j for j in rest}
            merged.update({j["id"]: j for j in active})
            jobs = sorted(merged.values(), key=_recency)
        else:
            jobs = list_jobs(db, state=wanted or None, limit=limit, **query)
        if filters.commit:
            keep = _commit_jobs(db, filters.commit)
            jobs = [j for j in jobs if j["id"] in keep]
        if reconcile:
            reconcile_launchers(db, jobs)
        if wanted:
            jobs = [j for j in jobs if j["state"] in wanted]
        jobs = jobs[: filters.limit]
        attach_results(db, jobs)
        if differing:
            attach_differing(db, jobs)
    return jobs


def attach_differing(db: IndexDB, jobs: list[dict[str, Any]]) -> None:
    """Set ``job["also"]``: the parameters (not Meta) that differ among the listed jobs of
    its task with the same tags (two `lr=0.1 seed=3` rows of widths 32 and 64 read alike
    in `xpm jobs list`; a trial)."""
    from ..index import tell_apart

    rows = [
        {"id": j["id"], "task_id": j["task_id"], "tags": sorted((j.get("tags") or {}).items())}
        for j in jobs
    ]
    tell_apart(db.conn, rows)
    for job, row in zip(jobs, rows, strict=True):
        job["also"] = dict(row["also"])


def _recency(job: dict[str, Any]) -> tuple[float, str]:
    """Sort key of list_jobs' order: most recent activity first, then identifier."""
    for column in ("end_time", "start_time", "submit_time", "last_submitted"):
        if job.get(column) is not None:
            return (-float(job[column]), job["id"])
    return (0.0, job["id"])


def no_match_hints(workdir: str | os.PathLike[str], filters: JobFilter) -> list[str]:
    """When ``filters`` matched no job: which filter names a task, tag or experiment that the
    index has never seen, with the closest known name (a typo, not an empty workdir)."""
    from ..index import filter_hints, index_path, open_index

    if not index_path(Path(workdir)).exists():
        return [no_index_hint(Path(workdir))]
    with open_index(workdir, readonly=True) as db:
        return filter_hints(db, task=filters.task, tags=filters.tags, experiment=filters.experiment)


def attach_results(db: IndexDB, jobs: list[dict[str, Any]]) -> None:
    """Set ``job["results"]``: the latest value of each result of each job."""
    from ..index import latest_results

    latest = latest_results(db, [j["id"] for j in jobs])
    for job in jobs:
        job["results"] = latest.get(job["id"], {})


# --- naming jobs ------------------------------------------------------------------------------
def find_job(workdir: str | os.PathLike[str], ref: str) -> dict[str, Any]:
    """The job named by ``ref`` (identifier prefix or ``task/prefix``), reconciled.

    Unknown or ambiguous names are a :class:`UsageError` listing the candidates.
    """
    from ..index import find_job as index_find_job
    from ..index import index_path, open_index

    workdir = Path(workdir).absolute()
    if not index_path(workdir).exists():
        raise UsageError(f"no job matches {ref!r}: {no_index_hint(workdir)}")
    with open_index(workdir) as db:
        job = index_find_job(db, ref)
        reconcile_launchers(db, [job])
        attach_results(db, [job])
    return job


def jobs_for(
    workdir: str | os.PathLike[str], refs: Sequence[str], filters: JobFilter
) -> list[dict[str, Any]]:
    """Jobs named by ``refs`` and/or matching ``filters`` (the selection of kill and clean).

    Neither given is a :class:`UsageError`: these commands never act on every job by accident.
    """
    if not refs and filters.empty():
        raise UsageError(
            "name the jobs: give JOB identifiers (prefixes) or filters such as --state, "
            "--task, --tag, --experiment, --since, --commit"
        )
    jobs: dict[str, dict[str, Any]] = {}
    for ref in refs:
        job = find_job(workdir, ref)
        jobs[job["id"]] = job
    if not filters.empty():
        matching = select_jobs(workdir, filters)
        if refs:
            jobs = {k: v for k, v in jobs.items() if k in {j["id"] for j in matching}}
        else:
            jobs = {j["id"]: j for j in matching}
    return list(jobs.values())
