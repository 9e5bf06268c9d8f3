"""The experiment side of the local fork server (:mod:`xpm._forkserver`).

One server per distinct interpreter-level environment (``PYTHON*`` but ``PYTHONPATH``,
``LD_*``, locale, allocator settings: what a forked child could not change any more) is
shared by every :class:`~xpm.launchers.local.LocalLauncher` of the process.  The server
starts in the background; until it is ready, and whenever it cannot serve (not Linux, no
``pidfd_open``, the server died), jobs start as fresh ``python -m xpm.run`` processes.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from .._forkserver import ForkFailed, JobRequest, Ready, Reply, Started, parse_reply
from .._frames import frame, read_frames
from .._jobdir import lost_reason
from ..errors import LauncherError

if TYPE_CHECKING:
    from .._jobdir import JobDir

#: Set to "0" to start every local job as a fresh interpreter.
ENV_SWITCH = "XPM_FORK_SERVER"
#: Servers that may run at once in one process (one per interpreter-level environment).
MAX_SERVERS = 4
#: How long a job request waits for the server's answer before the job is started fresh.
REQUEST_TIMEOUT = 10.0
#: How often a job whose server died is checked for its end.
ORPHAN_POLL = 0.5
#: How often the client checks that the server reaps the jobs that ended.
WATCH_EVERY = 1.0
#: How long a server that is not waiting for a CPU may leave an ended job unreaped...
EXIT_REPORT_GRACE = 5.0
#: ...and how long any server may (a machine so loaded that it never ran is not hung).
EXIT_REPORT_LIMIT = 60.0

_PREFIXES = ("PYTHON", "LD_", "LC_", "MALLOC_")
_NAMES = frozenset({"LANG", "LANGUAGE", "GLIBC_TUNABLES"})


def interpreter_key(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The variables of ``env`` that an interpreter reads only when it starts."""
    return tuple(
        sorted(
            (k, v)
            for k, v in env.items()
            if (k in _NAMES or k.startswith(_PREFIXES)) and k != "PYTHONPATH"
        )
    )


def available() -> bool:
    """Whether jobs may be forked from a server here (Linux with pidfd_open, not disabled)."""
    if os.environ.get(ENV_SWITCH, "1") == "0" or not sys.platform.startswith("linux"):
        return False
    if not hasattr(os, "pidfd_open"):
        return False
    global _PIDFD_OK
    if _PIDFD_OK is None:
        try:
            os.close(os.pidfd_open(os.getpid()))
            _PIDFD_OK = True
        except OSError:
            _PIDFD_OK = False
    return _PIDFD_OK


_PIDFD_OK: bool | None = None


class ForkedProcess:
    """A job process forked by the server: the part of ``subprocess.Popen`` the local
    launcher uses (``pid``, ``poll()``, ``wait()``, ``returncode``)."""

    def __init__(self, pid: int, jobdir: JobDir, on_exit: Callable[[], None]) -> None:
        self.pid = pid
        self.returncode: int | None = None
        #: Why the outcome is unknown (the server died before the job ended), if it is.
        self.lost_reason: str | None = None
        self._jobdir = jobdir
        self._on_exit = on_exit
        self._ended = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout) or self.returncode is None:
            raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
        return self.returncode

    def _exited(self, returncode: int) -> None:
        if self.returncode is None:
            self.returncode = returncode
            self._ended.set()
            _notify(self._on_exit)

    def _orphaned(self) -> None:
        """The server died: the process goes on, but its exit status will never come."""
        threading.Thread(target=self._watch_orphan, name="xpm-orphan", daemon=True).start()

    def _watch_orphan(self) -> None:
        # Another process (init) reaps it now: it has ended once its pid is gone, or once its
        # outcome is on disk and it no longer holds running.lock.
        while self.returncode is None:
            gone = not _process_running(self.pid)
            done, failed = self._jobdir.is_done(), self._jobdir.failed_marker.exists()
            if gone or ((done or failed) and not self._jobdir.running_lock_held()):
                if done:
                    code = 0
                else:
                    code = self._jobdir.read_status().exit_code or 1
                    if not failed:
                        self.lost_reason = lost_reason("the local fork server died")
                self._exited(code)
                return
            time.sleep(ORPHAN_POLL)


