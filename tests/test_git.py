"""Git state of runs: capture, snapshots, pins, the dirty policy and reproduce, on real repos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _gitrepo import git_out, git_recording, make_repo, sh  # noqa: F401  (autouse fixture)
from conftest import ROOT, TESTS, run_python

from xpm.errors import ExperimentError, GitError
from xpm.git import (
    GitState,
    capture,
    commits_for,
    find_job_run,
    gc_refs,
    list_pins,
    pin_state,
    reproduce,
    reproduce_commands,
)
from xpm.index._rows import git_state_id


def index_bytes(repo: Path) -> bytes:
    return (repo / ".git" / "index").read_bytes()


# --- capture ------------------------------------------------------------------------------------
def test_clean_repository(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.py": "a = 1\n", "pkg/b.py": "b = 2\n"})
    sh(repo, "remote", "add", "upstream", "https://example.com/up.git")
    sh(repo, "remote", "add", "origin", "git@example.com:me/repo.git")
    head = sh(repo, "rev-parse", "HEAD").strip()
    # Two paths in the same repository give one state; the repository path is canonical.
    states = capture([repo / "a.py", repo / "pkg"])
    assert len(states) == 1
    state = states[0]
    assert state.repo == str(repo.resolve())
    assert (state.commit, state.branch, state.dirty, state.snapshot) == (head, "main", False, None)
    assert state.remote == "git@example.com:me/repo.git"  # origin wins over the first remote
    assert state.diff == "" and state.untracked == [] and state.large_untracked == []
    assert list_pins(repo) == {}


def test_no_repository_records_nothing(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.py").write_text("x = 1\n")
    assert capture([tmp_path / "plain" / "x.py", tmp_path / "plain", tmp_path / "missing/f"]) == []


def test_detached_head_and_first_remote(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    first = sh(repo, "rev-parse", "HEAD").strip()
    (repo / "README").write_text("two\n")
    sh(repo, "commit", "-qam", "second")
    sh(repo, "checkout", "-q", "--detach", first)
    sh(repo, "remote", "add", "mirror", "/srv/mirror.git")
    (state,) = capture([repo])
    assert state.branch is None and state.commit == first and not state.dirty
    assert state.remote == "/srv/mirror.git"


def test_dirty_tree_snapshot_holds_everything_and_touches_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.py": "a = 1\n", "old.py": "o\n", "keep.py": "k\n"})
    (repo / ".gitignore").write_text("*.log\n")
    sh(repo, "add", ".gitignore")
    sh(repo, "commit", "-qm", "ignore logs")
    head = sh(repo, "rev-parse", "HEAD").strip()
    # A stash entry, a staged change, an unstaged change, a rename, untracked and ignored files.
    (repo / "keep.py").write_text("stashed\n")
    sh(repo, "stash", "-q")
    (repo / "a.py").write_text("a = 2\n")
    (repo / "staged.py").write_text("s = 1\n")
    sh(repo, "add", "staged.py")
    sh(repo, "mv", "old.py", "renamed.py")
    hostile = ["new file.py", "quote'\"name.py", "ünï.py", "semi;echo x.py", "line\nbreak.py"]
    for name in hostile:
        (repo / name).write_text(f"# {name!r}\n")
    (repo / "sub").mkdir()
    (repo / "sub" / "deep.py").write_text("d\n")
    (repo / "run.log").write_text("ignored\n")
    (repo / "big.bin").write_bytes(os.urandom(3000))
    before = (
        sh(repo, "status", "--porcelain=v2", "-z", "--untracked-files=all"),
        sh(repo, "diff", "--cached"),
        sh(repo, "stash", "list"),
    )
    index_before = index_bytes(repo)

    (state,) = capture([repo / "a.py"], max_untracked_size=2000)

    assert index_bytes(repo) == index_before
    after = (
        sh(repo, "status", "--porcelain=v2", "-z", "--untracked-files=all"),
        sh(repo, "diff", "--cached"),
        sh(repo, "stash", "list"),
    )
    assert after == before
    assert not list((repo / ".git").glob("xpm-index-*"))  # the temporary index is gone
    assert state.dirty and state.commit == head and state.branch == "main"
    assert sorted(state.changed) == ["a.py", "renamed.py", "staged.py"]  # a rename: new name
    assert "-a = 1\n+a = 2" in state.diff and "+s = 1" in state.diff
    assert sorted(state.untracked) == sorted([*hostile, "sub/deep.py"])
    assert "run.log" not in state.untracked
    big = state.large_untracked
    assert [b["path"] for b in big] == ["big.bin"] and big[0]["size"] == 3000
    assert len(big[0]["sha256"]) == 64
    # The snapshot: parented on HEAD, the working tree minus the large and ignored files.
    assert state.snapshot is not None
    assert sh(repo, "rev-parse", f"{state.snapshot}^").strip() == head
    files = sh(repo, "ls-tree", "-r", "-z", "--name-only", state.snapshot).split("\0")
    assert set(files) - {""} == {
        ".gitignore",
        "a.py",
        "keep.py",
        "renamed.py",
        "staged.py",
        "sub/deep.py",
        *hostile,
    }
    for name in ["a.py", "renamed.py", *hostile]:
        assert sh(repo, "show", f"{state.snapshot}:{name}") == (repo / name).read_text()
    assert sh(repo, "show", f"{state.snapshot}:keep.py") == "k\n"  # stash not included


def test_state_round_trips_through_json(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "README").write_text("changed\n")
    (repo / "u.txt").write_text("u\n")
    (state,) = capture([repo])
    data = json.loads(json.dumps(state.to_dict()))
    assert set(data) >= {
        "repo",
        "commit",
        "branch",
        "remote",
        "dirty",
        "diff",
        "untracked",
        "large_untracked",
        "snapshot",
    }
    assert GitState.from_dict(data) == state
    assert GitState.from_dict({**data, "future_key": 1}) == state
    with pytest.raises(GitError, match="no 'repo'"):
        GitState.from_dict({"commit": "abc"})


def test_snapshot_sees_a_same_size_change_made_in_the_index_timestamp(tmp_path: Path) -> None:
    """git trusts a file's stat data unless the file is as new as the index ("racy git").
    A file committed, then changed within the same clock tick (file times are coarse) has
    the stat data the index recorded, and only the index's own timestamp tells git to read
    it.  The snapshot's temporary index keeps that timestamp, so the change is seen."""
    repo = tmp_path / "repo"
    repo.mkdir()
    sh(repo, "init", "-q", "-b", "main")
    # utime cannot restore a change time, which git also compares unless told not to.
    sh(repo, "config", "core.trustctime", "false")
    tick = time.time_ns() - 10**10  # a tick 10 s ago: everything below happens "in" it
    (repo / "a.py").write_text("a = 1\n")
    os.utime(repo / "a.py", ns=(tick, tick))
    sh(repo, "add", "a.py")
    sh(repo, "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", "one")
    (repo / "a.py").write_text("a = 2\n")  # same size
    os.utime(repo / "a.py", ns=(tick, tick))
    os.utime(repo / ".git" / "index", ns=(tick, tick))
    assert "a.py" in sh(repo, "--no-optional-locks", "status", "--porcelain")  # git sees it
    (state,) = capture([repo])
    assert state.snapshot is not None
    assert sh(repo, "show", f"{state.snapshot}:a.py") == "a = 2\n"


