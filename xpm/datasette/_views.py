"""The plugin's pages for a researcher: home, experiments, runs tables, compare, files.

(The job page and the sweep chart live in :mod:`._pages`.)  What they read comes from
:mod:`xpm.index`; how values print is in :mod:`._format`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import json
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any

from datasette.utils import tilde_decode, tilde_encode
from datasette.utils.asgi import NotFound, Response

from .. import index
from .._jobdir import JobDir
from .._vocabulary import STORED_STATES
from ..errors import UsageError
from . import _compare, _files, _format
from ._metadata import DATABASE
from ._served import kept_by_settings, kept_by_writes, snapshot, while_unchanged, workdir_of


async def home_page(request: Any, datasette: Any) -> Response:
    """The workdir at a glance: experiments with their latest run, running and failed jobs."""
    db = datasette.get_database(DATABASE)

    def read(conn: Any) -> dict[str, Any]:
        running = index.jobs_in_state(conn, "RUNNING")
        failed = index.jobs_in_state(conn, "FAILED")
        return {
            "active": index.active_job_count(conn),
            "experiments": index.experiments_overview(conn),
            "running_count": running[0],
            "running": running[1],
            "failed_count": failed[0],
            "failed": failed[1],
        }

    # A copy: the page adds to it, the cache keeps the rows read.
    context = dict(await while_unchanged(db.path, "home", lambda: db.execute_fn(snapshot(read))))
    context.update(
        database=DATABASE,
        states=STORED_STATES,
        zone=_format.zone(),
        title=datasette.metadata("title") or "xpm",
        description=datasette.metadata("description") or "",
    )
    html = await datasette.render_template("xpm_home.html", context, request=request)
    return Response.html(html)


# --- artifacts and logs ---------------------------------------------------------------------------
async def _job_and_dir(request: Any, datasette: Any) -> tuple[dict[str, Any], JobDir]:
    """The job named in the URL and its directory (404 when either is missing or unsafe)."""
    db = datasette.get_database(DATABASE)
    ref = request.url_vars["job_id"]
    job = await db.execute_fn(lambda conn: index.find_job_row(conn, ref))
    if job is None:
        raise NotFound(f"no job {ref} in the index (or several start with it: give more digits)")
    workdir = workdir_of(datasette)
    jobdir = _files.job_dir(workdir, job["path"]) if workdir else None
    if jobdir is None:
        raise NotFound(f"the directory of job {job['id']} is missing or not under the workdir")
    return job, jobdir


async def files_page(request: Any, datasette: Any) -> Response:
    """The files of a job directory with their sizes, each downloadable (links listed only)."""
    job, jobdir = await _job_and_dir(request, datasette)
    files, truncated = _files.list_files(jobdir)
    for f in files:
        f["url"] = "/".join(_url_part(part) for part in f["path"].split("/"))
    context = {
        "job": job,
        "files": files,
        "truncated": truncated,
        "total": sum(f["size"] for f in files if f["kind"] == "file"),
        "max_files": _files.MAX_FILES,
        "database": DATABASE,
    }
    html = await datasette.render_template("xpm_files.html", context, request=request)
    return Response.html(html)


def _url_part(name: str) -> str:
    """A file name in a URL: as is when plain, else in Datasette's ~-escapes."""
    return name if re.fullmatch(r"[A-Za-z0-9._-]+", name) else tilde_encode(name)


