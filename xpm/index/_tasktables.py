"""One table per task: a row per job, a column per parameter, tag and latest result.

The tables are derived from the ``jobs``, ``params``, ``tags`` and ``results`` tables by
:func:`refresh_task_rows`, the one row function that the recorder, readers settling jobs,
the migration and :func:`~xpm.index.rebuild` all call after writing those, so a live
index and a rebuilt one hold the same per-task tables.  ``task_tables`` names each task's
table and ``task_columns`` says where each column comes from.

Names (a pure function of the keys present, so the order in which jobs arrive does not
matter; a table or column is renamed when a new name makes the rule choose another):

- table: the last part of the task id (``evaluate`` for ``mymodule.evaluate``), unless
  another task has the same last part or a table or view of the index has that name; then
  the whole task id; ``task:<task id>`` if even that is taken;
- columns: the fixed columns (:data:`FIXED`) first; then each result, tag, parameter and
  Meta parameter path under its own name, in that order of precedence: a name already
  taken (compared without case, as SQLite does) gets the kind as a prefix (``tag:loss``
  when a result ``loss`` exists, ``param:n_layers`` beside a tag ``n_layers``), then
  ``~2``, ``~3``...
- at most :data:`MAX_COLUMNS` columns per table (SQLite's limit is 2000): keys beyond it
  stay in ``params``, ``tags`` and ``results`` only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._schema import INDEXES, TABLE_NAMES, VIEWS

#: Columns every task table starts with (from ``jobs``, its last run and git state).
FIXED: tuple[str, ...] = (
    "id",
    "state",
    "experiment",
    "commit_sha",
    "start_time",
    "end_time",
    "duration",
)
#: Where each fixed column comes from (``j``: jobs, ``r``: runs, ``g``: git_states).
_FIXED_SQL = (
    "j.id, j.state, r.experiment, g.commit_sha, j.start_time, j.end_time, j.end_time - j.start_time"
)
#: Kinds of columns in order of precedence for a name (``meta``: a Meta parameter).
KINDS: tuple[str, ...] = ("result", "tag", "param", "meta")
#: Columns per task table beyond the fixed ones.
MAX_COLUMNS = 1000

_RESERVED = frozenset(
    n.lower() for n in (*TABLE_NAMES, *(v.name for v in VIEWS), *(i.name for i in INDEXES))
)


def quote(name: str) -> str:
    """``name`` as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _chunks(items: Sequence[str], n: int = 500) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


# --- naming rules ------------------------------------------------------------------------
def table_names(task_ids: Iterable[str]) -> dict[str, str]:
    """The table name of every task id (see the module's rule)."""
    ids = sorted(set(task_ids))
    shorts: dict[str, int] = {}
    for t in ids:
        short = t.rsplit(".", 1)[-1].lower()
        shorts[short] = shorts.get(short, 0) + 1
    out: dict[str, str] = {}
    taken = set(_RESERVED)
    lowered = {i.lower() for i in ids}
    for t in ids:
        short = t.rsplit(".", 1)[-1]
        low = short.lower()
        if shorts[low] == 1 and low not in taken and (low == t.lower() or low not in lowered):
            name = short
        elif t.lower() not in taken:
            name = t
        else:
            name = f"task:{t}"
        taken.add(name.lower())
        out[t] = name
    return out


