"""``xpm jobs``: the real ``xpm`` executable end to end (run-experiment, then
list/show/log/query/clean/kill), then each subcommand and its errors through CliRunner on a
workdir made by real experiments, and Slurm jobs reconciled and killed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from _cli_fixtures import ids, job_of, run, wd_fixture  # noqa: F401  (fixture wd)
from click.testing import CliRunner
from xpm_test_tasks import Count

from xpm import experiment, tag
from xpm._jobdir import JobDir
from xpm.cli import cli

TESTS = Path(__file__).parent
ROOT = TESTS.parent

EXPERIMENT_PY = """
from __future__ import annotations

from xpm import tag
from xpm.experiments import ExperimentHelper, configuration
from xpm_test_tasks import Count, Evaluate, Fail, Learn, Model


@configuration
class Configuration:
    n_layers: list[int]
    epochs: int = 1
    fail: bool = False
    sleep: float = 0.0
    started: str = ""


def run(helper: ExperimentHelper, cfg: Configuration) -> None:
    for n in cfg.n_layers:
        learned = Learn(model=Model(n_layers=tag(n)), epochs=cfg.epochs).submit()
        Evaluate(model=learned).submit()
    if cfg.fail:
        Fail().submit()
    if cfg.sleep:
        Count(n=tag(99), sleep=cfg.sleep, started=cfg.started).submit()
