"""The heartbeat of live pages: whether anything runs, and whether the index changed.

A live page (xpm-live.js) refetches itself every few seconds while its jobs run.  A page
opened before a run starts must notice the run: while idle it asks this cheap endpoint
instead (every :data:`IDLE_PERIOD_MS`), and refetches itself once the answer changes.
"""

from __future__ import annotations

from typing import Any

from datasette.utils.asgi import Response

from ..index import active_job_count
from ._metadata import DATABASE
from ._served import index_signature, while_unchanged

#: Milliseconds between two heartbeats of an idle live page.
IDLE_PERIOD_MS = 10_000


#: Where a request keeps the index's version taken when it arrived (ASGI scope key).
VERSION_KEY = "xpm_index_version"


def index_version(path: Any) -> str:
    """A token that changes whenever the index at ``path`` is written."""
    return "-".join(str(part) for part in index_signature(path))


def version_at_arrival(app: Any, datasette: Any) -> Any:
    """ASGI wrapper: each request notes the index's version as it arrives, before any page
    reads the index, so a page can say which version its rows are at least as new as
    (an idle live page compares it with the heartbeat's: a write while the page was being
    made, the last of a run, was missed when the version was first taken afterwards)."""

    async def noted(scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            db = datasette.databases.get(DATABASE)
            if db is not None:
                scope = {**scope, VERSION_KEY: index_version(db.path)}
        await app(scope, receive, send)

    return noted


def page_version(request: Any) -> str:
    """The index's version when ``request`` arrived ("" when not noted)."""
    return str(request.scope.get(VERSION_KEY, "")) if request is not None else ""


async def live_state(request: Any, datasette: Any) -> Response:
    """``{"active": n, "version": "..."}``: jobs submitted or running, and a token that
    changes whenever the index is written (the page compares it with the last one)."""
    del request
    db = datasette.get_database(DATABASE)
    version = index_version(db.path)  # before counting: a write meanwhile shows next time
    active = await while_unchanged(
        db.path, "live: active jobs", lambda: db.execute_fn(active_job_count)
    )
    return Response.json(
        {"active": active, "version": version}, headers={"Cache-Control": "no-store"}
    )
