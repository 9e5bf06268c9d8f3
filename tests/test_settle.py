"""How a job ends: one function writes it, one rule settles a job whose process is gone."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, TESTS, assert_index_equals_rebuild

from xpm._jobdir import LOST, NOT_MARKED_DONE, JobDir, iter_job_dirs
from xpm._process import process_start
from xpm.errors import IndexDatabaseError, JobDirectoryError
from xpm.index import open_index
from xpm.launchers._base import LaunchOutcome


def started_job(workdir: Path) -> JobDir:
    """A job directory whose job was launched and started running (no outcome yet)."""
    jobdir = JobDir(workdir, "t.Task", "ab" * 32)
    jobdir.create()
    jobdir.write_params("{}")
    jobdir.add_event("SUBMITTED", launcher="local")
    jobdir.add_event("RUNNING", pid=1, host="elsewhere")
    return jobdir


def test_end_writes_the_marker_and_the_event_together(workdir: Path) -> None:
    jobdir = started_job(workdir)
    jobdir.end("CANCELLED", "interrupted", exit_code=130)
    marker = json.loads(jobdir.failed_marker.read_text())
    assert (marker["state"], marker["reason"], marker["exit_code"]) == (
        "CANCELLED",
        "interrupted",
        130,
    )
    last = jobdir.read_status().history[-1]
    assert (last["state"], last["reason"], last["exit_code"]) == ("CANCELLED", "interrupted", 130)
    with pytest.raises(JobDirectoryError, match="cannot end as 'RUNNING'"):
        jobdir.end("RUNNING")


def test_settle_without_a_verdict_is_lost_with_one_wording(workdir: Path) -> None:
    jobdir = started_job(workdir)
    assert jobdir.settle(None, "its process is gone") == (
        "FAILED",
        f"{LOST} (its process is gone)",
    )
    status = jobdir.read_status()
    assert status.state == "FAILED" and (status.reason or "").startswith("lost: ")
    # Settled once: a second reader finds the outcome on disk and writes nothing more.
    events = jobdir.events.read_text()
    assert jobdir.settle(None, "another detail") == ("FAILED", f"{LOST} (its process is gone)")
    assert jobdir.events.read_text() == events


def test_settle_takes_the_launchers_verdict_and_the_jobs_own_outcome_wins(
    workdir: Path,
) -> None:
    jobdir = started_job(workdir)
    verdict = LaunchOutcome("FAILED", reason="slurm: TIMEOUT", exit_code=None, signal=15)
    assert jobdir.settle(verdict) == ("FAILED", "slurm: TIMEOUT")
    assert jobdir.read_status().signal == 15
    # A launcher that saw success without a done marker: a failure all the same.
    other = JobDir(workdir, "t.Task", "cd" * 32)
    other.create()
    assert other.settle(LaunchOutcome("DONE", exit_code=0)) == ("FAILED", NOT_MARKED_DONE)
    # The job's own record wins over any verdict.
    done = JobDir(workdir, "t.Task", "ef" * 32)
    done.create()
    done.end("DONE", exit_code=0)
    assert done.settle(None, "gone") == ("DONE", None)
    assert done.read_status().state == "DONE"


def test_a_kill_names_the_sender_once_and_never_overrides_the_jobs_own_end(
    workdir: Path,
) -> None:
    """``xpm jobs kill`` records one end per job: it names itself on the job's own
    "terminated by" end, writes the end of a job killed before it could, and leaves a job
    that succeeded or failed on its own in the meantime as it was (#17.3)."""
    why = "cancelled by `xpm jobs kill`"
    caught = started_job(workdir)
    caught.end("CANCELLED", "terminated by SIGTERM", exit_code=143, caught_signal=15)
    assert caught.name_the_sender(why) is None
    status = caught.read_status()
    assert (status.state, status.reason, status.exit_code) == ("CANCELLED", why, 143)
    assert [e["state"] for e in status.history].count("CANCELLED") == 1
    assert "caught_signal" not in (caught.read_marker(caught.failed_marker) or {})
    silent = JobDir(workdir, "t.Task", "12" * 32)
    silent.create()
    silent.add_event("RUNNING", pid=1, host="elsewhere")
    assert silent.name_the_sender(why) is None
    assert (silent.read_status().state, silent.read_status().reason) == ("CANCELLED", why)
    done = JobDir(workdir, "t.Task", "34" * 32)
    done.create()
    done.end("DONE", exit_code=0)
    assert done.name_the_sender(why) == "DONE"
    assert not done.failed_marker.exists() and done.read_status().state == "DONE"
    failed = JobDir(workdir, "t.Task", "56" * 32)
    failed.create()
    failed.end("FAILED", "ValueError: bad", exit_code=1)
    assert failed.name_the_sender(why) == "FAILED"
    assert failed.read_status().reason == "ValueError: bad"


# --- a whole-tree crash, settled by any reader (#21 point 1) ---------------------------------
CRASHING = """
import sys
from pathlib import Path

from xpm._experiment import experiment
from xpm.index import _recorder
from xpm_test_tasks import Count

# The crash must come before the index writer's next write (a 0.25 s window in real runs,
# hit 7 times out of 7 by hand): a slow writer makes that window the whole run.
_recorder.Recorder.__init__.__defaults__ = (3600.0,)
workdir, flags = Path(sys.argv[1]), Path(sys.argv[2])
with experiment(workdir, "crash", progress=False, max_parallel=3):
    Count(n=0).submit()
    for n in (1, 2):
        Count(n=n, sleep=600, started=str(flags / str(n))).submit()
    for n in (3, 4):
        Count(n=n, sleep=600).submit()
"""


def parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return int(stat.rsplit(b")", 1)[1].split()[1])


def crash_whole_tree(workdir: Path, tmp_path: Path) -> None:
    """Run an experiment and SIGKILL it, its fork server and its jobs together."""
    flags = tmp_path / "flags"
    flags.mkdir()
    log = tmp_path / "experiment.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", CRASHING, str(workdir), str(flags)],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    deadline = time.monotonic() + 120
    while not all((flags / n).exists() for n in ("1", "2")):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the jobs never started"
        time.sleep(0.05)
    jobs = [int((flags / n).read_text()) for n in ("1", "2")]
    # Each of them has its own process group (the jobs and the fork server are sessions of
    # their own): kill every group at once, as the OOM killer or a reboot would.
    groups = {proc.pid, *jobs, *(parent_pid(p) for p in jobs)}
    # Frozen first: killed one group after the other, a loaded machine let the fork server
    # see its first job die and record that end before its own kill (the full suite failed
    # once so: 0 jobs left RUNNING).
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, sig)
    proc.wait(timeout=60)
    for pid in jobs:
        while process_start(pid) is not None and Path(f"/proc/{pid}/stat").exists():
            if b") Z" in Path(f"/proc/{pid}/stat").read_bytes():
                break  # a zombie until init reaps it: it runs no more
            time.sleep(0.05)


