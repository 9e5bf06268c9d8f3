"""``jobs.params_digest``: a digest of a job's rows in ``params`` and ``tags``.

The web view keeps the values a chart reads of each job between loads (parameters and
tags of 5,000 jobs cost three passes over the index on every load after a write).  It
may keep them only while they cannot have changed: :func:`~._ingest.write_jobs`, the one
writer of those two tables, sets the digest in the same write as the rows, so a job whose
digest is unchanged has the same parameters and tags.  The digest depends on the rows
only (not on when or how often they were written): a rebuilt index holds the same digests
as the index recorded live.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from collections.abc import Iterable
from typing import Any


def _stored(value: Any) -> Any:
    """``value`` as SQLite gives it back (a bool is an integer, NaN is NULL)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def params_digest(
    params: Iterable[tuple[str, Any, str, Any]], tags: Iterable[tuple[str, Any, str]]
) -> str:
    """The digest of a job's ``params`` rows (path, value, type, meta) and ``tags`` rows
    (key, value, type); the order of the rows does not matter, a later row of the same
    path or key replaces an earlier one (as ``INSERT OR REPLACE`` does)."""
    by_path = {p[0]: [p[0], _stored(p[1]), p[2], p[3]] for p in params}
    by_key = {t[0]: [t[0], _stored(t[1]), t[2]] for t in tags}
    text = json.dumps(
        [[by_path[k] for k in sorted(by_path)], [by_key[k] for k in sorted(by_key)]],
        default=repr,
        separators=(",", ":"),
    )
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def fill_params_digests(conn: sqlite3.Connection, batch: int = 2000) -> None:
    """Set ``params_digest`` of every job with parameters or tags from the rows of the index
    (the migration to schema 7, and the benchmarks that insert rows directly), ``batch``
    jobs at a time: an index of millions of parameters never sits in memory at once."""
    ids = [row[0] for row in conn.execute("SELECT id FROM jobs ORDER BY id")]
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        marks = ",".join("?" * len(chunk))
        params: dict[str, list[tuple[str, Any, str, Any]]] = {}
        for job_id, path, value, kind, meta in conn.execute(
            f"SELECT job_id, path, value, type, meta FROM params WHERE job_id IN ({marks})",
            chunk,
        ):
            params.setdefault(job_id, []).append((path, value, kind, meta))
        tags: dict[str, list[tuple[str, Any, str]]] = {}
        for job_id, key, value, kind in conn.execute(
            f"SELECT job_id, key, value, type FROM tags WHERE job_id IN ({marks})", chunk
        ):
            tags.setdefault(job_id, []).append((key, value, kind))
        # A job without rows in either may have been recorded without its parameters: NULL.
        conn.executemany(
            "UPDATE jobs SET params_digest = ? WHERE id = ?",
            [
                (params_digest(params.get(job_id, ()), tags.get(job_id, ())), job_id)
                for job_id in params.keys() | tags.keys()
            ],
        )
