"""Tasks, job directories, the scheduler and the local launcher, with real job processes."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import popen_python, run_python
from xpm_test_tasks import Count, Evaluate, Fail, Learn, Model, SelfKill, Uses

from xpm import PathGenerator, tag, tagspath
from xpm._experiment import experiment
from xpm._jobdir import JobDir
from xpm.errors import ConfigError, ExperimentError, JobDirectoryError, JobsFailedError


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def run_xp(workdir: Path, name: str = "xp", **kw):  # type: ignore[no-untyped-def]
    return experiment(workdir, name, progress=False, **kw)


def test_seed_learn_evaluate_with_dependencies(workdir: Path, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    with run_xp(workdir) as xp:
        evaluations = []
        for n in (1, 3):
            learned = Learn(model=Model(n_layers=tag(n)), epochs=2, counter=str(counter)).submit()
            evaluations.append(Evaluate(model=learned, counter=str(counter)).submit())
    jobs = list(xp.jobs.values())
    assert [j.state for j in jobs] == ["DONE"] * 4
    # Evaluate ran after its Learn: each "evaluate" line comes after a "learn" line.
    log = lines(counter)
    assert sorted(log) == ["evaluate", "evaluate", "learn 1", "learn 3"]
    assert log.index("evaluate") > min(log.index("learn 1"), log.index("learn 3"))
    for evaluation in evaluations:
        jobdir = evaluation.__xpm_jobdir__
        result = json.loads(jobdir.results.read_text().splitlines()[0])
        assert result["values"]["weights"].startswith("weights ")
        # Tags propagate from the Learn task the evaluation depends on.
        assert set(jobdir.read_tags()) == {"n_layers"}
    # The job directory follows WORKDIR/jobs/<task id>/<identifier>.
    learn = jobs[0]
    assert learn.jobdir.path == workdir / "jobs" / "xpm_test_tasks.learn" / learn.identifier
    assert learn.task.model_path == learn.jobdir.path / "model.pth"
    assert (learn.jobdir.path / "model.pth").read_text() == "weights 1"
    status = learn.jobdir.read_status()
    assert status.state == "DONE" and status.exit_code == 0 and status.launcher == "local"
    assert status.pid and status.host and status.start_time and status.end_time
    assert [e["state"] for e in status.history] == ["SUBMITTED", "RUNNING", "DONE"]
    assert "learning 1 layers" in learn.jobdir.stdout.read_text()


def test_downstream_identifier_includes_upstream(workdir: Path) -> None:
    with run_xp(workdir, run_mode="dry-run"):
        a = Learn(model=Model(n_layers=1), epochs=2).submit()
        b = Learn(model=Model(n_layers=2), epochs=2).submit()
        ea, eb = Evaluate(model=a), Evaluate(model=b)
        assert ea.__identifier__() != eb.__identifier__()


def test_same_configuration_is_one_job_and_done_never_reruns(workdir: Path, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    with run_xp(workdir) as xp:
        first = Count(n=1, counter=str(counter)).submit()
        second = Count(n=1, counter=str(counter), sleep=0.5).submit()  # Meta differs: same job
    # The second object is bound to the same job: its own outputs, the job's directory.
    assert len(xp.jobs) == 1 and second is not first
    assert second.__xpm_jobdir__.path == first.__xpm_jobdir__.path
    assert lines(counter) == ["count 1"]
    with run_xp(workdir) as xp2:
        Count(n=1, counter=str(counter)).submit()
    assert lines(counter) == ["count 1"]
    assert xp2.counts() == {"ALREADY_DONE": 1}


def test_failure_propagates_and_experiment_raises(workdir: Path, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    with pytest.raises(JobsFailedError) as info, run_xp(workdir) as xp:
        failing = Fail(n=1).submit()
        Uses(upstream=failing, counter=str(counter)).submit()
        Count(n=7, counter=str(counter)).submit()
    assert info.value.exit_code == 1
    states = {j.task_id.split(".")[-1]: (j.state, j.reason) for j in xp.jobs.values()}
    assert states["fail"][0] == "FAILED" and "RuntimeError" in states["fail"][1]
    assert states["uses"][0] == "FAILED" and states["uses"][1].startswith("dependency failed")
    assert states["count"] == ("DONE", None)
    assert "uses" not in lines(counter)  # the dependent never ran
    fail_job = next(j for j in xp.jobs.values() if j.task_id.endswith("fail"))
    assert "this task always fails" in fail_job.jobdir.stderr.read_text()
    marker = json.loads(fail_job.jobdir.failed_marker.read_text())
    assert marker["exit_code"] == 1


def test_the_summary_says_why_a_job_that_never_started_has_no_log(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#19: the summary pointed at a stderr.log that a job whose dependency failed never
    wrote; it now points at the failed dependency's log."""
    with pytest.raises(JobsFailedError), run_xp(workdir) as xp:
        Uses(upstream=Fail(n=2).submit()).submit()
    err = capsys.readouterr().err
    jobs = {j.task_id.split(".")[-1]: j for j in xp.jobs.values()}
    assert f"    log: {jobs['fail'].jobdir.stderr}" in err
    assert not jobs["uses"].jobdir.stderr.exists()
    assert str(jobs["uses"].jobdir.stderr) not in err
    assert f"    never started, so no log: see the log of {jobs['fail'].name}" in err


