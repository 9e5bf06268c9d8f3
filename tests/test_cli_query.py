"""Every job, experiment, query, index and git command through CliRunner, and every error.

The workdir is made by real experiments (real job processes, a real SQLite index)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from xpm_test_tasks import Count, Evaluate, Fail, Learn, Model, Uses

from xpm import experiment, tag
from xpm._jobdir import JobDir
from xpm.cli import cli
from xpm.errors import ConfigError, UsageError

TESTS = Path(__file__).parent
ROOT = TESTS.parent


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def wd(workdir: Path) -> Path:
    """A workdir with learn/evaluate jobs (tagged), a failed job and a dependency."""
    with experiment(workdir, "study") as xp:
        for n in (2, 3):
            learned = Learn(model=Model(n_layers=tag(n)), epochs=1).submit()
            Evaluate(model=learned).submit()
        upstream = Count(n=tag(7)).submit()
        Uses(upstream=upstream).submit()
        xp.wait()
    with pytest.raises(Exception, match="failed"), experiment(workdir, "broken"):
        Fail().submit()
    return workdir


def ids(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [j["id"] for j in json.loads(result.stdout)]


def job_of(workdir: Path, task: str) -> str:
    (path,) = (workdir / "jobs" / f"xpm_test_tasks.{task}").iterdir()
    return path.name


def test_jobs_list_filters_and_formats(wd: Path) -> None:
    w = ["--workdir", str(wd)]
    assert len(ids(run("jobs", "list", *w, "--format", "json"))) == 7
    evaluate = ids(
        run("jobs", "list", *w, "--format", "json", "--task", "evaluate", "--tag", "n_layers=3")
    )
    assert len(evaluate) == 1
    assert ids(run("jobs", "list", *w, "--format", "json", "--state", "FAILED")) == [
        job_of(wd, "fail")
    ]
    assert len(ids(run("jobs", "list", *w, "--format", "json", "--experiment", "study"))) == 6
    assert ids(run("jobs", "list", *w, "--format", "json", "--since", "2099-01-01")) == []
    assert len(ids(run("jobs", "list", *w, "--format", "json", "--since", "3d"))) == 7
    assert len(ids(run("jobs", "list", *w, "--format", "json", "--limit", "2"))) == 2
    csv = run("jobs", "list", *w, "--format", "csv", "--tag", "n=7", "--task", "count")
    assert csv.stdout.splitlines()[0] == "id,task,state,tags,start,duration,results"
    assert csv.stdout.splitlines()[1].startswith(
        job_of(wd, "count") + ",xpm_test_tasks.count,DONE,n=7"
    )
    table = run("jobs", "list", *w)
    assert "accuracy=0.8" in table.stdout and job_of(wd, "fail")[:12] in table.stdout
    # --commit without git records matches nothing (no run recorded a commit).
    assert ids(run("jobs", "list", *w, "--format", "json", "--commit", "abc123")) == []


def test_workdir_from_environment(
    wd: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XPM_WORKDIR", str(wd))
    assert len(ids(run("jobs", "list", "--format", "json"))) == 7
    from xpm.experiments import resolve_workdir as yaml_resolve
    from xpm.workdir import resolve_workdir

    assert resolve_workdir(None) == yaml_resolve(None, None) == wd
    monkeypatch.delenv("XPM_WORKDIR")
    monkeypatch.chdir(tmp_path)
    assert resolve_workdir(None) == yaml_resolve(None, None) == tmp_path / "xpm-workdir"
    # A workdir that does not exist is an error (a typo must not look like "no jobs").
    listed = run("jobs", "list")
    assert listed.exit_code == 2 and "no workdir at" in listed.stderr
    assert run("experiments", "list").exit_code == 2
    missing = run("jobs", "show", "abc")
    assert missing.exit_code == 2 and "no workdir at" in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["jobs", "list", "--since", "yesterday"], "--since 'yesterday': give a duration"),
        (["jobs", "list", "--tag", "model"], "--tag 'model': write KEY=VALUE"),
        (["jobs", "list", "--tag", "=cnn"], "--tag '=cnn': write KEY=VALUE"),
        (["jobs", "show", "ffffffffff"], "no job matches 'ffffffffff'"),
        (["jobs", "show", "xyz"], "job 'xyz': give an identifier prefix"),
        (["jobs", "show", "nosuchtask/"], "no job matches 'nosuchtask/'"),
        (["jobs", "kill"], "name the jobs"),
        (["jobs", "clean", "--yes"], "name the jobs"),
        (["experiments", "show", "nope"], "no experiment 'nope'"),
        (["query", "DROP TABLE jobs"], "xpm query is read-only"),
        (["query", "INSERT INTO meta VALUES ('a', 'b')"], "xpm query is read-only"),
        (["query", "CREATE TEMP TABLE t (x)"], "xpm query is read-only"),
        (["query", "ATTACH DATABASE 'created-by-attach.db' AS e"], "xpm query is read-only"),
        (["query", "SELECT x FROM nowhere"], "SQL error: no such table: nowhere"),
        (["query"], "give an SQL query"),
        (["jobs", "log"], "Missing argument 'JOB'. (see '"),
        (["jobs", "list", "--state", "done", "--format", "xml"], "Invalid value for '--format'"),
    ],
)
def test_errors_are_one_line_with_exit_2(wd: Path, args: list[str], message: str) -> None:
    result = run(*args, "--workdir", str(wd))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("xpm: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not Path("created-by-attach.db").exists()  # ATTACH would create a file


def test_ambiguous_prefix_lists_candidates(workdir: Path) -> None:
    with experiment(workdir, "many", run_mode="generate"):
        for n in range(40):  # 40 identifiers, 16 first digits: some share one
            Count(n=n).submit()
    first = [p.name[0] for p in (workdir / "jobs" / "xpm_test_tasks.count").iterdir()]
    digit = next(d for d in first if first.count(d) > 1)
    result = run("jobs", "show", digit, "--workdir", str(workdir))
    assert result.exit_code == 2
    assert f"'{digit}' matches several jobs (xpm_test_tasks.count/{digit}" in result.stderr
    assert "give more digits" in result.stderr
    one = next((workdir / "jobs" / "xpm_test_tasks.count").iterdir()).name
    ok = run("jobs", "path", f"count/{one[:20]}", "--workdir", str(workdir))
    assert ok.exit_code == 0 and ok.stdout.startswith(str(workdir / "jobs"))


def test_show_log_path(wd: Path) -> None:
    w = ["--workdir", str(wd)]
    evaluate = ids(
        run("jobs", "list", *w, "--format", "json", "--tag", "n_layers=2", "--task", "evaluate")
    )[0]
    show = run("jobs", "show", evaluate[:7], *w)
    assert show.exit_code == 0, show.output
    assert "  * model.model.activation = 'relu'" in show.stdout
    assert "  * model.model.n_layers = 2" in show.stdout  # Model's default
    assert "  * model.model.device = 'cpu'  [meta]" in show.stdout
    assert "accuracy = 0.7" in show.stdout and "tags: n_layers=2" in show.stdout
    assert "DONE" in show.stdout and "launcher  local" in show.stdout
    assert "git: not recorded" in show.stdout  # XPM_GIT=off in the tests
    data = json.loads(run("jobs", "show", evaluate, *w, "--json").stdout)
    assert [e["state"] for e in data["history"]] == ["SUBMITTED", "RUNNING", "DONE"]
    assert data["results"][0]["key"] == "accuracy"
    fail = job_of(wd, "fail")
    assert run("jobs", "log", fail[:6], *w).stdout == "about to fail\n"
    assert "this task always fails" in run("jobs", "log", "--stderr", fail[:6], *w).stdout
    follow = run("jobs", "log", "--follow", fail[:6], *w)  # an ended job: prints and returns
    assert follow.exit_code == 0 and follow.stdout == "about to fail\n"
    assert run("jobs", "path", f"fail/{fail[:4]}", *w).stdout.strip() == str(
        JobDir(wd, "xpm_test_tasks.fail", fail).path
    )


def test_kill_skips_ended_jobs_and_refuses_other_hosts(wd: Path) -> None:
    w = ["--workdir", str(wd)]
    skipped = run("jobs", "kill", "--task", "count", *w)
    assert skipped.exit_code == 0 and "skipped   xpm_test_tasks.count/" in skipped.stdout
    # A job recorded RUNNING on another host cannot be killed from here.
    ident = job_of(wd, "uses")
    jobdir = JobDir(wd, "xpm_test_tasks.uses", ident)
    (jobdir.path / "done").unlink()
    jobdir.add_event("SUBMITTED", launcher="local")
    jobdir.add_event("RUNNING", pid=12345, host="elsewhere.example")
    assert run("index", "rebuild", *w).exit_code == 0
    other = run("jobs", "kill", ident[:8], *w)
    assert other.exit_code == 2
    assert "runs on host elsewhere.example" in other.stderr and "run `xpm jobs kill` there" in (
        other.stderr
    )


def test_clean_refuses_running_and_depended_on_jobs(wd: Path) -> None:
    w = ["--workdir", str(wd)]
    count = job_of(wd, "count")
    refused = run("jobs", "clean", count[:8], "--yes", *w)
    assert refused.exit_code == 2
    assert "used by xpm_test_tasks.uses/" in refused.stdout and "kept" in refused.stderr
    assert JobDir(wd, "xpm_test_tasks.count", count).path.is_dir()
    # A running job (this very process, so the reconciliation sees it alive) is kept.
    ident = job_of(wd, "uses")
    jobdir = JobDir(wd, "xpm_test_tasks.uses", ident)
    (jobdir.path / "done").unlink()
    jobdir.add_event("SUBMITTED", launcher="local")
    jobdir.add_event("RUNNING", pid=os.getpid(), host=socket.gethostname())
    assert run("index", "rebuild", *w).exit_code == 0
    running = run("jobs", "clean", "--task", "uses", "--yes", *w)
    assert running.exit_code == 2 and "running: kill it first" in running.stdout
    assert jobdir.path.is_dir()
    # Both together, forced: removed, rows gone, the index still matches the directories.
    forced = run("jobs", "clean", ident[:8], "--yes", "--force", *w)
    assert forced.exit_code == 0, forced.output
    assert not jobdir.path.exists()
    now_free = run("jobs", "clean", count[:8], "--yes", *w)
    assert now_free.exit_code == 0 and "removed 1 job(s)" in now_free.stdout
    assert not (wd / "jobs" / "xpm_test_tasks.count").exists()
    assert run("index", "check", *w).exit_code == 0
    assert ids(run("jobs", "list", *w, "--format", "json", "--task", "count")) == []


def test_clean_asks_and_dry_run_deletes_nothing(wd: Path) -> None:
    w = ["--workdir", str(wd)]
    fail = job_of(wd, "fail")
    path = JobDir(wd, "xpm_test_tasks.fail", fail).path
    dry = run("jobs", "clean", "--state", "failed", "--dry-run", *w)
    assert dry.exit_code == 0 and f"remove  xpm_test_tasks.fail/{fail[:12]}" in dry.stdout
    assert "1 job(s)," in dry.stdout and path.is_dir()
    no = CliRunner().invoke(cli, ["jobs", "clean", "--state", "failed", *w], input="n\n")
    assert no.exit_code == 1 and "Aborted" in no.output and path.is_dir()
    yes = CliRunner().invoke(cli, ["jobs", "clean", "--state", "failed", *w], input="y\n")
    assert yes.exit_code == 0 and "removed 1 job(s)" in yes.output and not path.exists()


def test_clean_never_follows_symlinks_out_of_the_workdir(wd: Path, tmp_path: Path) -> None:
    w = ["--workdir", str(wd)]
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data.txt").write_text("keep me")
    fail = job_of(wd, "fail")
    jobdir = JobDir(wd, "xpm_test_tasks.fail", fail)
    (jobdir.path / "link-to-dir").symlink_to(outside)
    (jobdir.path / "link-to-file").symlink_to(outside / "data.txt")
    (jobdir.path / "sub").mkdir()
    (jobdir.path / "sub" / "deep-link").symlink_to(outside)
    result = run("jobs", "clean", fail[:8], "--yes", *w)
    assert result.exit_code == 0, result.output
    assert not jobdir.path.exists()
    assert (outside / "data.txt").read_text() == "keep me"

    # A job directory that is itself a symbolic link is refused, whatever it points to.
    count = job_of(wd, "uses")
    real = JobDir(wd, "xpm_test_tasks.uses", count).path
    moved = tmp_path / "moved-job"
    real.rename(moved)
    real.symlink_to(moved)
    refused = run("jobs", "clean", count[:8], "--yes", "--force", *w)
    assert refused.exit_code == 2 and "is a symbolic link" in refused.stdout
    assert real.is_symlink() and (moved / "params.json").exists()


def test_index_check_and_rebuild(wd: Path) -> None:
    w = ["--workdir", str(wd)]
    ok = run("index", "check", *w)
    assert ok.exit_code == 0 and "matches" in ok.stdout
    fail = job_of(wd, "fail")
    import shutil

    shutil.rmtree(JobDir(wd, "xpm_test_tasks.fail", fail).path)
    bad = run("index", "check", *w)
    assert bad.exit_code == 1 and f"missing-dir: xpm_test_tasks.fail/{fail}" in bad.stdout
    rebuilt = run("index", "rebuild", *w)
    assert rebuilt.exit_code == 0 and "6 jobs" in rebuilt.stdout
    assert run("index", "check", *w).exit_code == 0


def test_query_formats_and_schema(wd: Path) -> None:
    w = ["--workdir", str(wd)]
    sql = "SELECT key, ROUND(value, 2) AS v FROM latest_results WHERE key = 'accuracy' ORDER BY v"
    table = run("query", sql, *w)
    assert table.exit_code == 0 and "accuracy" in table.stdout
    rows = json.loads(run("query", sql, *w, "--format", "json").stdout)
    assert rows == [{"key": "accuracy", "v": 0.7}, {"key": "accuracy", "v": 0.8}]
    assert run("query", sql, *w, "--format", "csv").stdout.splitlines() == [
        "key,v",
        "accuracy,0.7",
        "accuracy,0.8",
    ]
    schema = run("query", "--schema")
    assert schema.exit_code == 0
    assert "### Table `jobs`" in schema.stdout and "### View `job_summary`" in schema.stdout


def test_query_parameters_stdin_and_hints(wd: Path) -> None:
    """#19: the cookbook's :commit query could not be run from `xpm query`."""
    w = ["--workdir", str(wd)]
    sql = "SELECT task_id FROM jobs WHERE task_id LIKE :task || '%' AND attempt >= :n ORDER BY 1"
    args = ["--format", "csv", "--param", "task=xpm_test_tasks.l", "--param", "n=1"]
    rows = run("query", sql, *w, *args)
    assert rows.exit_code == 0, rows.output
    assert rows.stdout.splitlines() == ["task_id", "xpm_test_tasks.learn", "xpm_test_tasks.learn"]
    piped = CliRunner().invoke(cli, ["query", "-", *w, *args], input=sql)
    assert piped.exit_code == 0, piped.output
    assert piped.stdout == rows.stdout
    missing = run("query", sql, *w, "--param", "n=1")
    assert missing.exit_code == 2
    assert missing.stderr.strip().endswith("give it with --param task=VALUE")
    assert "--schema" not in missing.stderr
    bad = run("query", sql, *w, "--param", "n")
    assert bad.exit_code == 2 and "--param 'n': write NAME=VALUE" in bad.stderr
    from xpm.cli._query import parse_query_params

    assert parse_query_params(["a=3", "b=-0.5", "c=0123", "d=1e5", "e=x=y"]) == {
        "a": 3, "b": -0.5, "c": "0123", "d": "1e5", "e": "x=y"
    }  # fmt: skip
    schema = run("query", "--schema")
    assert schema.stdout.startswith("Schema version") and "<!--" not in schema.stdout
    with pytest.raises(UsageError, match=r"n=1\.0e400: beyond the range of a float"):
        parse_query_params(["n=1.0e400"])  # it was bound as the text '1.0e400'


