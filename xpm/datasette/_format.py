"""How the plugin's pages print values: times with their zone, short numbers, durations.

One place, so every page shows a time the same way (the server's local time, its zone
named) and a float with a readable number of digits (the full value in a tooltip).
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

from datasette.utils import tilde_encode

from .._humanize import duration as _duration
from .._humanize import short_value, size
from .._vocabulary import shown_state


def when(value: Any) -> str:
    """A Unix time as local date and time with the zone (``2026-12-05 09:14:03 CET``)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(value))


def when_short(value: Any, now: float | None = None) -> str:
    """A Unix time in local time for table cells whose header names the zone: to the
    second within the current year, without it (``12-07 02:58:31``: a sweep submitted
    within a minute reads in order), else date and minute (``2025-11-30 14:02``)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        return ""
    local = time.localtime(value)
    if local.tm_year == time.localtime(now).tm_year:
        return time.strftime("%m-%d %H:%M:%S", local)
    return time.strftime("%Y-%m-%d %H:%M", local)


_DEPENDENCY = re.compile(r"dependency failed \(([^/()]+)/([0-9a-f]{8,64})\)")


def dependency(reason: str) -> tuple[str, str] | None:
    """(task, id prefix) of the job whose failure ``reason`` names ("dependency failed
    (tasks.learn/409fb627f92d)", what the scheduler writes), None for another reason."""
    found = _DEPENDENCY.fullmatch(reason.strip())
    return (found.group(1), found.group(2)) if found else None


def zone() -> str:
    """Name of the zone :func:`when` prints times in."""
    return time.strftime("%Z", time.localtime())


def number(value: Any) -> str:
    """A value for a table cell: floats with 4 significant digits, NULL as nothing."""
    return "" if value is None else short_value(value)


def duration(start: Any, end: Any, state: str = "") -> str:
    """How long a job ran (a running one: so far); nothing when it did not start."""
    if not isinstance(start, (int, float)) or (
        end is not None and not isinstance(end, (int, float))
    ):
        return ""
    return _duration(start, end, state)


#: What templates get, as filters named ``xpm_<name>``.
FILTERS = {
    "when": when,
    "when_short": when_short,
    "dependency": dependency,
    "number": number,
    "size": size,
    "tilde": tilde_encode,  # a name as one part of a Datasette URL
    "state": shown_state,  # WAITING for a job not started, as the command line says
}
