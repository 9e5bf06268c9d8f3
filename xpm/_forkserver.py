"""The local fork server: ``python -m xpm._forkserver``, a pre-started job interpreter.

Starting a Python interpreter and importing xpm's job side costs every local job 60-100 ms
on a small machine, more than a short task itself.  The local launcher therefore starts this
process once: it imports the job side (and nothing else: never user code, never a thread),
then forks one child per job request.  The child becomes what ``python -m xpm.run JOBDIR``
would be (own session, cwd, stdin/stdout/stderr, environment, ``sys.path``, ``sys.argv``)
and runs the job, then exits the interpreter normally, so the user's ``atexit`` handlers
run.  ``random`` reseeds itself in every child (``os.register_at_fork``).

Protocol (the experiment process is the client, :mod:`xpm.launchers._forkclient`):

- requests on the server's stdin, one :class:`JobRequest` each;
- replies on the server's stdout: ``("ready",)``, ``("started", ID, PID)``,
  ``("error", ID, MESSAGE)``, ``("exit", PID, WAITSTATUS)``;

both framed by :mod:`xpm._frames` (length + marshal).

The server exits when its stdin closes (the experiment process ended or died): children
keep running on their own, as jobs of a killed experiment do.
"""

from __future__ import annotations

import _signal
import contextlib
import io
import os
import resource
import select
import sys
import time
from typing import Any, NamedTuple

from ._frames import FrameBuffer, Tagged


class JobRequest(NamedTuple):
    """What the experiment asks the server to fork (sent as a plain tuple)."""

    request_id: int
    jobdir: str
    env: dict[str, str]
    stdout: str
    stderr: str
    #: The submitting thread's umask, nice value, CPU affinity and resource limits.
    settings: dict[str, Any]


#: While some children cannot be watched through a pidfd, how often they are reaped (ms).
REAP_EVERY_MS = 200


class Ready(NamedTuple):
    """Reply: the server has imported what jobs need and waits for requests."""


class Started(NamedTuple):
    """Reply: the job of request ``request_id`` was forked as ``pid``."""

    request_id: int
    pid: int


class ForkFailed(NamedTuple):
    """Reply: the job of request ``request_id`` could not be forked (``message`` says why)."""

    request_id: int
    message: str


class Exited(NamedTuple):
    """Reply: the job ``pid`` ended with wait status ``status``."""

    pid: int
    status: int


Reply = Ready | Started | ForkFailed | Exited
#: The server's replies on the pipe, each tagged.
REPLIES: Tagged[Reply] = Tagged(
    {Ready: "ready", Started: "started", ForkFailed: "error", Exited: "exit"}
)


def parse_reply(message: Any) -> Reply:
    """The reply a frame read from the server holds (a tag, then the reply's fields)."""
    return REPLIES.parse(message)


def _reply(fd: int, message: Reply) -> None:
    data = REPLIES.frame(message)
    while data:
        data = data[os.write(fd, data) :]


def _serve(requests: int, replies: int) -> JobRequest | None:
    """Fork a child per request; returns the child's request in the child, None at EOF."""
    poller = select.poll()
    poller.register(requests, select.POLLIN)
    children: dict[int, int] = {}  # pidfd -> pid
    unwatched: set[int] = set()  # children without a pidfd (out of descriptors): reaped by polling
    buffer = FrameBuffer()
    while True:
        ready = poller.poll(REAP_EVERY_MS if unwatched else None)
        for pid in list(unwatched):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                unwatched.discard(pid)
                _reply(replies, Exited(pid, status))
        for fd, _events in ready:
            if fd != requests:
                pid = children.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                _reply(replies, Exited(pid, status))
                continue
            data = os.read(requests, 1 << 16)
            if not data:
                return None
            for message in buffer.feed(data):
                request = JobRequest(*message)
                try:
                    pid = os.fork()
                except OSError as e:
                    _reply(replies, ForkFailed(request.request_id, f"cannot fork: {e}"))
                    continue
                if pid == 0:
                    for child_fd in (requests, replies, *children):
                        os.close(child_fd)
                    return request
                try:
                    pidfd = os.pidfd_open(pid)
                except OSError:  # out of descriptors: reap it by polling instead
                    unwatched.add(pid)
                else:
                    children[pidfd] = pid
                    poller.register(pidfd, select.POLLIN)
                _reply(replies, Started(request.request_id, pid))


