"""Lists of jobs and experiments the web view shows: the home page's overview, an
experiment's runs and tasks, and whether anything still runs (a job's related jobs:
:func:`._details.read_job_details`; the runs tables: :mod:`._runtables`).

Every function takes a read-only :class:`sqlite3.Connection` (the web view calls them
through Datasette's ``execute_fn``) and returns plain Python values.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .._vocabulary import ACTIVE_STATES, STORED_STATES, TERMINAL_STATES

#: Experiments listed on the home page (the latest started).
HOME_EXPERIMENTS = 100
#: Running and failed jobs listed on the home page.
HOME_JOBS = 20
#: Up to this many jobs in a state are sorted rather than found in time order.
FEW_IN_STATE = 2000


def dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """The rows of ``cursor`` as dictionaries."""
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def experiments_overview(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Experiments, latest started first, each with its latest run and that run's jobs.

    Per experiment: ``name``, ``runs``, ``first_start``, ``last_start``; of its latest
    run ``run``, ``start_time``, ``end_time``, ``outcome``, ``commit_sha``, ``branch``,
    ``dirty``; ``states``: jobs of that run per state; ``jobs``: their number.
    """
    rows = dicts(
        conn.execute(
            "SELECT e.name, e.runs, e.first_start, e.last_start, r.id AS run, r.start_time, "
            "r.end_time, json_extract(r.info, '$.outcome') AS outcome, g.commit_sha, g.branch, "
            "g.dirty FROM (SELECT * FROM experiments ORDER BY last_start DESC, name LIMIT ?) e "
            "LEFT JOIN runs r ON r.id = (SELECT id FROM runs WHERE experiment = e.name "
            "ORDER BY start_time DESC LIMIT 1) "
            "LEFT JOIN run_git_states rg ON rg.run = r.id AND rg.position = 0 "
            "LEFT JOIN git_states g ON g.id = rg.git_state "
            "ORDER BY e.last_start DESC, e.name",
            (HOME_EXPERIMENTS,),
        )
    )
    for row in rows:
        row["states"] = {}
        row["jobs"] = 0
    by_run = {row["run"]: row for row in rows if row["run"]}
    if by_run:
        marks = ",".join("?" * len(by_run))
        # Most jobs are DONE: count the others through the state index, and DONE as the rest.
        for run, total in conn.execute(
            f"SELECT run, COUNT(*) FROM submissions WHERE run IN ({marks}) GROUP BY run",
            list(by_run),
        ):
            by_run[run]["jobs"] = total
            by_run[run]["states"]["DONE"] = total
        for run, state, count in conn.execute(
            # CROSS JOIN: from the (few) jobs in those states, not from every submission;
            # +s.run: each job's own submissions, not a seek per job and run (110,000).
            "SELECT s.run, j.state, COUNT(*) FROM jobs j CROSS JOIN submissions s "
            f"ON s.job_id = j.id WHERE j.state IN ({','.join('?' * (len(STORED_STATES) - 1))}) "
            f"AND +s.run IN ({marks}) GROUP BY s.run, j.state",
            [*(s for s in STORED_STATES if s != "DONE"), *by_run],
        ):
            by_run[run]["states"][state] = count
            by_run[run]["states"]["DONE"] -= count
        for row in by_run.values():
            if not row["states"].get("DONE"):
                row["states"].pop("DONE", None)
    return rows


def active_job_count(conn: sqlite3.Connection) -> int:
    """How many jobs are submitted or running (live pages refresh while there are some)."""
    marks = ",".join("?" * len(ACTIVE_STATES))
    return int(
        conn.execute(
            f"SELECT COUNT(*) FROM jobs WHERE state IN ({marks})", ACTIVE_STATES
        ).fetchone()[0]
    )


