"""What a run tells its user about its jobs: dry-run's plan, the progress line, the counts,
detaching (what was left where) and the end-of-run summary (which jobs failed, where to
look).

Mixed into :class:`xpm.Experiment` (xpm/_experiment.py).
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._vocabulary import (
    ACTIVE_STATES,
    NOT_STARTED,
    UNSUCCESSFUL_STATES,
    RunMode,
    shown_counts,
)
from .errors import JobsFailedError

if TYPE_CHECKING:
    from ._scheduler import Job, Scheduler

#: Failed jobs the end-of-run summary names one by one; the rest are counted.
FAILED_SHOWN = 20


class RunSummary:
    """What a run tells about its jobs (a part of :class:`xpm.Experiment`)."""

    workdir: Path
    name: str
    run_mode: RunMode
    jobs: dict[tuple[str, str], Job]
    plan: list[dict[str, Any]]
    scheduler: Scheduler
    _echo: Callable[[str], None]

    def _plan_job(self, job: Job) -> None:
        """Dry run: add ``job`` to the plan and print its line (nothing is written)."""
        jobdir, dependencies, tags = job.jobdir, job.dependencies, job.submission.tags
        typeid, ident = job.task_id, job.identifier
        done = jobdir.is_done()
        job.state = "DONE" if done else "UNSCHEDULED"
        # A job that ended badly before runs again: say so, with why (also when a run that
        # submitted it again ended before running it: its marker is gone, not its history).
        before = None if done else jobdir.read_marker(jobdir.failed_marker)
        requeued = None
        if before is None and not done:
            before = requeued = jobdir.read_status().requeued_after
        self.plan.append(
            {
                "task": typeid,
                "identifier": ident,
                "path": str(jobdir.path),
                "dependencies": [d.name for d in dependencies],
                "tags": tags,
                "status": "done" if done else "to run",
                "previous": None if before is None else before.get("state", "FAILED"),
            }
        )
        deps = f" after {', '.join(d.name for d in dependencies)}" if dependencies else ""
        tagtext = " ".join(f"{k}={v}" for k, v in sorted(tags.items()))
        label = "done" if done else "to run"
        if before is not None:
            label += f", {before.get('state', 'FAILED').lower()} before: {before.get('reason')}"
        if requeued is not None:
            label += f"; submitted again by run {requeued['requeued_by']}, not run since"
        self._echo(f"[{label}] {job.name} {tagtext}{deps}\n    {jobdir.path}")

    def counts(self) -> dict[str, int]:
        """Number of this run's jobs in each state (``already done`` counted apart)."""
        counts: dict[str, int] = {}
        for job in self.jobs.values():
            state = "ALREADY_DONE" if job.already_done else job.state
            counts[state] = counts.get(state, 0) + 1
        return counts

    def _progress_line(self) -> str:
        c = shown_counts(self.counts())
        # Jobs a batch system holds in its queue are not running yet: said apart when there
        # are some (a Slurm sweep showed "24 running" while 20 of them were pending).
        queued = c.get("SUBMITTED", 0)
        running = sum(c.get(s, 0) for s in ACTIVE_STATES) - queued
        failed = sum(c.get(s, 0) for s in UNSUCCESSFUL_STATES)
        return (
            f"xpm {self.name}: {c.get('DONE', 0) + c.get('ALREADY_DONE', 0)} done, "
            f"{running} running, {f'{queued} queued, ' if queued else ''}{failed} failed, "
            f"{c.get(NOT_STARTED, 0)} waiting"
        )

    def _detach(self) -> None:
        """Stop watching once every job is handed to its launcher, or waits for room in it
        (those are left, unclaimed, to a later run of the experiment), and say so."""
        held = self.scheduler.held_by_this_process()
        if held:
            # Detaching at once would leave them never started: say why this waits.
            self._echo(
                f"xpm {self.name}: {len(held)} job(s) wait for a free slot or for the jobs "
                "they depend on, and only this process can start them: it detaches once "
                "they have started (Ctrl-C cancels them; a queueing launcher such as "
                "Slurm detaches at once)"
            )
        later = self.scheduler.wait_submitted()
        left = self.scheduler.detach()
        local = sum(1 for j in left if not j.launcher.reattachable)
        # One line: two ("detached while 2 local jobs still run", "detached; 2 jobs left
        # running or queued") read as two different states.
        note = f", {local} of them local, which finish on their own" if local else ""
        rest = ""
        if later:
            kinds = ", ".join(sorted({j.launcher.kind for j in later}))
            rest = (
                f"; {len(later)} not submitted, for lack of room in {kinds}: running the "
                "experiment again submits them"
            )
        self._echo(
            f"xpm {self.name}: detached; {len(left)} job(s) left running or queued{note} "
            f"(`xpm jobs list --watch` follows them){rest}"
        )

    def failed_jobs(self) -> list[Job]:
        """Jobs of this run that failed or were cancelled."""
        return [j for j in self.jobs.values() if j.state in UNSUCCESSFUL_STATES]

    def _summarize(self) -> None:
        c = self.counts()
        if self.run_mode == "dry-run":
            todo = sum(1 for p in self.plan if p["status"] == "to run")
            self._echo(f"xpm {self.name}: dry run: {len(self.plan)} jobs, {todo} to run")
            return
        if self.run_mode == "generate":
            done = sum(1 for job in self.jobs.values() if job.already_done)
            note = f" ({done} already done)" if done else ""
            self._echo(f"xpm {self.name}: generated {len(self.jobs)} job directories{note}")
            return
        failed = self.failed_jobs()
        self._echo(
            f"xpm {self.name}: {c.get('DONE', 0)} done, {c.get('ALREADY_DONE', 0)} already done,"
            f" {len(failed)} failed"
        )
        for job in failed[:FAILED_SHOWN]:
            self._echo(f"  {job.state} {job.name}: {job.reason}\n    {self._where_to_look(job)}")
        if len(failed) > FAILED_SHOWN:
            # A bug in a task fails every job of a sweep: hundreds of lines would hide the rest.
            self._echo(
                f"  ... and {len(failed) - FAILED_SHOWN} more: `xpm jobs list --workdir "
                f"{shlex.quote(str(self.workdir))} --experiment {shlex.quote(self.name)} "
                "--state failed --state cancelled`"
            )
        if failed:
            _one_line_when_uncaught()
            raise JobsFailedError(
                f"{len(failed)} job(s) of experiment {self.name!r} failed; see the logs above",
                [j.name for j in failed],
            )

    def _where_to_look(self, job: Job) -> str:
        """The failed job's log, or, for a job that never started (a dependency failed, the
        launch failed, cancelled while waiting), that it left no log and where else to look."""
        stderr = job.jobdir.stderr
        if stderr.exists():
            return f"log: {stderr}"
        upstream = [d for d in job.dependencies if d.state in UNSUCCESSFUL_STATES]
        if upstream:
            return f"never started, so no log: see the log of {upstream[0].name}"
        return f"never started, no log (the reason above says why): {job.jobdir.path}"


def _one_line_when_uncaught() -> None:
    """End a script whose failed jobs' error goes uncaught with one line, not a traceback
    through xpm: the summary above names the failed jobs and their logs (a trial).  The
    exit status stays 1; ``XPM_DEBUG=1`` keeps the traceback, as ``--debug`` does for the
    command line; every other exception goes to the hook there was."""
    previous = sys.excepthook
    if getattr(previous, "xpm_one_line", False):
        return

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if issubclass(kind, JobsFailedError) and os.environ.get("XPM_DEBUG", "") in ("", "0"):
            print(f"xpm: error: {value} (traceback: XPM_DEBUG=1)", file=sys.stderr)
            return
        previous(kind, value, tb)

    hook.xpm_one_line = True  # type: ignore[attr-defined]
    sys.excepthook = hook
