"""Generate mode's directory writer: new job directories made by a helper process.

Making a directory and writing a file costs 100-800 µs of kernel time on some disks (this
project's VM among them), as much as everything else a submission does.  A helper process
makes them on the other core while the experiment goes on computing the next submissions.
A thread would not help: it needs Python's lock back after every system call, and the
submitting thread rarely lets go of it.

The first :data:`START_AFTER` directories of a run are written in the experiment process
itself (a helper is not worth starting for small runs).  Directories that already exist are
never sent here: the experiment handles them itself.  When another process creates the same
directory between the experiment's check and the helper's ``mkdir``, the helper treats it as
an existing job (keeps a DONE job's params.json, rewrites tags that differ) and reports it,
so the experiment can read it back.

A job is *announced* (handed to the index) only once its directory is written: the helper
acknowledges each batch, so the index never holds a job whose directory does not exist.
Until then a directory beyond the first :data:`START_AFTER` may not exist yet (a batch is
sent when it is full or, at the next submission, :data:`BATCH_AGE` seconds old); all of them
exist when the experiment's ``with`` block has ended.

Protocol, framed by :mod:`xpm._frames`.  Helper's stdin: batches, each a list of
:class:`NewDirectory` (as plain tuples).  Helper's stdout: a :class:`BatchWritten` after each
batch written; at end of input a :class:`WriterEnded` without error and exit 0; on an error
a :class:`WriterEnded` saying what failed, and exit 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

from ._frames import FrameBuffer, Tagged, frame, read_frames
from ._jobdir import JobDir
from .errors import JobDirectoryError

#: Directories written in-process before the helper starts.
START_AFTER = 256
#: Directories sent to the helper at once.
BATCH = 128
#: Seconds a queued directory may wait for its batch to fill (checked at each submission).
BATCH_AGE = 0.5


class NewDirectory(NamedTuple):
    """A job directory to make: its task id, identifier, ``params.json`` text and
    ``tags.json`` text (None: no tags).  Sent to the helper as a plain tuple."""

    task_id: str
    identifier: str
    params_text: str
    tags_text: str | None


class BatchWritten(NamedTuple):
    """Reply: a batch is written; ``raced`` names the directories of the batch another
    process had made meanwhile (identifier -> whether that job is done)."""

    raced: dict[str, bool]


class WriterEnded(NamedTuple):
    """Reply: the helper ends.  ``error`` None at the end of its input; else what failed,
    ``written`` the directories of the failing batch written before, ``raced`` as in
    :class:`BatchWritten`."""

    error: str | None = None
    written: int = 0
    raced: dict[str, bool] = {}  # noqa: RUF012 - never mutated: read once, then dropped


#: The helper's replies on its stdout, each tagged.
REPLIES: Tagged[BatchWritten | WriterEnded] = Tagged({BatchWritten: "ok", WriterEnded: "end"})


def write_new(workdir: Path, item: NewDirectory) -> bool | None:
    """Make one job directory; None when it was new, else whether the existing job is DONE."""
    jobdir = JobDir(workdir, item.task_id, item.identifier)
    if jobdir.create():
        jobdir.write_params(item.params_text, fresh=True)
        if item.tags_text is not None:
            jobdir.write_tags_text(item.tags_text)
        return None
    # Another process made it first: the same rules as any existing job directory.
    done = jobdir.is_done()
    if not done or not jobdir.params.exists():
        jobdir.write_params(item.params_text)
    tags = json.loads(item.tags_text) if item.tags_text is not None else {}
    if jobdir.read_tags() != tags:
        jobdir.write_tags(tags)
    return done


class DirectoryWriter:
    """Writes the new job directories of one generate-mode run (see the module docstring).

    ``announce(job, existing)`` is called (in the experiment's thread) once the directory
    of ``job`` is written; ``existing`` is None for a new directory, else whether the job
    another process made meanwhile is DONE.
    """

    def __init__(self, workdir: Path, announce: Callable[[Any, bool | None], None]) -> None:
        self.workdir = workdir
        self.written = 0
        self._announce = announce
        self._batch: list[NewDirectory] = []
        self._batch_jobs: list[Any] = []
        self._batch_started = 0.0
        self._in_flight: deque[list[Any]] = deque()  # jobs of batches sent, not yet acknowledged
        self._helper: subprocess.Popen[bytes] | None = None
        self._out = FrameBuffer()
        #: The helper's final reports: kept, since a read between batches may be the one
        #: that receives them (the error was lost then, and the message said only "ended
        #: with code 1").
        self._reports: list[WriterEnded] = []
        self._existing: dict[str, set[str]] = {}

    def exists(self, task_id: str, identifier: str) -> bool:
        """Whether the job directory existed when this run first looked at its task.

        One listing per task instead of a ``stat`` per submission: the system call would
        also have to win Python's lock back from the index writer each time.  Directories
        made later by other processes are handled by :func:`write_new`.
        """
        names = self._existing.get(task_id)
        if names is None:
            try:
                names = set(os.listdir(JobDir(self.workdir, task_id, "-").path.parent))
            except (FileNotFoundError, NotADirectoryError):
                names = set()
            self._existing[task_id] = names
        return identifier in names

    def write(self, item: NewDirectory, job: Any) -> None:
        """Make (or queue) the job directory ``item`` describes, for ``job``."""
        self.written += 1
        if self._helper is None and self.written <= START_AFTER:
            try:
                done = write_new(self.workdir, item)
            except OSError as e:
                raise self._error(_describe(e)) from e
            self._announce(job, done)
            return
        if not self._batch:
            self._batch_started = time.monotonic()
        self._batch.append(item)
        self._batch_jobs.append(job)
        # A run that submits slowly still sees its directories appear within a moment.
        if len(self._batch) >= BATCH or time.monotonic() - self._batch_started > BATCH_AGE:
            self._send()
            self._read_acks(block=False)

    def _start(self) -> subprocess.Popen[bytes]:
        from .run import job_environment

        helper = subprocess.Popen(
            [sys.executable, "-m", "xpm._dirwriter", str(self.workdir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,  # every byte written is in the pipe: nothing left in a buffer
            start_new_session=True,  # a terminal's Ctrl-C is for the experiment only
            env={**os.environ, **job_environment()},  # the same xpm as this process
        )
        _widen_pipe(helper.stdin)
        if helper.stdout is not None:
            os.set_blocking(helper.stdout.fileno(), False)
        return helper

    def _send(self) -> None:
        if not self._batch:
            return
        if self._helper is None:
            self._helper = self._start()
        stdin = self._helper.stdin
        if stdin is None:  # pragma: no cover - Popen made the pipe
            raise JobDirectoryError("the job directory writer has no input pipe")
        # Detached first: whatever happens during the write, the batch is never sent twice.
        batch, self._batch = self._batch, []
        self._in_flight.append(self._batch_jobs)
        self._batch_jobs = []
        data = memoryview(frame([tuple(item) for item in batch]))  # marshal: plain tuples
        try:
            # A Ctrl-C in the middle of a batch would leave the helper half of it: the batch
            # is written whole, and the interrupt is raised right after.
            with _sigint_deferred():
                while data:
                    data = data[stdin.write(data) or 0 :]
        except BrokenPipeError:  # the helper stopped on an error: say which
            self._collect()

    def _read_acks(self, *, block: bool) -> list[WriterEnded]:
        """Announce the jobs of the batches the helper has acknowledged; returns its final
        reports received so far (this read or an earlier one)."""
        helper = self._helper
        if helper is None or helper.stdout is None:
            return self._reports
        fd = helper.stdout.fileno()
        if block:
            os.set_blocking(fd, True)
        messages = []
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            messages += self._out.feed(chunk)
        for reply in map(REPLIES.parse, messages):
            if isinstance(reply, BatchWritten):
                if self._in_flight:
                    for job in self._in_flight.popleft():
                        self._announce(job, reply.raced.get(job.identifier))
            else:
                self._reports.append(reply)
        return self._reports

    def close(self) -> None:
        """Write what is queued and wait for the helper; raises when a directory failed."""
        self._send()
        self._collect()

    def _collect(self) -> None:
        helper = self._helper
        if helper is None:
            return
        if helper.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                helper.stdin.close()
        reports = list(self._read_acks(block=True))
        self._reports = []
        if helper.stdout is not None:
            helper.stdout.close()
        helper.wait()
        self._helper = None
        self._batch, self._batch_jobs = [], []
        if reports:
            report = reports[-1]
        else:
            report = WriterEnded(f"its helper process ended with code {helper.returncode}")
        if report.error is not None or helper.returncode != 0:
            failed = self._in_flight.popleft() if self._in_flight else []
            for job in failed[: report.written]:
                # written before the failure
                self._announce(job, report.raced.get(job.identifier))
            self._in_flight.clear()  # never written: never announced
            raise self._error(str(report.error))

    def _error(self, reason: str) -> JobDirectoryError:
        return JobDirectoryError(
            f"could not write job directories under {self.workdir / 'jobs'}: {reason}; "
            "fix the cause and run the experiment again"
        )


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """SIGINT (and the other stop signals) held back from this thread while the block runs
    (delivered when it ends)."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread gets KeyboardInterrupt
        return
    # SIGTERM and SIGHUP stop a run as SIGINT does (xpm/_stopping.py).
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _widen_pipe(pipe: IO[bytes] | None) -> None:
    """Room for several batches in the pipe (Linux), so a write seldom waits for the helper."""
    import fcntl

    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if pipe is None or setsize is None:
        return
    with contextlib.suppress(OSError):  # above the system's limit: keep the default
        fcntl.fcntl(pipe.fileno(), setsize, 1 << 20)


def _describe(error: OSError) -> str:
    return f"{error.strerror or error}: {error.filename}"


def _send_reply(reply: BatchWritten | WriterEnded) -> None:
    with contextlib.suppress(BrokenPipeError):  # the experiment is gone: nobody to tell
        sys.stdout.buffer.write(REPLIES.frame(reply))
        sys.stdout.buffer.flush()


def main(argv: list[str]) -> int:
    """The helper process: ``python -m xpm._dirwriter WORKDIR`` (see the module docstring)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the experiment decides when to stop
    workdir = Path(argv[0])
    batch: list[tuple[str, str, str, str | None]]
    for batch in read_frames(sys.stdin.buffer):
        raced: dict[str, bool] = {}
        for written, item in enumerate(map(NewDirectory._make, batch)):
            try:
                done = write_new(workdir, item)
            except OSError as e:
                _send_reply(WriterEnded(_describe(e), written, raced))
                return 1
            except Exception as e:  # noqa: BLE001 - reported to the experiment, with the path
                path = JobDir(workdir, item.task_id, item.identifier).path
                error = f"{type(e).__name__}: {e} ({path})"
                _send_reply(WriterEnded(error, written, raced))
                return 1
            if done is not None:
                raced[item.identifier] = done
        _send_reply(BatchWritten(raced))
    _send_reply(WriterEnded())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
