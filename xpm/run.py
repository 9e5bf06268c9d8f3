"""The job-side entry point: ``python -m xpm.run JOBDIR``.

Loads params.json, runs ``execute()`` in the job directory and records the outcome.
It imports only the configuration machinery and the job-directory layout: never the
CLI, the index, git or Datasette (compute nodes may not even reach the index).
"""

from __future__ import annotations

import _signal  # the C module: `signal` builds its enums at import, 1.5 ms of every job
import os
import sys
from pathlib import Path

from ._jobdir import JobDir
from ._process import process_start
from ._vocabulary import JobState, caught_signal_reason


def job_command(jobdir: Path) -> list[str]:
    """The command that runs the job of ``jobdir`` (what every launcher starts)."""
    return [sys.executable, "-m", "xpm.run", str(jobdir)]


def job_environment() -> dict[str, str]:
    """What the job's environment adds to the submitter's: its ``sys.path`` as PYTHONPATH,
    so the job imports the same modules (and the same xpm) as the experiment."""
    entries = [p for p in sys.path if p and os.path.isdir(p)]
    return {"PYTHONPATH": os.pathsep.join(dict.fromkeys(entries))}


#: Exit status when another process already runs this job.
EXIT_ALREADY_RUNNING = 75


class _Terminated(SystemExit):
    """Raised in the job by the SIGTERM handler, so ``finally`` blocks of the task run."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum

    @property
    def signame(self) -> str:
        return "SIGTERM" if self.signum == _signal.SIGTERM else f"signal {self.signum}"


def _terminated(signum: int, _frame: object) -> None:
    raise _Terminated(signum)


class _RunningLock:
    """``running.lock``, held while the job runs: a POSIX record lock (``fcntl.lockf``), the
    same mechanism as the fasteners locks the scheduler probes it with, without importing
    fasteners in every job process."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None


#: Set by the job script of a launcher whose backend runs the job (Slurm's job.sh): the
#: launcher kind, the backend's own id for this run, how many times the backend restarted
#: the job.  The job side reads these, never a backend's own variables.
BACKEND_VARIABLES = ("XPM_BACKEND", "XPM_BACKEND_JOB_ID", "XPM_BACKEND_RESTART")


def _backend_restart() -> int:
    """How many times the backend restarted the job running here (``XPM_BACKEND_RESTART``)."""
    try:
        return max(0, int(os.environ.get("XPM_BACKEND_RESTART", "0")))
    except ValueError:
        return 0


def run_job(path: Path) -> int:
    """Run the task of the job directory ``path``; returns the process exit status."""
    jobdir = JobDir.from_path(path)
    running = _RunningLock(str(jobdir.running_lock))
    if not running.acquire():
        print(f"xpm: job {jobdir.relpath} is already running elsewhere", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    try:
        if jobdir.is_done():
            return 0
        _signal.signal(_signal.SIGTERM, _terminated)
        pid = os.getpid()
        extra: dict[str, int | str] = {}
        backend = os.environ.get("XPM_BACKEND")
        # Its launcher's own job (not a job of another launcher started inside one).
        if backend and jobdir.read_status().launcher == backend:
            # The backend's id of this run (Slurm: an array task's raw job id, which its
            # completion records use once squeue forgot the task).
            own_id = os.environ.get("XPM_BACKEND_JOB_ID")
            if own_id:
                extra["backend_job_id"] = own_id
            restart = _backend_restart()
            if restart:
                # The backend requeued the job (node failure, preemption, `scontrol
                # requeue`): the state and results from now on are this run's.
                jobdir.restarted_by_backend()
                extra["restart"] = restart
                for stream in (sys.stdout, sys.stderr):
                    print(f"xpm: --- restarted by {backend} (restart {restart}) ---", file=stream)
                    stream.flush()
        # The start time tells this process from a later one given the same pid (a reader
        # settling the job after a crash must not mistake one for the other).
        jobdir.add_event(
            "RUNNING", pid=pid, pid_start=process_start(pid), host=os.uname().nodename, **extra
        )
        os.chdir(jobdir.path)
        try:
            from . import _task
            from ._serialize import load
            from ._task import Task

            _task.LOADING_USER_CODE = True  # experiments must not start while importing
            try:
                task = load(jobdir.params, workdir=jobdir.workdir)
            finally:
                _task.LOADING_USER_CODE = False
            if not isinstance(task, Task):
                raise TypeError(f"{jobdir.params} does not describe a Task")
            task.__dict__["_xpm_jobdir"] = jobdir
            _task.RUNNING_TASK = task
            task.execute()
        except BaseException as e:  # every failure must leave a marker, even SystemExit
            code = e.code if isinstance(e, SystemExit) and isinstance(e.code, int) else 1
            if isinstance(e, SystemExit) and code == 0:
                jobdir.end("DONE", exit_code=0)
                return 0
            state: JobState = (
                "CANCELLED" if isinstance(e, (KeyboardInterrupt, SystemExit)) else "FAILED"
            )
            reason = f"{type(e).__name__}: {e}".strip().rstrip(":")
            info: dict[str, int] = {"exit_code": code}
            if isinstance(e, _Terminated):
                # Not a bug of the task: say so on one line, no traceback.  Why the signal
                # came (a scancel, a walltime, a preemption) only the backend knows: the
                # marker says the job caught it, so the backend's final state replaces it.
                reason = caught_signal_reason(e.signame)
                info["caught_signal"] = e.signum
                print(f"xpm: job {reason}", file=sys.stderr)
            else:
                import traceback

                traceback.print_exc()
                if isinstance(e, SystemExit) and code > 128:
                    import signal

                    reason = caught_signal_reason(signal.Signals(code - 128).name)
            sys.stderr.flush()
            if isinstance(e, _Terminated) and jobdir.ended_by_sender():
                # `xpm jobs kill` recorded who stopped the job before the signal reached it
                # (a backend's cancel returns first): that end stands, not a second one.
                jobdir.add_event(None, caught_signal=e.signum)
                return code or 1
            jobdir.end(state, reason, **info)
            return code or 1
        jobdir.end("DONE", exit_code=0)
        return 0
    finally:
        sys.stdout.flush()
        running.release()


def current_task() -> object:
    """The task running in this job process (None outside a job)."""
    from . import _task

    return _task.RUNNING_TASK


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m xpm.run JOBDIR", file=sys.stderr)
        return 2
    return run_job(Path(args[0]))


if __name__ == "__main__":
    sys.exit(main())
