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
so the experiment can read its real state back.

Protocol (helper's stdin): batches, each a 4-byte big-endian length and a :mod:`marshal`
blob of ``[(task_id, identifier, params_text, tags_or_None), ...]``.  At end of input the
helper prints one JSON line ``{"raced": {identifier: done}}`` and exits 0; on an error it
prints ``{"error": message}`` and exits 1.
"""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ._jobdir import JobDir
from .errors import JobDirectoryError

#: Directories written in-process before the helper starts.
START_AFTER = 256
#: Directories sent to the helper at once.
BATCH = 128

Item = tuple[str, str, str, "dict[str, Any] | None"]


def write_new(workdir: Path, item: Item) -> bool | None:
    """Make one job directory; None when it was new, else whether the existing job is DONE."""
    task_id, identifier, text, tags = item
    jobdir = JobDir(workdir, task_id, identifier)
    if jobdir.create():
        jobdir.write_params(text, fresh=True)
        if tags:
            jobdir.write_tags(tags)
        return None
    # Another process made it first: the same rules as any existing job directory.
    done = jobdir.is_done()
    if not done or not jobdir.params.exists():
        jobdir.write_params(text)
    if jobdir.read_tags() != (tags or {}):
        jobdir.write_tags(tags or {})
    return done


class DirectoryWriter:
    """Writes the new job directories of one generate-mode run (see the module docstring)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.written = 0
        #: identifier -> DONE, for directories another process made first.
        self.raced: dict[str, bool] = {}
        self._batch: list[Item] = []
        self._helper: subprocess.Popen[bytes] | None = None
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

    def write(self, item: Item) -> None:
        """Make (or queue) the job directory ``item`` describes."""
        self.written += 1
        if self._helper is None and self.written <= START_AFTER:
            try:
                done = write_new(self.workdir, item)
            except OSError as e:
                raise self._error(_describe(e)) from e
            if done is not None:
                self.raced[item[1]] = done
            return
        self._batch.append(item)
        if len(self._batch) >= BATCH:
            self._send()

    def _send(self) -> None:
        if not self._batch:
            return
        if self._helper is None:
            self._helper = subprocess.Popen(
                [sys.executable, "-m", "xpm._dirwriter", str(self.workdir)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                bufsize=0,  # every byte written is in the pipe: nothing left in a buffer
                start_new_session=True,  # a terminal's Ctrl-C is for the experiment only
            )
            _widen_pipe(self._helper.stdin)
        stdin = self._helper.stdin
        if stdin is None:  # pragma: no cover - Popen made the pipe
            raise JobDirectoryError("the job directory writer has no input pipe")
        blob = marshal.dumps(self._batch)
        data = memoryview(struct.pack(">I", len(blob)) + blob)
        try:
            # A Ctrl-C in the middle of a batch would leave the helper half of it: the batch
            # is written whole, and the interrupt is raised right after.
            with _sigint_deferred():
                while data:
                    data = data[stdin.write(data) or 0 :]
                self._batch = []
        except BrokenPipeError:  # the helper stopped on an error: say which
            self._collect()

    def close(self) -> None:
        """Write what is queued and wait for the helper; raises when a directory failed."""
        self._send()
        self._collect()

    def _collect(self) -> None:
        helper, self._helper = self._helper, None
        if helper is None:
            return
        self._batch = []
        out, _ = helper.communicate()
        try:
            report = json.loads(out.decode("utf-8").strip().splitlines()[-1])
        except (ValueError, IndexError):
            report = {"error": f"its helper process ended with code {helper.returncode}"}
        if "error" in report or helper.returncode != 0:
            raise self._error(str(report.get("error")))
        self.raced.update(report.get("raced", {}))

    def _error(self, reason: str) -> JobDirectoryError:
        return JobDirectoryError(
            f"could not write job directories under {self.workdir / 'jobs'}: {reason}; "
            "fix the cause and run the experiment again"
        )


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """SIGINT held back from this thread while the block runs (delivered when it ends)."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread gets KeyboardInterrupt
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


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


def _read_batches(stream: IO[bytes]) -> Any:
    while True:
        header = stream.read(4)
        if len(header) < 4:
            return
        (size,) = struct.unpack(">I", header)
        yield marshal.loads(stream.read(size))


def main(argv: list[str]) -> int:
    """The helper process: ``python -m xpm._dirwriter WORKDIR`` (see the module docstring)."""
    import signal

    # Ctrl-C reaches the whole process group; the experiment decides when to stop, and the
    # helper finishes the directories it was given first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    workdir = Path(argv[0])
    raced: dict[str, bool] = {}
    try:
        for batch in _read_batches(sys.stdin.buffer):
            for item in batch:
                done = write_new(workdir, item)
                if done is not None:
                    raced[item[1]] = done
    except OSError as e:
        print(json.dumps({"error": _describe(e)}), flush=True)
        return 1
    print(json.dumps({"raced": raced}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
