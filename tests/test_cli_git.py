"""The git commands through CliRunner: ``xpm reproduce`` (and the checkout lines of
``jobs show``/``experiments show``), ``xpm gc-refs``, ``xpm hooks``.

The ``git_project`` fixture runs an experiment as a real process in a real repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _cli_fixtures import ids, run

TESTS = Path(__file__).parent
ROOT = TESTS.parent

TASKS = """
from xpm import Param, Task


class Scale(Task):
    x: Param[int]

    def execute(self) -> None:
        self.report(value=self.x * 3)
"""

SCRIPT = """
import sys
from xpm import experiment
from mytasks import Scale

with experiment(sys.argv[1], "scaled"):
    Scale(x=7).submit()
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def git_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("XPM_GIT", "on")
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tname = T\n\temail = t@example.com\n[gc]\n\tauto = 0\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "mytasks.py").write_text(textwrap.dedent(TASKS))
    (repo / "experiment.py").write_text(textwrap.dedent(SCRIPT))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "initial")
    (repo / "mytasks.py").write_text(textwrap.dedent(TASKS) + "# dirty\n")
    wd = tmp_path / "wd"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "experiment.py", str(wd)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return repo, wd


def test_show_prints_checkout_commands_and_reproduce_does_it(
    git_project: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, wd = git_project
    w = ["--workdir", str(wd)]
    (ident,) = ids(run("jobs", "list", *w, "--format", "json"))
    show = run("jobs", "show", ident[:8], *w)
    assert show.exit_code == 0, show.output
    # One place for both lines, absolute (it was relative to the repository in one and to
    # the current directory in the other), and the one `xpm reproduce` uses by default.
    from xpm.workdir import reproduction_dir

    target = reproduction_dir(wd, ident)
    assert target.name == f"reproduce-{ident[:12]}" and target.parent == wd.parent
    assert f"git -C {repo} worktree add --detach {target} " in show.stdout
    assert f"xpm reproduce {ident[:12]}  # does it (at {target})" in show.stdout
    assert "dirty (snapshot " in show.stdout
    assert "    uncommitted: mytasks.py\n" in show.stdout  # which files made it dirty
    exp = run("experiments", "show", "scaled", *w)
    assert f"checkout: git -C {repo} worktree add --detach ../scaled-" in exp.stdout
    dest = tmp_path / "again"
    repro = run("reproduce", ident[:8], *w, "--dir", str(dest))
    assert repro.exit_code == 0, repro.output
    assert (dest / "mytasks.py").read_text() == (repo / "mytasks.py").read_text()  # dirty code
    assert "rerun it with:" in repro.stdout and "-m xpm.run" in repro.stdout
    busy = run("reproduce", ident[:8], *w, "--dir", str(dest))
    assert busy.exit_code == 2 and "is not empty" in busy.stderr


def test_reproduce_puts_its_worktree_outside_the_project(
    git_project: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#19: the default worktree went to ./reproduce-<id>, inside the project when run
    there, which made the project's next run dirty; it now goes beside the repository."""
    repo, wd = git_project
    inside = repo / "xpm-workdir"  # the default workdir: at the repository's root
    shutil.copytree(wd, inside)
    monkeypatch.chdir(repo)
    (ident,) = ids(run("jobs", "list", "--workdir", str(inside), "--format", "json"))
    repro = run("reproduce", ident[:8], "--workdir", str(inside))
    assert repro.exit_code == 0, repro.output
    target = tmp_path / f"repo-reproduce-{ident[:12]}"
    assert repro.stdout.splitlines()[0] == (
        f"# worktree at {target} (outside the project: its next run stays clean)"
    )
    assert (target / "mytasks.py").is_file()
    assert "reproduce" not in _git(repo, "status", "--porcelain", "--untracked-files=all")
    outside = run("reproduce", ident[:8], "--workdir", str(wd))  # a workdir outside the repo
    assert outside.exit_code == 0, outside.output
    assert (tmp_path / f"reproduce-{ident[:12]}" / "mytasks.py").is_file()


def test_gc_refs_and_hooks(git_project: tuple[Path, Path], tmp_path: Path) -> None:
    repo, wd = git_project
    w = ["--workdir", str(wd)]
    pins = _git(repo, "for-each-ref", "refs/xpm/").splitlines()
    assert pins
    kept = run("gc-refs", *w, "--repo", str(repo))
    assert kept.exit_code == 0 and "no pin to remove: the runs of this workdir" in kept.stdout
    for record in (wd / "experiments" / "scaled" / "runs").iterdir():
        record.unlink()
    dry = run("gc-refs", *w, "--repo", str(repo), "--dry-run")
    plural = "" if len(pins) == 1 else "s"
    assert f"would remove {len(pins)} pin{plural}" in dry.stdout
    gone = run("gc-refs", *w, "--repo", str(repo))
    assert gone.exit_code == 0 and f"removed {len(pins)} pin{plural}" in gone.stdout
    assert _git(repo, "for-each-ref", "refs/xpm/") == ""

    hook = repo / ".git" / "hooks" / "post-commit"
    hook.write_text("#!/bin/sh\necho mine\n")
    hook.chmod(0o755)
    installed = run("hooks", "install", "--repo", str(repo))
    assert installed.exit_code == 0 and "kept the existing post-commit hook" in installed.stdout
    assert (repo / ".git" / "hooks" / "post-rewrite").exists()
    removed = run("hooks", "uninstall", "--repo", str(repo))
    assert removed.exit_code == 0 and "restored" in removed.stdout
    assert hook.read_text() == "#!/bin/sh\necho mine\n"
    assert not (repo / ".git" / "hooks" / "post-rewrite").exists()
    outside = run("hooks", "install", "--repo", str(tmp_path / "wd"))
    assert outside.exit_code == 2 and "not inside a git repository" in outside.stderr
