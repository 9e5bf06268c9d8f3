"""Room in Slurm (issue 18.4): a sweep larger than ``MaxJobCount`` waits for room instead of
failing, attached or detached, on a second local cluster with room for 20 jobs
(``small_slurm_cluster``: ``MaxJobCount=20``, ``MinJobAge=2``, ``MaxArraySize=5``)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from _slurm_fixtures import SmallCluster
from conftest import run_python
from xpm_test_tasks import Count

from xpm._experiment import experiment
from xpm._jobdir import JobDir
from xpm.errors import JobsFailedError
from xpm.index import open_index
from xpm.launchers.slurm import SlurmLauncher

pytestmark = pytest.mark.slurm

#: More points than the small cluster's MaxJobCount (20) holds at once.
POINTS = 30


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def jobdirs(workdir: Path) -> dict[int, JobDir]:
    """The sweep's job directories by their point ``n``."""
    return {
        json.loads(p.read_text())["objects"][0]["values"]["n"]: JobDir.from_path(p.parent)
        for p in workdir.glob("jobs/*/*/params.json")
    }


def test_room_is_max_job_count_less_the_jobs_held(small_slurm_cluster: SmallCluster) -> None:
    launcher = SlurmLauncher()
    assert launcher.cluster_limit("MaxJobCount") == small_slurm_cluster.max_job_count
    before = launcher.room()
    assert before <= small_slurm_cluster.max_job_count - 1
    out = subprocess.run(
        ["sbatch", "--parsable", "--hold", "--array=0-2", "-o", "/dev/null", "--wrap", "true"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        assert launcher.room() == before - 3  # each array task counts, as Slurm counts them
    finally:
        subprocess.run(["scancel", out], check=False)


@pytest.mark.slow
def test_a_sweep_larger_than_max_job_count_runs_every_task_once(
    workdir: Path,
    tmp_path: Path,
    small_slurm_cluster: SmallCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    counter = tmp_path / "counter"
    launcher = SlurmLauncher(poll_interval=0.5)
    with experiment(workdir, "room", launcher=launcher, progress=False) as xp:
        for n in range(POINTS):
            Count(n=n, counter=str(counter)).submit()
    assert all(j.state == "DONE" for j in xp.jobs.values())
    assert sorted(lines(counter)) == sorted(f"count {n}" for n in range(POINTS))
    assert all(j.read_status().attempt == 1 for j in jobdirs(workdir).values())
    assert "has no room for more jobs now" in capsys.readouterr().err


def _sweep(workdir: Path, counter: Path, detach: bool) -> str:
    return (
        "from xpm import experiment\nfrom xpm.launchers.slurm import SlurmLauncher\n"
        "from xpm_test_tasks import Count\n"
        f"with experiment({str(workdir)!r}, 'sweep', progress=False, detach={detach},"
        " launcher=SlurmLauncher(poll_interval=0.5)):\n"
        f"    for n in range({POINTS}):\n"
        f"        Count(n=n, counter={str(counter)!r}).submit()\n"
    )


@pytest.mark.slow
def test_a_detached_sweep_submits_what_fits_and_a_second_run_the_rest(
    workdir: Path, tmp_path: Path, small_slurm_cluster: SmallCluster
) -> None:
    counter = tmp_path / "counter"
    first = run_python(_sweep(workdir, counter, detach=True))
    assert first.returncode == 0, first.stderr
    submitted = {n for n, j in jobdirs(workdir).items() if j.read_status().launcher_job_id}
    waiting = POINTS - len(submitted)
    assert 0 < len(submitted) < small_slurm_cluster.max_job_count
    # One line says how many wait and how the sweep continues.
    assert (
        f"{waiting} not submitted, for lack of room in slurm: running the experiment again "
        "submits them" in first.stderr
    ), first.stderr
    assert "submitted as room frees" not in first.stderr  # this run does not wait for room
    # Nothing false on disk or in the index: the jobs not submitted carry no claim.  (The
    # submitted ones run on meanwhile, so the index is not compared with a rebuild here.)
    with open_index(workdir, readonly=True) as index:
        indexed = dict(index.conn.execute("SELECT id, state FROM jobs").fetchall())
    for n, jobdir in jobdirs(workdir).items():
        if n not in submitted:
            status = jobdir.read_status()
            assert (status.state, status.attempt, status.history) == ("UNSCHEDULED", 0, [])
            assert indexed[jobdir.identifier] == "UNSCHEDULED"

    second = run_python(_sweep(workdir, counter, detach=False), timeout=300)
    assert second.returncode == 0, second.stderr
    assert all(j.is_done() for j in jobdirs(workdir).values())
    assert sorted(lines(counter)) == sorted(f"count {n}" for n in range(POINTS))  # once each
    assert all(j.read_status().attempt == 1 for j in jobdirs(workdir).values())


def _refusing_sbatch(bindir: Path, message: str, times: int) -> None:
    """Slurm's commands, with an sbatch that refuses its first ``times`` calls as a full
    controller does (the real one retries for two minutes before saying so)."""
    bindir.mkdir()
    for name in ("squeue", "sacct", "scontrol", "scancel"):
        (bindir / name).symlink_to(str(shutil.which(name)))
    calls = bindir / "calls"
    (bindir / "sbatch").write_text(
        "#!/bin/bash\n"
        f'echo x >> "{calls}"\n'
        f'if [ "$(wc -l < "{calls}")" -le {times} ]; then\n'
        f'  echo "sbatch: error: Batch job submission failed: {message}" >&2; exit 1\n'
        "fi\n"
        f'exec {shutil.which("sbatch")} "$@"\n'
    )
    (bindir / "sbatch").chmod(0o755)


def test_an_sbatch_refused_for_room_leaves_the_jobs_waiting(
    workdir: Path,
    tmp_path: Path,
    small_slurm_cluster: SmallCluster,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bindir = tmp_path / "bin"
    _refusing_sbatch(bindir, "Resource temporarily unavailable", times=1)
    counter = tmp_path / "counter"
    launcher = SlurmLauncher(binpath=bindir, poll_interval=0.3)
    with experiment(workdir, "refused", launcher=launcher, progress=False) as xp:
        for n in range(3):
            Count(n=100 + n, counter=str(counter)).submit()
    assert all(j.state == "DONE" for j in xp.jobs.values())
    assert sorted(lines(counter)) == [f"count {100 + n}" for n in range(3)]
    for jobdir in jobdirs(workdir).values():
        states = [e["state"] for e in jobdir.read_status().history]
        # The refused claim is withdrawn (UNSCHEDULED), then the job is submitted again.
        assert states[:2] == ["SUBMITTED", "UNSCHEDULED"], states
        assert states[-1] == "DONE"
    assert "3 job(s) wait for room" in capsys.readouterr().err


def test_a_per_user_limit_with_nothing_in_flight_fails_the_jobs(
    workdir: Path, tmp_path: Path, small_slurm_cluster: SmallCluster
) -> None:
    """A QOS limit on one's own queued jobs frees only as one's jobs end: with none in
    flight, waiting would never end, so the jobs fail with Slurm's message."""
    bindir = tmp_path / "bin"
    _refusing_sbatch(bindir, "Job violates accounting/QOS policy", times=100)
    launcher = SlurmLauncher(binpath=bindir, poll_interval=0.3)
    with (
        pytest.raises(JobsFailedError),
        experiment(workdir, "qos", launcher=launcher, progress=False) as xp,
    ):
        Count(n=200).submit()
    (job,) = xp.jobs.values()
    assert job.state == "FAILED"
    assert "Job violates accounting/QOS policy" in (job.reason or "")


@pytest.mark.slow
def test_a_detached_array_is_settled_right_after_slurm_forgets_it(
    workdir: Path, tmp_path: Path, small_slurm_cluster: SmallCluster
) -> None:
    """No accounting database here, and MinJobAge=2: once squeue forgets an array's tasks,
    Slurm's completion file knows them by raw ids that only the experiment process had
    seen.  A fresh `xpm jobs list` must still find a running task cancelled from outside
    CANCELLED by Slurm and a pending one CANCELLED, not FAILED "lost" (#18 trial)."""
    import os
    import sys
    import time

    cpus = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True)
    started = tmp_path / "started"
    code = (
        "from xpm import experiment\nfrom xpm.launchers.slurm import SlurmLauncher\n"
        "from xpm_test_tasks import Count\n"
        f"launcher = SlurmLauncher(cpus_per_task={int(cpus.stdout.split()[0])}, poll_interval=0.2)\n"
        f"with experiment({str(workdir)!r}, 'forgot', progress=False, detach=True,"
        " launcher=launcher):\n"
        f"    Count(n=1, sleep=300, started={str(started)!r}).submit()\n"
        f"    Count(n=2, sleep=300, started={str(started)!r}).submit()\n"
    )
    first = run_python(code)
    assert first.returncode == 0, first.stderr
    dirs = jobdirs(workdir)
    ids = {n: d.read_status().launcher_job_id for n, d in dirs.items()}
    assert all(i and "_" in i for i in ids.values()), ids  # one array of two tasks
    deadline = time.monotonic() + 120
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert started.exists(), "no task started"
    time.sleep(1)  # the started task's RUNNING event is written before its code runs
    states = {n: d.read_status().state for n, d in dirs.items()}
    assert sorted(states.values()) == ["RUNNING", "SUBMITTED"], states  # one CPU's worth
    array = next(iter(ids.values())).partition("_")[0]
    subprocess.run(["scancel", array], check=True)
    while time.monotonic() < deadline:  # until Slurm forgets the array (MinJobAge=2)
        listed = subprocess.run(
            ["squeue", "-h", "--states=all", "--array", f"--jobs={array}"],
            capture_output=True,
            text=True,
        )
        if not listed.stdout.strip():
            break
        time.sleep(0.5)
    assert not listed.stdout.strip(), listed.stdout
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    shown = subprocess.run(
        [sys.executable, "-m", "xpm.cli", "jobs", "list", "--workdir", str(workdir),
         "--format", "json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    ended = shown.stdout
    by_state = {n: dirs[n].read_status() for n in dirs}
    ran = next(n for n, s in states.items() if s == "RUNNING")
    waited = next(n for n, s in states.items() if s == "SUBMITTED")
    assert (by_state[ran].state, by_state[ran].reason) == ("CANCELLED", "slurm: CANCELLED"), ended
    assert by_state[waited].state == "CANCELLED", ended
    assert "taken out of its array while pending" in (by_state[waited].reason or ""), ended
