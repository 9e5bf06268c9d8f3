"""The status of a job as its directory records it (:class:`JobStatus`), folded from its
event history; :meth:`xpm._jobdir.JobDir.read_status` then lets the markers win."""

from __future__ import annotations

from typing import Any

from ._vocabulary import TERMINAL_STATES, JobState, job_state


class JobStatus:
    """The status of a job as read from its directory.

    (A plain class rather than a dataclass: ``dataclasses`` imports ``inspect``, which the
    job process would pay for at every start.)
    """

    __slots__ = (
        "state",
        "reason",
        "submit_time",
        "start_time",
        "end_time",
        "exit_code",
        "signal",
        "host",
        "pid",
        "pid_start",
        "submitter",
        "launcher",
        "launcher_job_id",
        "attempt",
        "run",
        "attempts",
        "history",
    )

    def __init__(self, state: JobState = "UNSCHEDULED") -> None:
        self.state = state
        self.reason: str | None = None
        self.submit_time: float | None = None
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.exit_code: int | None = None
        self.signal: int | None = None
        self.host: str | None = None
        self.pid: int | None = None
        #: When the job process started (:func:`xpm._process.process_start`): tells it from a later
        #: process that got the same pid.
        self.pid_start: str | None = None
        #: The process that launched this attempt: ``{"host", "pid", "start"}``.
        self.submitter: dict[str, Any] | None = None
        self.launcher: str | None = None
        self.launcher_job_id: str | None = None
        self.attempt = 0
        #: The run (``<experiment>/<run id>``) that launched the current attempt, if recorded.
        self.run: str | None = None
        #: The provenance of every attempt that recorded one, oldest first: ``attempt``,
        #: ``time``, ``run``, ``launcher``, ``launcher_description``, ``git`` (git states).
        self.attempts: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []

    @property
    def provenance(self) -> dict[str, Any] | None:
        """The provenance of the current attempt (the one behind the state and the results);
        None when it was not recorded (never launched, or launched by an older xpm) or the
        job waits (again: submitted anew after it ended, its new attempt not begun)."""
        if self.state == "UNSCHEDULED":
            return None  # waiting (again): no attempt is behind this state
        last = self.attempts[-1] if self.attempts else None
        return last if last is not None and last["attempt"] == self.attempt else None

    @property
    def launched(self) -> bool:
        """Whether an attempt is behind the state (not when never launched, nor while it
        waits again after a requeue)."""
        return self.attempt > 0 and self.state != "UNSCHEDULED"

    @property
    def requeued_after(self) -> dict[str, Any] | None:
        """How the job ended before it was submitted again, while it waits for its new
        attempt (``state``, ``reason``, ``requeued_by``: the run); None otherwise."""
        last: dict[str, Any] = self.history[-1] if self.history else {}
        if self.state != "UNSCHEDULED" or last.get("state") != "UNSCHEDULED" or "after" not in last:
            return None
        ended: dict[str, Any] = next(
            (e for e in reversed(self.history[:-1]) if e.get("state") in TERMINAL_STATES), {}
        )
        return {
            "state": last["after"],
            "reason": ended.get("reason"),
            "requeued_by": last.get("requeued_by"),
        }

    @property
    def terminal(self) -> bool:
        """Whether the job has ended (done, failed or cancelled)."""
        return self.state in TERMINAL_STATES

    def as_dict(self) -> dict[str, Any]:
        """Every field, by name."""
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobStatus) and other.as_dict() == self.as_dict()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items() if k != "history")
        return f"JobStatus({fields})"


def fold_events(events: list[dict[str, Any]]) -> JobStatus:
    """The status the event history alone gives (``events.jsonl``, oldest first)."""
    status = JobStatus()
    status.history = [e for e in events if isinstance(e.get("state"), str)]
    for event in events:
        if event.get("launcher_job_id") is not None:
            status.launcher_job_id = str(event["launcher_job_id"])
        state = event.get("state")
        if not isinstance(state, str):
            continue  # an information event (e.g. the launcher's id for the job)
        if state == "SUBMITTED":
            status.attempt += 1
            status.submit_time = event.get("time")
            status.start_time = status.end_time = None
            status.exit_code = status.signal = None
            status.reason = None
            status.pid = event.get("pid")
            status.pid_start = None
            submitter = event.get("submitter")
            status.submitter = submitter if isinstance(submitter, dict) else None
            status.launcher = event.get("launcher", status.launcher)
            status.launcher_job_id = event.get("launcher_job_id")
            status.host = None
            status.run = event.get("run")
            if status.run is not None:
                # Out of the history (which stays light to show), into the attempts.
                status.attempts.append(
                    {
                        "attempt": status.attempt,
                        "time": event.get("time"),
                        "run": status.run,
                        "launcher": event.get("launcher"),
                        "launcher_description": event.pop("launcher_description", None),
                        "git": event.pop("git", None) or [],
                    }
                )
        elif state == "RUNNING":
            status.start_time = event.get("time")
            status.pid = event.get("pid", status.pid)
            status.pid_start = event.get("pid_start", status.pid_start)
            status.host = event.get("host", status.host)
        elif state == "UNSCHEDULED":
            # Waiting again: submitted anew after it ended (:meth:`~xpm._jobdir.JobDir.requeue`), or refused
            # by a full backend after its claim.  Nothing of this attempt has happened.
            status.submit_time = status.start_time = status.end_time = None
            status.exit_code = status.signal = None
            status.host = status.pid = status.pid_start = status.launcher_job_id = None
            status.reason = event.get("reason")
        elif state in TERMINAL_STATES:
            status.end_time = event.get("time")
            status.exit_code = event.get("exit_code", status.exit_code)
            status.signal = event.get("signal", status.signal)
            status.reason = event.get("reason")
        status.state = job_state(state, status.state)
    return status
