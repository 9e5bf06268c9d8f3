"""The dirty-tree policy and the git recording of one experiment run."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .._vocabulary import DIRTY_POLICIES, DirtyPolicy, as_dirty_policy
from ..errors import ExperimentError, GitError
from ._cmd import code_root
from ._pins import pin_state
from ._state import GitState, capture


def check_policy(policy: str) -> DirtyPolicy:
    """``policy`` when it is a valid ``dirty_git`` value; ExperimentError otherwise."""
    checked = as_dirty_policy(policy)
    if checked is None:
        raise ExperimentError(
            f"dirty_git={policy!r} is not a dirty-tree policy: use one of "
            f"{', '.join(DIRTY_POLICIES)}"
        )
    return checked


def git_enabled() -> bool:
    """False when the environment sets ``XPM_GIT=off`` (no git state recorded at all)."""
    return os.environ.get("XPM_GIT", "").lower() not in ("off", "0", "false", "no")


def _files(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def dirty_error(states: Iterable[GitState]) -> ExperimentError | None:
    """The error ``dirty_git="error"`` raises for ``states`` (None when all are clean)."""
    dirty = [s for s in states if s.dirty]
    if not dirty:
        return None
    lines = [f"{s.repo} has uncommitted changes: {_files(s.dirty_files())}" for s in dirty]
    return ExperimentError(
        "; ".join(lines)
        + ". dirty_git='error' refuses to run code that is not committed: commit the changes"
        " (or stash them with `git stash -u`), or use dirty_git='warn' to run anyway on a"
        " pinned snapshot of them"
    )


class RunGit:
    """The git states recorded by one experiment run, their policy and their pins.

    ``pin=False`` (dry runs) captures without creating snapshots or pins: the states only
    serve the policy check.
    """

    def __init__(
        self,
        run_id: str,
        workdir: Path,
        policy: str = "warn",
        *,
        pin: bool = True,
        echo: Callable[[str], None] | None = None,
        max_untracked_size: int | None = None,
    ) -> None:
        self.run_id = run_id
        self.workdir = workdir
        self.policy = check_policy(policy)
        self.pin = pin
        self.enabled = git_enabled()
        self.echo = echo or (lambda line: print(line, file=sys.stderr))
        self.max_untracked_size = max_untracked_size
        self.states: list[GitState] = []
        self._roots: dict[str, str | None] = {}
        self._records: list[dict[str, Any]] | None = None
        self._failed: set[str] = set()  # repositories whose capture failed (warned once)
        self._warned: set[str] = set()
        self._seen_classes: set[type] = set()

    def records(self) -> list[dict[str, Any]]:
        """The states as JSON-able dictionaries (what run records hold under ``git``, and
        the event starting each attempt of a job).  Not to be modified: it is cached."""
        if self._records is None or len(self._records) != len(self.states):
            # Asked at every launch: built again only when a repository was added.
            self._records = [s.to_dict() for s in self.states]
        return self._records

    def start(self, code_paths: Iterable[str | os.PathLike[str]] = ()) -> dict[str, Any]:
        """Capture the experiment's code: the ``__main__`` file (or the current directory)
        and ``code_paths``.  Returns the run-record entries: ``git`` (:meth:`records`) and
        ``command`` (``main`` file, ``argv``, ``cwd``, ``python``: how to run the
        experiment again)."""
        main = getattr(sys.modules.get("__main__"), "__file__", None)
        main = os.path.abspath(main) if main else None
        code_paths = list(code_paths)
        if main is not None and _in_xpm(main):
            # `python -m xpm.cli run-experiment`: __main__ is xpm's own command line (in a
            # git checkout when xpm is installed editable); the code is that of code_paths.
            self.add(code_paths or [os.getcwd()])
        else:
            self.add([main or os.getcwd(), *code_paths])
        command = {
            "main": main,
            "argv": list(sys.argv),
            "cwd": os.getcwd(),
            "python": sys.executable,  # its virtualenv: the packages the run had
        }
        return {"git": self.records(), "command": command}

    def add_class(self, cls: type) -> bool:
        """Capture the repository of the module defining ``cls`` when it is a new one;
        True when a state was added."""
        if cls in self._seen_classes:
            return False
        self._seen_classes.add(cls)
        file = getattr(sys.modules.get(cls.__module__), "__file__", None)
        if file is None or _in_xpm(file) or any(_under(file, s.repo) for s in self.states):
            return False
        return bool(self.add([file]))

    def add(self, paths: Iterable[str | os.PathLike[str]]) -> list[GitState]:
        """Capture the repositories of ``paths`` not captured yet, apply the policy, pin."""
        if not self.enabled:
            return []
        known = {s.repo for s in self.states}
        todo: list[str | os.PathLike[str]] = []
        for path in paths:
            try:
                root = code_root(path, self._roots)
            except GitError as e:
                self._problem(e)
                continue
            if root is not None and root not in known and root not in self._failed:
                known.add(root)
                todo.append(root)
        if not todo:
            return []
        try:
            states = capture(
                todo,
                snapshot=self.pin and self.policy != "error",
                max_untracked_size=self.max_untracked_size,
                roots_cache=self._roots,
                exclude_dirs=[self.workdir] if self.workdir is not None else (),
            )
        except GitError as e:
            self._failed.update(str(t) for t in todo)  # not retried for every task class
            self._problem(e)
            return []
        if self.policy == "error":
            error = dirty_error(states)
            if error is not None:
                raise error
        for state in states:
            refs = pin_state(state, self.run_id, workdir=self.workdir) if self.pin else []
            if state.dirty and self.policy == "warn":
                self._warn(state, refs)
            elif state.snapshot_error and self.policy == "ignore":
                # Silent about dirt, not about code that is kept only as a diff.
                self.echo(f"xpm: warning: {self._no_snapshot(state)}")
        self.states.extend(states)
        return states

    def _problem(self, error: GitError) -> None:
        if self.policy == "error":
            raise ExperimentError(
                f"the git state of the code could not be recorded: {error} "
                "(dirty_git='error' needs it; use dirty_git='warn' to run anyway)"
            ) from None
        if self.policy == "warn" and str(error) not in self._warned:
            self._warned.add(str(error))
            self.echo(f"xpm: warning: {error}")

    def _warn(self, state: GitState, refs: list[str]) -> None:
        where = state.branch or f"detached HEAD {(state.commit or '')[:12]}"
        message = (
            f"xpm: warning: {state.repo} ({where}) has uncommitted changes: "
            f"{_files(state.dirty_files(), 5)}"
        )
        if state.snapshot:
            message += f"; the code as it is now is kept as {state.snapshot[:12]}"
            snapshot_refs = [r for r in refs if "/snapshots/" in r]
            if snapshot_refs:
                message += f" ({snapshot_refs[0]})"
        if state.snapshot_error:
            message += "; " + self._no_snapshot(state)
        if state.large_untracked:
            message += "; not kept (over the size limit): " + _files(
                [f["path"] for f in state.large_untracked], 5
            )
        self.echo(message)

    @staticmethod
    def _no_snapshot(state: GitState) -> str:
        return (
            f"no snapshot of {state.repo} could be made ({state.snapshot_error}); its commit, "
            "branch and diff are recorded, untracked files are not kept"
        )


def _in_xpm(file: str) -> bool:
    """Whether ``file`` is part of the xpm package itself (never an experiment's code)."""
    return _under(file, str(Path(__file__).parent.parent))


def _under(file: str, root: str) -> bool:
    try:
        Path(file).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return False
    return True


def recorded_python(command: dict[str, Any] | None) -> str:
    """The interpreter a run record's ``command`` ran with, to run it (or its jobs) again:
    the one of its virtualenv, not the one reading the record.  This process's own when
    the record predates it, or when that interpreter is gone (a deleted virtualenv)."""
    python = (command or {}).get("python")
    if isinstance(python, str) and os.path.isabs(python) and os.access(python, os.X_OK):
        return python
    return sys.executable
