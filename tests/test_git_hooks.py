"""The git hooks of hooks/: install/uninstall with chaining, post-rewrite and post-commit."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from _gitrepo import git_out, git_recording, make_repo, sh  # noqa: F401  (autouse fixture)
from conftest import ROOT

from xpm.errors import GitError
from xpm.git import capture, commits_for, equivalent_commits, install, pin_state, uninstall
from xpm.githooks import CHAINED_SUFFIX, HOOK_NAMES, default_hooks_dir, main, read_rewrites

PREVIOUS_HOOK = """#!/bin/sh
# the user's own hook
echo "$0 $*" >> "$(git rev-parse --git-dir)/previous-hook.log"
cat >> "$(git rev-parse --git-dir)/previous-hook.stdin"
exit 3
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with xpm's hooks installed and one pinned run on its first commit."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    path = make_repo(tmp_path / "repo", {"a.py": "a = 1\n"})
    install(path)
    return path


def head(repo: Path, rev: str = "HEAD") -> str:
    return sh(repo, "rev-parse", rev).strip()


def test_hook_scripts_are_shipped_executable() -> None:
    for name in HOOK_NAMES:
        script = default_hooks_dir() / name
        assert script.stat().st_mode & stat.S_IXUSR, script
        assert "python -m xpm.githooks" not in script.read_text()  # runs "$XPM_PYTHON" -m
        assert '"$XPM_PYTHON" -m xpm.githooks ' + name in script.read_text()


def test_post_rewrite_maps_amended_and_rebased_commits(repo: Path) -> None:
    (state,) = capture([repo])
    pin_state(state, "run-a")
    ran_on = state.commit
    assert ran_on is not None
    sh(repo, "commit", "-q", "--amend", "-m", "reworded")
    amended = head(repo)
    assert amended != ran_on
    assert commits_for(repo, "HEAD") == {amended, ran_on}
    # A rebase rewrites it again: the chain is followed.
    sh(repo, "checkout", "-q", "-b", "side", f"{amended}")
    sh(repo, "checkout", "-q", "main")
    sh(repo, "reset", "-q", "--hard", f"{amended}")
    sh(repo, "checkout", "-q", "--orphan", "base")
    sh(repo, "rm", "-rqf", ".")
    (repo / "base.txt").write_text("base\n")
    sh(repo, "add", "base.txt")
    sh(repo, "commit", "-qm", "new base")
    sh(repo, "rebase", "-q", "base", "main")
    rebased = head(repo, "main")
    assert commits_for(repo, "main") == {rebased, amended, ran_on}
    kinds = [kind for _old, _new, kind in read_rewrites(repo / ".git")]
    assert kinds == ["amend", "rebase"]
    # The old commit only stands for itself (the mapping goes from new to old).
    assert equivalent_commits(repo, ran_on) == {ran_on}


def test_post_commit_maps_a_snapshot_committed_exactly(repo: Path) -> None:
    (repo / "a.py").write_text("a = 2\n")
    (repo / "new.py").write_text("n = 1\n")
    (state,) = capture([repo])
    pin_state(state, "run-dirty")
    assert state.snapshot is not None
    # Committing something else first does not map the snapshot.
    sh(repo, "add", "a.py")
    sh(repo, "commit", "-qm", "only part")
    assert commits_for(repo, "HEAD") == {head(repo)}
    # Committing exactly the code that ran does.
    sh(repo, "add", "new.py")
    sh(repo, "commit", "-qm", "all of it")
    assert commits_for(repo, "HEAD") == {head(repo), state.snapshot}
    # ... and survives an amend of that commit.
    sh(repo, "commit", "-q", "--amend", "-m", "all of it, reworded")
    assert state.snapshot in commits_for(repo, "HEAD")


def test_no_records_without_pins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    repo = make_repo(tmp_path / "repo")
    install(repo)
    sh(repo, "commit", "-q", "--amend", "-m", "x")
    assert not (repo / ".git" / "xpm").exists()


