"""Room in a backend: how many more jobs it accepts (Slurm: ``MaxJobCount`` less the jobs
its controller holds), asked outside the scheduler's lock before jobs are claimed.  Only
what fits is submitted; the rest waits, without a claim on disk, and goes as room frees
(asked again at most once per poll interval).  A submission the backend refuses for lack of
room leaves its jobs waiting, not failed.  A detaching run leaves the waiting jobs for a
later run of the experiment, which submits them.

Mixed into :class:`xpm._scheduler.Scheduler`.
"""

from __future__ import annotations

import sys
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._vocabulary import TERMINAL_STATES, JobState
from .errors import BackendFullError, LauncherError

if TYPE_CHECKING:
    from ._scheduler import Job
    from .launchers import Launcher

#: Seconds between two questions about room to a launcher without a poll interval.
ROOM_RECHECK = 1.0


@dataclass
class _Room:
    """What the scheduler knows of one launcher's room."""

    #: Jobs it still accepts, counted down as they are submitted (None: not asked yet).
    left: int | None = None
    #: The launcher sets no limit: never asked again.
    unlimited: bool = False
    #: When it may be asked again (monotonic seconds).
    next_check: float = 0.0
    #: Jobs that waited for room at the last pass.
    waiting: int = 0
    #: The line saying jobs wait for room was printed (once a run: a 10,000-job sweep
    #: waits and goes on many times over hours).
    said: bool = False
    #: The backend's refusal, until it is asked again: the other submissions of the pass
    #: wait at once instead of each being refused (an sbatch retries for two minutes first).
    refused: BackendFullError | None = None


