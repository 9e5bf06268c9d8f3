"""A sweep as one table: the rows of a task table, filtered, sorted and grouped.

:func:`results` is ``xpm.results(...)`` and what ``xpm results`` prints.  User text never
becomes SQL: ``--where`` is parsed here into (column, operator, value) triples, columns are
checked against the task table (a near miss gets "did you mean"), and values are bound
parameters.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._humanize import short_value
from .._vocabulary import shown_state, stored_state
from ..errors import UsageError
from ._shownvalues import seconds_of
from ._tasktables import TaskTable, quote, task_tables

if TYPE_CHECKING:
    import pandas

    from ._db import IndexDB

#: Operators of ``--where`` (SQL spelling).
OPERATORS = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    "<>": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
}
#: Values a no-match note lists (this one and the web's, :mod:`._nomatch`); past that, a
#: range.
LISTED = 6
#: Aggregations of ``--agg``.
AGGREGATES = ("mean", "std", "min", "max", "count", "median")

_NAME = r'"(?:[^"]|"")+"|`[^`]+`|[A-Za-z_][\w.:~-]*'
_CONDITION = re.compile(rf"^\s*({_NAME})\s*(==|!=|<>|<=|>=|=|<|>)\s*(.*?)\s*$", re.S)


class ResultRows(list[dict[str, Any]]):
    """Rows of :func:`results` (dicts), with the column order and a pandas conversion."""

    def __init__(
        self,
        rows: Sequence[dict[str, Any]],
        columns: Sequence[str],
        task: str,
        unmatched: Sequence[str] = (),
    ):
        super().__init__(rows)
        self.columns = list(columns)
        self.task = task
        #: When no job matched: what each filter keeps alone, or the values its column
        #: holds when it keeps none (``lr>5 keeps none: lr runs from 0.01 to 1``).
        self.unmatched = list(unmatched)

    def to_pandas(self) -> pandas.DataFrame:
        """The rows as a pandas DataFrame (columns in order; pandas infers their types).

        pandas is optional: ``pip install pandas`` when this raises ImportError.
        """
        try:
            import pandas
        except ImportError:
            raise ImportError(
                "ResultRows.to_pandas() needs pandas, an optional dependency: pip install pandas"
            ) from None
        return pandas.DataFrame.from_records(list(self), columns=self.columns)


@dataclass(frozen=True)
class Condition:
    """One parsed comparison of ``--where``: a checked column, an SQL operator, a value."""

    column: str
    op: str
    value: Any


# --- parsing ---------------------------------------------------------------------------------
def split_conditions(text: str, what: str = "--where") -> list[str]:
    """``a=1, b>2 and c='x, y'`` -> its comparisons (commas and ``and`` outside quotes)."""
    parts, current, quote_char = [], [], ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote_char:
            current.append(ch)
            if ch == quote_char:
                quote_char = ""
        elif ch in "'\"`":
            quote_char = ch
            current.append(ch)
        elif ch == ",":
            parts.append("".join(current))
            current = []
        elif re.match(r"\s+and\s+", text[i:], re.I) and current:
            parts.append("".join(current))
            current = []
            i += len(re.match(r"\s+and\s+", text[i:], re.I).group(0))  # type: ignore[union-attr]
            continue
        else:
            current.append(ch)
        i += 1
    if quote_char:
        raise UsageError(f"{what} {text!r}: a quote {quote_char} is not closed")
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_value(text: str) -> Any:
    """A ``--where`` value: quoted text as it is, numbers, true/false (1/0), null (None)."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    low = text.lower()
    if low in ("true", "false"):
        return 1 if low == "true" else 0
    if low in ("null", "none"):
        return None
    for convert in (int, float):
        try:
            value = convert(text)
        except ValueError:
            continue
        if isinstance(value, float) and math.isnan(value):
            break
        return value
    return text


