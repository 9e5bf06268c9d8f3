"""The index writer of an experiment process.

:func:`attach` (called by ``Experiment.__enter__``) opens the index and subscribes to the
experiment's submissions and the scheduler's state changes.  Listeners only queue the job
(cheap, any thread); a small writer thread reads what changed from the job directories and
writes it in one short transaction every :data:`FLUSH_INTERVAL` seconds or
:data:`FLUSH_ROWS` jobs, and :meth:`Recorder.close` writes the rest when the experiment
ends.  The index is derived: when writing fails, the recorder logs a warning naming
``xpm index rebuild`` and the experiment goes on; jobs never depend on it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._jobdir import JobDir
from .._vocabulary import TERMINAL_STATES, run_record
from ._db import IndexDB
from ._ingest import (
    catch_up_results,
    known_values,
    read_cursors,
    write_jobs,
    write_runs,
    write_submissions,
)
from ._links import link_jobs_by_id
from ._rows import JobRows, ResultsCursor, RunRows, SubmissionRow, has_unread, read_job, read_run
from ._tasktables import refresh_task_rows

if TYPE_CHECKING:
    from .._experiment import Experiment
    from .._scheduler import Job

log = logging.getLogger("xpm.index")

#: Seconds between two writes of queued changes.
FLUSH_INTERVAL = 0.25
#: Queued jobs that trigger a write before the interval ends.
FLUSH_ROWS = 2000
#: Seconds between two looks at the results.jsonl of running jobs (live results).
LIVE_INTERVAL = 0.5
#: Seconds the last write waits for jobs launched just before the end to say RUNNING.
CLOSE_WAIT = 5.0


@dataclass(slots=True)
class _Queued:
    """A job waiting to be written to the index."""

    jobdir: JobDir
    #: Its params and tags must be written too (a submission), not only its status.
    full: bool
    #: Tags and params.json document as written to the directory, when in memory.
    tags: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    #: Nothing in the directory but what the submission wrote: no status or result to read.
    untouched: bool = False

    def merged_with(self, newer: _Queued) -> _Queued:
        """This entry, left from a failed write, under ``newer`` (queued since): the newer
        state wins, the needs and documents of both are kept."""
        return _Queued(
            self.jobdir,
            self.full or newer.full,
            newer.tags if newer.tags is not None else self.tags,
            newer.params if newer.params is not None else self.params,
            newer.untouched and self.untouched,
        )


class Recorder:
    """Records one experiment run, its submissions and its jobs' states in the index."""

    def __init__(self, xp: Experiment, *, interval: float = FLUSH_INTERVAL) -> None:
        self.workdir = xp.workdir
        self.run_key = f"{xp.name}/{xp.run_id}"
        self.record_path: Path = run_record(xp.workdir, xp.name, xp.run_id)
        self._xp = xp
        self.interval = interval
        self.index = IndexDB(xp.workdir)
        self._cond = threading.Condition()
        self._jobs: dict[str, _Queued] = {}  # by identifier
        self._subs: list[SubmissionRow] = []
        self._done: set[str] = set()  # already DONE at submission, tags unchanged
        self._starting: set[str] = set()  # RUNNING for the scheduler, maybe not on disk yet
        # Live results: the jobs not ended yet, and how far their results.jsonl is indexed.
        self._active: dict[str, JobDir] = {}
        self._cursors: dict[str, ResultsCursor] = {}
        self._live_at = 0.0
        self._record_mtime: int | None = None
        self._closed = False
        self._warned: set[str] = set()
        self.failures = 0
        self._thread = threading.Thread(target=self._loop, name="xpm-index", daemon=True)
        self._flush_lock = threading.Lock()
        self.flush()  # the run record, now: `xpm` commands see the run at once
        self._thread.start()

    # --- listeners (any thread) ---------------------------------------------------------------
    def on_submit(self, job: Job) -> None:
        """Queue a new submission of ``job`` (its params, tags and status)."""
        when = job.submission.submitted if job.submission.submitted is not None else time.time()
        with self._cond:
            if job.already_done and not job.submission.tags_changed:
                # DONE is final: when the index already holds this job as DONE, the
                # submission row is all there is to add (checked in one query at flush).
                self._done.add(job.identifier)
            untouched = job.submission.untouched and job.identifier not in self._jobs
            self._jobs[job.identifier] = _Queued(
                job.jobdir, True, dict(job.submission.tags), job.submission.params_doc, untouched
            )
            self._subs.append(SubmissionRow(self.run_key, job.identifier, when))
            self._track(job)
            if len(self._jobs) >= FLUSH_ROWS:
                self._cond.notify_all()

    def on_state(self, job: Job) -> None:
        """Queue a state change of ``job`` (its status and results are read when written)."""
        with self._cond:
            if job.state == "RUNNING":
                self._starting.add(job.identifier)
            queued = self._jobs.get(job.identifier)
            self._jobs[job.identifier] = (
                _Queued(job.jobdir, queued.full, queued.tags, queued.params)
                if queued
                else _Queued(job.jobdir, False)
            )
            self._track(job)
            if len(self._jobs) >= FLUSH_ROWS:
                self._cond.notify_all()

    def _track(self, job: Job) -> None:
        # (Under self._cond.)  Generated, done or failed jobs report nothing more.
        if job.state in TERMINAL_STATES or job.state == "UNSCHEDULED" or job.already_done:
            self._active.pop(job.identifier, None)
        else:
            self._active[job.identifier] = job.jobdir

    # --- writing ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                self._cond.wait(timeout=self.interval)
                if self._closed:
                    return
            self.flush()

    def flush(self) -> None:
        """Write everything queued so far (never raises: failures are logged)."""
        with self._flush_lock:
            with self._cond:
                jobs, self._jobs = self._jobs, {}
                subs, self._subs = self._subs, []
                done, self._done = self._done, set()
            run = self._read_run_if_changed()
            live = self._grown_results(jobs)
            if not jobs and not subs and run is None and not live:
                return
            try:
                if subs:  # on disk first: the run record must hold what the index holds
                    self._xp._flush_submissions()
                for identifier in self._recorded_done(done & jobs.keys()):
                    del jobs[identifier]
                unknown = [i for i, q in jobs.items() if not q.untouched and i not in self._cursors]
                if unknown:
                    with self.index.errors():
                        self._cursors.update(read_cursors(self.index.conn, unknown))
                rows = [
                    read_job(
                        q.jobdir,
                        full=q.full,
                        tags=q.tags,
                        params=q.params,
                        untouched=q.untouched,
                        cursor=self._cursors.get(q.jobdir.identifier),
                    )
                    for q in jobs.values()
                ]
                # A local launch is RUNNING for the scheduler before the job process has
                # written so: read too early, the directory still says SUBMITTED, and
                # nothing else would write the job again before it ends.  Read it again.
                early = {
                    r.job["id"]
                    for r in rows
                    if r.job["id"] in self._starting and r.job.get("state") == "SUBMITTED"
                }
                with self._cond:
                    self._starting -= {r.job["id"] for r in rows} - early
                cursors = dict(self._cursors)
                caught = self.index.write(
                    lambda conn: self._write(conn, run, rows, subs, live, cursors)
                )
                self._cursors.update(caught)
                for r in rows:
                    if r.cursor is not None:
                        self._cursors[r.job["id"]] = r.cursor
                    if r.job.get("state") in TERMINAL_STATES:
                        self._cursors.pop(r.job["id"], None)  # nothing more comes
                if early:  # the state only: params and tags were just written
                    self._requeue({i: _Queued(jobs[i].jobdir, False) for i in early}, [], set())
            except Exception as e:  # noqa: BLE001 - the index is derived: never fail a job
                self.failures += 1
                if self._record_mtime is not None and run is not None:
                    self._record_mtime = None  # try the run record again next time
                if isinstance(e.__cause__ or e, (sqlite3.OperationalError, OSError)):
                    # Full disk, read-only or locked file (the index, or the run record the
                    # submissions go to first): may pass, so the rows wait for the next
                    # write.  Anything else would fail again on the same rows.
                    self._requeue(jobs, subs, done)
                self._warn(e, len(jobs))

    def _requeue(
        self,
        jobs: dict[str, _Queued],
        subs: list[SubmissionRow],
        done: set[str],
    ) -> None:
        """Keep what a failed write held for the next one (a full disk may be freed, a
        damaged file replaced); what was queued meanwhile is newer and wins, but keeps the
        need for params and tags and the documents in memory."""
        with self._cond:
            for identifier, queued in jobs.items():
                newer = self._jobs.get(identifier)
                self._jobs[identifier] = queued if newer is None else queued.merged_with(newer)
            self._subs[:0] = subs
            self._done |= done

    def _recorded_done(self, candidates: set[str]) -> set[str]:
        """Those of ``candidates`` the index already holds as DONE."""
        from ._query import rows_for_jobs

        sql = "SELECT id FROM jobs WHERE state = 'DONE' AND id IN ({ids})"
        return {row[0] for row in rows_for_jobs(self.index, sql, sorted(candidates))}

    def _grown_results(self, queued: dict[str, Any]) -> list[JobDir]:
        """Running jobs (not queued anyway) whose results.jsonl grew since it was read;
        looked at every :data:`LIVE_INTERVAL` seconds: one stat per running job."""
        now = time.monotonic()
        if now - self._live_at < LIVE_INTERVAL:
            return []
        self._live_at = now
        with self._cond:
            active = [d for i, d in self._active.items() if i not in queued]
        grown = []
        for jobdir in active:
            try:
                stat = jobdir.results.stat()
            except OSError:
                continue
            if has_unread(stat, self._cursors.get(jobdir.identifier)):
                grown.append(jobdir)
        return grown

    @staticmethod
    def _write(
        conn: sqlite3.Connection,
        run: RunRows | None,
        rows: list[JobRows],
        subs: list[SubmissionRow],
        live: list[JobDir],
        cursors: dict[str, ResultsCursor],
    ) -> dict[str, ResultsCursor]:
        if run is not None:
            write_runs(conn, [run])
        write_jobs(conn, rows, link=False, tables=False)
        write_submissions(conn, subs, link=False)
        ids = sorted({r.job["id"] for r in rows} | {s.job_id for s in subs})
        link_jobs_by_id(conn, ids)
        refresh_task_rows(
            conn, [r.job["id"] for r in rows] + [s.job_id for s in subs], known_values(rows)
        )
        return catch_up_results(conn, live, cursors) if live else {}

    def _read_run_if_changed(self) -> RunRows | None:
        try:
            mtime = self.record_path.stat().st_mtime_ns
        except OSError:
            return None
        if mtime == self._record_mtime:
            return None
        self._record_mtime = mtime
        return read_run(self.record_path, submissions=False)

    def _warn(self, error: Exception, count: int) -> None:
        text = f"{type(error).__name__}: {error}"
        if text in self._warned:
            return
        self._warned.add(text)
        log.warning(
            "xpm: could not record %d job(s) in the index %s (%s); the jobs are not affected; "
            "xpm tries again at its next write; if the experiment ends first, run "
            "`xpm index rebuild` to bring the index up to date",
            count,
            self.index.path,
            text,
        )

    def _only_starting_left(self) -> bool:
        """Whether what is queued is only jobs read too early (see :meth:`flush`)."""
        with self._cond:
            return bool(self._jobs) and not self._subs and self._jobs.keys() <= self._starting

    def close(self) -> None:
        """Write what is left (the final run record included) and close the index."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()
        # A job launched just before the end (a detached run) may not have written RUNNING
        # yet: its directory says SUBMITTED, which flush() does not record as final.  Wait
        # a little for its job process, so the index agrees with the directory.
        deadline = time.monotonic() + CLOSE_WAIT
        while self._only_starting_left() and time.monotonic() < deadline:
            time.sleep(0.05)
            self.flush()
        if self._only_starting_left():
            with self._cond:
                self._jobs.clear()  # recorded as SUBMITTED: the next reader settles them
        if self._jobs or self._subs:  # still failing at the end: say so, whatever was said
            log.warning(
                "xpm: %d job(s) of this run are not in the index %s; run `xpm index rebuild`",
                len(self._jobs),
                self.index.path,
            )
        self.index.close()


def attach(xp: Experiment) -> Recorder | None:
    """Open the recorder of ``xp`` and subscribe it; None (after a warning) when it cannot."""
    try:
        recorder = Recorder(xp)
    except Exception as e:  # noqa: BLE001 - an unusable index must not stop the experiment
        log.warning(
            "xpm: the index of %s cannot be written (%s: %s); the experiment runs without "
            "it; run `xpm index rebuild` afterwards",
            xp.workdir,
            type(e).__name__,
            e,
        )
        return None
    xp.add_submit_listener(recorder.on_submit)
    xp.scheduler.add_listener(recorder.on_state)
    return recorder


def detach(recorder: Recorder | None) -> None:
    """Close ``recorder`` at the end of the experiment (never raises)."""
    if recorder is None:
        return
    try:
        recorder.close()
    except Exception as e:  # noqa: BLE001
        log.warning("xpm: could not finish writing the index (%s); run `xpm index rebuild`", e)
