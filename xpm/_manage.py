"""Managing the jobs of a workdir: select them, reconcile them, kill them, clean them up.

The library behind ``xpm jobs list|kill|clean``: the command line parses its options, calls
one function of this module and renders what it returns.

- :func:`select_jobs`: jobs of the index matching filters (state, task, tags, experiment,
  since, commit), reconciled first with their directories (the index library) and with
  their launcher (one batched query per launcher kind: one ``squeue`` for every Slurm job).
- :func:`kill_jobs`: stop running jobs (SIGTERM to a local job's process group, ``scancel``
  for Slurm) and record them CANCELLED in their directory and in the index.
- :func:`plan_clean` / :func:`clean`: what removing job directories would delete (sizes,
  refusals: running jobs, jobs others depend on) and the removal itself, which never leaves
  ``WORKDIR/jobs`` and never follows a symbolic link.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._jobdir import JobDir
from ._process import process_alive
from ._vocabulary import ACTIVE_STATES, TERMINAL_STATES, jobs_root
from ._workdir import WORKDIR_ENV, locate_workdir
from .errors import UsageError

if TYPE_CHECKING:
    from .index import IndexDB
    from .launchers import LaunchedJob, Launcher

#: States in which a job may still be running somewhere.
#: Seconds a killed local job gets between SIGTERM and SIGKILL.
KILL_GRACE = 5.0


def resolve_workdir(given: str | os.PathLike[str] | None) -> Path:
    """``given``, else ``$XPM_WORKDIR``, else ``xpm-workdir`` at the git root of the current
    directory, else ``./xpm-workdir`` (absolute); the rule of :mod:`xpm._workdir`."""
    return locate_workdir(given)[0]


def existing_workdir(given: str | os.PathLike[str] | None) -> Path:
    """:func:`resolve_workdir`, refusing a directory that does not exist."""
    workdir = resolve_workdir(given)
    if not workdir.is_dir():
        raise UsageError(
            f"no workdir at {workdir}: give --workdir DIR or set {WORKDIR_ENV} "
            "(the directory experiments ran in)"
        )
    return workdir


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
        from .git import commits_for, repo_root

        repo = repo_root(Path.cwd())
        if repo is not None:
            commits = commits_for(repo, rev)
    except Exception:  # noqa: BLE001 - no git, no repository: match the prefix alone
        commits = set()
    commits = {c.lower() for c in commits if c}
    marks = ",".join("?" * len(commits))
    exact = f" OR g.commit_sha IN ({marks}) OR g.snapshot IN ({marks})" if commits else ""
    rows = db.query(
        "SELECT DISTINCT jg.job_id FROM job_git_states jg "
        "JOIN git_states g ON g.id = jg.git_state "
        f"WHERE g.commit_sha LIKE ? OR g.snapshot LIKE ?{exact}",
        [rev.lower() + "%", rev.lower() + "%", *commits, *commits],
    )
    return {r[0] for r in rows}


def select_jobs(
    workdir: str | os.PathLike[str], filters: JobFilter, *, reconcile: bool = True
) -> list[dict[str, Any]]:
    """The jobs of ``workdir``'s index matching ``filters``, most recent first, reconciled.

    Each job is a dict of the ``jobs`` columns plus ``experiment``, ``tags`` (a dict) and
    ``results`` (latest value of each result).  Jobs the index says are active are compared
    with their directories and their launcher first, and corrections are written back.
    A workdir without an index has no jobs.
    """
    from .index import index_path, list_jobs, open_index

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
    return jobs


def _recency(job: dict[str, Any]) -> tuple[float, str]:
    """Sort key of list_jobs' order: most recent activity first, then identifier."""
    for column in ("end_time", "start_time", "submit_time", "last_submitted"):
        if job.get(column) is not None:
            return (-float(job[column]), job["id"])
    return (0.0, job["id"])


