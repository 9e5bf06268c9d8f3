"""Processes of this host, probed safely against pid reuse.

Whether a process still runs (``/proc``: its start time, with the boot id, tells it from a
later process given the same pid), and who the calling process is, as the job directory
and the run record record it (``{"host", "pid", "start"}``).  Standard library only: the
job process imports it.
"""

from __future__ import annotations

import os
from typing import Any


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_BOOT_ID: list[str] = []


def process_start(pid: int) -> str | None:
    """When process ``pid`` started, as ``BOOT_ID:TICKS`` (None: no such process, a zombie,
    or no ``/proc``).  Recorded with a pid, it tells that process from a later one given
    the same pid, after a reboot too."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # After the name (which may hold spaces and parentheses): the state, then field 4...
    fields = stat.rsplit(b")", 1)[1].split()
    if fields[0] in (b"Z", b"X"):
        return None  # ended; a zombie only waits for a parent that may never reap it
    if not _BOOT_ID:
        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
                _BOOT_ID.append(fh.read().strip())
        except OSError:
            _BOOT_ID.append("")
    return f"{_BOOT_ID[0]}:{fields[19].decode()}"  # field 22: start, in ticks since boot


def process_gone(pid: int, start: str | None) -> bool:
    """Whether process ``pid`` of this host, which started at ``start`` (see
    :func:`process_start`; None: unknown), no longer runs."""
    if not os.path.exists("/proc/self/stat"):
        return not process_alive(pid)
    now = process_start(pid)
    return now is None or (start is not None and now != start)


_THIS_PROCESS: dict[str, Any] = {}


def this_process() -> dict[str, Any]:
    """``{"host", "pid", "start"}`` of the calling process (recorded by what it launches)."""
    if _THIS_PROCESS.get("pid") != os.getpid():  # computed again in a forked child
        import socket

        pid = os.getpid()
        _THIS_PROCESS.update(host=socket.gethostname(), pid=pid, start=process_start(pid))
    return dict(_THIS_PROCESS)
