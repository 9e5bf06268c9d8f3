"""Looking at jobs and experiments: the library behind ``xpm jobs show``,
``xpm experiments list|show`` and ``xpm query``.

Everything is read from the index (reconciled for active jobs by :mod:`xpm._manage`), the
job directories and the experiment-run records; nothing here writes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._jobdir import JobDir
from ._vocabulary import run_record
from .errors import IndexDatabaseError, UsageError

if TYPE_CHECKING:
    from .git import GitState


# --- parameters with their defaults ------------------------------------------------------------
def job_params(jobdir: JobDir) -> tuple[list[dict[str, Any]], str | None]:
    """The parameters of a job with their kind and whether they equal the declared default.

    Loads the task's classes (as the job process would) to learn the defaults.  Returns the
    rows (``path``, ``value``, ``kind``: param/meta/constant, ``default``: bool or None when
    unknown) and a note when the classes could not be loaded (then the rows come from
    params.json alone, without kinds nor defaults).
    """
    try:
        from ._config import Config, _same_value
        from ._configinfo import MISSING
        from ._serialize import load

        cfg = load(jobdir.params, workdir=jobdir.workdir)
    except Exception as e:  # noqa: BLE001 - user code may fail to import in any way
        return _raw_params(jobdir), f"defaults unknown: cannot load the task's classes ({e})"
    rows: list[dict[str, Any]] = []

    def walk(obj: Config, prefix: str, seen: set[int]) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        for p, value in obj.__xpm_values__():
            path = prefix + p.name
            default = p.reference_default()
            is_default = None if default is MISSING else _same_value(value, default)
            if isinstance(value, Config):
                rows.append(
                    {
                        "path": path,
                        "value": type(value).__name__,
                        "kind": p.kind.value,
                        "default": is_default,
                    }
                )
                walk(value, path + ".", seen)
                continue
            shown = "(missing)" if value is MISSING else _plain(value)
            rows.append({"path": path, "value": shown, "kind": p.kind.value, "default": is_default})

    if isinstance(cfg, Config):
        walk(cfg, "", set())
    return rows, None


def _plain(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "name") and hasattr(type(value), "__members__"):
        return value.name
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _raw_params(jobdir: JobDir) -> list[dict[str, Any]]:
    try:
        from .index import flatten_params

        doc = json.loads(jobdir.params.read_text(encoding="utf-8"))
        flat = flatten_params(doc)
    except (OSError, ValueError):
        return []
    return [{"path": p, "value": v, "kind": None, "default": None} for p, v, _ in flat]


# --- jobs show ----------------------------------------------------------------------------------
def _quote(path: str | os.PathLike[str]) -> str:
    return shlex.quote(os.fspath(path))


def checkout_commands(states: list[GitState], dest: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Git commands checking the code of ``states`` out at ``dest``, and the states described.

    Empty when there is no state.
    """
    from .git import reproduce_commands

    commands: list[str] = []
    for n, state in enumerate(states):
        where = dest if len(states) == 1 else f"{dest}/{Path(state.repo).name or f'repo{n}'}"
        if state.code_commit is not None:
            commands += reproduce_commands(state, where)
    described = [
        {
            "repo": s.repo,
            "commit": s.commit,
            "branch": s.branch,
            "dirty": s.dirty,
            "snapshot": s.snapshot,
            "snapshot_error": s.snapshot_error,
            "dirty_files": s.dirty_files(),
        }
        for s in states
    ]
    return commands, described


