"""The xpm Datasette plugin: the index of a workdir as web pages shaped for experiments.

Metadata from the schema (descriptions, newest-first sorts, facets on task, state,
experiment and tags), canned queries (recent jobs, failed jobs with their stderr tail,
one sweep pivot per experiment, two jobs compared, jobs of a commit), a job page
(``/-/xpm/job/<id>``) and a sweep chart (``/-/xpm/chart``) drawn by a small SVG script
shipped here (no network needed).

Datasette finds the hooks through the ``datasette`` entry point naming this package;
:func:`make_datasette` (used by ``xpm serve``) registers them itself when the entry point
is not installed.  Importing this package imports Datasette: the rest of xpm does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._plugin import (
    asgi_wrapper,
    canned_queries,
    extra_body_script,
    filters_from_request,
    get_metadata,
    menu_links,
    prepare_connection,
    prepare_jinja2_environment,
    register_facet_classes,
    register_routes,
    render_cell,
    table_actions,
)

if TYPE_CHECKING:
    from ._app import serve

__all__ = [
    "serve",
    "asgi_wrapper",
    "canned_queries",
    "extra_body_script",
    "filters_from_request",
    "get_metadata",
    "make_datasette",
    "menu_links",
    "metadata",
    "prepare_connection",
    "prepare_jinja2_environment",
    "register",
    "register_facet_classes",
    "register_routes",
    "render_cell",
    "table_actions",
]


def __getattr__(name: str) -> object:
    if name in ("make_datasette", "register", "ReadOnlyDatabase", "serve"):
        from . import _app

        return getattr(_app, name)
    if name == "metadata":
        from ._metadata import metadata

        return metadata
    raise AttributeError(name)