class BackendRoom:
    """Submitting only what a backend has room for (a part of :class:`xpm._scheduler.Scheduler`)."""

    _pending: list[Job]
    _running: list[Job]
    #: What is known of each launcher's room, by ``id(launcher)``.
    _room_by_launcher: dict[int, _Room]
    #: The run detaches once its jobs are submitted: jobs without room are left to a later
    #: run (its detach line says so), not submitted as room frees.
    detaching: bool = False

    if TYPE_CHECKING:

        def _unlocked(self) -> AbstractContextManager[None]: ...

        def _set_state(self, job: Job, state: JobState, reason: str | None) -> None: ...

    @staticmethod
    def _recheck(launcher: Launcher) -> float:
        return launcher.poll_interval or ROOM_RECHECK

    def _room_full(self, job: Job, now: float) -> float | None:
        """Seconds until ``job``'s launcher, known to be full, may be asked again (None: it
        may have room): such jobs are not even considered until then, so a pass over
        10,000 jobs waiting for room costs nothing."""
        room = self._room_by_launcher.get(id(job.launcher))
        if room is None or room.unlimited or room.left is None or room.left > 0:
            return None
        if room.next_check <= now:
            return None
        return room.next_check - now

    @staticmethod
    def _needs_room(job: Job) -> bool:
        """Whether launching ``job`` adds a job to its backend: not when it is done, nor
        when an earlier run left it there (it is re-attached)."""
        answer = job.backend_answer
        if answer is not None and answer[1] is not None and answer[1].state not in TERMINAL_STATES:
            return False
        return not job.jobdir.is_done()

    def _measure_room(self, candidates: list[Job], now: float) -> None:
        """Ask each launcher of ``candidates`` whose known room is short of what they need
        (and whose next question is due) how many jobs it accepts: one question (Slurm: one
        squeue) per launcher, without the scheduler's lock.  Jobs that add nothing to the
        backend (done, re-attached) need none: re-running a detached sweep asks nothing."""
        need: dict[int, int] = {}
        launchers: dict[int, Launcher] = {}
        for job in candidates:
            if not self._needs_room(job):
                continue
            key = id(job.launcher)
            launchers[key] = job.launcher
            need[key] = need.get(key, 0) + 1
        for key, wanted in need.items():
            room = self._room_by_launcher.setdefault(key, _Room())
            if room.unlimited or room.next_check > now:
                continue
            if room.left is not None and room.left >= wanted:
                continue
            launcher = launchers[key]
            try:
                with self._unlocked():
                    left = launcher.room()
            except LauncherError as e:
                # Not knowing is no reason to hold the jobs back: a refusing sbatch says so.
                print(f"xpm: cannot ask {launcher.kind} for room ({e})", file=sys.stderr)
                left = wanted
            room.next_check = time.monotonic() + self._recheck(launcher)
            room.refused = None
            if left is None:
                room.unlimited = True
            else:
                room.left = left

    def _take_room(self, job: Job) -> bool:
        """Count ``job`` against its launcher's room before it is claimed; False: there is
        none, the job waits (nothing written)."""
        room = self._room_by_launcher.get(id(job.launcher))
        if room is None or room.unlimited or room.left is None or not self._needs_room(job):
            job.took_room = False
            return True
        if room.left > 0:
            room.left -= 1
            job.took_room = True
            job.waiting_for_room = False
            return True
        job.waiting_for_room = True
        job.backend_answer = None  # asked again when room frees: the answer will be old
        return False

    def _give_room_back(self, job: Job) -> None:
        """``job`` took room but was not launched (found done, or another process has it)."""
        room = self._room_by_launcher.get(id(job.launcher))
        if job.took_room and room is not None and room.left is not None:
            room.left += 1
        job.took_room = False

    def _say_waiting(self, deferred: dict[int, list[Job]]) -> None:
        """One line, once a run, when jobs of a launcher first wait for room (a detaching run
        says it in its detach line instead)."""
        for key, room in self._room_by_launcher.items():
            jobs = deferred.get(key, [])
            if jobs and not room.said and not self.detaching:
                room.said = True
                launcher = jobs[0].launcher
                print(
                    f"xpm: {launcher.kind} has no room for more jobs now: {len(jobs)} job(s) "
                    f"wait, and are submitted as room frees (asked every "
                    f"{self._recheck(launcher):g} s)",
                    file=sys.stderr,
                )
            room.waiting = len(jobs)

    def _launch_refused(self, jobs: list[Job], error: BackendFullError) -> bool:
        """The backend refused ``jobs`` (claimed, not submitted) for lack of room: they wait
        again, their claim withdrawn on disk.  False: fail them instead, because only this
        user's jobs could make room and none is in flight (waiting would never end)."""
        launcher = jobs[0].launcher
        if error.own_jobs_free_it and not any(j.launcher is launcher for j in self._running):
            return False
        room = self._room_by_launcher.setdefault(id(launcher), _Room())
        room.left = 0
        room.next_check = time.monotonic() + self._recheck(launcher)
        said, room.refused = room.refused, error
        reason = f"not submitted: {error}; waits for room"
        for job in jobs:
            # Withdraws the SUBMITTED claim: the job is not in the backend, and no other
            # process should wait for this one to submit it (a detached run may end now).
            job.jobdir.add_event("UNSCHEDULED", reason=reason)
            job.took_room = False
            job.waiting_for_room = True
            self._pending.append(job)
            self._set_state(job, "WAITING", None)
        if said is None:
            print(f"xpm: {error}: {len(jobs)} job(s) wait for room", file=sys.stderr)
        return True

    def _refused(self, launcher: Launcher) -> BackendFullError | None:
        """The refusal ``launcher``'s backend gave in this pass, if any."""
        room = self._room_by_launcher.get(id(launcher))
        return room.refused if room is not None else None

    def waiting_for_room(self) -> list[Job]:
        """Pending jobs that wait for room in their backend, or for jobs that do: what a
        detaching run leaves to a later run of the experiment (call with the lock held)."""
        waiting: set[int] = {id(j) for j in self._pending if j.waiting_for_room}
        pending = {id(j) for j in self._pending}
        changed = True
        while changed:  # jobs depending on waiting ones wait too, however deep
            changed = False
            for job in self._pending:
                if id(job) not in waiting and any(
                    id(d) in waiting and id(d) in pending for d in job.dependencies
                ):
                    waiting.add(id(job))
                    changed = True
        return [j for j in self._pending if id(j) in waiting]
