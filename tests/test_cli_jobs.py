"""The real ``xpm`` executable end to end: run-experiment, then list/show/log/query/clean/kill."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

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