def test_schema_says_why_the_task_tables_are_missing(wd: Path, tmp_path: Path) -> None:
    """A damaged index or a broken xpm.db link printed the schema without the workdir's
    task tables, as if it had none."""
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "xpm.db").symlink_to("xpm.db")
    shown = run("query", "--schema", "--workdir", str(linked))
    assert shown.exit_code == 0
    assert "The task tables of this workdir are not listed: " in shown.stdout
    assert "symbolic link to xpm.db that loops" in shown.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    plain = run("query", "--schema", "--workdir", str(empty))
    assert "not listed" not in plain.stdout  # no index yet: nothing to explain


def test_experiments_list_and_show(wd: Path) -> None:
    w = ["--workdir", str(wd)]
    rows = json.loads(run("experiments", "list", *w, "--format", "json").stdout)
    assert {r["name"]: r["jobs"] for r in rows} == {
        "study": {"DONE": 6},
        "broken": {"FAILED": 1},
    }
    show = run("experiments", "show", "study", *w)
    assert show.exit_code == 0, show.output
    assert "experiment study: 1 run(s), jobs done=6" in show.stdout
    assert "git: not recorded" in show.stdout


# --- git: reproduce, gc-refs, hooks ---------------------------------------------------------
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


# --- Slurm: reconcile in one squeue, kill with scancel ----------------------------------------
def test_slurm_jobs_are_reconciled_and_killed(workdir: Path, slurm_cluster: object) -> None:
    import time

    from xpm_test_tasks import SelfKill

    from xpm.launchers.slurm import SlurmLauncher

    w = ["--workdir", str(workdir)]
    import contextlib

    from xpm.errors import JobsFailedError

    # SelfKill may die before the run detaches (it then reports it: JobsFailedError), or
    # after, when only a later reader can find out.
    with contextlib.suppress(JobsFailedError), experiment(workdir, "slurm", detach=True):
        SelfKill().submit(launcher=SlurmLauncher(poll_interval=0.2))
        Count(n=tag(5), sleep=300).submit(launcher=SlurmLauncher(poll_interval=0.2))
    # SelfKill dies without recording anything: Slurm's verdict is recorded by whoever
    # sees it first (the experiment before detaching, or the listing).
    deadline = time.monotonic() + 120
    states: dict[str, str] = {}
    while time.monotonic() < deadline and (
        states.get("xpm_test_tasks.selfkill") != "FAILED"
        or states.get("xpm_test_tasks.count") != "RUNNING"
    ):
        time.sleep(0.5)
        rows = json.loads(run("jobs", "list", *w, "--format", "json").stdout)
        states = {r["task"]: r["state"] for r in rows}
    assert states == {"xpm_test_tasks.selfkill": "FAILED", "xpm_test_tasks.count": "RUNNING"}
    selfkill = job_of(workdir, "selfkill")
    assert JobDir(workdir, "xpm_test_tasks.selfkill", selfkill).read_status().state == "FAILED"
    kill = run("jobs", "kill", "--tag", "n=5", *w)
    assert kill.exit_code == 0 and "scancel" in kill.stdout, kill.output
    count = job_of(workdir, "count")
    assert JobDir(workdir, "xpm_test_tasks.count", count).read_status().state == "CANCELLED"
    assert run("index", "check", *w).exit_code == 0


