"""Looking at jobs and experiments: the library behind ``xpm jobs show`` and
``xpm experiments list|show``.

Everything is read from the index (reconciled for active jobs by :mod:`._select`), the
job directories and the experiment-run records; nothing here writes.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._jobdir import JobDir
from .._vocabulary import run_record
from ..errors import UsageError
from ._locate import reproduction_dir

if TYPE_CHECKING:
    from ..git import GitState


# --- parameters with their defaults ------------------------------------------------------------
def job_params(jobdir: JobDir) -> tuple[list[dict[str, Any]], str | None]:
    """The parameters of a job with their kind and whether they equal the declared default.

    Loads the task's classes (as the job process would) to learn the defaults.  Returns the
    rows (``path``, ``value``, ``kind``: param/meta/constant, ``default``: bool or None when
    unknown) and a note when the classes could not be loaded (then the rows come from
    params.json alone, without kinds nor defaults).
    """
    try:
        from .._config import Config, same_value
        from .._configinfo import MISSING
        from .._serialize import load

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
            is_default = None if default is MISSING else same_value(value, default)
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
        from ..index import flatten_params

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
    from ..git import reproduce_commands

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
    """Everything ``xpm jobs show`` prints about ``job`` (a row from :func:`xpm.workdir.find_job`).

    Keys: ``job`` (the row), ``params``/``params_note``, ``tags``, ``results`` (every report),
    ``history`` (state events), ``run`` and ``git`` (the run that launched the attempt
    behind its state, and the git states of its code; for a job never launched, the newest
    run that submitted it), ``launcher_description``, ``last_submitted_by``,
    ``paths``, ``earlier_attempts`` (how many kept their logs and results), ``rerun`` (shell commands), ``checkout`` (git commands).
    """
    from ..git import find_job_run, job_code, recorded_command, recorded_python
    from ..index import read_results

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
    dest = str(reproduction_dir(workdir, job["id"]))  # absolute: the same from anywhere
    checkout, git = checkout_commands(code.states, dest)
    command = recorded_command(record)
    # The interpreter the run had (its virtualenv), not the one showing the job.
    python = recorded_python(command)
    rerun = [f"{_quote(python)} -m xpm.run {_quote(jobdir.path)}"]
    argv, cwd = command.get("argv"), command.get("cwd")
    if argv and cwd:
        program = rerun_program(command.get("main"), str(argv[0]), python)
        words = [*program, *argv[1 if program else 0 :]]
        rerun.insert(0, f"cd {_quote(cwd)} && {' '.join(shlex.quote(str(w)) for w in words)}")
    if checkout:
        checkout.append(f"xpm reproduce {short}  # does it (at {dest}), and prepares a rerun")
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
        "earlier_attempts": jobdir.earlier_attempts() if jobdir.path.is_dir() else 0,
        "rerun": rerun,
        "checkout": checkout,
    }


# --- experiments --------------------------------------------------------------------------------
def list_experiments(workdir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every experiment of the index: runs, first and last start, job counts by state."""
    from ..index import experiments_summary, index_path, open_index

    workdir = Path(workdir).absolute()
    if not index_path(workdir).exists():
        return []
    with open_index(workdir) as db:
        return experiments_summary(db)


def experiment_details(workdir: str | os.PathLike[str], name: str) -> dict[str, Any]:
    """``xpm experiments show NAME``: its runs (with git state and checkout commands) and
    job counts by state.  An unknown name is a :class:`UsageError` listing the known ones."""
    from ..git import run_git_states
    from ..index import experiment_names, experiment_runs, index_path, open_index

    workdir = Path(workdir).absolute()
    if not index_path(workdir).exists():
        raise UsageError(f"no experiment {name!r}: {workdir} has no index")
    with open_index(workdir) as db:
        found = experiment_runs(db, name)
        if found is None:
            names = experiment_names(db)
            raise UsageError(
                f"no experiment {name!r} in {workdir}: known experiments are "
                f"{', '.join(names) or 'none'} (`xpm experiments list`)"
            )
    for run in found["runs"]:
        record = run_record(workdir, name, run["run_id"])
        commands, states = checkout_commands(
            run_git_states(record) if record.exists() else [], f"../{name}-{run['run_id']}"
        )
        run["git"] = states
        run["checkout"] = commands
    return found


def rerun_program(main: str | None, argv0: str, python: str) -> list[str]:
    """The words that start the recorded experiment again: none for the ``xpm`` script
    (argv[0] says it), ``python -m xpm.cli`` when ``main`` is a module of xpm itself
    (``python -m xpm.cli run-experiment``), else ``python MAIN`` (``python``: the recorded interpreter)."""
    if not main or argv0.endswith("xpm"):
        return []
    package = Path(__file__).resolve().parent.parent  # xpm/
    try:
        inside = Path(main).resolve().relative_to(package.parent).with_suffix("")
    except ValueError:
        return [python, main]
    if inside.parts[0] != package.name:
        return [python, main]
    parts = inside.parts[:-1] if inside.name == "__main__" else inside.parts
    return [python, "-m", ".".join(parts)]