class _Download:
    """An open file sent in chunks (Datasette's own download class reopens by path)."""

    def __init__(self, fd: int, name: str, inline: bool) -> None:
        self.fd, self.name, self.inline = fd, name, inline

    async def asgi_send(self, send: Any) -> None:
        size = os.fstat(self.fd).st_size
        disposition = "inline" if self.inline else "attachment"
        quoted = urllib.parse.quote(self.name)
        headers = [
            # Text shown as text, everything else saved: nothing from a job directory runs
            # as a page of this site (a job may write HTML).
            [b"content-type", b"text/plain; charset=utf-8" if self.inline else _BINARY],
            [b"content-length", str(size).encode()],
            [b"content-disposition", f"{disposition}; filename*=UTF-8''{quoted}".encode()],
            [b"x-content-type-options", b"nosniff"],
            [b"content-security-policy", b"sandbox"],
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            with os.fdopen(self.fd, "rb") as fh:
                while chunk := fh.read(256 * 1024):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            await send({"type": "http.response.body", "body": b""})


_BINARY = b"application/octet-stream"
#: Suffixes shown in the browser as text (anything else is downloaded).
TEXT_SUFFIXES = {".log", ".txt", ".json", ".jsonl", ".csv", ".tsv", ".yaml", ".yml", ".md", ".py"}


async def file_download(request: Any, datasette: Any) -> Any:
    """One regular file of the job directory, read-only (no link followed, nothing outside)."""
    job, jobdir = await _job_and_dir(request, datasette)
    # Datasette redirects %-escapes to its ~-escapes: the links below use those.
    relative = "/".join(tilde_decode(part) for part in request.url_vars["path"].split("/"))
    fd = _files.open_file(jobdir, relative)
    if fd is None:
        raise NotFound(f"no regular file {relative} in the directory of job {job['id']}")
    name = relative.rsplit("/", 1)[-1]
    inline = Path(name).suffix in TEXT_SUFFIXES and request.args.get("download") is None
    return _Download(fd, name, inline)


async def log_page(request: Any, datasette: Any) -> Response:
    """The whole stdout or stderr of a job, a page of 64 KB at a time."""
    job, jobdir = await _job_and_dir(request, datasette)
    stream = request.url_vars["stream"]
    try:
        page = int(request.args.get("page", "1")) - 1
    except ValueError:
        page = 0
    fd = _files.open_file(jobdir, jobdir.log(stream).name)
    text, pages = "", 0
    if fd is not None:
        try:
            text, pages = _files.read_page(fd, page)
        finally:
            os.close(fd)
    context = {
        "job": job,
        "stream": stream,
        "text": text,
        "missing": fd is None,
        "page": min(max(page, 0), max(pages - 1, 0)) + 1,
        "pages": pages,
        "database": DATABASE,
    }
    html = await datasette.render_template("xpm_log.html", context, request=request)
    return Response.html(html)


# --- experiment page and runs tables --------------------------------------------------------------
async def table_base(db: Any, task: str | None, experiment: str | None) -> dict[str, Any]:
    """What every page of a runs table shares, read again only when the index changed:
    the tasks (with their number of jobs), the task shown, its columns and, in an
    experiment, its jobs (read once: they give counts, states and the newest first)."""

    writes = kept_by_writes(db.path)

    def read(conn: Any) -> dict[str, Any]:
        # Kept while no job, submission or run is written and no key appears (a running
        # experiment's results do neither): 50-120 ms over 100,000 jobs on each refresh.
        return writes.get(
            conn,
            ("runs table", task, experiment),
            lambda: compute(conn),
            also=index.columns_fingerprint(conn),
        )

    def compute(conn: Any) -> dict[str, Any]:
        jobs = None
        if experiment is None:
            tasks = index.experiment_tasks(conn, None)
        else:
            by_task = index.experiment_jobs(conn, experiment, writes)
            tasks = [(t, len(by_task[t].ids)) for t in sorted(by_task)]
        names = [t for t, _n in tasks]
        # By default an experiment's task submitted first (its main one), else the first.
        first = next(iter(by_task), None) if experiment is not None else None
        chosen = task if task in names else (first or (names[0] if names else None))
        if chosen is None:
            return {"tasks": tasks, "task": None}
        if experiment is not None:
            jobs = by_task[chosen]
        sample = jobs.ids[: index.COLUMN_SAMPLE] if jobs is not None else None
        columns = index.task_columns(conn, chosen, experiment, sample=sample)
        # The upstream jobs' values sort and filter like the others (shown when they
        # differ on the page, or are sorted or filtered by).
        columns += index.upstream_columns(conn, chosen, experiment, sample=sample)
        return {"tasks": tasks, "task": chosen, "columns": columns, "jobs": jobs}

    found = await while_unchanged(
        db.path, ("runs table", task, experiment), lambda: db.execute_fn(snapshot(read))
    )
    return dict(found)


def _int_arg(request: Any, name: str, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(request.args.get(name, default)), low), high)
    except ValueError:
        return default


