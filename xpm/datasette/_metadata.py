"""Datasette metadata for the index: descriptions from the schema, sorts, facets, queries.

Table, view and column descriptions come from :mod:`xpm.index._schema` (the one source
of the schema's documentation), the canned queries' SQL from
:data:`xpm.index.CANNED_QUERIES`; this module adds what only the web view needs and
places them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..index import CANNED_QUERIES, datasette_metadata

#: Name of the index database in Datasette URLs (``/xpm/jobs``).
DATABASE = "xpm"
#: Name of the plugin, and key of its configuration in the metadata's ``plugins``.
PLUGIN = "xpm"

#: Newest first, per table (the column to sort descending).
SORT_DESC = {
    "jobs": "submit_time",
    "runs": "start_time",
    "experiments": "last_start",
    "submissions": "time",
    "results": "time",
    "job_summary": "submit_time",
}

#: Facets shown on a table page without asking (xpm_* are the plugin's own facet types).
FACETS: dict[str, list[Any]] = {
    "jobs": [
        {"xpm_column": "task_id"},
        {"xpm_column": "state"},
        {"xpm_experiment": "last_run"},
        {"xpm_tags": "id"},
    ],
    "runs": ["experiment", "host"],
    "tags": ["key"],
    "results": ["key"],
    "job_summary": ["task_id", "state", "experiment"],
}


def metadata(workdir: Path, *, title: str | None = None) -> dict[str, Any]:
    """The whole Datasette metadata for the index of ``workdir``."""
    meta = datasette_metadata(DATABASE)
    db = meta["databases"][DATABASE]
    for name, column in SORT_DESC.items():
        db["tables"].setdefault(name, {})["sort_desc"] = column
    for name, facets in FACETS.items():
        db["tables"].setdefault(name, {})["facets"] = list(facets)
    db["tables"]["jobs"]["label_column"] = "id"
    db["queries"] = {name: dict(q) for name, q in CANNED_QUERIES.items()}
    db["description"] = (
        "The xpm index of this workdir: one row per job, run, parameter, tag and result. "
        "Job pages: /-/xpm/job/<id>; charts: /-/xpm/chart."
    )
    meta["title"] = title or f"xpm: {Path(workdir).name}"
    meta["description"] = f"Experiments of the workdir {workdir}"
    meta["plugins"] = {PLUGIN: {"workdir": str(workdir)}}
    return meta
