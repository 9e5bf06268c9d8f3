"""Reproduce: check the pinned code of a job or an experiment run out into a fresh worktree."""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._atomicio import read_json_lines
from .._jobdir import JobDir
from .._vocabulary import run_record
from ..errors import GitError
from ._cmd import git
from ._policy import recorded_python
from ._state import GitState


@dataclass
class Reproduction:
    """What :func:`reproduce` made.

    ``worktrees`` maps each recorded repository to its new worktree; ``commands`` are the
    git commands that were run; ``rerun`` is the shell command that runs the job again from
    those worktrees into ``workdir`` (a separate workdir holding a copy of the job), or
    reruns the experiment script for an experiment run (None when it is unknown).
    """

    worktrees: dict[str, Path]
    commands: list[str]
    rerun: str | None = None
    workdir: Path | None = None
    job: Path | None = None
    states: list[GitState] = field(default_factory=list)


def find_job_run(
    workdir: str | os.PathLike[str], identifier: str, *, before: float | None = None
) -> Path | None:
    """The record (``WORKDIR/experiments/<name>/runs/<run id>.json``) of the newest
    experiment run that submitted the job ``identifier`` (None when no run did);
    ``before``: the newest that submitted it at or before that time.

    Run ids start with their start time, so runs are searched newest first by name.
    """
    runs = Path(workdir).glob("experiments/*/runs/*.jobs.jsonl")
    found: tuple[float, Path] | None = None
    for jobs in sorted(runs, key=lambda p: p.name, reverse=True):
        try:
            content = jobs.read_text(encoding="utf-8")
        except OSError:
            continue
        if identifier not in content:
            continue
        times = [r.get("time") for r in read_json_lines(jobs) if r.get("identifier") == identifier]
        if before is not None:
            times = [t for t in times if isinstance(t, (int, float)) and t <= before]
        if not times:
            continue
        record = jobs.with_name(jobs.name[: -len(".jobs.jsonl")] + ".json")
        if before is None:
            return record
        latest = max(t for t in times if isinstance(t, (int, float)))
        if found is None or latest > found[0]:
            found = (latest, record)
    return found[1] if found is not None else None


@dataclass
class JobCode:
    """The code behind a job's state and results: the attempt that produced them.

    ``run`` is the run that launched that attempt (``<experiment>/<run id>``), ``record``
    its run record when it still exists, ``states`` the git states recorded for the
    attempt, ``launcher`` the launcher's description.  ``launched`` is False for a job never
    launched: then the run is the newest that submitted it, whose code would run it.
    """

    run: str | None
    record: Path | None
    states: list[GitState]
    launched: bool = True
    launcher: dict[str, Any] | None = None


def job_code(jobdir: JobDir) -> JobCode:
    """The code of the attempt behind the state of ``jobdir`` (see :class:`JobCode`).

    It is read from the job directory (the event that started the attempt); an attempt
    launched by an xpm that did not record it there gets the newest run that submitted the
    job before that launch.
    """
    status = jobdir.read_status()
    attempt = status.provenance
    if attempt is not None:
        run = str(attempt["run"])
        experiment, _, run_id = run.rpartition("/")
        record = run_record(jobdir.workdir, experiment, run_id)
        states = [GitState.from_dict(g) for g in attempt.get("git") or []]
        return JobCode(
            run,
            record if record.exists() else None,
            states,
            launcher=attempt.get("launcher_description"),
        )
    launched = status.launched
    before = status.submit_time if launched else None
    found = find_job_run(jobdir.workdir, jobdir.identifier, before=before)
    if found is None:
        return JobCode(None, None, [], launched=launched)
    return JobCode(
        f"{found.parent.parent.name}/{found.stem}",
        found,
        run_git_states(found),
        launched=launched,
    )


