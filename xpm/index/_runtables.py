"""Runs tables: one row per job of a task (in an experiment), a column per value.

The web view (:mod:`xpm.datasette`) shows jobs as tables through this module: their
columns, filters, facets and pages (what charts read: :mod:`._chartdata`), so the layout
of the index it relies on (``jobs``, ``params``, ``tags``, ``results``, ``submissions``,
``runs``) is known in this package only.  Every function takes a read-only
:class:`sqlite3.Connection` (the plugin calls them through Datasette's ``execute_fn``) and
returns plain Python values.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .._vocabulary import stored_state
from ._experimentjobs import TaskJobs
from ._query import parse_tag_value
from ._results import split_conditions
from ._shownvalues import AS_SHOWN, PREFIX
from ._upstream import UPSTREAM, upstream_expr
from ._wholetask import others_count, sorted_page, task_states, task_tags
from ._writecount import KeptByWrites

# --- runs tables: one row per job of a task (in an experiment), one column per value -------------
#: Rows of a runs table page, by default and at most.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: Values a facet lists.
FACET_SIZE = 30
_NUMERIC = ("int", "float")


@dataclass(frozen=True)
class Column:
    """A column of a runs table: a parameter path, a tag or a result (its latest value)."""

    kind: str  # "param", "tag", "result" or "upstream" (a value of the job whose output it uses)
    name: str
    numeric: bool = False
    meta: bool = False  # a Meta parameter: not part of the job's identity, hidden by default
    #: On a tag: the parameter path it marks (``model.n_layers`` for ``n_layers``), when
    #: they are one setting (:func:`._runcolumns.task_columns`); None otherwise.
    marks: str | None = None
    #: On a parameter: the key of the tag that marks it (the table shows that tag only).
    marked_by: str | None = None

    @property
    def key(self) -> str:
        """How URLs name the column (``param:lr``, ``tag:seed``, ``result:accuracy``,
        ``upstream:learn.epochs``)."""
        return f"{self.kind}:{self.name}"

    def expr(self) -> str:
        """SQL of the column's value for the job ``j``."""
        name = literal(self.name)
        if self.kind == "param":
            return f"(SELECT value FROM params WHERE job_id = j.id AND path = {name})"
        if self.kind == "tag":
            return f"(SELECT value FROM tags WHERE job_id = j.id AND key = {name})"
        if self.kind == UPSTREAM:
            return upstream_expr(self.name)
        return (
            f"(SELECT value FROM results WHERE job_id = j.id AND key = {name} "
            "ORDER BY seq DESC LIMIT 1)"
        )


