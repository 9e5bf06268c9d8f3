"""Schema versions and migrations: open an index written by an older xpm and upgrade it in place.

The schema (:mod:`xpm.index._schema`) says in which version each table, column, index
and view appeared (``since``).  Migrating a database from version ``v`` to ``v + 1``
creates the tables of version ``v + 1``, adds its new columns with ``ALTER TABLE``,
creates its indexes, then runs ``CUSTOM[v + 1]`` (data fixes, renames) if there is one.
Views are derived: they are dropped and recreated after every migration.  A new database
is version 0 migrated to :data:`~xpm.index._version.SCHEMA_VERSION`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence

from ._links import link_jobs
from ._schema import INDEXES, TABLES, VIEWS, IndexDef, Table, View
from ._schemasql import column_sql, create_index_sql, create_table_sql, create_view_sql
from ._version import SCHEMA_VERSION, schema_version, too_new

Migration = Callable[[sqlite3.Connection], None]


def _to_2(conn: sqlite3.Connection) -> None:
    """Schema 2 records the run and git state of each job's latest attempt (``jobs.run``,
    ``jobs.git_state``): an index of schema 1 has no attempt records, so each job gets the
    latest run that submitted it before its last launch, as a rebuild does."""

    link_jobs(conn)


def _fill_task_tables(conn: sqlite3.Connection) -> None:
    """Version 3 (per-task tables): build them from the jobs already in the index."""
    from ._tasktables import refresh_task_rows

    refresh_task_rows(conn)


def _fill_digests(conn: sqlite3.Connection) -> None:
    """Version 7 (``jobs.params_digest``): the digest of the rows already in the index."""
    from ._digests import fill_params_digests

    fill_params_digests(conn)


def _count_writes(conn: sqlite3.Connection) -> None:
    """Version 8: the triggers counting the writes of jobs, submissions and runs."""
    from ._writecount import create_counter

    create_counter(conn)


def _count_settings_writes(conn: sqlite3.Connection) -> None:
    """Version 9: the triggers counting writes of a job's task, parameters or tags."""
    from ._writecount import create_settings_counter

    create_settings_counter(conn)


def _log_writes(conn: sqlite3.Connection) -> None:
    """Version 10: the triggers logging which job or run each write was for."""
    from ._writecount import create_write_log

    create_write_log(conn)


#: Extra steps of a migration to version N (run after its tables/columns/indexes exist).
CUSTOM: dict[int, Migration] = {
    2: _to_2,
    3: _fill_task_tables,
    7: _fill_digests,
    8: _count_writes,
    9: _count_settings_writes,
    10: _log_writes,
}


def migrate(
    conn: sqlite3.Connection,
    *,
    target: int = SCHEMA_VERSION,
    tables: Sequence[Table] = TABLES,
    views: Sequence[View] = VIEWS,
    indexes: Sequence[IndexDef] = INDEXES,
    custom: Mapping[int, Migration] = CUSTOM,
) -> tuple[int, int]:
    """Bring the database to schema ``target``; returns (version before, version after).

    Call it inside a write transaction (``BEGIN IMMEDIATE``) so that two processes opening
    a new index at once do not both create it.
    """
    version = schema_version(conn)
    if version > target:
        raise too_new(version, target)
    if version == target:
        return version, version
    for v in views:
        conn.execute(f'DROP VIEW IF EXISTS "{v.name}"')
    for step in range(version + 1, target + 1):
        for t in tables:
            if t.since == step:
                conn.execute(create_table_sql(t, step))
            elif t.since < step:
                for c in t.columns:
                    if c.since == step:
                        conn.execute(f'ALTER TABLE "{t.name}" ADD COLUMN {column_sql(c)}')
        for i in indexes:
            if i.since == step:
                conn.execute(create_index_sql(i))
        extra = custom.get(step)
        if extra is not None:
            extra(conn)
    for v in views:
        if v.since <= target:
            conn.execute(create_view_sql(v))
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(target),)
    )
    if version == 0:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('created_by', 'xpm')")
    return version, target
