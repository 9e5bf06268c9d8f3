"""What Slurm says of the launcher's jobs: one ``squeue`` call a poll, ``sacct`` for the rest.

Slurm's job states and the xpm state each maps to, exit codes as squeue and sacct write
them, and :class:`SlurmQueue`, which asks both commands about a poll's jobs and keeps
what it learns between polls (raw ids of array tasks, arrays listed, whether sacct must
read the job-completion file).  Also how job ids are cut into lists short enough for one
command-line argument (shared with ``scancel`` and ``scontrol release``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence

from .._vocabulary import ACTIVE_STATES, JobState
from ..errors import LauncherError
from ._base import LaunchedJob, LaunchOutcome

#: Slurm job states and the xpm state each maps to.
_STATE_MAP: dict[str, JobState] = {
    "PENDING": "SUBMITTED",
    "CONFIGURING": "SUBMITTED",
    "REQUEUED": "SUBMITTED",
    "REQUEUE_HOLD": "SUBMITTED",
    "REQUEUE_FED": "SUBMITTED",
    "RESV_DEL_HOLD": "SUBMITTED",
    "RUNNING": "RUNNING",
    "COMPLETING": "RUNNING",
    "SUSPENDED": "RUNNING",
    "STOPPED": "RUNNING",
    "SIGNALING": "RUNNING",
    "STAGE_OUT": "RUNNING",
    "RESIZING": "RUNNING",
    "COMPLETED": "DONE",
    "FAILED": "FAILED",
    "NODE_FAIL": "FAILED",
    "OUT_OF_MEMORY": "FAILED",
    "BOOT_FAIL": "FAILED",
    "DEADLINE": "FAILED",
    "TIMEOUT": "FAILED",
    "PREEMPTED": "FAILED",
    "SPECIAL_EXIT": "FAILED",
    "CANCELLED": "CANCELLED",
    "REVOKED": "CANCELLED",
}

#: Final states in which Slurm ended the job itself (its SIGTERM is then no task failure).
_ENDED_BY_SLURM = frozenset(
    {"TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
    | {"CANCELLED", "REVOKED"}
)

#: Exit status of squeue when none of the requested ids is known any more.
_INVALID_JOB_ID = "Invalid job id"

#: Longest id list given as one argument to squeue/sacct/scancel.  Linux refuses a single
#: argument over 128 KiB ("Argument list too long"); 10,000 ids of 8 digits are ~90 KB.
_MAX_LIST_CHARS = 30_000


def id_lists(ids: Sequence[str], limit: int = _MAX_LIST_CHARS) -> list[list[str]]:
    """``ids`` cut into lists whose comma-joined text stays under ``limit`` characters."""
    lists: list[list[str]] = []
    size = limit
    for job_id in ids:
        if size + len(job_id) + 1 > limit:
            lists.append([])
            size = 0
        lists[-1].append(job_id)
        size += len(job_id) + 1
    return lists


def array_ids(ids: Sequence[str]) -> list[str]:
    """What to ask squeue/sacct for ``ids``: an array task ``A_i`` by its array ``A`` (one
    id whatever the array's size: the answer lists every task), other jobs by their id."""
    return sorted({job_id.partition("_")[0] for job_id in ids})


def _recorded_raw_id(job: LaunchedJob) -> str | None:
    """The raw Slurm id the array task ``job`` recorded when it started (``xpm.run``)."""
    for event in reversed(job.jobdir.read_status().history):
        if event.get("state") == "RUNNING" and event.get("backend_job_id"):
            return str(event["backend_job_id"])
    return None


def _decode_exit(code: str) -> tuple[int | None, int | None]:
    """``(exit code, signal)`` from squeue's wait status (``768``) or sacct's ``3:0``."""
    code = code.strip()
    if ":" in code:
        exit_part, _, signal_part = code.partition(":")
        try:
            exit_code, sig = int(exit_part), int(signal_part)
        except ValueError:
            return None, None
        return exit_code, (sig or None)
    try:
        status = int(code)
    except ValueError:
        return None, None
    sig = status & 0x7F
    return (status >> 8) & 0xFF, (sig or None)


def _outcome(slurm_state: str, reason: str, code: str) -> LaunchOutcome:
    slurm_state = slurm_state.rstrip("+")
    state = _STATE_MAP.get(slurm_state, "SUBMITTED")
    if state in ACTIVE_STATES:
        detail = f" ({reason})" if reason and reason != "None" else ""
        return LaunchOutcome(state, f"slurm: {slurm_state}{detail}")
    exit_code, sig = _decode_exit(code)
    if state == "DONE":
        return LaunchOutcome(state, None, exit_code=exit_code or 0)
    if state == "CANCELLED" and reason == "DependencyNeverSatisfied":
        # Slurm's word is CANCELLED; xpm's scheduler records the same case FAILED (it never
        # ran because an upstream job failed): one state, whoever saw it first.
        return LaunchOutcome("FAILED", "dependency failed")
    return LaunchOutcome(
        state,
        f"slurm: {slurm_state}",
        # A FAILED job's own exit status; other kills rarely carry a meaningful one.
        exit_code=exit_code if not sig and (exit_code or slurm_state == "FAILED") else None,
        signal=sig,
        ended_by_backend=slurm_state in _ENDED_BY_SLURM,
    )


class SlurmQueue:
    """The outcome of a Slurm launcher's jobs, from ``squeue`` then ``sacct``.

    ``run`` runs one Slurm command (its name, then its arguments) and returns what it
    did; a command that cannot be run raises :class:`~xpm.errors.LauncherError`.
    """

    def __init__(self, run: Callable[[list[str]], subprocess.CompletedProcess[str]]) -> None:
        self._run = run
        #: Raw Slurm ids of array tasks seen in squeue (for sacct -c, which knows no others).
        self._raw_ids: dict[str, str] = {}
        #: Arrays the last squeue listed a task of (any task, any state): see :meth:`poll`.
        self._listed_arrays: set[str] = set()
        #: Arrays the completion file has a line for (their pending rest ended there).
        self._completed_arrays: set[str] = set()
        #: Whether sacct must read the job-completion file (``sacct -c``: no slurmdbd).
        self._sacct_jobcomp: bool | None = None

    def poll(self, jobs: list[LaunchedJob]) -> dict[str, LaunchOutcome]:
        """The outcome of ``jobs``: one ``squeue`` call, then one ``sacct`` for the rest.

        Jobs neither command knows are left out of the answer.
        """
        ids = sorted({job.launcher_job_id for job in jobs})
        if not ids:
            return {}
        outcomes = self._squeue(ids)
        missing = [i for i in ids if i not in outcomes]
        by_id = {job.launcher_job_id: job for job in jobs}
        if missing:
            for i in missing if self._sacct_jobcomp is not False else ():
                # Only the completion file (no slurmdbd) needs raw ids: sacct knows A_i.
                if "_" in i and i not in self._raw_ids:
                    # Seen in squeue by another process only: the job recorded its raw id.
                    raw = _recorded_raw_id(by_id[i])
                    if raw is not None:
                        self._raw_ids[i] = raw
            outcomes.update(self._sacct(missing))
        # A pending array task cancelled on its own leaves no record anywhere (it is only
        # taken out of its array's pending set; no completion line, no accounting without
        # slurmdbd).  A task that never started, gone while Slurm still knows a sibling
        # (pending, running or just ended), is what that leaves; its siblings may well have
        # run and ended by the next poll, so whether they are pending does not matter.
        known_arrays = (
            self._listed_arrays
            | self._completed_arrays
            | {i.partition("_")[0] for i in outcomes if "_" in i}
        )
        for i in missing:
            if i in outcomes or i.partition("_")[0] not in known_arrays:
                continue
            if by_id[i].jobdir.read_status().state != "SUBMITTED":
                continue  # it started: lost, or its own markers say how it ended
            outcomes[i] = LaunchOutcome(
                "CANCELLED",
                "slurm: CANCELLED (taken out of its array while pending)",
                ended_by_backend=True,
            )
        return outcomes

    def _squeue(self, ids: list[str]) -> dict[str, LaunchOutcome]:
        outcomes: dict[str, LaunchOutcome] = {}
        self._listed_arrays = set()
        for query in id_lists(array_ids(ids)):  # one list, but for >3,000 separate jobs
            outcomes.update(self._squeue_list(query, set(ids)))
        return outcomes

    def _squeue_list(self, query: list[str], wanted: set[str]) -> dict[str, LaunchOutcome]:
        proc = self._run(
            [
                "squeue", "--noheader", "--states=all", "--array", f"--jobs={','.join(query)}",
                "--Format=JobArrayID:|,JobID:|,State:|,Reason:|,exit_code:|",
            ]
        )  # fmt: skip
        if proc.returncode != 0:
            if _INVALID_JOB_ID in proc.stderr:  # none of the ids is known any more
                return {}
            raise LauncherError(f"squeue failed (exit {proc.returncode}): {proc.stderr.strip()}")
        outcomes: dict[str, LaunchOutcome] = {}
        for line in proc.stdout.splitlines():
            fields = line.split("|")
            if len(fields) < 5:
                continue
            job_id, raw_id, state, reason, code = (f.strip() for f in fields[:5])
            if "_" in job_id:
                self._listed_arrays.add(job_id.partition("_")[0])  # a task not asked for too
            if job_id not in wanted:
                continue
            if raw_id and raw_id != job_id:
                self._raw_ids[job_id] = raw_id
            outcomes[job_id] = _outcome(state, reason, code)
        return outcomes

    def _sacct(self, ids: list[str]) -> dict[str, LaunchOutcome]:
        """Finished jobs squeue forgot: ``sacct`` (``sacct -c`` without slurmdbd)."""
        fmt = ["--noheader", "--parsable2", "--format=JobID,State,ExitCode"]
        stdout: list[str] = []
        by_query = {i: i for i in ids}
        if not self._sacct_jobcomp:
            for query in id_lists(array_ids(ids)):  # sacct lists array tasks as A_i
                proc = self._run(["sacct", *fmt, "--allocations", f"--jobs={','.join(query)}"])
                if proc.returncode != 0 and "accounting storage is disabled" in proc.stderr:
                    self._sacct_jobcomp = True
                    break
                if proc.returncode != 0:
                    return {}  # no accounting at all: the scheduler reads the job directory
                self._sacct_jobcomp = False
                stdout.append(proc.stdout)
        arrays: set[str] = set()
        if self._sacct_jobcomp:
            # The completion file knows array tasks by their raw ids only; the array's own
            # id is the raw id of its pending rest (cancelled tasks that never started).
            by_query = {self._raw_ids.get(i, i): i for i in ids}
            arrays = {i.partition("_")[0] for i in ids if "_" in i} - set(by_query)
            for query in id_lists([*by_query, *sorted(arrays)]):
                proc = self._run(["sacct", "-c", *fmt, f"--jobs={','.join(query)}"])
                if proc.returncode != 0:
                    return {}
                stdout.append(proc.stdout)
        outcomes: dict[str, LaunchOutcome] = {}
        for line in "\n".join(stdout).splitlines():
            fields = line.split("|")
            if len(fields) < 3:
                continue
            listed, state, code = (f.strip() for f in fields[:3])
            if listed in arrays:
                self._completed_arrays.add(listed)
            job_id = by_query.get(listed)
            if job_id is None:
                continue
            # sacct writes "CANCELLED by 1000"; later lines (requeues) win.
            outcomes[job_id] = _outcome(state.split(" ")[0], "", code)
        return outcomes