#: Columns every runs table has (key -> SQL of the job ``j``).
FIXED = {
    "id": "j.id",
    "state": "j.state",
    "submitted": "j.submit_time",
    "started": "j.start_time",
    "duration": "(COALESCE(j.end_time, CAST(strftime('%s', 'now') AS REAL)) - j.start_time)",
    "commit": "(SELECT commit_sha FROM git_states WHERE id = j.git_state)",
}


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class Selection:
    """Which jobs a runs table shows: a task, optionally one experiment, filters, order.

    ``jobs``: the task's jobs in the experiment when the caller read them
    (:func:`experiment_jobs`); counts, the state facet and the newest-first pages then
    come from them, and filters look among them, without finding them again.
    """

    task: str
    experiment: str | None = None
    filters: list[tuple[str, str, Any]] = field(default_factory=list)  # (key, op, value)
    sort: str = "submitted"
    descending: bool = True
    page: int = 1
    size: int = PAGE_SIZE
    jobs: TaskJobs | None = None
    #: Ids each set of filters kept (by its repr), shared with :meth:`without`'s copies:
    #: a count and the facets of one snapshot find the same jobs once.
    found: dict[str, list[str]] = field(default_factory=dict, repr=False, compare=False)

    def without(self, key: str) -> Selection:
        """The same selection without the filters on ``key`` (a facet's own choices)."""
        kept = [f for f in self.filters if f[0] != key]
        return Selection(
            self.task,
            self.experiment,
            kept,
            self.sort,
            self.descending,
            jobs=self.jobs,
            found=self.found,
        )

    def ids(self, conn: sqlite3.Connection, columns: dict[str, Column]) -> list[str] | None:
        """The ids of the selected jobs among :attr:`jobs` (None when they are not known).

        Filters are applied once per set of filters and kept in :attr:`found`: use it
        within one read snapshot only.
        """
        if self.jobs is None or self.experiment is None:
            return None
        if not self.filters:
            return self.jobs.ids
        key = repr(self.filters)
        if key not in self.found:
            where, args = self.where(columns)
            self.found[key] = [
                r[0] for r in conn.execute(f"SELECT j.id FROM jobs j WHERE {where}", args)
            ]
        return self.found[key]

    def known(self) -> TaskJobs | None:
        """The selected jobs themselves, when no filter narrows :attr:`jobs`."""
        return self.jobs if self.experiment is not None and not self.filters else None

    def where(self, columns: dict[str, Column]) -> tuple[str, dict[str, Any]]:
        """SQL condition on ``jobs j`` and its parameters."""
        args: dict[str, Any] = {"task": self.task}
        clauses = ["j.task_id = :task"]
        if self.experiment is not None and self.jobs is not None:
            # Jobs of the task already: the id alone (the id index covers it) selects them.
            args = {"xpm_jobs": json.dumps(self.jobs.ids)}
            clauses = ["j.id IN (SELECT value FROM json_each(:xpm_jobs))"]
        elif self.experiment is not None:
            args["experiment"] = self.experiment
            clauses.append(
                "j.id IN (SELECT s.job_id FROM submissions s JOIN runs r ON r.id = s.run "
                "WHERE r.experiment = :experiment)"
            )
        # Several "=" on one column: any of the values; everything else: all must hold.
        equal: dict[str, list[Any]] = {}
        for key, op, value in self.filters:
            if op == "=":
                equal.setdefault(key, []).append(value)
        for key, values in equal.items():
            clauses.append(_condition(key, "IN", values, columns, args))
        for key, op, value in self.filters:
            if op != "=":
                clauses.append(_condition(key, op, [value], columns, args))
        return " AND ".join(clauses), args


def _condition(
    key: str, op: str, values: list[Any], columns: dict[str, Column], args: dict[str, Any]
) -> str:
    names = []
    for value in values:
        for candidate in value if isinstance(value, list) else [value]:
            name = f"v{len(args)}"
            args[name] = candidate
            names.append(f":{name}")
    if op == "IN":
        test = f"IN ({', '.join(names)})"
    elif op == "~":
        test = f"LIKE '%' || {names[0]} || '%'"
    elif op == PREFIX:
        test = f"LIKE {names[0]} || '%'"
    else:
        test = f"{op} {names[0]}"
    column = columns.get(key)
    if column is not None and column.kind in ("param", "tag"):
        # Through the (path|key, value, job_id) index rather than row by row.
        table, name = ("params", "path") if column.kind == "param" else ("tags", "key")
        return (
            f"j.id IN (SELECT job_id FROM {table} WHERE {name} = {literal(column.name)} "
            f"AND value {test})"
        )
    expr = column.expr() if column is not None else FIXED[key]
    return f"{expr} {test}"


_FILTER = re.compile(r"^\s*([^<>=!~]+?)\s*(>=|<=|!=|=|>|<|~)\s*(.*?)\s*$")


