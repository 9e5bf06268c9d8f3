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
    shown = _unquoted(raw).replace(" ", "T")
    if re.match(r"^\d\d-\d\d(T|$)", shown):  # this year's, as the table shows it: 12-07 14:30
        shown = f"{datetime.date.today().year}-{shown}"
    try:
        return op, datetime.datetime.fromisoformat(shown).timestamp()
    except ValueError:
        raise ValueError(
            f"filter {text!r}: {raw!r} is not a time; write a date and time as "
            "2026-12-07, 2026-12-07T14:30 or, this year, 12-07T14:30 (local time)"
        ) from None


def _unquoted(raw: str) -> str:
    raw = raw.strip()
    return raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"" else raw


def seconds_of(raw: str) -> float | None:
    """``0.2s``, ``5m``, ``2h``, ``1d`` or a number of seconds, in seconds; None otherwise
    (the runs tables' and ``xpm results --where``'s durations)."""
    match = _DURATION.match(raw.strip().lower())
    return float(match.group(1)) * _SECONDS[match.group(2)] if match else None


def _duration_filter(text: str, op: str, raw: str) -> tuple[str, float]:
    """``duration>0.2s``, ``duration>5m``, ``duration<2h`` (seconds without a unit)."""
    seconds = seconds_of(raw)
    if op not in ("<", "<=", ">", ">=") or seconds is None:
        raise ValueError(
            f"filter {text!r}: write duration with < <= > >= and seconds, or a number with "
            "s, m, h or d (e.g. duration>5m)"
        )
    return op, seconds


def _commit_filter(text: str, op: str, raw: str) -> tuple[str, str]:
    """``commit=ed06848``: the commits starting so (the table shows 7 characters and, for
    a dirty tree, a star and its state); ``commit~...`` and ``!=`` as written."""
    if op == "=":
        start = _unquoted(raw).split("*")[0].strip().lower()
        if not re.fullmatch(r"[0-9a-f]{4,40}", start):
            # A branch name or a typo matched nothing, without a word.
            raise ValueError(
                f"filter {text!r}: write the start of the commit's hash (4 to 40 hex digits, "
                "as the commit column shows it), or commit~TEXT"
            )
        return PREFIX, start
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