def test_repository_without_commits(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    sh(repo, "init", "-q")
    (repo / "a.py").write_text("a\n")
    (state,) = capture([repo])
    assert state.commit is None and state.dirty and state.untracked == ["a.py"]
    assert state.snapshot is not None
    assert sh(repo, "show", f"{state.snapshot}:a.py") == "a\n"


def test_only_large_untracked_files_give_no_snapshot(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "data.bin").write_bytes(b"x" * 100)
    (state,) = capture([repo], max_untracked_size=10)
    assert state.dirty and state.snapshot is None and state.untracked == []
    assert state.large_untracked[0]["path"] == "data.bin"


# --- pins -----------------------------------------------------------------------------------------
def test_pins_survive_amend_branch_deletion_and_gc(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    sh(repo, "checkout", "-q", "-b", "topic")
    (repo / "f.py").write_text("f = 1\n")
    sh(repo, "add", "f.py")
    sh(repo, "commit", "-qm", "topic work")
    (repo / "f.py").write_text("f = 3\n")
    (lost,) = capture([repo])  # never pinned: the negative control
    (repo / "f.py").write_text("f = 2\n")
    (kept,) = capture([repo])
    assert kept.snapshot and lost.snapshot and kept.snapshot != lost.snapshot
    refs = pin_state(kept, "run-1", workdir=tmp_path / "wd")
    assert refs == ["refs/xpm/runs/run-1", "refs/xpm/snapshots/run-1"]
    sh(repo, "commit", "-qa", "--amend", "-m", "amended")
    sh(repo, "checkout", "-q", "main")
    sh(repo, "branch", "-D", "topic")
    sh(repo, "reflog", "expire", "--expire=now", "--all")
    sh(repo, "gc", "-q", "--prune=now")
    assert git_out(repo, "cat-file", "-e", f"{lost.snapshot}^{{commit}}").returncode != 0
    assert git_out(repo, "cat-file", "-e", f"{kept.snapshot}^{{commit}}").returncode == 0
    assert git_out(repo, "cat-file", "-e", f"{kept.commit}^{{commit}}").returncode == 0
    assert list_pins(repo) == {refs[0]: kept.commit, refs[1]: kept.snapshot}


def test_gc_refs_removes_only_pins_of_gone_runs_of_this_workdir(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (state,) = capture([repo])
    wd, other = tmp_path / "wd", tmp_path / "other"
    for run_id in ("r1", "r2"):
        pin_state(state, run_id, workdir=wd)
        runs = wd / "experiments" / "xp" / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        (runs / f"{run_id}.json").write_text("{}")
    pin_state(state, "r3", workdir=other)  # another workdir's run (no record here)
    (wd / "experiments" / "xp" / "runs" / "r1.json").unlink()
    assert gc_refs(wd, repo, dry_run=True) == ["refs/xpm/runs/r1"]
    assert len(list_pins(repo)) == 3
    assert gc_refs(wd, repo) == ["refs/xpm/runs/r1"]
    assert sorted(list_pins(repo)) == ["refs/xpm/runs/r2", "refs/xpm/runs/r3"]


def test_bad_run_id_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (state,) = capture([repo])
    with pytest.raises(GitError, match="cannot name a git ref"):
        pin_state(state, "../x")


# --- experiments ------------------------------------------------------------------------------------
TASKS = '''
from xpm import Param, Task
from helper import FACTOR


class Scale(Task):
    """Reports x times a factor read from an (untracked) helper module."""

    x: Param[int] = 1

    def execute(self) -> None:
        self.report(value=self.x * FACTOR)
'''

EXPERIMENT = """
import sys
from xpm import experiment
from mytasks import Scale

with experiment(sys.argv[1], "xp", progress=False, dirty_git=sys.argv[2]) as xp:
    Scale(x=3).submit()
"""


def run_script(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "experiment.py", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def dirty_experiment_repo(tmp_path: Path) -> Path:
    repo = make_repo(
        tmp_path / "repo",
        {"mytasks.py": TASKS.replace("FACTOR", "FACTOR  # committed"), "experiment.py": EXPERIMENT},
    )
    (repo / "mytasks.py").write_text(TASKS)  # a tracked change
    (repo / "helper.py").write_text("FACTOR = 7\n")  # an untracked file the task imports
    return repo


def test_dirty_git_error_refuses_and_writes_nothing(tmp_path: Path) -> None:
    repo = dirty_experiment_repo(tmp_path)
    wd = tmp_path / "wd"
    proc = run_script(repo, str(wd), "error")
    assert proc.returncode != 0
    assert "ExperimentError" in proc.stderr
    assert "mytasks.py" in proc.stderr and "helper.py" in proc.stderr
    assert "dirty_git='warn'" in proc.stderr and "git stash -u" in proc.stderr
    assert not wd.exists() or not any(wd.iterdir())  # no job directory, no run record
    assert list_pins(repo) == {}


def test_dirty_git_policy_is_validated(tmp_path: Path) -> None:
    from xpm._experiment import experiment

    with pytest.raises(ExperimentError, match="ignore, warn, error"):
        experiment(tmp_path, "xp", dirty_git="sometimes")


def test_dry_run_checks_the_policy_without_pins(tmp_path: Path) -> None:
    from xpm._experiment import experiment

    repo = make_repo(tmp_path / "repo")
    (repo / "README").write_text("dirty\n")
    lines: list[str] = []
    xp = experiment(tmp_path / "wd", "xp", "dry-run", progress=False, code_paths=[repo])
    xp._echo = lines.append
    xp.git.echo = lines.append
    with xp:
        pass
    assert any("uncommitted changes: README" in line for line in lines)
    assert xp.info["git"][0]["dirty"] and xp.info["git"][0]["snapshot"] is None
    assert list_pins(repo) == {} and not (tmp_path / "wd").exists()
    xp = experiment(tmp_path / "wd", "xp", "dry-run", dirty_git="error", code_paths=[repo])
    with pytest.raises(ExperimentError, match="README"), xp:
        pass


def test_ignore_policy_records_silently(tmp_path: Path) -> None:
    from xpm._experiment import Experiment

    repo = make_repo(tmp_path / "repo")
    (repo / "README").write_text("dirty\n")
    lines: list[str] = []
    with Experiment(
        tmp_path / "wd", "xp", "generate", echo=lines.append, dirty_git="ignore", code_paths=[repo]
    ) as xp:
        pass
    assert not any("warning" in line for line in lines)
    record = json.loads(next((tmp_path / "wd").glob("experiments/xp/runs/*.json")).read_text())
    assert record["git"][0]["snapshot"] == list_pins(repo)[f"refs/xpm/snapshots/{xp.run_id}"]


def test_task_modules_in_another_repository_are_recorded(tmp_path: Path) -> None:
    main_repo = make_repo(tmp_path / "main", {"experiment.py": "\n"})
    lib = make_repo(
        tmp_path / "lib",
        {
            "libtasks.py": "from xpm import Task\n\n\nclass T(Task):\n    def execute(self) -> None:\n        pass\n"
        },
    )
    (lib / "libtasks.py").write_text((lib / "libtasks.py").read_text() + "# edited\n")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from xpm import experiment\nimport libtasks\n"
        "with experiment(sys.argv[2], 'xp', 'generate', progress=False) as xp:\n"
        "    libtasks.T().submit()\n"
    )
    script = main_repo / "experiment.py"
    script.write_text(code)
    proc = subprocess.run(
        [sys.executable, str(script), str(lib), str(tmp_path / "wd")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(next((tmp_path / "wd").glob("experiments/xp/runs/*.json")).read_text())
    repos = [g["repo"] for g in record["git"]]
    assert repos == [str(main_repo.resolve()), str(lib.resolve())]
    assert record["git"][0]["dirty"]  # experiment.py was rewritten
    assert record["git"][1]["dirty"] and record["git"][1]["snapshot"]
    assert f"refs/xpm/snapshots/{record['run_id']}" in list_pins(lib)
    assert "libtasks.py" in proc.stderr  # the warning names the dirty file


def test_no_repository_experiment_records_empty_git(workdir: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = run_python(
        "from xpm._experiment import experiment\n"
        f"with experiment({str(workdir)!r}, 'xp', 'generate', progress=False):\n    pass\n",
        cwd=plain,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(next(workdir.glob("experiments/xp/runs/*.json")).read_text())
    assert record["git"] == [] and record["command"]["cwd"] == str(plain)


def test_xpm_git_off_disables_recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xpm._experiment import Experiment

    monkeypatch.setenv("XPM_GIT", "off")
    repo = make_repo(tmp_path / "repo")
    (repo / "README").write_text("dirty\n")
    with Experiment(tmp_path / "wd", "xp", "generate", dirty_git="error", code_paths=[repo]) as xp:
        pass
    assert xp.info["git"] == [] and list_pins(repo) == {}


# --- reproduce ----------------------------------------------------------------------------------------
def test_reproduce_after_amend_rebase_branch_deletion_and_gc(tmp_path: Path) -> None:
    repo = dirty_experiment_repo(tmp_path)
    sh(repo, "checkout", "-q", "-b", "work")
    (repo / "big.dat").write_bytes(os.urandom(2 << 20))  # over 1 MiB: listed, not stored
    wd = tmp_path / "wd"
    proc = run_script(repo, str(wd), "warn")
    assert proc.returncode == 0, proc.stderr
    assert "uncommitted changes" in proc.stderr and "big.dat" in proc.stderr
    code = {p: (repo / p).read_bytes() for p in ("mytasks.py", "helper.py", "experiment.py")}
    (jobdir,) = (wd / "jobs" / "mytasks.scale").iterdir()
    assert json.loads((jobdir / "results.jsonl").read_text())["values"] == {"value": 21}
    record_path = find_job_run(wd, jobdir.name)
    assert record_path is not None and record_path.parent.name == "runs"
    (state,) = [GitState.from_dict(g) for g in json.loads(record_path.read_text())["git"]]
    assert state.branch == "work" and state.snapshot and "helper.py" in state.untracked

    # Rewrite history in every way that could lose the code, then clean everything.
    sh(repo, "add", "-A", "--", "mytasks.py", "helper.py")
    sh(repo, "commit", "-qm", "run code")
    (repo / "mytasks.py").write_text(TASKS.replace("x * FACTOR", "x * FACTOR * 2"))
    sh(repo, "commit", "-qa", "--amend", "-m", "changed my mind")
    sh(repo, "checkout", "-q", "main")
    (repo / "other.txt").write_text("main moves on\n")
    sh(repo, "add", "other.txt")
    sh(repo, "commit", "-qm", "main moves on")
    sh(repo, "rebase", "-q", "main", "work")
    sh(repo, "checkout", "-q", "main")
    sh(repo, "branch", "-D", "work")
    sh(repo, "clean", "-qfdx")
    sh(repo, "reflog", "expire", "--expire=now", "--all")
    sh(repo, "gc", "-q", "--prune=now")
    assert (repo / "mytasks.py").read_bytes() != code["mytasks.py"]

    dest = tmp_path / "repro"
    result = reproduce(jobdir, dest)
    assert result.worktrees == {state.repo: dest}
    for name, content in code.items():
        assert (dest / name).read_bytes() == content, name
    assert not (dest / "big.dat").exists()
    assert result.commands[0] == reproduce_commands(state, dest)[0]
    assert result.commands[0].endswith(f"worktree add --detach {dest} {state.snapshot}")
    assert any("big.dat" in c and c.startswith("#") for c in result.commands)
    # The rerun command runs the job again from the worktree into a separate workdir.
    assert result.workdir == tmp_path / "repro.workdir" and result.job is not None
    assert result.rerun is not None
    rerun = subprocess.run(
        result.rerun,
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads((result.job / "results.jsonl").read_text())["values"] == {"value": 21}
    assert (result.job / "done").exists() and not (jobdir / "stdout.1.log").exists()
    # An experiment-run record reproduces too (the script, not one job).
    run_result = reproduce(record_path, tmp_path / "repro2")
    assert (tmp_path / "repro2" / "helper.py").read_bytes() == code["helper.py"]
    assert run_result.rerun is not None and "experiment.py" in run_result.rerun


def test_reproduce_errors_say_what_to_do(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(GitError, match="neither a job directory"):
        reproduce(tmp_path, tmp_path / "dest")
    job = workdir / "jobs" / "t.t" / ("0" * 64)
    job.mkdir(parents=True)
    (job / "params.json").write_text("{}")
    with pytest.raises(GitError, match="no experiment run"):
        reproduce(job, tmp_path / "dest")
    runs = workdir / "experiments" / "xp" / "runs"
    runs.mkdir(parents=True)
    (runs / "r1.json").write_text(json.dumps({"git": []}))
    (runs / "r1.jobs.jsonl").write_text(json.dumps({"identifier": "0" * 64}) + "\n")
    assert find_job_run(workdir, "0" * 64) == runs / "r1.json"
    with pytest.raises(GitError, match="recorded no git repository"):
        reproduce(job, tmp_path / "dest")


def test_commits_for_resolves_revisions(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    head = sh(repo, "rev-parse", "HEAD").strip()
    assert commits_for(repo, "main") == {head}
    assert commits_for(repo, head[:7]) == {head}


def test_test_tasks_module_location() -> None:
    # The suite's own task module is inside xpm's repository: conftest turns recording off.
    assert (TESTS / "xpm_test_tasks.py").exists()


def test_a_workdir_inside_the_repository_is_not_code(tmp_path: Path) -> None:
    """xpm's own output (the workdir, its index) never makes the tree dirty nor enters a snapshot."""
    from xpm._experiment import Experiment

    repo = make_repo(tmp_path / "repo")
    workdir = repo / "xpm-workdir"
    lines: list[str] = []
    for _ in range(2):
        with Experiment(workdir, "xp", "generate", echo=lines.append, code_paths=[repo]) as xp:
            pass
        assert not xp.info["git"][0]["dirty"], xp.info["git"][0]
    assert (workdir / "xpm.db").exists()
    assert not any("uncommitted" in line for line in lines)
    # A real change still counts, and the snapshot holds it but not the workdir.
    (repo / "README").write_text("changed\n")
    with Experiment(workdir, "xp", "generate", echo=lines.append, code_paths=[repo]) as xp:
        pass
    state = xp.info["git"][0]
    assert state["dirty"] and state["snapshot"]
    files = git_out(repo, "ls-tree", "-r", "--name-only", state["snapshot"]).stdout.split()
    assert files == ["README"]


def test_the_same_changes_make_the_same_snapshot_whenever_taken(tmp_path: Path) -> None:
    """Two runs of identical uncommitted code, a second apart: one snapshot, one git state
    (the web view showed two dirty states, "other changes", for byte-identical code)."""
    repo = make_repo(tmp_path / "repo", {"a.py": "a = 1\n"})
    (repo / "a.py").write_text("a = 2\n")
    (repo / "new.py").write_text("n = 1\n")
    (first,) = capture([repo])
    time.sleep(1.1)  # commit dates have a resolution of one second
    (again,) = capture([repo])
    assert first.snapshot is not None and again.snapshot == first.snapshot
    assert git_state_id(again.to_dict()) == git_state_id(first.to_dict())
    # Dated as its parent commit, not 1970 nor now.
    stamps = sh(repo, "log", "-1", "--format=%ct %at", first.snapshot).split()
    assert stamps == [sh(repo, "log", "-1", "--format=%ct", "HEAD").strip()] * 2
    # Other changes: another snapshot.
    (repo / "new.py").write_text("n = 2\n")
    (other,) = capture([repo])
    assert other.snapshot not in (None, first.snapshot)