def column_names(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The column name of every (kind, key) of one task (see the module's rule)."""
    by_kind: dict[str, list[str]] = {k: [] for k in KINDS}
    for kind, key in set(keys):
        by_kind[kind].append(key)
    taken = {c.lower() for c in FIXED}
    out: dict[tuple[str, str], str] = {}
    for kind in KINDS:
        for key in sorted(by_kind[kind]):
            name = key if key.lower() not in taken else f"{kind}:{key}"
            base, n = name, 1
            while name.lower() in taken:
                n += 1
                name = f"{base}~{n}"
            taken.add(name.lower())
            out[(kind, key)] = name
    return out


# --- the row function ------------------------------------------------------------------------
@dataclass
class TaskRows:
    """The wide rows of some jobs, by task: fixed values and (kind, key) -> value."""

    fixed: dict[str, tuple[Any, ...]]  # job id -> FIXED values
    task_of: dict[str, str]  # job id -> task id
    values: dict[str, dict[tuple[str, str], Any]]  # job id -> (kind, key) -> value


def values_of(
    params: Iterable[tuple[str, Any, str]],
    tags: Iterable[tuple[str, Any, str]],
    results: Iterable[Mapping[str, Any]],
    meta: Collection[str] = (),
) -> dict[tuple[str, str], Any]:
    """A job's (kind, key) -> value from the rows just written to ``params`` (``meta``: the
    paths that are Meta parameters), ``tags`` and (all of its) ``results``: what
    :func:`read_task_rows` would read back, without reading."""
    values: dict[tuple[str, str], Any] = {}
    for path, value, kind in params:
        if kind != "config":
            values[("meta" if path in meta else "param", path)] = value
    for key, value, _ in tags:
        values[("tag", key)] = value
    latest: dict[str, int] = {}
    for r in results:
        if r["seq"] >= latest.get(r["key"], -1):
            latest[r["key"]] = r["seq"]
            values[("result", r["key"])] = r["value"]
    return values


def _meta_flag(conn: sqlite3.Connection) -> str:
    """``params.meta``, or NULL while migrating an index older than that column (the
    migration to schema 3 fills the task tables before schema 5 adds it)."""
    names = {row[1] for row in conn.execute("PRAGMA table_info(params)")}
    return "meta" if "meta" in names else "NULL"


def read_task_rows(
    conn: sqlite3.Connection,
    ids: Sequence[str] | None = None,
    known: Mapping[str, dict[tuple[str, str], Any]] | None = None,
) -> TaskRows:
    """The wide rows of jobs ``ids`` (all jobs when None), from the index's own tables;
    ``known``: the values of some of them (:func:`values_of`), not read again."""
    rows = TaskRows({}, {}, {})
    known = known or {}
    # Not the latest_results view: a migration runs this while views are dropped.
    sources = (
        (
            "param",
            f"SELECT job_id, path, value, {_meta_flag(conn)} FROM params "
            "WHERE type != 'config'{and_ids}",
        ),
        ("tag", "SELECT job_id, key, value FROM tags WHERE 1{and_ids}"),
        (
            "result",
            "SELECT job_id, key, value, MAX(seq) FROM results WHERE 1{and_ids} "
            "GROUP BY job_id, key",
        ),
    )
    base = (
        f"SELECT j.task_id, {_FIXED_SQL} FROM jobs j LEFT JOIN runs r ON r.id = j.last_run "
        "LEFT JOIN git_states g ON g.id = j.git_state"
    )
    groups: Iterable[Sequence[str] | None] = [None] if ids is None else _chunks(sorted(set(ids)))
    for chunk in groups:
        cond, params = ("", ()) if chunk is None else (f" IN ({','.join('?' * len(chunk))})", chunk)
        for task_id, *fixed in conn.execute(base + (f" WHERE j.id{cond}" if cond else ""), params):
            rows.fixed[fixed[0]] = tuple(fixed)
            rows.task_of[fixed[0]] = task_id
            rows.values[fixed[0]] = known.get(fixed[0], {})
        if chunk is not None and all(j in known for j in chunk):
            continue
        for kind, sql in sources:
            and_ids = f" AND job_id{cond}" if cond else ""
            for job_id, key, value, *more in conn.execute(sql.format(and_ids=and_ids), params):
                found = rows.values.get(job_id)
                if found is not None and job_id not in known:
                    # params' fourth column is its meta flag (results': MAX(seq)).
                    meta = kind == "param" and more and more[0]
                    found[("meta" if meta else kind, key)] = value
    return rows


def _registry(
    conn: sqlite3.Connection,
) -> tuple[dict[str, str], dict[str, dict[tuple[str, str], str]]]:
    tables = dict(conn.execute("SELECT task_id, name FROM task_tables").fetchall())
    columns: dict[str, dict[tuple[str, str], str]] = {t: {} for t in tables}
    for task_id, kind, key, name in conn.execute(
        "SELECT task_id, kind, key, name FROM task_columns"
    ):
        columns.setdefault(task_id, {})[(kind, key)] = name
    return tables, columns


def _rename_tables(
    conn: sqlite3.Connection, tables: dict[str, str], wanted: dict[str, str]
) -> None:
    """Create or rename task tables so that ``tables`` (current) becomes ``wanted``."""
    moves = {t: n for t, n in wanted.items() if t in tables and tables[t] != n}
    # Through temporary names: two tables may swap names.
    for t in moves:
        conn.execute(f"ALTER TABLE {quote(tables[t])} RENAME TO {quote('xpm-tmp:' + t)}")
    for t, n in moves.items():
        conn.execute(f"ALTER TABLE {quote('xpm-tmp:' + t)} RENAME TO {quote(n)}")
    for t, n in wanted.items():
        if t not in tables:
            cols = ", ".join(quote(c) + (" TEXT PRIMARY KEY" if c == "id" else "") for c in FIXED)
            conn.execute(f"CREATE TABLE {quote(n)} ({cols})")
        conn.execute("INSERT OR REPLACE INTO task_tables (task_id, name) VALUES (?, ?)", (t, n))


def _update_columns(
    conn: sqlite3.Connection,
    table: str,
    task_id: str,
    current: dict[tuple[str, str], str],
    new_keys: set[tuple[str, str]],
) -> dict[tuple[str, str], str]:
    """Add the columns of ``new_keys`` (renaming others the rule now names differently)."""
    room = MAX_COLUMNS - len(current)
    keys = set(current) | set(sorted(new_keys)[: max(room, 0)])
    wanted = column_names(keys)
    moves = {k: n for k, n in wanted.items() if k in current and current[k] != n}
    for k in moves:
        conn.execute(
            f"ALTER TABLE {quote(table)} RENAME COLUMN {quote(current[k])} "
            f"TO {quote('xpm-tmp:' + k[0] + ':' + k[1])}"
        )
    for k, n in moves.items():
        conn.execute(
            f"ALTER TABLE {quote(table)} RENAME COLUMN {quote('xpm-tmp:' + k[0] + ':' + k[1])} "
            f"TO {quote(n)}"
        )
    for k, n in wanted.items():
        if k not in current:
            conn.execute(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(n)}")
    conn.executemany(
        "INSERT OR REPLACE INTO task_columns (task_id, kind, key, name) VALUES (?, ?, ?, ?)",
        [(task_id, k[0], k[1], n) for k, n in wanted.items() if current.get(k) != n],
    )
    return wanted


def refresh_task_rows(
    conn: sqlite3.Connection,
    ids: Sequence[str] | None = None,
    known: Mapping[str, dict[tuple[str, str], Any]] | None = None,
) -> None:
    """Rewrite the task-table rows of jobs ``ids`` (every job when None) from the index's
    tables, adding tables and columns as new tasks, parameters, tags and results appear.
    Call it inside the write transaction that changed those jobs."""
    if ids is not None and not ids:
        return
    rows = read_task_rows(conn, ids, known)
    if not rows.fixed:
        return
    tables, columns = _registry(conn)
    tasks = set(rows.task_of.values())
    if not tasks <= tables.keys():
        wanted = table_names(tables.keys() | tasks)
        _rename_tables(conn, tables, wanted)
        tables = wanted
    by_task: dict[str, list[str]] = {}
    for job_id, task_id in rows.task_of.items():
        by_task.setdefault(task_id, []).append(job_id)
    for task_id, job_ids in sorted(by_task.items()):
        table = tables[task_id]
        current = columns.get(task_id, {})
        if current and _keys_vanished(conn, table, current, job_ids, rows.values):
            _rebuild_task_table(conn, task_id, table)
            continue
        new_keys = {k for j in job_ids for k in rows.values[j] if k not in current}
        if new_keys and len(current) < MAX_COLUMNS:
            current = _update_columns(conn, table, task_id, current, new_keys)
        keys = list(current)
        names = [*FIXED, *(current[k] for k in keys)]
        conn.executemany(
            f"INSERT OR REPLACE INTO {quote(table)} ({', '.join(quote(n) for n in names)}) "
            f"VALUES ({', '.join('?' * len(names))})",
            [(*rows.fixed[j], *(rows.values[j].get(k) for k in keys)) for j in job_ids],
        )


def _keys_vanished(
    conn: sqlite3.Connection,
    table: str,
    current: dict[tuple[str, str], str],
    job_ids: Sequence[str],
    values: Mapping[str, dict[tuple[str, str], Any]],
) -> bool:
    """Whether a column's key is gone from every job of the table once ``job_ids`` take
    ``values`` (a job run again reporting other keys, a tag removed): a rebuilt index
    would not have that column."""
    keys = list(current)
    held: dict[tuple[str, str], int] = {}  # key -> jobs of job_ids losing a value of it
    for chunk in _chunks(list(job_ids)):
        cols = ", ".join(quote(current[k]) for k in keys)
        marks = ",".join("?" * len(chunk))
        for job_id, *old in conn.execute(
            f"SELECT id, {cols} FROM {quote(table)} WHERE id IN ({marks})", chunk
        ):
            for key, value in zip(keys, old, strict=True):
                if value is not None and key not in values[job_id]:
                    held[key] = held.get(key, 0) + 1
    for key, losing in held.items():
        (left,) = conn.execute(
            f"SELECT COUNT(*) FROM {quote(table)} WHERE {quote(current[key])} IS NOT NULL"
        ).fetchone()
        if left == losing:  # only these jobs had it
            return True
    return False


def _rebuild_task_table(conn: sqlite3.Connection, task_id: str, table: str) -> None:
    """Make the table of ``task_id`` again from all its jobs (columns as a rebuild has)."""
    conn.execute(f"DROP TABLE {quote(table)}")
    conn.execute("DELETE FROM task_tables WHERE task_id = ?", (task_id,))
    conn.execute("DELETE FROM task_columns WHERE task_id = ?", (task_id,))
    ids = [r[0] for r in conn.execute("SELECT id FROM jobs WHERE task_id = ?", (task_id,))]
    refresh_task_rows(conn, ids)


def drop_task_tables(conn: sqlite3.Connection) -> None:
    """Drop every task table and empty the registry (before a rebuild)."""
    for (name,) in conn.execute("SELECT name FROM task_tables").fetchall():
        conn.execute(f"DROP TABLE IF EXISTS {quote(name)}")
    conn.execute("DELETE FROM task_tables")
    conn.execute("DELETE FROM task_columns")


def forget_jobs(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    """After jobs ``ids`` left the index (``xpm jobs clean``): rebuild the task tables that
    held them from the jobs left (their columns may go), dropping those left empty."""
    tables, _ = _registry(conn)
    conn.executemany("DELETE FROM results_read WHERE job_id = ?", [(i,) for i in ids])
    touched = []
    for task_id, name in sorted(tables.items()):
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            if conn.execute(f"DELETE FROM {quote(name)} WHERE id IN ({marks})", chunk).rowcount:
                touched.append(task_id)
                break
    for task_id in touched:
        conn.execute(f"DROP TABLE {quote(tables.pop(task_id))}")
        conn.execute("DELETE FROM task_tables WHERE task_id = ?", (task_id,))
        conn.execute("DELETE FROM task_columns WHERE task_id = ?", (task_id,))
    if touched:
        _rename_tables(conn, tables, table_names(tables))  # a name may be free again
        left = conn.execute(
            f"SELECT id FROM jobs WHERE task_id IN ({','.join('?' * len(touched))})", touched
        ).fetchall()
        refresh_task_rows(conn, [r[0] for r in left])


# --- reading -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskTable:
    """A task's table: its name and columns (fixed ones first) with their origin."""

    task_id: str
    name: str
    columns: tuple[str, ...]
    kinds: dict[str, tuple[str, str]]  # column -> (kind, key); fixed columns: ("job", name)


def task_tables(conn: sqlite3.Connection) -> list[TaskTable]:
    """Every task table of the index, by task id, columns in table order."""
    tables, columns = _registry(conn)
    out = []
    for task_id, name in sorted(tables.items()):
        origin = {n: k for k, n in columns.get(task_id, {}).items()}
        origin.update({c: ("job", c) for c in FIXED})
        order = [r[1] for r in conn.execute(f"PRAGMA table_info({quote(name)})")]
        out.append(TaskTable(task_id, name, tuple(order), origin))
    return out


def mismatches(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(task id or job, what differs) between the task tables and the index's own tables:
    what :func:`refresh_task_rows` over every job would change."""
    out: list[tuple[str, str]] = []
    rows = read_task_rows(conn)
    tables, columns = _registry(conn)
    existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    wanted_tables = table_names(set(rows.task_of.values()))
    for task_id in sorted(set(wanted_tables) | set(tables)):
        want, have = wanted_tables.get(task_id), tables.get(task_id)
        if want != have or (have is not None and have not in existing):
            out.append((task_id, f"task table is {have!r}, should be {want!r}"))
            continue
        if have is None:  # want == have: a task in neither registry is not iterated
            continue
        jobs = [j for j, t in rows.task_of.items() if t == task_id]
        keys = {k for j in jobs for k in rows.values[j]}
        current = columns.get(task_id, {})
        if len(current) < MAX_COLUMNS and column_names(keys) != current:
            out.append((task_id, f"columns of {have!r} differ from its jobs' keys"))
            continue
        cursor = conn.execute(f"SELECT * FROM {quote(have)}")
        names = [d[0] for d in cursor.description]
        actual = {r[0]: dict(zip(names, r, strict=True)) for r in cursor}
        for j in sorted(jobs):  # rows of jobs missing from `jobs` show as missing-row
            if j not in actual:
                out.append((f"{task_id}/{j}", f"no row in {have!r}"))
                continue
            expected = dict(zip(FIXED, rows.fixed[j], strict=True))
            expected.update({n: rows.values[j].get(k) for k, n in current.items()})
            got = actual[j]
            diff = [
                c
                for c in expected
                if got.get(c) != expected[c] or type(got.get(c)) is not type(expected[c])
            ]
            if diff:
                out.append((f"{task_id}/{j}", f"{have!r} differs in {', '.join(diff[:5])}"))
    return out


_KIND_TEXT = {
    "result": "latest value of the result",
    "tag": "tag",
    "param": "parameter",
    "meta": "Meta parameter",
}
_FIXED_TEXT = {
    "id": "Job identifier (`jobs.id`).",
    "state": "State of the job.",
    "experiment": "Experiment of the run that submitted it last.",
    "commit_sha": "Commit of the experiment's repository in that run.",
    "start_time": "When the job process started (Unix time).",
    "end_time": "When it ended (Unix time).",
    "duration": "Seconds from start to end (NULL while it runs).",
}


def datasette_metadata(conn: sqlite3.Connection) -> dict[str, Any]:
    """Datasette table metadata of the task tables: descriptions, sort, facets on the
    state, the experiment and the tags (a sweep's dimensions)."""
    tables: dict[str, Any] = {}
    for t in task_tables(conn):
        columns = dict(_FIXED_TEXT)
        for name, (kind, key) in t.kinds.items():
            if kind in _KIND_TEXT:
                columns[name] = f"{_KIND_TEXT[kind].capitalize()} `{key}`."
        tags = [n for n in t.columns if t.kinds.get(n, ("",))[0] == "tag"]
        tables[t.name] = {
            "description": f"One row per job of task `{t.task_id}`: its parameters, tags and "
            "latest results as columns (`xpm results` prints it).",
            "columns": columns,
            "sort_desc": "start_time",
            "facets": ["state", "experiment", *tags[:5]],
        }
    return tables


def render_markdown(conn: sqlite3.Connection) -> str:
    """The task tables of an index in Markdown (``xpm query --schema`` appends it)."""
    tables = task_tables(conn)
    out = ["## Task tables of this index", ""]
    if not tables:
        return "\n".join([*out, "(none yet: they appear as jobs are recorded)"])
    for t in tables:
        out += [f"### Table `{t.name}`", "", f"One row per job of task `{t.task_id}`.", ""]
        out += ["| column | from |", "|---|---|"]
        for c in t.columns:
            kind, key = t.kinds.get(c, ("?", c))
            out.append(f"| `{c}` | {'job' if kind == 'job' else f'{kind} `{key}`'} |")
        out.append("")
    return "\n".join(out).rstrip()
