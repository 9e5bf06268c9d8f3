"""The Datasette hooks of the xpm plugin.

Registered through the ``datasette`` entry point (``xpm = "xpm.datasette"``) or, by
``xpm serve`` and the tests, with :func:`xpm.datasette.register`.  The hooks read the
workdir from the plugin configuration (metadata ``plugins.xpm.workdir``).
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import urllib.parse
from collections.abc import Awaitable, Hashable
from pathlib import Path
from typing import Any

from datasette import hookimpl
from datasette.database import QueryInterrupted
from datasette.facets import Facet
from datasette.filters import FilterArguments
from datasette.utils import path_with_added_args, path_with_removed_args, sqlite_timelimit
from markupsafe import Markup, escape

from .._vocabulary import JOBS, shown_state
from ..index import (
    FACET_COLUMNS,
    column_facet_sql,
    experiment_facet_sql,
    experiments_newest_first,
    jobs_table_filters,
    sweep_queries,
    tags_facet_sql,
)
from . import _files
from ._format import when
from ._metadata import DATABASE
from ._served import (
    in_background,
    index_signature,
    kept_by_settings,
    kept_by_writes,
    lagging,
    snapshot,
    while_unchanged,
    workdir_of,
)


# --- SQL functions -------------------------------------------------------------------------------
@hookimpl
def prepare_connection(conn: Any, database: str, datasette: Any) -> None:
    """Make the index connection read-only and add ``xpm_log_tail(path, stream, lines)``."""
    if database != DATABASE:
        return
    conn.execute("PRAGMA query_only = 1")
    workdir = workdir_of(datasette)
    if workdir is None:
        return

    def xpm_log_tail(path: Any, stream: Any = "stderr", lines: Any = 20) -> str | None:
        try:
            n = int(lines)
        except (TypeError, ValueError):
            n = 20
        return _files.log_tail(workdir, path, str(stream), n)

    conn.create_function("xpm_log_tail", -1, xpm_log_tail)


# --- metadata of the per-task tables (they appear while the index is served) ------------------------
_tables_cache: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}


@hookimpl
def get_metadata(datasette: Any, key: str, database: str | None, table: str | None) -> Any:
    """Descriptions, sort order and facets of the task tables, as they are now."""
    db = datasette.databases.get(DATABASE)  # never datasette.metadata(): it calls this hook
    if db is None or database not in (None, DATABASE):
        return {}
    path = str(db.path)
    sig = index_signature(path)
    cached = _tables_cache.get(path)
    if cached and cached[0] == sig:
        return cached[1]
    import sqlite3

    from ..index import readonly_uri
    from ..index import task_tables_metadata as datasette_metadata

    try:
        # The index's own read-only URI: a path with "#" or "?" in it was cut there (and
        # SQLite created an empty file at the cut), and a read-only mount needs more.
        conn = sqlite3.connect(readonly_uri(Path(path)), uri=True)
        try:
            tables = datasette_metadata(conn)
        finally:
            conn.close()
    except sqlite3.Error:
        tables = {}
    meta = {"databases": {DATABASE: {"tables": tables}}} if tables else {}
    _tables_cache[path] = (sig, meta)
    return meta


# --- canned queries: one sweep per experiment ------------------------------------------------------
@hookimpl
def canned_queries(datasette: Any, database: str, actor: Any) -> Any:
    """A ``sweep_<experiment>`` query per experiment (columns depend on its tags and results)."""
    if database != DATABASE:
        return None

    async def inner() -> dict[str, Any]:
        db = datasette.get_database(DATABASE)

        async def experiments() -> Hashable:
            return await db.execute_fn(lambda conn: tuple(sorted(experiments_newest_first(conn))))

        return await lagging(
            db.path, "sweep queries", lambda: db.execute_fn(sweep_queries), experiments
        )

    return inner


# --- filters and facets on the jobs table --------------------------------------------------------
@hookimpl
def filters_from_request(request: Any, database: str, table: str, datasette: Any) -> Any:
    """``?_tag=key=value`` and ``?_experiment=name`` on the jobs table."""
    if database != DATABASE or table != "jobs":
        return None
    where, params, human = jobs_table_filters(
        request.args.getlist("_tag"), request.args.getlist("_experiment")
    )
    return FilterArguments(where, params, human)


def _toggle(facet: Facet, arg: str, value: str, selected: bool) -> str:
    request = facet.request
    if selected:
        path = path_with_removed_args(request, {arg: value})
    else:
        path = path_with_added_args(request, {arg: value})
    return str(facet.ds.absolute_url(request, facet.ds.urls.path(path)))


class _XpmFacet(Facet):  # type: ignore[misc]
    """A facet counting jobs per value of something joined to them (tags, experiments)."""

    type: str = ""
    arg = ""
    title = ""

    def group_sql(self, table_sql: str | None, limit: int) -> str:
        """SQL of (value, count) for the jobs of the page ``table_sql`` (None: all jobs),
        ``limit`` rows."""
        raise NotImplementedError

    def counted(self) -> list[tuple[str, str, Any]]:
        """(URL argument, title, group_sql) of each facet this class shows."""
        return [(self.arg, self.title, self.group_sql)] if self.get_configs() else []

    async def facet_results(self) -> tuple[list[dict[str, Any]], list[str]]:
        if self.table == "jobs" and not self.request.scope.get("xpm_facets_started"):
            # Datasette asks each facet in turn; started together, the counts of the jobs
            # table run side by side on the server's SQL threads (after a write, one after
            # the other took 120-170 ms over 100,000 jobs).
            self.request.scope["xpm_facets_started"] = True
            for group_sql in JOBS_FACETS:
                in_background(self._counts(group_sql))
        results, timed_out = [], []
        for arg, title, group_sql in self.counted():
            result = await self._one(arg, title, group_sql)
            if result is None:
                timed_out.append(title)
            else:
                results.append(result)
        return results, timed_out

    def _counts(self, group_sql: Any) -> Awaitable[list[tuple[Any, int]]]:
        """(value, count) of ``group_sql`` over the jobs of the page (kept while the index
        is unchanged: every page of the table counts the same jobs, the cursor left out)."""
        size = self.get_facet_size()
        base = without_cursor(self.sql, self.request)
        params = {k: v for k, v in (self.params or {}).items() if f":{k}" in base}
        # Unfiltered (the table page as it opens): count over everything, which the
        # indexes serve, instead of testing each row against the list of all jobs.
        filtered = " where " in base.lower() or bool(params)
        sql = group_sql(base if filtered else None, size + 1)

        db = self.ds.get_database(self.database)
        limit = self.ds.setting("facet_time_limit_ms")

        async def count() -> list[tuple[Any, int]]:
            rows = await self.ds.execute(
                self.database, sql, params, truncate=False, custom_time_limit=limit
            )
            return [(row["value"], row["count"]) for row in rows.rows]

        async def count_every_job() -> list[tuple[Any, int]]:
            # Over every job, a count depends on the jobs, their submissions and their
            # tags alone (written with their row): kept while none is written, so a
            # running experiment's reports do not recount them (after each report: 20-100
            # ms each over 100,000 jobs); the tags and tasks while no job's settings are.
            by_settings = sql in (
                tags_facet_sql(None, size + 1),
                column_facet_sql("task_id", None, size + 1),
            )
            kept = (kept_by_settings if by_settings else kept_by_writes)(db.path)

            def read(conn: Any) -> list[tuple[Any, int]]:
                with sqlite_timelimit(conn, limit):
                    return kept.get(conn, ("jobs facet", sql), lambda: _rows(conn, sql))

            try:
                return await db.execute_fn(snapshot(read))
            except sqlite3.OperationalError as e:
                if "interrupted" in str(e):
                    raise QueryInterrupted(e, sql, params) from e
                raise

        return while_unchanged(
            db.path,
            ("facet", sql, repr(sorted(params.items()))),
            count if filtered else count_every_job,
        )

    async def _one(self, arg: str, title: str, group_sql: Any) -> dict[str, Any] | None:
        size = self.get_facet_size()
        try:
            counted = await self._counts(group_sql)
        except QueryInterrupted:
            return None
        chosen = set(self.request.args.getlist(arg))
        values = []
        for raw, number in counted[:size]:
            value = str(raw)
            values.append(
                {
                    "value": value,
                    # A job not started reads WAITING, as everywhere (the value stays).
                    "label": shown_state(value) if arg == "state" else value,
                    "count": number,
                    "toggle_url": _toggle(self, arg, value, value in chosen),
                    "selected": value in chosen,
                }
            )
        query = urllib.parse.urlencode([(arg, v) for v in sorted(chosen)])
        return {
            "name": title,
            # Datasette's template writes any other type after the facet's name ("tags
            # (xpm_tags)"); these count jobs by value, as a column facet does.
            "type": "column",
            "hideable": False,
            "toggle_url": self.ds.urls.path(self.request.path) + ("?" + query if query else ""),
            "results": values,
            "truncated": len(counted) > size,
        }


def _rows(conn: sqlite3.Connection, sql: str) -> list[tuple[Any, int]]:
    return [(value, count) for value, count in conn.execute(sql)]


def without_cursor(sql: str, request: Any) -> str:
    """``sql`` without the condition Datasette adds for ``?_next=`` (the page cursor).

    Datasette 0.65 hands facets the SQL of the page, cursor included, so on page 2 and
    later their counts covered only the rows after the cursor.  The cursor condition is
    the last one, in parentheses.
    """
    text = sql.rstrip()
    if not request.args.get("_next") or not text.endswith(")"):
        return sql
    depth = 0
    for i in range(len(text) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[i], 0)
        if depth == 0:
            head = text[:i].rstrip()
            for keyword in (" and", " where"):
                if head.lower().endswith(keyword):
                    return head[: -len(keyword)] + " "
            break
    return sql


class ColumnFacet(_XpmFacet):
    """Jobs per value of a column of ``jobs`` (task, state); selecting one adds ``?state=X``.

    Datasette's own column facet counts only the rows after the cursor on page 2.
    """

    type = "xpm_column"
    COLUMNS = FACET_COLUMNS

    def counted(self) -> list[tuple[str, str, Any]]:
        out = []
        for config in self.get_configs():
            column = config["config"].get("simple")
            if column in self.COLUMNS:
                out.append((column, column, self._group_by(column)))
        return out

    @staticmethod
    def _group_by(column: str) -> Any:
        return functools.partial(column_facet_sql, column)


class TagsFacet(_XpmFacet):
    """Jobs per tag ``key=value``; selecting one adds ``?_tag=key=value``."""

    type = "xpm_tags"
    arg = "_tag"
    title = "tags"

    def group_sql(self, table_sql: str | None, limit: int) -> str:
        return tags_facet_sql(table_sql, limit)


class ExperimentFacet(_XpmFacet):
    """Jobs per experiment (of the runs that submitted them); adds ``?_experiment=name``."""

    type = "xpm_experiment"
    arg = "_experiment"
    title = "experiment"

    def group_sql(self, table_sql: str | None, limit: int) -> str:
        return experiment_facet_sql(table_sql, limit)


#: The facets of the jobs table (:data:`._metadata.FACETS`), as SQL of (value, count).
JOBS_FACETS: tuple[Any, ...] = (
    *(functools.partial(column_facet_sql, column) for column in FACET_COLUMNS),
    experiment_facet_sql,
    tags_facet_sql,
)


@hookimpl
def register_facet_classes() -> list[type]:
    return [TagsFacet, ExperimentFacet, ColumnFacet]


# --- links -----------------------------------------------------------------------------------
_JOB_ID = re.compile(r"[0-9a-f]{64}")
#: Columns holding Unix times, in the index's tables and the canned queries.
TIME_COLUMNS = frozenset(
    {
        "submit_time",
        "start_time",
        "end_time",
        "last_submitted",
        "first_start",
        "last_start",
        "submitted",
        "started",
        "ended",
        "time",
    }
)


@hookimpl
def render_cell(
    row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any
) -> Any:
    """Link job directories (``jobs.path``) and ``page`` columns to the job page; show
    Unix times as the plugin's pages do (local time, zone named; the number on hover)."""
    if database != DATABASE:
        return None
    if column in TIME_COLUMNS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return Markup(f'<span class="xpm-time" title="{value}">{escape(when(value))}</span>')
    if not isinstance(value, str):
        return None
    if column == "id" and table is None and _JOB_ID.fullmatch(value):
        # A job in a canned query's answer: its short id opens its page.
        url = datasette.urls.path(f"-/xpm/job/{value}")
        return Markup(f'<a href="{escape(url)}" title="{value}"><code>{value[:12]}</code></a>')
    if column == "path" and table == "jobs" and value.startswith(f"{JOBS}/"):
        job_id = value.rsplit("/", 1)[-1]
        url = datasette.urls.path(f"-/xpm/job/{job_id}")
        return Markup(f'<a href="{escape(url)}">{escape(value)}</a>')
    if column == "page" and value.startswith("/-/xpm/job/"):
        url = datasette.urls.path(value.lstrip("/"))
        return Markup(f'<a href="{escape(url)}">job page</a>')
    if column == "state" and shown_state(value) != value:
        # The name every view uses for a job not started (the stored one is kept).
        return Markup(f'<span title="stored as {escape(value)}">{shown_state(value)}</span>')
    if column == "stderr_tail":
        return Markup(f'<pre class="xpm-tail">{escape(value)}</pre>')
    return None


