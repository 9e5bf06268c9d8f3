"""A launcher defined outside xpm, as a lab's own backend would be: jobs wait in a spool
directory until its gate file exists, each under a real detached wrapper process.

``python -m spool_launcher SPOOL ID COMMAND...`` is the wrapper: it waits for
``SPOOL/open``, records ``ID.started``, runs the command with the job's logs and records
``ID.exit``.  Jobs outlive the experiment (``reattachable``); the launcher knows a job while
its wrapper lives or its exit file exists, and forgets a wrapper killed from outside.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xpm.launchers import JobDir, LaunchedJob, Launcher, LaunchOutcome


class SpoolLauncher(Launcher):
    """Runs jobs from a spool directory once its gate is open (tests of issue 17)."""

    kind = "spool"
    reattachable = True

    def __init__(self, spool: str, poll_interval: float = 0.2) -> None:
        self.spool = Path(spool)
        self.spool.mkdir(parents=True, exist_ok=True)
        self.poll_interval = poll_interval

    def submit(self, jobdir: JobDir, dependencies: Sequence[LaunchedJob] = ()) -> LaunchedJob:
        command, env = self.job_command(jobdir), self.job_environment()
        job_id = f"sp{secrets.token_hex(4)}"
        here = str(Path(__file__).parent)
        path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-m", "spool_launcher", str(self.spool), job_id, *command],
            env={**os.environ, **env, "PYTHONPATH": path},
            cwd=jobdir.path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the job's logs are its own; the experiment's pipes
            stderr=subprocess.DEVNULL,  # must not stay open in a process that outlives it
            start_new_session=True,
        )
        (self.spool / f"{job_id}.pid").write_text(str(proc.pid))
        return LaunchedJob(jobdir, job_id)

    def _pid(self, job_id: str) -> int | None:
        path = self.spool / f"{job_id}.pid"
        return int(path.read_text()) if path.exists() else None

    def poll(self, jobs: list[LaunchedJob]) -> dict[str, LaunchOutcome]:
        outcomes = {}
        for job in jobs:
            one = job.launcher_job_id
            ended = self.spool / f"{one}.exit"
            if (self.spool / f"{one}.cancelled").exists():
                outcomes[one] = LaunchOutcome("CANCELLED", reason="cancelled in the spool")
            elif ended.exists():
                code = int(ended.read_text())
                state = "DONE" if code == 0 else "FAILED"
                outcomes[one] = LaunchOutcome(state, reason=f"spool exit {code}", exit_code=code)
            elif _alive(self._pid(one)):
                started = (self.spool / f"{one}.started").exists()
                outcomes[one] = LaunchOutcome("RUNNING" if started else "SUBMITTED")
            # else: the wrapper is gone without an exit file: the spool forgot the job
        return outcomes

    def cancel(self, jobs: list[LaunchedJob]) -> None:
        for job in jobs:
            (self.spool / f"{job.launcher_job_id}.cancelled").write_text("")
            pid = self._pid(job.launcher_job_id)
            if _alive(pid):
                os.killpg(pid, signal.SIGTERM)  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "spool": str(self.spool)}


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (our own child, not reaped yet) is gone too.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def _wrapper(spool: Path, job_id: str, command: list[str]) -> int:
    while not (spool / "open").exists():
        time.sleep(0.05)
    (spool / f"{job_id}.started").write_text("")
    jobdir = JobDir.from_path(Path.cwd())
    with open(jobdir.stdout, "ab") as out, open(jobdir.stderr, "ab") as err:
        code = subprocess.call(command, stdout=out, stderr=err)
    (spool / f"{job_id}.exit").write_text(str(code))
    return code


if __name__ == "__main__":
    sys.exit(_wrapper(Path(sys.argv[1]), sys.argv[2], sys.argv[3:]))
