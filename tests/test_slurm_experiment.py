"""Experiments on a real Slurm cluster: dependencies, failures, scancel, detach/re-attach, arrays."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import popen_python, run_python
from xpm_test_tasks import Count, Evaluate, Fail, Learn, Model, Uses

from xpm import _scheduler, tag
from xpm._experiment import experiment
from xpm._jobdir import JobDir
from xpm.errors import JobsFailedError
from xpm.launchers.slurm import SlurmLauncher

pytestmark = pytest.mark.slurm


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def launcher(slurm_cluster: object) -> SlurmLauncher:
    return SlurmLauncher(poll_interval=0.3)


def test_seed_experiment_with_dependencies_on_slurm(
    workdir: Path, tmp_path: Path, launcher: SlurmLauncher
) -> None:
    counter = tmp_path / "counter"
    with experiment(workdir, "slurm", launcher=launcher, progress=False) as xp:
        for n in (1, 2):
            learned = Learn(model=Model(n_layers=tag(n)), epochs=1, counter=str(counter)).submit()
            Evaluate(model=learned, counter=str(counter)).submit()
    assert all(j.state == "DONE" for j in xp.jobs.values())
    assert sorted(lines(counter)) == ["evaluate", "evaluate", "learn 1", "learn 2"]
    for job in xp.jobs.values():
        status = job.jobdir.read_status()
        assert status.launcher == "slurm"
        assert status.launcher_job_id and status.launcher_job_id.split("_")[0].isdigit()
        assert job.jobdir.script.exists() or "_" in status.launcher_job_id
    evaluation = next(j for j in xp.jobs.values() if j.task_id.endswith("evaluate"))
    assert (
        json.loads(evaluation.jobdir.results.read_text().splitlines()[0])["values"]["accuracy"]
        > 0.5
    )


def test_independent_jobs_go_as_one_array(
    workdir: Path, tmp_path: Path, launcher: SlurmLauncher
) -> None:
    counter = tmp_path / "counter"
    with experiment(workdir, "array", launcher=launcher, progress=False) as xp:
        for n in range(3):
            Count(n=n, counter=str(counter)).submit()
    ids = [j.jobdir.read_status().launcher_job_id or "" for j in xp.jobs.values()]
    assert all("_" in i for i in ids), ids
    assert len({i.split("_")[0] for i in ids}) == 1  # one sbatch call for the three
    assert sorted(lines(counter)) == ["count 0", "count 1", "count 2"]


def test_failure_and_dependency_failure_on_slurm(
    workdir: Path, tmp_path: Path, launcher: SlurmLauncher
) -> None:
    counter = tmp_path / "counter"
    with (
        pytest.raises(JobsFailedError),
        experiment(workdir, "fail", launcher=launcher, progress=False) as xp,
    ):
        failing = Fail(n=11).submit()
        Uses(upstream=failing, counter=str(counter)).submit()
    states = {j.task_id.rsplit(".", 1)[-1]: j for j in xp.jobs.values()}
    assert states["fail"].state == "FAILED"
    assert "RuntimeError" in (states["fail"].reason or "")
    assert states["uses"].state in ("FAILED", "CANCELLED")
    assert "dependency" in (states["uses"].reason or "")
    assert lines(counter) == []


def _script(workdir: Path, body: str, options: str = "") -> str:
    return (
        "from xpm import experiment\nfrom xpm.launchers.slurm import SlurmLauncher\n"
        "from xpm_test_tasks import Count\n"
        f"with experiment({str(workdir)!r}, 'sl', progress=False,"
        f" launcher=SlurmLauncher(poll_interval=0.3){options}) as xp:\n" + body
    )


def test_scancel_while_running_ends_cancelled(
    workdir: Path, tmp_path: Path, slurm_cluster: object
) -> None:
    started = tmp_path / "started"
    body = f"    Count(n=21, sleep=60, started={str(started)!r}).submit()\n"
    proc = popen_python(_script(workdir, body))
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started.exists()
    jobdir = JobDir.from_path(next(workdir.glob("jobs/*/*/params.json")).parent)
    slurm_id = jobdir.read_status().launcher_job_id
    assert slurm_id
    subprocess.run(["scancel", slurm_id], check=True)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    status = jobdir.read_status()
    assert status.state == "CANCELLED", (status, err)


def test_detach_then_reattach(workdir: Path, tmp_path: Path, slurm_cluster: object) -> None:
    counter = tmp_path / "counter"
    body = (
        f"    for n in range(2):\n"
        f"        Count(n=30 + n, sleep=4, counter={str(counter)!r}).submit()\n"
    )
    start = time.monotonic()
    result = run_python(_script(workdir, body, ", detach=True"))
    assert result.returncode == 0, result.stderr
    assert "detached" in result.stderr
    assert time.monotonic() - start < 4 + 10  # it did not wait for the jobs
    jobdirs = [JobDir.from_path(p.parent) for p in workdir.glob("jobs/*/*/params.json")]
    assert len(jobdirs) == 2
    assert all(j.read_status().launcher_job_id for j in jobdirs)
    assert not any(j.is_done() for j in jobdirs)
    # A new run of the same experiment re-attaches instead of submitting again.
    again = run_python(_script(workdir, body))
    assert again.returncode == 0, again.stderr
    assert "re-attached" in again.stderr
    assert all(j.is_done() for j in jobdirs)
    assert sorted(lines(counter)) == ["count 30", "count 31"]  # each ran once
    assert all(j.read_status().attempt == 1 for j in jobdirs)


def _settled_by_slurm(job_ids: list[str], timeout: float) -> None:
    """Wait until squeue reports every job in a final state (Slurm's time-limit check runs
    every 30 s, so a 1-minute limit ends a job 60-100 s after it starts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["squeue", "-h", "-t", "all", "-r", "-o", "%i %T", "-j", ",".join(job_ids)],
            capture_output=True,
            text=True,
        ).stdout
        states = dict(line.split() for line in out.splitlines())
        if all(states.get(i) == "TIMEOUT" for i in job_ids):
            return
        time.sleep(2)
    raise AssertionError(f"not all TIMEOUT after {timeout} s: {out}")


