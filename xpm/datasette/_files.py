"""Reading a job's files for the web pages, with the path check.

Only files inside the job's own directory under ``WORKDIR/jobs`` are read: the job path
must have the form ``jobs/<task id>/<identifier>`` (as the index stores it), and the
file, after resolving symbolic links, must still be inside that job directory, which
itself must resolve inside ``WORKDIR/jobs``.  Anything else reads as ``None``.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from .. import _vocabulary as _layout
from .._jobdir import JobDir

#: Most lines a tail returns, and most bytes read from the end of a file.
MAX_LINES = 1000
MAX_BYTES = 256 * 1024

_PART = re.compile(r"^[A-Za-z0-9_.\-]+$")


def job_dir(workdir: Path, job_path: str | None) -> JobDir | None:
    """The :class:`JobDir` of ``job_path`` (``jobs/<task>/<id>``), or None when it is not safe."""
    if not job_path or not isinstance(job_path, str):
        return None
    parts = job_path.split("/")
    if len(parts) != 3 or parts[0] != _layout.JOBS:
        return None
    task, identifier = parts[1], parts[2]
    if not all(_PART.match(p) and p not in (".", "..") for p in (task, identifier)):
        return None
    jobdir = JobDir(Path(workdir), task, identifier)
    try:
        jobs_root = _layout.jobs_root(workdir).resolve(strict=True)
        real = jobdir.path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if real != jobs_root / task / identifier:
        return None  # the job directory (or its task directory) is a link elsewhere
    return jobdir


def safe_file(jobdir: JobDir, path: Path) -> Path | None:
    """``path`` when it resolves to a regular file inside ``jobdir``; else None."""
    try:
        real = path.resolve(strict=True)
        base = jobdir.path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if base not in real.parents or not real.is_file():
        return None
    return real


def tail_text(path: Path, lines: int) -> str:
    """The last ``lines`` lines of the file at ``path`` (at most :data:`MAX_BYTES` read)."""
    lines = max(0, min(int(lines), MAX_LINES))
    if lines == 0:
        return ""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        start = max(0, size - MAX_BYTES)
        fh.seek(start)
        data = fh.read()
    text = data.decode("utf-8", errors="replace")
    chunks = text.splitlines()
    if start > 0 and chunks:
        chunks = chunks[1:]  # the first line was cut by the byte limit
    return "\n".join(chunks[-lines:])


def log_tail(
    workdir: Path, job_path: str | None, stream: str = "stderr", lines: int = 20
) -> str | None:
    """Tail of the job's current ``stream`` log ('stdout' or 'stderr'), or None.

    None when the path is not a job directory of ``workdir``, the stream is unknown, the
    log does not exist, or it resolves outside the job directory.
    """
    if stream not in ("stdout", "stderr"):
        return None
    jobdir = job_dir(workdir, job_path)
    if jobdir is None:
        return None
    path = safe_file(jobdir, jobdir.log(stream))
    if path is None:
        return None
    try:
        return tail_text(path, lines)
    except OSError:
        return None


# --- artifacts: listing and reading any file of a job directory ----------------------------------
#: Most entries a listing returns.
MAX_FILES = 5000
#: Bytes of a log page.
LOG_PAGE = 64 * 1024
_NOFOLLOW = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def list_files(jobdir: JobDir) -> tuple[list[dict[str, Any]], bool]:
    """Every entry under ``jobdir`` (relative ``path``, ``size``, ``kind``, ``mtime``), sorted.

    Symbolic links are listed as ``link`` and never followed (a link to a directory is
    not entered); ``kind`` is ``file``, ``dir``, ``link`` or ``other``.  The flag says the
    listing stopped at :data:`MAX_FILES` entries.
    """
    out: list[dict[str, Any]] = []
    pending = [("", str(jobdir.path))]
    while pending and len(out) < MAX_FILES:
        prefix, directory = pending.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            rel = prefix + entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.is_symlink():
                kind = "link"
            elif entry.is_dir(follow_symlinks=False):
                kind = "dir"
                pending.append((rel + "/", entry.path))
            elif entry.is_file(follow_symlinks=False):
                kind = "file"
            else:
                kind = "other"
            out.append({"path": rel, "size": st.st_size, "kind": kind, "mtime": st.st_mtime})
    out.sort(key=lambda e: e["path"].split("/"))
    return out[:MAX_FILES], len(out) >= MAX_FILES or bool(pending)


def open_file(jobdir: JobDir, relative: str) -> int | None:
    """A read-only descriptor of the regular file ``relative`` inside ``jobdir``, or None.

    Each component is opened relative to the previous one with ``O_NOFOLLOW``: no
    symbolic link is followed (not even one swapped in while we look), no ``..`` or
    absolute path is accepted, and anything but a regular file (a directory, a fifo)
    gives None.
    """
    parts = relative.split("/")
    if not relative or any(p in ("", ".", "..") or "\0" in p for p in parts):
        return None
    try:
        fd = os.open(jobdir.path, _NOFOLLOW | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = _NOFOLLOW | (0 if last else os.O_DIRECTORY) | os.O_NONBLOCK
            nxt = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        os.set_blocking(fd, True)
        return fd
    except OSError:
        os.close(fd)
        return None


def read_page(fd: int, page: int, size: int = LOG_PAGE) -> tuple[str, int]:
    """Page ``page`` (0 first) of the text file open at ``fd``, and the number of pages.

    Page k holds the lines that start within bytes ``[k*size, (k+1)*size)``, whole.
    """
    total = os.fstat(fd).st_size
    pages = max(1, -(-total // size))
    page = min(max(0, page), pages - 1)
    start, end = page * size, (page + 1) * size
    with os.fdopen(os.dup(fd), "rb") as fh:
        if start > 0:
            fh.seek(start - 1)
            if fh.read(1) != b"\n":
                fh.readline()  # the line begun on the previous page belongs to it
        data = b""
        if fh.tell() < end:
            data = fh.read(end - fh.tell())
            if data and not data.endswith(b"\n"):
                data += fh.readline()  # finish the last line
    return data.decode("utf-8", errors="replace"), pages
