"""The git hooks shipped with xpm: their entry point, their records, install and uninstall.

``python -m xpm.githooks HOOK [ARGS]`` is called by the scripts of the top-level ``hooks/``
folder once they are installed in a repository (:func:`install`):

- ``post-rewrite`` (after ``git commit --amend`` and ``git rebase``) appends the
  ``old new`` commit pairs git gives on stdin to ``<git common dir>/xpm/rewrites``;
- ``post-commit`` appends ``snapshot commit`` when the new commit's tree is the tree of a
  snapshot of uncommitted changes that runs were made on (listed in ``xpm/snapshots``).

``rewrites`` holds one ``<old> <new> <kind>`` line per record (kind: ``amend``, ``rebase``
or ``commit``); :func:`equivalent_commits` follows them backwards.  This module imports
only the standard library (no GitPython) and never fails a git operation: errors are
printed to stderr and the exit status is 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from .errors import GitError

#: The hooks xpm installs (the scripts of the top-level ``hooks/`` folder).
HOOK_NAMES = ("post-commit", "post-rewrite")
#: Suffix given to a hook that was there before xpm's; xpm's hook runs it first.
CHAINED_SUFFIX = ".xpm-chained"
_MARKER = "# xpm-hook:"
_REPO_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX")


def _git(cwd: str | os.PathLike[str] | None, *args: str, clean: bool = True) -> str:
    env = dict(os.environ)
    if clean:
        for name in _REPO_VARIABLES:
            env.pop(name, None)
    env["LC_ALL"] = "C"
    cmd = ["git", *(["-C", os.fspath(cwd)] if cwd is not None else []), *args]
    proc = subprocess.run(cmd, capture_output=True, env=env, check=False)
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        raise GitError(f"`git {' '.join(args)}` failed in {cwd or os.getcwd()}: {message}")
    return os.fsdecode(proc.stdout).strip()


def _common_dir(repo: str | os.PathLike[str] | None, *, clean: bool = True) -> Path:
    path = Path(_git(repo, "rev-parse", "--git-common-dir", clean=clean))
    if path.is_absolute():
        return path
    return (Path(repo) if repo is not None else Path.cwd()).absolute() / path


# --- records -------------------------------------------------------------------------------
def rewrites_file(git_common_dir: str | os.PathLike[str]) -> Path:
    """``<git common dir>/xpm/rewrites``: the records of the hooks."""
    return Path(git_common_dir) / "xpm" / "rewrites"


def read_rewrites(git_common_dir: str | os.PathLike[str]) -> list[tuple[str, str, str]]:
    """The ``(old, new, kind)`` records of a repository (oldest first)."""
    try:
        lines = rewrites_file(git_common_dir).read_text(encoding="ascii").splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2:
            records.append((parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
    return records


def record_rewrites(
    git_common_dir: str | os.PathLike[str], pairs: Iterable[tuple[str, str]], kind: str
) -> int:
    """Append ``old new kind`` lines (one write); returns the number recorded."""
    lines = "".join(f"{old} {new} {kind}\n" for old, new in pairs if old != new)
    if not lines:
        return 0
    path = rewrites_file(git_common_dir)
    path.parent.mkdir(exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, lines.encode("ascii"))
    finally:
        os.close(fd)
    return lines.count("\n")


def equivalent_commits(repo: str | os.PathLike[str], sha: str) -> set[str]:
    """``sha`` and every commit recorded as rewritten into it (amend, rebase) or committed
    by it (a snapshot with the same tree), transitively: runs made on any of them count
    as runs of ``sha``."""
    older: dict[str, list[str]] = {}
    for old, new, _kind in read_rewrites(_common_dir(repo)):
        older.setdefault(new, []).append(old)
    found = {sha}
    todo = [sha]
    while todo:
        for old in older.get(todo.pop(), []):
            if old not in found:
                found.add(old)
                todo.append(old)
    return found


# --- hook entry points ---------------------------------------------------------------------
def post_rewrite(git_common_dir: Path, kind: str, lines: Iterable[str]) -> int:
    """Record the ``old new [extra]`` lines git gives the post-rewrite hook."""
    pairs = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2:
            pairs.append((parts[0], parts[1]))
    return record_rewrites(git_common_dir, pairs, kind or "rewrite")


def post_commit(git_common_dir: Path) -> int:
    """Record ``snapshot HEAD`` for each pinned snapshot whose tree is HEAD's tree."""
    try:
        text = (git_common_dir / "xpm" / "snapshots").read_text(encoding="ascii")
    except FileNotFoundError:
        return 0
    snapshots = [line.split() for line in text.splitlines()]
    if not snapshots:
        return 0
    head, tree = _git(None, "rev-parse", "HEAD", "HEAD^{tree}", clean=False).split()
    known = {(old, new) for old, new, _ in read_rewrites(git_common_dir)}
    pairs = [
        (parts[0], head)
        for parts in snapshots
        if len(parts) == 2 and parts[1] == tree and (parts[0], head) not in known
    ]
    return record_rewrites(git_common_dir, dict.fromkeys(pairs), "commit")


