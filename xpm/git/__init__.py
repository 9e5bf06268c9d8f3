"""Git provenance: the state of the code of each run, snapshots, pins, reproduce, hooks.

- :func:`capture` records the state of the repositories holding some paths
  (:class:`GitState`), with a snapshot commit of uncommitted changes.
- :func:`pin` / :func:`pin_state` keep those commits under ``refs/xpm/``;
  :func:`gc_refs` removes the pins of runs that are gone.
- :class:`RunGit` does both for an experiment run and applies its ``dirty_git`` policy.
- :func:`reproduce` checks the pinned code of a job or run out into a fresh worktree.
- :func:`commits_for` lists the commits whose runs count as runs of a commit, following the
  amend/rebase and snapshot-to-commit records of the hooks (:mod:`xpm.githooks`).

Everything goes through the git command line; see docs/git.md.
"""

from __future__ import annotations

import os

from ..githooks import equivalent_commits, install, uninstall
from ._cmd import code_root, common_dir, git, repo_root
from ._pins import (
    RUNS_PREFIX,
    SNAPSHOTS_PREFIX,
    gc_refs,
    list_pins,
    pin,
    pin_ref,
    pin_state,
    run_exists,
)
from ._policy import (
    DIRTY_POLICIES,
    RunGit,
    check_policy,
    dirty_error,
    git_enabled,
    recorded_python,
)
from ._reproduce import (
    JobCode,
    Reproduction,
    find_job_run,
    job_code,
    recorded_command,
    reproduce,
    reproduce_commands,
    run_git_states,
)
from ._state import DEFAULT_MAX_UNTRACKED_SIZE, GitState, capture, capture_repo, make_snapshot


def commits_for(repo: str | os.PathLike[str], rev: str) -> set[str]:
    """Full ids of the commits whose runs count as runs of ``rev`` (any revision git
    understands: abbreviated id, branch, ``HEAD~2``...).

    That is the commit itself, the commits rewritten into it by amend or rebase (recorded
    by the post-rewrite hook) and the snapshots it commits exactly (recorded by the
    post-commit hook), transitively.  A run matches when its commit or snapshot is in it.
    """
    sha = git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", ok_codes=(0, 1))
    full = sha.decode().strip()
    if not full:
        # Not a commit of the repository (any more): still follow the records by prefix.
        full = rev
    return equivalent_commits(repo, full)


__all__ = [
    "recorded_command",
    "recorded_python",
    "DEFAULT_MAX_UNTRACKED_SIZE",
    "DIRTY_POLICIES",
    "RUNS_PREFIX",
    "SNAPSHOTS_PREFIX",
    "GitState",
    "JobCode",
    "Reproduction",
    "RunGit",
    "capture",
    "capture_repo",
    "code_root",
    "check_policy",
    "commits_for",
    "common_dir",
    "dirty_error",
    "equivalent_commits",
    "find_job_run",
    "gc_refs",
    "git_enabled",
    "install",
    "job_code",
    "list_pins",
    "make_snapshot",
    "pin",
    "pin_ref",
    "pin_state",
    "reproduce",
    "reproduce_commands",
    "repo_root",
    "run_exists",
    "run_git_states",
    "uninstall",
]
