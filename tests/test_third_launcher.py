"""A launcher defined outside xpm (tests/spool_launcher.py, real detached processes):
recorded with its class, rebuilt without registration by `xpm jobs kill` and `xpm jobs
list`, which stop and settle its jobs through it instead of treating them as local (#17)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, TESTS, run_python

from xpm._jobdir import JobDir

pytestmark = pytest.mark.slow


def _xpm(
    workdir: Path, *args: str, tests_importable: bool = True
) -> subprocess.CompletedProcess[str]:
    path = [str(TESTS), str(ROOT)] if tests_importable else [str(ROOT)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    command = [sys.executable, "-m", "xpm.cli", *args, "--workdir", str(workdir)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def _wrapper_pids(spool: Path) -> list[int]:
    return [int(p.read_text()) for p in spool.glob("*.pid")]


def _alive(pid: int) -> bool:
    from spool_launcher import _alive as alive

    return alive(pid)


@pytest.fixture
def spooled(workdir: Path, tmp_path: Path) -> Iterator[tuple[Path, list[JobDir]]]:
    """Three jobs submitted by a detached run through the spool launcher, its gate
    closed: they wait in the spool, each under a live wrapper process."""
    spool = tmp_path / "spool"
    script = (
        "from xpm import experiment\nfrom spool_launcher import SpoolLauncher\n"
        "from xpm_test_tasks import Count\n"
        f"with experiment({str(workdir)!r}, 'sp', progress=False, detach=True,"
        f" launcher=SpoolLauncher({str(spool)!r})):\n"
        "    for n in range(3):\n        Count(n=n).submit()\n"
    )
    result = run_python(script)
    assert result.returncode == 0, result.stderr
    jobdirs = [JobDir.from_path(p.parent) for p in workdir.glob("jobs/*/*/params.json")]
    assert len(jobdirs) == 3
    try:
        yield spool, jobdirs
    finally:
        for pid in _wrapper_pids(spool):
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)


def test_the_class_of_a_launcher_outside_xpm_is_recorded(
    spooled: tuple[Path, list[JobDir]],
) -> None:
    spool, jobdirs = spooled
    for jobdir in jobdirs:
        status = jobdir.read_status()
        assert status.launcher == "spool" and status.state == "SUBMITTED"
        described = status.attempts[-1]["launcher_description"]
        assert described == {
            "kind": "spool",
            "spool": str(spool),
            "class": "spool_launcher:SpoolLauncher",
        }


def test_jobs_kill_cancels_through_the_recorded_launcher(
    workdir: Path, spooled: tuple[Path, list[JobDir]]
) -> None:
    spool, jobdirs = spooled
    pids = _wrapper_pids(spool)
    assert len(pids) == 3 and all(_alive(p) for p in pids)
    killed = _xpm(workdir, "jobs", "kill", "--task", "count")
    assert killed.returncode == 0, killed.stderr
    assert killed.stdout.count("cancelled by the spool launcher: sp") == 3, killed.stdout
    assert len(list(spool.glob("*.cancelled"))) == 3  # the launcher's own cancel ran
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)  # stopped for real, not only recorded
    assert {j.read_status().state for j in jobdirs} == {"CANCELLED"}
    listed = _xpm(workdir, "jobs", "list", "--format", "json")
    assert {j["state"] for j in json.loads(listed.stdout)} == {"CANCELLED"}


def test_jobs_list_settles_a_job_its_launcher_forgot(
    workdir: Path, spooled: tuple[Path, list[JobDir]]
) -> None:
    spool, jobdirs = spooled
    forgotten = jobdirs[0]
    job_id = forgotten.read_status().launcher_job_id
    pid = int((spool / f"{job_id}.pid").read_text())
    os.killpg(pid, signal.SIGKILL)  # from outside: no exit file, the spool forgets it
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    listed = _xpm(workdir, "jobs", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    states = {j["id"]: j["state"] for j in json.loads(listed.stdout)}
    assert states[forgotten.identifier] == "FAILED"
    assert sorted(states.values()) == ["FAILED", "SUBMITTED", "SUBMITTED"]
    status = forgotten.read_status()  # recorded in its directory, with the launcher named
    assert status.state == "FAILED"
    assert "the spool launcher no longer knows it" in str(status.reason), status.reason


def test_a_launcher_class_that_cannot_be_imported_stops_nothing_and_says_how(
    workdir: Path, spooled: tuple[Path, list[JobDir]]
) -> None:
    spool, jobdirs = spooled
    killed = _xpm(workdir, "jobs", "kill", "--task", "count", tests_importable=False)
    assert killed.returncode == 1
    assert "spool_launcher:SpoolLauncher" in killed.stdout and "PYTHONPATH" in killed.stdout
    assert "3 job(s) could not be stopped" in killed.stderr
    assert {j.read_status().state for j in jobdirs} == {"SUBMITTED"}  # nothing recorded
    assert all(_alive(p) for p in _wrapper_pids(spool))
    listed = _xpm(workdir, "jobs", "list", "--format", "json", tests_importable=False)
    assert listed.returncode == 0, listed.stderr
    assert "cannot ask the spool launcher about 3 active job(s)" in listed.stderr
    assert {j["state"] for j in json.loads(listed.stdout)} == {"SUBMITTED"}


def test_a_launcher_with_little_room_gets_only_what_fits(workdir: Path, tmp_path: Path) -> None:
    """A backend that says how many more jobs it accepts (``room()``, as Slurm does from
    ``MaxJobCount``) never gets more: the rest wait, unclaimed, and go as room frees."""
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "open").write_text("")
    counter = tmp_path / "counter"
    script = (
        "from xpm import experiment\nfrom spool_launcher import SpoolLauncher\n"
        "from xpm_test_tasks import Count\n"
        "class TwoAtATime(SpoolLauncher):\n"
        "    most = 0\n"
        "    def flying(self):\n"
        "        return sum(not p.with_suffix('.exit').exists() for p in self.spool.glob('*.pid'))\n"
        "    def room(self):\n"
        "        return 2 - self.flying()\n"
        "    def submit(self, *args):\n"
        "        launched = super().submit(*args)\n"
        "        TwoAtATime.most = max(TwoAtATime.most, self.flying())\n"
        "        return launched\n"
        f"with experiment({str(workdir)!r}, 'room', progress=False,"
        f" launcher=TwoAtATime({str(spool)!r})):\n"
        f"    for n in range(6):\n        Count(n=n, counter={str(counter)!r}).submit()\n"
        "print(TwoAtATime.most)\n"
    )
    result = run_python(script)
    assert result.returncode == 0, result.stderr
    assert 0 < int(result.stdout) <= 2, result.stdout  # never more than its room
    assert "spool has no room for more jobs now" in result.stderr
    assert sorted(counter.read_text().splitlines()) == [f"count {n}" for n in range(6)]
    jobdirs = [JobDir.from_path(p.parent) for p in workdir.glob("jobs/*/*/params.json")]
    assert all(j.is_done() and j.read_status().attempt == 1 for j in jobdirs)