def main(argv: list[str] | None = None) -> int:
    """Run hook ``argv[0]``; always returns 0 (errors are printed to stderr)."""
    args = sys.argv[1:] if argv is None else argv
    hook = args[0] if args else ""
    if hook not in HOOK_NAMES:
        print(f"xpm hooks: unknown hook {hook!r}: use {' or '.join(HOOK_NAMES)}", file=sys.stderr)
        return 0
    try:
        env_dir = os.environ.get("XPM_GIT_COMMON_DIR")
        gitdir = Path(env_dir) if env_dir else _common_dir(None, clean=False)
        if hook == "post-rewrite":
            post_rewrite(gitdir, args[1] if len(args) > 1 else "", sys.stdin.read().splitlines())
        else:
            post_commit(gitdir)
    except Exception as e:  # a hook must never break the user's git command
        print(f"xpm {hook} hook: {type(e).__name__}: {e} (git went on)", file=sys.stderr)
    return 0


# --- install / uninstall -------------------------------------------------------------------
def default_hooks_dir() -> Path:
    """The top-level ``hooks/`` folder of xpm (beside the ``xpm`` package)."""
    return Path(__file__).resolve().parent.parent / "hooks"


def hooks_path(repo: str | os.PathLike[str]) -> Path:
    """Where git looks for the hooks of ``repo`` (``core.hooksPath`` honoured)."""
    path = Path(_git(repo, "rev-parse", "--git-path", "hooks"))
    return path if path.is_absolute() else Path(repo).absolute() / path


def is_xpm_hook(path: Path) -> bool:
    """Whether ``path`` is a hook installed by xpm."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(400)
    except OSError:
        return False
    return _MARKER in head


def install(
    repo: str | os.PathLike[str],
    hooks_dir: str | os.PathLike[str] | None = None,
    *,
    python: str | None = None,
) -> list[str]:
    """Install xpm's hooks (:data:`HOOK_NAMES`) from ``hooks_dir`` into ``repo``.

    A hook already there that is not xpm's is renamed ``<name>.xpm-chained`` and xpm's hook
    runs it first with the same arguments and input; an xpm hook already there is updated.
    ``python`` (default: this interpreter) is the Python the hooks run ``xpm.githooks`` with.
    Returns one line per action.  Raises GitError when a hook cannot be installed safely.
    """
    source = Path(hooks_dir) if hooks_dir is not None else default_hooks_dir()
    python = python or sys.executable
    actions = []
    target = hooks_path(repo)
    target.mkdir(parents=True, exist_ok=True)
    for name in HOOK_NAMES:
        script = source / name
        if not script.is_file():
            raise GitError(
                f"xpm's hook script {script} is missing: reinstall xpm or pass the hooks folder"
            )
        text = _with_python(script.read_text(encoding="utf-8"), python)
        hook, chained = target / name, target / (name + CHAINED_SUFFIX)
        verb = "installed"
        if hook.exists() or hook.is_symlink():
            if is_xpm_hook(hook):
                verb = "updated"
            elif chained.exists() or chained.is_symlink():
                raise GitError(
                    f"{hook} is not xpm's hook and {chained} exists too: move one of them "
                    "away, then install again"
                )
            else:
                os.rename(hook, chained)
                actions.append(f"kept the existing {name} hook as {chained} (runs first)")
        actions.append(f"{verb} {hook}")
        tmp = hook.with_name(f".{name}.xpm-tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o755)
        os.replace(tmp, hook)
    return actions


def _with_python(text: str, python: str) -> str:
    quoted = "'" + python.replace("'", "'\\''") + "'"
    lines = [
        f"XPM_PYTHON=${{XPM_PYTHON:-{quoted}}}" if line.startswith("XPM_PYTHON=") else line
        for line in text.splitlines()
    ]
    return "\n".join(lines) + "\n"


def uninstall(repo: str | os.PathLike[str]) -> list[str]:
    """Remove xpm's hooks from ``repo`` and put back the hooks they chained, unchanged.

    A hook that is not xpm's is left alone.  Returns one line per action.
    """
    target = hooks_path(repo)
    actions = []
    for name in HOOK_NAMES:
        hook, chained = target / name, target / (name + CHAINED_SUFFIX)
        if hook.exists() or hook.is_symlink():
            if not is_xpm_hook(hook):
                actions.append(f"left {hook} alone (not xpm's)")
                continue
            hook.unlink()
            actions.append(f"removed {hook}")
        if chained.exists() or chained.is_symlink():
            os.rename(chained, hook)
            actions.append(f"restored {hook}")
    return actions


if __name__ == "__main__":
    sys.exit(main())
