"""Which workdir a command uses, and why: the one rule shared by every command.

1. ``--workdir DIR`` (or the ``workdir`` argument of a function);
2. for ``xpm run-experiment``, the YAML's ``workdir:`` key (relative to that YAML);
3. ``$XPM_WORKDIR``;
4. ``xpm-workdir`` at the root of the git repository holding the experiment YAML (for
   ``xpm run-experiment``) or the current directory (other commands), else beside the YAML
   (or in the current directory) when there is no repository.

Rule 4 makes ``xpm run-experiment myproject/debug.yaml`` use the same workdir wherever it is
started from, and ``xpm jobs list`` find it from anywhere inside the project.  A workdir
inside the repository is never counted as code (see docs/git.md).  Light: no subprocess,
the repository root is found by looking for ``.git`` upwards.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .._vocabulary import jobs_root
from ..errors import UsageError

#: Environment variable naming the workdir.
WORKDIR_ENV = "XPM_WORKDIR"
#: The name of the default workdir (at the git root, else beside the YAML or here).
DEFAULT_WORKDIR = "xpm-workdir"


def git_root(start: Path) -> Path | None:
    """The closest directory from ``start`` upwards holding ``.git`` (a directory or, in a
    worktree or submodule, a file), or None."""
    start = start.absolute()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def locate_workdir(
    given: str | os.PathLike[str] | None = None,
    *,
    yaml_workdir: Path | None = None,
    yaml_key_origin: str | None = None,
    start: Path | None = None,
) -> tuple[Path, str]:
    """The workdir (absolute) and why it was chosen, as words to show the user.

    ``yaml_workdir`` is the YAML's ``workdir:`` (already resolved against its file, set in
    ``yaml_key_origin``); ``start`` is the experiment YAML's directory (default: the current
    directory).
    """
    if given is not None:
        return Path(given).expanduser().absolute(), "--workdir"
    if yaml_workdir is not None:
        return yaml_workdir.absolute(), f"workdir: in {yaml_key_origin or 'the YAML'}"
    env = os.environ.get(WORKDIR_ENV)
    if env:
        return Path(env).expanduser().absolute(), f"${WORKDIR_ENV}"
    here = (start or Path.cwd()).absolute()
    root = git_root(here)
    if root is not None:
        return root / DEFAULT_WORKDIR, "at the git root"
    where = "beside the YAML" if start is not None else "in the current directory"
    return here / DEFAULT_WORKDIR, where


def resolve_workdir(given: str | os.PathLike[str] | None) -> Path:
    """``given``, else ``$XPM_WORKDIR``, else ``xpm-workdir`` at the git root of the current
    directory, else ``./xpm-workdir`` (absolute); the rule of this module."""
    return locate_workdir(given)[0]


def existing_workdir(given: str | os.PathLike[str] | None) -> Path:
    """:func:`resolve_workdir`, refusing a directory that does not exist."""
    workdir = resolve_workdir(given)
    if not workdir.is_dir():
        raise UsageError(
            f"no workdir at {workdir}: give --workdir DIR or set {WORKDIR_ENV} "
            "(the directory experiments ran in)"
        )
    return workdir


def no_index_hint(workdir: Path) -> str:
    """Why a workdir without ``xpm.db`` shows nothing, and what to do."""
    jobs = jobs_root(workdir)
    with contextlib.suppress(OSError):
        if jobs.is_dir() and any(jobs.iterdir()):
            # Deleted, or copied without it: the job directories are the record.
            return f"no index in {workdir}, but it has job directories: run `xpm index rebuild`"
    return f"no index in {workdir}: no experiment has run there yet"


def reproduction_dir(workdir: Path, ident: str) -> Path:
    """Where ``xpm reproduce`` checks a job's code out by default (and where ``xpm jobs
    show`` says to): beside the project, never in it, since a worktree inside the project's
    repository would make the project's next run dirty."""
    root = git_root(workdir)
    if root is not None:
        return root.parent / f"{root.name}-reproduce-{ident[:12]}"
    return workdir.parent / f"reproduce-{ident[:12]}"
