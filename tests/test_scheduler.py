"""The scheduler against the launcher contract, with a launcher written here.

``QueueLauncher`` is a third backend, the way a user would add one: it declares its
abilities on the class (arrays, a size limit, no immediate start) and the scheduler must
use exactly those, never probing for methods or checking the kind.  Its jobs are real:
it runs the command the scheduler hands it (``python -m xpm.run JOBDIR``) in a real
subprocess, one per poll, as a queue would.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from xpm_test_tasks import Count, Learn, Model

from xpm._experiment import experiment
from xpm._jobdir import JobDir
from xpm.launchers import LaunchedJob, Launcher, LaunchOutcome
from xpm.launchers.slurm import SlurmLauncher
from xpm.run import job_command


class QueueLauncher(Launcher):
    """Queues jobs; each poll runs the oldest queued job to its end."""

    kind: ClassVar[str] = "queue"
    poll_interval = 0.05

    def __init__(self, *, arrays: bool, array_size: int | None = None) -> None:
        self._arrays = arrays
        self._array_size = array_size
        self.queue: list[tuple[str, list[str], dict[str, str]]] = []
        self.states: dict[str, LaunchOutcome] = {}
        self.single_submissions = 0
        self.array_sizes: list[int] = []
        self.commands: dict[str, list[str]] = {}
        self._next = 0

    @property
    def supports_arrays(self) -> bool:  # type: ignore[override]
        return self._arrays

    @property
    def max_array_size(self) -> int | None:
        return self._array_size

    def _queue(self, jobdir: JobDir, command: Sequence[str], env: dict[str, str]) -> str:
        self._next += 1
        job_id = f"q{self._next}"
        self.queue.append((job_id, list(command), env))
        self.commands[str(jobdir.path)] = list(command)
        self.states[job_id] = LaunchOutcome("SUBMITTED")
        return job_id

    def submit(self, jobdir: JobDir, dependencies: Sequence[LaunchedJob] = ()) -> LaunchedJob:
        assert not dependencies, "this launcher does not take dependencies"
        self.single_submissions += 1
        command, env = self.job_command(jobdir), self.job_environment()
        return LaunchedJob(jobdir, self._queue(jobdir, command, env))

    def submit_array(
        self,
        jobdirs: Sequence[JobDir],
        array_dir: Path,
        dependencies: Sequence[LaunchedJob] = (),
        task_ids: Sequence[int] | None = None,
        aftercorr: str | None = None,
    ) -> list[LaunchedJob]:
        assert self._arrays, "submit_array called on a launcher that declares no arrays"
        limit = self._array_size
        assert limit is None or len(jobdirs) <= limit, f"array of {len(jobdirs)} > {limit}"
        self.array_sizes.append(len(jobdirs))
        env = self.job_environment()
        return [LaunchedJob(d, self._queue(d, self.job_command(d), env)) for d in jobdirs]

    def poll(self, jobs: list[LaunchedJob]) -> dict[str, LaunchOutcome]:
        if self.queue:
            job_id, command, env = self.queue.pop(0)
            self.states[job_id] = LaunchOutcome("RUNNING")
            done = subprocess.run(command, env={**os.environ, **env}, check=False, timeout=120)
            self.states[job_id] = (
                LaunchOutcome("DONE")
                if done.returncode == 0
                else LaunchOutcome("FAILED", f"exit {done.returncode}", done.returncode)
            )
        return {j.launcher_job_id: self.states[j.launcher_job_id] for j in jobs}

    def cancel(self, jobs: list[LaunchedJob]) -> None:
        for job in jobs:
            self.states[job.launcher_job_id] = LaunchOutcome("CANCELLED", "cancelled")


def _states(jobdirs: list[JobDir]) -> list[str]:
    return [d.read_status().state for d in jobdirs]


def test_arrays_are_split_to_the_declared_size(tmp_path: Path) -> None:
    launcher = QueueLauncher(arrays=True, array_size=3)
    counter = tmp_path / "counter.txt"
    with experiment(tmp_path / "wd", "queue", progress=False, launcher=launcher):
        tasks = [Count(n=i, counter=str(counter)) for i in range(7)]
        for task in tasks:
            task.submit()
    jobdirs = [t.__xpm_jobdir__ for t in tasks]
    assert _states(jobdirs) == ["DONE"] * 7
    assert sorted(counter.read_text().split("\n")[:-1]) == sorted(f"count {i}" for i in range(7))
    # 7 jobs, at most 3 per array: two arrays of 3, and the last one alone.
    assert sorted(launcher.array_sizes) == [3, 3] and launcher.single_submissions == 1
    # The command is the job side's own, and the events say who launched each job.
    for d in jobdirs:
        assert launcher.commands[str(d.path)] == job_command(d.path)
        assert d.read_status().launcher == "queue"


def test_a_launcher_without_arrays_gets_one_submission_per_job(tmp_path: Path) -> None:
    launcher = QueueLauncher(arrays=False)
    with experiment(tmp_path / "wd", "queue", progress=False, launcher=launcher):
        tasks = [Count(n=i) for i in range(5)]
        for task in tasks:
            task.submit()
    assert _states([t.__xpm_jobdir__ for t in tasks]) == ["DONE"] * 5
    assert launcher.array_sizes == [] and launcher.single_submissions == 5


def test_dependencies_wait_in_the_scheduler_when_the_backend_cannot_hold_them(
    tmp_path: Path,
) -> None:
    """``supports_dependencies`` is False: the Evaluate job is submitted only once its
    Learn job is DONE (the launcher asserts it is never handed a dependency)."""
    from xpm_test_tasks import Evaluate

    launcher = QueueLauncher(arrays=False)
    with experiment(tmp_path / "wd", "queue", progress=False, launcher=launcher):
        learned = Learn(model=Model(n_layers=3), epochs=1).submit()
        evaluate = Evaluate(model=learned)
        evaluate.submit()
    assert evaluate.__xpm_jobdir__.read_status().state == "DONE"
    assert launcher.single_submissions == 2


def test_a_queued_launcher_reports_submitted_before_running(tmp_path: Path) -> None:
    """``starts_at_once`` is False: a job handed over is SUBMITTED, not RUNNING."""
    launcher = QueueLauncher(arrays=False)
    seen: list[str] = []
    with experiment(tmp_path / "wd", "queue", progress=False, launcher=launcher) as xp:
        xp.scheduler.add_listener(lambda job: seen.append(job.state))
        Count(n=1).submit()
    assert seen.index("SUBMITTED") < seen.index("DONE")
    assert "RUNNING" not in seen[: seen.index("SUBMITTED")]


def test_a_recorded_launcher_is_rebuilt_from_its_description(tmp_path: Path) -> None:
    """What each attempt records (``describe()``) gives the same launcher back (#17.1)."""
    from xpm.errors import LauncherError
    from xpm.launchers import LocalLauncher
    from xpm.launchers._kinds import launcher_from_description
    from xpm.launchers.slurm import SlurmLauncher

    slurm = SlurmLauncher(partition="gpu", time="1:00:00", binpath=tmp_path, options={"hold": True})
    again = launcher_from_description(slurm.describe())
    assert isinstance(again, SlurmLauncher) and again.describe() == slurm.describe()
    assert again.binpath == tmp_path
    local = launcher_from_description(LocalLauncher(max_parallel=3).describe())
    assert isinstance(local, LocalLauncher) and local.describe()["max_parallel"] == 3
    # Recorded by an older xpm: no description, or options this one does not take.
    assert isinstance(launcher_from_description(None, "slurm"), SlurmLauncher)
    old = launcher_from_description({"kind": "slurm", "retired_option": 1})
    assert isinstance(old, SlurmLauncher) and old.describe() == {"kind": "slurm"}
    with pytest.raises(LauncherError, match="unknown launcher kind 'pbs' and no class recorded"):
        launcher_from_description({"kind": "pbs"})
    # A recorded class must be of the recorded kind.
    with pytest.raises(LauncherError, match="is not a Launcher of that kind"):
        launcher_from_description({"kind": "slurm", "class": "xpm.launchers:LocalLauncher"})
    with pytest.raises(LauncherError, match="is not a Launcher of that kind"):
        launcher_from_description({"kind": "pbs", "class": "xpm.launchers:LocalLauncher"})
    # One unknown option does not throw away the others: the configured binpath stays.
    mixed = launcher_from_description(
        {"kind": "slurm", "binpath": str(tmp_path), "retired_option": 1}
    )
    assert isinstance(mixed, SlurmLauncher) and mixed.binpath == tmp_path


class LabSlurm(SlurmLauncher):
    """A lab's Slurm launcher: xpm's, with a default partition and one option of its own."""

    def __init__(self, *, project: str = "nlp", **options: Any) -> None:
        options.setdefault("partition", "lab")
        super().__init__(**options)
        self.project = project

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "project": self.project}


