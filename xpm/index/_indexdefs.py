"""The B-tree indexes of the index database, each with the filters it serves (part of the
schema: :mod:`._schema` re-exports them; split from it to keep each module short)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IndexDef:
    """A B-tree index on ``table(columns)``: the filters it serves."""

    name: str
    table: str
    columns: tuple[str, ...]  # a name, or "name DESC" for an order the index stores reversed
    purpose: str
    since: int = 1


INDEXES: tuple[IndexDef, ...] = (
    IndexDef("idx_jobs_state", "jobs", ("state", "id"), "jobs in a state (failed, running...)"),
    IndexDef("idx_jobs_task", "jobs", ("task_id",), "jobs of a task"),
    IndexDef("idx_jobs_last_run", "jobs", ("last_run",), "jobs of a run / experiment"),
    IndexDef("idx_jobs_end_time", "jobs", ("end_time",), "jobs ended since a time"),
    IndexDef("idx_jobs_submit_time", "jobs", ("submit_time",), "jobs newest first"),
    IndexDef(
        "idx_tags_key_value", "tags", ("key", "value", "job_id"), "jobs with a tag `key=value`"
    ),
    IndexDef(
        "idx_params_path_value",
        "params",
        ("path", "value", "job_id"),
        "jobs with a parameter value",
    ),
    IndexDef("idx_results_latest", "results", ("job_id", "key", "seq"), "latest result per key"),
    IndexDef("idx_results_key", "results", ("key", "job_id"), "all values of one result"),
    IndexDef("idx_submissions_job", "submissions", ("job_id",), "runs that submitted a job"),
    IndexDef("idx_runs_experiment", "runs", ("experiment",), "runs of an experiment"),
    IndexDef("idx_run_git_state", "run_git_states", ("git_state",), "runs at a git state"),
    IndexDef("idx_git_commit", "git_states", ("commit_sha",), "git states of a commit"),
    IndexDef("idx_jobs_run", "jobs", ("run",), "jobs launched by a run", since=2),
    IndexDef(
        "idx_attempt_git_state",
        "attempt_git_states",
        ("git_state",),
        "attempts at a git state",
        since=2,
    ),
    IndexDef(
        "idx_jobs_newest",
        "jobs",
        ("submit_time DESC", "id"),
        # Datasette pages the jobs table by (submit_time DESC, id): without an index in that
        # order, page 2 sorted every job after the cursor (370 ms over 100,000 jobs).
        "jobs newest first, in the order of the web view's pages",
        since=6,
    ),
)