def parse_filter(text: str, columns: list[Column]) -> tuple[str, str, Any, str]:
    """``lr > 0.01``, ``tag:seed=1``, ``state=FAILED``, ``name~relu`` as (key, op, value, text).

    ``text`` is the filter written with the column's key (``tag:seed=1``), the same
    whichever way it was typed.

    A bare name is a tag, else a parameter path, else a result, else an upstream job's
    value (``learn.epochs``), else the last part of a parameter path (when one path ends
    with it).  ``=`` keeps every reading of the value (``2`` matches the
    integer 2 and the text "2"); comparisons use the number when it is one.  Raises
    ValueError with a message saying what to write instead.
    """
    match = _FILTER.match(text)
    if not match or not match.group(3):
        raise ValueError(
            f"filter {text!r}: write NAME OP VALUE with OP one of = != > >= < <= ~ "
            "(e.g. lr>0.01, n_layers=2, state=FAILED)"
        )
    name, op, raw = match.groups()
    key = column_key(name, columns)
    if key is None:
        # A tag and the parameter it marks are one setting: their name is listed once.
        names = list(dict.fromkeys(c.name for c in columns if c.marked_by is None))
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        more = f" and {len(names) - 8} more: the table's headers" if len(names) > 8 else ""
        raise ValueError(
            f"filter {text!r}: no column {name!r} in this table; {hint}use state or a "
            f"parameter, tag or result name ({', '.join(names[:8])}{more})"
        )
    values = parse_tag_value(raw)
    if key == "state":  # as the facet and `xpm jobs list --state` show them: done, WAITING
        values = [stored_state(v) if isinstance(v, str) else v for v in values]
    elif key in AS_SHOWN:  # a time, a duration or a commit as the table shows it
        op, value = AS_SHOWN[key](text, op, raw)
        return key, op, value, f"{key}{'=' if op == PREFIX else op}{raw}"
    numeric = any(c.key == key and c.numeric for c in columns)
    if numeric and op in ("<", "<=", ">", ">=") and not isinstance(values[0], (int, float)):
        # Compared as text, lr>abc matched nothing and looked like an empty sweep.
        raise ValueError(f"filter {text!r}: {name} holds numbers; {raw!r} is not one")
    return key, op, values if op == "=" else values[0], f"{key}{op}{raw}"


def other_reading(text: str, columns: list[Column]) -> str | None:
    """The filter ``text`` read as a parameter, when it names bare a tag that is also the
    name of a parameter it does not mark (``seed=5``: the tag seed of most runs, and the
    parameter seed of a run that left it untagged, both shown); None otherwise.

    A bare name reads as the tag, so ``seed=5`` kept none of the untagged run's jobs
    although its column showed 5 (a new user's trial): the page offers this reading."""
    match = _FILTER.match(text)
    if not match or ":" in match.group(1):
        return None
    name, op, raw = match.groups()
    key = column_key(name, columns)
    tag = next((c for c in columns if c.key == key and c.kind == "tag"), None)
    if tag is None or tag.marks is not None:
        return None
    params = [
        c
        for c in columns
        if c.kind == "param"
        and not c.meta
        and c.marked_by is None
        and (c.name == name or c.name.endswith("." + name))
    ]
    return f"{params[0].key}{op}{raw}" if len(params) == 1 else None


def parse_filters(text: str, columns: list[Column]) -> list[tuple[str, str, Any, str]]:
    """The filters of one filter box: :func:`parse_filter` for each condition of ``text``
    (separated by commas or ``and``, as ``xpm results --where`` reads them)."""
    out = []
    for part in split_conditions(text, what="filter"):  # as the box's other errors say
        if not part.strip():
            continue
        match = _FILTER.match(part)
        if match and re.search(r"\s", match.group(3)) and match.group(3)[:1] not in "'\"":
            # `lr>0.01 seed=1` read as one value matched nothing.
            raise ValueError(
                f"filter {part.strip()!r}: the value {match.group(3)!r} has spaces: separate "
                "conditions with commas (lr>0.01, seed=1), or quote a text value"
            )
        out.append(parse_filter(part, columns))
    return out


