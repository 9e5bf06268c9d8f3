"""Filter values of a runs table's fixed columns written as the table shows them: a time
(``submitted>2026-12-07``, local time), a duration (``duration>5m``), a commit by the start
of its hash (``commit=ed06848``).  Each was taken as a number or a whole hash before, and
matched nothing.
"""

from __future__ import annotations

import re

#: The operator of a commit given by the start of its hash (``commit=ed06848``).
PREFIX = "^="
_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|m|min|h|d)?$")
_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def _time_filter(text: str, op: str, raw: str) -> tuple[str, float]:
    """``submitted>2026-12-07`` (local time, as the table shows it) or Unix seconds."""
    import datetime

    if op not in ("<", "<=", ">", ">="):
        raise ValueError(
            f"filter {text!r}: compare a time with < <= > >= (e.g. submitted>2026-12-07)"
        )
    try:
        return op, float(raw)
    except ValueError:
        pass
    try:
        return op, datetime.datetime.fromisoformat(raw.replace(" ", "T")).timestamp()
    except ValueError:
        raise ValueError(
            f"filter {text!r}: {raw!r} is not a time; write a date and time as "
            "2026-12-07 or 2026-12-07T14:30 (local time)"
        ) from None


def _duration_filter(text: str, op: str, raw: str) -> tuple[str, float]:
    """``duration>0.2s``, ``duration>5m``, ``duration<2h`` (seconds without a unit)."""
    match = _DURATION.match(raw.strip().lower())
    if op not in ("<", "<=", ">", ">=") or not match:
        raise ValueError(
            f"filter {text!r}: write duration with < <= > >= and seconds, or a number with "
            "s, m, h or d (e.g. duration>5m)"
        )
    return op, float(match.group(1)) * _SECONDS[match.group(2)]


def _commit_filter(text: str, op: str, raw: str) -> tuple[str, str]:
    """``commit=ed06848``: the commits starting so (the table shows 7 characters and, for
    a dirty tree, a star and its state); ``commit~...`` and ``!=`` as written."""
    if op == "=":
        return PREFIX, raw.split("*")[0].strip().lower()
    if op in ("~", "!="):
        return op, raw
    raise ValueError(f"filter {text!r}: match a commit with = (its start), != or ~")


#: The fixed columns whose filter values read as the table shows them.
AS_SHOWN = {
    "submitted": _time_filter,
    "started": _time_filter,
    "duration": _duration_filter,
    "commit": _commit_filter,
}