def xpm_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "xpm.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("reader", ["jobs list", "jobs show", "index check"])
def test_any_reader_settles_a_whole_tree_crash(workdir: Path, tmp_path: Path, reader: str) -> None:
    crash_whole_tree(workdir, tmp_path)
    states = {j: j.read_status() for j in iter_job_dirs(workdir)}
    running = [j for j, status in states.items() if status.state == "RUNNING"]
    # The crash left them RUNNING, and nothing else knows.
    assert len(running) == 2, [(j.identifier[:8], s.state, s.reason) for j, s in states.items()]
    args = reader.split() + ["--workdir", str(workdir)]
    if reader == "jobs show":
        args.insert(2, f"{running[0].task_id}/{running[0].identifier[:12]}")
    first = xpm_cli(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stderr.count("ended without closing") == 1, first.stderr
    assert "2 job(s) left running settled as FAILED (lost)" in first.stderr
    for jobdir in running:
        status = jobdir.read_status()
        assert status.state == "FAILED" and (status.reason or "").startswith(LOST), status
    # Said once: the run is closed, later readers have nothing to settle.
    again = xpm_cli("jobs", "list", "--workdir", str(workdir))
    assert again.returncode == 0 and "ended without closing" not in again.stderr
    assert again.stdout.count("FAILED") == 2 and again.stdout.count("DONE") == 1, again.stdout
    check = xpm_cli("index", "check", "--workdir", str(workdir))
    assert check.returncode == 0, check.stdout + check.stderr
    with open_index(workdir, readonly=True) as db:
        (outcome,) = db.query("SELECT info FROM runs")[0]
        assert json.loads(outcome)["outcome"].startswith("lost: ")
    assert_index_equals_rebuild(workdir, tmp_path)


def test_a_crash_that_cannot_be_settled_is_said_and_the_jobs_still_listed(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fills up at the moment a reader settles a crash.  Mocked: as root (CI)
    no file refuses a write, and a tmpfs filling at this exact moment cannot be timed."""
    import errno

    import xpm._atomicio
    from xpm.index import open_index
    from xpm.index._settle import settle_crashed_runs

    crash_whole_tree(workdir, tmp_path)

    def full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    said: list[str] = []
    with monkeypatch.context() as patch:
        patch.setattr(xpm._atomicio, "atomic_write_text", full)
        with open_index(workdir) as db:
            assert settle_crashed_runs(db, said.append) == 0
    (line,) = said
    assert "ended without closing but cannot be settled here (No space left on device: " in line
    assert f"{workdir}/jobs/" in line and line.endswith("settles them")
    listed = xpm_cli("jobs", "list", "--workdir", str(workdir), "--format", "json")
    assert listed.returncode == 0 and "unexpected" not in listed.stderr, listed.stderr
    assert "settled as FAILED (lost)" in listed.stderr  # space again: the next reader does it


def test_a_marker_that_is_not_a_file_ends_the_job_without_failing_readers(
    workdir: Path, tmp_path: Path
) -> None:
    """A ``failed`` marker that is a directory (a stray ``mkdir``) made every reader fail
    with "unexpected IsADirectoryError"; it still says the job ended, without details."""
    crash_whole_tree(workdir, tmp_path)
    running = [j for j in iter_job_dirs(workdir) if j.read_status().state == "RUNNING"]
    running[0].failed_marker.mkdir()
    for _ in range(2):  # the first settles the crashed run, the second reads what it wrote
        listed = xpm_cli("jobs", "list", "--workdir", str(workdir), "--format", "json")
        assert listed.returncode == 0 and "unexpected" not in listed.stderr, listed.stderr
        by_id = {job["id"]: job["state"] for job in json.loads(listed.stdout)}
        assert [by_id[j.identifier] for j in running] == ["FAILED", "FAILED"]
    assert running[0].read_status().state == "FAILED"


def test_a_reused_pid_is_not_taken_for_the_jobs_process(workdir: Path) -> None:
    jobdir = JobDir(workdir, "t.Task", "ab" * 32)
    jobdir.create()
    jobdir.add_event("SUBMITTED", launcher="local")
    host = socket.gethostname()
    # This test's own process stands for a live job process: the same start time, alive.
    me = os.getpid()
    jobdir.add_event("RUNNING", pid=me, pid_start=process_start(me), host=host)
    assert jobdir.gone(jobdir.read_status(), host) is None
    # The same pid with another start time: the job's process is gone, this one reused it.
    jobdir.add_event("RUNNING", pid=me, pid_start="other-boot:1", host=host)
    assert jobdir.gone(jobdir.read_status(), host) == f"its process {me} on {host} is gone"
    # Another host's job is left to that host.
    assert jobdir.gone(jobdir.read_status(), "elsewhere") is None
    # A Slurm job is left to Slurm's verdict (TIMEOUT, NODE_FAIL... say more than "lost").
    jobdir.add_event("SUBMITTED", launcher="slurm")
    jobdir.add_event("RUNNING", pid=me, pid_start="other-boot:1", host=host)
    assert jobdir.gone(jobdir.read_status(), host) is None


# --- SIGTERM and SIGHUP stop a run as Ctrl-C does (#21 point 2, #20 point 2) -----------------
STOPPED = """
import sys
from pathlib import Path

from xpm._experiment import experiment
from xpm_test_tasks import Count

workdir, flags = Path(sys.argv[1]), Path(sys.argv[2])
try:
    with experiment(workdir, "stopped", progress=False, max_parallel=2):
        for n in (1, 2):
            Count(n=n, sleep=600, started=str(flags / str(n))).submit()
        for n in (3, 4):
            Count(n=n, sleep=600).submit()
except KeyboardInterrupt as e:
    print(type(e).__name__, e)
    sys.exit(3)
"""


def start_script(code: str, tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    """``code`` in a real interpreter of its own session (its own process group)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    with (tmp_path / "experiment.log").open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-c", code, *args],
            env=env,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=err,
        )


def wait_until(condition: Any, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("signum", "times"),
    [(signal.SIGTERM, 1), (signal.SIGHUP, 1), (signal.SIGTERM, 2), (signal.SIGINT, 2)],
    ids=["SIGTERM", "SIGHUP", "SIGTERM-twice", "SIGINT-twice"],
)
def test_a_stop_signal_ends_a_run_as_ctrl_c_does(
    workdir: Path, tmp_path: Path, signum: signal.Signals, times: int
) -> None:
    """Also when it comes twice (systemd repeats, a user presses Ctrl-C again): the second
    one is noted, never cuts the recording short (it left tracebacks and a half-closed run)."""
    flags = tmp_path / "flags"
    flags.mkdir()
    proc = start_script(STOPPED, tmp_path, str(workdir), str(flags))
    pids: list[int] = []
    try:
        wait_until(
            lambda: all((flags / n).exists() for n in ("1", "2")), proc, tmp_path / "experiment.log"
        )
        pids = [int((flags / n).read_text()) for n in ("1", "2")]
        for _ in range(times):
            os.kill(proc.pid, signum)
            time.sleep(0.02)
        out, _ = proc.communicate(timeout=120)
    finally:  # nothing left behind when the test fails (on the code before the fix)
        for group in (proc.pid, *pids):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        proc.communicate(timeout=60)
    why = "interrupted" if signum == signal.SIGINT else f"terminated by {signum.name}"
    exception = "KeyboardInterrupt" if signum == signal.SIGINT else "Terminated"
    assert proc.returncode == 3 and out.decode().split()[0] == exception, out
    log = (tmp_path / "experiment.log").read_text()
    assert f"xpm: {why}; stopping running jobs" in log
    assert "Traceback" not in log and "Exception ignored" not in log, log
    # The local jobs were stopped and recorded CANCELLED, as on Ctrl-C.
    assert all(process_start(pid) is None for pid in pids)
    # (The job processes, stopped with SIGTERM, record that themselves.)
    states = sorted(j.read_status().state for j in iter_job_dirs(workdir))
    assert states == ["CANCELLED", "CANCELLED", "UNSCHEDULED", "UNSCHEDULED"]
    # The run record is closed with what stopped it; the index agrees with the disk.
    (record,) = (workdir / "experiments" / "stopped" / "runs").glob("*[0-9].json")
    run = json.loads(record.read_text())
    assert run["end_time"] is not None and run["outcome"] == why
    check = xpm_cli("index", "check", "--workdir", str(workdir))
    assert check.returncode == 0 and "ended without closing" not in check.stderr, check
    assert_index_equals_rebuild(workdir, tmp_path)


# --- kill -9 of the experiment: what the index holds, the run record holds ------------------
KILLED_NORMAL = """
import sys
from xpm._experiment import experiment
from xpm_test_tasks import Count

with experiment(sys.argv[1], "killed", progress=False, max_parallel=1):
    for n in range(400):
        Count(n=n).submit()
"""
KILLED_GENERATE = """
import sys, time
from xpm._experiment import experiment
from xpm_test_tasks import Count

with experiment(sys.argv[1], "killed", "generate", progress=False):
    for n in range(300):
        Count(n=n).submit()
    time.sleep(600)  # killed here: after the submissions, before the run's end
"""


def indexed_submissions(workdir: Path) -> set[str]:
    try:
        with open_index(workdir, readonly=True) as db:
            return {r[0] for r in db.query("SELECT job_id FROM submissions")}
    except IndexDatabaseError:  # not there yet, or being created
        return set()


@pytest.mark.parametrize("script", [KILLED_NORMAL, KILLED_GENERATE], ids=["normal", "generate"])
def test_after_kill_9_of_the_experiment_the_index_is_what_the_disk_says(
    workdir: Path, tmp_path: Path, script: str
) -> None:
    proc = start_script(script, tmp_path, str(workdir))
    try:
        wait_until(
            lambda: len(indexed_submissions(workdir)) >= 200, proc, tmp_path / "experiment.log"
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    # Before any reader touches it: every submission the index holds is in the run record.
    indexed = indexed_submissions(workdir)
    (record,) = (workdir / "experiments" / "killed" / "runs").glob("*.jobs.jsonl")
    on_disk = {json.loads(line)["identifier"] for line in record.read_text().splitlines()}
    assert indexed and indexed <= on_disk
    # Jobs the dead experiment had started end on their own (they are quick): wait for them.
    deadline = time.monotonic() + 60
    while any(j.read_status().state == "RUNNING" for j in iter_job_dirs(workdir)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    check = xpm_cli("index", "check", "--workdir", str(workdir))
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stderr.count("ended without closing") == 1, check.stderr
    assert_index_equals_rebuild(workdir, tmp_path)
    assert len(indexed_submissions(workdir)) >= len(indexed)  # nothing the index had is lost
