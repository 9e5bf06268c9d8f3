"""What a job process sees: the running task, its environment, its files."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import popen_python, run_python
from xpm_test_tasks import Count, Introspect, ReportWithFunction, SelfKill

from xpm import _forkserver
from xpm._experiment import experiment
from xpm._jobdir import JobDir
from xpm.errors import JobsFailedError
from xpm.launchers import LocalLauncher, _forkclient


def test_module_level_report_finds_the_running_task(workdir: Path) -> None:
    # `python -m xpm.run` runs xpm/run.py as __main__: the running task must be found by
    # user code importing xpm, not only by the __main__ copy of the module.
    with experiment(workdir, "xp", progress=False):
        out = ReportWithFunction(x=4).submit()
    rows = [json.loads(line) for line in out.__xpm_jobdir__.results.read_text().splitlines()]
    assert [(r["step"], r["values"]) for r in rows] == [(1, {"value": 40})]


# --- the local fork server ------------------------------------------------------------------
needs_fork_server = pytest.mark.skipif(
    not _forkclient.available(), reason="the fork server needs Linux with pidfd_open"
)


def ready_server(env: dict[str, str] | None = None) -> _forkclient.ForkServer:
    """The fork server jobs of this process get, once it is ready to fork them."""
    server = _forkclient.server_for({**os.environ, **(env or {})})
    assert server is not None
    assert server.ready.wait(60), "the fork server did not start"
    return server


def seen(out: Any) -> dict[str, Any]:
    return dict(json.loads((out.__xpm_jobdir__.path / "seen.json").read_text()))


def parent_command(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _normalized(view: dict[str, Any], jobdir: Path) -> dict[str, Any]:
    """What a job saw, with its own directory and pid replaced by placeholders."""
    text = json.dumps(view).replace(str(jobdir), "JOBDIR")
    out = json.loads(text)
    for key in ("pid", "ppid", "sid", "pgid", "random"):
        out.pop(key)
    out["fds"] = {fd: target for fd, target in out["fds"].items() if fd in ("0", "1", "2")}
    return dict(out)


@needs_fork_server
def test_a_forked_job_sees_what_a_fresh_job_process_sees(workdir: Path) -> None:
    ready_server()
    with experiment(workdir / "forked", "xp", progress=False) as xp:
        forked = [Introspect(n=n).submit() for n in (1, 2)]
    with experiment(
        workdir / "fresh", "xp", progress=False, launcher=LocalLauncher(fork_server=False)
    ):
        fresh = Introspect(n=1).submit()
    assert all(j.state == "DONE" for j in xp.jobs.values())
    views = [seen(out) for out in forked]
    fresh_view = seen(fresh)
    # Forked by the server, not started by this process...
    assert fresh_view["ppid"] == os.getpid()
    for view in views:
        assert view["ppid"] != os.getpid()
        assert "xpm._forkserver" in parent_command(view["ppid"])
        # ...in its own session, as a fresh job is,
        assert view["sid"] == view["pgid"] == view["pid"]
        # with no descriptor of the server left open (its pipes would outlive it).
        assert not [t for t in view["fds"].values() if t.startswith("pipe:")], view["fds"]
    assert fresh_view["sid"] == fresh_view["pid"]
    # The same directory, arguments, sys.path, environment and standard files.
    assert _normalized(views[0], forked[0].__xpm_jobdir__.path) == _normalized(
        fresh_view, fresh.__xpm_jobdir__.path
    )
    # Each child draws its own random numbers (random reseeds after fork).
    assert views[0]["random"] != views[1]["random"]
    # The interpreter exits normally: atexit handlers run (seeing xpm/run.py as __main__ and
    # sys.argv[0], as in a fresh process), buffered output is flushed, nothing else is said.
    fresh_exit = json.loads((fresh.__xpm_jobdir__.path / "atexit.txt").read_text())
    assert fresh_exit[0] == "ran" and fresh_exit[1].endswith("run.py")
    for out in forked:
        jobdir = out.__xpm_jobdir__
        assert json.loads((jobdir.path / "atexit.txt").read_text()) == fresh_exit
        assert jobdir.stdout.read_text().endswith("left in the buffer")
        assert jobdir.stderr.read_text() == ""


@needs_fork_server
def test_a_forked_job_gets_the_environment_and_path_of_its_submission(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server of its own (any PYTHON* variable makes one), started with XPM_TEST_GONE set.
    own = {"PYTHONXPMTEST": "env"}
    monkeypatch.setenv("XPM_TEST_GONE", "then")
    ready_server(own)
    # Changed after the server started: the job must see the experiment's current state.
    monkeypatch.setenv("XPM_TEST_ADDED", "now")
    monkeypatch.delenv("XPM_TEST_GONE")
    code = tmp_path / "late_code"
    code.mkdir()
    (code / "late_tasks.py").write_text(
        "from pathlib import Path\nfrom xpm import Task, Param\n"
        "class Late(Task):\n    x: Param[int]\n"
        "    def execute(self):\n        Path('late.txt').write_text(str(self.x))\n"
    )
    monkeypatch.syspath_prepend(str(code))
    from late_tasks import Late  # type: ignore[import-not-found]

    launcher = LocalLauncher(env={"XPM_TEST_LAUNCHER": "yes", **own})
    with experiment(workdir, "xp", progress=False, launcher=launcher):
        out = Introspect(n=3).submit()
        late = Late(x=7).submit()
    view = seen(out)
    assert "xpm._forkserver" in parent_command(view["ppid"])
    assert "XPM_TEST_GONE" in Path(f"/proc/{view['ppid']}/environ").read_text()
    assert view["environ"]["XPM_TEST_ADDED"] == "now"
    assert view["environ"]["XPM_TEST_LAUNCHER"] == "yes"
    assert "XPM_TEST_GONE" not in view["environ"]
    assert str(code) in view["path"]
    assert (late.__xpm_jobdir__.path / "late.txt").read_text() == "7"


@needs_fork_server
def test_interpreter_level_variables_get_their_own_server(workdir: Path) -> None:
    # PYTHONHASHSEED is read when an interpreter starts: a child of a server started without
    # it could not honour it.
    ready_server()
    seeded = LocalLauncher(env={"PYTHONHASHSEED": "0"})
    ready_server({"PYTHONHASHSEED": "0"})
    with experiment(workdir, "xp", progress=False) as xp:
        plain = Introspect(n=1).submit()
        fixed = Introspect(n=2).submit(launcher=seeded)
    assert all(j.state == "DONE" for j in xp.jobs.values())
    plain_view, fixed_view = seen(plain), seen(fixed)
    assert plain_view["hash_randomization"] == 1
    assert fixed_view["hash_randomization"] == 0
    assert plain_view["ppid"] != fixed_view["ppid"]
    assert "xpm._forkserver" in parent_command(fixed_view["ppid"])


@needs_fork_server
def test_the_fork_server_can_be_switched_off(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XPM_FORK_SERVER", "0")
    with experiment(workdir, "xp", progress=False):
        out = Introspect(n=1).submit()
    assert seen(out)["ppid"] == os.getpid()


@needs_fork_server
def test_a_sigkilled_forked_job_is_failed_with_the_signal(workdir: Path) -> None:
    ready_server()
    with pytest.raises(JobsFailedError), experiment(workdir, "xp", progress=False) as xp:
        SelfKill().submit()
    status = next(iter(xp.jobs.values())).jobdir.read_status()
    assert (status.state, status.signal) == ("FAILED", signal.SIGKILL)


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), f"{path} never appeared"


@needs_fork_server
def test_jobs_outlive_a_dead_fork_server_and_their_outcome_is_kept(
    workdir: Path, tmp_path: Path
) -> None:
    server = ready_server()
    counter, started, doomed = tmp_path / "counter", tmp_path / "started", tmp_path / "doomed"
    with pytest.raises(JobsFailedError), experiment(workdir, "xp", progress=False) as xp:
        ok = Count(n=1, counter=str(counter), sleep=1.5, started=str(started)).submit()
        lost = Count(n=2, counter=str(counter), sleep=60, started=str(doomed)).submit()
        _wait_for(started)
        _wait_for(doomed)
        server_pid = parent_of(int(started.read_text()))
        assert server_pid == server._proc.pid
        os.kill(server_pid, signal.SIGKILL)
        # The second job dies without a trace after its server: nobody reports its exit.
        time.sleep(0.3)
        os.kill(int(doomed.read_text()), signal.SIGKILL)
    states = {j.task.n: (j.state, j.reason) for j in xp.jobs.values()}  # type: ignore[attr-defined]
    assert states[1] == ("DONE", None)
    assert states[2][0] == "FAILED" and "fork server died" in (states[2][1] or "")
    assert lines(counter) == ["count 1"]
    assert ok.__xpm_jobdir__.is_done() and not lost.__xpm_jobdir__.is_done()
    # Later jobs get a new server.
    assert ready_server() is not server
    with experiment(workdir, "xp2", progress=False):
        out = Introspect(n=5).submit()
    view = seen(out)
    assert view["ppid"] != server_pid and "xpm._forkserver" in parent_command(view["ppid"])


@needs_fork_server
@pytest.mark.parametrize("request_size", ["small", "larger than the pipe"])
def test_a_hung_fork_server_is_replaced_by_a_fresh_process(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, request_size: str
) -> None:
    server = ready_server()
    monkeypatch.setattr(_forkclient, "REQUEST_TIMEOUT", 1.0)
    if request_size != "small":  # the write itself cannot finish: it must not block
        for n in range(4):  # 4 x 60 KB: more than a pipe holds, each within exec's limit
            monkeypatch.setenv(f"XPM_TEST_BIG{n}", "x" * 60_000)
    os.kill(server._proc.pid, signal.SIGSTOP)
    try:
        with experiment(workdir, "xp", progress=False):
            out = Introspect(n=1).submit()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server._proc.pid, signal.SIGCONT)
    assert seen(out)["ppid"] == os.getpid()  # started fresh
    assert server._proc.wait(timeout=10) == -signal.SIGKILL  # and the stuck server is gone


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie left for a busy init does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


#: Start of a script that runs an experiment once its process's fork server is ready.
WARM_SERVER = (
    "import os\n"
    "from xpm import experiment\n"
    "from xpm.launchers import _forkclient\n"
    "from xpm_test_tasks import Count, Introspect\n"
    "server = _forkclient.server_for(dict(os.environ))\n"
    "assert server.ready.wait(60)\n"
)


@needs_fork_server
def test_ctrl_c_terminates_forked_jobs_and_the_server_goes_with_the_experiment(
    workdir: Path, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    script = WARM_SERVER + (
        f"with experiment({str(workdir)!r}, 'xp', progress=False):\n"
        f"    Count(n=1, sleep=60, started={str(started)!r}).submit()\n"
    )
    proc = popen_python(script)
    _wait_for(started)
    job_pid = int(started.read_text())
    server_pid = parent_of(job_pid)
    assert "xpm._forkserver" in parent_command(server_pid)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "interrupted" in err, err
    assert not alive(job_pid)
    deadline = time.monotonic() + 10
    while alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(server_pid), "the fork server outlived its experiment"
    (job,) = [JobDir.from_path(p.parent) for p in workdir.glob("jobs/*/*/params.json")]
    assert job.read_status().state == "CANCELLED"


@needs_fork_server
def test_jobs_the_server_cannot_watch_still_report_their_exit(workdir: Path) -> None:
    import resource

    # A real failure of pidfd_open: the server is out of descriptors.  It then reaps those
    # children by polling; their exit statuses (a SIGKILL leaves no file behind) still come.
    own = {"PYTHONXPMTEST": "unwatched"}
    server = ready_server(own)
    taken = {int(fd) for fd in os.listdir(f"/proc/{server._proc.pid}/fd")}
    lowest_free = min(set(range(len(taken) + 1)) - taken)  # where its next descriptor goes
    resource.prlimit(server._proc.pid, resource.RLIMIT_NOFILE, (lowest_free, lowest_free))
    launcher = LocalLauncher(env=own)
    with (
        pytest.raises(JobsFailedError),
        experiment(workdir, "xp", progress=False, launcher=launcher) as xp,
    ):
        ok = Introspect(n=9).submit()
        SelfKill().submit()
    states = sorted((j.state, j.reason) for j in xp.jobs.values())
    assert states == [("DONE", None), ("FAILED", "killed by SIGKILL")]
    assert seen(ok)["ppid"] == server._proc.pid
    assert not [p for p in _children_of(server._proc.pid) if not alive(p)], "zombies left"
    server.close(wait=5)


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and entry != str(pid):
            with contextlib.suppress(OSError, IndexError):
                if parent_of(int(entry)) == pid:
                    found.append(int(entry))
    return found


@needs_fork_server
def test_a_forked_job_gets_the_process_settings_of_its_submission(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import resource

    ready_server()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cpus = os.sched_getaffinity(0)
    old_umask = os.umask(0o027)
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft // 2, hard))
        if len(cpus) > 1:
            os.sched_setaffinity(0, {min(cpus)})
        with experiment(workdir, "xp", progress=False):
            out = Introspect(n=4).submit()
    finally:
        os.umask(old_umask)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        os.sched_setaffinity(0, cpus)
    view = seen(out)
    assert "xpm._forkserver" in parent_command(view["ppid"])
    assert view["umask"] == 0o027
    for log in (out.__xpm_jobdir__.stdout, out.__xpm_jobdir__.stderr):
        assert stat.S_IMODE(log.stat().st_mode) == 0o640  # made under that umask
    assert view["nofile"] == [soft // 2, hard]
    assert view["tzname"] == ["JST", "JST"]
    if len(cpus) > 1:
        assert view["cpus"] == [min(cpus)]


@needs_fork_server
def test_a_stopped_server_is_retired_and_its_jobs_are_followed_from_their_files(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ready_server()
    monkeypatch.setattr(_forkclient, "WATCH_EVERY", 0.1)
    monkeypatch.setattr(_forkclient, "EXIT_REPORT_GRACE", 0.5)
    started = tmp_path / "started"
    with experiment(workdir, "xp", progress=False) as xp:
        Count(n=1, sleep=0.5, started=str(started)).submit()
        _wait_for(started)
        os.kill(server._proc.pid, signal.SIGSTOP)  # it will never report the job's end
    assert [j.state for j in xp.jobs.values()] == ["DONE"]
    assert server._proc.wait(timeout=10) == -signal.SIGKILL


@needs_fork_server
def test_a_late_answer_does_not_run_the_job_twice(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server forks the job but its "started" reply is read after the request timed out.
    # Provoked by slowing this process's reader of the replies: no real way was found to
    # delay a live server's answer past the timeout (this is a mock of timing only).
    monkeypatch.setattr(_forkclient, "REQUEST_TIMEOUT", 0.5)
    read_replies = _forkclient.ForkServer._replies

    def late_replies(self: _forkclient.ForkServer) -> Any:
        for reply in read_replies(self):
            if isinstance(reply, _forkserver.Started):
                time.sleep(1.5)
            yield reply

    monkeypatch.setattr(_forkclient.ForkServer, "_replies", late_replies)
    own = {"PYTHONXPMTEST": "late"}
    server = ready_server(own)
    counter = tmp_path / "counter"
    with experiment(workdir, "xp", progress=False, launcher=LocalLauncher(env=own)) as xp:
        out = Count(n=1, counter=str(counter), sleep=1, started=str(tmp_path / "pid")).submit()
    assert lines(counter) == ["count 1"]  # once, not also in a fresh process
    assert [j.state for j in xp.jobs.values()] == ["DONE"]
    assert out.__xpm_jobdir__.read_status().pid == int((tmp_path / "pid").read_text())
    assert server.dead


@needs_fork_server
def test_a_process_forked_from_the_experiment_starts_its_own_server(
    workdir: Path, tmp_path: Path
) -> None:
    # multiprocessing's "fork" copies the experiment process, fork-server client included:
    # the copy must not send requests whose replies go to the parent's threads.
    counter = tmp_path / "counter"
    script = (
        WARM_SERVER + "import json, multiprocessing\n"
        "_forkclient.REQUEST_TIMEOUT = 1.0  # a request lost to the parent times out soon\n"
        "def child():\n"
        f"    with experiment({str(workdir)!r}, 'child', progress=False) as xp:\n"
        f"        Count(n=1, counter={str(counter)!r}, sleep=3).submit()\n"
        "    assert [j.state for j in xp.jobs.values()] == ['DONE'], xp.jobs\n"
        "p = multiprocessing.get_context('fork').Process(target=child)\n"
        "p.start(); p.join()\n"
        "assert p.exitcode == 0, p.exitcode\n"
        f"with experiment({str(workdir)!r}, 'parent', progress=False):\n"
        "    out = Introspect(n=1).submit()\n"
        "seen = json.loads((out.__xpm_jobdir__.path / 'seen.json').read_text())\n"
        "print(json.dumps([seen['ppid'], server._proc.pid, server.dead]))\n"
    )
    result = run_python(script, timeout=120)
    assert result.returncode == 0, result.stderr
    assert lines(counter) == ["count 1"]
    (job,) = [JobDir.from_path(p.parent) for p in workdir.glob("jobs/*count/*/params.json")]
    assert [e["state"] for e in job.read_status().history] == ["SUBMITTED", "RUNNING", "DONE"]
    ppid, server_pid, dead = json.loads(result.stdout.splitlines()[-1])
    assert (ppid, dead) == (server_pid, False)  # the parent's server still serves the parent


@pytest.mark.parametrize("fork_server", ["1", "0"])
def test_local_jobs_of_an_experiment_run_inside_a_slurm_job_are_not_slurms(
    workdir: Path, fork_server: str
) -> None:
    """An experiment run inside an xpm Slurm job inherits its job script's XPM_BACKEND*
    variables: its local jobs must not take them (a restart count would rotate their logs
    as a requeue, a raw id would name a Slurm run), forked or started fresh."""
    code = (
        "from xpm import experiment\nfrom xpm_test_tasks import Count\n"
        f"with experiment({str(workdir)!r}, 'nested', progress=False):\n"
        "    job = Count(n=5).submit()\n"
        "print(job.__xpm_jobdir__.path)\n"
    )
    inside = {
        "XPM_BACKEND": "slurm",
        "XPM_BACKEND_JOB_ID": "4242",
        "XPM_BACKEND_RESTART": "1",
        "XPM_FORK_SERVER": fork_server,
    }
    done = run_python(code, env=inside)
    assert done.returncode == 0, done.stderr
    jobdir = JobDir.from_path(Path(done.stdout.strip()))
    [running] = [e for e in jobdir.read_status().history if e["state"] == "RUNNING"]
    assert "restart" not in running and "backend_job_id" not in running
    assert "restarted by" not in jobdir.stdout.read_text()