def test_first_hour_messages(tmp_path: Path) -> None:
    """#19: `xpm jobs` alone printed its help as an error; `xpm job` got no suggestion;
    `launchers list` showed 24683792KiB and one accelerator per unit; `got NoneType None`."""
    alone = CliRunner().invoke(cli, ["jobs"], prog_name="xpm")
    assert alone.exit_code == 2
    assert alone.stdout.startswith("Usage: xpm jobs") and "xpm: error" not in alone.output
    typo = CliRunner().invoke(cli, ["job", "list"], prog_name="xpm")
    assert typo.exit_code == 2
    assert typo.stderr.strip() == (
        "xpm: error: No such command 'job'. Did you mean 'jobs'? (see 'xpm --help')"
    )
    assert "Did you mean 'list'?" in run("jobs", "lst").stderr

    hosts = tmp_path / "launchers.yaml"
    hosts.write_text(
        "hosts:\n  - {name: gpu, type: slurm, cpus: 8, memory: 256G,\n"
        "     accelerators: [{type: cuda, memory: 16G, count: 4}]}\n"
        "  - {name: odd, type: local, memory: 24683792KiB}\n"
    )
    table = CliRunner().invoke(cli, ["launchers", "list"], env={"XPM_LAUNCHERS": str(hosts)})
    assert table.exit_code == 0, table.output
    assert "cuda(mem=16G) * 4" in table.stdout and table.stdout.count("cuda") == 1
    assert " 256G " in table.stdout and "23.5GiB" in table.stdout and "KiB" not in table.stdout
    as_json = CliRunner().invoke(
        cli, ["launchers", "list", "--format", "json"], env={"XPM_LAUNCHERS": str(hosts)}
    )
    assert json.loads(as_json.stdout)[1]["memory"] == "24683792KiB"  # exact for scripts

    with pytest.raises(ConfigError) as error:
        Count(n=None)
    assert str(error.value).endswith("got None")
