"""A second local Slurm cluster beside the default one, started and stopped by
tests/slurm/start-local-slurm.sh and stop-local-slurm.sh with ``SLURM_LOCAL_*`` overrides:
its files under one directory, free ports, its own name and limits.  Standard library only:
the tests' ``small_slurm_cluster`` fixture and bench/bench_slurm_sweep.py both use it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).parent / "slurm"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_second_cluster(base: Path, name: str, limits: dict[str, str]) -> dict[str, str]:
    """Start a cluster named ``name``, its files under ``base``, with ``limits``
    (``SLURM_LOCAL_*`` names without the prefix: ``MAX_JOB_COUNT``...).  Returns the
    variables that name it, for :func:`stop_second_cluster`, with ``SLURM_CONF``, which
    points Slurm's commands at it.  Raises ``RuntimeError`` (after stopping what started)
    when it does not come up."""
    env = {
        "SLURM_LOCAL_CONF": str(base / "slurm.conf"),
        "SLURM_LOCAL_RUN_DIR": str(base / "run"),
        "SLURM_LOCAL_STATE_DIR": str(base / "state"),
        "SLURM_LOCAL_LOG_DIR": str(base / "log"),
        "SLURM_LOCAL_CTLD_PORT": str(_free_port()),
        "SLURM_LOCAL_SLURMD_PORT": str(_free_port()),
        "SLURM_LOCAL_CLUSTER": name,
        **{f"SLURM_LOCAL_{key}": value for key, value in limits.items()},
    }
    env["SLURM_CONF"] = env["SLURM_LOCAL_CONF"]
    proc = subprocess.run(
        ["bash", str(SCRIPTS / "start-local-slurm.sh")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if proc.returncode != 0:
        stop_second_cluster(env)
        raise RuntimeError(f"the second Slurm cluster did not start: {proc.stderr[-2000:]}")
    print(proc.stdout, end="", file=sys.stderr)  # how to stop it by hand, where its logs are
    return env


def stop_second_cluster(env: dict[str, str]) -> None:
    """Stop the cluster :func:`start_second_cluster` started, and remove its files."""
    subprocess.run(
        ["bash", str(SCRIPTS / "stop-local-slurm.sh"), "--purge"],
        env={**os.environ, **env},
        capture_output=True,
        timeout=120,
        check=False,
    )
