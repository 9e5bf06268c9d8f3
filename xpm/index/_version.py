"""The index's schema version, readable without loading the schema definitions.

(Separate from :mod:`._schema` so that opening an up-to-date index stays cheap.)
"""

from __future__ import annotations

import sqlite3

from ..errors import IndexDatabaseError, IndexTooNewError

#: Bump it (and give new tables, columns and indexes ``since=`` that version) to change
#: the schema; :mod:`._migrations` upgrades older files in place.
SCHEMA_VERSION = 10


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version of the open database: 0 for an empty one."""
    names = {
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    }
    if "meta" not in names:
        if names:
            raise IndexDatabaseError(
                f"this SQLite file is not an xpm index (it has tables {sorted(names)[:5]} but no "
                "'meta' table): point XPM_INDEX elsewhere or remove the file and run "
                "`xpm index rebuild`"
            )
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        return int(row[0]) if row else 0
    except (TypeError, ValueError):
        raise IndexDatabaseError(
            f"meta.schema_version is {row[0]!r}, not a number: the index is damaged; "
            "recreate it with `xpm index rebuild`"
        ) from None


def too_new(
    version: int, known: int = SCHEMA_VERSION, where: str = "the index"
) -> IndexTooNewError:
    """The error for an index of a schema newer than this xpm knows (reading or writing
    it: no run of this xpm can upgrade it)."""
    return IndexTooNewError(
        f"{where} was written by a newer xpm (schema version {version}, this xpm knows up "
        f"to {known}): upgrade xpm, or use another index file (XPM_INDEX) and run "
        "`xpm index rebuild`"
    )