@pytest.mark.slow
def test_python_task_past_its_walltime_is_failed_timeout(
    workdir: Path, tmp_path: Path, slurm_cluster: object
) -> None:
    """A real Python task killed at its time limit: Slurm sends SIGTERM, the job's handler
    records "terminated by SIGTERM", and Slurm's TIMEOUT must win, both for the attached
    experiment (scheduler) and for a detached one settled by `xpm jobs list` (issue 18.1)."""

    def script(name: str, n: int, detach: bool) -> str:
        return (
            "from xpm import experiment\nfrom xpm.launchers.slurm import SlurmLauncher\n"
            "from xpm_test_tasks import Count\n"
            f"with experiment({str(workdir)!r}, {name!r}, progress=False, detach={detach},"
            " launcher=SlurmLauncher(time=1, poll_interval=0.5)):\n"
            f"    Count(n={n}, sleep=600).submit()\n"
        )

    attached = popen_python(script("attached", 40, False))
    detached = run_python(script("detached", 41, True))
    assert detached.returncode == 0, detached.stderr
    jobdirs = {
        json.loads(p.read_text())["objects"][0]["values"]["n"]: JobDir.from_path(p.parent)
        for p in workdir.glob("jobs/*/*/params.json")
    }
    _out, err = attached.communicate(timeout=200)
    assert attached.returncode == 1, err
    status = jobdirs[40].read_status()
    assert (status.state, status.reason) == ("FAILED", "slurm: TIMEOUT"), err
    assert status.exit_code == 143  # the job's own status is kept
    stderr_log = jobdirs[40].stderr.read_text()
    assert "terminated by SIGTERM" in stderr_log
    assert "Traceback" not in stderr_log and "SystemExit" not in stderr_log

    slurm_id = jobdirs[41].read_status().launcher_job_id
    assert slurm_id
    _settled_by_slurm([slurm_id], timeout=150)
    assert jobdirs[41].read_status().reason == "terminated by SIGTERM"  # nothing settled it yet
    listed = run_python(
        "from xpm.cli import main; main(['jobs', 'list', '--state', 'failed', '--format',"
        f" 'json', '--workdir', {str(workdir)!r}])"
    )
    assert listed.returncode == 0, listed.stderr
    failed = json.loads(listed.stdout)
    assert {row["id"] for row in failed} == {jobdirs[40].identifier, jobdirs[41].identifier}
    status = jobdirs[41].read_status()
    assert (status.state, status.reason) == ("FAILED", "slurm: TIMEOUT")


