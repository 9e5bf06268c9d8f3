"""Re-attaching: a job that an earlier (detached) run left queued or running in its
backend (Slurm...) is watched again instead of being launched a second time; the backend is
asked once per launcher for every such job about to be prepared.

Mixed into :class:`xpm._scheduler.Scheduler`.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from ._vocabulary import ACTIVE_STATES, TERMINAL_STATES, JobState
from .errors import LauncherError
from .launchers import LaunchedJob

if TYPE_CHECKING:
    from ._scheduler import Job


#: Re-attached jobs named one by one; past that, one line says more were (a detached
#: 10,000-job sweep run again would print 10,000 lines).
REATTACH_LINES = 5


class Reattach:
    """Re-attaching to backend jobs (a part of :class:`xpm._scheduler.Scheduler`)."""

    _running: list[Job]
    #: Jobs re-attached so far in this run.
    _reattached: int = 0

    if TYPE_CHECKING:

        def _unlocked(self) -> AbstractContextManager[None]: ...

        def _set_state(self, job: Job, state: JobState, reason: str | None) -> None: ...

    @staticmethod
    def _left_in_backend(job: Job) -> LaunchedJob | None:
        """The backend job an earlier (detached) run left for ``job``'s current attempt."""
        if not job.launcher.reattachable:
            return None
        status = job.jobdir.read_status()
        if status.state not in ACTIVE_STATES or status.launcher != job.launcher.kind:
            return None
        if not status.launcher_job_id:
            return None
        return LaunchedJob(job.jobdir, status.launcher_job_id)

    def _ask_backends(self, jobs: list[Job]) -> None:
        """One poll per launcher for every job about to be prepared that an earlier run left
        in its backend: re-attaching a detached sweep costs one squeue, not one per job."""
        by_launcher: dict[int, list[tuple[Job, LaunchedJob]]] = {}
        for job in jobs:
            if job.backend_answer is None:
                left = self._left_in_backend(job)
                if left is not None:
                    by_launcher.setdefault(id(job.launcher), []).append((job, left))
        for pairs in by_launcher.values():
            try:
                with self._unlocked():
                    outcomes = pairs[0][0].launcher.poll([left for _, left in pairs])
            except LauncherError:
                continue  # each job asks again in _reattach
            for job, left in pairs:
                job.backend_answer = (left.launcher_job_id, outcomes.get(left.launcher_job_id))

    def _reattach(self, job: Job) -> bool | None:
        """Re-attach ``job`` to the backend job an earlier run left (True), or not (False);
        None: the backend cannot be asked now (try again later, never launch a copy)."""
        launcher = job.launcher
        candidate = self._left_in_backend(job)
        if candidate is None:
            return False
        answer, job.backend_answer = job.backend_answer, None
        if answer is not None and answer[0] == candidate.launcher_job_id:
            outcome = answer[1]
        else:
            try:
                with self._unlocked():
                    outcome = launcher.poll([candidate]).get(candidate.launcher_job_id)
            except LauncherError as e:
                print(
                    f"xpm: cannot ask {launcher.kind} about {job.name} ({e}); retrying",
                    file=sys.stderr,
                )
                return None
        if outcome is None or outcome.state in TERMINAL_STATES:
            return False
        job.launched = candidate
        self._running.append(job)
        self._reattached += 1
        if self._reattached <= REATTACH_LINES:
            print(
                f"xpm: {job.name} is still {outcome.state.lower()} as {launcher.kind} job "
                f"{candidate.launcher_job_id}; re-attached",
                file=sys.stderr,
            )
        elif self._reattached == REATTACH_LINES + 1:
            print(
                f"xpm: more jobs still in {launcher.kind} are re-attached (not named one by "
                "one; `xpm jobs list --state submitted --state running` lists them)",
                file=sys.stderr,
            )
        self._set_state(job, outcome.state, None)
        return True