def _job_sys_path(
    base: list[str], base_pythonpath: str, jobdir: str, env: dict[str, str]
) -> list[str]:
    """``sys.path`` as ``python -m xpm.run JOBDIR`` started with ``env`` would have it."""
    safe_path = getattr(sys.flags, "safe_path", False)  # -P: no script/cwd entry first
    server_entries = [p for p in base_pythonpath.split(os.pathsep) if p]
    rest = base if safe_path else base[1:]  # base[0]: the server's cwd (for -m)
    if rest[: len(server_entries)] == server_entries:
        rest = rest[len(server_entries) :]
    job_entries = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    first = [] if safe_path else [jobdir]
    return list(dict.fromkeys([*first, *job_entries, *rest]))


def _become_job(request: JobRequest, base_path: list[str], base_pythonpath: str) -> None:
    """In the forked child: take the job's session, files, environment and settings."""
    jobdir, env, settings = request.jobdir, request.env, request.settings
    os.setsid()  # its own process group: the launcher cancels it as a whole
    _apply_settings(settings)  # first: the umask decides the new log files' modes
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for target, path in ((1, request.stdout), (2, request.stderr)):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        os.dup2(fd, target)
        os.close(fd)
    _reopen_standard_streams()
    os.chdir(jobdir)
    os.environ.clear()
    os.environ.update(env)
    time.tzset()  # TZ may differ from the server's
    sys.path[:] = _job_sys_path(base_path, base_pythonpath, jobdir, env)
    import importlib

    importlib.invalidate_caches()  # directories may have changed since the server started


def _reopen_standard_streams() -> None:
    """New sys.stdin/stdout/stderr over the job's files, as a starting interpreter makes
    them (buffer sized for a file, seekable), with the server's encodings and modes."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        old = getattr(sys, name)
        unbuffered = isinstance(getattr(old, "buffer", None), io.FileIO)  # python -u
        binary = open(  # noqa: SIM115 - owned by the new stream
            fd, "rb" if fd == 0 else "wb", buffering=0 if unbuffered else -1, closefd=False
        )
        stream = io.TextIOWrapper(
            binary,
            encoding=old.encoding,
            errors=old.errors,
            newline="\n",
            line_buffering=old.line_buffering,
            write_through=unbuffered,
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _apply_settings(settings: dict[str, Any]) -> None:
    """The submitting thread's process settings, which a fresh process would inherit."""
    os.umask(settings["umask"])
    with contextlib.suppress(OSError):  # raising the priority back needs privileges
        os.setpriority(os.PRIO_PROCESS, 0, settings["nice"])
    with contextlib.suppress(OSError, ValueError):
        os.sched_setaffinity(0, settings["cpus"])
    for which, limits in settings["rlimits"].items():
        with contextlib.suppress(OSError, ValueError):  # a raised hard limit needs privileges
            resource.setrlimit(which, limits)
    if settings.get("sigchld_ignored"):
        _signal.signal(_signal.SIGCHLD, _signal.SIG_IGN)


def _run_as_main(jobdir: str) -> None:
    """What ``python -m xpm.run JOBDIR`` does: xpm/run.py runs as a new ``__main__`` module
    (it exits the interpreter itself); ``sys.argv[0]`` is its file."""
    import importlib.util
    import types

    sys.modules.pop("xpm.run", None)  # as in a fresh process: user code imports its own copy
    spec = importlib.util.find_spec("xpm.run")
    if spec is None or spec.loader is None or spec.origin is None:
        raise ImportError("the job entry point xpm.run cannot be found from the job's sys.path")
    main = types.ModuleType("__main__")
    main.__file__ = spec.origin
    main.__spec__ = spec
    main.__loader__ = spec.loader
    main.__package__ = "xpm"
    main.__cached__ = spec.cached  # type: ignore[attr-defined]
    sys.modules["__main__"] = main
    sys.argv[:] = [spec.origin, jobdir]
    code = spec.loader.get_code("xpm.run")  # type: ignore[attr-defined]
    exec(code, main.__dict__)


def main() -> int:
    # Keep the pipes on private descriptors: 0 and 1 become the job's files in children.
    requests, replies = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    # An experiment that ignores SIGCHLD would make waitpid fail here; its jobs get it back.
    sigchld_ignored = _signal.getsignal(_signal.SIGCHLD) == _signal.SIG_IGN
    _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
    # What every job imports; user code is never imported here.
    from . import _serialize, _task, run  # noqa: F401

    base_path = list(sys.path)
    base_pythonpath = os.environ.get("PYTHONPATH", "")
    try:
        _reply(replies, Ready())
        request = _serve(requests, replies)
    except (BrokenPipeError, KeyboardInterrupt):  # the experiment process went away
        return 0
    if request is None:
        return 0
    request.settings["sigchld_ignored"] = sigchld_ignored
    _become_job(request, base_path, base_pythonpath)
    _run_as_main(request.jobdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