def test_the_summary_names_a_few_failed_jobs_and_how_to_list_all(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shlex

    from click.testing import CliRunner

    from xpm import _summary
    from xpm.cli import cli

    monkeypatch.setattr(_summary, "FAILED_SHOWN", 3)
    with pytest.raises(JobsFailedError, match="5 job"), run_xp(workdir, max_parallel=2):
        for n in range(5):
            Fail(n=n).submit()
    err = capsys.readouterr().err
    assert err.count("    log: ") == 3
    hint = next(line for line in err.splitlines() if "... and 2 more" in line)
    command = shlex.split(hint.split("`")[1])
    assert command[:3] == ["xpm", "jobs", "list"]
    listed = CliRunner().invoke(cli, [*command[1:], "--format", "json"])
    assert listed.exit_code == 0, listed.output
    assert len(json.loads(listed.output)) == 5


def test_failed_job_reruns_and_keeps_previous_logs(workdir: Path, tmp_path: Path) -> None:
    ok = tmp_path / "ok"
    with pytest.raises(JobsFailedError), run_xp(workdir) as xp:
        Fail(n=2, ok_file=str(ok)).submit()
    jobdir = next(iter(xp.jobs.values())).jobdir
    ok.write_text("")
    with run_xp(workdir) as xp:
        Fail(n=2, ok_file=str(ok)).submit()
    assert next(iter(xp.jobs.values())).state == "DONE"
    assert "this task always fails" in jobdir.log("stderr", 1).read_text()
    assert "ok this time" in jobdir.stdout.read_text()
    assert "ok this time" not in jobdir.log("stdout", 1).read_text()
    assert not jobdir.failed_marker.exists()
    assert jobdir.read_status().attempt == 2


def test_sigkilled_job_is_failed_with_the_signal(workdir: Path) -> None:
    with pytest.raises(JobsFailedError), run_xp(workdir) as xp:
        SelfKill().submit()
    job = next(iter(xp.jobs.values()))
    status = job.jobdir.read_status()
    assert status.state == "FAILED"
    assert status.signal == signal.SIGKILL
    assert "SIGKILL" in (status.reason or "")


def _xp_script(workdir: Path, body: str, options: str = "") -> str:
    return (
        "import sys\nfrom xpm import experiment, tag\n"
        "from xpm_test_tasks import Count, Fail\n"
        f"with experiment({str(workdir)!r}, 'xp', progress=False{options}) as xp:\n" + body
    )


def test_a_job_left_running_by_a_killed_experiment_is_not_started_again(
    workdir: Path, tmp_path: Path
) -> None:
    """The experiment process is SIGKILLed while its job runs (the job, in its own
    session, goes on).  A new run of the experiment finds the job's running.lock held:
    it waits for that process instead of starting a second one, and sees it DONE."""
    import os
    import signal
    import time

    counter, started = tmp_path / "counter", tmp_path / "started"
    task = f"Count(n=6, counter={str(counter)!r}, started={str(started)!r}, sleep=2.5)"
    first = popen_python(_xp_script(workdir, f"    {task}.submit()\n"))
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists(), first.communicate(timeout=10)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=10)
    job_pid = int(started.read_text())
    descriptors = len(os.listdir("/proc/self/fd"))
    with run_xp(workdir) as xp:
        job = Count(n=6, counter=str(counter), started=str(started), sleep=2.5).submit()
    # It probed the lock every LOCK_RETRY seconds for ~2 s without keeping a file open.
    assert len(os.listdir("/proc/self/fd")) <= descriptors + 1
    assert counter.read_text() == "count 6\n"  # one execution
    assert int(started.read_text()) == job_pid  # by the first process only
    assert [j.state for j in xp.jobs.values()] == ["DONE"]
    assert job.__xpm_jobdir__.is_done()


