"""The ``sweep_<experiment>`` canned queries of the web view: for each of the latest
experiments, one row per job that reported results, one column per tag and per result.

Their SQL is shown to the user (Datasette's canned queries), so it is plain text built
here from the experiment's tag and result names.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from ._runtables import distinct_values, literal
from ._tasktables import MAX_COLUMNS, quote

#: Most experiments that get a sweep query of their own (the latest started).
MAX_SWEEPS = 50
#: Jobs of each experiment whose tags and results name its sweep's columns at once.
SWEEP_SAMPLE = 200


def experiment_keys(conn: sqlite3.Connection) -> dict[str, tuple[list[str], list[str]]]:
    """Experiment -> (its tag names, its result names), for the latest :data:`MAX_SWEEPS`.

    A few jobs of each experiment name its keys at once; only the keys they lack are looked
    for among the experiment's other jobs (:func:`_having`).  (Joining every
    submission to its tags and results took 580 ms over 100,000 jobs, on the first page
    of the database after each write to the index.)
    """
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM experiments ORDER BY last_start DESC, name LIMIT ?", (MAX_SWEEPS,)
        )
    ]
    keys: dict[str, tuple[list[str], list[str]]] = {n: ([], []) for n in names}
    if not names:
        return keys
    samples = {
        name: [
            r[0]
            for r in conn.execute(
                "SELECT s.job_id FROM runs r JOIN submissions s ON s.run = r.id "
                "WHERE r.experiment = ? LIMIT ?",
                (name, SWEEP_SAMPLE),
            )
        ]
        for name in names
    }
    marks = ",".join("?" * len(names))
    sizes = dict(
        conn.execute(
            "SELECT r.experiment, COUNT(*) FROM runs r JOIN submissions s ON s.run = r.id "
            f"WHERE r.experiment IN ({marks}) GROUP BY r.experiment",
            names,
        ).fetchall()
    )
    holders = _Holders(conn)
    for table, slot in (("tags", 0), ("results", 1)):
        every = set(distinct_values(conn, table, "key"))
        found: dict[str, set[str]] = {}
        for name, sample in samples.items():
            marks = ",".join("?" * len(sample))
            found[name] = {
                r[0]
                for r in conn.execute(
                    f"SELECT DISTINCT key FROM {table} WHERE job_id IN ({marks})", sample
                )
            }
        for key in sorted({k for name in names for k in every - found[name]}):
            short = [name for name in names if key not in found[name]]
            for experiment in _having(conn, table, key, short, sizes, holders):
                found[experiment].add(key)
        for name in names:
            keys[name][slot].extend(sorted(found[name]))
    return keys


class _Holders:
    """Which tasks have a tag or result key (the index's ``task_columns``), and whether an
    experiment has a job of any of them: an experiment without one has none of their keys.

    An experiment lacking three keys of another task (its tags and results) was asked for
    each key in turn, a pass over its 5,000 jobs each; one pass for the task answers all.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._tasks: dict[tuple[str, str], set[str]] = {}
        self._has: dict[tuple[str, frozenset[str]], bool] = {}
        tables = {r[0] for r in conn.execute("SELECT task_id FROM task_tables")}
        if not set(distinct_values(conn, "jobs", "task_id")) <= tables:
            return  # a task without its table (an index written by hand): not said
        columns: dict[str, int] = {}
        for task, kind, key in conn.execute("SELECT task_id, kind, key FROM task_columns"):
            columns[task] = columns.get(task, 0) + 1
            if kind in ("tag", "result"):
                self._tasks.setdefault((f"{kind}s", key), set()).add(task)
        if any(n >= MAX_COLUMNS for n in columns.values()):
            self._tasks = {}  # a full table leaves keys out: it does not say all they are

    def may_have(self, experiment: str, table: str, key: str) -> bool:
        """False when ``experiment`` has no job of a task having ``key`` in ``table``
        (True when the index does not say which tasks have it)."""
        tasks = frozenset(self._tasks.get((table, key), ()))
        if not tasks:
            return True  # no task table names it (an index written by hand): look
        found = self._has.get((experiment, tasks))
        if found is None:
            marks = ",".join("?" * len(tasks))
            found = self._has[(experiment, tasks)] = (
                self._conn.execute(
                    "SELECT 1 FROM runs r CROSS JOIN submissions s ON s.run = r.id "
                    f"CROSS JOIN jobs j ON j.id = s.job_id WHERE r.experiment = ? "
                    f"AND j.task_id IN ({marks}) LIMIT 1",
                    [experiment, *sorted(tasks)],
                ).fetchone()
                is not None
            )
        return found


def _having(
    conn: sqlite3.Connection,
    table: str,
    key: str,
    experiments: list[str],
    sizes: dict[str, int],
    holders: _Holders | None = None,
) -> list[str]:
    """Which of ``experiments`` have a job with ``key`` in ``table``.

    From the smaller side: the rows holding the key (the key's index), or the jobs of the
    experiments, each asked for the key until one has it (``holders``: after asking
    whether it has a job of a task with that key).  One pass over the key's rows took
    200 ms when a result of 100,000 jobs of other experiments was lacking in an
    experiment of 5,000 jobs, on the first page of the database after each write.
    """
    jobs = sum(sizes.get(e, 0) for e in experiments)
    # Counted up to the other side's size only: which side is smaller is all that matters
    # (counting the 100,000 rows of a tag every job has took 7 ms per key).
    rows = conn.execute(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE key = ? LIMIT ?)", (key, jobs + 1)
    ).fetchone()[0]
    if rows <= jobs:
        marks = ",".join("?" * len(experiments))
        return [
            r[0]
            for r in conn.execute(
                # CROSS JOIN: from the key's rows (SQLite started from the experiments).
                f"SELECT DISTINCT r.experiment FROM {table} x "
                "CROSS JOIN submissions s ON s.job_id = x.job_id CROSS JOIN runs r ON r.id = s.run "
                f"WHERE x.key = ? AND r.experiment IN ({marks})",
                [key, *experiments],
            )
        ]
    return [
        experiment
        for experiment in experiments
        if (holders is None or holders.may_have(experiment, table, key))
        and conn.execute(
            f"SELECT 1 FROM runs r CROSS JOIN submissions s ON s.run = r.id CROSS JOIN {table} x "
            "ON x.job_id = s.job_id AND x.key = ? WHERE r.experiment = ? LIMIT 1",
            (key, experiment),
        ).fetchone()
    ]


