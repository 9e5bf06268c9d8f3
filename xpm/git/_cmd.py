"""Running the git command line: one helper, a clean environment, errors as GitError.

xpm talks to git through its command line rather than GitPython: every operation it needs
(status, a temporary index, ``write-tree``, ``commit-tree``, ``update-ref``) is one plumbing
command, the output formats used are stable (``--porcelain=v2 -z``), and nothing heavy is
imported.  Variables such as ``GIT_DIR`` or ``GIT_INDEX_FILE`` inherited from a calling git
(inside a hook) are removed so each command sees the repository it is pointed at.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..errors import GitError

# Set by git for hooks and by users; they would redirect our commands to another repository,
# index or object store.
_REPO_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_PREFIX",
    "GIT_NAMESPACE",
    "GIT_LITERAL_PATHSPECS",
    "GIT_GLOB_PATHSPECS",
    "GIT_NOGLOB_PATHSPECS",
    "GIT_ICASE_PATHSPECS",
)


def git_env(**extra: str) -> dict[str, str]:
    """The environment for git commands: no repository redirection, C locale messages."""
    env = {k: v for k, v in os.environ.items() if k not in _REPO_VARIABLES}
    env["LC_ALL"] = "C"
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.update(extra)
    return env


def git(
    repo: str | os.PathLike[str],
    *args: str,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    ok_codes: tuple[int, ...] = (0,),
    rc: bool = False,
) -> bytes:
    """Run ``git -C repo ARGS`` and return its standard output (bytes).

    ``rc=True`` returns the exit status (as ASCII bytes) instead.  Raises :class:`GitError` naming the command, the repository and git's message when the
    exit status is not in ``ok_codes`` or git is not installed.
    """
    cmd = ["git", "-C", os.fspath(repo), *args]
    try:
        proc = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            env=env if env is not None else git_env(),
            check=False,
        )
    except FileNotFoundError:
        raise GitError(
            "the git command is not installed (needed to record the code of the run): "
            "install git, or set XPM_GIT=off to run without recording it"
        ) from None
    if proc.returncode not in ok_codes:
        message = proc.stderr.decode("utf-8", "replace").strip()
        raise GitError(f"`git {' '.join(args)}` failed in {repo}: {message}")
    return str(proc.returncode).encode() if rc else proc.stdout


def text(data: bytes) -> str:
    """Decode git output holding paths (file names keep undecodable bytes)."""
    return os.fsdecode(data)


def repo_root(
    path: str | os.PathLike[str], cache: dict[str, str | None] | None = None
) -> str | None:
    """The top directory of the git working tree holding ``path`` (None outside one).

    ``path`` may be a file or a directory, existing or not (its closest existing parent is
    used).  ``cache`` maps directories already asked about to their answer.
    """
    p = Path(path).absolute()
    while not p.is_dir():
        if p.parent == p:
            return None
        p = p.parent
    key = str(p)
    if cache is not None and key in cache:
        return cache[key]
    try:
        out = git(p, "rev-parse", "--show-toplevel")
        root: str | None = text(out).strip() or None
    except GitError as e:
        message = str(e)
        if "not a git repository" in message or "must be run in a work tree" in message:
            root = None
        else:
            raise
    if cache is not None:
        cache[key] = root
    return root


def common_dir(repo: str | os.PathLike[str]) -> Path:
    """The repository's common git directory (shared by its linked worktrees)."""
    out = text(git(repo, "rev-parse", "--git-common-dir")).strip()
    path = Path(out)
    return path if path.is_absolute() else (Path(repo) / path).absolute()


def xpm_dir(repo: str | os.PathLike[str]) -> Path:
    """``<git common dir>/xpm``: the files xpm keeps in a repository (created on demand)."""
    path = common_dir(repo) / "xpm"
    path.mkdir(exist_ok=True)
    return path


def code_root(
    path: str | os.PathLike[str], cache: dict[str, str | None] | None = None
) -> str | None:
    """:func:`repo_root` of ``path``, or None when git ignores ``path`` there.

    An ignored file is not code of the repository: a virtual environment or an installed
    Python (pyenv keeps its versions in an ignored folder of its own repository).
    """
    root = repo_root(path, cache)
    if root is None:
        return None
    p = Path(path).absolute()
    if p.is_dir():
        return root
    ignored = git(root, "check-ignore", "-q", "--", str(p), ok_codes=(0, 1), rc=True)
    return None if ignored == b"0" else root