def test_install_chains_an_existing_hook_and_uninstall_restores_it(repo: Path) -> None:
    uninstall(repo)
    hooks = repo / ".git" / "hooks"
    for name in HOOK_NAMES:
        (hooks / name).write_text(PREVIOUS_HOOK)
        (hooks / name).chmod(0o750)
    originals = {
        name: ((hooks / name).read_bytes(), (hooks / name).stat().st_mode) for name in HOOK_NAMES
    }
    actions = install(repo)
    assert any("kept the existing post-commit hook" in a for a in actions)
    for name in HOOK_NAMES:
        assert (hooks / (name + CHAINED_SUFFIX)).read_bytes() == originals[name][0]
    # Installing again updates xpm's hooks and keeps the chained ones.
    assert any(a.startswith("updated") for a in install(repo))
    (state,) = capture([repo])
    pin_state(state, "r")
    old = head(repo)
    proc = git_out(repo, "commit", "-q", "--amend", "-m", "amended")
    assert proc.returncode == 0, proc.stderr
    new = head(repo)
    log = (repo / ".git" / "previous-hook.log").read_text().splitlines()
    assert len(log) == 2 and log[0].endswith("post-commit.xpm-chained ")
    assert log[1].endswith("post-rewrite.xpm-chained amend")
    assert (repo / ".git" / "previous-hook.stdin").read_text().split()[:2] == [old, new]
    assert commits_for(repo, "HEAD") == {new, old}  # xpm's part ran too
    # Uninstall puts the user's hooks back exactly.
    uninstall(repo)
    for name in HOOK_NAMES:
        assert (hooks / name).read_bytes() == originals[name][0]
        assert (hooks / name).stat().st_mode == originals[name][1]
        assert not (hooks / (name + CHAINED_SUFFIX)).exists()
    assert uninstall(repo) == [f"left {hooks / n} alone (not xpm's)" for n in HOOK_NAMES]


def test_install_refuses_to_overwrite_two_foreign_hooks(repo: Path) -> None:
    uninstall(repo)
    hooks = repo / ".git" / "hooks"
    (hooks / "post-commit").write_text(PREVIOUS_HOOK)
    (hooks / ("post-commit" + CHAINED_SUFFIX)).write_text("#!/bin/sh\n")
    with pytest.raises(GitError, match="move one of them away"):
        install(repo)
    assert (hooks / "post-commit").read_text() == PREVIOUS_HOOK


def test_install_honours_core_hooks_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    repo = make_repo(tmp_path / "repo")
    sh(repo, "config", "core.hooksPath", "githooks")
    install(repo)
    assert sorted(p.name for p in (repo / "githooks").iterdir()) == sorted(HOOK_NAMES)


def test_hook_errors_never_fail_git(repo: Path) -> None:
    (state,) = capture([repo])
    pin_state(state, "r")
    (repo / ".git" / "xpm" / "rewrites").mkdir()  # recording is now impossible
    proc = git_out(repo, "commit", "-q", "--amend", "-m", "still works")
    assert proc.returncode == 0
    assert "xpm post-rewrite hook: IsADirectoryError" in proc.stderr
    # A Python that cannot be started: git still succeeds.
    proc = git_out(
        repo, "commit", "-q", "--amend", "-m", "again", env={"XPM_PYTHON": "/nonexistent/python"}
    )
    assert proc.returncode == 0 and "nonexistent" in proc.stderr
    assert sh(repo, "log", "-1", "--format=%s").strip() == "again"


def test_entry_point_reports_and_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not a repository
    monkeypatch.delenv("XPM_GIT_COMMON_DIR", raising=False)
    assert main(["post-commit"]) == 0
    assert "not a git repository" in capsys.readouterr().err
    assert main(["pre-push"]) == 0
    assert "unknown hook 'pre-push'" in capsys.readouterr().err


def test_githooks_module_does_not_import_gitpython() -> None:
    code = (
        "import sys, xpm.githooks, xpm.git, xpm._experiment\n"
        "heavy = {'git', 'sqlite_utils', 'yaml', 'click'} & set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout.strip() == "[]"
