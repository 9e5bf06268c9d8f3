"""The words every layer shares: job states, run modes, dirty-tree policies, workdir layout.

One definition of each, so that the scheduler, the index, the CLI, the web view and the job
side cannot drift apart.  Standard library only: the job side imports it.  The layout of
the inside of a job directory belongs to :class:`xpm._jobdir.JobDir`; this module names
the workdir's own top-level places.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, get_args

#: A job's state.  Stored names: UNSCHEDULED (written, not started: job directories and the
#: index), WAITING (the scheduler's name for it while its dependencies run), SUBMITTED (the
#: launcher has it), RUNNING, then one of the terminal states DONE, FAILED, CANCELLED.
JobState = Literal["UNSCHEDULED", "WAITING", "SUBMITTED", "RUNNING", "DONE", "FAILED", "CANCELLED"]

#: Every state, in life-cycle order.
STATES: tuple[JobState, ...] = get_args(JobState)
#: A job in one of these has ended and will not change unless it is run again.
TERMINAL_STATES: frozenset[str] = frozenset({"DONE", "FAILED", "CANCELLED"})
#: A job in one of these has a process (or a launcher's job) that may still be alive.
ACTIVE_STATES: tuple[JobState, ...] = ("SUBMITTED", "RUNNING")
#: How a job ends when it did not succeed (its dependents cannot run).
UNSUCCESSFUL_STATES: tuple[JobState, ...] = ("FAILED", "CANCELLED")
#: The one name people are shown for a job that has not started (#19).
NOT_STARTED: JobState = "WAITING"
#: States that are shown as :data:`NOT_STARTED`.
NOT_STARTED_STATES: frozenset[str] = frozenset({"UNSCHEDULED", "WAITING"})
#: The states job directories and the index hold (WAITING lives only in the scheduler).
STORED_STATES: tuple[JobState, ...] = tuple(s for s in STATES if s != "WAITING")
#: The states a user can filter on, the shown name first (UNSCHEDULED still accepted).
FILTER_STATES: tuple[JobState, ...] = (
    "WAITING",
    "SUBMITTED",
    "RUNNING",
    "DONE",
    "FAILED",
    "CANCELLED",
    "UNSCHEDULED",
)


def job_state(value: object, default: JobState = "FAILED") -> JobState:
    """``value`` as a :data:`JobState` when it is one (read from a file or a row), else
    ``default``: a record written by hand or by another version cannot yield a state no
    reader knows."""
    for state in STATES:
        if value == state:
            return state
    return default


def as_run_mode(value: object) -> RunMode | None:
    """``value`` as a :data:`RunMode`, None when it is not one (the caller says so)."""
    return next((mode for mode in RUN_MODES if mode == value), None)


def as_dirty_policy(value: object) -> DirtyPolicy | None:
    """``value`` as a :data:`DirtyPolicy`, None when it is not one (the caller says so)."""
    return next((policy for policy in DIRTY_POLICIES if policy == value), None)


def shown_state(state: str) -> str:
    """The name of ``state`` in what people read (tables, progress line, web pages)."""
    return NOT_STARTED if state in NOT_STARTED_STATES else state


def shown_counts(counts: dict[str, int]) -> dict[str, int]:
    """Job counts by stored state, counted by :func:`shown_state` (UNSCHEDULED + WAITING)."""
    shown: dict[str, int] = {}
    for state, n in counts.items():
        shown[shown_state(state)] = shown.get(shown_state(state), 0) + n
    return shown


def stored_state(name: str) -> str:
    """The state the index holds for ``name`` as a person writes it (any case; WAITING)."""
    upper = name.upper()
    return "UNSCHEDULED" if upper == NOT_STARTED else upper


#: How a job that caught a stopping signal says so ("terminated by SIGTERM"): such an end
#: names no cause, and the launcher that sent the signal (Slurm's TIMEOUT...) or the
#: command that did (``xpm jobs kill``) replaces it with one.
CAUGHT_SIGNAL = "terminated by"


def caught_signal_reason(signal_name: str) -> str:
    """The reason recorded for a job or run stopped by ``signal_name`` (``SIGTERM``)."""
    return f"{CAUGHT_SIGNAL} {signal_name}"


#: The launcher kind whose jobs are processes of the host that launched them (stopped and
#: found gone by their pid); every other kind is asked through its launcher.
LOCAL_KIND = "local"

#: How an experiment runs: run and wait, only write job directories, or only print a plan.
RunMode = Literal["normal", "generate", "dry-run"]
RUN_MODES: tuple[RunMode, ...] = get_args(RunMode)

#: What to do when the code of a run has uncommitted changes (``dirty_git``).
DirtyPolicy = Literal["ignore", "warn", "error"]
DIRTY_POLICIES: tuple[DirtyPolicy, ...] = get_args(DirtyPolicy)


def identifier_prefix(text: str) -> bool:
    """Whether ``text`` can name jobs by their identifier: hex digits (any case), its first
    ones or all 64 (the command line, the web view and the index take such prefixes)."""
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


# The workdir's top level.  Job directories: JOBS/<task id>/<identifier>/ (see JobDir).
JOBS = "jobs"
EXPERIMENTS = "experiments"
RUNS = "runs"
ARRAYS = "arrays"
INDEX_FILE = "xpm.db"


def jobs_root(workdir: str | os.PathLike[str]) -> Path:
    """``WORKDIR/jobs``: every job directory is below it."""
    return Path(workdir) / JOBS


def experiments_root(workdir: str | os.PathLike[str]) -> Path:
    """``WORKDIR/experiments``: one directory per experiment name."""
    return Path(workdir) / EXPERIMENTS


def runs_dir(workdir: str | os.PathLike[str], experiment: str) -> Path:
    """``WORKDIR/experiments/NAME/runs``: the run records of one experiment."""
    return experiments_root(workdir) / experiment / RUNS


def run_record(workdir: str | os.PathLike[str], experiment: str, run_id: str) -> Path:
    """The record of one run (``runs/RUN_ID.json``); its submissions sit beside it."""
    return runs_dir(workdir, experiment) / f"{run_id}.json"


def arrays_root(workdir: str | os.PathLike[str]) -> Path:
    """``WORKDIR/arrays``: Slurm array scripts, one directory per array."""
    return Path(workdir) / ARRAYS


def index_file(workdir: str | os.PathLike[str]) -> Path:
    """``WORKDIR/xpm.db``: the SQLite index (rebuilt from the rest when lost)."""
    return Path(workdir).absolute() / INDEX_FILE