@dataclasses.dataclass
class AskedTable:
    """What a runs table's URL asks: its selection, the filters read (with their text),
    what could not be read (said on the page, kept in the box) and whether Meta shows."""

    selection: index.Selection
    filters: list[tuple[str, str, Any, str]]
    errors: list[str]
    rejected: list[str]
    show_meta: bool
    #: (filter read, the same read as a parameter): a bare name that is a tag and an
    #: unmarked parameter (:func:`xpm.index.other_reading`).
    readings: list[tuple[tuple[str, str, Any, str], tuple[str, str, Any, str]]]


#: Jobs up to which a runs table that no job matches says at once why (else on request).
WHY_AT_ONCE = 2_000


def asked_table(request: Any, base: dict[str, Any], experiment: str | None) -> AskedTable:
    """The runs table a URL asks for, on the task and columns of ``base``."""
    columns: list[index.Column] = base["columns"]
    task = base["task"]
    filters: list[tuple[str, str, Any, str]] = []
    errors: list[str] = []
    rejected: list[str] = []  # filters' text kept in the box, to be corrected
    readings = []
    for text in request.args.getlist("where"):
        try:
            found = index.parse_filters(text, columns)
            other = index.other_reading(text, columns) if len(found) == 1 else None
            if other is not None:
                readings.append((found[0], index.parse_filter(other, columns)))
            for parsed in found:
                if parsed[3] not in [f[3] for f in filters]:
                    filters.append(parsed)
        except (ValueError, UsageError) as e:  # UsageError: a quote left open (a 500 before)
            errors.append(str(e))
            rejected.append(text)
    sort = request.args.get("sort") or "-submitted"
    descending = sort.startswith("-")
    # A sort names its column as a filter does (seed, n_layers for model.n_layers).
    sort = index.column_key(sort.lstrip("-"), columns) or sort.lstrip("-")
    if sort not in index.FIXED_COLUMNS and sort not in {c.key for c in columns}:
        errors.append(f"cannot sort by {sort!r}: click a column header instead")
        sort, descending = "submitted", True
    size = _int_arg(request, "size", index.PAGE_SIZE, 1, index.MAX_PAGE_SIZE)
    page = _int_arg(request, "page", 1, 1, 10**9)
    selection = index.Selection(
        task, experiment, [f[:3] for f in filters], sort, descending, page, size, base["jobs"]
    )
    # Meta parameters (paths, devices, counters) do not tell runs apart: shown on request.
    return AskedTable(
        selection, filters, errors, rejected, request.args.get("meta") == "1", readings
    )


