"""No open file per job in flight (issue 18.2): sweeps run under ``ulimit -n 256``, for real.

Each experiment runs in a fresh interpreter started by bash after ``ulimit -n 256`` (soft and
hard limit), and reports the most descriptors it had open at once (sampled from
/proc/self/fd by a thread).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TESTS

from xpm._jobdir import JobDir

#: Samples the experiment process's open descriptors; prints the peak at exit.
PEAK = """
import atexit, os, threading, time
peak = [0]
def _sample():
    while True:
        peak[0] = max(peak[0], len(os.listdir('/proc/self/fd')))
        time.sleep(0.002)
threading.Thread(target=_sample, daemon=True).start()
atexit.register(lambda: print('peak descriptors', peak[0]))
"""


def run_limited(code: str, limit: int = 256) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    return subprocess.run(
        ["bash", "-c", f'ulimit -n {limit} && exec "$0" -c "$1"', sys.executable, PEAK + code],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def peak(result: subprocess.CompletedProcess[str]) -> int:
    line = next(x for x in result.stdout.splitlines() if x.startswith("peak descriptors"))
    return int(line.split()[-1])


def test_300_local_jobs_at_once_under_ulimit_256(workdir: Path, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    result = run_limited(
        "from xpm import experiment\nfrom xpm.launchers.local import LocalLauncher\n"
        "from xpm_test_tasks import Count\n"
        f"with experiment({str(workdir)!r}, 'fds', progress=False,"
        " launcher=LocalLauncher(max_parallel=300)):\n"
        "    for n in range(300):\n"
        f"        Count(n=n, sleep=1, counter={str(counter)!r}).submit()\n"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(counter.read_text().splitlines()) == sorted(f"count {n}" for n in range(300))
    assert peak(result) < 64, result.stdout


@pytest.mark.slurm
def test_250_slurm_jobs_detached_under_ulimit_256(
    workdir: Path, tmp_path: Path, slurm_cluster: object
) -> None:
    """Submitted held (they never run) and cancelled at the end: in flight, not in Slurm's
    way.  The local cluster's MaxArraySize=101 makes them three arrays."""
    result = run_limited(
        "from xpm import experiment\nfrom xpm.launchers.slurm import SlurmLauncher\n"
        "from xpm_test_tasks import Count\n"
        f"with experiment({str(workdir)!r}, 'fds', progress=False, detach=True,"
        " launcher=SlurmLauncher(poll_interval=0.5, options={'hold': True})):\n"
        "    for n in range(250):\n"
        "        Count(n=n).submit()\n"
    )
    jobdirs = [JobDir.from_path(p.parent) for p in workdir.glob("jobs/*/*/params.json")]
    ids = [j.read_status().launcher_job_id for j in jobdirs]
    arrays = sorted({i.split("_")[0] for i in ids if i})
    subprocess.run(["scancel", *arrays], check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(jobdirs) == 250 and all(ids), ids
    assert len(arrays) == 3  # 101 + 101 + 48: split to the cluster's MaxArraySize
    assert peak(result) < 64, result.stdout