def _held_detached_sweep(workdir: Path, tmp_path: Path, ns: range) -> tuple[str, Path]:
    """A detached run of Count(n) for ``ns``, held in Slurm (so they stay queued), through
    logging wrappers of the Slurm commands; returns the script and the calls' log."""
    from test_slurm_launcher import logging_wrappers

    bindir, log = tmp_path / "bin", tmp_path / "calls.log"
    logging_wrappers(bindir, log)
    body = f"    for n in {ns!r}:\n        Count(n=n).submit()\n"
    script = _script(workdir, body, ", detach=True").replace(
        "SlurmLauncher(poll_interval=0.3)",
        f"SlurmLauncher(poll_interval=0.3, binpath={str(bindir)!r}, options={{'hold': True}})",
    )
    return script, log


def _scancel_all(workdir: Path) -> None:
    """Cancel in Slurm every job the workdir submitted (held jobs would stay queued)."""
    ids = {
        JobDir.from_path(p.parent).read_status().launcher_job_id
        for p in workdir.glob("jobs/*/*/params.json")
    }
    subprocess.run(["scancel", *sorted(i.split("_")[0] for i in ids if i)], check=False)


def test_reattach_of_a_detached_sweep_is_one_squeue(
    workdir: Path, tmp_path: Path, slurm_cluster: object
) -> None:
    """Re-running a detached sweep asks Slurm once about all its jobs, not once per job
    (issue 18.6).  Jobs are held, so they are still queued at the second run; both runs
    detach, and the jobs are cancelled at the end."""
    script, log = _held_detached_sweep(workdir, tmp_path, range(50, 58))
    try:
        first = run_python(script)
        assert first.returncode == 0, first.stderr
        log.write_text("")
        again = run_python(script)
        assert again.returncode == 0, again.stderr
        # 8 jobs re-attached: five named, one line for the rest (not a line per job).
        assert again.stderr.count("; re-attached") == 5, again.stderr
        assert again.stderr.count("more jobs still in slurm are re-attached") == 1
        calls = log.read_text().splitlines()
        assert not [c for c in calls if c.startswith("sbatch")]
        # the batched re-attach poll, and at most one poll of the re-attached jobs
        assert 1 <= len([c for c in calls if c.startswith("squeue")]) <= 2, calls
    finally:
        _scancel_all(workdir)


def test_jobs_list_and_kill_use_the_launcher_the_job_recorded(
    workdir: Path, tmp_path: Path, slurm_cluster: object
) -> None:
    """`xpm jobs list` and `xpm jobs kill` ask Slurm through the launcher each job's attempt
    recorded (its ``binpath`` here), not a default ``SlurmLauncher()`` on PATH (#17.1)."""
    import os
    import sys

    script, log = _held_detached_sweep(workdir, tmp_path, range(70, 73))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}

    def xpm(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "xpm.cli", *args, "--workdir", str(workdir)]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    try:
        first = run_python(script)
        assert first.returncode == 0, first.stderr
        log.write_text("")
        listed = xpm("jobs", "list", "--format", "json")
        assert listed.returncode == 0, listed.stderr
        assert sorted(j["state"] for j in json.loads(listed.stdout)) == ["SUBMITTED"] * 3
        assert any(c.startswith("squeue") for c in log.read_text().splitlines())
        log.write_text("")
        killed = xpm("jobs", "kill", "--task", "count")
        assert killed.returncode == 0, killed.stderr
        scancels = [c for c in log.read_text().splitlines() if c.startswith("scancel")]
        assert len(scancels) == 1 and len(scancels[0].split()) >= 4, scancels  # one call, 3 ids
        states = {
            JobDir.from_path(p.parent).read_status().state
            for p in workdir.glob("jobs/*/*/params.json")
        }
        assert states == {"CANCELLED"}
    finally:
        _scancel_all(workdir)


