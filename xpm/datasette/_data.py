"""The SQL behind the plugin's pages: sweep pivots (charts: ``_charts``; a job's details:
:func:`xpm.index.read_job_details`).

Every function takes a read-only :class:`sqlite3.Connection` on the index (the plugin
calls them through Datasette's ``execute_fn``), so each is testable on its own.
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from ..index import distinct_values
from ..index import find_job_row as index_find_job_row

#: Most experiments that get a sweep query of their own (the latest started).
MAX_SWEEPS = 50


def quote(name: str) -> str:
    """An SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """An SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


#: Jobs of each experiment whose tags and results name its sweep's columns at once.
SWEEP_SAMPLE = 200


def experiment_keys(conn: sqlite3.Connection) -> dict[str, tuple[list[str], list[str]]]:
    """Experiment -> (its tag names, its result names), for the latest :data:`MAX_SWEEPS`.

    A few jobs of each experiment name its keys at once; only the keys they lack are looked
    for among the experiment's other jobs, in one pass over those keys.  (Joining every
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
        lacking = sorted({k for name in names for k in every - found[name]})
        short = [name for name in names if every - found[name]]
        if lacking:
            key_marks = ",".join("?" * len(lacking))
            name_marks = ",".join("?" * len(short))
            for experiment, key in conn.execute(
                f"SELECT DISTINCT r.experiment, x.key FROM {table} x "
                "JOIN submissions s ON s.job_id = x.job_id JOIN runs r ON r.id = s.run "
                f"WHERE x.key IN ({key_marks}) AND r.experiment IN ({name_marks})",
                [*lacking, *short],
            ):
                found[experiment].add(key)
        for name in names:
            keys[name][slot].extend(sorted(found[name]))
    return keys


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


# --- job page ----------------------------------------------------------------------------------
#: The lookup of a job by identifier prefix (the pages' ``/-/xpm/job/<prefix>``), in the index.
find_job_row = index_find_job_row


def param_tree(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Nested ``{name: {"value", "type", "meta", "children"}}`` from dotted parameter paths
    (:attr:`xpm.index.JobDetails.params`; a bool shown as ``true``/``false``, a list or
    dict as JSON)."""
    root: dict[str, Any] = {}
    for row in sorted(rows, key=lambda r: str(r["path"]).split(".")):
        node = root
        parts = str(row["path"]).split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {"value": None, "type": "", "children": {}})["children"]
        entry = node.setdefault(parts[-1], {"value": None, "type": "", "children": {}})
        value = row["value"]
        if row["type"] == "bool" and value in (0, 1):
            value = "true" if value else "false"
        elif isinstance(value, (list, dict)):
            value = json.dumps(value, sort_keys=isinstance(value, dict))
        entry["value"], entry["type"], entry["meta"] = value, row["type"], bool(row.get("meta"))
    return root
