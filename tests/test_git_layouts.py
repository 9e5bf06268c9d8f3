"""Provenance in the layouts researchers use (issue 14, point 5), with the machine's real git.

Each case runs an experiment on a dirty tree and checks that the run records the commit,
the branch, the dirty flag, the diff and a snapshot holding the change but not the workdir.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _gitrepo import git_out, git_recording, make_repo, sh  # noqa: F401  (autouse fixture)

TASKS = '''
from xpm import Param, Task


class First(Task):
    """A task of the project."""

    x: Param[int] = 1

    def execute(self) -> None:
        pass


class Second(Task):
    """Another one (a second class: its module is looked at again)."""

    y: Param[int] = 1

    def execute(self) -> None:
        pass
'''


def snapshot_files(repo: Path, snapshot: str) -> list[str]:
    return git_out(repo, "ls-tree", "-r", "--name-only", snapshot).stdout.split()


def run_experiment(
    repo: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch, module: str
) -> tuple[dict[str, object], list[str]]:
    """Run (generate mode: nothing to execute) an experiment submitting both task classes of
    ``repo/<module>.py``; returns the run record's git entries and what xpm printed."""
    from xpm._experiment import Experiment

    monkeypatch.syspath_prepend(str(repo))
    sys.modules.pop(module, None)
    tasks = __import__(module)
    lines: list[str] = []
    with Experiment(workdir, "xp", "generate", echo=lines.append, code_paths=[repo]) as xp:
        tasks.First(x=1).submit()
        tasks.Second(y=2).submit()
    record = json.loads((workdir / "experiments/xp/runs" / f"{xp.run_id}.json").read_text())
    return record, lines


def project(tmp_path: Path, module: str) -> Path:
    """The recommended layout: the workdir inside the project, listed in .gitignore."""
    return make_repo(
        tmp_path / "project",
        {".gitignore": "xpm-workdir\n*.log\n", f"{module}.py": TASKS, "lib.py": "A = 1\n"},
    )


LAYOUTS = (
    "edited",
    "untracked",
    "ignored",
    "submodule",
    "detached",
    "empty",
    "outside",
    "nested-ignore",
)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dirty_tree_is_recorded_in_every_layout(
    layout: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"tasks_{layout.replace('-', '_')}"
    if layout == "empty":  # a repository without commits: everything is untracked
        repo = tmp_path / "project"
        repo.mkdir()
        sh(repo, "init", "-q", "-b", "main")
        (repo / ".gitignore").write_text("xpm-workdir\n")
        (repo / f"{module}.py").write_text(TASKS)
        (repo / "lib.py").write_text("A = 1\n")
    else:
        repo = project(tmp_path, module)
    head = None if layout == "empty" else sh(repo, "rev-parse", "HEAD").strip()
    branch: str | None = "main"
    workdir = repo / "xpm-workdir"
    expected = ["lib.py"]
    (repo / "lib.py").write_text("A = 2  # edited\n")
    if layout == "untracked":
        (repo / "notes.txt").write_text("an idea\n")
        expected.append("notes.txt")
    elif layout == "ignored":
        (repo / "train.log").write_text("ignored\n")
    elif layout == "submodule":
        sub = make_repo(tmp_path / "sub", {"s.py": "S = 1\n"})
        sh(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "vendor")
        sh(repo, "commit", "-qm", "submodule")
        head = sh(repo, "rev-parse", "HEAD").strip()
        (repo / "vendor" / "s.py").write_text("S = 2\n")  # dirty inside the submodule
    elif layout == "detached":
        sh(repo, "checkout", "-q", "--detach")
        branch = None
    elif layout == "outside":
        workdir = tmp_path / "elsewhere"
    elif layout == "nested-ignore":
        # The workdir sits in an ignored directory (not named itself in .gitignore).
        (repo / ".gitignore").write_text("build/\n")
        sh(repo, "commit", "-qm", "ignore build", "--", ".gitignore")
        head = sh(repo, "rev-parse", "HEAD").strip()
        (repo / "lib.py").write_text("A = 2  # edited\n")
        workdir = repo / "build" / "xpm"
    if layout == "empty":
        expected = [".gitignore", "lib.py", f"{module}.py"]

    # Twice: from the second run on, the workdir exists (and holds an index, run records).
    run_experiment(repo, workdir, monkeypatch, module)
    record, lines = run_experiment(repo, workdir, monkeypatch, module)

    assert not [line for line in lines if "failed" in line], lines
    (state,) = record["git"]  # type: ignore[misc]
    assert state["repo"] == str(repo.resolve())
    assert state["commit"] == head
    assert state["branch"] == branch
    assert state["dirty"] is True
    if layout == "empty":
        assert state["untracked"] == expected
    else:
        assert "+A = 2  # edited" in state["diff"]
        assert sorted([*state["changed"], *state["untracked"]]) == sorted(
            expected + (["vendor"] if layout == "submodule" else [])
        )
    snapshot = state["snapshot"]
    assert snapshot, state
    files = snapshot_files(repo, snapshot)
    assert "lib.py" in files and not [f for f in files if "xpm-workdir" in f or "build/" in f]
    assert "train.log" not in files
    if layout == "untracked":
        assert "notes.txt" in files
    shown = git_out(repo, "show", f"{snapshot}:lib.py").stdout
    assert shown == "A = 2  # edited\n"
    # The dirty tree is announced once (two task classes: no repeated capture).
    assert sum("uncommitted changes" in line for line in lines) == 1, lines


def test_a_snapshot_that_cannot_be_made_still_records_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git fails to store the changed file (a file stands where its object directory must
    go: a real failure of `git add`, which root cannot bypass either).  The run still records
    commit, branch, dirty flag and diff, and says so once."""
    module = "tasks_blocked"
    repo = project(tmp_path, module)
    head = sh(repo, "rev-parse", "HEAD").strip()
    for n in range(1000):
        content = f"A = {n + 2}  # edited\n"
        blob = subprocess.run(
            ["git", "hash-object", "--stdin"], input=content, capture_output=True, text=True
        ).stdout.strip()
        blocked = repo / ".git" / "objects" / blob[:2]
        if not blocked.exists():
            break
    (repo / "lib.py").write_text(content)
    blocked.write_text("not a directory\n")

    record, lines = run_experiment(repo, repo / "xpm-workdir", monkeypatch, module)

    (state,) = record["git"]  # type: ignore[misc]
    assert (state["commit"], state["branch"], state["dirty"]) == (head, "main", True)
    assert f"+{content.strip()}" in state["diff"]
    assert state["snapshot"] is None and state["snapshot_error"]
    warned = [line for line in lines if "no snapshot" in line]
    assert len(warned) == 1, lines
    assert "commit, branch and diff are recorded" in warned[0]

    # The code as it ran is the commit plus that diff: reproduce applies it (before, it
    # checked out the clean commit, code that never produced the job's results).
    from xpm.git import reproduce

    job = next((repo / "xpm-workdir" / "jobs" / f"{module}.first").iterdir())
    made = reproduce(job, tmp_path / "reproduced")
    assert (made.worktrees[str(repo)] / "lib.py").read_text() == content
    assert any("no snapshot could be made" in c for c in made.commands)
