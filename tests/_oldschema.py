"""Index files as an older xpm wrote them, for the tests of migrations."""

from __future__ import annotations

import sqlite3


def drop_digests(conn: sqlite3.Connection) -> None:
    """Back to before schema 7: no ``jobs.params_digest``, and none of what came after it
    (the triggers counting writes, schemas 8 and 9, their counts and the file's name in
    ``meta``; the log of writes, schema 10)."""
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' "
        "AND (name LIKE 'count_%' OR name LIKE 'log_%')"
    ).fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    conn.execute("DROP TABLE IF EXISTS job_writes")
    conn.execute("DELETE FROM meta WHERE key IN ('jobs_writes', 'settings_writes', 'index_id')")
    conn.execute("ALTER TABLE jobs DROP COLUMN params_digest")
