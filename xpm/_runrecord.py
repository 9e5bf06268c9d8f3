"""The run record: ``WORKDIR/experiments/NAME/runs/RUN_ID.json`` (who ran what, where,
when, and how the run ended) and ``RUN_ID.jobs.jsonl`` beside it (every submission), written
by the experiment process; the index can be rebuilt from them.

Mixed into :class:`xpm.Experiment` (xpm/_experiment.py).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._atomicio import atomic_write_text
from ._process import this_process
from ._stopping import Terminated
from ._vocabulary import RUNS, RunMode, experiments_root

if TYPE_CHECKING:
    from ._scheduler import Job

OUTCOME_MESSAGE_CHARS = 300  # of an error's message kept in the run record


def _first_line(error: BaseException | None, limit: int) -> str:
    """The first non-empty line of ``error``'s message, at most ``limit`` characters."""
    lines = [line for line in str(error or "").strip().splitlines() if line.strip()]
    line = lines[0].strip() if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


class RunRecord:
    """The run record of a run (a part of :class:`xpm.Experiment`)."""

    workdir: Path
    name: str
    run_id: str
    run_mode: RunMode
    detach: bool
    start_time: float
    end_time: float | None
    info: dict[str, Any]
    _submissions: list[dict[str, Any]]
    _submissions_lock: threading.Lock
    _stopped_by: Terminated | None

    if TYPE_CHECKING:

        def failed_jobs(self) -> list[Job]: ...

    @property
    def run_dir(self) -> Path:
        """Where this experiment's run records live: ``WORKDIR/experiments/<name>/``."""
        return experiments_root(self.workdir) / self.name

    def _outcome(
        self, exc_type: type[BaseException] | None, error: BaseException | None = None
    ) -> str:
        """How the run ended, recorded in its run record (``runs.info`` in the index).

        An error is kept with its message (first line, bounded): the class alone
        (``KeyError``) does not say which key, weeks later.
        """
        if exc_type is not None:
            if issubclass(exc_type, Terminated) and self._stopped_by is not None:
                return str(self._stopped_by)
            if issubclass(exc_type, KeyboardInterrupt):
                return "interrupted"
            message = _first_line(error, OUTCOME_MESSAGE_CHARS)
            return f"error: {exc_type.__name__}" + (f": {message}" if message else "")
        if self.detach and self.run_mode == "normal":
            return "detached"
        failed = len(self.failed_jobs())
        return f"{failed} job(s) failed" if failed else "done"

    def _write_run_record(self) -> None:
        record = {
            "experiment": self.name,
            "run_id": self.run_id,
            "run_mode": self.run_mode,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "host": socket.gethostname(),
            "user": _user(),
            "pid": os.getpid(),
            # Tells this process from a later one with its pid (a reader settling a crash).
            "pid_start": this_process()["start"],
            **self.info,
        }
        runs = self.run_dir / RUNS
        runs.mkdir(parents=True, exist_ok=True)
        atomic_write_text(runs / f"{self.run_id}.json", json.dumps(record, indent=1, default=str))

    def _flush_submissions(self) -> None:
        """Append the submissions not yet on disk to the run record's ``.jobs.jsonl``.

        Called by the index writer before it indexes submissions (from its thread), so the
        index never holds a submission its run record lacks: a rebuild after ``kill -9``
        finds every one.
        """
        with self._submissions_lock:
            if not self._submissions:
                return
            path = self.run_dir / RUNS / f"{self.run_id}.jobs.jsonl"
            encode = json.JSONEncoder(sort_keys=True, default=str).encode
            lines = "".join(encode(s) + "\n" for s in self._submissions)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(lines)
            self._submissions.clear()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
