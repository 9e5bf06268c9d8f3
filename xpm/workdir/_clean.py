"""Removing job directories: what removing them would delete (sizes, refusals: running
jobs, jobs others depend on) and the removal itself, which never leaves ``WORKDIR/jobs``
and never follows a symbolic link.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._jobdir import JobDir
from .._vocabulary import ACTIVE_STATES, jobs_root
from ..errors import UsageError

if TYPE_CHECKING:
    from ..index import IndexDB


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
    from ..index import jobs_with_params_like

    task_ids = sorted({j["task_id"] for j in doomed})
    paths = sorted({f"jobs/{j['task_id']}/{j['id']}/%" for j in doomed})
    candidates = jobs_with_params_like(db, task_ids, paths)
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
    from ..index import open_index

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
    from ..index import open_index

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
        from ..index import delete_job_rows

        with open_index(workdir) as db:
            delete_job_rows(db, [i.job["id"] for i in removed])
    return removed
