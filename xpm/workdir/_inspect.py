"""Looking at jobs and experiments: the library behind ``xpm jobs show`` and
``xpm experiments list|show``.

Everything is read from the index (reconciled for active jobs by :mod:`._select`), the
job directories and the experiment-run records; nothing here writes.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._jobdir import JobDir
from .._vocabulary import run_record
from ..errors import UsageError
from ._locate import reproduction_dir

if TYPE_CHECKING:
    from ..git import GitState


# --- parameters with their defaults ------------------------------------------------------------
def param_kinds(jobdir: JobDir) -> tuple[dict[str, tuple[str, bool | None]], str | None]:
    """What the task's classes declare about each parameter of a job: path -> (kind:
    param/meta/constant, whether the value equals the declared default, None when unknown).

    Loads the task's classes (as the job process would) to learn the defaults.  Returns
    them and a note when the classes could not be loaded (then nothing is known).
    """
    try:
        from .._config import Config, same_value
        from .._configinfo import MISSING
        from .._serialize import load

        cfg = load(jobdir.params, workdir=jobdir.workdir)
    except Exception as e:  # noqa: BLE001 - user code may fail to import in any way
        return {}, f"defaults unknown: cannot load the task's classes ({e})"
    kinds: dict[str, tuple[str, bool | None]] = {}

    def walk(obj: Config, prefix: str, seen: set[int]) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        for p, value in obj.__xpm_values__():
            path = prefix + p.name
            default = p.reference_default()
            is_default = None if default is MISSING else same_value(value, default)
            kinds[path] = (p.kind.value, is_default)
            if isinstance(value, Config):
                walk(value, path + ".", seen)

    if isinstance(cfg, Config):
        walk(cfg, "", set())
    return kinds, None


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
    """Everything ``xpm jobs show`` prints about ``job`` (a row from :func:`xpm.workdir.find_job`,
    which caught the index up with the job's directory and launcher).

    The fields of :class:`xpm.index.JobDetails` (the web job page shows the same record;
    which source is the truth for each field is said there), with ``launcher``
    (``kind``, ``job_id``, ``host``, ``pid``), ``launcher_text`` (its description for
    people), ``last_submitted_by`` and ``latest``; then what only the command line adds:
    ``params`` rows also say ``kind`` (param/meta/constant) and ``default`` (whether the
    value is the declared default: the task's classes are loaded to learn it; ``params_note``
    says when they cannot be), ``git`` states are described for people (``dirty_files``),
    ``rerun`` (shell commands) and ``checkout`` (git commands).
    """
    from .._humanize import launcher_text
    from ..git import GitState, recorded_command, recorded_python
    from ..index import open_index, read_job_details

    workdir = Path(workdir).absolute()
    jobdir = JobDir(workdir, job["task_id"], job["id"])
    with open_index(workdir) as db:
        found = read_job_details(db.conn, job["id"], jobdir, every=True)
    if found is None:
        raise UsageError(f"job {job['id'][:12]} is no longer in the index of {workdir}")
    details = {f.name: getattr(found, f.name) for f in fields(found)}
    kinds, note = param_kinds(jobdir) if found.source == "directory" else ({}, None)
    for p in details["params"]:
        kind, is_default = kinds.get(p["path"], (None, None))
        p["kind"] = kind or ("meta" if p["meta"] else None)
        p["default"] = is_default
    details["params_note"] = found.params_note or note
    details.update(
        # The row's tags and latest results as `jobs list --format json` gives them, from
        # the same record (not the index's copy).
        job={
            **found.job,
            "tags": found.tags,
            "results": {r["key"]: r["value"] for r in found.latest},
        },
        launcher=found.launcher,
        launcher_text=launcher_text(found.launcher_description),
        last_submitted_by=found.last_submitted_by,
        latest=found.latest,
    )
    short = job["id"][:12]
    dest = str(reproduction_dir(workdir, job["id"]))  # absolute: the same from anywhere
    states = [GitState.from_dict(g) for g in found.git if g.get("repo")]
    details["checkout"], details["git"] = checkout_commands(states, dest)
    record = None
    if found.run:
        experiment, _, run_id = found.run.rpartition("/")
        record = run_record(workdir, experiment, run_id)
    command = recorded_command(record if record is not None and record.exists() else None)
    # The interpreter the run had (its virtualenv), not the one showing the job.
    python = recorded_python(command)
    rerun = [f"{_quote(python)} -m xpm.run {_quote(jobdir.path)}"]
    argv, cwd = command.get("argv"), command.get("cwd")
    if argv and cwd:
        program = rerun_program(command.get("main"), str(argv[0]), python)
        words = [*program, *argv[1 if program else 0 :]]
        rerun.insert(0, f"cd {_quote(cwd)} && {' '.join(shlex.quote(str(w)) for w in words)}")
    if details["checkout"]:
        details["checkout"].append(
            f"xpm reproduce {short}  # does it (at {dest}), and prepares a rerun"
        )
    details["rerun"] = rerun
    return details


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
