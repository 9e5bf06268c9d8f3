"""Fixtures for tests that need a real Slurm cluster (register from tests/conftest.py).

``slurm_cluster`` (session): skips the test when no Slurm answers, with a reason naming
the script that starts one; fails instead when ``XPM_REQUIRE_SLURM=1`` (set by .ci/run,
which starts the cluster).  ``slurm_launcher``: a :class:`SlurmLauncher` on that cluster
with a short poll interval.  ``wait_for_states`` polls until every job reaches a state.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Collection
from dataclasses import dataclass

import pytest

from xpm.launchers._base import LaunchedJob, LaunchOutcome
from xpm.launchers.slurm import SlurmLauncher

SKIP_REASON = "no Slurm: start one with tests/slurm/start-local-slurm.sh"
TERMINAL = frozenset({"DONE", "FAILED", "CANCELLED"})


@dataclass(frozen=True)
class SlurmCluster:
    """What the tests know about the running cluster."""

    partition: str
    nodes: list[str]


def _probe() -> tuple[SlurmCluster | None, str]:
    """The cluster if ``sinfo`` answers with a usable node, else why not."""
    if shutil.which("sinfo") is None:
        return None, "sinfo is not installed"
    try:
        proc = subprocess.run(
            ["sinfo", "--noheader", "--format=%P|%N|%T"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        return None, "sinfo did not answer within 20 s"
    if proc.returncode != 0:
        return None, f"sinfo failed: {proc.stderr.strip()}"
    partition, nodes = "", []
    for line in proc.stdout.splitlines():
        part, node, state = (line.split("|") + ["", "", ""])[:3]
        if state.rstrip("*~#$@") in ("idle", "mixed", "allocated", "completing"):
            if part.endswith("*") or not partition:
                partition = part.rstrip("*")
            nodes.append(node)
    if not nodes:
        return None, f"no Slurm node is up: sinfo says {proc.stdout.strip()!r}"
    return SlurmCluster(partition, nodes), ""


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    """The local Slurm cluster; skip (or fail under ``XPM_REQUIRE_SLURM=1``) without one."""
    cluster, why = _probe()
    if cluster is None:
        if os.environ.get("XPM_REQUIRE_SLURM") == "1":
            pytest.fail(f"XPM_REQUIRE_SLURM=1 but {why}; {SKIP_REASON}")
        pytest.skip(SKIP_REASON)
    return cluster


@pytest.fixture
def slurm_launcher(slurm_cluster: SlurmCluster) -> SlurmLauncher:
    """A Slurm launcher on the test cluster, polled every 0.2 s."""
    return SlurmLauncher(poll_interval=0.2)


def wait_for_states(
    launcher: SlurmLauncher,
    jobs: list[LaunchedJob],
    states: Collection[str] = TERMINAL,
    timeout: float = 30.0,
) -> dict[str, LaunchOutcome]:
    """Poll ``jobs`` every ``launcher.poll_interval`` until each is in one of ``states``."""
    deadline = time.monotonic() + timeout
    interval = launcher.poll_interval or 0.2
    outcomes: dict[str, LaunchOutcome] = {}
    while True:
        outcomes = launcher.poll(jobs)
        if all(
            job.launcher_job_id in outcomes and outcomes[job.launcher_job_id].state in states
            for job in jobs
        ):
            return outcomes
        if time.monotonic() > deadline:
            launcher.cancel(jobs)
            raise AssertionError(f"jobs not in {sorted(states)} after {timeout} s: {outcomes}")
        time.sleep(interval)
