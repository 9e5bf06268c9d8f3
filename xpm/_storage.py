"""Full and read-only file systems: what is full, where jobs were left, what to do next.

A full disk or a read-only mount is not a bug of xpm nor a mistake in the input: it ends a
command with :class:`~xpm.errors.StorageError` (exit 3) and a message naming the file system,
how much is free and, for an experiment, where its jobs are.  Job directories are written
atomically, so the next run, once space is free, finds every finished job and resumes the
others.
"""

from __future__ import annotations

import errno
import os
import shlex
from collections.abc import Iterable
from pathlib import Path

from .errors import StorageError

#: The errors of a file system that refuses writes.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def first_storage_error(error: BaseException) -> OSError | None:
    """The earliest full or read-only file system error in the chain of ``error`` (the
    write that failed first: cleaning up after it often fails the same way), or None."""
    found: OSError | None = None
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in STORAGE_ERRNOS:
            found = current
        current = current.__cause__ or current.__context__
    return found


def mount_entry(path: Path) -> tuple[Path, str | None]:
    """The mount point holding ``path`` and its file system type, from /proc/mounts (the
    longest matching mount: ``os.path.ismount`` misses bind mounts of a directory)."""
    target = str(path.absolute())
    best, best_type = "", None
    try:
        mounts = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        mounts = []
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1].replace("\\040", " ")
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, best_type = mount, parts[2]
    return Path(best or "/"), best_type


def _free(path: Path) -> str:
    try:
        st = os.statvfs(path)
    except OSError:
        return "unknown"
    free = float(st.f_bavail * st.f_frsize)
    unit = "bytes"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if free < 1024:
            break
        free, unit = free / 1024, bigger
    return f"{free:.0f} bytes" if unit == "bytes" else f"{free:.1f} {unit}"


def storage_error(
    first: OSError,
    where: Path,
    *,
    experiment: str | None = None,
    job_states: Iterable[str] = (),
) -> StorageError:
    """The :class:`StorageError` for ``first`` (see :func:`first_storage_error`) met while
    writing under ``where`` (a workdir); with ``experiment``, says where its jobs were left."""
    target = Path(first.filename) if isinstance(first.filename, str) else where
    mount = mount_entry(target)[0]
    if first.errno == errno.EROFS:
        what = f"the file system at {mount} is read-only"
        fix = "remount it read-write or use another workdir"
    else:
        kind = "quota" if first.errno == errno.EDQUOT else "no space left"
        what = f"{kind} on the file system at {mount} ({_free(mount)} free)"
        fix = "free space"
    writing = f" writing {first.filename}" if first.filename else ""
    message = f"{what}{writing}"
    if experiment is None:
        return StorageError(f"{message}; {fix}, then run the command again")
    states = list(job_states)
    if not states:
        return StorageError(
            f"{message}; no job of this run was started; {fix}, then run the same command again"
        )
    done = sum(1 for s in states if s == "DONE")
    command = (
        f"xpm jobs list --workdir {shlex.quote(str(where))} --experiment {shlex.quote(experiment)}"
    )
    return StorageError(
        f"{message}; this run's {len(states)} job(s) are in {where / 'jobs'} ({done} done, "
        f"{len(states) - done} not finished: `{command}`); {fix}, then run the same command "
        "again: done jobs are kept, the others resume"
    )
