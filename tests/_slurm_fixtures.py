"""Fixtures for tests that need a real Slurm cluster (register from tests/conftest.py).

``slurm_cluster`` (session): skips the test when no Slurm answers, with a reason naming
the script that starts one; fails instead when ``XPM_REQUIRE_SLURM=1`` (set by .ci/run,
which starts the cluster).  ``slurm_launcher``: a :class:`SlurmLauncher` on that cluster
with a short poll interval.  ``wait_for_states`` polls until every job reaches a state.
``small_slurm_cluster`` (module): a second cluster beside the first, with room for 20 jobs,
started and stopped by the same scripts; xpm's Slurm commands reach it through
``SLURM_CONF`` while it runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _second_cluster import start_second_cluster, stop_second_cluster

from xpm.launchers import JobDir
from xpm.launchers._base import LaunchedJob, LaunchOutcome
from xpm.launchers.slurm import SlurmLauncher

SKIP_REASON = "no Slurm: start one with tests/slurm/start-local-slurm.sh"
#: The small cluster's limits: a sweep larger than MaxJobCount stays cheap (issue 18).
SMALL_LIMITS = {"MAX_JOB_COUNT": "20", "MIN_JOB_AGE": "2", "MAX_ARRAY_SIZE": "5"}
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
        _skip_or_fail(why)
    assert cluster is not None
    return cluster


def _skip_or_fail(why: str) -> None:
    if os.environ.get("XPM_REQUIRE_SLURM") == "1":
        pytest.fail(f"XPM_REQUIRE_SLURM=1 but {why}; {SKIP_REASON}")
    pytest.skip(f"{why}; {SKIP_REASON}")


@dataclass(frozen=True)
class SmallCluster:
    """A second local cluster: its slurm.conf and the variables its scripts were given."""

    conf: Path
    env: dict[str, str]
    max_job_count: int


@pytest.fixture(scope="module")
def small_slurm_cluster(
    slurm_cluster: SlurmCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SmallCluster]:
    """A second cluster with ``MaxJobCount=20``, ``MinJobAge=2``, ``MaxArraySize=5``, which
    ``SLURM_CONF`` points xpm's Slurm commands (and the jobs' environment) at while the
    module's tests run; stopped at the end.  Needs root, as the first one did."""
    if os.geteuid() != 0:
        _skip_or_fail("starting a second Slurm cluster needs root")
    if shutil.which("slurmctld") is None or shutil.which("slurmd") is None:
        _skip_or_fail("slurmctld/slurmd are not installed")
    base = tmp_path_factory.mktemp("small-slurm")
    env = start_second_cluster(base, "xpmsmall", SMALL_LIMITS)
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = env["SLURM_LOCAL_CONF"]
    try:
        yield SmallCluster(Path(env["SLURM_LOCAL_CONF"]), env, int(SMALL_LIMITS["MAX_JOB_COUNT"]))
    finally:
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before
        stop_second_cluster(env)


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


def submit_command(
    launcher: Any,
    jobdir: JobDir,
    command: Sequence[str],
    env: dict[str, str] | None = None,
    dependencies: Sequence[LaunchedJob] = (),
) -> LaunchedJob:
    """Submit ``command`` instead of the job side's, for tests of a launcher alone (its
    :meth:`~xpm.launchers.Launcher.job_command` and ``job_environment`` replaced)."""
    launcher.job_command = lambda jobdir: list(command)
    launcher.job_environment = lambda: dict(env or {})
    return launcher.submit(jobdir, dependencies)  # type: ignore[no-any-return]


def submit_array_commands(
    launcher: Any,
    jobdirs: Sequence[JobDir],
    commands: Sequence[Sequence[str]],
    env: dict[str, str] | None,
    array_dir: Path,
    **how: Any,
) -> list[LaunchedJob]:
    """:func:`submit_command` for an array: job ``i`` runs ``commands[i]``."""
    by_path = {jobdir.path: list(c) for jobdir, c in zip(jobdirs, commands, strict=True)}
    launcher.job_command = lambda jobdir: by_path[jobdir.path]
    launcher.job_environment = lambda: dict(env or {})
    return launcher.submit_array(jobdirs, array_dir, **how)  # type: ignore[no-any-return]