def column_key(name: str, columns: list[Column]) -> str | None:
    """The key of the column a filter or a sort names (``lr``, ``tag:lr``, ``n_layers`` for
    ``model.n_layers``, ``state``): a tag first, then a parameter, a result, an upstream
    value; None when no column has that name."""
    if name in FIXED:
        return name
    by_key = {c.key: c for c in columns}
    if name in by_key:
        return name
    for kind in ("tag", "param", "result", UPSTREAM):
        if f"{kind}:{name}" in by_key:
            return f"{kind}:{name}"
    ends = [c.key for c in columns if c.kind == "param" and c.name.endswith("." + name)]
    return ends[0] if len(ends) == 1 else None


def distinct_values(conn: sqlite3.Connection, table: str, name: str) -> list[str]:
    """Every distinct value of the indexed column ``name`` of ``table``, one seek each."""
    return [
        r[0]
        for r in conn.execute(
            f"WITH RECURSIVE k(v) AS (SELECT MIN({name}) FROM {table} UNION ALL "
            f"SELECT (SELECT MIN({name}) FROM {table} WHERE {name} > k.v) FROM k "
            "WHERE k.v IS NOT NULL) SELECT v FROM k WHERE v IS NOT NULL"
        )
    ]


def job_count(conn: sqlite3.Connection, selection: Selection, columns: list[Column]) -> int:
    """How many jobs ``selection`` keeps (on all its pages)."""
    by_key = {c.key: c for c in columns}
    ids = selection.ids(conn, by_key)
    if ids is not None:
        return len(ids)
    where, args = selection.where(by_key)
    return int(conn.execute(f"SELECT COUNT(*) FROM jobs j WHERE {where}", args).fetchone()[0])


def runs_table(
    conn: sqlite3.Connection,
    selection: Selection,
    columns: list[Column],
    total: int | None = None,
    kept: KeptByWrites | None = None,
) -> dict[str, Any]:
    """One page of a runs table: ``count``, ``rows`` (job fields and ``values`` by key).

    ``total``: the :func:`job_count` of ``selection`` when the caller knows it.  ``kept``:
    what a task's table over every job keeps while no job's settings are written
    (:mod:`._wholetask`).
    """
    count = total if total is not None else job_count(conn, selection, columns)
    return {
        "count": count,
        "rows": page_rows(conn, page_ids(conn, selection, columns, count, kept)),
    }


def ordered_ids(
    conn: sqlite3.Connection,
    selection: Selection,
    columns: list[Column],
    kept: KeptByWrites | None = None,
) -> list[str]:
    """The ids of every job ``selection`` keeps, on all its pages, in its order (an
    export of the table)."""
    count = job_count(conn, selection, columns)
    every = dataclasses.replace(selection, page=1, size=max(count, 1))
    return page_ids(conn, every, columns, count, kept)


def page_ids(
    conn: sqlite3.Connection,
    selection: Selection,
    columns: list[Column],
    count: int,
    kept: KeptByWrites | None = None,
) -> list[str]:
    """The ids of the jobs of one page of ``selection`` (of ``count`` jobs), in order."""
    by_key = {c.key: c for c in columns}
    where, args = selection.where(by_key)
    column = by_key.get(selection.sort)
    order = column.expr() if column is not None else FIXED.get(selection.sort, FIXED["submitted"])
    direction = "DESC" if selection.descending else "ASC"
    offset = (selection.page - 1) * selection.size
    args = {**args, "limit": selection.size, "offset": offset}
    ids: list[str] | None = None
    known = selection.known()
    if column is not None and column.kind in ("param", "tag"):
        if _whole_task(conn, selection, kept) is not None:
            ids = sorted_page(
                conn, selection.task, column.kind, column.name, selection.descending,
                offset, selection.size, count, kept,
            )  # fmt: skip
    elif known is not None and selection.sort == "submitted" and selection.descending:
        ids = known.ids[offset : offset + selection.size]  # already in order
    if ids is None:
        # Ties go in the sort's direction, the order of the (name, value, job_id) index
        # that sorted_page reads (ties the other way: 107 ms instead of 4 at page 1,000).
        ids = [
            r[0]
            for r in conn.execute(
                f"SELECT j.id FROM jobs j WHERE {where} ORDER BY {order} {direction} "
                f"NULLS LAST, j.id {direction} LIMIT :limit OFFSET :offset",
                args,
            )
        ]
    return ids