"""


def xpm_command() -> list[str]:
    found = shutil.which("xpm")
    return [found] if found else [sys.executable, "-m", "xpm.cli"]


def env_for(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XPM_")}
    env.update(
        XPM_WORKDIR=str(workdir),
        XPM_GIT="off",
        PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT)]),
    )
    return env


def xpm(*args: str, cwd: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*xpm_command(), *args],
        cwd=cwd,
        env=env_for(workdir),
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    (path / "experiment.py").write_text(textwrap.dedent(EXPERIMENT_PY))
    (path / "base.yaml").write_text("file: experiment\nn_layers: [1]\nepochs: 2\n")
    (path / "sweep.yaml").write_text("parent: base.yaml\nid: sweep\nepochs: 3\n")
    return path


def listed(project: Path, workdir: Path, *args: str) -> list[dict]:  # type: ignore[type-arg]
    proc = xpm("jobs", "list", "--format", "json", *args, cwd=project, workdir=workdir)
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout))


def test_run_list_show_log_query_clean(project: Path, tmp_path: Path) -> None:
    wd = tmp_path / "wd"
    run = xpm("run-experiment", "-c", "n_layers=[2,3]", "sweep.yaml", cwd=project, workdir=wd)
    assert run.returncode == 0, run.stderr
    failing = xpm("run-experiment", "-c", "fail=true", "base.yaml", cwd=project, workdir=wd)
    assert failing.returncode == 1, failing.stderr

    jobs = listed(project, wd)
    by_task: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for job in jobs:
        by_task.setdefault(job["task"].rsplit(".", 1)[1], []).append(job)
    assert {k: len(v) for k, v in by_task.items()} == {"learn": 3, "evaluate": 3, "fail": 1}
    assert by_task["fail"][0]["state"] == "FAILED"
    evaluate3 = [j for j in by_task["evaluate"] if j["tags"] == {"n_layers": 3}]
    assert len(evaluate3) == 1 and evaluate3[0]["results"]["accuracy"] == pytest.approx(0.8)

    # Filters: tag, state, task, experiment (the YAML's id), since.
    assert [j["id"] for j in listed(project, wd, "--tag", "n_layers=3", "--task", "evaluate")] == [
        evaluate3[0]["id"]
    ]
    assert [j["task"] for j in listed(project, wd, "--state", "failed")] == ["xpm_test_tasks.fail"]
    assert len(listed(project, wd, "--experiment", "sweep")) == 4
    assert len(listed(project, wd, "--experiment", "base")) == 3
    assert len(listed(project, wd, "--since", "1h")) == 7
    table = xpm("jobs", "list", "--tag", "n_layers=3", cwd=project, workdir=wd)
    assert table.returncode == 0 and evaluate3[0]["id"][:12] in table.stdout
    assert "accuracy=0.8" in table.stdout and evaluate3[0]["id"] not in table.stdout

    # show: parameters with defaults marked, results, history, paths, rerun.
    ident = evaluate3[0]["id"]
    show = xpm("jobs", "show", ident[:8], cwd=project, workdir=wd)
    assert show.returncode == 0, show.stderr
    assert "  * model.model.activation = 'relu'" in show.stdout
    assert "    model.model.n_layers = 3" in show.stdout
    assert "accuracy = 0.8" in show.stdout and "RUNNING" in show.stdout
    assert f"-m xpm.run {wd}/jobs/xpm_test_tasks.evaluate/{ident}" in show.stdout
    assert "run-experiment" in show.stdout  # how the experiment ran

    # log and path.
    fail_id = by_task["fail"][0]["id"]
    out = xpm("jobs", "log", f"fail/{fail_id[:6]}", cwd=project, workdir=wd)
    assert out.returncode == 0 and out.stdout == "about to fail\n"
    err = xpm("jobs", "log", "--stderr", fail_id[:6], cwd=project, workdir=wd)
    assert "RuntimeError: this task always fails" in err.stdout
    path = xpm("jobs", "path", fail_id[:6], cwd=project, workdir=wd)
    assert path.stdout.strip() == str(wd / "jobs" / "xpm_test_tasks.fail" / fail_id)

    # query: read-only SQL.
    q = xpm(
        "query",
        "--format",
        "csv",
        "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state ORDER BY state",
        cwd=project,
        workdir=wd,
    )
    assert q.stdout.splitlines() == ["state,n", "DONE,6", "FAILED,1"]
    write = xpm("query", "DELETE FROM jobs", cwd=project, workdir=wd)
    assert write.returncode == 2 and "read-only" in write.stderr
    assert len(listed(project, wd)) == 7

    # clean: learn jobs are used by evaluate jobs; evaluate jobs can go.
    refused = xpm("jobs", "clean", "--task", "learn", "--yes", cwd=project, workdir=wd)
    assert refused.returncode == 2 and "used by xpm_test_tasks.evaluate/" in refused.stdout
    assert len(listed(project, wd, "--task", "learn")) == 3
    dry = xpm("jobs", "clean", "--task", "evaluate", "--dry-run", cwd=project, workdir=wd)
    assert dry.returncode == 0 and dry.stdout.count("remove  xpm_test_tasks.evaluate/") == 3
    assert " B  " in dry.stdout or "KiB" in dry.stdout
    assert len(listed(project, wd, "--task", "evaluate")) == 3
    gone = xpm("jobs", "clean", "--task", "evaluate", "--yes", cwd=project, workdir=wd)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "removed 3 job(s)" in gone.stdout
    assert not (wd / "jobs" / "xpm_test_tasks.evaluate").exists()
    learn = xpm("jobs", "clean", "--task", "learn", "--yes", cwd=project, workdir=wd)
    assert learn.returncode == 0, learn.stdout + learn.stderr
    assert [j["task"] for j in listed(project, wd)] == ["xpm_test_tasks.fail"]
    check = xpm("index", "check", cwd=project, workdir=wd)
    assert check.returncode == 0, check.stdout


def test_kill_a_job_of_a_background_experiment(project: Path, tmp_path: Path) -> None:
    wd = tmp_path / "wd"
    started = tmp_path / "started"
    background = subprocess.Popen(
        [
            *xpm_command(),
            "run-experiment",
            "-c",
            "n_layers=[]",
            "-c",
            "sleep=300",
            "-c",
            f"started={started}",
            "base.yaml",
        ],
        cwd=project,
        env=env_for(wd),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        running: list[dict] = []  # type: ignore[type-arg]
        while time.monotonic() < deadline and not running:
            time.sleep(0.2)
            if wd.is_dir():  # the experiment may not have made its workdir yet
                running = listed(project, wd, "--state", "running")
        assert running, f"the sleeping job never showed up as RUNNING: {listed(project, wd)}"
        (job,) = running
        shown = xpm("jobs", "show", "--json", job["id"], cwd=project, workdir=wd)
        pid = json.loads(shown.stdout)["launcher"]["pid"]
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # the task itself runs (its SIGTERM handler is installed)
        assert started.exists() and int(started.read_text()) == pid
        kill = xpm("jobs", "kill", job["id"][:10], cwd=project, workdir=wd)
        assert kill.returncode == 0, kill.stderr
        assert kill.stdout.startswith("cancelled xpm_test_tasks.count/")
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the job process is gone
        assert background.wait(timeout=120) == 1  # the experiment reports the job cancelled
        (after,) = listed(project, wd, "--tag", "n=99")
        assert after["state"] == "CANCELLED"
        show = xpm("jobs", "show", job["id"][:10], cwd=project, workdir=wd)
        assert "CANCELLED (cancelled by `xpm jobs kill`)" in show.stdout
        # One end: the job's own "terminated by SIGTERM", its marker naming the sender.
        jobdir = JobDir(wd, job["task"], job["id"])
        ends = [e for e in jobdir.read_status().history if e["state"] == "CANCELLED"]
        assert len(ends) == 1 and ends[0]["reason"] == "terminated by SIGTERM"
        assert "caught_signal" not in (jobdir.read_marker(jobdir.failed_marker) or {})
        again = xpm("jobs", "kill", "--tag", "n=99", cwd=project, workdir=wd)
        assert again.stdout.startswith("skipped") and "not running (CANCELLED)" in again.stdout
    finally:
        if background.poll() is None:
            background.kill()
            background.wait()
        assert background.stderr is not None
        background.stderr.close()


def test_filters_matching_nothing_say_why(project: Path, tmp_path: Path) -> None:
    """#19: a typo in --tag, --task or --experiment gets the closest existing name, not just
    "(none)"; filters that exist but match nothing together say nothing more."""
    wd = tmp_path / "wd"
    run = xpm("run-experiment", "-c", "n_layers=[2,3]", "sweep.yaml", cwd=project, workdir=wd)
    assert run.returncode == 0, run.stderr

    def hints(*args: str) -> list[str]:
        proc = xpm("jobs", "list", *args, cwd=project, workdir=wd)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "(none)"
        return proc.stderr.strip().splitlines()

    assert hints("--tag", "n_layer=3") == [
        "xpm: --tag n_layer=3: no job has a tag 'n_layer'; did you mean 'n_layers'?"
    ]
    assert hints("--tag", "n_layers=7") == [
        "xpm: --tag n_layers=7: no job has n_layers=7; its values: 2, 3"
    ]
    assert hints("--task", "lern") == [
        "xpm: --task lern: no job of this task; did you mean 'learn'?"
    ]
    assert hints("--experiment", "swep", "--task", "learn") == [
        "xpm: --experiment swep: no run of this experiment; did you mean 'sweep'?"
    ]
    assert hints("--task", "learn", "--state", "failed") == []  # both exist: no typo
    kill = xpm("jobs", "kill", "--task", "lern", cwd=project, workdir=wd)
    assert kill.returncode == 0
    assert "did you mean 'learn'?" in kill.stderr


def test_the_rerun_line_of_a_python_m_xpm_cli_run_names_the_module(tmp_path: Path) -> None:
    """A run started as ``python -m xpm.cli run-experiment`` was shown as
    ``python .../xpm/cli/__main__.py run-experiment``."""
    import sys

    import xpm.cli.__main__ as cli_main
    from xpm.workdir import rerun_program

    main = str(cli_main.__file__)
    python = sys.executable
    assert rerun_program(main, main, python) == [python, "-m", "xpm.cli"]
    script = str(tmp_path / "experiment.py")
    assert rerun_program(script, script, python) == [python, script]
    assert rerun_program(main, "/usr/local/bin/xpm", python) == []


def test_rerun_lines_use_the_interpreter_the_run_had(tmp_path: Path) -> None:
    """`jobs show` printed the interpreter of the process showing the job: from another
    virtualenv, the rerun lines did not run the job with the packages it ran with."""
    from xpm.workdir import find_job, job_details

    venv_python = tmp_path / "venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to(sys.executable)
    wd = tmp_path / "workdir"
    script = tmp_path / "experiment.py"
    script.write_text(
        "from xpm._experiment import experiment\n"
        "from xpm_test_tasks import Count\n"
        f"with experiment({str(wd)!r}, 'py', progress=False):\n"
        "    Count(n=7).submit()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("XPM_")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT)])
    done = subprocess.run(
        [str(venv_python), str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    (params,) = wd.glob("jobs/*/*/params.json")
    job = find_job(wd, params.parent.name)
    rerun = job_details(wd, job)["rerun"]
    assert rerun[0].endswith(f"&& {venv_python} {script}")
    assert rerun[1].startswith(f"{venv_python} -m xpm.run ")
    venv_python.unlink()  # a deleted virtualenv: the interpreter at hand, not a dead path
    rerun = job_details(wd, job)["rerun"]
    assert rerun[1].startswith(f"{sys.executable} -m xpm.run ")


def test_a_reader_that_went_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """`xpm ... | head` printed `xpm: error: unexpected BrokenPipeError` (a new user's trial):
    now quiet, with the status of a command stopped by SIGPIPE."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte
    try:
        proc = subprocess.run(
            [*xpm_command(), "jobs", "list", "--help"],
            stdout=write,
            stderr=subprocess.PIPE,
            env=env_for(tmp_path / "wd"),
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")


# --- xpm jobs through CliRunner ---------------------------------------------------------------
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


def test_log_of_a_failed_job_points_at_stderr_and_of_one_never_started_says_why(
    tmp_path: Path,
) -> None:
    """A trial: `xpm jobs log` of a failed job printed nothing (its traceback is in stderr)
    and of a job whose dependency failed said "has not run yet (FAILED)"."""
    from click.testing import CliRunner
    from xpm_test_tasks import Fail, Uses

    from xpm._experiment import experiment
    from xpm.cli import cli
    from xpm.errors import JobsFailedError

    wd = tmp_path / "wd"
    with pytest.raises(JobsFailedError), experiment(wd, "logs", progress=False) as xp:
        failing = Fail(n=71)
        upstream = failing.submit()
        Uses(upstream=upstream).submit()
    failed, never = (j for j in xp.jobs.values())
    failed.jobdir.stdout.write_text("")  # a task that printed nothing before failing
    runner = CliRunner()
    log = runner.invoke(cli, ["jobs", "log", failed.identifier[:12], "--workdir", str(wd)])
    assert log.exit_code == 0 and log.stdout == ""
    assert f"the error is in stderr: xpm jobs log {failed.identifier[:12]} --stderr" in log.stderr
    shown = runner.invoke(cli, ["jobs", "log", never.identifier[:12], "--workdir", str(wd)])
    assert shown.exit_code == 2
    assert "it never started (dependency failed" in shown.stderr


def test_show_of_a_job_not_started_marks_the_files_it_has_not_written(workdir: Path) -> None:
    with experiment(workdir, "gen", "generate", progress=False):
        Count(n=41).submit()
    shown = run("jobs", "show", job_of(workdir, "count"), "--workdir", str(workdir))
    assert shown.exit_code == 0, shown.output
    paths = dict(
        line.split(None, 1)
        for line in shown.output.split("paths:\n")[1].split("\n\n")[0].splitlines()
    )
    assert not paths["params"].endswith("(not written yet)")
    for name in ("stdout", "stderr", "results"):
        assert paths[name].endswith("  (not written yet)"), paths


def test_jobs_list_tells_apart_jobs_with_the_same_tags(tmp_path: Path, monkeypatch: Any) -> None:
    """Two `seed=0` rows of lr 0.1 and 0.2 (lr untagged) read alike: the table gives the
    parameters that differ among jobs of the same task and tags, in brackets."""
    from xpm_chart_tasks import Fit

    monkeypatch.setenv("XPM_GIT", "off")
    workdir = tmp_path / "wd"
    with experiment(workdir, "alike", "generate", progress=False):  # written, not run
        for lr in (0.1, 0.2):
            Fit(lr=lr, seed=tag(0)).submit()
        Fit(lr=0.1, seed=tag(1)).submit()
    out = CliRunner().invoke(cli, ["jobs", "list", "--workdir", str(workdir)])
    assert out.exit_code == 0, out.output
    rows = [line for line in out.stdout.splitlines() if "xpm_chart_tasks.fit" in line]
    assert len(rows) == 3
    assert sum("seed=0 (lr=0.1)" in r for r in rows) == 1, rows
    assert sum("seed=0 (lr=0.2)" in r for r in rows) == 1, rows
    assert sum(r.rstrip().endswith("seed=1") for r in rows) == 1, rows  # alone: no brackets