def job_details(workdir: str | os.PathLike[str], job: dict[str, Any]) -> dict[str, Any]:
    """Everything ``xpm jobs show`` prints about ``job`` (a row from :func:`xpm._manage.find_job`).

    Keys: ``job`` (the row), ``params``/``params_note``, ``tags``, ``results`` (every report),
    ``history`` (state events), ``run`` and ``git`` (the run that launched the attempt
    behind its state, and the git states of its code; for a job never launched, the newest
    run that submitted it), ``launcher_description``, ``last_submitted_by``,
    ``paths``, ``rerun`` (shell commands), ``checkout`` (git commands).
    """
    from .git import find_job_run, job_code, recorded_command, recorded_python
    from .index import read_results

    workdir = Path(workdir).absolute()
    jobdir = JobDir(workdir, job["task_id"], job["id"])
    status = jobdir.read_status()
    params, note = job_params(jobdir) if jobdir.params.exists() else ([], "params.json is gone")
    # The run and code of the attempt behind the state (a later submission of a DONE job
    # does not run it again); the job directory says, even while the run goes on.
    code = job_code(jobdir)
    record = code.record
    latest = find_job_run(workdir, job["id"])
    submitted = None if latest is None else f"{latest.parent.parent.name}/{latest.stem}"
    short = job["id"][:12]
    dest = f"../reproduce-{short}"
    checkout, git = checkout_commands(code.states, dest)
    command = recorded_command(record)
    # The interpreter the run had (its virtualenv), not the one showing the job.
    python = recorded_python(command)
    rerun = [f"{_quote(python)} -m xpm.run {_quote(jobdir.path)}"]
    argv, cwd = command.get("argv"), command.get("cwd")
    if argv and cwd:
        program = _program(command.get("main"), str(argv[0]), python)
        words = [*program, *argv[1 if program else 0 :]]
        rerun.insert(0, f"cd {_quote(cwd)} && {' '.join(shlex.quote(str(w)) for w in words)}")
    if checkout:
        checkout.append(f"xpm reproduce {short} --dir {dest}  # does it, and prepares a rerun")
    return {
        "job": job,
        "params": params,
        "params_note": note,
        "tags": job.get("tags", {}),
        "results": read_results(jobdir) if jobdir.path.is_dir() else [],
        "history": status.history,
        "launcher": {
            "kind": status.launcher,
            "job_id": status.launcher_job_id,
            "host": status.host,
            "pid": status.pid,
        },
        "git": git,
        "run": code.run,
        "launched": code.launched,
        "launcher_description": code.launcher,
        "last_submitted_by": submitted,
        "paths": {
            "directory": str(jobdir.path),
            "params": str(jobdir.params),
            "stdout": str(jobdir.stdout),
            "stderr": str(jobdir.stderr),
            "results": str(jobdir.results),
        },
        "rerun": rerun,
        "checkout": checkout,
    }


# --- experiments --------------------------------------------------------------------------------
def list_experiments(workdir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every experiment of the index: runs, first and last start, job counts by state."""
    from .index import index_path, open_index

    workdir = Path(workdir).absolute()
    if not index_path(workdir).exists():
        return []
    with open_index(workdir) as db:
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


def experiment_details(workdir: str | os.PathLike[str], name: str) -> dict[str, Any]:
    """``xpm experiments show NAME``: its runs (with git state and checkout commands) and
    job counts by state.  An unknown name is a :class:`UsageError` listing the known ones."""
    from .git import run_git_states
    from .index import index_path, open_index

    workdir = Path(workdir).absolute()
    if not index_path(workdir).exists():
        raise UsageError(f"no experiment {name!r}: {workdir} has no index")
    with open_index(workdir) as db:
        found = db.query_dicts("SELECT * FROM experiments WHERE name = ?", [name])
        if not found:
            names = [r[0] for r in db.query("SELECT name FROM experiments ORDER BY name")]
            raise UsageError(
                f"no experiment {name!r} in {workdir}: known experiments are "
                f"{', '.join(names) or 'none'} (`xpm experiments list`)"
            )
        runs = db.query_dicts(
            "SELECT id, run_id, run_mode, start_time, end_time, host, user FROM runs "
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
        record = run_record(workdir, name, run["run_id"])
        run["jobs"] = per_run.get(run["id"], {})
        commands, states = checkout_commands(
            run_git_states(record) if record.exists() else [], f"../{name}-{run['run_id']}"
        )
        run["git"] = states
        run["checkout"] = commands
    return {"experiment": found[0], "runs": runs, "jobs": {r[0]: r[1] for r in total}}


# --- query --------------------------------------------------------------------------------------
def run_query(
    workdir: str | os.PathLike[str], sql: str, params: Any = ()
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``sql`` on the index opened read-only; returns column names and rows.

    A statement that would write is a :class:`UsageError` (exit 2) saying so; so is an SQL
    error (with SQLite's message).
    """
    from .index import REBUILD_HINT, check_header, index_path, readonly_uri

    path = index_path(Path(workdir).absolute())
    if not path.exists():
        raise UsageError(f"no index at {path}: run an experiment first or `xpm index rebuild`")
    check_header(path)
    try:
        conn = sqlite3.connect(readonly_uri(path), uri=True, timeout=30)
    except sqlite3.Error as e:
        raise IndexDatabaseError(f"{path}: cannot open the index ({e}): {REBUILD_HINT}") from None
    conn.set_authorizer(_refuse_attach)
    try:
        conn.execute("PRAGMA query_only = 1")
        try:
            cursor = conn.execute(sql, params)
            columns = [d[0] for d in cursor.description or ()]
            rows = cursor.fetchall()
        except sqlite3.Error as e:
            text = str(e)
            if any(w in text for w in ("readonly", "read-only", "query_only", "not authorized")):
                raise UsageError(
                    f"xpm query is read-only ({text}): the index is derived from the job "
                    "directories; change jobs with `xpm jobs ...` commands"
                ) from None
            if any(w in text for w in ("malformed", "not a database", "disk I/O error")):
                raise IndexDatabaseError(f"{path} is damaged ({text}): {REBUILD_HINT}") from None
            raise UsageError(_sql_error_hint(text)) from None
    finally:
        conn.close()
    return columns, rows


def _sql_error_hint(text: str) -> str:
    """SQLite's message, and the fix that goes with it."""
    binding = re.search(r"supply a value for binding parameter :?(\w+)", text)
    if binding:
        name = binding.group(1)
        if name.isdigit():
            return (
                f"SQL error: {text}: write named parameters (:name) and give each with "
                "--param name=VALUE"
            )
        return f"SQL error: {text}: give it with --param {name}=VALUE"
    if "number of bindings" in text:
        return (
            f"SQL error: {text}: write named parameters (:name) and give each with "
            "--param name=VALUE"
        )
    if "no such table" in text or "no such column" in text:
        return f"SQL error: {text} (`xpm query --schema` lists the tables and columns)"
    return f"SQL error: {text}"


_INTEGER = re.compile(r"^-?(0|[1-9][0-9]*)$")
_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]*)\.[0-9]+([eE][-+]?[0-9]+)?$")