@hookimpl
def prepare_jinja2_environment(env: Any, datasette: Any) -> None:
    """Filters ``xpm_when``, ``xpm_number``, ``xpm_size`` (see ``_format``), and
    ``xpm_page_version(request)``: the index's version when the request arrived."""
    from ._format import FILTERS

    for name, function in FILTERS.items():
        env.filters[f"xpm_{name}"] = function
    from ._live import page_version

    env.globals["xpm_page_version"] = page_version


@hookimpl
def asgi_wrapper(datasette: Any) -> Any:
    """Each request notes the index's version as it arrives (live pages: ``_live``)."""
    from ._live import version_at_arrival

    return lambda app: version_at_arrival(_states_as_shown(app, datasette), datasette)


def _states_as_shown(app: Any, datasette: Any) -> Any:
    """ASGI wrapper: on the index's jobs table, a state filter written as every view shows
    states (``?state=WAITING``, ``?state=done``) reads the stored name (UNSCHEDULED, DONE):
    typed by hand, it found nothing (a trial)."""
    from urllib.parse import parse_qsl, urlencode

    from .._vocabulary import STATES, stored_state

    jobs = datasette.urls.path(f"{DATABASE}/jobs")  # databases are not attached yet
    keys = ("state", "state__exact", "state__not")

    async def rewritten(scope: Any, receive: Any, send: Any) -> None:
        query = scope.get("query_string") or b""
        on_jobs = str(scope.get("path", "")).split(".")[0] == jobs
        if scope.get("type") == "http" and b"state" in query and on_jobs:
            pairs = parse_qsl(query.decode("utf-8", "replace"), keep_blank_values=True)
            shown = [
                (k, stored_state(v) if k in keys and v.upper() in STATES else v) for k, v in pairs
            ]
            if shown != pairs:
                scope = {**scope, "query_string": urlencode(shown).encode()}
        await app(scope, receive, send)

    return rewritten


