"""Pins: refs under ``refs/xpm/`` that keep the code of every run, and their clean-up.

``refs/xpm/runs/<run id>`` points at the commit a run was made on and
``refs/xpm/snapshots/<run id>`` at its snapshot of uncommitted changes.  Refs keep their
commits through rebase, amend, branch deletion and ``git gc --prune=now``; they are not
pushed by ``git push`` (only ``refs/heads`` and ``refs/tags`` are, by default).

Files kept in ``<git common dir>/xpm/``: ``pins.jsonl`` (one line per pin: ref, commit,
run id, workdir) so that :func:`gc_refs` only removes pins of the workdir it is given, and
``snapshots`` (``<snapshot> <tree>`` lines) read by the post-commit hook.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from .._vocabulary import RUNS, experiments_root
from ..errors import GitError
from ._cmd import common_dir, git, text, xpm_dir
from ._state import GitState

RUNS_PREFIX = "refs/xpm/runs/"
SNAPSHOTS_PREFIX = "refs/xpm/snapshots/"
_RUN_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def pin_ref(run_id: str, *, snapshot: bool = False) -> str:
    """The ref that pins the commit (or the snapshot) of run ``run_id``."""
    if not _RUN_ID.match(run_id) or ".." in run_id or run_id.endswith(".lock"):
        raise GitError(
            f"run id {run_id!r} cannot name a git ref: use letters, digits, '.', '_' and '-'"
        )
    return (SNAPSHOTS_PREFIX if snapshot else RUNS_PREFIX) + run_id


def pin(
    repo: str | os.PathLike[str],
    run_id: str,
    sha: str,
    *,
    snapshot: bool = False,
    workdir: str | os.PathLike[str] | None = None,
) -> str:
    """Pin commit ``sha`` of ``repo`` for run ``run_id``; returns the ref name.

    ``snapshot=True`` pins a snapshot commit (``refs/xpm/snapshots/<run id>``) and records
    its tree for the post-commit hook.  ``workdir`` (where the run's record lives) lets
    :func:`gc_refs` tell this workdir's pins from other workdirs' pins on the same repository.
    """
    ref = pin_ref(run_id, snapshot=snapshot)
    git(repo, "update-ref", "-m", f"xpm: pin run {run_id}", ref, sha)
    _record_pin(repo, ref, sha, run_id, workdir)
    if snapshot:
        tree = text(git(repo, "rev-parse", f"{sha}^{{tree}}")).strip()
        with open(xpm_dir(repo) / "snapshots", "a", encoding="ascii") as fh:
            fh.write(f"{sha} {tree}\n")
    return ref


def pin_state(
    state: GitState, run_id: str, *, workdir: str | os.PathLike[str] | None = None
) -> list[str]:
    """Pin the commit and the snapshot (if any) of ``state``; returns the refs made."""
    refs = []
    if state.commit:
        refs.append(pin(state.repo, run_id, state.commit, workdir=workdir))
    if state.snapshot:
        refs.append(pin(state.repo, run_id, state.snapshot, snapshot=True, workdir=workdir))
    return refs


def _record_pin(
    repo: str | os.PathLike[str],
    ref: str,
    sha: str,
    run_id: str,
    workdir: str | os.PathLike[str] | None,
) -> None:
    record = {
        "ref": ref,
        "sha": sha,
        "run_id": run_id,
        "workdir": str(Path(workdir).absolute()) if workdir is not None else None,
        "time": time.time(),
    }
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(xpm_dir(repo) / "pins.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def list_pins(repo: str | os.PathLike[str]) -> dict[str, str]:
    """Every pin of ``repo``: ref name -> commit."""
    out = git(
        repo,
        "for-each-ref",
        "--format=%(refname) %(objectname)",
        RUNS_PREFIX,
        SNAPSHOTS_PREFIX,
    )
    pins = {}
    for line in text(out).splitlines():
        ref, _, sha = line.rpartition(" ")
        pins[ref] = sha
    return pins


def _pin_workdirs(repo: str | os.PathLike[str]) -> dict[str, set[str | None]]:
    path = common_dir(repo) / "xpm" / "pins.jsonl"
    workdirs: dict[str, set[str | None]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return workdirs
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("ref"), str):
            workdirs.setdefault(record["ref"], set()).add(record.get("workdir"))
    return workdirs


def run_exists(workdir: str | os.PathLike[str], run_id: str) -> bool:
    """Whether ``WORKDIR/experiments/*/runs/<run_id>.json`` exists."""
    experiments = experiments_root(workdir)
    if not experiments.is_dir():
        return False
    return any(
        (exp / RUNS / f"{run_id}.json").exists() for exp in experiments.iterdir() if exp.is_dir()
    )


def gc_refs(
    workdir: str | os.PathLike[str], repo: str | os.PathLike[str], *, dry_run: bool = False
) -> list[str]:
    """Remove the pins of ``repo`` made for runs of ``workdir`` whose run record is gone.

    Pins made from another workdir (or whose workdir was not recorded) are kept: a
    repository can serve several workdirs.  Returns the refs removed (or that would be, with
    ``dry_run``).  The commits themselves disappear at git's next garbage collection.
    """
    wd = str(Path(workdir).absolute())
    owners = _pin_workdirs(repo)
    doomed = []
    for ref in list_pins(repo):
        run_id = ref.rsplit("/", 1)[1]
        workdirs = owners.get(ref, set())
        if wd in workdirs and all(w is not None and not run_exists(w, run_id) for w in workdirs):
            doomed.append(ref)
    if doomed and not dry_run:
        commands = "".join(f"delete {ref}\n" for ref in doomed)
        git(repo, "update-ref", "--stdin", input=commands.encode())
    return doomed