def test_a_lab_subclass_of_a_known_kind_is_rebuilt_as_itself(tmp_path: Path) -> None:
    """``xpm jobs list/kill`` must rebuild a lab's subclass, not plain SlurmLauncher: its
    class is recorded and preferred, and its own and inherited options come back (#17.1)."""
    from xpm.launchers import recorded_description
    from xpm.launchers._kinds import launcher_from_description

    lab = LabSlurm(project="vision", binpath=tmp_path, time="2:00:00")
    described = recorded_description(lab)
    assert described["class"] == f"{__name__}:LabSlurm"
    assert described["binpath"] == str(tmp_path) and described["partition"] == "lab"
    again = launcher_from_description(json.loads(json.dumps(described)))
    assert type(again) is LabSlurm
    assert (again.project, again.binpath, again.time) == ("vision", tmp_path, "2:00:00")
    assert recorded_description(again) == described
    # The lab's module gone (another machine): xpm's own Slurm launcher, options kept.
    moved = launcher_from_description({**described, "class": "lab_gone.launchers:LabSlurm"})
    assert type(moved) is SlurmLauncher and moved.binpath == tmp_path


class RegisteredQueue(LabSlurm):
    """A kind a lab registers in its experiment's process only."""

    kind = "labqueue"


def test_a_kind_registered_in_one_process_records_its_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kind added to KINDS at run time (to use it from launchers.yaml) is unknown to the
    next process's `xpm jobs list` or `kill`: its class is recorded all the same (a review
    found it left out, so the jobs could not be checked or stopped later)."""
    from xpm.launchers import KINDS, recorded_description
    from xpm.launchers._kinds import launcher_from_description

    path = f"{__name__}:RegisteredQueue"
    monkeypatch.setitem(KINDS, "labqueue", path)
    described = recorded_description(RegisteredQueue(binpath=tmp_path))
    assert described["class"] == path
    monkeypatch.delitem(KINDS, "labqueue")  # the next process never registered it
    again = launcher_from_description(json.loads(json.dumps(described)))
    assert type(again) is RegisteredQueue and again.binpath == tmp_path