def _process_state(pid: int) -> str | None:
    """The state letter of process ``pid`` (R running, S sleeping, T stopped, Z zombie...),
    None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat.rsplit(b")", 1)[1].split()[0].decode()


def _process_running(pid: int) -> bool:
    """Whether ``pid`` still runs: a zombie (ended, not yet reaped) does not."""
    return _process_state(pid) not in (None, "Z", "X")


def process_settings() -> dict[str, Any]:
    """What a process started by the calling thread now would inherit, besides its
    environment: umask, nice value, CPU affinity, resource limits (a fork server child
    takes them from its request)."""
    import resource

    global _RLIMITS
    if _RLIMITS is None:
        _RLIMITS = [
            value
            for name in dir(resource)
            if name.startswith("RLIMIT_") and isinstance(value := getattr(resource, name), int)
        ]
    umask = 0o022
    with contextlib.suppress(OSError), open("/proc/self/status", "rb") as fh:
        for line in fh:
            if line.startswith(b"Umask:"):
                umask = int(line.split()[1], 8)
                break
    return {
        "umask": umask,
        "nice": os.getpriority(os.PRIO_PROCESS, 0),  # 0: this thread, on Linux
        "cpus": os.sched_getaffinity(0),
        "rlimits": {which: resource.getrlimit(which) for which in _RLIMITS},
    }


_RLIMITS: list[int] | None = None  # the resource limits this platform has


_callbacks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
_notifier: threading.Thread | None = None


def _notify(callback: Callable[[], None]) -> None:
    """Run ``callback`` on the notifier thread.  Never on the reader thread: the scheduler
    calls ``spawn()`` holding the lock its exit callback takes, and waits for the reader."""
    global _notifier
    with _servers_lock:
        if _notifier is None:
            _notifier = threading.Thread(target=_run_callbacks, name="xpm-job-exits", daemon=True)
            _notifier.start()
    _callbacks.put(callback)


def _run_callbacks() -> None:
    while True:
        callback = _callbacks.get()
        try:
            callback()
        except Exception as e:  # noqa: BLE001 - one listener's bug must not stop the others
            print(f"xpm: job exit callback failed: {e!r}", file=sys.stderr)


class _PendingReply:
    """A job request waiting for the server's answer (set by the reader thread)."""

    __slots__ = ("jobdir", "on_exit", "answered", "process", "error")

    def __init__(self, jobdir: JobDir, on_exit: Callable[[], None]) -> None:
        self.jobdir = jobdir
        self.on_exit = on_exit
        self.answered = threading.Event()
        #: The forked job, once the server said "started" (None: not forked).
        self.process: ForkedProcess | None = None
        #: Why the server could not fork it.
        self.error: str | None = None