def run_git_states(record: str | os.PathLike[str]) -> list[GitState]:
    """The git states stored in an experiment-run record (``git`` key; empty when none)."""
    try:
        data = json.loads(Path(record).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise GitError(f"cannot read the experiment-run record {record}: {e}") from None
    return [GitState.from_dict(d) for d in data.get("git") or []]


def reproduce_commands(state: GitState, dest: str | os.PathLike[str]) -> list[str]:
    """The shell commands that check the code of ``state`` out into a new worktree ``dest``.

    The snapshot is used when there is one (the code exactly as it ran), else the commit.
    Untracked files that were too large for the snapshot are listed as comments.
    """
    sha = state.code_commit
    if sha is None:
        raise GitError(f"the recorded state of {state.repo} has no commit to check out")
    commands = [
        f"git -C {shlex.quote(state.repo)} worktree add --detach {shlex.quote(os.fspath(dest))} {sha}"
    ]
    if state.dirty and state.snapshot is None:
        why = f" ({state.snapshot_error})" if state.snapshot_error else ""
        if state.diff:
            commands.append(
                f"# no snapshot could be made{why}: the recorded diff of the tracked files is "
                "applied on top (`git apply`); untracked files were not kept"
            )
        else:
            commands.append(
                f"# no snapshot could be made{why} and no diff was recorded: this is the commit "
                "without the uncommitted changes the run had"
            )
    for large in state.large_untracked:
        commands.append(
            f"# not in the snapshot (over the size limit): {large['path']}"
            f" ({large['size']} bytes, sha256 {large['sha256']})"
        )
    return commands


def reproduce(
    target: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    rerun_workdir: str | os.PathLike[str] | None = None,
) -> Reproduction:
    """Check out the code of a job or of an experiment run into worktree(s) at ``dest``.

    ``target`` is a job directory (the code of the attempt behind its state and results,
    see :func:`job_code`) or an experiment-run record file.  With one
    repository the worktree is ``dest``; with several, ``dest/<repository name>``.

    For a job, a copy of it (params.json and tags.json, with module files pointed into the
    worktree and upstream job directories linked, not copied) is made in ``rerun_workdir``
    (default: ``<dest>.workdir``) and :attr:`Reproduction.rerun` is the command that runs it
    there with ``python -m xpm.run``, importing the task's code from the worktree.
    """
    target = Path(target).absolute()
    dest = Path(dest).absolute()
    job: JobDir | None = None
    if (target / "params.json").exists():
        job = JobDir.from_path(target)
        code = job_code(job)
        if code.run is None:
            raise GitError(
                f"no experiment run under {job.workdir / 'experiments'} submitted job "
                f"{job.relpath}, so its code is unknown (was it submitted by an older xpm?)"
            )
        run_name, states = code.run.rpartition("/")[2], code.states
        python = recorded_python(recorded_command(code.record))
    elif target.is_file() and target.suffix == ".json" and target.parent.name == "runs":
        record = target
        run_name, states = record.stem, run_git_states(record)
    else:
        raise GitError(
            f"{target} is neither a job directory (with params.json) nor an experiment-run "
            "record (WORKDIR/experiments/<name>/runs/<run id>.json)"
        )
    if not states:
        raise GitError(
            f"the experiment run {run_name} recorded no git repository (its code was not in "
            "one, or XPM_GIT=off was set): there is no pinned code to check out"
        )
    if dest.exists() and any(dest.iterdir()):
        raise GitError(f"{dest} exists and is not empty: give a new directory for the worktree")
    worktrees = _worktree_paths(states, dest)
    commands: list[str] = []
    for state in states:
        if not Path(state.repo).is_dir():
            raise GitError(
                f"the repository {state.repo} recorded by run {run_name} is gone: clone it "
                f"there, then run: {reproduce_commands(state, worktrees[state.repo])[0]}"
            )
        sha = state.code_commit
        if sha is None:
            continue
        git(state.repo, "worktree", "add", "--detach", str(worktrees[state.repo]), sha)
        commands.extend(reproduce_commands(state, worktrees[state.repo]))
        if state.dirty and state.snapshot is None and state.diff:
            # No snapshot could be made: the commit alone is not the code that ran; the
            # recorded diff of the tracked files is (untracked files were not kept).
            try:
                git(
                    worktrees[state.repo], "apply", "--whitespace=nowarn", input=state.diff.encode()
                )
            except GitError as e:
                raise GitError(
                    f"{state.repo}: the run recorded no snapshot ({state.snapshot_error}) and its "
                    f"recorded diff does not apply to {sha[:12]} ({e}); the worktree at "
                    f"{worktrees[state.repo]} holds the commit without the uncommitted changes"
                ) from None
    result = Reproduction(worktrees=worktrees, commands=commands, states=states)
    if job is not None:
        wd = Path(rerun_workdir) if rerun_workdir else dest.with_name(dest.name + ".workdir")
        result.workdir = wd.absolute()
        result.job, result.rerun = _copy_job(job, result.workdir, worktrees, python)
    else:
        result.rerun = _rerun_run(record, states, worktrees)
    return result


def _worktree_paths(states: list[GitState], dest: Path) -> dict[str, Path]:
    if len(states) == 1:
        return {states[0].repo: dest}
    paths: dict[str, Path] = {}
    for state in states:
        name = Path(state.repo).name or "repo"
        candidate, n = dest / name, 1
        while candidate in paths.values():
            n += 1
            candidate = dest / f"{name}-{n}"
        paths[state.repo] = candidate
    return paths


def _in_worktree(path: str, worktrees: dict[str, Path]) -> Path | None:
    p = Path(path)
    for repo, tree in worktrees.items():
        try:
            return tree / p.relative_to(repo)
        except ValueError:
            try:
                return tree / p.resolve().relative_to(Path(repo).resolve())
            except (ValueError, OSError):
                continue
    return None


def recorded_command(record: Path | None) -> dict[str, Any]:
    """The ``command`` entry of a run record: how the experiment was started (``main``,
    ``argv``, ``cwd``, ``python``); {} when there is none or the record is unreadable."""
    if record is None:
        return {}
    try:
        command = json.loads(record.read_text(encoding="utf-8")).get("command")
    except (OSError, ValueError, AttributeError):
        return {}
    return command if isinstance(command, dict) else {}


def _copy_job(
    job: JobDir, workdir: Path, worktrees: dict[str, Path], python: str
) -> tuple[Path, str]:
    doc = json.loads(job.params.read_text(encoding="utf-8"))
    roots: list[str] = []
    for obj in doc.get("objects", []):
        file, module = obj.get("file"), obj.get("module")
        moved = _in_worktree(file, worktrees) if isinstance(file, str) else None
        if moved is None or not isinstance(module, str):
            continue
        depth = module.count(".") + (1 if moved.name == "__init__.py" else 0)
        root = str(moved.parents[depth]) if module != "__main__" else str(moved.parent)
        if root not in roots:
            roots.append(root)
    upstream: set[tuple[str, str]] = set()
    doc = _rewrite(doc, worktrees, upstream)
    copy = JobDir(workdir, job.task_id, job.identifier)
    copy.path.mkdir(parents=True, exist_ok=True)
    copy.write_params(json.dumps(doc, indent=1) + "\n")
    copy.write_tags(job.read_tags())
    for task_id, identifier in sorted(upstream - {(job.task_id, job.identifier)}):
        link = JobDir(workdir, task_id, identifier).path
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(JobDir(job.workdir, task_id, identifier).path)
    pythonpath = os.pathsep.join(roots)
    rerun = (
        f"cd {shlex.quote(str(workdir))} && "
        f"PYTHONPATH={shlex.quote(pythonpath)}${{PYTHONPATH:+:$PYTHONPATH}} "
        f"{shlex.quote(python)} -m xpm.run {shlex.quote(str(copy.path))}"
    )
    return copy.path, rerun


def _rewrite(value: Any, worktrees: dict[str, Path], upstream: set[tuple[str, str]]) -> Any:
    if isinstance(value, list):
        return [_rewrite(v, worktrees, upstream) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, v in value.items():
        if key == "file" and isinstance(v, str):
            moved = _in_worktree(v, worktrees)
            out[key] = str(moved) if moved is not None else v
        else:
            out[key] = _rewrite(v, worktrees, upstream)
    if out.get("base") == "workdir" and isinstance(out.get("$path"), str):
        parts = out["$path"].split("/")
        if len(parts) >= 3 and parts[0] == "jobs":
            upstream.add((parts[1], parts[2]))
    return out


def _rerun_run(record: Path, states: list[GitState], worktrees: dict[str, Path]) -> str | None:
    command = recorded_command(record)
    main, argv = command.get("main"), command.get("argv") or []
    moved = _in_worktree(main, worktrees) if isinstance(main, str) else None
    if moved is None:
        return None
    args = " ".join(shlex.quote(str(a)) for a in argv[1:])
    return (
        f"cd {shlex.quote(str(moved.parent))} && {shlex.quote(recorded_python(command))} "
        f"{shlex.quote(str(moved))} {args}"
    ).rstrip()
