"""Rows of an index written by hand for the web view's tests (the values chosen), with
test_index_webview's ``build``: jobs submitted by the run ``e/r1`` of experiment ``e``."""

from __future__ import annotations

from typing import Any

from test_index_webview import _JOB_COLUMNS


def insert(
    c: Any,
    rows: list[tuple[Any, ...]],
    params: list[tuple[Any, ...]],
    tags: list[tuple[Any, ...]],
    results: list[tuple[Any, ...]],
) -> None:
    """Insert ``rows`` (``job_row``'s) as jobs submitted by ``e/r1``, then their
    ``params`` (job, path, value, type, meta), ``tags`` (job, key, value, type) and
    ``results`` (job, seq, key, value, type, step, time)."""
    c.executemany(f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 18)})", rows)
    c.executemany("INSERT INTO submissions VALUES ('e/r1', ?, ?)", [(r[0], r[6]) for r in rows])
    c.executemany(
        "INSERT INTO params (job_id, path, value, type, meta) VALUES (?, ?, ?, ?, ?)", params
    )
    c.executemany("INSERT INTO tags VALUES (?, ?, ?, ?)", tags)
    c.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?)", results)
