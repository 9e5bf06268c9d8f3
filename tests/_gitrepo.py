"""Helpers for the git tests: real repositories in temporary directories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def sh(repo: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> str:
    """Run ``git -C repo ARGS`` and return its stdout (fails the test on a non-zero exit)."""
    proc = subprocess.run(
        ["git", "-C", str(repo), *args],
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def git_out(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``git -C repo ARGS`` and return the completed process (any exit status)."""
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A repository at ``path`` with ``files`` committed on branch main."""
    path.mkdir(parents=True, exist_ok=True)
    sh(path, "init", "-q", "-b", "main")
    sh(path, "config", "user.name", "Test User")
    sh(path, "config", "user.email", "test@example.com")
    for name, content in (files or {"README": "hello\n"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(content)
    sh(path, "add", "-A")
    sh(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture(autouse=True)
def git_recording(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Turn git recording on (conftest turns it off) and isolate git from the user's config."""
    monkeypatch.setenv("XPM_GIT", "on")
    config = tmp_path / "gitconfig"
    config.write_text("[init]\n\tdefaultBranch = main\n[gc]\n\tauto = 0\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
