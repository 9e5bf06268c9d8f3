"""The SQLite index of a workdir: every job, its parameters, tags, results and git state.

The job directories are the truth; the index (``WORKDIR/xpm.db``, or ``$XPM_INDEX``) is a
derived, documented view of them (docs/index.md) that :func:`rebuild` recreates at any
time.  Experiment processes write it (:mod:`xpm.index._recorder`); job processes never
open it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._db import ENV_INDEX, IndexDB, index_path
    from ._ingest import rebuild
    from ._query import Mismatch, check, find_job, list_jobs, parse_tag_value, reconcile
    from ._schema import datasette_metadata, render_markdown
    from ._version import SCHEMA_VERSION

# Loaded on first use: a command that only reads an up-to-date index never pays for the
# schema definitions or the ingest code.
_LAZY = {
    "ENV_INDEX": "._db",
    "IndexDB": "._db",
    "index_path": "._db",
    "rebuild": "._ingest",
    "Mismatch": "._query",
    "check": "._query",
    "find_job": "._query",
    "list_jobs": "._query",
    "parse_tag_value": "._query",
    "reconcile": "._query",
    "datasette_metadata": "._schema",
    "render_markdown": "._schema",
    "SCHEMA_VERSION": "._version",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xpm.index' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def open_index(workdir: str | os.PathLike[str], readonly: bool = False) -> IndexDB:
    """Open (and create or upgrade, unless ``readonly``) the index of ``workdir``.

    Use it as a context manager; ``.conn`` is the :mod:`sqlite3` connection, ``.db`` its
    sqlite-utils wrapper, ``.query(sql, params)`` returns rows.  A damaged file raises
    :class:`~xpm.errors.IndexDatabaseError` naming ``xpm index rebuild``.
    """
    from ._db import IndexDB

    return IndexDB(workdir, readonly=readonly)


__all__ = [
    "ENV_INDEX",
    "IndexDB",
    "Mismatch",
    "SCHEMA_VERSION",
    "check",
    "datasette_metadata",
    "find_job",
    "index_path",
    "list_jobs",
    "open_index",
    "parse_tag_value",
    "rebuild",
    "reconcile",
    "render_markdown",
]