def no_index_hint(workdir: Path) -> str:
    """Why a workdir without ``xpm.db`` shows nothing, and what to do."""
    jobs = jobs_root(workdir)
    with contextlib.suppress(OSError):
        if jobs.is_dir() and any(jobs.iterdir()):
            # Deleted, or copied without it: the job directories are the record.
            return f"no index in {workdir}, but it has job directories: run `xpm index rebuild`"
    return f"no index in {workdir}: no experiment has run there yet"


def no_match_hints(workdir: str | os.PathLike[str], filters: JobFilter) -> list[str]:
    """When ``filters`` matched no job: which filter names a task, tag or experiment that the
    index has never seen, with the closest known name (a typo, not an empty workdir)."""
    from .index import filter_hints, index_path, open_index

    if not index_path(Path(workdir)).exists():
        return [no_index_hint(Path(workdir))]
    with open_index(workdir, readonly=True) as db:
        return filter_hints(db, task=filters.task, tags=filters.tags, experiment=filters.experiment)


def attach_results(db: IndexDB, jobs: list[dict[str, Any]]) -> None:
    """Set ``job["results"]``: the latest value of each result of each job."""
    from .index import rows_for_jobs

    by_id = {j["id"]: j for j in jobs}
    for job in jobs:
        job["results"] = {}
    # SQLite takes the bare columns of a MAX() aggregate from the row holding the max.
    sql = (
        "SELECT job_id, key, value, MAX(seq) FROM results WHERE job_id IN ({ids}) "
        "GROUP BY job_id, key ORDER BY job_id, key"
    )
    for job_id, key, value, _seq in rows_for_jobs(db, sql, list(by_id)):
        by_id[job_id]["results"][key] = value


def _caught_signal(job: dict[str, Any]) -> bool:
    """Whether the job recorded its own end on a signal (``xpm.run``'s SIGTERM handler):
    Slurm may know better why (a TIMEOUT, a PREEMPTED...), see ``backend_decides``."""
    return job["state"] == "CANCELLED" and str(job.get("reason") or "").startswith("terminated by")


def reconcile_launchers(db: IndexDB, jobs: list[dict[str, Any]]) -> None:
    """Ask each launcher about the active jobs in ``jobs`` (one batched query per kind).

    A Slurm job that Slurm reports ended (or no longer knows) without an outcome in its
    directory is recorded as Slurm says (FAILED with ``slurm: TIMEOUT``...), in the job
    directory (marker and event, by :meth:`JobDir.settle`, the scheduler's rule) then in
    the index.  Jobs are
    updated in place.  When the launcher cannot be asked (no ``squeue``), they are left as
    they are and a warning is printed.
    """
    slurm = [
        j
        for j in jobs
        if (j["state"] in ACTIVE_STATES or _caught_signal(j))
        and j.get("launcher") == "slurm"
        and j.get("launcher_job_id")
    ]
    if not slurm:
        return
    import sys

    from .errors import LauncherError
    from .launchers import LaunchedJob, backend_decides

    launched = {
        j["id"]: LaunchedJob(JobDir(db.workdir, j["task_id"], j["id"]), str(j["launcher_job_id"]))
        for j in slurm
    }
    outcomes: dict[str, Any] = {}
    try:
        for launcher, group in _by_recorded_launcher(list(launched.values()), "slurm"):
            outcomes.update(launcher.poll(group))
    except LauncherError as e:
        print(f"xpm: cannot ask Slurm about {len(slurm)} active job(s): {e}", file=sys.stderr)
        return
    fixed = []
    for job in slurm:
        one = launched[job["id"]]
        outcome = outcomes.get(one.launcher_job_id)
        if outcome is not None and outcome.state not in TERMINAL_STATES:
            job["state"] = outcome.state  # shown, not written: the job directory is the truth
            continue
        jobdir = one.jobdir
        status = jobdir.read_status()
        marker = jobdir.read_marker(jobdir.failed_marker)
        if (status.state in ACTIVE_STATES and marker is None) or backend_decides(outcome, marker):
            jobdir.settle(outcome, "Slurm no longer knows it")
        fixed.append(job)
    _refresh_rows(db, fixed)


