"""An ended job submitted again waits to run: its record says so until its new attempt starts.

A trial resubmitted a sweep's failed seeds: the terminal said "18 waiting" while `xpm jobs
list`, `xpm results` and the web view's home page said FAILED with the old reason, because
the job directory kept its failed marker until the new attempt started.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from _dsclient import get_ok
from click.testing import CliRunner
from conftest import eventually, popen_python
from xpm_test_tasks import Fail, Train

from xpm._experiment import experiment
from xpm._jobdir import JobDir
from xpm.cli import cli
from xpm.datasette._app import make_datasette
from xpm.errors import JobsFailedError
from xpm.index import open_index


def listed(workdir: Path) -> dict[str, dict[str, Any]]:
    """``xpm jobs list`` as JSON, by job id."""
    out = CliRunner().invoke(cli, ["jobs", "list", "--workdir", str(workdir), "--format", "json"])
    assert out.exit_code == 0, out.output
    return {row["id"]: row for row in json.loads(out.stdout)}


def failed_once(workdir: Path, ok: Path) -> JobDir:
    with pytest.raises(JobsFailedError), experiment(workdir, "xp", progress=False) as xp:
        Fail(n=3, ok_file=str(ok), reports=True).submit()
    jobdir = next(iter(xp.jobs.values())).jobdir
    assert jobdir.read_status().state == "FAILED"
    return jobdir


def test_a_failed_job_submitted_again_reads_waiting_until_it_runs(
    workdir: Path, tmp_path: Path
) -> None:
    ok, gate = tmp_path / "ok", tmp_path / "gate"
    jobdir = failed_once(workdir, ok)
    ident = jobdir.path.name
    assert listed(workdir)[ident]["state"] == "FAILED"
    ok.write_text("")
    # One job at a time: the failed job waits behind a job held at its gate.
    with experiment(workdir, "xp", progress=False, max_parallel=1) as xp:
        Train(seed=99, gate=str(gate)).submit()
        Fail(n=3, ok_file=str(ok)).submit()
        status = jobdir.read_status()
        assert (status.state, status.reason, status.end_time) == ("UNSCHEDULED", None, None)
        # No process or launcher id of the attempt that ended is shown as this one's.
        assert (status.pid, status.host, status.launcher_job_id) == (None, None, None)
        assert not jobdir.failed_marker.exists()
        last = status.history[-1]
        assert last["state"] == "UNSCHEDULED" and last["after"] == "FAILED"
        assert last["requeued_by"].startswith("xp/")
        assert status.history[-2]["state"] == "FAILED"  # the ending stays in the history
        # The ended attempt's logs and results are an earlier attempt's now: a waiting job
        # showed them (and its run, commit and submission time) as its own (a trial).
        assert not jobdir.results.exists() and not jobdir.stderr.exists()
        assert "this task always fails" in jobdir.log("stderr", 1).read_text()
        assert '"loss"' in jobdir.results_of(1).read_text()
        assert status.provenance is None and status.submit_time is None
        # The index (what the CLI and the web view read) says it waits, without the reason.
        row = eventually(
            lambda: listed(workdir)[ident] if listed(workdir)[ident]["state"] != "FAILED" else None,
            "recorded as waiting",
        )
        assert row["state"] == "WAITING" and not row.get("reason"), row
        assert not row.get("results") and row.get("start_time") is None, row
        with open_index(workdir, readonly=True) as index:
            linked = index.query(
                "SELECT run, git_state, submit_time, last_run FROM jobs WHERE id = ?", [ident]
            )[0]
        assert (linked["run"], linked["git_state"], linked["submit_time"]) == (None, None, None)
        assert linked["last_run"] == f"xp/{xp.run_id}"  # the submission that requeued it
        out = CliRunner().invoke(
            cli, ["results", "fail", "--workdir", str(workdir), "--format", "json"]
        )
        (shown,) = [r for r in json.loads(out.stdout) if r["id"] == ident]
        assert shown.get("loss") is None, shown
        # The web view's home page no longer lists it among the failed jobs.
        home = get_ok(make_datasette(workdir), "/").text
        failed = home.split('id="xpm-failed"')[1].split("</section>")[0]
        assert ident[:8] not in failed and "(0 in all)" in failed, failed
        # The job page and `xpm jobs show` say its new attempt is not launched yet, and
        # name the state as every view does (a re-check saw "launched by run" there).
        page = get_ok(make_datasette(workdir), f"/-/xpm/job/{ident}").text
        assert f"(not launched yet; submitted by run <code>xp/{xp.run_id}</code>)" in page
        shown = CliRunner().invoke(cli, ["jobs", "show", ident[:12], "--workdir", str(workdir)])
        record = CliRunner().invoke(
            cli, ["jobs", "show", ident[:12], "--workdir", str(workdir), "--json"]
        )
        assert json.loads(record.stdout)["launched"] is False, record.stdout
        assert "WAITING    after=FAILED" in shown.stdout and "not run by it" not in shown.stdout
        # The runs table's state facet links the state by the name it shows.
        runs = get_ok(make_datasette(workdir), "/-/xpm/experiment/xp?task=xpm_test_tasks.fail")
        assert "where=state%3DWAITING" in runs.text and "state%3DUNSCHEDULED" not in runs.text
        gate.write_text("")
    assert {j.state for j in xp.jobs.values()} == {"DONE"}
    status = jobdir.read_status()
    assert (status.state, status.attempt) == ("DONE", 2)
    assert listed(workdir)[ident]["state"] == "DONE"
    # The job page links the ended attempt's logs and results.
    site = make_datasette(workdir)
    page = get_ok(site, f"/-/xpm/job/{ident}").text
    earlier = page.split('id="xpm-earlier">')[1].split("</p>")[0]
    names = re.findall(r'<a href="[^"]+">([^<]+)</a>', earlier)
    assert names == ["stdout.1.log", "stderr.1.log", "results.1.jsonl"], earlier
    link = re.search(r'href="([^"]+stderr\.1\.log)"', earlier).group(1)  # type: ignore[union-attr]
    assert "this task always fails" in get_ok(site, link).text


def test_a_run_killed_before_the_requeued_job_starts_leaves_it_waiting(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The experiment dies while the requeued job waits: the record says waiting (not the
    old FAILED, not running), the ending stays in the history, a dry run says how it ended
    before, and the next run runs it."""
    import signal

    ok, gate = tmp_path / "ok", tmp_path / "gate"
    jobdir = failed_once(workdir, ok)
    ok.write_text("")
    script = f"""
from xpm._experiment import experiment
from xpm_test_tasks import Fail, Train
with experiment({str(workdir)!r}, "xp", progress=False, max_parallel=1):
    Train(seed=98, gate={str(gate)!r}).submit()
    Fail(n=3, ok_file={str(ok)!r}).submit()
"""
    proc = popen_python(script)
    try:
        eventually(lambda: jobdir.read_status().state == "UNSCHEDULED", "requeued")
        # Killed once the job ahead runs: killed while launching it, that job is lost (the
        # one race the message below would tell).
        trains = workdir / "jobs" / "xpm_test_tasks.train"
        eventually(
            lambda: (
                trains.exists()
                and any(
                    JobDir.from_path(d).read_status().state == "RUNNING" for d in trains.iterdir()
                )
            ),
            "running the job ahead",
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()  # reaped, its pipes closed
        gate.write_text("")  # the orphaned Train job ends
    status = jobdir.read_status()
    assert (status.state, status.reason) == ("UNSCHEDULED", None)
    out = CliRunner().invoke(cli, ["jobs", "list", "--workdir", str(workdir), "--format", "json"])
    # The killed run is noticed; its running Train job ends or runs on: none was lost (it
    # read "0 job(s) left running settled as FAILED (lost)").
    assert "ended without closing: none of its jobs was lost;" in out.stderr, out.stderr
    assert listed(workdir)[jobdir.path.name]["state"] == "WAITING"
    capsys.readouterr()
    with experiment(workdir, "xp", "dry-run", progress=False):
        Fail(n=3, ok_file=str(ok)).submit()
    printed = capsys.readouterr()
    line = next(
        text for text in (printed.out + printed.err).splitlines() if text.startswith("[to run")
    )
    # It read "[to run]" alone: the failed marker is gone once the job is requeued.
    assert line.startswith("[to run, failed before: ") and "not run since]" in line, line
    assert "submitted again by run xp/" in line, line
    with experiment(workdir, "xp", progress=False) as xp:
        Fail(n=3, ok_file=str(ok)).submit()
    assert [j.state for j in xp.jobs.values()] == ["DONE"]
    assert jobdir.read_status().attempt == 2


def test_a_crash_between_the_event_and_the_marker_still_reads_failed(
    workdir: Path, tmp_path: Path
) -> None:
    """The requeue event is written before the marker goes: cut between the two (simulated:
    the event alone, as a crash there would leave it), the job still reads FAILED with its
    reason, and the next submission requeues it."""
    jobdir = failed_once(workdir, tmp_path / "ok")
    reason = jobdir.read_status().reason
    jobdir.add_event("UNSCHEDULED", requeued_by="xp/cut", after="FAILED")
    status = jobdir.read_status()
    assert (status.state, status.reason) == ("FAILED", reason)
    assert jobdir.requeue("xp/next") and jobdir.read_status().state == "UNSCHEDULED"
    assert not jobdir.requeue("xp/again")  # no longer ended: nothing to requeue
