"""The scheduler: job graph, states, locks, dedup across processes, dependency waits.

It runs in the experiment process as one background thread.  Job processes are started
through launchers; a job starts when its dependencies are DONE and its launcher has room.
Exactly-once across processes comes from two inter-process locks per job directory:
``lock`` (held by a scheduler only while it decides whether to launch the job and, if so,
claims it with a SUBMITTED event naming its process) and ``running.lock`` (held by the job
process while it runs).  No descriptor stays open per job in flight: another scheduler
leaves a job alone while its claim's process lives, its backend job is alive (re-attach)
or its job process runs.

Re-attaching to backend jobs an earlier run left (xpm/_reattach.py), launching jobs as
arrays (xpm/_arrays.py) and submitting only what a backend has room for (xpm/_room.py) are
parts of :class:`Scheduler` kept in their own modules.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._arrays import ARRAY_WINDOW, ArrayLaunches
from ._jobdir import JobDir
from ._process import process_alive, this_process
from ._reattach import Reattach
from ._room import BackendRoom
from ._vocabulary import ACTIVE_STATES, TERMINAL_STATES, UNSUCCESSFUL_STATES, JobState
from .errors import BackendFullError, LauncherError
from .launchers import LaunchedJob, Launcher, LaunchOutcome

if TYPE_CHECKING:
    from ._submission import JobSubmission
    from ._task import Task

#: How often a job whose lock another process holds is tried again (seconds).
LOCK_RETRY = 0.2
#: A claim made on another host (whose process cannot be checked) is respected this long:
#: by then its job process holds running.lock or its backend job id is recorded.
CLAIM_GRACE = 60.0


@dataclass(eq=False)
class Job:
    """A job as the scheduler sees it: what launching and watching it need.

    What the experiment knows of its submission (task, tags, what it wrote) is
    ``submission`` (:class:`~xpm._submission.JobSubmission`), which the scheduler never reads.
    """

    jobdir: JobDir
    launcher: Launcher
    submission: JobSubmission = field(repr=False)
    dependencies: list[Job] = field(default_factory=list)
    state: JobState = "WAITING"
    reason: str | None = None
    #: Found DONE on disk instead of being launched by this run.
    already_done: bool = False
    launched: LaunchedJob | None = None
    lock: Any = None
    next_try: float = 0.0
    waiting_for_other: bool = False
    #: What the backend said, in this step's batched poll, about the backend job an earlier
    #: run left for this job: ``(launcher job id, outcome or None)``.
    backend_answer: tuple[str, LaunchOutcome | None] | None = field(default=None, repr=False)
    #: Its backend had no room for it at the last try (xpm/_room.py): it is not claimed.
    waiting_for_room: bool = False
    #: It was counted against its backend's room in this pass.
    took_room: bool = field(default=False, repr=False)

    @property
    def task(self) -> Task:
        """The task submitted (from the submission record)."""
        return self.submission.task

    @property
    def identifier(self) -> str:
        return self.jobdir.identifier

    @property
    def task_id(self) -> str:
        return self.jobdir.task_id

    @property
    def name(self) -> str:
        return f"{self.task_id}/{self.identifier[:12]}"


Listener = Callable[[Job], None]


class Scheduler(Reattach, ArrayLaunches, BackendRoom):
    """Starts ready jobs, watches running ones, records outcomes."""

    def __init__(self, max_parallel: int | None = None, poll_floor: float = 0.05) -> None:
        self.max_parallel = max_parallel
        self.jobs: list[Job] = []
        self._pending: list[Job] = []
        self._running: list[Job] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = False
        self._poll_floor = poll_floor
        self._listeners: list[Listener] = []
        self._next_poll: dict[int, float] = {}
        self._arrays = 0
        self._last_enqueue = 0.0
        self._submissions_open = True
        #: Jobs out of ``_pending`` and not yet in ``_running``: being handed to their
        #: launchers, without the lock (see ``_unlocked``).
        self._launching: list[Job] = []  # taken from pending, not running yet
        #: Jobs submitted held whose release failed: tried again at each poll.
        self._held: list[tuple[Launcher, list[LaunchedJob]]] = []
        self._room_by_launcher = {}  # typed in BackendRoom
        self.error: BaseException | None = None
        #: Provenance recorded in the event that starts each attempt (the experiment's run,
        #: git states and launcher description: see ``Experiment.attempt_provenance``).
        self.provenance: Callable[[Job], dict[str, Any]] | None = None

    # --- public ------------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(job)`` on every state change (from the scheduler thread)."""
        self._listeners.append(listener)

    def enqueue(self, job: Job) -> None:
        """Schedule ``job``; it starts when its dependencies are DONE."""
        if job.launcher.notifies_exit:
            job.launcher.on_exit = self._wake
        if type(job.launcher).release is not Launcher.release:
            job.launcher.hold_until_released = True  # see _release_held
        with self._cond:
            self._last_enqueue = time.monotonic()
            self.jobs.append(job)
            self._pending.append(job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="xpm-scheduler", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def wait(self, on_tick: Callable[[], None] | None = None, tick: float = 0.5) -> None:
        """Block until every enqueued job has ended."""
        while True:
            with self._cond:
                if self.error is not None:
                    raise self.error
                if not self._pending and not self._running and not self._launching:
                    return
                self._cond.wait(timeout=tick)
            if on_tick is not None:
                on_tick()

    def close_submissions(self) -> None:
        """No more jobs will come: launch what array launchers were holding back."""
        with self._cond:
            self._submissions_open = False
            self._cond.notify_all()

    def wait_submitted(self) -> list[Job]:
        """Block until no job is waiting to be handed to its launcher but those waiting for
        room in their backend (returned: a detaching run leaves them to a later run)."""
        while True:
            with self._cond:
                if self.error is not None:
                    raise self.error
                if not self._launching:
                    later = self.waiting_for_room()
                    if len(later) == len(self._pending):
                        return later
                self._cond.wait(timeout=0.5)

    def held_by_this_process(self) -> list[Job]:
        """Pending jobs that wait for jobs they depend on (which no backend holds for
        them) or for a free slot: only this process can start them, so a detaching run
        must wait for them to start."""
        with self._cond:
            held: list[Job] = []
            starting: list[Job] = list(self._launching)
            later = {id(j) for j in self.waiting_for_room()}  # left to a later run
            for job in self._pending:
                if id(job) in later:
                    continue
                if any(
                    d.state != "DONE" and not self._backend_dependency(job, d)
                    for d in job.dependencies
                ) or not self._has_room(job, starting):
                    held.append(job)
                else:
                    starting.append(job)
            return held

    def detach(self) -> list[Job]:
        """Stop watching: release every lock and return the jobs left running in backends."""
        with self._cond:
            self._stop = True
            running = list(self._running)
            self._running.clear()
            self._cond.notify_all()
        for job in running:
            self._release(job)
        return running

    def cancel_all(self, reason: str) -> None:
        """Stop every job of this scheduler: running ones are terminated and recorded."""
        with self._cond:
            self._stop = True
            running = list(self._running)
            pending = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        # Let the scheduler thread finish its pass: from here on this thread alone acts.
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        with self._cond:  # launched by that pass (backend commands run without the lock)
            known = {id(j) for j in running}
            running += [j for j in self._running if id(j) not in known]
        by_launcher: dict[int, list[Job]] = {}
        for job in running:
            by_launcher.setdefault(id(job.launcher), []).append(job)
        for jobs in by_launcher.values():
            launched = [j.launched for j in jobs if j.launched is not None]
            try:
                jobs[0].launcher.cancel(launched)
            except Exception as e:  # noqa: BLE001 - report and go on cancelling the rest
                print(f"xpm: could not cancel jobs: {e}", file=sys.stderr)
        with self._cond:  # _finish and _set_state notify waiters: they need the lock
            for job in running:
                if job.jobdir.is_done():
                    self._finish(job, "DONE", None)
                    continue
                if not job.jobdir.failed_marker.exists():
                    job.jobdir.end("CANCELLED", reason)
                self._finish(job, "CANCELLED", reason)
            for job in pending:
                self._set_state(job, "CANCELLED", reason)
            self._running.clear()
            self._cond.notify_all()

    def shutdown(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- loop --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _unlocked(self) -> Iterator[None]:
        """Run a backend command (sbatch, squeue...) without the scheduler's lock, which the
        scheduler thread holds otherwise: ``submit()``, ``wait()`` and ``detach()`` must not
        wait behind a command that Slurm may retry for minutes."""
        self._cond.release()
        try:
            yield
        finally:
            self._cond.acquire()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _loop(self) -> None:
        try:
            while True:
                with self._cond:
                    if self._stop:
                        return
                    timeout = self._step()
                    self._cond.wait(timeout=timeout)
        except BaseException as e:  # surface scheduler bugs in the waiting thread
            with self._cond:
                self.error = e
                self._cond.notify_all()

    def _step(self) -> float:
        """One pass over pending and running jobs; returns how long to sleep."""
        now = time.monotonic()
        sleep = 1.0
        self._collect(now)
        startable: list[Job] = []
        candidates: list[Job] = []
        for job in list(self._pending):
            deps = job.dependencies
            if any(d.state in UNSUCCESSFUL_STATES for d in deps):
                self._pending.remove(job)
                failed = next(d for d in deps if d.state in UNSUCCESSFUL_STATES)
                reason = f"dependency failed ({failed.name})"
                job.jobdir.end("FAILED", reason)
                self._set_state(job, "FAILED", reason)
                continue
            if not all(d.state == "DONE" or self._backend_dependency(job, d) for d in deps):
                continue
            if job.next_try > now:
                sleep = min(sleep, job.next_try - now)
                continue
            if self._submissions_open and job.launcher.supports_arrays:
                hold = self._last_enqueue + ARRAY_WINDOW - now
                if hold > 0:  # more jobs may come: launch them together as one array
                    sleep = min(sleep, hold)
                    continue
            full = self._room_full(job, now)
            if full is not None:  # its backend is full: considered again when asked again
                sleep = min(sleep, full)
                continue
            if not self._has_room(job, candidates):
                continue
            candidates.append(job)
        self._ask_backends(candidates)
        self._measure_room(candidates, now)
        deferred: dict[int, list[Job]] = {}
        for job in candidates:
            if self._stop:  # cancelled while a backend command ran: pending is cleared
                return 1.0
            if not self._take_room(job):
                deferred.setdefault(id(job.launcher), []).append(job)
                continue
            ready = self._prepare(job)
            if not ready:
                self._give_room_back(job)
            if ready is None:
                self._pending.remove(job)  # settled without launching (DONE, re-attached)
            elif ready:
                self._pending.remove(job)
                startable.append(job)
            else:
                job.next_try = now + LOCK_RETRY
                sleep = min(sleep, LOCK_RETRY)
        self._say_waiting(deferred)
        self._launching = startable
        try:
            self._launch(startable)
        finally:
            self._launching = []
        for launcher in {id(j.launcher): j.launcher for j in self._running}.values():
            if launcher.poll_interval is not None:
                sleep = min(sleep, launcher.poll_interval)
        return max(sleep, self._poll_floor) if self._pending or self._running else 1.0

    @staticmethod
    def _backend_dependency(job: Job, dep: Job) -> bool:
        """Whether ``dep`` can be left to the backend (e.g. Slurm's afterok) for ``job``."""
        return (
            job.launcher.supports_dependencies
            and dep.launcher is job.launcher
            and dep.launched is not None
            and dep.state in ACTIVE_STATES
        )

    def _has_room(self, job: Job, starting: list[Job]) -> bool:
        busy = len(self._running) + len(starting)
        if self.max_parallel is not None and busy >= self.max_parallel:
            return False
        limit = job.launcher.max_parallel
        if limit is None:
            return True
        same = sum(1 for j in (*self._running, *starting) if j.launcher is job.launcher)
        return same < limit

    def _prepare(self, job: Job) -> bool | None:
        """Take the job's lock and check it still needs a launch.

        True: ready to launch.  False: another process holds it, try again later.
        None: settled without a launch (found DONE, or re-attached to a live backend job).
        """
        import fasteners

        jobdir = job.jobdir
        lock = fasteners.InterProcessLock(str(jobdir.lock))
        if not lock.acquire(blocking=False):
            # fasteners keeps the file open after a failed attempt: close it, or each
            # retry while another process holds the job leaks a descriptor.
            close = getattr(lock, "_do_close", None)  # not public in fasteners
            if close is not None:
                close()
            self._note_waiting(job)
            return False
        # Holding the lock, briefly: no other scheduler decides about this job meanwhile.
        # A job process left by a crashed scheduler may still run it (its running.lock
        # tells), a backend may still hold it queued from a detached run (its status names
        # the backend's id), or another live scheduler may have claimed it.
        try:
            if jobdir.is_done():
                job.already_done = True
                self._set_state(job, "DONE", None)
                return None
            reattached = self._reattach(job)
            if reattached is None:
                return False
            if reattached:
                return None
            if jobdir.running_lock_held() or self._claimed_elsewhere(jobdir):
                self._note_waiting(job)
                return False
            self._begin(job)  # the claim: from now on other schedulers leave the job alone
            jobdir.add_event(None, owner=[os.getpid(), _HOST])
            return True
        finally:
            lock.release()

    @staticmethod
    def _claimed_elsewhere(jobdir: JobDir) -> bool:
        """Whether another live scheduler claimed the job's current attempt."""
        from ._atomicio import read_json_lines

        owner = None
        for event in read_json_lines(jobdir.events):
            if event.get("state") is not None:
                owner = event if event.get("state") == "SUBMITTED" else None
            elif owner is not None and isinstance(event.get("owner"), list):
                owner = {**owner, "owner": event["owner"]}
        if owner is None or not isinstance(owner.get("owner"), list) or len(owner["owner"]) != 2:
            return False  # ended, running (running.lock tells) or never claimed
        pid, host = owner["owner"]
        if host == _HOST:
            return pid != os.getpid() and isinstance(pid, int) and process_alive(pid)
        return time.time() - float(owner.get("time") or 0) < CLAIM_GRACE

    def _begin(self, job: Job) -> None:
        jobdir = job.jobdir
        jobdir.rotate_for_new_attempt()
        provenance = self.provenance(job) if self.provenance is not None else {}
        # Who launched it: a reader can tell a job whose experiment died before it started.
        jobdir.add_event(
            "SUBMITTED", launcher=job.launcher.kind, submitter=this_process(), **provenance
        )

    def _launched(self, job: Job, launched: LaunchedJob) -> None:
        job.launched = launched
        job.jobdir.add_event(None, launcher_job_id=launched.launcher_job_id)
        self._running.append(job)
        self._set_state(job, "RUNNING" if job.launcher.starts_at_once else "SUBMITTED", None)

    def _launch_failed(self, job: Job, error: Exception) -> None:
        reason = f"launch failed: {error}"
        job.jobdir.end("FAILED", reason)
        self._release(job)
        self._set_state(job, "FAILED", reason)

    def _launch_one(self, job: Job) -> None:
        backend_deps = [d.launched for d in job.dependencies if d.launched and d.state != "DONE"]
        try:
            refused = self._refused(job.launcher)
            if refused is not None:
                raise refused
            with self._unlocked():
                launched = job.launcher.submit(job.jobdir, backend_deps)
        except BackendFullError as e:
            if not self._launch_refused([job], e):
                self._launch_failed(job, e)
            return
        except Exception as e:  # noqa: BLE001 - a launcher failure fails the job, not xpm
            self._launch_failed(job, e)
            return
        self._launched(job, launched)
        self._release_held(job.launcher, [launched])

    def _release_held(self, launcher: Launcher | None, launched: list[LaunchedJob]) -> None:
        """Let jobs submitted held start, now that their ids are on disk (a crash before
        this leaves held jobs that never run, not second copies); failures retried at polls."""
        if launcher is not None:
            self._held.append((launcher, launched))
        held, self._held = self._held, []
        for owner, jobs in held:
            try:
                with self._unlocked():
                    owner.release(jobs)
            except LauncherError as e:
                print(f"xpm: cannot release held jobs ({e}); retrying", file=sys.stderr)
                self._held.append((owner, jobs))

    def _note_waiting(self, job: Job) -> None:
        if not job.waiting_for_other:
            job.waiting_for_other = True
            print(
                f"xpm: {job.name} is being run by another process; waiting for it",
                file=sys.stderr,
            )

    def _collect(self, now: float) -> None:
        if self._held:
            self._release_held(None, [])
        if not self._running:
            return
        by_launcher: dict[int, list[Job]] = {}
        for job in self._running:
            by_launcher.setdefault(id(job.launcher), []).append(job)
        for key, jobs in by_launcher.items():
            launcher = jobs[0].launcher
            if launcher.poll_interval is not None:
                if self._next_poll.get(key, 0.0) > now:
                    continue
                self._next_poll[key] = now + launcher.poll_interval
            launched = [j.launched for j in jobs if j.launched is not None]
            try:
                with self._unlocked():
                    outcomes = launcher.poll(launched)
            except LauncherError as e:
                # The backend did not answer (controller down...): keep the jobs, ask again.
                print(f"xpm: cannot poll {launcher.kind} jobs ({e}); retrying", file=sys.stderr)
                continue
            if self._stop:  # detached or cancelled during the poll: their owner decides
                return
            for job in jobs:
                if job.launched is not None:
                    self._apply(job, outcomes.get(job.launched.launcher_job_id))

    def _apply(self, job: Job, outcome: LaunchOutcome | None) -> None:
        jobdir = job.jobdir
        if outcome is not None and outcome.state not in TERMINAL_STATES:
            if outcome.state != job.state:
                self._set_state(job, outcome.state, None)
            return
        # The backend says the job ended (or forgot it): the one rule settles it.
        state, reason = jobdir.settle(outcome, "its launcher no longer knows it")
        self._finish(job, state, reason)

    def _finish(self, job: Job, state: JobState, reason: str | None) -> None:
        if job in self._running:
            self._running.remove(job)
        self._release(job)
        self._set_state(job, state, reason)

    def _release(self, job: Job) -> None:
        if job.lock is not None:
            with contextlib.suppress(Exception):  # already released
                job.lock.release()
            job.lock = None

    def _set_state(self, job: Job, state: JobState, reason: str | None) -> None:
        job.state = state
        job.reason = reason
        for listener in self._listeners:
            listener(job)
        self._cond.notify_all()


_HOST = socket.gethostname()
