"""The index queries behind the workdir operations (:mod:`xpm.workdir`): jobs that ran at
some commits, latest results, jobs whose parameters use other jobs, experiments with their
runs and job counts, and forgetting removed jobs.  Only SQL lives here; what to do with
the rows is decided by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._query import rows_for_jobs

if TYPE_CHECKING:
    from ._db import IndexDB


def jobs_at_commits(db: IndexDB, prefix: str, commits: Iterable[str] = ()) -> set[str]:
    """Jobs whose latest attempt ran code at a commit (or snapshot) starting with ``prefix``
    or equal to one of ``commits`` (full ids, lower case)."""
    exact_ids = sorted({c.lower() for c in commits if c})
    marks = ",".join("?" * len(exact_ids))
    exact = f" OR g.commit_sha IN ({marks}) OR g.snapshot IN ({marks})" if exact_ids else ""
    rows = db.query(
        "SELECT DISTINCT jg.job_id FROM job_git_states jg "
        "JOIN git_states g ON g.id = jg.git_state "
        f"WHERE g.commit_sha LIKE ? OR g.snapshot LIKE ?{exact}",
        [prefix.lower() + "%", prefix.lower() + "%", *exact_ids, *exact_ids],
    )
    return {r[0] for r in rows}


def latest_results(db: IndexDB, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The latest value of each result of each job of ``ids`` (jobs without any: absent)."""
    # SQLite takes the bare columns of a MAX() aggregate from the row holding the max.
    sql = (
        "SELECT job_id, key, value, MAX(seq) FROM results WHERE job_id IN ({ids}) "
        "GROUP BY job_id, key ORDER BY job_id, key"
    )
    out: dict[str, dict[str, Any]] = {}
    for job_id, key, value, _seq in rows_for_jobs(db, sql, list(ids)):
        out.setdefault(job_id, {})[key] = value
    return out


def jobs_with_params_like(
    db: IndexDB, task_ids: Sequence[str], job_paths: Sequence[str]
) -> list[tuple[str, str]]:
    """``(job id, task id)`` of the jobs having a configuration parameter of one of
    ``task_ids`` or a path parameter matching one of ``job_paths`` (LIKE patterns): the
    candidates for using those jobs' outputs (their params.json says for sure)."""
    if not task_ids and not job_paths:
        return []
    conds = [f"(type = 'config' AND value IN ({','.join('?' * len(task_ids))}))"]
    conds += ["(type = 'path' AND value LIKE ?)"] * len(job_paths)
    rows = db.query(
        "SELECT DISTINCT p.job_id, j.task_id FROM params p JOIN jobs j ON j.id = p.job_id "
        f"WHERE {' OR '.join(conds)}",
        [*task_ids, *job_paths],
    )
    return [(r[0], r[1]) for r in rows]


def experiments_summary(db: IndexDB) -> list[dict[str, Any]]:
    """Every experiment (name, runs, first and last start), newest first, with ``jobs``:
    its jobs counted by state."""
    experiments = db.query_dicts(
        "SELECT name, runs, first_start, last_start FROM experiments ORDER BY last_start DESC"
    )
    counts = db.query(
        "SELECT r.experiment, j.state, COUNT(DISTINCT j.id) FROM runs r "
        "JOIN submissions s ON s.run = r.id JOIN jobs j ON j.id = s.job_id "
        "GROUP BY r.experiment, j.state"
    )
    by_name: dict[str, dict[str, int]] = {}
    for name, state, n in counts:
        by_name.setdefault(name, {})[state] = n
    for exp in experiments:
        exp["jobs"] = by_name.get(exp["name"], {})
    return experiments


def experiment_names(db: IndexDB) -> list[str]:
    """The names of the experiments of the index, sorted."""
    return [r[0] for r in db.query("SELECT name FROM experiments ORDER BY name")]


def experiment_runs(db: IndexDB, name: str) -> dict[str, Any] | None:
    """Experiment ``name`` (None when the index has none): ``experiment`` (its row), ``runs``
    (newest first, each with its ``outcome`` and ``jobs``: its jobs counted by their state
    now) and ``jobs`` (all its jobs counted by state)."""
    found = db.query_dicts("SELECT * FROM experiments WHERE name = ?", [name])
    if not found:
        return None
    runs = db.query_dicts(
        "SELECT id, run_id, run_mode, start_time, end_time, host, user, "
        "json_extract(info, '$.outcome') AS outcome FROM runs "
        "WHERE experiment = ? ORDER BY start_time DESC",
        [name],
    )
    counts = db.query(
        "SELECT s.run, j.state, COUNT(*) FROM submissions s JOIN runs r ON r.id = s.run "
        "JOIN jobs j ON j.id = s.job_id WHERE r.experiment = ? GROUP BY s.run, j.state",
        [name],
    )
    total = db.query(
        "SELECT j.state, COUNT(DISTINCT j.id) FROM submissions s JOIN runs r ON r.id = s.run"
        " JOIN jobs j ON j.id = s.job_id WHERE r.experiment = ? GROUP BY j.state",
        [name],
    )
    per_run: dict[str, dict[str, int]] = {}
    for run, state, n in counts:
        per_run.setdefault(run, {})[state] = n
    for run in runs:
        run["jobs"] = per_run.get(run["id"], {})
    return {"experiment": found[0], "runs": runs, "jobs": {r[0]: r[1] for r in total}}


def delete_job_rows(db: IndexDB, ids: Sequence[str]) -> None:
    """Remove the rows of jobs ``ids`` (their directories are gone): ``jobs``, ``params``,
    ``tags``, ``results`` and their task-table rows.  ``submissions`` stay: they come from
    the experiment-run records, so a rebuilt index has them too."""
    from ._tasktables import forget_jobs

    def delete(conn: Any) -> None:
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            conn.execute(f"DELETE FROM jobs WHERE id IN ({marks})", chunk)
            for table in ("params", "tags", "results"):
                conn.execute(f"DELETE FROM {table} WHERE job_id IN ({marks})", chunk)
        forget_jobs(conn, list(ids))

    db.write(delete)