@hookimpl
def extra_body_script(database: str | None, table: str | None, datasette: Any) -> str | None:
    """On the index's jobs table: ids open the job page, column descriptions fold away
    (static/xpm-jobs-table.js)."""
    if database != DATABASE or table != "jobs":
        return None
    return _jobs_table_script().replace(
        '"/-/xpm/job/"', json.dumps(datasette.urls.path("-/xpm/job/"))
    )


@functools.cache
def _jobs_table_script() -> str:
    """static/xpm-jobs-table.js, read once (not at every load of the jobs table)."""
    from pathlib import Path

    return (Path(__file__).parent / "static" / "xpm-jobs-table.js").read_text(encoding="utf-8")


@hookimpl
def menu_links(datasette: Any, actor: Any, request: Any) -> list[dict[str, str]]:
    return [
        {"href": datasette.urls.table(DATABASE, "jobs"), "label": "xpm: jobs"},
        {"href": datasette.urls.path("-/xpm/chart"), "label": "xpm: charts"},
    ]


@hookimpl
def table_actions(datasette: Any, actor: Any, database: str, table: str, request: Any) -> Any:
    if database != DATABASE or table != "jobs":
        return None
    return [{"href": datasette.urls.path("-/xpm/chart"), "label": "Chart a result of a sweep"}]


