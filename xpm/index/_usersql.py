"""``xpm query``: the user's SQL on the index opened read-only (no write, no ATTACH),
SQLite's errors turned into the fix that goes with them, and the schema it documents.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from .._vocabulary import index_file
from ..errors import IndexDatabaseError, UsageError


def run_query(
    workdir: str | os.PathLike[str], sql: str, params: Any = (), *, catch_up: bool = True
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``sql`` on the index opened read-only; returns column names and rows.

    A statement that would write is a :class:`UsageError` (exit 2) saying so; so is an SQL
    error (with SQLite's message).  With ``catch_up`` (and an index this user may write),
    the index is first brought up to date with the jobs it calls active, as ``xpm jobs
    list`` and ``xpm results`` do: a detached run's new states and results are recorded by
    xpm's own writer, never by the query.
    """
    from ._db import REBUILD_HINT, check_header, index_path, readonly_uri

    path = index_path(Path(workdir).absolute())
    if not path.exists():
        raise UsageError(f"no index at {path}: run an experiment first or `xpm index rebuild`")
    check_header(path)
    if catch_up:
        _catch_up(workdir)
    try:
        conn = sqlite3.connect(readonly_uri(path), uri=True, timeout=30)
    except sqlite3.Error as e:
        raise IndexDatabaseError(f"{path}: cannot open the index ({e}): {REBUILD_HINT}") from None
    conn.set_authorizer(_refuse_attach)
    try:
        conn.execute("PRAGMA query_only = 1")
        try:
            cursor = conn.execute(sql, params)
            columns = [d[0] for d in cursor.description or ()]
            rows = cursor.fetchall()
        except sqlite3.Error as e:
            text = str(e)
            if any(w in text for w in ("readonly", "read-only", "query_only", "not authorized")):
                raise UsageError(
                    f"xpm query is read-only ({text}): the index is derived from the job "
                    "directories; change jobs with `xpm jobs ...` commands"
                ) from None
            if any(w in text for w in ("malformed", "not a database", "disk I/O error")):
                raise IndexDatabaseError(f"{path} is damaged ({text}): {REBUILD_HINT}") from None
            raise UsageError(_sql_error_hint(text)) from None
    finally:
        conn.close()
    return columns, rows


def _sql_error_hint(text: str) -> str:
    """SQLite's message, and the fix that goes with it."""
    binding = re.search(r"supply a value for binding parameter :?(\w+)", text)
    if binding:
        name = binding.group(1)
        if name.isdigit():
            return (
                f"SQL error: {text}: write named parameters (:name) and give each with "
                "--param name=VALUE"
            )
        return f"SQL error: {text}: give it with --param {name}=VALUE"
    if "number of bindings" in text:
        return (
            f"SQL error: {text}: write named parameters (:name) and give each with "
            "--param name=VALUE"
        )
    if "no such table" in text or "no such column" in text:
        return f"SQL error: {text} (`xpm query --schema` lists the tables and columns)"
    return f"SQL error: {text}"


def _refuse_attach(action: int, *_args: Any) -> int:
    """SQLite authorizer: ATTACH would create or open another database file, even read-only."""
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def schema_text(workdir: Path | None = None) -> str:
    """The documented schema of the index (the reference of docs/index.md), as Markdown;
    with ``workdir``, followed by the task tables of its index (when it has one)."""
    from ._schemadoc import render_markdown

    # The first line of the generated text is an HTML comment for docs/index.md.
    text = render_markdown()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("<!--")).lstrip()
    if workdir is None:
        return text
    from ._db import ENV_INDEX, IndexDB
    from ._tasktables import render_markdown as task_tables_markdown

    try:
        with IndexDB(workdir, readonly=True) as db, db.errors():
            return text + "\n\n" + task_tables_markdown(db.conn)
    except IndexDatabaseError as error:
        if not os.path.lexists(index_file(workdir)) and not os.environ.get(ENV_INDEX):
            return text  # no index yet: the documented schema is what there is
        # Damaged, a broken link, too new: say why its tables are missing, not nothing.
        return f"{text}\n\n(The task tables of this workdir are not listed: {error})"


def _catch_up(workdir: str | os.PathLike[str]) -> None:
    from ._results import settle_active
    from ._settle import settle_crashed_runs, writable_index

    db = writable_index(workdir)
    if db is not None:
        with db:
            settle_crashed_runs(db)
            settle_active(db)
