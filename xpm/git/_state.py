"""The git state of the code of a run: :class:`GitState` and :func:`capture`."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import GitError
from ._cmd import code_root, git, git_env, text

#: Untracked files larger than this (bytes) are listed with size and hash, not snapshotted.
DEFAULT_MAX_UNTRACKED_SIZE = 1 << 20

#: Identity of snapshot commits (they are made by xpm, not by a person).
SNAPSHOT_IDENTITY = {
    "GIT_AUTHOR_NAME": "xpm",
    "GIT_AUTHOR_EMAIL": "xpm@localhost",
    "GIT_COMMITTER_NAME": "xpm",
    "GIT_COMMITTER_EMAIL": "xpm@localhost",
}


@dataclass
class GitState:
    """The state of one repository holding code of a run.

    ``commit`` is HEAD (None in a repository without commits), ``branch`` None on a detached
    HEAD, ``remote`` the URL of ``origin`` (or of the first remote).  ``diff`` is
    ``git diff HEAD`` (tracked changes), ``changed`` the tracked files it touches,
    ``untracked`` the untracked, non-ignored files.  ``snapshot`` is a commit holding the
    working tree exactly as it was (tracked changes and untracked files), parented on
    ``commit``; untracked files over the size limit are left out of it and listed in
    ``large_untracked`` as ``{"path", "size", "sha256"}``.  Paths are relative to ``repo``.
    When git cannot make the snapshot, the rest is still recorded and ``snapshot_error``
    says why.
    """

    repo: str
    commit: str | None
    branch: str | None = None
    remote: str | None = None
    dirty: bool = False
    diff: str = ""
    untracked: list[str] = field(default_factory=list)
    large_untracked: list[dict[str, Any]] = field(default_factory=list)
    snapshot: str | None = None
    changed: list[str] = field(default_factory=list)
    #: Why a dirty tree has no snapshot (git failed to make it); None otherwise.
    snapshot_error: str | None = None

    @property
    def code_commit(self) -> str | None:
        """The commit that holds the code as it ran: the snapshot when there is one."""
        return self.snapshot or self.commit

    def dirty_files(self) -> list[str]:
        """Changed tracked files then untracked files (large ones included)."""
        large = [f["path"] for f in self.large_untracked]
        return [*self.changed, *self.untracked, *large]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary (see :meth:`from_dict`)."""
        data = asdict(self)
        if data["snapshot_error"] is None:
            del data["snapshot_error"]  # the usual case keeps the layout (and index ids) of before
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GitState:
        """Read back :meth:`to_dict` (unknown keys are ignored, missing ones defaulted)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        if "repo" not in values:
            raise GitError(f"a recorded git state has no 'repo': {data!r}")
        values.setdefault("commit", None)
        return cls(**values)


def capture(
    paths: Iterable[str | os.PathLike[str]],
    *,
    snapshot: bool = True,
    max_untracked_size: int | None = None,
    roots_cache: dict[str, str | None] | None = None,
    exclude_dirs: Iterable[str | os.PathLike[str]] = (),
) -> list[GitState]:
    """The state of every distinct repository holding one of ``paths`` (files or directories).

    Paths outside any repository are skipped (an empty list when none is in one).  When a
    repository is dirty and ``snapshot`` is true, a snapshot commit is created without
    touching the working tree, the index or the stash (see :func:`make_snapshot`); it is not
    pinned yet: see :func:`xpm.git.pin_state`.  ``exclude_dirs`` (e.g. the workdir, when it
    lives inside the repository) never count as changes and never enter a snapshot.
    """
    states: list[GitState] = []
    seen: set[str] = set()
    cache = roots_cache if roots_cache is not None else {}
    for path in paths:
        root = code_root(path, cache)
        if root is None or root in seen:
            continue
        seen.add(root)
        states.append(
            capture_repo(
                root,
                snapshot=snapshot,
                max_untracked_size=max_untracked_size,
                exclude_dirs=exclude_dirs,
            )
        )
    return states


def capture_repo(
    root: str,
    *,
    snapshot: bool = True,
    max_untracked_size: int | None = None,
    exclude_dirs: Iterable[str | os.PathLike[str]] = (),
) -> GitState:
    """The state of the repository whose working tree starts at ``root``."""
    limit = DEFAULT_MAX_UNTRACKED_SIZE if max_untracked_size is None else max_untracked_size
    # Directories of xpm's own output inside the repository (a workdir): not code.
    skipped: list[str] = []
    for directory in exclude_dirs:
        try:
            rel = os.path.relpath(os.path.realpath(directory), os.path.realpath(root))
        except ValueError:
            continue
        if rel != "." and not rel.startswith(".."):
            skipped.append(rel.replace(os.sep, "/").rstrip("/") + "/")
    out = git(
        root,
        "--no-optional-locks",  # never rewrite the index (not even its stat cache)
        "status",
        "--porcelain=v2",
        "--branch",
        "-z",
        "--untracked-files=all",
        "--ignore-submodules=none",
    )
    commit, branch, changed, untracked = _parse_status(out)
    if skipped:
        changed = [p for p in changed if not any(p.startswith(d) for d in skipped)]
        untracked = [p for p in untracked if not any(p.startswith(d) for d in skipped)]
    large: list[dict[str, Any]] = []
    small: list[str] = []
    for rel in untracked:
        full = os.path.join(root, rel)
        try:
            size = os.lstat(full).st_size
        except OSError:
            continue  # removed since `git status`
        if size > limit and not os.path.islink(full):
            large.append({"path": rel, "size": size, "sha256": _sha256(full)})
        else:
            small.append(rel)
    state = GitState(
        repo=root,
        commit=commit,
        branch=branch,
        remote=_remote(root),
        dirty=bool(changed or untracked),
        untracked=small,
        large_untracked=large,
        changed=changed,
    )
    if changed:
        base = commit or _empty_tree(root)
        excludes = [f":(exclude,top){d}" for d in skipped]
        state.diff = git(
            root,
            "--no-optional-locks",  # as for status: the index stays as it was
            "diff",
            "--no-color",
            "--no-ext-diff",
            base,
            "--",
            ":/",
            *excludes,
        ).decode("utf-8", "replace")
    if state.dirty and snapshot:
        try:
            state.snapshot = make_snapshot(
                root, commit, exclude=[f["path"] for f in large] + [d.rstrip("/") for d in skipped]
            )
        except GitError as e:
            # Commit, branch, dirty flag and diff are known: keep them (the caller warns).
            state.snapshot_error = str(e)
    return state


def _parse_status(out: bytes) -> tuple[str | None, str | None, list[str], list[str]]:
    commit: str | None = None
    branch: str | None = None
    changed: list[str] = []
    untracked: list[str] = []
    entries = out.split(b"\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if not entry:
            continue
        kind = entry[:1]
        if entry.startswith(b"# branch.oid "):
            oid = entry[len(b"# branch.oid ") :].decode()
            commit = None if oid == "(initial)" else oid
        elif entry.startswith(b"# branch.head "):
            head = text(entry[len(b"# branch.head ") :])
            branch = None if head == "(detached)" else head
        elif kind == b"1":
            changed.append(text(entry.split(b" ", 8)[8]))
        elif kind == b"2":
            changed.append(text(entry.split(b" ", 9)[9]))
            i += 1  # the original path of a rename follows as its own field
        elif kind == b"u":
            changed.append(text(entry.split(b" ", 10)[10]))
        elif kind == b"?":
            untracked.append(text(entry[2:]))
    return commit, branch, changed, untracked


def _remote(root: str) -> str | None:
    out = git(root, "config", "--get-regexp", r"^remote\..*\.url$", ok_codes=(0, 1))
    urls: dict[str, str] = {}
    for line in text(out).splitlines():
        key, _, url = line.partition(" ")
        name = key[len("remote.") : -len(".url")]
        urls.setdefault(name, url)
    if "origin" in urls:
        return urls["origin"]
    return next(iter(urls.values()), None)


def _empty_tree(root: str) -> str:
    return text(git(root, "hash-object", "-t", "tree", "--stdin", input=b"")).strip()


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_snapshot(root: str, head: str | None, exclude: Iterable[str] = ()) -> str | None:
    """A commit holding the working tree of ``root`` (tracked changes and untracked,
    non-ignored files except ``exclude``), parented on ``head``; None when its tree equals
    HEAD's.

    It is built in a temporary copy of the index (``GIT_INDEX_FILE``), so the working tree,
    the real index and the stash are left exactly as they were.
    """
    index = Path(text(git(root, "rev-parse", "--git-path", "index")).strip())
    if not index.is_absolute():
        index = Path(root) / index
    # Same directory as the real index: a split index finds its shared part there.
    fd, tmp = tempfile.mkstemp(prefix="xpm-index-", dir=index.parent)
    os.close(fd)
    try:
        env = git_env(GIT_INDEX_FILE=tmp, **SNAPSHOT_IDENTITY)
        if index.exists():
            with open(index, "rb") as src, open(tmp, "wb") as dst:
                stamp = os.fstat(src.fileno())
                dst.write(src.read())
            # The copy keeps the index's timestamp: git re-reads files as new as the index
            # ("racy git"), which is how it notices a same-size change made in the clock
            # tick of the last commit; a fresh timestamp would make git trust their stat data.
            os.utime(tmp, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        else:
            os.unlink(tmp)  # git creates it
        # git add refuses a pathspec naming an ignored path, even an exclusion (the usual
        # workdir listed in .gitignore): ignored paths never enter the snapshot anyway.
        kept = _not_ignored(root, list(exclude))
        specs = [b"."] + [b":(exclude,literal,top)" + os.fsencode(p) for p in kept]
        git(
            root,
            "add",
            "--all",
            "--pathspec-from-file=-",
            "--pathspec-file-nul",
            input=b"\0".join(specs),
            env=env,
        )
        tree = text(git(root, "write-tree", env=env)).strip()
        when = "0"
        if head is not None:
            head_tree, when = text(git(root, "log", "-1", "--format=%T %ct", head)).split()
            if tree == head_tree:
                return None
        parent = ["-p", head] if head else []
        message = f"xpm snapshot of uncommitted changes on {head[:12] if head else 'no commit'}"
        # Dated as its parent: the same changes on the same commit make the same snapshot
        # (and so the same git state), whenever taken; two runs of identical code read as
        # two different dirty states before.
        dated = {**env, "GIT_AUTHOR_DATE": f"@{when} +0000", "GIT_COMMITTER_DATE": f"@{when} +0000"}
        return text(
            git(root, "commit-tree", "--no-gpg-sign", tree, *parent, "-m", message, env=dated)
        ).strip()
    finally:
        Path(tmp).unlink(missing_ok=True)


def _not_ignored(root: str, paths: list[str]) -> list[str]:
    """Those of ``paths`` (relative to ``root``) that git does not ignore."""
    if not paths:
        return []
    out = git(
        root,
        "check-ignore",
        "-z",
        "--stdin",
        input=b"\0".join(os.fsencode(p) for p in paths) + b"\0",
        ok_codes=(0, 1),  # 1: none of them is ignored
    )
    ignored = {text(p) for p in out.split(b"\0") if p}
    return [p for p in paths if p not in ignored]