def _whole_task(
    conn: sqlite3.Connection, selection: Selection, kept: KeptByWrites | None
) -> int | None:
    """How many jobs other tasks hold when ``selection`` is every job of its task (no
    experiment, no filter) and they are fewer (:mod:`._wholetask`); None otherwise."""
    if selection.experiment is not None or selection.filters:
        return None
    return others_count(conn, selection.task, kept)


def page_rows(
    conn: sqlite3.Connection, ids: list[str], result: str | None = None, meta: bool = True
) -> list[dict[str, Any]]:
    """The jobs ``ids`` in that order, each with ``values``: its params, tags and results
    (the latest report of each), and ``steps``: result name -> the step of that report.

    ``result``: read only that result (charts), not all of them.  ``meta=False`` leaves
    the Meta parameters out (charts: they never tell jobs apart; jobs recorded before
    schema 5 have no flag and keep theirs).
    """
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    cursor = conn.execute(
        "SELECT j.id, j.task_id, j.state, j.reason, j.submit_time, j.last_submitted, j.start_time, "
        "j.end_time, g.commit_sha, g.dirty, j.git_state FROM jobs j "
        f"LEFT JOIN git_states g ON g.id = j.git_state WHERE j.id IN ({marks})",
        ids,
    )
    names = [d[0] for d in cursor.description]
    jobs = {
        row[0]: {**dict(zip(names, row, strict=True)), "values": {}, "steps": {}} for row in cursor
    }
    for kind, sql in (
        (
            "param",
            f"SELECT job_id, path, value FROM params WHERE job_id IN ({marks})"
            + ("" if meta else " AND meta IS NOT 1"),
        ),
        ("tag", f"SELECT job_id, key, value FROM tags WHERE job_id IN ({marks})"),
        (
            "result",
            # The step of the latest report too (SQLite takes it from the MAX(seq) row).
            f"SELECT job_id, key, value, MAX(seq), step FROM results WHERE job_id IN ({marks}) "
            + ("AND key = ? " if result is not None else "")
            + "GROUP BY job_id, key",
        ),
    ):
        args = [*ids, result] if kind == "result" and result is not None else ids
        for job_id, name, value, *rest in conn.execute(sql, args):
            jobs[job_id]["values"][f"{kind}:{name}"] = value
            if kind == "result":
                jobs[job_id]["steps"][name] = rest[1]
    return [jobs[i] for i in ids if i in jobs]