class ForkServer:
    """One running ``python -m xpm._forkserver`` and the jobs it forked."""

    def __init__(self, env: dict[str, str]) -> None:
        self.ready = threading.Event()
        self.dead = False
        self._lock = threading.Lock()
        self._next_id = 0
        self._requests: dict[int, _PendingReply] = {}  # by request id
        self._procs: dict[int, ForkedProcess] = {}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "xpm._forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd="/",
            start_new_session=True,  # Ctrl-C at the terminal must not stop it mid-report
        )
        if self._proc.stdin is None or self._proc.stdout is None:  # not with PIPE: a bug
            raise LauncherError("the local fork server was started without its pipes")
        self._stdin: IO[bytes] = self._proc.stdin
        # Requests are written straight to the descriptor, never blocking: a stopped server
        # with a full pipe must not hold the scheduler beyond the request timeout.
        self._stdin_fd = self._stdin.fileno()
        os.set_blocking(self._stdin_fd, False)
        self._write_lock = threading.Lock()
        self._stdout: IO[bytes] = self._proc.stdout
        self._stopped = threading.Event()
        self._reader = threading.Thread(target=self._read, name="xpm-forkserver", daemon=True)
        self._reader.start()
        threading.Thread(target=self._watch, name="xpm-forkserver-watch", daemon=True).start()

    def spawn(
        self, jobdir: JobDir, env: dict[str, str], on_exit: Callable[[], None]
    ) -> ForkedProcess | None:
        """Fork the job of ``jobdir``; None when the server cannot (the caller starts it)."""
        if self.dead or not self.ready.is_set():
            return None
        deadline = time.monotonic() + REQUEST_TIMEOUT
        with self._write_lock:  # whole requests, one at a time; never under self._lock,
            with self._lock:  # which the reader and the watcher need
                self._next_id += 1
                request = JobRequest(
                    self._next_id,
                    str(jobdir.path),
                    env,
                    str(jobdir.stdout),
                    str(jobdir.stderr),
                    process_settings(),
                )
                pending = _PendingReply(jobdir, on_exit)
                self._requests[request.request_id] = pending
            sent = self._send(frame(tuple(request)), deadline)
        if sent is None:  # the server is gone
            with self._lock:
                self._requests.pop(request.request_id, None)
            self._died()
            return None
        if not sent or not pending.answered.wait(max(0.0, deadline - time.monotonic())):
            # No answer: kill the server, then read every reply it wrote before dying.  If it
            # forked the job after all, that child is followed through the job directory;
            # only if it did not does the caller start the job as a fresh process.
            self._kill(f"did not answer a job request within {REQUEST_TIMEOUT:g} s")
            self._reader.join(timeout=60)
            with self._lock:
                self._requests.pop(request.request_id, None)
        return pending.process

    def _send(self, data: bytes, deadline: float) -> bool | None:
        """Write ``data`` to the server before ``deadline``: True if written, False if the
        server did not take it in time (a stopped server with a full pipe), None if gone."""
        poller = select.poll()
        poller.register(self._stdin_fd, select.POLLOUT)
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                return False
            try:
                view = view[os.write(self._stdin_fd, view) :]
            except BlockingIOError:
                continue
            except OSError:
                return None
        return True

    def close(self, wait: float = 0.0) -> None:
        """Stop the server (the jobs it forked go on); wait up to ``wait`` s for it to exit."""
        self.dead = True
        with contextlib.suppress(OSError):
            self._stdin.close()
        if wait:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(wait)

    def _kill(self, why: str) -> None:
        """Retire a server that stopped answering (its jobs go on, followed by their files)."""
        if not self.dead:
            print(f"xpm: the local fork server {why}; stopping it", file=sys.stderr)
        with contextlib.suppress(OSError):
            self._proc.kill()

    # --- threads ---------------------------------------------------------------------------
    def _watch(self) -> None:
        """Kill a server that stops reaping its children (stopped, hung).

        A child it has not reaped stays a zombie.  One left for EXIT_REPORT_GRACE while the
        server is not even waiting for a CPU (a stopped or stuck server), or for
        EXIT_REPORT_LIMIT whatever the server's state, retires it.  A child already reaped
        is not counted: its report is on its way, however slowly this process reads it.
        """
        zombie_since: dict[int, float] = {}
        while not self._stopped.wait(WATCH_EVERY):
            with self._lock:
                pids = list(self._procs)
            now = time.monotonic()
            zombies = {pid for pid in pids if _process_state(pid) == "Z"}
            zombie_since = {pid: zombie_since.get(pid, now) for pid in zombies}
            oldest = max((now - t for t in zombie_since.values()), default=0.0)
            waiting_for_cpu = _process_state(self._proc.pid) == "R"
            if oldest > EXIT_REPORT_LIMIT or (oldest > EXIT_REPORT_GRACE and not waiting_for_cpu):
                self._kill(f"left a job unreaped for {oldest:.0f} s")
                return

    def _replies(self) -> Iterator[Reply]:
        """The server's replies (see :mod:`xpm._forkserver`), until it exits."""
        for message in read_frames(self._stdout):
            yield parse_reply(message)

    def _read(self) -> None:
        for reply in self._replies():
            if isinstance(reply, Ready):
                self.ready.set()
            elif isinstance(reply, Started):
                with self._lock:
                    pending = self._requests.pop(reply.request_id, None)
                    if pending is None:  # already given up as dead: nobody waits for this job
                        continue
                    proc = ForkedProcess(reply.pid, pending.jobdir, pending.on_exit)
                    self._procs[reply.pid] = proc
                pending.process = proc
                pending.answered.set()
            elif isinstance(reply, ForkFailed):
                with self._lock:
                    pending = self._requests.pop(reply.request_id, None)
                if pending is not None:
                    pending.error = reply.message
                    pending.answered.set()
            else:
                with self._lock:
                    ended = self._procs.pop(reply.pid, None)
                if ended is not None:
                    ended._exited(os.waitstatus_to_exitcode(reply.status))
        self._died()
        self._stopped.set()
        self._stdout.close()
        self._proc.wait()  # it exits once its stdin is closed: no zombie left

    def _abandon(self, devnull: int) -> None:
        """In a process forked from this one: forget the server without touching it (its
        pipes now lead to /dev/null, so nothing here can write a request or close them)."""
        self.dead = True
        self._lock = threading.Lock()
        self._procs.clear()
        self._requests.clear()
        for stream in (self._stdin, self._stdout):
            with contextlib.suppress(OSError, ValueError):
                os.dup2(devnull, stream.fileno())

    def _died(self) -> None:
        with self._lock:
            if self.dead and not self._procs and not self._requests:
                return
            self.dead = True
            orphans = list(self._procs.values())
            self._procs.clear()
            waiting = list(self._requests.values())
            self._requests.clear()
        for pending in waiting:
            pending.answered.set()  # no answer will come: the caller starts the job fresh
        for proc in orphans:
            proc._orphaned()
        with contextlib.suppress(OSError):
            self._stdin.close()