def _by_recorded_launcher(
    launched: list[LaunchedJob], kind: str
) -> list[tuple[Launcher, list[LaunchedJob]]]:
    """``launched`` grouped by the launcher their last attempt recorded (its ``describe()``),
    each group with that launcher rebuilt: a configured ``binpath`` is honoured."""
    from .launchers import description_key, launcher_from_description

    groups: dict[str, tuple[Launcher, list[LaunchedJob]]] = {}
    for one in launched:
        attempts = one.jobdir.read_status().attempts
        described = attempts[-1].get("launcher_description") if attempts else None
        key = description_key(described, kind)
        if key not in groups:
            groups[key] = (launcher_from_description(described, kind), [])
        groups[key][1].append(one)
    return list(groups.values())


def _refresh_rows(db: IndexDB, jobs: Sequence[dict[str, Any]]) -> None:
    """Rewrite the index rows of ``jobs`` from their directories and update the dicts."""
    if not jobs:
        return
    from .index import read_job, write_jobs

    rows = []
    for job in jobs:
        jobdir = JobDir(db.workdir, job["task_id"], job["id"])
        if jobdir.path.is_dir():
            fresh = read_job(jobdir, full=False)
            rows.append(fresh)
            job.update(fresh.job)
    if rows and not db.readonly:
        db.write(lambda conn: write_jobs(conn, rows))


# --- naming jobs ------------------------------------------------------------------------------
def find_job(workdir: str | os.PathLike[str], ref: str) -> dict[str, Any]:
    """The job named by ``ref`` (identifier prefix or ``task/prefix``), reconciled.

    Unknown or ambiguous names are a :class:`UsageError` listing the candidates.
    """
    from .index import find_job as index_find_job
    from .index import index_path, open_index

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


# --- kill -------------------------------------------------------------------------------------
@dataclass
class KillResult:
    """What :func:`kill_jobs` did for one job: ``action`` is ``cancelled`` or ``skipped``."""

    job: dict[str, Any]
    action: str
    detail: str