def jobs_in_state(
    conn: sqlite3.Connection, state: str, limit: int = HOME_JOBS
) -> tuple[int, list[dict[str, Any]]]:
    """How many jobs are in ``state``, and the latest ``limit`` of them (with experiment)."""
    count = conn.execute("SELECT COUNT(*) FROM jobs WHERE state = ?", (state,)).fetchone()[0]
    order = "j.end_time" if state in TERMINAL_STATES else "j.submit_time"
    # A few jobs in the state: from the state's index, sorted (SQLite walked every job in
    # time order looking for them: 40 ms for no running job among 100,000).
    few = "+" if count <= FEW_IN_STATE else ""
    rows = dicts(
        conn.execute(
            "SELECT j.id, j.task_id, j.state, j.reason, j.submit_time, j.start_time, j.end_time, "
            "j.host, r.experiment FROM (SELECT * FROM jobs WHERE state = ? "
            f"ORDER BY {few}{order.replace('j.', '')} DESC LIMIT ?) j "
            f"LEFT JOIN runs r ON r.id = j.last_run ORDER BY {order} DESC",
            (state, limit),
        )
    )
    # Which setting each job is (lr=0.1 seed=2): a list of ids alone said nothing.
    tags: dict[str, list[tuple[str, Any]]] = {r["id"]: [] for r in rows}
    for job_id, key, value in conn.execute(
        "SELECT t.job_id, t.key, t.value FROM json_each(?) sel JOIN tags t ON t.job_id = sel.value "
        "ORDER BY t.job_id, t.key",
        (json.dumps(list(tags)),),
    ):
        tags[job_id].append((key, value))
    for row in rows:
        row["tags"] = tags[row["id"]]
    tell_apart(conn, rows)
    return count, rows


def tell_apart(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    """Give each of ``rows`` (jobs with their ``tags``) ``also``: the parameters, not Meta,
    that differ among the listed jobs of its task with the same tags (two failed
    ``lr=0.01 seed=3`` jobs of widths 32 and 64 looked the same)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        row["also"] = []
        groups.setdefault((row["task_id"], tuple(row["tags"])), []).append(row)
    alike = [g for g in groups.values() if len(g) > 1]
    if not alike:
        return
    ids = [r["id"] for g in alike for r in g]
    params: dict[str, dict[str, Any]] = {i: {} for i in ids}
    for job_id, path, value in conn.execute(
        "SELECT p.job_id, p.path, p.value FROM json_each(?) sel "
        "JOIN params p ON p.job_id = sel.value WHERE p.meta IS NOT 1",
        (json.dumps(ids),),
    ):
        params[job_id][path] = value
    for group in alike:
        paths = sorted({p for r in group for p in params[r["id"]]})
        differ = [p for p in paths if len({repr(params[r["id"]].get(p)) for r in group}) > 1]
        for row in group:
            row["also"] = [(p, params[row["id"]].get(p)) for p in differ]


def has_experiment(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the index has an experiment ``name``."""
    found = conn.execute("SELECT 1 FROM experiments WHERE name = ?", (name,)).fetchone()
    return found is not None


def runs_with_commits(conn: sqlite3.Connection, experiment: str) -> list[dict[str, Any]]:
    """The latest 100 runs of ``experiment``, latest first, each with its commit, outcome
    and number of jobs (an experiment page's list of runs; :func:`._lookup.experiment_runs`
    counts each run's jobs by state instead, for ``xpm experiments show``)."""
    return dicts(
        conn.execute(
            "SELECT r.id, r.run_id, r.run_mode, r.start_time, r.end_time, r.host, r.user, "
            "json_extract(r.info, '$.outcome') AS outcome, g.commit_sha, g.branch, g.dirty, "
            "(SELECT COUNT(*) FROM submissions s WHERE s.run = r.id) AS jobs FROM runs r "
            "LEFT JOIN run_git_states rg ON rg.run = r.id AND rg.position = 0 "
            "LEFT JOIN git_states g ON g.id = rg.git_state WHERE r.experiment = ? "
            "ORDER BY r.start_time DESC LIMIT 100",
            (experiment,),
        )
    )


def experiment_tasks(conn: sqlite3.Connection, experiment: str | None) -> list[tuple[str, int]]:
    """(task id, number of jobs) of the jobs submitted by ``experiment`` (None: all jobs)."""
    if experiment is None:
        return conn.execute(
            "SELECT task_id, COUNT(*) FROM jobs GROUP BY task_id ORDER BY task_id"
        ).fetchall()
    return conn.execute(
        "SELECT j.task_id, COUNT(DISTINCT j.id) FROM submissions s JOIN runs r ON r.id = s.run "
        "JOIN jobs j ON j.id = s.job_id WHERE r.experiment = ? GROUP BY j.task_id "
        "ORDER BY j.task_id",
        (experiment,),
    ).fetchall()


def experiments_newest_first(conn: sqlite3.Connection) -> list[str]:
    """The names of the experiments, the latest started first (a chart's choices)."""
    return [r[0] for r in conn.execute("SELECT name FROM experiments ORDER BY last_start DESC")]
