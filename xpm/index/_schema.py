"""The schema of the index: every table, column, view and index, with its documentation.

This module is the ONE source of the schema.  The SQL that creates the database
(:mod:`xpm.index._schemasql`, run by :mod:`xpm.index._migrations`), the reference in
``docs/index.md`` and the Datasette metadata (:mod:`xpm.index._schemadoc`) are all
generated from :data:`TABLES`, :data:`VIEWS` and :data:`INDEXES`.

Changing the schema: bump :data:`~xpm.index._version.SCHEMA_VERSION`, give new tables, columns and indexes
``since=<new version>`` (the migration to that version adds them with ``ALTER TABLE``),
put any data fix in ``_migrations.CUSTOM[<new version>]``, then regenerate the docs
(``python -m xpm.index._schemadoc docs/index.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._indexdefs import INDEXES as INDEXES
from ._indexdefs import IndexDef as IndexDef


@dataclass(frozen=True)
class Column:
    """A column: SQL type ('' for SQLite's dynamic typing) and what it holds."""

    name: str
    type: str
    description: str
    since: int = 1
    references: str | None = None  # "table.column" (documentation and Datasette links)


@dataclass(frozen=True)
class Table:
    """A table of the index."""

    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    since: int = 1
    without_rowid: bool = False  # small rows looked up by primary key: stored in its order

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


@dataclass(frozen=True)
class View:
    """A view: its SQL (``SELECT ...``) and the meaning of each of its columns."""

    name: str
    description: str
    sql: str
    columns: tuple[tuple[str, str], ...]
    since: int = 1


def _c(name: str, type_: str, description: str, **kw: Any) -> Column:
    return Column(name, type_, description, **kw)


_TIME = "Unix time in seconds (UTC); `datetime(x, 'unixepoch')` shows it"
_VALUE_TYPES = (
    "`int`, `float`, `bool` (stored 0/1), `str`, `null`, `path`, `enum` (the member name), "
    "`list`/`dict` (JSON text), `config` (a nested configuration: the value is its type id)"
)

TABLES: tuple[Table, ...] = (
    Table(
        "meta",
        "Facts about the index file itself.",
        (
            _c(
                "key",
                "TEXT",
                "Name of the fact: `schema_version`, `created_by`, `jobs_writes` (rows of "
                "`jobs`, `submissions` and `runs` ever written, counted by triggers since "
                "schema 8: the web view keeps what it computed from them while it is the same), "
                "`settings_writes` (writes of `jobs` adding, removing or moving a job or "
                "changing its `params_digest`, since schema 9: what is computed from the jobs' "
                "tasks, parameters and tags is kept while it is the same), `index_id` (a random "
                "name given to the file when it is made, since schema 9: what is kept by a count "
                "is never taken for that of a file made again).",
            ),
            _c("value", "TEXT", "Its value (`schema_version` is an integer as text)."),
        ),
        ("key",),
    ),
    Table(
        "experiments",
        "One row per experiment name ever run on this workdir (from its run records).",
        (
            _c("name", "TEXT", "Experiment name (`experiment(workdir, name)`)."),
            _c("first_start", "REAL", f"Start of its first recorded run. {_TIME}."),
            _c("last_start", "REAL", f"Start of its latest recorded run. {_TIME}."),
            _c("runs", "INTEGER", "Number of recorded runs."),
        ),
        ("name",),
    ),
    Table(
        "runs",
        "One row per run of an experiment (one `with experiment(...)` block), from "
        "`WORKDIR/experiments/<name>/runs/<run_id>.json`.",
        (
            _c("id", "TEXT", "`<experiment>/<run_id>`: unique key of the run."),
            _c("experiment", "TEXT", "Experiment name.", references="experiments.name"),
            _c(
                "run_id",
                "TEXT",
                "Run identifier: start time and process id (`20250101-120000-4242`).",
            ),
            _c(
                "run_mode",
                "TEXT",
                "`normal`, `generate` or `dry-run` (dry runs are never recorded).",
            ),
            _c("start_time", "REAL", f"When the run started. {_TIME}."),
            _c(
                "end_time",
                "REAL",
                f"When the run ended; NULL while it runs (or if it crashed). {_TIME}.",
            ),
            _c("host", "TEXT", "Host name of the experiment process."),
            _c("user", "TEXT", "User running the experiment process."),
            _c("pid", "INTEGER", "Process id of the experiment process."),
            _c(
                "info",
                "TEXT",
                "Other facts of the run record as a JSON object (git state excluded), e.g. "
                "`outcome`: `done`, `N job(s) failed`, `interrupted`, `detached` or "
                "`error: <exception>` (`json_extract(info, '$.outcome')`).",
            ),
        ),
        ("id",),
    ),
    Table(
        "git_states",
        "Git state of a repository at the time of a run, keyed by its content (identical "
        "states share a row).",
        (
            _c("id", "TEXT", "sha256 of the state's canonical JSON: same state, same id."),
            _c("repo", "TEXT", "Root directory of the repository."),
            _c(
                "commit_sha",
                "TEXT",
                "Commit checked out (40 hex), NULL in a repository without commits.",
            ),
            _c("branch", "TEXT", "Branch name; NULL on a detached HEAD."),
            _c("remote", "TEXT", "URL of the remote (origin first), NULL without a remote."),
            _c("dirty", "INTEGER", "1 when tracked files had uncommitted changes, else 0."),
            _c(
                "diff", "TEXT", "Diff of the tracked changes against the commit (empty when clean)."
            ),
            _c(
                "untracked",
                "TEXT",
                "Untracked, non-ignored files: JSON list of paths relative to the repository.",
            ),
            _c(
                "snapshot",
                "TEXT",
                "Commit recording the dirty tree (a snapshot), NULL when none was made.",
            ),
        ),
        ("id",),
    ),
    Table(
        "run_git_states",
        "The git states of each run: the experiment's repository first (position 0), then "
        "those of task modules living in other repositories.",
        (
            _c("run", "TEXT", "The run.", references="runs.id"),
            _c("position", "INTEGER", "0 for the experiment's own repository, then 1, 2..."),
            _c("git_state", "TEXT", "The git state.", references="git_states.id"),
        ),
        ("run", "position"),
    ),
    Table(
        "jobs",
        "One row per job directory `WORKDIR/jobs/<task_id>/<id>`: its status as the "
        "directory says (markers and `events.jsonl`).",
        (
            _c(
                "id",
                "TEXT",
                "Job identifier: 64 hex digits (sha256 of the task type and parameters).",
            ),
            _c("task_id", "TEXT", "Task type id (`module.classname` in lower case)."),
            _c("path", "TEXT", "Job directory relative to the workdir (`jobs/<task_id>/<id>`)."),
            _c(
                "state",
                "TEXT",
                "UNSCHEDULED (not started yet: shown as WAITING by the command line and the web view), "
                "SUBMITTED, RUNNING, DONE, FAILED or CANCELLED (as recorded in the job directory).",
            ),
            _c("reason", "TEXT", "Why the job failed or was cancelled; NULL otherwise."),
            _c(
                "attempt",
                "INTEGER",
                "Number of times the job was launched (0 for a generated job never run).",
            ),
            _c(
                "submit_time",
                "REAL",
                f"When the latest attempt was handed to the launcher (NULL while the job "
                f"waits: `last_submitted` says when its run submitted it). {_TIME}.",
            ),
            _c(
                "start_time",
                "REAL",
                f"When the job process of the latest attempt started. {_TIME}.",
            ),
            _c("end_time", "REAL", f"When the latest attempt ended. {_TIME}."),
            _c("exit_code", "INTEGER", "Exit status of the job process (0 on success)."),
            _c("signal", "INTEGER", "Signal that killed the job process, if any."),
            _c("launcher", "TEXT", "Launcher kind: `local`, `slurm`..."),
            _c(
                "launcher_job_id",
                "TEXT",
                "The launcher's id for the job (process id, Slurm job id).",
            ),
            _c("host", "TEXT", "Host where the job process ran."),
            _c("pid", "INTEGER", "Process id of the job process of the latest attempt."),
            _c(
                "last_run",
                "TEXT",
                "The run that submitted the job most recently (a later submission of a DONE "
                "job does not run it again: see `run` for the code that produced it).",
                references="runs.id",
            ),
            _c("last_submitted", "REAL", f"When that run submitted it. {_TIME}."),
            _c(
                "git_state",
                "TEXT",
                "Git state of the experiment's repository when the latest attempt (the one "
                "behind `state` and the results) was launched; NULL for a job never launched "
                "and while a job waits again (submitted anew after it failed: no attempt is "
                "behind its state).",
                references="git_states.id",
            ),
            _c(
                "run",
                "TEXT",
                "The run that launched the latest attempt (for attempts launched before "
                "schema 2: the latest run that submitted the job before that launch); NULL "
                "while the job waits, as `git_state`.",
                references="runs.id",
                since=2,
            ),
            _c(
                "params_digest",
                "TEXT",
                "Digest of the job's rows in `params` and `tags`, written with them: it "
                "changes whenever they do (the web view keeps a job's values while it is "
                "unchanged). NULL for a job recorded without its parameters.",
                since=7,
            ),
        ),
        ("id",),
    ),
    Table(
        "attempts",
        "Every launch of a job, from the `SUBMITTED` events of its `events.jsonl`: the run "
        "that launched it, its launcher and the git state of its code (attempts launched by "
        "an xpm before schema 2 have no row).",
        (
            _c("job_id", "TEXT", "The job.", references="jobs.id"),
            _c("attempt", "INTEGER", "Attempt number (1 first); `jobs.attempt` is the latest."),
            _c("run", "TEXT", "The run that launched it.", references="runs.id"),
            _c("time", "REAL", f"When it was handed to the launcher. {_TIME}."),
            _c("launcher", "TEXT", "Launcher kind: `local`, `slurm`..."),
            _c(
                "launcher_description",
                "TEXT",
                "The launcher's full description (`Launcher.describe()`) as a JSON object.",
            ),
            _c(
                "git_state",
                "TEXT",
                "Git state of the experiment's repository (position 0); NULL when not recorded.",
                references="git_states.id",
            ),
        ),
        ("job_id", "attempt"),
        since=2,
    ),
    Table(
        "attempt_git_states",
        "The git states of each attempt: the experiment's repository first (position 0), "
        "then those of task modules living in other repositories.",
        (
            _c("job_id", "TEXT", "The job.", references="jobs.id"),
            _c("attempt", "INTEGER", "The attempt (`attempts.attempt`)."),
            _c("position", "INTEGER", "0 for the experiment's own repository, then 1, 2..."),
            _c("git_state", "TEXT", "The git state.", references="git_states.id"),
        ),
        ("job_id", "attempt", "position"),
        since=2,
        without_rowid=True,
    ),
    Table(
        "submissions",
        "Every submission of a job by a run (from `<run_id>.jobs.jsonl`); a job submitted by "
        "several runs has several rows.",
        (
            _c("run", "TEXT", "The run.", references="runs.id"),
            _c("job_id", "TEXT", "The job.", references="jobs.id"),
            _c("time", "REAL", f"When the run submitted it. {_TIME}."),
        ),
        ("run", "job_id"),
    ),
    Table(
        "params",
        "The job's parameters flattened to dotted paths (`model.n_layers`), from its "
        "params.json; Meta parameters included.",
        (
            _c("job_id", "TEXT", "The job.", references="jobs.id"),
            _c(
                "path",
                "TEXT",
                "Dotted path of the parameter (`epochs`, `model.n_layers`, `items.0`).",
            ),
            _c(
                "value",
                "",
                "The value with its own SQLite type: an integer stays INTEGER, so `value > 2` compares numbers.",
            ),
            _c("type", "TEXT", f"Kind of value: {_VALUE_TYPES}."),
            _c(
                "meta",
                "INTEGER",
                "1 for a `Meta` parameter or a value under one (not a setting: where, how "
                "many GPUs...), else NULL; NULL as well for jobs written before xpm "
                "recorded it.",
                since=5,
            ),
        ),
        ("job_id", "path"),
        without_rowid=True,
    ),
    Table(
        "tags",
        "Tags of the job (`tag(value)` in its configuration), from its tags.json.",
        (
            _c("job_id", "TEXT", "The job.", references="jobs.id"),
            _c("key", "TEXT", "Tag name."),
            _c("value", "", "Tag value with its own SQLite type (integers stay INTEGER)."),
            _c("type", "TEXT", "Kind of value: `int`, `float`, `bool`, `str` or `null`."),
        ),
        ("job_id", "key"),
        without_rowid=True,
    ),
    Table(
        "results",
        "Every result reported by the task (`self.report(key=value, step=...)`), from its "
        "results.jsonl.",
        (
            _c("job_id", "TEXT", "The job.", references="jobs.id"),
            _c(
                "seq",
                "INTEGER",
                "Line number of the report in results.jsonl (0 first): later reports have larger numbers.",
            ),
            _c("key", "TEXT", "Result name."),
            _c("value", "", "Reported value with its own SQLite type (NaN is stored as NULL)."),
            _c("type", "TEXT", "Kind of value: `int`, `float`, `bool`, `str` or `null`."),
            _c("step", "INTEGER", "The `step` given to report(), NULL when none was given."),
            _c("time", "REAL", f"When it was reported. {_TIME}."),
        ),
        ("job_id", "seq", "key"),
        without_rowid=True,
    ),
    Table(
        "task_tables",
        "One row per task type with jobs in the index: the name of its per-task table (one "
        "row per job, a column per parameter, tag and latest result; see "
        '"One table per task" above).',
        (
            _c("task_id", "TEXT", "Task type id.", since=3),
            _c(
                "name",
                "TEXT",
                "Name of its table: the last part of the task id (`evaluate`) unless another "
                "task or a table of the index has it, then the whole task id.",
                since=3,
            ),
        ),
        ("task_id",),
        since=3,
    ),
    Table(
        "task_columns",
        "The columns of each per-task table after the fixed ones: where each comes from.",
        (
            _c("task_id", "TEXT", "Task type id.", references="task_tables.task_id", since=3),
            _c(
                "kind",
                "TEXT",
                "`result`, `tag`, `param` or `meta` (a `Meta` parameter, since schema 5).",
                since=3,
            ),
            _c("key", "TEXT", "Result name, tag name or dotted parameter path.", since=3),
            _c(
                "name",
                "TEXT",
                "Column name in the task's table: the key itself, or `kind:key` when a "
                "fixed column, a result or a tag already has that name.",
                since=3,
            ),
        ),
        ("task_id", "kind", "key"),
        since=3,
        without_rowid=True,
    ),
    Table(
        "results_read",
        "How much of each job's results.jsonl is in the index (results are read from there "
        "on, while the job runs).",
        (
            _c("job_id", "TEXT", "The job.", references="jobs.id", since=3),
            _c("bytes", "INTEGER", "Bytes of results.jsonl read (whole lines only).", since=3),
            _c("lines", "INTEGER", "Lines read: the `seq` of the next report.", since=3),
            _c(
                "counts",
                "TEXT",
                "Reports per result key so far, as a JSON object (for the per-key cap).",
                since=3,
            ),
            _c(
                "file",
                "INTEGER",
                "Inode of the results.jsonl read: a new attempt writes a new file, read from "
                "its start.",
                since=4,
            ),
        ),
        ("job_id",),
        since=3,
        without_rowid=True,
    ),
    Table(
        "job_writes",
        "The latest writes of `jobs`, `submissions` and `runs`, one row per written row, "
        "appended by triggers (the last 20,000 are kept): the web view updates what it "
        "computed from an experiment's jobs by the jobs written since, instead of reading "
        "them all again.",
        (
            _c("seq", "INTEGER", "Order of the write (grows by one per row written).", since=10),
            _c("job_id", "TEXT", "The job written (NULL for a write of `runs`).", since=10),
            _c("run", "TEXT", "The run written (for `submissions` and `runs`).", since=10),
            _c(
                "kind",
                "TEXT",
                "`added`, `removed`, `moved` (its id or task changed), `settings` (its "
                "`params_digest` changed) or `written` for a job's row; `submitted` for a "
                "submission, `run` for a run.",
                since=10,
            ),
        ),
        ("seq",),
        since=10,
    ),
)

VIEWS: tuple[View, ...] = (
    View(
        "job_git_states",
        "The git states of the code that produced each job's state and results: those of its "
        "latest attempt (for attempts launched before schema 2, those of `jobs.run`). Jobs "
        "of a commit: `SELECT job_id FROM job_git_states jg JOIN git_states g ON g.id = "
        "jg.git_state WHERE g.commit_sha LIKE 'abc123%'`.",
        "SELECT a.job_id, a.position, a.git_state\n"
        "FROM attempt_git_states a JOIN jobs j ON j.id = a.job_id AND a.attempt = j.attempt\n"
        "UNION ALL\n"
        "SELECT j.id, rg.position, rg.git_state FROM jobs j\n"
        "JOIN run_git_states rg ON rg.run = j.run\n"
        "WHERE NOT EXISTS (SELECT 1 FROM attempts a WHERE a.job_id = j.id AND a.attempt = j.attempt)",
        (
            ("job_id", "The job (`jobs.id`)."),
            ("position", "0 for the experiment's own repository, then 1, 2..."),
            ("git_state", "The git state (`git_states.id`)."),
        ),
        since=2,
    ),
    View(
        "latest_results",
        "The latest reported value of each result of each job (the report with the largest `seq`).",
        "SELECT job_id, key, value, type, step, time, MAX(seq) AS seq\n"
        "FROM results GROUP BY job_id, key",
        (
            ("job_id", "The job (`jobs.id`)."),
            ("key", "Result name."),
            ("value", "Its latest value."),
            ("type", "Kind of that value."),
            ("step", "Step of that report."),
            ("time", "When it was reported."),
            ("seq", "Line of that report in results.jsonl."),
        ),
    ),
    View(
        "job_summary",
        "One row per job with its experiment, commit, and its tags, parameters and latest "
        "results as JSON objects: `json_extract(params, '$.\"model.n_layers\"')` (quote dotted "
        "keys), `json_extract(results, '$.accuracy')`, `json_extract(tags, '$.model')`. "
        "SQLite writes JSON numbers with 15 significant digits: to compare a float exactly "
        "(`1/3`, not `0.1`), filter the `params`, `tags` or `results` table instead.",
        "SELECT j.id, j.task_id, j.state, j.reason, j.submit_time, j.start_time, j.end_time,\n"
        "  j.exit_code, j.launcher, j.launcher_job_id, j.host, j.path,\n"
        "  r.experiment, j.last_run, j.run, g.commit_sha,\n"
        "  (SELECT json_group_object(t.key, t.value) FROM tags t WHERE t.job_id = j.id) AS tags,\n"
        "  (SELECT json_group_object(p.path, p.value) FROM params p\n"
        "     WHERE p.job_id = j.id AND p.type != 'config') AS params,\n"
        "  (SELECT json_group_object(l.key, l.value) FROM latest_results l\n"
        "     WHERE l.job_id = j.id) AS results\n"
        "FROM jobs j LEFT JOIN runs r ON r.id = j.last_run\n"
        "LEFT JOIN git_states g ON g.id = j.git_state",
        (
            ("id", "Job identifier."),
            ("task_id", "Task type id."),
            ("state", "State of the job."),
            ("reason", "Why it failed, if it did."),
            ("submit_time", "When the latest attempt was submitted."),
            ("start_time", "When it started."),
            ("end_time", "When it ended."),
            ("exit_code", "Exit status of the job process."),
            ("launcher", "Launcher kind."),
            ("launcher_job_id", "The launcher's id for the job."),
            ("host", "Host where it ran."),
            ("path", "Job directory relative to the workdir."),
            ("experiment", "Experiment of the run that submitted it last."),
            ("last_run", "That run (`runs.id`)."),
            ("run", "The run that launched the attempt behind its state (`runs.id`)."),
            (
                "commit_sha",
                "Commit of the experiment's repository when that attempt was launched.",
            ),
            ("tags", 'Tags as a JSON object `{"model": "cnn", ...}`.'),
            (
                "params",
                "Parameters as a JSON object keyed by dotted path (nested configs flattened).",
            ),
            ("results", 'Latest value of each result as a JSON object `{"accuracy": 0.93}`.'),
        ),
    ),
)


TABLE_NAMES = tuple(t.name for t in TABLES)


def table(name: str) -> Table:
    """The table called ``name``."""
    for t in TABLES:
        if t.name == name:
            return t
    raise KeyError(name)