def _stop_local(pid: int, grace: float) -> str:
    """SIGTERM the process group of ``pid``, SIGKILL after ``grace`` seconds."""
    import signal  # lazy: `xpm jobs list` never needs it

    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "its process was already gone"
    except PermissionError:
        raise UsageError(
            f"not allowed to signal process group {pid}: the job belongs to another user"
        ) from None
    deadline = time.monotonic() + grace
    while process_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if process_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        return f"sent SIGTERM then SIGKILL to process group {pid}"
    return f"sent SIGTERM to process group {pid}"


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our own child (tests launch jobs from this process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def kill_jobs(
    workdir: str | os.PathLike[str], jobs: Sequence[dict[str, Any]], *, grace: float = KILL_GRACE
) -> list[KillResult]:
    """Stop the active jobs among ``jobs`` and record them CANCELLED.

    Local jobs get SIGTERM on their process group (the pid comes from the job's status;
    SIGKILL after ``grace`` seconds); Slurm jobs are cancelled with one ``scancel``.  Each
    cancelled job gets a ``cancelled`` marker and event in its directory, then its index
    row is rewritten.  Jobs already ended are skipped; a local job running on another host
    is a :class:`UsageError` (kill it from there).
    """
    from .index import open_index

    workdir = Path(workdir).absolute()
    import socket

    host = socket.gethostname()
    results: list[KillResult] = []
    local: list[tuple[dict[str, Any], JobDir, int]] = []
    slurm: list[tuple[dict[str, Any], JobDir, str]] = []
    for job in jobs:
        jobdir = JobDir(workdir, job["task_id"], job["id"])
        status = jobdir.read_status()
        if status.terminal or status.state not in ACTIVE_STATES:
            results.append(KillResult(job, "skipped", f"not running ({status.state})"))
            continue
        if status.launcher == "slurm":
            if not status.launcher_job_id:
                results.append(KillResult(job, "skipped", "no Slurm job id recorded yet"))
                continue
            slurm.append((job, jobdir, status.launcher_job_id))
            continue
        pid = status.pid or (int(status.launcher_job_id) if status.launcher_job_id else None)
        if status.host and status.host != host:
            raise UsageError(
                f"job {job['task_id']}/{job['id'][:12]} runs on host {status.host}, not "
                f"{host}: run `xpm jobs kill` there"
            )
        if pid is None:
            results.append(KillResult(job, "skipped", "no process id recorded yet"))
            continue
        if not jobdir.running_lock_held():
            # No job process holds running.lock: the recorded pid may belong to an
            # unrelated process by now (after a reboot or a SIGKILL); never signal it.
            results.append(KillResult(job, "skipped", "its job process is gone"))
            continue
        local.append((job, jobdir, int(pid)))
    cancelled: list[tuple[dict[str, Any], JobDir, str]] = []
    for job, jobdir, pid in local:
        cancelled.append((job, jobdir, _stop_local(pid, grace)))
    if slurm:
        from .launchers import LaunchedJob

        ones = [LaunchedJob(jd, jid) for _, jd, jid in slurm]
        for launcher, group in _by_recorded_launcher(ones, "slurm"):
            launcher.cancel(group)
        cancelled += [(job, jd, f"scancel {jid}") for job, jd, jid in slurm]
    for job, jobdir, detail in cancelled:
        reason = "cancelled by `xpm jobs kill`"
        jobdir.end("CANCELLED", reason)
        results.append(KillResult(job, "cancelled", detail))
    if cancelled:
        with open_index(workdir) as db:
            _refresh_rows(db, [job for job, _, _ in cancelled])
    return results


# --- clean ------------------------------------------------------------------------------------
@dataclass
class CleanItem:
    """One job :func:`plan_clean` considered: its directory, size, and why it is kept."""

    job: dict[str, Any]
    path: Path
    size: int
    refused: str | None = None  # why it is not removed (None: it is)


def _walk_size(path: Path) -> int:
    """Bytes under ``path`` without following symbolic links (a link counts as itself)."""
    total = 0
    for root, dirs, files in os.walk(path, followlinks=False):
        for name in [*files, *dirs]:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if not os.path.isdir(os.path.join(root, name)) or os.path.islink(
                os.path.join(root, name)
            ):
                total += st.st_size
    return total


def safe_job_path(workdir: Path, task_id: str, identifier: str) -> Path:
    """The job directory, checked to be a real directory inside ``WORKDIR/jobs``.

    Refuses names with separators or ``..``, and symbolic links on the way (the task
    folder or the job directory itself): removing through them could leave the workdir.
    """
    for name in (task_id, identifier):
        if not name or name in (".", "..") or "/" in name or os.sep in name or "\0" in name:
            raise UsageError(f"refusing to touch job {task_id}/{identifier}: not a plain name")
    jobs_dir = jobs_root(workdir)
    path = JobDir(workdir, task_id, identifier).path
    for p in (jobs_dir, path.parent, path):
        if p.is_symlink():
            raise UsageError(
                f"refusing to remove {path}: {p} is a symbolic link (xpm only deletes real "
                f"directories inside {jobs_dir})"
            )
    real_root = os.path.realpath(jobs_dir)
    if os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
        raise UsageError(f"refusing to remove {path}: it is not inside {jobs_dir}")
    return path


def _dependents(db: IndexDB, doomed: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """For each job in ``doomed``: the jobs (``task/id12``) whose parameters use it."""
    if not doomed:
        return {}
    task_ids = sorted({j["task_id"] for j in doomed})
    paths = sorted({f"jobs/{j['task_id']}/{j['id']}/%" for j in doomed})
    conds = [f"(type = 'config' AND value IN ({','.join('?' * len(task_ids))}))"]
    conds += ["(type = 'path' AND value LIKE ?)"] * len(paths)
    candidates = db.query(
        "SELECT DISTINCT p.job_id, j.task_id FROM params p JOIN jobs j ON j.id = p.job_id "
        f"WHERE {' OR '.join(conds)}",
        [*task_ids, *paths],
    )
    out: dict[str, list[str]] = {}
    doomed_ids = {j["id"] for j in doomed}
    for job_id, task_id in candidates:
        if job_id in doomed_ids:
            continue
        try:
            text = JobDir(db.workdir, task_id, job_id).params.read_text(encoding="utf-8")
        except OSError:
            continue
        for job in doomed:
            if job["id"] in text:
                out.setdefault(job["id"], []).append(f"{task_id}/{job_id[:12]}")
    return out


def plan_clean(
    workdir: str | os.PathLike[str], jobs: Sequence[dict[str, Any]], *, force: bool = False
) -> list[CleanItem]:
    """What :func:`clean` would do with ``jobs``: paths, sizes and refusals.

    Refused without ``force``: a job that is submitted or running, and a job that another
    job (not removed with it) depends on.  A directory that is not a real directory inside
    ``WORKDIR/jobs`` is always refused.
    """
    from .index import open_index

    workdir = Path(workdir).absolute()
    with open_index(workdir) as db:
        dependents = _dependents(db, jobs)
    items = []
    for job in jobs:
        try:
            path = safe_job_path(workdir, job["task_id"], job["id"])
        except UsageError as e:
            items.append(CleanItem(job, JobDir(workdir, job["task_id"], job["id"]).path, 0, str(e)))
            continue
        item = CleanItem(job, path, _walk_size(path) if path.is_dir() else 0)
        if not force and job["state"] in ACTIVE_STATES:
            item.refused = f"{job['state'].lower()}: kill it first (`xpm jobs kill`) or --force"
        elif not force and job["id"] in dependents:
            users = dependents[job["id"]]
            more = f" and {len(users) - 3} more" if len(users) > 3 else ""
            item.refused = f"used by {', '.join(users[:3])}{more}: remove those too, or --force"
        items.append(item)
    return items


def _remove_tree(path: Path) -> None:
    """Delete ``path`` bottom-up without following symbolic links (links are unlinked)."""
    for root, dirs, files in os.walk(path, topdown=False, followlinks=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            p = os.path.join(root, name)
            if os.path.islink(p):
                os.unlink(p)
            else:
                os.rmdir(p)
    os.rmdir(path)


def clean(workdir: str | os.PathLike[str], items: Sequence[CleanItem]) -> list[CleanItem]:
    """Remove the directories of the items :func:`plan_clean` accepted, then their rows.

    Rows of ``jobs``, ``params``, ``tags`` and ``results`` go; ``submissions`` stay (they
    come from the experiment-run records, so a rebuilt index has them too).  Returns the
    items removed.
    """
    from .index import open_index

    workdir = Path(workdir).absolute()
    removed = []
    for item in items:
        if item.refused is not None:
            continue
        path = safe_job_path(workdir, item.job["task_id"], item.job["id"])  # check again
        if path.is_dir():
            _remove_tree(path)
        task_dir = path.parent
        if task_dir.is_dir() and not task_dir.is_symlink() and not any(task_dir.iterdir()):
            task_dir.rmdir()
        removed.append(item)
    if removed:
        ids = [i.job["id"] for i in removed]

        from .index import forget_jobs

        def delete(conn: Any) -> None:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                conn.execute(f"DELETE FROM jobs WHERE id IN ({marks})", chunk)
                for table in ("params", "tags", "results"):
                    conn.execute(f"DELETE FROM {table} WHERE job_id IN ({marks})", chunk)
            forget_jobs(conn, ids)

        with open_index(workdir) as db:
            db.write(delete)
    return removed


__all__ = [
    "CleanItem",
    "JobFilter",
    "KillResult",
    "attach_results",
    "clean",
    "existing_workdir",
    "find_job",
    "jobs_for",
    "kill_jobs",
    "parse_since",
    "parse_tags",
    "plan_clean",
    "reconcile_launchers",
    "resolve_workdir",
    "safe_job_path",
    "select_jobs",
]