def _program(main: str | None, argv0: str, python: str) -> list[str]:
    """The words that start the recorded experiment again: none for the ``xpm`` script
    (argv[0] says it), ``python -m xpm.cli`` when ``main`` is a module of xpm itself
    (``python -m xpm.cli run-experiment``), else ``python MAIN`` (``python``: the recorded interpreter)."""
    if not main or argv0.endswith("xpm"):
        return []
    package = Path(__file__).resolve().parent
    try:
        inside = Path(main).resolve().relative_to(package.parent).with_suffix("")
    except ValueError:
        return [python, main]
    if inside.parts[0] != package.name:
        return [python, main]
    parts = inside.parts[:-1] if inside.name == "__main__" else inside.parts
    return [python, "-m", ".".join(parts)]


def parse_query_params(items: Sequence[str]) -> dict[str, Any]:
    """``--param name=value`` options as SQL parameters: integers and decimal numbers
    (``3``, ``-2``, ``0.5``) are bound as numbers, so ``value > :n`` compares numbers;
    anything else, a leading zero (``0123``, a commit prefix) included, as text.  Integers
    beyond SQLite's 64 bits are refused (:class:`UsageError`)."""
    params: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().lstrip(":")
        if not sep or not name.isidentifier():
            raise UsageError(
                f"--param {item!r}: write NAME=VALUE for a :NAME in the SQL (e.g. --param commit=3fa2)"
            )
        value: Any = text
        if _INTEGER.match(text):
            digits = len(text.lstrip("+-"))
            if digits > 19 or not -(2**63) <= int(text) < 2**63:
                shown = text if len(text) <= 30 else f"{text[:20]}...({len(text)} characters)"
                raise UsageError(
                    f"--param {name}={shown}: an integer beyond SQLite's 64 bits (at most "
                    f"{2**63 - 1}); write it as a decimal (e.g. 1.0e20) to compare as a float"
                )
            value = int(text)
        elif _DECIMAL.match(text):
            value = float(text)
        params[name] = value
    return params


def _refuse_attach(action: int, *_args: Any) -> int:
    """SQLite authorizer: ATTACH would create or open another database file, even read-only."""
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def schema_text(workdir: Path | None = None) -> str:
    """The documented schema of the index (the reference of docs/index.md), as Markdown;
    with ``workdir``, followed by the task tables of its index (when it has one)."""
    from .index import render_markdown

    # The first line of the generated text is an HTML comment for docs/index.md.
    text = render_markdown()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("<!--")).lstrip()
    if workdir is None:
        return text
    from .errors import IndexDatabaseError
    from .index import IndexDB, task_tables_markdown

    try:
        with IndexDB(workdir, readonly=True) as db, db.errors():
            return text + "\n\n" + task_tables_markdown(db.conn)
    except IndexDatabaseError:
        return text  # no index (yet), or an old one: the documented schema is what there is


__all__ = [
    "checkout_commands",
    "experiment_details",
    "job_details",
    "job_params",
    "list_experiments",
    "parse_query_params",
    "run_query",
    "schema_text",
]
