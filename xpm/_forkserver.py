"""The local fork server: ``python -m xpm._forkserver``, a pre-started job interpreter.

Starting a Python interpreter and importing xpm's job side costs every local job 60-100 ms
on a small machine, more than a short task itself.  The local launcher therefore starts this
process once: it imports the job side (and nothing else: never user code, never a thread),
then forks one child per job request.  The child becomes what ``python -m xpm.run JOBDIR``
would be (own session, cwd, stdin/stdout/stderr, environment, ``sys.path``, ``sys.argv``)
and runs the job, then exits the interpreter normally, so the user's ``atexit`` handlers
run.  ``random`` reseeds itself in every child (``os.register_at_fork``).

Protocol (the experiment process is the client, :mod:`xpm.launchers._forkclient`):

- requests on the server's stdin: 4-byte big-endian length + ``marshal`` of
  ``(request id, job directory, environment, stdout path, stderr path)``;
- replies on the server's stdout, one text line each: ``ready``, ``started ID PID``,
  ``error ID MESSAGE``, ``unwatched PID MESSAGE``, ``exit PID WAITSTATUS``.

The server exits when its stdin closes (the experiment process ended or died): children
keep running on their own, as jobs of a killed experiment do.
"""

from __future__ import annotations

import marshal
import os
import select
import sys

#: Request header: the length of the marshalled request.
HEADER = 4

Request = tuple[int, str, dict[str, str], str, str]


def _write(fd: int, line: str) -> None:
    data = (line.replace("\n", " ") + "\n").encode("utf-8", "replace")
    while data:
        data = data[os.write(fd, data) :]


def _serve(requests: int, replies: int) -> Request | None:
    """Fork a child per request; returns the child's request in the child, None at EOF."""
    poller = select.poll()
    poller.register(requests, select.POLLIN)
    children: dict[int, int] = {}  # pidfd -> pid
    buffer = b""
    while True:
        for fd, _events in poller.poll():
            if fd != requests:
                pid = children.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                _write(replies, f"exit {pid} {status}")
                continue
            data = os.read(requests, 1 << 16)
            if not data:
                return None
            buffer += data
            while len(buffer) >= HEADER:
                size = int.from_bytes(buffer[:HEADER], "big")
                if len(buffer) < HEADER + size:
                    break
                request: Request = marshal.loads(buffer[HEADER : HEADER + size])
                buffer = buffer[HEADER + size :]
                try:
                    pid = os.fork()
                except OSError as e:
                    _write(replies, f"error {request[0]} cannot fork: {e}")
                    continue
                if pid == 0:
                    for child_fd in (requests, replies, *children):
                        os.close(child_fd)
                    return request
                try:
                    pidfd = os.pidfd_open(pid)
                except OSError as e:  # cannot watch it (out of descriptors?): say so
                    _write(replies, f"started {request[0]} {pid}")
                    _write(replies, f"unwatched {pid} cannot watch job process {pid}: {e}")
                    continue
                children[pidfd] = pid
                poller.register(pidfd, select.POLLIN)
                _write(replies, f"started {request[0]} {pid}")


def _job_sys_path(
    base: list[str], base_pythonpath: str, jobdir: str, env: dict[str, str]
) -> list[str]:
    """``sys.path`` as ``python -m xpm.run JOBDIR`` started with ``env`` would have it."""
    server_entries = [p for p in base_pythonpath.split(os.pathsep) if p]
    rest = base[1:]  # base[0]: the server's cwd (for -m), unless safe_path dropped it
    if getattr(sys.flags, "safe_path", False):
        rest = base
    if rest[: len(server_entries)] == server_entries:
        rest = rest[len(server_entries) :]
    job_entries = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    first = [] if getattr(sys.flags, "safe_path", False) else [jobdir]
    return list(dict.fromkeys([*first, *job_entries, *rest]))


def _become_job(request: Request, base_path: list[str], base_pythonpath: str) -> int:
    """In the forked child: take the job's session, files, environment; run it."""
    _, jobdir, env, stdout, stderr = request
    os.setsid()  # its own process group: the launcher cancels it as a whole
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for target, path in ((1, stdout), (2, stderr)):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(jobdir)
    os.environ.clear()
    os.environ.update(env)
    sys.path[:] = _job_sys_path(base_path, base_pythonpath, jobdir, env)
    import importlib

    importlib.invalidate_caches()  # directories may have changed since the server started

    import runpy

    # What `python -m xpm.run JOBDIR` does: xpm/run.py runs as __main__ (it exits itself).
    sys.argv[:] = ["-m", jobdir]
    runpy.run_module("xpm.run", run_name="__main__", alter_sys=True)
    return 0


def main() -> int:
    # Keep the pipes on private descriptors: 0 and 1 become the job's files in children.
    requests, replies = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    # What every job imports; user code is never imported here.
    from . import _serialize, _task, run  # noqa: F401

    base_path = list(sys.path)
    base_pythonpath = os.environ.get("PYTHONPATH", "")
    try:
        _write(replies, "ready")
        request = _serve(requests, replies)
    except (BrokenPipeError, KeyboardInterrupt):  # the experiment process went away
        return 0
    if request is None:
        return 0
    return _become_job(request, base_path, base_pythonpath)


if __name__ == "__main__":
    sys.exit(main())
