"""The local launcher: one subprocess per job on this machine, a bounded number at once."""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._jobdir import JobDir
from .._vocabulary import LOCAL_KIND
from ..errors import LauncherError
from ._base import LaunchedJob, Launcher, LaunchOutcome

if TYPE_CHECKING:
    from ..launcherfinder import Host, Requirement


class LocalLauncher(Launcher):
    """Runs each job as a subprocess of the experiment process.

    Args:
        max_parallel: jobs of this launcher running at once (default: the CPU count).
        env: environment variables added to every job's environment.
        terminate_grace: seconds between SIGTERM and SIGKILL when a job is cancelled.
        fork_server: fork jobs from a pre-started interpreter (:mod:`xpm._forkserver`)
            instead of starting a fresh one for each (default: yes, on Linux, unless the
            environment variable ``XPM_FORK_SERVER`` is ``0``).  A job forked this way
            imports its own code fresh, in its own session, directory and environment.
    """

    kind = LOCAL_KIND
    starts_at_once = True
    notifies_exit = True

    def __init__(
        self,
        max_parallel: int | None = None,
        env: dict[str, str] | None = None,
        terminate_grace: float = 5.0,
        fork_server: bool = True,
    ) -> None:
        if max_parallel is not None and (not isinstance(max_parallel, int) or max_parallel < 1):
            raise LauncherError(
                f"LocalLauncher(max_parallel={max_parallel!r}): give a positive integer"
            )
        self._max_parallel = max_parallel or os.cpu_count() or 1
        self.env = dict(env or {})
        self.terminate_grace = terminate_grace
        self.fork_server = fork_server
        #: Called (from a waiter thread) when a job process ends; the scheduler sets it.
        self.on_exit = None

    @property
    def max_parallel(self) -> int:
        return self._max_parallel

    def submit(self, jobdir: JobDir, dependencies: Sequence[LaunchedJob] = ()) -> LaunchedJob:
        command = self.job_command(jobdir)
        full_env = {**_inherited(), **self.env, **self.job_environment()}
        # The fork server runs the job side's own command only (a subclass may run another).
        if self.fork_server and getattr(self.job_command, "__func__", None) is Launcher.job_command:
            from ._forkclient import server_for

            server = server_for(full_env)
            forked = server.spawn(jobdir, full_env, self._exited) if server else None
            if forked is not None:
                return LaunchedJob(jobdir, str(forked.pid), forked)
        with open(jobdir.stdout, "ab") as out, open(jobdir.stderr, "ab") as err:
            try:
                proc = subprocess.Popen(
                    command,
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    cwd=jobdir.path,
                    env=full_env,
                    start_new_session=True,  # its own process group: kill it as a whole
                )
            except OSError as e:
                raise LauncherError(f"cannot start {command[0]!r}: {e}") from None
        launched = LaunchedJob(jobdir, str(proc.pid), proc)
        # A bare thread: threading.Thread.start() blocks until the new thread has run, which
        # took 2-3 ms per job while the experiment's other threads held the GIL, all of it
        # on the path from one job's end to the next job's start.
        _thread.start_new_thread(self._wait, (proc,))
        return launched

    def warm_up(self) -> None:
        """Start the fork server now, so that it is ready when the first jobs are."""
        if self.fork_server:
            from ._forkclient import server_for

            server_for({**_inherited(), **self.env, **self.job_environment()})

    def _wait(self, proc: subprocess.Popen[Any]) -> None:
        proc.wait()
        self._exited()

    def _exited(self) -> None:
        callback = self.on_exit
        if callback is not None:
            callback()

    def poll(self, jobs: list[LaunchedJob]) -> dict[str, LaunchOutcome]:
        outcomes = {}
        for job in jobs:
            proc = job.handle
            if proc is None:
                continue
            code = proc.poll()
            if code is None:
                outcomes[job.launcher_job_id] = LaunchOutcome("RUNNING")
            elif getattr(proc, "lost_reason", None):
                outcomes[job.launcher_job_id] = LaunchOutcome(
                    "FAILED", reason=proc.lost_reason, exit_code=code
                )
            elif code == 0:
                outcomes[job.launcher_job_id] = LaunchOutcome("DONE", exit_code=0)
            elif code < 0:
                name = signal.Signals(-code).name
                outcomes[job.launcher_job_id] = LaunchOutcome(
                    "FAILED", reason=f"killed by {name}", signal=-code
                )
            else:
                outcomes[job.launcher_job_id] = LaunchOutcome(
                    "FAILED", reason=f"exit code {code}", exit_code=code
                )
        return outcomes

    def cancel(self, jobs: list[LaunchedJob]) -> None:
        procs = [j.handle for j in jobs if j.handle is not None and j.handle.poll() is None]
        for proc in procs:
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.terminate_grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "max_parallel": self._max_parallel}

    @classmethod
    def options_for(cls, host: Host, requirement: Requirement) -> dict[str, Any]:
        """As many jobs at once as fit on the host's cores (one per core when the spec
        asks for none)."""
        cores = requirement.cpu.cores
        if not cores:
            return {"max_parallel": None}
        return {"max_parallel": max(1, (host.cores or 1) // cores)}


def _inherited() -> dict[str, str]:
    """This process's environment for a local job, less what a backend's job script set
    for its own job (an experiment run inside a Slurm job must not make its local jobs
    look like Slurm's)."""
    from ..run import BACKEND_VARIABLES

    return {k: v for k, v in os.environ.items() if k not in BACKEND_VARIABLES}


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        # A job forked a moment ago may not have made its own group yet (its first act):
        # then it has started nothing else either.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    except PermissionError:
        pass