async def _runs_context(
    request: Any, datasette: Any, task: str | None, experiment: str | None
) -> dict[str, Any]:
    """Everything a runs table shows: columns, facets, one page of rows, filters, errors."""
    db = datasette.get_database(DATABASE)
    base = await table_base(db, task, experiment)
    task = base["task"]
    context: dict[str, Any] = {"tasks": base["tasks"], "task": task, "errors": [], "table": None}
    if task is None:
        return context
    columns: list[index.Column] = base["columns"]
    asked = asked_table(request, base, experiment)
    selection, filters, errors = asked.selection, asked.filters, asked.errors
    sort, descending, show_meta = selection.sort, selection.descending, asked.show_meta
    size, page = selection.size, selection.page

    writes, settings = kept_by_writes(db.path), kept_by_settings(db.path)
    by_results = any(f[0].startswith("result:") for f in filters)

    def count(conn: Any) -> dict[str, Any]:
        # Without a filter on a result, they depend on the jobs' states, tags and
        # parameters only: kept while no job is written (a running experiment's reports).
        if by_results:
            return count_now(conn)
        key = ("runs counts", task, experiment, repr(selection.filters))
        shown = tuple(c.key for c in columns)
        return writes.get(conn, key, lambda: count_now(conn), also=shown)

    def count_now(conn: Any) -> dict[str, Any]:
        # The jobs each filter keeps are found once per snapshot: a fresh memo each time.
        counted = dataclasses.replace(selection, found={})
        return {
            "count": index.job_count(conn, counted, columns),
            "facets": index.facets(conn, counted, columns, settings),
        }

    async def counts() -> dict[str, Any]:
        # Counts and facets visit every selected job (40-150 ms for an experiment of 10,000
        # jobs) and are the same on every page and in every order of the table.
        return await while_unchanged(
            db.path,
            ("runs counts", task, experiment, repr(selection.filters)),
            lambda: db.execute_fn(snapshot(count)),
        )

    def read(conn: Any) -> dict[str, Any]:
        mine = dataclasses.replace(selection, found={})
        total = index.job_count(conn, mine, columns)
        # A page past the end (an old link, a hand-typed ?page=99) shows the last one.
        mine.page = min(page, max(1, -(-total // size)))
        table = index.runs_table(conn, mine, columns, total, settings)
        # Jobs differing only by the job whose output they use (Evaluate jobs of several
        # Learn jobs) would look identical: the upstream jobs' values that differ show.
        ups = index.upstream_values(conn, [r["id"] for r in table["rows"]])
        for row in table["rows"]:
            row["values"].update(ups.get(row["id"], {}))
        return {**table, "page": mine.page, "active": index.active_job_count(conn)}

    # The page's rows and the table's counts and facets are read side by side, on two of
    # the server's SQL threads: after a write, a task's page 1,000 sorted by a tag read
    # them one after the other (100 ms each over 100,000 jobs).
    table, _counted = await asyncio.gather(db.execute_fn(snapshot(read)), counts())
    page = table.pop("page")
    # Counted again if the index changed meanwhile (a stat otherwise): facets older than
    # the rows would stay on a page that stopped refreshing because nothing runs.
    table.update(await counts())
    pages = max(1, -(-table["count"] // size))
    # Which filter left nothing, and why: at once for a table of a few thousand jobs; on
    # request (a link) for larger ones, where it costs a few hundred ms after each write.
    small = selection.jobs is not None and len(selection.jobs.ids) <= WHY_AT_ONCE
    if not table["count"] and selection.filters and not small and request.args.get("why") != "1":
        context["why_url"] = _url_with(request, why="1")
    elif not table["count"] and selection.filters:
        shown_keys = tuple(c.key for c in columns)

        def why(conn: Any) -> list[dict[str, Any]]:
            texts = {repr(f[:3]): f[3] for f in filters}
            mine = dataclasses.replace(selection, found={})

            def now() -> list[dict[str, Any]]:
                return index.no_match(conn, mine, columns, texts)

            # Kept as the counts are: it depends on results only through a result filter.
            key = ("no match", task, experiment, repr(selection.filters))
            return now() if by_results else writes.get(conn, key, now, also=shown_keys)

        context["no_match"] = await db.execute_fn(snapshot(why))
    groups = [
        *_groups(columns, show_meta),
        ("upstream", _upstream_columns(table["rows"], columns, {sort, *(f[0] for f in filters)})),
    ]
    # Columns the reader hid (the × of a header): a wide sweep fits a laptop's screen.
    hide = list(dict.fromkeys(request.args.getlist("hide")))
    shown = {c.key: c for _label, cols in groups for c in cols}
    context.update(
        columns=columns,
        groups=[(label, [c for c in cols if c.key not in hide]) for label, cols in groups],
        hide=hide,
        hidden=[shown[k] for k in hide if k in shown],
        show_meta=show_meta,
        meta_count=sum(c.meta for c in columns),
        filters=[f[3] for f in filters],
        rejected=", ".join(asked.rejected),
        errors=errors,
        sort=sort,
        descending=descending,
        table=table,
        page=min(page, pages),
        pages=pages,
        size=size,
        first_row=(min(page, pages) - 1) * size + 1,
        active=table["active"],
        zone=_format.zone(),
        csv_url=_csv_url(request, datasette, task, experiment),
        readings=await _readings(request, db, asked, columns, table["count"]),
    )
    return context


async def _readings(
    request: Any, db: Any, asked: AskedTable, columns: list[index.Column], count: int
) -> list[dict[str, Any]]:
    """Each filter on a bare name read as the tag although a parameter of that name shows
    too, with how many jobs the parameter's reading keeps (when another number)."""
    out = []
    for read, other in asked.readings:
        filters = [other[:3] if f == read[:3] else f for f in asked.selection.filters]
        chosen = dataclasses.replace(asked.selection, filters=filters, found={})

        def counted(conn: Any, chosen: index.Selection = chosen) -> int:
            return index.job_count(conn, chosen, columns)

        n = await db.execute_fn(snapshot(counted))
        if n != count:
            where = [other[3] if f[3] == read[3] else f[3] for f in asked.filters]
            out.append(
                {"read": read[3], "other": other[3], "count": n,
                 "url": _url_with(request, where=where, page=None)}
            )  # fmt: skip
    return out


def _csv_url(request: Any, datasette: Any, task: str, experiment: str | None) -> str:
    """The CSV export of the table shown: its filters, order and Meta choice, every page."""
    args = [("task", task)] + ([("experiment", experiment)] if experiment else [])
    args += [
        (k, v)
        for k in request.args
        if k in ("where", "sort", "meta")
        for v in request.args.getlist(k)
    ]
    return datasette.urls.path("-/xpm/runs.csv") + "?" + urllib.parse.urlencode(args)


def _upstream_columns(
    rows: list[dict[str, Any]], columns: list[index.Column], chosen: set[str]
) -> list[index.Column]:
    """The upstream jobs' values that tell the rows of a page apart, and those the table
    is sorted or filtered by (``chosen`` keys), as the table's ``columns`` know them."""
    from ._charts import varying

    values: dict[str, dict[str, Any]] = {}
    for row in rows:
        for key, value in row["values"].items():
            values.setdefault(key, {})[row["id"]] = value
    shown = set(varying(values, [r["id"] for r in rows], sorted(values))) | chosen
    known = {c.key: c for c in columns if c.kind == index.UPSTREAM}
    # A value only jobs older than the sampled ones have: shown, from its cells' values.
    extra = [
        index.Column(index.UPSTREAM, k.split(":", 1)[1])
        for k in sorted(shown)
        if k.startswith(f"{index.UPSTREAM}:") and k not in known
    ]
    return [c for k, c in sorted(known.items()) if k in shown] + extra


def _groups(columns: list[index.Column], show_meta: bool) -> list[tuple[str, list[index.Column]]]:
    """The column groups of a runs table, in order: results, tags, parameters, then Meta
    parameters when shown.

    A parameter a tag marks (``model.n_layers`` of the tag ``n_layers``) is the tag's
    column again: shown once, as the tag (its header names the parameter).
    """
    groups = [
        ("results", [c for c in columns if c.kind == "result"]),
        ("tags", [c for c in columns if c.kind == "tag"]),
        (
            "parameters",
            [c for c in columns if c.kind == "param" and not c.meta and not c.marked_by],
        ),
    ]
    if show_meta:
        groups.append(("meta", [c for c in columns if c.meta]))
    return groups


def _url_with(request: Any, **changes: Any) -> str:
    """The current URL with some arguments replaced (None: removed); lists repeat."""
    args = [(k, v) for k in request.args if k not in changes for v in request.args.getlist(k)]
    for key, value in changes.items():
        for v in value if isinstance(value, list) else [value]:
            if v is not None:
                args.append((key, str(v)))
    query = urllib.parse.urlencode(args)
    return request.path + ("?" + query if query else "")


async def _render_runs(
    request: Any, datasette: Any, template: str, context: dict[str, Any]
) -> Response:
    context.update(
        database=DATABASE,
        url_with=lambda **kw: _url_with(request, **kw),
        xpm_duration=_format.duration,
    )
    html = await datasette.render_template(template, context, request=request)
    return Response.html(html)


async def experiment_page(request: Any, datasette: Any) -> Response:
    """An experiment: its runs, its tasks, and the runs table of one task."""
    db = datasette.get_database(DATABASE)
    name = tilde_decode(request.url_vars["name"])
    if not await db.execute_fn(lambda conn: index.has_experiment(conn, name)):
        # Named with the experiments there are (a mistyped or not yet started one).
        names = await db.execute_fn(index.experiments_newest_first)
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        listed = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise NotFound(
            f"no experiment {name!r} in the index (not run yet, or mistyped): {hint}"
            + (f"the experiments are {listed}" if names else "no experiment has run yet")
        )
    runs = await db.execute_fn(lambda conn: index.runs_with_commits(conn, name))
    context = await _runs_context(request, datasette, request.args.get("task"), name)
    context.update(experiment=name, runs=runs)
    return await _render_runs(request, datasette, "xpm_experiment.html", context)


async def runs_page(request: Any, datasette: Any) -> Response:
    """The runs table of every job of a task, whatever experiment submitted it."""
    task = request.url_vars["task"]
    context = await _runs_context(request, datasette, task, None)
    if context["task"] != task:
        raise NotFound(f"no job of task {task!r} in the index")
    context.update(experiment=None, runs=[])
    return await _render_runs(request, datasette, "xpm_experiment.html", context)


# --- compare --------------------------------------------------------------------------------------
async def compare_page(request: Any, datasette: Any) -> Response:
    """Jobs ticked in a runs table (``?id=`` repeated, ids or prefixes) side by side."""
    db = datasette.get_database(DATABASE)
    refs = [r.strip() for r in request.args.getlist("id") if r.strip()]
    at = _compare.AtStep.asked(request.args)  # a chart's point: its jobs reporting there
    errors = []

    def read(conn: Any) -> dict[str, Any]:
        ids: list[str] = []
        for ref in refs[: _compare.MAX_COMPARE]:
            row = index.find_job_row(conn, ref)
            if row is None:
                errors.append(f"no job {ref} (or several start with it: give more digits)")
            elif row["id"] not in ids:
                ids.append(row["id"])
        return {**_compare.compare(conn, ids, at), "active": index.active_job_count(conn)}

    data = await db.execute_fn(snapshot(read))
    if len(refs) > _compare.MAX_COMPARE:
        errors.append(f"only the first {_compare.MAX_COMPARE} jobs are compared")
    jobs = data["jobs"]
    differing = [(p, v) for p, v, differs in data["params"] if differs]
    names = []
    for i, job in enumerate(jobs):
        # A path the job lacks (a job of another task) says nothing about it: left out
        # ("model= lr=" in a legend).
        parts = [
            f"{p.rsplit('.', 1)[-1]}={_format.number(v[i])}"
            for p, v in differing[:3]
            if v[i] is not None
        ]
        names.append(" ".join([job["id"][:8], *parts]))
    charts = {
        key: json.dumps(
            {
                "metric": key,
                "x": "step",
                "series": [
                    {"name": names[i], "points": series[job["id"]]}
                    for i, job in enumerate(jobs)
                    if job["id"] in series
                ],
            }
        ).replace("</", "<\\/")
        for key, series in data["curves"].items()
    }
    context = {
        **data,
        "errors": errors,
        "names": names,
        "charts": charts,
        "database": DATABASE,
        "zone": _format.zone(),
        "live_regions": " ".join(
            ["xpm-compare", *(f"xpm-curve-data-{i}" for i in range(1, len(charts) + 1))]
        ),
    }
    html = await datasette.render_template("xpm_compare.html", context, request=request)
    return Response.html(html)
