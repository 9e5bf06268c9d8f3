"""Values shown to people, shared by the command line and the web view: durations, result
values, sizes, launcher descriptions."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any


def duration(start: float | None, end: float | None, state: str = "") -> str:
    """``1h02m``, ``3m05s``, ``4.2s``; a running job counts up to now."""
    if start is None:
        return ""
    if end is None:
        if state != "RUNNING":
            return ""
        end = time.time()
    seconds = max(0.0, end - start)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def short_value(value: Any) -> str:
    """A result value for a table cell (floats with 4 significant digits)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def size(n: int) -> str:
    """A size in bytes for people (``1.5 MiB``)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def launcher_text(description: Mapping[str, Any] | None) -> str:
    """A recorded launcher description for people: ``slurm: partition=debug, time=1:00:00``
    (its kind, then the options it records that have a value); empty when there is none."""
    if not description:
        return ""
    pairs: list[tuple[str, Any]] = []
    for key, value in description.items():
        if key == "kind":
            continue
        # Slurm's extra ``options`` dict reads as the options it holds.
        pairs += list(value.items()) if isinstance(value, Mapping) else [(key, value)]
    options = ", ".join(f"{k}={v}" for k, v in pairs if v not in (None, "", [], False))
    kind = str(description.get("kind") or "launcher")
    return f"{kind}: {options}" if options else kind


#: Fields of a history event that its own columns show, or that only tell one process
#: start from another (a boot id and clock ticks).
_EVENT_SHOWN_APART = ("time", "when", "state")
_EVENT_STAMPS = ("start", "pid_start")


def event_text(event: Mapping[str, Any]) -> str:
    """A history event's details as people read them: ``reason=... exit_code=1``, a nested
    record by its parts (``submitter: host=vm pid=12120``, not a Python dict), process
    start stamps left out."""
    parts = []
    for key, value in event.items():
        if key in _EVENT_SHOWN_APART or key in _EVENT_STAMPS:
            continue
        if isinstance(value, Mapping):
            inner = " ".join(f"{k}={v}" for k, v in value.items() if k not in _EVENT_STAMPS)
            parts.append(f"{key}: {inner}")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)
