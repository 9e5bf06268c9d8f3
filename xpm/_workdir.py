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

import os
from pathlib import Path

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
