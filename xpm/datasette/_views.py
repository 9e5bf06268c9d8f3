"""The plugin's pages for a researcher: home, experiments, runs tables, compare, files.

(The job page and the sweep chart live in :mod:`._pages`.)  The SQL behind them is in
:mod:`._runs`; how values print is in :mod:`._format`.
"""

from __future__ import annotations

from typing import Any

from datasette.utils.asgi import Response

from . import _format, _runs
from ._metadata import DATABASE


async def home_page(request: Any, datasette: Any) -> Response:
    """The workdir at a glance: experiments with their latest run, running and failed jobs."""
    db = datasette.get_database(DATABASE)

    def read(conn: Any) -> dict[str, Any]:
        running = _runs.jobs_in_state(conn, "RUNNING")
        failed = _runs.jobs_in_state(conn, "FAILED")
        return {
            "experiments": _runs.experiments_overview(conn),
            "running_count": running[0],
            "running": running[1],
            "failed_count": failed[0],
            "failed": failed[1],
        }

    context = await db.execute_fn(read)
    context.update(
        database=DATABASE,
        states=_runs.STATES,
        zone=_format.zone(),
        title=datasette.metadata("title") or "xpm",
        description=datasette.metadata("description") or "",
    )
    html = await datasette.render_template("xpm_home.html", context, request=request)
    return Response.html(html)