def resolve_column(table: TaskTable, name: str, what: str = "column") -> str:
    """The column of ``table`` that ``name`` means: its name (any case), or the key of one
    column (``n_layers`` for the parameter ``model.n_layers`` when only one ends so)."""
    if len(name) >= 2 and name[0] == name[-1] and name[0] in '"`':
        name = name[1:-1].replace('""', '"')
    lowered = {c.lower(): c for c in table.columns}
    if name.lower() in lowered:
        return lowered[name.lower()]
    by_key = [c for c, (_, key) in table.kinds.items() if key.lower() == name.lower()]
    if len(by_key) == 1:
        return by_key[0]
    by_tail = [
        c
        for c, (kind, key) in table.kinds.items()
        if kind in ("param", "meta") and key.lower().rsplit(".", 1)[-1] == name.lower()
    ]
    if len(by_tail) == 1:
        return by_tail[0]
    close = difflib.get_close_matches(name, table.columns, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    ambiguous = f"it may be {', '.join(by_key or by_tail)}; " if by_key or by_tail else ""
    raise UsageError(
        f"unknown {what} {name!r} in the table {table.name!r} of task {table.task_id}: "
        f"{ambiguous}{hint}`xpm query --schema` lists its columns"
    )


def parse_where(table: TaskTable, text: str) -> list[Condition]:
    """The comparisons of a ``--where`` text, columns checked against ``table``."""
    out = []
    for part in split_conditions(text):
        match = _CONDITION.match(part)
        if match is None or not match.group(3):
            raise UsageError(
                f"--where {part!r}: write COLUMN OP VALUE with OP one of "
                "= != < <= > >= (e.g. lr>0.01, optimizer=adam, name='a b')"
            )
        column = resolve_column(table, match.group(1))
        value = match.group(3)
        quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
        if not quoted and any(c.isspace() for c in value):
            # `lr=0.1 or lr=0.01`, `lr=0.1 seed=0`: read as one text value, they matched
            # nothing without a word.
            raise UsageError(
                f"--where {part!r}: the value {value!r} has spaces: separate conditions with "
                f"commas (lr>0.01, seed=0; there is no 'or'), or quote a text value "
                f"({match.group(1)}='{value}')"
            )
        parsed = parse_value(value)
        if column == "state" and isinstance(parsed, str):
            parsed = stored_state(parsed)  # as --state takes them: any case, WAITING
        elif column == "duration":  # as the tables show it (0.3s, 5m): it matched nothing
            parsed = seconds_of(value)
            if parsed is None:
                raise UsageError(
                    f"--where {part!r}: write a duration in seconds or with s, m, h or d "
                    "(e.g. duration>5m)"
                )
        out.append(Condition(column, OPERATORS[match.group(2)], parsed))
    return out


# --- the query -------------------------------------------------------------------------------
def _find_table(
    tables: list[TaskTable], task: str | None, experiment_ids: set[str] | None
) -> TaskTable:
    if not tables:
        raise UsageError("the index has no jobs yet: run an experiment first")
    if task:
        low = task.lower()
        for t in tables:
            if low in (t.name.lower(), t.task_id.lower()):
                return t
        tails = [t for t in tables if t.task_id.lower().rsplit(".", 1)[-1] == low]
        if len(tails) == 1:
            return tails[0]
        names = [t.name for t in tables]
        close = difflib.get_close_matches(task, names, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise UsageError(f"no task {task!r} in the index: {hint}tasks: {', '.join(names)}")
    candidates = [t for t in tables if experiment_ids is None or t.task_id in experiment_ids]
    with_results = [t for t in candidates if any(k[0] == "result" for k in t.kinds.values())]
    if len(candidates) == 1:
        return candidates[0]
    if len(with_results) == 1:
        return with_results[0]
    listed = ", ".join(t.name for t in (with_results or candidates))
    raise UsageError(f"several tasks have results ({listed}): name one, e.g. `xpm results TASK`")


def default_columns(table: TaskTable, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """What a person comparing runs wants to see: id, state, the tags, the parameters that
    vary (and are not tags; Meta parameters are not settings), the results, the duration."""
    kinds = {c: table.kinds.get(c, ("job", c))[0] for c in table.columns}
    ordered = sorted(table.columns, key=lambda c: table.kinds.get(c, ("", c))[1].lower())
    tags = [c for c in ordered if kinds[c] == "tag"]
    tagged = {table.kinds[c][1] for c in tags}
    varying = [
        c
        for c in ordered
        if kinds[c] == "param"
        and table.kinds[c][1].rsplit(".", 1)[-1] not in tagged
        and len({repr(r.get(c)) for r in rows}) > 1
    ]
    results_ = [c for c in ordered if kinds[c] == "result"]
    return ["id", "state", *tags, *varying, *results_, "duration"]


def _aggregate(values: list[Any], how: str) -> Any:
    if how == "count":
        # The values there are, as SQL's COUNT(column): a job that failed before reporting
        # the result holds NULL and is not counted (a mean over 19 values says 19, not 20).
        return sum(1 for v in values if v is not None)
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not numbers:
        return None
    if how == "mean":
        return sum(numbers) / len(numbers)
    if how == "std":
        if len(numbers) < 2:
            return None
        mean = sum(numbers) / len(numbers)
        return math.sqrt(sum((x - mean) ** 2 for x in numbers) / (len(numbers) - 1))
    if how == "min":
        return min(numbers)
    if how == "max":
        return max(numbers)
    numbers.sort()
    mid = len(numbers) // 2
    return numbers[mid] if len(numbers) % 2 else (numbers[mid - 1] + numbers[mid]) / 2


def group_rows(
    rows: Sequence[Mapping[str, Any]],
    by: Sequence[str],
    columns: Sequence[str],
    aggs: Sequence[str],
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows grouped by the ``by`` columns, each of ``columns`` aggregated as ``aggs`` say
    (``accuracy_mean``, ``accuracy_std``, ``accuracy_count``: its values in the group)."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for member in rows:
        groups.setdefault(tuple(member.get(c) for c in by), []).append(member)
    out_columns = [*by, *(f"{c}_{a}" for c in columns for a in aggs)]
    out: list[dict[str, Any]] = []
    for key, members in groups.items():
        row: dict[str, Any] = dict(zip(by, key, strict=True))
        for c in columns:
            for a in aggs:
                row[f"{c}_{a}"] = _aggregate([m.get(c) for m in members], a)
        out.append(row)
    return out, out_columns


def _sort_key(value: Any) -> tuple[int, Any]:
    # NULLs last, numbers before text, whatever the order asked.
    if value is None:
        return (2, 0)
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value))


def query_results(
    db: IndexDB,
    *,
    task: str | None = None,
    experiment: str | None = None,
    tags: Mapping[str, Any] | None = None,
    where: str | Sequence[str] | None = None,
    sort: str | Sequence[str] | None = None,
    columns: str | Sequence[str] | None = None,
    group_by: str | Sequence[str] | None = None,
    agg: str | Sequence[str] | None = None,
) -> ResultRows:
    """The rows of one task table as :func:`results` describes them, on an open index."""
    with db.errors():
        tables = task_tables(db.conn)
        experiment_tasks = None
        if experiment:
            experiment_tasks = {
                r[0]
                for r in db.conn.execute(
                    "SELECT DISTINCT j.task_id FROM jobs j JOIN submissions s ON s.job_id = j.id "
                    "JOIN runs r ON r.id = s.run WHERE r.experiment = ?",
                    (experiment,),
                )
            }
        table = _find_table(tables, task, experiment_tasks)
        base: list[str] = []  # the jobs looked at: the experiment's
        base_params: list[Any] = []
        if experiment:
            base.append(
                "id IN (SELECT s.job_id FROM submissions s JOIN runs r ON r.id = s.run "
                "WHERE r.experiment = ?)"
            )
            base_params.append(experiment)
        filters = _filters(table, tags, where)
        conditions = base + [f.sql for f in filters]
        params = base_params + [v for f in filters for v in f.params]
        order = []
        for item in _names(sort):
            desc = item.startswith("-")
            column = resolve_column(table, item.lstrip("-+"), "sort column")
            order.append((column, desc))
        sql = f"SELECT * FROM {quote(table.name)}"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        # NULLs last whatever the direction; then oldest first, as runs were started.
        sql += " ORDER BY " + ", ".join(
            [f"{quote(c)} IS NULL, {quote(c)} {'DESC' if d else 'ASC'}" for c, d in order]
            + ["start_time IS NULL, start_time", "id"]
        )
        rows = db.query_dicts(sql, params)
        unmatched = _unmatched(db, table, base, base_params, filters) if not rows else []
    if group_by:
        by = [resolve_column(table, c, "group-by column") for c in _names(group_by)]
        aggs = _names(agg) or ["mean", "std", "count"]
        bad = [a for a in aggs if a not in AGGREGATES]
        if bad:
            raise UsageError(f"--agg {bad[0]!r}: use some of {', '.join(AGGREGATES)}")
        if columns:
            chosen = [resolve_column(table, c) for c in _names(columns)]
        else:
            chosen = [c for c in table.columns if table.kinds.get(c, ("",))[0] == "result"]
        grouped, out_columns = group_rows(rows, by, [c for c in chosen if c not in by], aggs)
        grouped.sort(key=lambda r: tuple(_sort_key(r.get(c)) for c in by))
        for column, desc in reversed(order):  # stable sorts: the first key last
            if column in by:
                keyed = [(_sort_key(r.get(column)), r) for r in grouped]
                keyed.sort(key=lambda pair: pair[0], reverse=desc)
                grouped = [r for _, r in keyed]
        return ResultRows(grouped, out_columns, table.task_id, unmatched)
    if agg:
        raise UsageError("--agg needs --group-by (e.g. --group-by lr --agg mean,std)")
    if columns:
        names = _names(columns)
        shown = list(table.columns) if names == ["*"] else [resolve_column(table, c) for c in names]
    else:
        shown = default_columns(table, rows)
    return ResultRows([{c: r.get(c) for c in shown} for r in rows], shown, table.task_id, unmatched)


@dataclass(frozen=True)
class _Filter:
    """One ``--tag`` or ``--where`` condition: as typed, its column, its SQL."""

    text: str
    column: str
    sql: str
    params: list[Any]


def _filters(
    table: TaskTable, tags: Mapping[str, Any] | None, where: str | Sequence[str] | None
) -> list[_Filter]:
    from ._query import parse_tag_value

    out = []
    for key, value in (tags or {}).items():
        column = _tag_column(table, str(key))
        values = parse_tag_value(value) if isinstance(value, str) else [value]
        sql = f"{quote(column)} IN ({','.join('?' * len(values))})"
        out.append(_Filter(f"--tag {key}={value}", column, sql, list(values)))
    for text in [where] if isinstance(where, str) else list(where or ()):
        for part in split_conditions(text):
            for c in parse_where(table, part):
                said, name = part.strip(), quote(c.column)
                if c.value is None:
                    sql = f"{name} IS {'NOT ' if c.op == '!=' else ''}NULL"
                    out.append(_Filter(said, c.column, sql, []))
                elif c.op in ("=", "!=") and isinstance(c.value, str):
                    # Text from the command line also matches typed values ("3" matches 3).
                    values = parse_tag_value(c.value)
                    neg = "NOT " if c.op == "!=" else ""
                    sql = f"{name} {neg}IN ({','.join('?' * len(values))})"
                    out.append(_Filter(said, c.column, sql, list(values)))
                else:
                    out.append(_Filter(said, c.column, f"{name} {c.op} ?", [c.value]))
    return out


def _unmatched(
    db: IndexDB, table: TaskTable, base: list[str], params: list[Any], filters: list[_Filter]
) -> list[str]:
    """Why no job matched ``filters``: what each keeps alone and, when nothing, the values
    its column holds (``lr>5 keeps none: lr runs from 0.01 to 1``)."""
    if not filters:
        return []
    name = quote(table.name)
    notes, kept = [], 0
    for f in filters:
        where = " AND ".join([*base, f.sql])
        n = db.conn.execute(f"SELECT COUNT(*) FROM {name} WHERE {where}", params + f.params)
        count = int(n.fetchone()[0])
        kept += count > 0
        if count:
            notes.append(f"{f.text} alone keeps {count} job{'' if count == 1 else 's'}")
            continue
        column, among = quote(f.column), " AND ".join(base) or "1"
        low, high = db.conn.execute(
            f"SELECT MIN({column}), MAX({column}) FROM {name} WHERE {among} "
            f"AND typeof({column}) IN ('integer', 'real')",
            params,
        ).fetchone()
        values = [
            r[0]
            for r in db.conn.execute(
                f"SELECT DISTINCT {column} FROM {name} WHERE {among} AND {column} IS NOT NULL "
                f"ORDER BY 1 LIMIT {LISTED + 1}",
                params,
            )
        ]
        times = f.column in ("start_time", "end_time", "duration")
        # A few values are listed (width=48 among 32 and 64 is not "from 32 to 64").
        if low is not None and f.column != "state" and (times or len(values) > LISTED):
            shown = _shown(f.column)
            held = f"is {shown(low)}" if low == high else f"runs from {shown(low)} to {shown(high)}"
        elif values:
            if f.column == "state":  # as the tables show them: WAITING, not UNSCHEDULED
                values = list(dict.fromkeys(shown_state(v) for v in values))
            more = ", ..." if len(values) > LISTED else ""
            held = "holds " + ", ".join(map(short_value, values[:LISTED])) + more
        else:
            held = "has no value in any job"
        notes.append(f"{f.text} keeps none: {f.column} {held}")
    if kept == len(filters) and len(filters) > 1:
        notes.append("each keeps jobs alone, but no job meets them all")
    return notes


def _shown(column: str) -> Callable[[float], str]:
    """How a number of ``column`` reads in a note: times as local dates, seconds with s."""
    if column in ("start_time", "end_time"):
        import time

        return lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
    if column == "duration":
        return lambda t: f"{t:.1f}s"
    return short_value


def _tag_column(table: TaskTable, key: str) -> str:
    for column, (kind, k) in table.kinds.items():
        if kind == "tag" and k == key:
            return column
    tags = [k for kind, k in table.kinds.values() if kind == "tag"]
    close = difflib.get_close_matches(key, tags, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise UsageError(
        f"--tag {key}: task {table.task_id} has no tag {key!r}: {hint}"
        f"its tags: {', '.join(tags) or '(none)'}"
    )


def _names(value: str | Sequence[str] | None) -> list[str]:
    items = [value] if isinstance(value, str) else list(value or ())
    return [n.strip() for item in items for n in item.split(",") if n.strip()]


def results(
    workdir: str | os.PathLike[str],
    task: str | None = None,
    experiment: str | None = None,
    tags: Mapping[str, Any] | None = None,
    where: str | Sequence[str] | None = None,
    **options: Any,
) -> ResultRows:
    """The results of a sweep as rows: one dict per job of ``task`` (a task id, its last
    part or its table name; may be omitted when only one task has results).

    ``experiment``: jobs submitted by a run of it; ``tags``: ``{"lr": 0.1}``; ``where``:
    comparisons such as ``"lr>0.01, optimizer=adam"`` (see ``xpm results --help``);
    ``options``: ``sort``, ``columns``, ``group_by``, ``agg`` as on the command line.
    ``.to_pandas()`` gives a DataFrame when pandas is installed.
    """
    from ._db import IndexDB, index_path

    path = index_path(Path(workdir))
    # Writable when it may be: running jobs' states and new results are recorded first.
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    index = IndexDB(Path(workdir), readonly=not writable)
    with index:
        settle_active(index)
        return query_results(
            index, task=task, experiment=experiment, tags=tags, where=where, **options
        )


def settle_active(index: IndexDB) -> None:
    """Reconcile the jobs the index says are active, and those not started whose directory
    has moved on (:func:`~xpm.index._query.may_have_moved_on`), with their directories and
    add the results they appended since (see :func:`~xpm.index._query.reconcile`)."""
    from .._vocabulary import ACTIVE_STATES
    from ._ingest import catch_up_readers
    from ._query import may_have_moved_on, reconcile

    states = (*ACTIVE_STATES, "UNSCHEDULED")
    with index.errors():
        candidates = index.query_dicts(
            f"SELECT * FROM jobs WHERE state IN ({','.join('?' * len(states))})", states
        )
    moved = may_have_moved_on(index, candidates)
    reconcile(index, moved)
    catch_up_readers(index, moved)