def test_two_processes_run_a_shared_job_exactly_once(workdir: Path, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    body = f"    Count(n=5, counter={str(counter)!r}, sleep=1.5).submit()\n"
    procs = [popen_python(_xp_script(workdir, body)) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert lines(counter) == ["count 5"]
    assert any("being run by another process" in err for _out, err in outs)


def test_a_lock_left_by_a_killed_process_is_recovered(workdir: Path, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    task = Count(n=9, counter=str(counter))
    jobdir = JobDir(workdir, type(task).__xpm__.typeid, task.__identifier__().hex)
    jobdir.create()
    holder = popen_python(
        "import fasteners, sys, time\n"
        f"lock = fasteners.InterProcessLock({str(jobdir.lock)!r})\n"
        "lock.acquire(); print('held', flush=True); time.sleep(60)\n"
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.communicate()
    with run_xp(workdir) as xp:
        Count(n=9, counter=str(counter)).submit()
    assert next(iter(xp.jobs.values())).state == "DONE"
    assert lines(counter) == ["count 9"]


def test_ctrl_c_stops_jobs_and_a_new_run_resumes(workdir: Path, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    started = tmp_path / "started"
    body = (
        f"    Count(n=1, counter={str(counter)!r}).submit()\n"
        f"    Count(n=2, counter={str(counter)!r}, sleep=float(sys.argv[1]),"
        f" started={str(started)!r}).submit()\n"
    )
    # One job at a time: the first is DONE before the second starts.
    proc = popen_python(_xp_script(workdir, body, ", max_parallel=1").replace("sys.argv[1]", "60"))
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists(), proc.communicate(timeout=5)
    job_pid = int(started.read_text())
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "interrupted" in err
    assert "KeyboardInterrupt" in err and "RuntimeError" not in err, err
    with pytest.raises(ProcessLookupError):
        os.kill(job_pid, 0)  # the job process was terminated
    cancelled = [JobDir.from_path(p.parent) for p in workdir.glob("jobs/*/*/params.json")]
    ends = sorted((j.read_status().state, j.read_status().reason) for j in cancelled)
    # The running job got SIGTERM and says so (docs/tasks.md); the run says "interrupted".
    assert ends == [("CANCELLED", "terminated by SIGTERM"), ("DONE", None)]
    # A new run skips the DONE job and runs the interrupted one (Meta sleep=0: same job).
    result = run_python(_xp_script(workdir, body).replace("sys.argv[1]", "0"))
    assert result.returncode == 0, result.stderr
    assert sorted(lines(counter)) == ["count 1", "count 2"]
    assert "1 already done" in result.stderr


def test_at_most_max_parallel_jobs_run_at_once(workdir: Path, tmp_path: Path) -> None:
    from xpm.launchers import LocalLauncher

    counter = tmp_path / "counter"
    with run_xp(workdir, launcher=LocalLauncher(max_parallel=2)) as xp:
        for n in range(5):
            Count(n=n, counter=str(counter), sleep=0.3).submit()
    spans = []
    for job in xp.jobs.values():
        history = job.jobdir.read_status().history
        times = {e["state"]: e["time"] for e in history}
        spans.append((times["RUNNING"], times["DONE"]))
    for t, _ in spans:
        overlapping = sum(1 for start, end in spans if start <= t < end)
        assert overlapping <= 2
    assert len(lines(counter)) == 5


def test_run_modes(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with run_xp(workdir, run_mode="dry-run") as xp:
        learned = Learn(model=Model(n_layers=tag(4)), epochs=1).submit()
        Evaluate(model=learned).submit()
    assert not (workdir / "jobs").exists() and not (workdir / "experiments").exists()
    err = capsys.readouterr().err
    assert "[to run] xpm_test_tasks.learn/" in err and "n_layers=4" in err
    assert "after xpm_test_tasks.learn/" in err
    assert [p["status"] for p in xp.plan] == ["to run", "to run"]

    with run_xp(workdir, run_mode="generate") as xp:
        learned = Learn(model=Model(n_layers=tag(4)), epochs=1).submit()
        Evaluate(model=learned).submit()
    for job in xp.jobs.values():
        assert job.jobdir.params.exists()
        assert not job.jobdir.stdout.exists() and not job.jobdir.is_done()

    with run_xp(workdir) as xp:
        learned = Learn(model=Model(n_layers=tag(4)), epochs=1).submit()
        Evaluate(model=learned).submit()
    assert all(j.jobdir.is_done() for j in xp.jobs.values())

    with run_xp(workdir, run_mode="dry-run") as xp:
        learned = Learn(model=Model(n_layers=tag(4)), epochs=1).submit()
    assert xp.plan[0]["status"] == "done"


def test_tags_and_tagspath() -> None:
    model = Model(n_layers=tag(3), activation=tag("a/b"))
    assert tagspath(model) == "activation=a-b_n_layers=3"
    learn = Learn(model=model, epochs=tag(10))
    assert tagspath(learn) == "activation=a-b_epochs=10_n_layers=3"
    # Tags never change identifiers.
    assert (
        learn.__identifier__()
        == Learn(model=Model(n_layers=3, activation="a/b"), epochs=10).__identifier__()
    )


def test_path_generator_cannot_escape_the_job_directory(workdir: Path) -> None:
    for bad in ("../x", "/etc/passwd", "a/../../b"):
        with pytest.raises(ConfigError, match="inside the job directory"):
            PathGenerator(bad)
    jobdir = JobDir(workdir, "t", "0" * 64)
    with pytest.raises(JobDirectoryError):
        jobdir.inside("../../escape")


def test_submit_outside_an_experiment_is_a_clear_error() -> None:
    with pytest.raises(ExperimentError, match="inside `with experiment"):
        Count(n=1).submit()


def test_submitting_a_task_using_an_unsubmitted_task_is_an_error(workdir: Path) -> None:
    with (
        pytest.raises(ExperimentError, match="submit it first"),
        run_xp(workdir, run_mode="dry-run"),
    ):
        Uses(upstream=Count(n=3)).submit()


def test_missing_required_parameter_is_reported_at_submission(workdir: Path) -> None:
    with (
        pytest.raises(ConfigError, match=r"Learn\.epochs .*is required"),
        run_xp(workdir, run_mode="dry-run"),
    ):
        Learn(model=Model()).submit()


def test_experiment_exit_status_of_a_script(workdir: Path) -> None:
    """The summary names the failed job and its log; the script ends with one line and
    status 1, not a traceback through xpm (XPM_DEBUG=1 keeps it)."""
    result = run_python(_xp_script(workdir, "    Fail(n=3).submit()\n"))
    assert result.returncode == 1 and "1 failed" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("xpm: error: 1 job(s) of experiment") and "XPM_DEBUG=1" in last
    assert "Traceback" not in result.stderr
    debug = run_python(_xp_script(workdir, "    Fail(n=3).submit()\n"), env={"XPM_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert "JobsFailedError" in debug.stderr


def test_a_script_that_runs_an_experiment_at_import_does_not_recurse(tmp_path: Path) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from xpm import Param, Task, experiment\n"
        "class Once(Task):\n"
        "    n: Param[int] = 1\n"
        "    def execute(self):\n"
        "        print('ran')\n"
        f"with experiment({str(tmp_path / 'wd')!r}, 'x', progress=False):\n"
        "    Once().submit()\n"
    )
    result = run_python(
        f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')", timeout=60
    )
    assert result.returncode != 0
    assert "put the experiment under `if __name__" in result.stderr
    assert len(list((tmp_path / "wd").glob("jobs/*/*/params.json"))) == 1


# Modules neither `import xpm` nor a job process may load: the index, the CLI, git, the web view.
HEAVY = frozenset({"sqlite3", "sqlite_utils", "click", "yaml", "tabulate", "datasette", "git"})


def test_the_job_side_stays_light(workdir: Path) -> None:
    from xpm_test_tasks import ListModules

    with run_xp(workdir) as xp:
        ListModules().submit()
    job = next(iter(xp.jobs.values()))
    loaded = set((job.jobdir.path / "modules.txt").read_text().split())
    heavy = HEAVY | {
        "xpm.index",
        "xpm.cli",
        "xpm.git",
        # Each costs every job process 1-5 ms at start (bytecode cached).
        "fasteners",
        "dataclasses",
        "inspect",
        "socket",
        "traceback",
        "subprocess",
        "copy",
    }
    assert not heavy & loaded, heavy & loaded
    # The test tasks' module imports signal itself; the entry point alone does not.
    result = run_python(
        "import sys, xpm.run, xpm._serialize, xpm._task; print(' '.join(sorted(sys.modules)))"
    )
    assert not {"signal", "copy"} & set(result.stdout.split())


def test_import_xpm_stays_light() -> None:
    result = run_python("import sys, xpm; print(' '.join(sorted(sys.modules)))")
    loaded = set(result.stdout.split())
    heavy = HEAVY | {"fasteners", "json"}
    assert not heavy & loaded, heavy & loaded


def test_an_error_in_the_experiment_block_is_the_error_raised(
    workdir: Path, tmp_path: Path
) -> None:
    class Oops(Exception):
        pass

    started = tmp_path / "started"
    with pytest.raises(Oops), run_xp(workdir, max_parallel=1) as xp:
        Count(n=41, sleep=30, started=str(started)).submit()
        Count(n=42).submit()  # still pending when the error comes
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise Oops("the user's own error")
    states = sorted(j.state for j in xp.jobs.values())
    assert states == ["CANCELLED", "CANCELLED"]
    pid = int(started.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _run_outcomes(workdir: Path) -> list[str]:
    records = sorted((workdir / "experiments").glob("*/runs/*.json"))
    return [json.loads(p.read_text())["outcome"] for p in records]


def test_run_records_say_how_the_run_ended(workdir: Path) -> None:
    with run_xp(workdir, name="a"):
        Count(n=51).submit()
    with pytest.raises(JobsFailedError), run_xp(workdir, name="b"):
        Fail(n=51).submit()
    with pytest.raises(KeyError), run_xp(workdir, name="c"):
        raise KeyError("in the experiment's own code")
    with pytest.raises(ValueError), run_xp(workdir, name="d"):
        raise ValueError("\n  first line " + "x" * 1000 + "\nsecond line")
    outcomes = _run_outcomes(workdir)
    assert outcomes[:3] == [
        "done",
        "1 job(s) failed",
        'error: KeyError: "in the experiment\'s own code"',
    ]
    # The message says what went wrong weeks later; the record stays one bounded line.
    assert outcomes[3].startswith("error: ValueError: first line xxx")
    assert outcomes[3].endswith("x...") and len(outcomes[3]) < 400


def test_dry_run_says_which_jobs_failed_before(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(JobsFailedError), run_xp(workdir):
        Fail(n=61).submit()
    capsys.readouterr()
    with run_xp(workdir, run_mode="dry-run") as xp:
        Fail(n=61).submit()
        Count(n=61).submit()
    assert [p["previous"] for p in xp.plan] == ["FAILED", None]
    err = capsys.readouterr().err
    assert "[to run, failed before: RuntimeError: this task always fails]" in err
    assert "xpm xp: dry run, workdir " in err  # it said "dry-run run"


def test_progress_false_is_silent_and_lines_prints_lines(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#19: progress=False printed a progress line at each change; it now prints none (the
    summary stays), and progress="lines" is the plain-lines mode for logs."""
    with run_xp(workdir, name="quiet"):
        Count(n=31).submit()
    quiet = capsys.readouterr().err.splitlines()
    assert [line for line in quiet if " running, " in line] == []
    assert quiet[-1] == "xpm quiet: 1 done, 0 already done, 0 failed"
    with experiment(workdir, "loud", progress="lines"):
        Count(n=32).submit()
    loud = capsys.readouterr().err
    assert "xpm loud: 1 done, 0 running, 0 failed, 0 waiting" in loud
    with pytest.raises(ExperimentError, match="progress='yes': use True"):
        experiment(workdir, "bad", progress="yes")


def test_progress_says_queued_jobs_apart_from_running_ones(workdir: Path) -> None:
    """A batch system's queue is not running: 24 SUBMITTED Slurm jobs of which 4 ran were
    shown "24 running" (#18 trial).  The counts of a run's jobs, as the line words them."""
    from types import SimpleNamespace

    xp = experiment(workdir, "counts", progress=False)
    states = ["RUNNING"] * 4 + ["SUBMITTED"] * 20 + ["DONE", "FAILED", "WAITING"]
    xp.jobs = {  # type: ignore[assignment]
        (str(i), ""): SimpleNamespace(state=s, already_done=False) for i, s in enumerate(states)
    }
    assert xp._progress_line() == "xpm counts: 1 done, 4 running, 20 queued, 1 failed, 1 waiting"


def test_detach_says_what_it_left_in_one_line(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#19: detaching from local jobs printed two lines that read as two different states."""
    started = tmp_path / "started"
    with run_xp(workdir, name="away", detach=True):
        Count(n=33, sleep=60, started=str(started)).submit()
    lines = [line for line in capsys.readouterr().err.splitlines() if "detached" in line]
    assert lines == [
        "xpm away: detached; 1 job(s) left running or queued, 1 of them local, which finish "
        "on their own (`xpm jobs list --watch` follows them)"
    ]
    from xpm.workdir import JobFilter, kill_jobs, select_jobs

    kill_jobs(workdir, select_jobs(workdir, JobFilter(states=["SUBMITTED", "RUNNING"])))


def test_a_detached_run_leaves_the_index_equal_to_the_directories(
    workdir: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Two new-user trials: right after `--detach`, "1 job(s) of this run are not in the
    index; run `xpm index rebuild`" and `xpm index check` failing (index SUBMITTED, directory
    RUNNING): the run closed its index before its just-launched jobs said RUNNING."""
    from xpm.index import check
    from xpm.workdir import JobFilter, kill_jobs, select_jobs

    with run_xp(workdir, name="quick", detach=True, max_parallel=2):
        for n in range(36, 38):  # as many as there are slots: the run detaches at once
            Count(n=n, sleep=30).submit()
    err = capsys.readouterr().err
    assert "not in the index" not in err + caplog.text and "wait for a free slot" not in err
    assert check(workdir) == []
    kill_jobs(workdir, select_jobs(workdir, JobFilter(states=["SUBMITTED", "RUNNING"])))


def test_detach_says_why_it_waits_for_a_local_pipeline(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#19: --detach on a local pipeline waited for the upstream jobs without a word."""
    hold = workdir.parent / "hold"
    release = threading.Timer(2.0, hold.write_text, ("go",))  # Learn ends after the block
    release.start()
    with run_xp(workdir, name="pipeline", detach=True):
        learned = Learn(model=Model(n_layers=2), epochs=1, hold=str(hold)).submit()
        Evaluate(model=learned).submit()
    release.join()
    err = capsys.readouterr().err.splitlines()
    waiting = [i for i, line in enumerate(err) if "or for the jobs they depend on" in line]
    detached = [i for i, line in enumerate(err) if "detached;" in line]
    assert len(waiting) == 1 and len(detached) == 1 and waiting[0] < detached[0]
    assert err[waiting[0]].startswith("xpm pipeline: 1 job(s) wait for a free slot or for")
    with run_xp(workdir, name="alone", detach=True):
        Count(n=34).submit()
    assert "wait for a free slot" not in capsys.readouterr().err  # nothing held: no such line
    # Local jobs beyond the free slots wait in this process too (a trial: 21 s, no word).
    with run_xp(workdir, name="slots", detach=True, max_parallel=1):
        for n in (41, 42, 43):
            Count(n=n, sleep=2).submit()  # the first still runs when the block ends
    assert "xpm slots: 2 job(s) wait for a free slot" in capsys.readouterr().err


def test_upstream_jobs_tagged_differently_are_said_once_per_task_and_tag(workdir: Path) -> None:
    """A job depending on two jobs tagged ``word=alpha`` and ``word=beta`` records one of
    them; the run says which, once per task and tag (it kept the last silently before)."""
    from xpm_test_tasks import Concat, Say

    from xpm import tag

    said: list[str] = []
    with experiment(workdir, "tg", "dry-run", progress=False, echo=said.append) as xp:
        alpha, beta = Say(word=tag("alpha")).submit(), Say(word=tag("beta")).submit()
        Concat(strings=[alpha, beta]).submit()
        Concat(strings=[beta, alpha]).submit()  # the same ambiguity: said once
        Concat(strings=[alpha]).submit()  # one upstream job: nothing to say
    conflicts = [line for line in said if "depends on jobs tagged word differently" in line]
    assert len(conflicts) == 1, said
    alpha_id = alpha.__xpm_jobdir__.identifier[:12]
    assert f"('alpha' in xpm_test_tasks.say/{alpha_id}, 'beta' in" in conflicts[0]
    assert "it records word='beta', the last one's" in conflicts[0]
    concats = [j for j in xp.jobs.values() if j.task_id.endswith("concat")]
    assert [j.submission.tags for j in concats] == [
        {"word": "beta"},
        {"word": "alpha"},
        {"word": "alpha"},
    ]
