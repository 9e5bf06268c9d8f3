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


async def live_state(request: Any, datasette: Any) -> Response:
    """``{"active": n, "version": "..."}``: jobs submitted or running, and a token that
    changes whenever the index is written (the page compares it with the last one)."""
    del request
    db = datasette.get_database(DATABASE)
    active = await while_unchanged(
        db.path, "live: active jobs", lambda: db.execute_fn(active_job_count)
    )
    version = "-".join(str(part) for part in index_signature(db.path))
    return Response.json(
        {"active": active, "version": version}, headers={"Cache-Control": "no-store"}
    )