def sweep_sql(experiment: str, tags: list[str], results: list[str]) -> str:
    """SQL of a sweep's results: one row per job with a result, one column per tag and result."""
    used = {"job", "task", "state"}
    columns = ["j.id AS job", "j.task_id AS task", "j.state"]
    for kind, names in (("tag", tags), ("result", results)):
        for name in names:
            label = name if name not in used else f"{kind}:{name}"
            used.add(label)
            if kind == "tag":
                expr = f"(SELECT value FROM tags WHERE job_id = j.id AND key = {literal(name)})"
            else:
                expr = (
                    f"(SELECT value FROM results WHERE job_id = j.id AND key = {literal(name)} "
                    "ORDER BY seq DESC LIMIT 1)"
                )
            columns.append(f"{expr} AS {quote(label)}")
    select = ",\n  ".join(columns)
    order = ", ".join(quote(t if t not in ("job", "task", "state") else f"tag:{t}") for t in tags)
    return (
        f"SELECT {select}\nFROM jobs j\n"
        f"WHERE j.id IN (SELECT s.job_id FROM submissions s JOIN runs r ON r.id = s.run\n"
        f"               WHERE r.experiment = {literal(experiment)})\n"
        "  AND EXISTS (SELECT 1 FROM results WHERE job_id = j.id)\n"
        f"ORDER BY j.task_id{', ' + order if order else ''}"
    )


def sweep_query_name(experiment: str) -> str:
    """The canned query name of an experiment's sweep (``sweep_<name>``, URL-safe)."""
    safe = re.sub(r"[^A-Za-z0-9_\-]", "_", experiment)
    if safe != experiment:
        import hashlib

        safe += "_" + hashlib.sha256(experiment.encode()).hexdigest()[:6]
    return f"sweep_{safe}"


def sweep_queries(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """A canned query per experiment (see :func:`sweep_sql`)."""
    queries = {}
    for experiment, (tags, results) in experiment_keys(conn).items():
        queries[sweep_query_name(experiment)] = {
            "title": f"Sweep: {experiment}",
            "description": (
                f"Jobs of experiment {experiment!r} that reported results: one column per tag "
                "and per result (its latest value)."
            ),
            "sql": sweep_sql(experiment, tags, results),
        }
    return queries