_servers: dict[tuple[tuple[str, str], ...], ForkServer] = {}
_failures = 0
_atexit_registered = False
_servers_lock = threading.Lock()


def server_for(env: dict[str, str]) -> ForkServer | None:
    """The server for jobs with environment ``env``: started (in the background) if needed.

    None when jobs must start fresh: fork servers unavailable here, too many distinct
    interpreter-level environments, or servers that keep dying.
    """
    global _failures
    if not available():
        return None
    key = interpreter_key(env)
    with _servers_lock:
        for other_key, other in list(_servers.items()):
            if other.dead:
                del _servers[other_key]
                if not other.ready.is_set():  # died starting: it would again (broken setup)
                    _failures += 1
        server = _servers.get(key)
        if server is None:
            if _failures >= 3 or len(_servers) >= MAX_SERVERS:
                return None
            try:
                server = ForkServer(env)
            except (OSError, LauncherError):
                _failures += 1
                return None
            global _atexit_registered
            if not _atexit_registered:
                atexit.register(_close_all)
                _atexit_registered = True
            _servers[key] = server
    return server


_abandoned: list[ForkServer] = []


def _after_fork_in_child() -> None:
    """A process forked from the experiment (multiprocessing's "fork") starts without
    servers: the parent's answer to the parent, and their replies go to its threads."""
    global _servers, _servers_lock, _notifier, _callbacks
    _servers_lock = threading.Lock()
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for server in _servers.values():
            server._abandon(devnull)
            _abandoned.append(server)  # never collected: closing would close /dev/null dups
    finally:
        os.close(devnull)
    _servers = {}
    _notifier = None
    _callbacks = queue.SimpleQueue()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _close_all() -> None:
    """At exit: let the servers go (their stdin would close anyway) and reap them."""
    for server in list(_servers.values()):
        try:
            server.close(wait=1.0)
        except KeyboardInterrupt:  # a second Ctrl-C while leaving: leave now, no traceback
            server.close()