def facets(
    conn: sqlite3.Connection,
    selection: Selection,
    columns: list[Column],
    kept: KeptByWrites | None = None,
) -> list[dict[str, Any]]:
    """Counts of the selected jobs per state and per value of each tag (``kept``: as for
    :func:`runs_table`)."""
    by_key = {c.key: c for c in columns}
    where, args = selection.without("state").where(by_key)
    whole = _whole_task(conn, selection, kept)
    ids = selection.without("state").ids(conn, by_key)
    if ids is not None and selection.jobs is not None:
        state_of = dict(zip(selection.jobs.ids, selection.jobs.states, strict=True))
        found = Counter(state_of[i] for i in ids)
        states = sorted(found.items(), key=lambda s: (-s[1], s[0] or ""))
    elif whole is not None:  # every job's states (the state index), less the other tasks'
        states = task_states(conn, selection.task, whole)
    else:
        states = conn.execute(
            f"SELECT j.state, COUNT(*) FROM jobs j WHERE {where} "
            "GROUP BY j.state ORDER BY COUNT(*) DESC, j.state",
            args,
        ).fetchall()
    out: list[dict[str, Any]] = [{"key": "state", "values": states}]
    # Tags nobody filters on are counted in one pass over the selected jobs; a tag that is
    # filtered on is counted without its own filter (so its other values stay in sight).
    tags = [c for c in columns if c.kind == "tag"]
    filtered = {key for key, _op, _value in selection.filters}
    counts: dict[str, list[tuple[Any, int]]] = {}
    passes = [(selection, [c for c in tags if c.key not in filtered])]
    passes += [(selection.without(c.key), [c]) for c in tags if c.key in filtered]
    for chosen, group in passes:
        if not group:
            continue
        where, args = chosen.where(by_key)
        names = {c.name: c.key for c in group}
        keys = ",".join(literal(n) for n in names)
        sql = (
            f"SELECT t.key, t.value, COUNT(*) FROM jobs j JOIN tags t ON t.job_id = j.id "
            f"WHERE t.key IN ({keys}) AND {where} GROUP BY t.key, t.value "
            "ORDER BY t.key, t.value"
        )
        # Every job (the table, or a tag's own facet when that tag's filter is the only
        # one: 400 ms over 100,000 jobs row by row): the (key, value) index alone, less
        # the other tasks' jobs.
        others = whole if chosen is selection else _whole_task(conn, chosen, kept)
        if others is not None:
            for key, value, count in task_tags(conn, selection.task, others, list(names), kept):
                counts.setdefault(names[key], []).append((value, count))
            continue
        chosen_ids = chosen.ids(conn, by_key)
        if chosen_ids is not None:  # the jobs are known: their tags, by primary key
            tagged = _tags_of(conn, chosen_ids, keys, kept)
        else:
            tagged = conn.execute(sql, args).fetchall()
        for key, value, count in tagged:
            counts.setdefault(names[key], []).append((value, count))
    for column in tags:
        listed = counts.get(column.key, [])
        out.append({"key": column.key, "values": listed[: FACET_SIZE + 1], "distinct": len(listed)})
    return out


def _tags_of(
    conn: sqlite3.Connection, ids: list[str], keys: str, kept: KeptByWrites | None
) -> list[tuple[str, Any, int]]:
    """(key, value, jobs) of the tags ``keys`` (SQL literals) over the jobs ``ids``;
    ``kept``: kept while none of these jobs is added (written over), removed or written
    with other settings (their tags are written with their row only), whatever else is
    (70-120 ms over an experiment's 10,000 jobs)."""

    def now() -> list[tuple[str, Any, int]]:
        # CROSS JOIN keeps the ids outside: SQLite chose to read every row of the tag and
        # look each up among the ids (1.1 s for a filtered table of 2,000 jobs beside
        # 2,000 other jobs with the tag; 10 ms this way).
        return conn.execute(
            "SELECT t.key, t.value, COUNT(*) FROM json_each(:xpm_ids) sel "
            f"CROSS JOIN tags t ON t.job_id = sel.value AND t.key IN ({keys}) "
            "GROUP BY t.key, t.value ORDER BY t.key, t.value",
            {"xpm_ids": json.dumps(ids)},
        ).fetchall()

    if kept is None:
        return now()
    return kept.get(
        conn,
        ("tags of jobs", keys, len(ids), ids[0] if ids else None),
        now,
        also=tuple(ids),
        update=lambda old, changes: old if changes.settings_changed.isdisjoint(ids) else None,
    )


def selected_ids(conn: sqlite3.Connection, selection: Selection, limit: int) -> list[str]:
    """Ids of the jobs of ``selection`` (newest first), at most ``limit``."""
    where, args = selection.where({})
    return [
        r[0]
        for r in conn.execute(
            f"SELECT j.id FROM jobs j WHERE {where} ORDER BY j.submit_time DESC LIMIT {int(limit)}",
            args,
        )
    ]