@hookimpl
def register_routes(datasette: Any) -> list[tuple[str, Any]]:
    from . import _export, _live, _pages, _views

    return [
        (r"^/-/xpm/live\.json$", _live.live_state),
        (r"^/$", _views.home_page),
        # Any reference, so a mistyped one gets the page's own 404 (not Datasette's bare one).
        (r"^/-/xpm/job/(?P<job_id>[^/]{1,100})$", _pages.job_page),
        (r"^/-/xpm/job/(?P<job_id>[0-9a-fA-F]{1,64})/files$", _views.files_page),
        (r"^/-/xpm/job/(?P<job_id>[0-9a-fA-F]{1,64})/files/(?P<path>.+)$", _views.file_download),
        (
            r"^/-/xpm/job/(?P<job_id>[0-9a-fA-F]{1,64})/log/(?P<stream>stdout|stderr)$",
            _views.log_page,
        ),
        (r"^/-/xpm/experiment/(?P<name>[^/]+)$", _views.experiment_page),
        (r"^/-/xpm/runs\.csv$", _export.runs_csv),
        (r"^/-/xpm/runs/(?P<task>[A-Za-z0-9_.\-]+)$", _views.runs_page),
        (r"^/-/xpm/compare$", _views.compare_page),
        (r"^/-/xpm/chart$", _pages.chart_page),
        (r"^/-/xpm/chart\.json$", _pages.chart_json),
        (r"^/-/xpm/static/(?P<path>[A-Za-z0-9_.\-]+)$", _pages.static_file),
    ]