def test_jobs_kill_of_a_running_slurm_job_records_one_end_naming_it(
    workdir: Path, tmp_path: Path, slurm_cluster: object
) -> None:
    """scancel returns before the job catches SIGTERM: `xpm jobs kill` records the end
    naming itself, and the job's own "terminated by SIGTERM" must not replace it nor add
    a second CANCELLED (found by a review: two CANCELLED events, the last one unnamed)."""
    import os
    import sys

    started = tmp_path / "started"
    body = f"    Count(n=77, sleep=600, started={str(started)!r}).submit()\n"
    detached = run_python(_script(workdir, body, ", detach=True"))
    assert detached.returncode == 0, detached.stderr
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started.exists(), "the job never started"
    jobdir = JobDir.from_path(next(workdir.glob("jobs/*/*/params.json")).parent)
    try:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
        killed = subprocess.run(
            [sys.executable, "-m", "xpm.cli", "jobs", "kill", "--task", "count"]
            + ["--workdir", str(workdir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert killed.returncode == 0, killed.stderr
        pid = int(started.read_text())
        # The job process (on this machine: the cluster is local) catches SIGTERM and ends.
        deadline = time.monotonic() + 60
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{pid}").exists(), "the job still runs"
        status = jobdir.read_status()
        ends = [e for e in status.history if e["state"] in ("CANCELLED", "FAILED", "DONE")]
        assert [(e["state"], e.get("reason")) for e in ends] == [
            ("CANCELLED", "cancelled by `xpm jobs kill`")
        ], status.history
        assert (status.state, status.reason) == ("CANCELLED", "cancelled by `xpm jobs kill`")
    finally:
        _scancel_all(workdir)


def test_submit_does_not_wait_behind_sbatch(
    workdir: Path, tmp_path: Path, slurm_cluster: object
) -> None:
    """While sbatch runs (here held at its start until the test says so; a real Slurm retries
    up to 120 s when its queue is full), submit() returns (issue 18.5).  If submit() waited
    for sbatch, the second submission would not return before sbatch is released."""
    bindir, started, release = tmp_path / "bin", tmp_path / "started", tmp_path / "release"
    _slurm_bin(
        bindir,
        f'touch {started}\nwhile [ ! -e {release} ]; do sleep 0.05; done\nexec $REAL "$@"\n',
    )
    result = run_python(
        "import threading, time\nfrom pathlib import Path\n"
        "from xpm import experiment\nfrom xpm.launchers.slurm import SlurmLauncher\n"
        "from xpm_test_tasks import Count\n"
        f"with experiment({str(workdir)!r}, 'slow', progress=False,"
        f" launcher=SlurmLauncher(poll_interval=0.3, binpath={str(bindir)!r})) as xp:\n"
        "    Count(n=60).submit()\n"
        f"    while not Path({str(started)!r}).exists():\n"
        "        time.sleep(0.05)\n"
        "    done = []\n"
        "    second = threading.Thread(target=lambda: done.append(xp.submit(Count(n=61))))\n"
        "    second.start()\n"
        "    second.join(timeout=60)\n"
        "    print('returned' if done else 'blocked')\n"
        f"    Path({str(release)!r}).touch()\n",
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "returned"


def test_crash_between_sbatch_and_saving_the_id_runs_no_second_copy(
    workdir: Path, tmp_path: Path, slurm_cluster: object
) -> None:
    """The experiment is SIGKILLed right after sbatch answered, before it saved the id (for
    real: the sbatch wrapper kills its caller).  The array it submitted is held until its ids
    are recorded, so it never runs; the next run submits again and each job runs once, from
    the second array only (issue 18.7)."""
    bindir, orphan, counter = tmp_path / "bin", tmp_path / "orphan", tmp_path / "counter"
    _slurm_bin(
        bindir,
        f'out=$($REAL "$@") || exit $?\necho "$out" > {orphan}\necho "$out"\nkill -9 $PPID\n',
    )
    body = f"    for n in range(3):\n        Count(n=70 + n, counter={str(counter)!r}).submit()\n"
    crashing = _script(workdir, body).replace(
        "SlurmLauncher(poll_interval=0.3)",
        f"SlurmLauncher(poll_interval=0.3, binpath={str(bindir)!r})",
    )
    first = run_python(crashing)
    assert first.returncode == -9, first.stderr
    orphan_id = orphan.read_text().strip()
    try:
        again = run_python(_script(workdir, body))
        assert again.returncode == 0, again.stderr
        assert sorted(lines(counter)) == ["count 70", "count 71", "count 72"]
        ids = {
            JobDir.from_path(p.parent).read_status().launcher_job_id
            for p in workdir.glob("jobs/*/*/params.json")
        }
        assert orphan_id not in {i.split("_")[0] for i in ids if i}
        queued = subprocess.run(
            ["squeue", "-h", "-r", "-t", "all", "-j", orphan_id, "-o", "%T %r"],
            capture_output=True,
            text=True,
        ).stdout.split("\n")
        assert [q for q in queued if q] == ["PENDING JobHeldUser"] * 3, queued
    finally:
        subprocess.run(["scancel", orphan_id], check=False)


def _slurm_bin(bindir: Path, sbatch_body: str) -> Path:
    """``bindir`` with the real squeue/sacct/scancel/scontrol and an ``sbatch`` wrapper
    running ``sbatch_body`` (``$REAL`` is the real sbatch)."""
    bindir.mkdir()
    for name in ("sbatch", "squeue", "sacct", "scancel", "scontrol"):
        tool = subprocess.run(["which", name], capture_output=True, text=True).stdout.strip()
        if name == "sbatch":
            (bindir / name).write_text(f"#!/bin/bash\nREAL={tool}\n{sbatch_body}")
            (bindir / name).chmod(0o755)
        else:
            (bindir / name).symlink_to(tool)
    return bindir


def test_one_to_one_dependencies_are_one_aftercorr_array(
    workdir: Path, tmp_path: Path, slurm_cluster: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """4 Learn -> 4 Evaluate: two sbatch calls (an array, then an array whose task i waits
    for task i of the first with aftercorr), not 1 + 4 (issue 18.8).  The submissions all
    fall in one array window whatever the machine's speed (a loaded machine once took
    longer than the 0.5 s window between two of them: 3 sbatch calls); the window ends
    anyway when the with block does.  The Learn jobs stay in flight until the second sbatch
    call: a Learn ending first (a slow poll once let one) makes its Evaluate independent, a
    third sbatch call, and tests nothing of aftercorr."""
    monkeypatch.setattr(_scheduler, "ARRAY_WINDOW", 60.0)
    from test_slurm_launcher import logging_wrappers

    bindir, log, counter = tmp_path / "bin", tmp_path / "calls.log", tmp_path / "counter"
    hold = tmp_path / "hold"
    logging_wrappers(bindir, log)

    def release_after_the_second_sbatch() -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            calls = log.read_text().splitlines() if log.exists() else []
            if sum(c.startswith("sbatch") for c in calls) >= 2:
                break
            time.sleep(0.05)
        hold.write_text("go")

    releaser = threading.Thread(target=release_after_the_second_sbatch, daemon=True)
    releaser.start()
    launcher = SlurmLauncher(poll_interval=0.3, binpath=bindir)
    with experiment(workdir, "corr", launcher=launcher, progress=False) as xp:
        for n in range(1, 5):
            learned = Learn(
                model=Model(n_layers=n), epochs=1, counter=str(counter), hold=str(hold)
            ).submit()
            Evaluate(model=learned, counter=str(counter)).submit()
    releaser.join()
    assert all(j.state == "DONE" for j in xp.jobs.values())
    assert sorted(lines(counter)) == ["evaluate"] * 4 + [f"learn {n}" for n in range(1, 5)]
    sbatch = [c for c in log.read_text().splitlines() if c.startswith("sbatch")]
    assert len(sbatch) == 2, sbatch
    assert "--dependency=aftercorr:" in sbatch[1]
    for job in xp.jobs.values():
        if job.task_id.endswith("evaluate"):
            learn = job.dependencies[0].jobdir.read_status().launcher_job_id or ""
            mine = job.jobdir.read_status().launcher_job_id or ""
            assert mine.split("_")[1] == learn.split("_")[1]  # task i after task i


def test_aftercorr_dependents_of_failed_tasks_end_failed(
    workdir: Path, tmp_path: Path, launcher: SlurmLauncher
) -> None:
    """The aftercorr array's task of a failed job is cancelled by Slurm, the other runs; the
    cancelled one ends FAILED "dependency failed", as when the scheduler sees it first."""
    counter, ok = tmp_path / "counter", tmp_path / "ok"
    ok.touch()
    with (
        pytest.raises(JobsFailedError),
        experiment(workdir, "corrfail", launcher=launcher, progress=False) as xp,
    ):
        for n in (12, 13):
            upstream = Fail(n=n, ok_file=str(ok) if n == 13 else "").submit()
            Uses(upstream=upstream, counter=str(counter)).submit()

    def slurm_ids(task: str) -> list[str]:
        found = [j for j in xp.jobs.values() if j.task_id.endswith(task)]
        return [j.jobdir.read_status().launcher_job_id or "" for j in found]

    # The Fail jobs: one array.  The Uses jobs: one aftercorr array of their own when both
    # Fail tasks were still queued at their launch; when a Fail had already ended (a busy
    # machine), its Uses was never submitted (FAILED: no id) or, its Fail DONE, went alone,
    # and so did the other (the full suite once saw ids 2492_0 2492_1 2494 2495).
    fails, uses_ids = slurm_ids("fail"), [i for i in slurm_ids("uses") if i]
    assert len({i.split("_")[0] for i in fails}) == 1 and all("_" in i for i in fails), fails
    together = len(uses_ids) == 2 and all("_" in i for i in uses_ids)
    if together:
        assert len({i.split("_")[0] for i in uses_ids}) == 1, uses_ids
    else:
        assert all("_" not in i for i in uses_ids), uses_ids  # each alone, no array
    uses = [j for j in xp.jobs.values() if j.task_id.endswith("uses")]
    ended = sorted((j.state, j.reason) for j in uses)
    assert [s for s, _ in ended if s == "DONE"] == ["DONE"], ended
    (stopped,) = [j for j in uses if j.state != "DONE"]
    slurm_id = stopped.jobdir.read_status().launcher_job_id
    if slurm_id:  # submitted: Slurm cancelled it when its Fail task failed
        assert (stopped.state, stopped.reason) == ("FAILED", "dependency failed"), ended
    else:  # its Fail had ended first (a busy machine): the scheduler never submitted it
        assert stopped.state == "FAILED", ended
        assert str(stopped.reason).startswith("dependency failed (xpm_test_tasks.fail/"), ended
    assert len(lines(counter)) == 1


def test_pending_array_task_cancelled_from_outside_is_cancelled(
    workdir: Path, tmp_path: Path, slurm_cluster: object
) -> None:
    """Without accounting, a pending array task scancelled on its own leaves no record in
    Slurm: it must end CANCELLED, not FAILED "lost" (issue 18.9).  The jobs are submitted
    held by the user (options) so the task is surely pending; the rest is then released.
    Polled every 3 s, so that its siblings have most likely run and ended by the poll that
    finds it gone (a race that made this test fail once when it polled every 0.3 s)."""
    body = "    for n in range(3):\n        Count(n=80 + n).submit()\n"
    proc = popen_python(
        _script(workdir, body).replace(
            "SlurmLauncher(poll_interval=0.3)",
            "SlurmLauncher(poll_interval=3, options={'hold': True})",
        )
    )
    deadline = time.monotonic() + 60
    ids: list[str] = []
    while time.monotonic() < deadline and len(ids) < 3:
        time.sleep(0.2)
        statuses = [
            JobDir.from_path(p.parent).read_status() for p in workdir.glob("jobs/*/*/params.json")
        ]
        ids = sorted(s.launcher_job_id for s in statuses if s.launcher_job_id)
    assert len(ids) == 3, ids
    array = ids[0].split("_")[0]
    subprocess.run(["scancel", f"{array}_1"], check=True)
    subprocess.run(["scontrol", "release", array], check=True)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    states = {
        JobDir.from_path(p.parent).read_status().launcher_job_id: JobDir.from_path(
            p.parent
        ).read_status()
        for p in workdir.glob("jobs/*/*/params.json")
    }
    cancelled = states[f"{array}_1"]
    assert (cancelled.state, cancelled.reason) == (
        "CANCELLED",
        "slurm: CANCELLED (taken out of its array while pending)",
    ), err
    assert states[f"{array}_0"].state == states[f"{array}_2"].state == "DONE"


def test_a_job_slurm_requeues_keeps_both_runs_logs_and_ends_with_the_second(
    workdir: Path, launcher: SlurmLauncher
) -> None:
    """Issue 18.9: a requeue overwrote the first run's logs and left its CANCELLED marker
    beside the second run's `done`; the results were both runs' mixed."""
    from xpm_test_tasks import Requeued

    def requeue_once_running() -> None:
        deadline = time.monotonic() + 120
        jobdir = None
        while time.monotonic() < deadline:
            found = list(workdir.glob("jobs/*/*/events.jsonl"))
            jobdir = JobDir.from_path(found[0].parent) if found else None
            status = jobdir.read_status() if jobdir else None
            started = status and status.state == "RUNNING" and status.launcher_job_id
            if started and jobdir.results.exists():  # the first run has reported
                break
            time.sleep(0.1)
        else:
            return
        assert jobdir is not None
        slurm_id = jobdir.read_status().launcher_job_id or ""
        subprocess.run(["scontrol", "requeue", slurm_id], check=True, timeout=30)
        # A requeued job waits (BeginTime) before it may start again: now, please.
        while time.monotonic() < deadline:
            state = subprocess.run(
                ["squeue", "-h", "-j", slurm_id, "-o", "%T"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
            if state == "PENDING":
                # slurmd refuses a launch in the same second as the kill ("credential
                # revoked": it compares whole seconds); a real requeue waits far longer.
                time.sleep(2.0)
                subprocess.run(
                    ["scontrol", "update", f"jobid={slurm_id}", "starttime=now"],
                    check=True,
                    timeout=30,
                )
                return
            time.sleep(0.2)

    requeuer = threading.Thread(target=requeue_once_running, daemon=True)
    requeuer.start()
    with experiment(workdir, "requeue", launcher=launcher, progress=False) as xp:
        Requeued(n=1).submit()
    requeuer.join()
    (job,) = xp.jobs.values()
    jobdir = job.jobdir
    assert job.state == "DONE" and jobdir.read_status().state == "DONE"
    assert not jobdir.failed_marker.exists()  # the killed run's outcome did not stay
    out = jobdir.stdout.read_text()
    assert out.index("run 0") < out.index("restarted by slurm (restart 1)") < out.index("run 1")
    assert [json.loads(x)["values"] for x in jobdir.results.read_text().splitlines()] == [
        {"run": 1}
    ]
    assert json.loads(jobdir.results_of(1).read_text())["values"] == {"run": 0}
    running = [e for e in jobdir.read_status().history if e["state"] == "RUNNING"]
    assert [e.get("restart") for e in running] == [None, 1]
