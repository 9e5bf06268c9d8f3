"""Array submission: independent jobs launched together on a launcher that has arrays go
as one backend array (in chunks no larger than it allows), and jobs that each depend on one
task of a queued array go as a second array, task for task; the others go one by one.

Mixed into :class:`xpm._scheduler.Scheduler`.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ._vocabulary import arrays_root
from .errors import BackendFullError

if TYPE_CHECKING:
    from ._scheduler import Job
    from .launchers import LaunchedJob, Launcher

#: Independent jobs launched together on a launcher that has arrays go as one array.
ARRAY_MIN = 2
#: While submissions keep coming, jobs for array launchers wait this long for company.
ARRAY_WINDOW = 0.5


class ArrayLaunches:
    """Launching jobs as arrays (a part of :class:`xpm._scheduler.Scheduler`)."""

    _arrays: int

    if TYPE_CHECKING:

        def _unlocked(self) -> AbstractContextManager[None]: ...

        def _launch_one(self, job: Job) -> None: ...

        def _launched(self, job: Job, launched: LaunchedJob) -> None: ...

        def _launch_failed(self, job: Job, error: Exception) -> None: ...

        def _launch_refused(self, jobs: list[Job], error: BackendFullError) -> bool: ...

        def _refused(self, launcher: Launcher) -> BackendFullError | None: ...

        def _release_held(self, launcher: Launcher | None, launched: list[LaunchedJob]) -> None: ...

    def _launch(self, jobs: list[Job]) -> None:
        """Launch prepared jobs: one array submission for independent jobs where possible."""
        groups: dict[int, list[Job]] = {}
        for job in jobs:
            groups.setdefault(id(job.launcher), []).append(job)
        for group in groups.values():
            launcher = group[0].launcher
            independent = [j for j in group if all(d.state == "DONE" for d in j.dependencies)]
            if launcher.supports_arrays and len(independent) >= ARRAY_MIN:
                self._launch_array(launcher, independent)
                group = [j for j in group if j not in independent]
            if launcher.supports_arrays and launcher.supports_dependencies:
                for array_id, by_task in self._one_to_one(group).items():
                    if len(by_task) >= ARRAY_MIN:
                        tasks = sorted(by_task)
                        jobs = [by_task[t] for t in tasks]
                        self._launch_one_array(launcher, jobs, task_ids=tasks, aftercorr=array_id)
                        taken = {id(j) for j in jobs}
                        group = [j for j in group if id(j) not in taken]
            for job in group:
                self._launch_one(job)

    @staticmethod
    def _one_to_one(jobs: list[Job]) -> dict[str, dict[int, Job]]:
        """Jobs whose only dependency is one task of a backend array still queued, by array
        and task: one array of them, task for task (Slurm's ``aftercorr``), replaces one
        submission each (50 Learn -> 50 Evaluate: 2 sbatch calls, not 51)."""
        by_array: dict[str, dict[int, Job]] = {}
        for job in jobs:
            if len(job.dependencies) != 1:
                continue
            dep = job.dependencies[0]
            if dep.launched is None or dep.state == "DONE" or dep.launcher is not job.launcher:
                continue
            array_id, sep, task = dep.launched.launcher_job_id.partition("_")
            if sep and task.isdigit():
                by_array.setdefault(array_id, {}).setdefault(int(task), job)
        return by_array

    def _launch_array(self, launcher: Launcher, jobs: list[Job]) -> None:
        """Submit ``jobs`` as arrays no larger than the backend allows (``max_array_size``)."""
        size = launcher.max_array_size or len(jobs)
        for start in range(0, len(jobs), size):
            chunk = jobs[start : start + size]
            if len(chunk) >= ARRAY_MIN:
                self._launch_one_array(launcher, chunk)
            else:
                self._launch_one(chunk[0])

    def _launch_one_array(self, launcher: Launcher, jobs: list[Job], **how: Any) -> None:
        self._arrays += 1
        array_dir = (
            arrays_root(jobs[0].jobdir.workdir) / f"{time.strftime('%Y%m%d-%H%M%S')}-"
            f"{os.getpid()}-{self._arrays}"
        )
        array_dir.mkdir(parents=True, exist_ok=True)
        try:
            refused = self._refused(launcher)
            if refused is not None:
                raise refused
            with self._unlocked():
                launched = launcher.submit_array([j.jobdir for j in jobs], array_dir, **how)
        except BackendFullError as e:
            shutil.rmtree(array_dir, ignore_errors=True)  # the next try writes its own
            if self._launch_refused(jobs, e):
                return
            for job in jobs:
                self._launch_failed(job, e)
            return
        except Exception as e:  # noqa: BLE001 - a launcher failure fails the jobs, not xpm
            for job in jobs:
                self._launch_failed(job, e)
            return
        for job, one in zip(jobs, launched, strict=True):
            self._launched(job, one)
        self._release_held(launcher, launched)
