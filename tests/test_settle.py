"""How a job ends: one function writes it, one rule settles a job whose process is gone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xpm._jobdir import LOST, NOT_MARKED_DONE, JobDir
from xpm.errors import JobDirectoryError
from xpm.launchers._base import LaunchOutcome


def started_job(workdir: Path) -> JobDir:
    """A job directory whose job was launched and started running (no outcome yet)."""
    jobdir = JobDir(workdir, "t.Task", "ab" * 32)
    jobdir.create()
    jobdir.write_params("{}")
    jobdir.add_event("SUBMITTED", launcher="local")
    jobdir.add_event("RUNNING", pid=1, host="elsewhere")
    return jobdir


def test_end_writes_the_marker_and_the_event_together(workdir: Path) -> None:
    jobdir = started_job(workdir)
    jobdir.end("CANCELLED", "interrupted", exit_code=130)
    marker = json.loads(jobdir.failed_marker.read_text())
    assert (marker["state"], marker["reason"], marker["exit_code"]) == (
        "CANCELLED",
        "interrupted",
        130,
    )
    last = jobdir.read_status().history[-1]
    assert (last["state"], last["reason"], last["exit_code"]) == ("CANCELLED", "interrupted", 130)
    with pytest.raises(JobDirectoryError, match="cannot end as 'RUNNING'"):
        jobdir.end("RUNNING")


def test_settle_without_a_verdict_is_lost_with_one_wording(workdir: Path) -> None:
    jobdir = started_job(workdir)
    assert jobdir.settle(None, "its process is gone") == (
        "FAILED",
        f"{LOST} (its process is gone)",
    )
    status = jobdir.read_status()
    assert status.state == "FAILED" and (status.reason or "").startswith("lost: ")
    # Settled once: a second reader finds the outcome on disk and writes nothing more.
    events = jobdir.events.read_text()
    assert jobdir.settle(None, "another detail") == ("FAILED", f"{LOST} (its process is gone)")
    assert jobdir.events.read_text() == events


def test_settle_takes_the_launchers_verdict_and_the_jobs_own_outcome_wins(
    workdir: Path,
) -> None:
    jobdir = started_job(workdir)
    verdict = LaunchOutcome("FAILED", reason="slurm: TIMEOUT", exit_code=None, signal=15)
    assert jobdir.settle(verdict) == ("FAILED", "slurm: TIMEOUT")
    assert jobdir.read_status().signal == 15
    # A launcher that saw success without a done marker: a failure all the same.
    other = JobDir(workdir, "t.Task", "cd" * 32)
    other.create()
    assert other.settle(LaunchOutcome("DONE", exit_code=0)) == ("FAILED", NOT_MARKED_DONE)
    # The job's own record wins over any verdict.
    done = JobDir(workdir, "t.Task", "ef" * 32)
    done.create()
    done.end("DONE", exit_code=0)
    assert done.settle(None, "gone") == ("DONE", None)
    assert done.read_status().state == "DONE"
