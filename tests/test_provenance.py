"""A result's code is the code that ran it (issue 14, points 6 and 7), on real repositories.

A job is recorded with the run, the git state and the launcher of the attempt that produced
its state, in its job directory (the event that starts the attempt); a later run that finds
it DONE is a submission, not its code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _gitrepo import git_recording, make_repo, sh  # noqa: F401  (autouse fixture)
from _oldschema import drop_digests
from conftest import ROOT, params_as_before_schema_5

from xpm._jobdir import JobDir, iter_job_dirs
from xpm.datasette._app import make_datasette
from xpm.errors import UsageError
from xpm.git import reproduce
from xpm.index import list_jobs, open_index, rebuild
from xpm.index._migrations import migrate
from xpm.index._query import check
from xpm.index._version import SCHEMA_VERSION
from xpm.workdir import JobFilter, find_job, job_details, select_jobs

TASKS = '''
import time
from pathlib import Path

from xpm import Param, Task

VERSION = 1


class Square(Task):
    """Reports x squared (times the code's VERSION)."""

    x: Param[int]
    wait_for: Param[str] = ""

    def execute(self) -> None:
        while self.wait_for and not Path(self.wait_for).exists():
            time.sleep(0.05)
        self.report(value=self.x**2 * VERSION)
'''

EXPERIMENT = """
import sys
from xpm import experiment
from mytasks import Square

with experiment(sys.argv[1], "squares", progress=False) as xp:
    Square(x=3, wait_for=sys.argv[2] if len(sys.argv) > 2 else "").submit()
print("RUN", xp.run_id)
"""


def get(ds: Any, path: str) -> Any:
    async def go() -> Any:
        return await ds.client.get(path)

    return asyncio.run(go())


def env() -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**environ, "PYTHONPATH": str(ROOT), "XPM_GIT": "on"}


def run_script(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python experiment.py ARGS` in ``repo``."""
    return subprocess.run(
        [sys.executable, "experiment.py", *args],
        cwd=repo,
        env=env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def run_experiment(repo: Path, *args: str) -> str:
    proc = run_script(repo, *args)
    assert proc.returncode == 0, proc.stderr
    return "squares/" + proc.stdout.split("RUN ")[1].strip()


def jobs_show(wd: Path, ref: str) -> str:
    """What `xpm jobs show REF` prints."""
    return subprocess.run(
        [sys.executable, "-m", "xpm.cli", "jobs", "show", ref],
        env={**env(), "XPM_WORKDIR": str(wd)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout


def project(tmp_path: Path) -> Path:
    """The recommended layout: the workdir inside the project, ignored."""
    return make_repo(
        tmp_path / "project",
        {".gitignore": "wd\n", "mytasks.py": TASKS, "experiment.py": EXPERIMENT},
    )


def test_a_done_job_keeps_the_code_that_ran_it(tmp_path: Path) -> None:
    repo = project(tmp_path)
    wd = repo / "wd"
    first_commit = sh(repo, "rev-parse", "HEAD").strip()
    first = run_experiment(repo, str(wd))
    (jobdir,) = iter_job_dirs(wd)
    assert json.loads(jobdir.results.read_text())["values"] == {"value": 9}

    # New code, committed, plus an uncommitted edit; the job is DONE, so nothing runs.
    (repo / "mytasks.py").write_text(TASKS.replace("VERSION = 1", "VERSION = 2"))
    sh(repo, "commit", "-qam", "version 2")
    second_commit = sh(repo, "rev-parse", "HEAD").strip()
    (repo / "mytasks.py").write_text(TASKS.replace("VERSION = 1", "VERSION = 3"))
    second = run_experiment(repo, str(wd))
    assert first != second

    # xpm jobs show: the run and code of the attempt; the later run only as a submission.
    details = job_details(wd, find_job(wd, jobdir.identifier[:12]))
    assert details["run"] == first and details["last_submitted_by"] == second
    assert [(g["commit"], g["dirty"]) for g in details["git"]] == [(first_commit, False)]
    assert "--detach" in details["checkout"][0] and first_commit in details["checkout"][0]

    # --commit filters (library and CLI paths): the job belongs to the first commit only.
    for commit, expected in ((first_commit, [jobdir.identifier]), (second_commit, [])):
        assert [j["id"] for j in list_jobs(wd, commit=commit[:10])] == expected
        assert [j["id"] for j in select_jobs(wd, JobFilter(commit=commit))] == expected

    # The index: run of the attempt, latest submission, attempt row with the launcher.
    with open_index(wd, readonly=True) as index:
        row = dict(index.query("SELECT * FROM jobs")[0])
        assert (row["run"], row["last_run"]) == (first, second)
        commit_sha = index.query(
            "SELECT g.commit_sha FROM jobs j JOIN git_states g ON g.id = j.git_state"
        )[0][0]
        assert commit_sha == first_commit
        (attempt,) = index.query("SELECT * FROM attempts")
        assert attempt["run"] == first and json.loads(attempt["launcher_description"])["kind"]
        summary = index.query("SELECT run, commit_sha FROM job_summary")[0]
        assert tuple(summary) == (first, first_commit)
    assert check(wd) == []  # the live index equals one rebuilt from the directories

    # The Datasette job page and its "jobs of a commit" query.
    ds = make_datasette(wd)
    page = get(ds, f"/-/xpm/job/{jobdir.identifier[:12]}").text
    git_section = page[page.index('id="xpm-git"') :]
    assert first_commit in git_section and second_commit not in git_section
    assert "submission only" in page and f"launched by run <code>{first}</code>" in page
    for commit, expected in ((first_commit, [jobdir.identifier]), (second_commit, [])):
        found = get(ds, f"/xpm/commit_jobs.json?commit={commit[:8]}&_shape=array").json()
        assert [r["id"] for r in found] == expected
    from xpm.git import job_code  # (new in this change: imported here so the rest runs before)

    # The job directory: one attempt, launched by the first run at the first commit.
    code = job_code(jobdir)
    assert code.run == first and code.launched
    assert [(s.commit, s.dirty) for s in code.states] == [(first_commit, False)]
    assert code.launcher is not None and code.launcher["kind"] == "local"

    # reproduce checks out the code that produced the result, not the later snapshot.
    result = reproduce(jobdir.path, tmp_path / "reproduced")
    assert "VERSION = 1" in (tmp_path / "reproduced" / "mytasks.py").read_text()
    assert result.states[0].commit == first_commit


FLAKY = """
from xpm import Param, Task

VERSION = 1


class Flaky(Task):
    \"\"\"Reports the code's VERSION, then fails while VERSION is 1.\"\"\"

    x: Param[int]

    def execute(self) -> None:
        self.report(value=VERSION * 10, step=0)
        self.report(value=VERSION, step=1)
        if VERSION == 1:
            self.report(broken_only=1)  # a key the fixed code no longer reports
            raise RuntimeError("the first version is broken")
"""

FLAKY_EXPERIMENT = """
import sys
from xpm import experiment
from mytasks import Flaky

with experiment(sys.argv[1], "flaky", progress=False) as xp:
    Flaky(x=1).submit()
"""


def test_results_of_a_failed_attempt_are_not_shown_as_the_new_attempts(tmp_path: Path) -> None:
    """A job that failed, fixed and run again: its results are the new code's only; the
    failed attempt's are kept beside it (results.1.jsonl), as its logs are."""
    repo = make_repo(
        tmp_path / "project",
        {".gitignore": "wd\n", "mytasks.py": FLAKY, "experiment.py": FLAKY_EXPERIMENT},
    )
    wd = repo / "wd"

    def run() -> subprocess.CompletedProcess[str]:
        return run_script(repo, str(wd))

    assert run().returncode != 0
    (jobdir,) = iter_job_dirs(wd)
    assert jobdir.read_status().state == "FAILED"
    (repo / "mytasks.py").write_text(FLAKY.replace("VERSION = 1", "VERSION = 2"))
    sh(repo, "commit", "-qam", "fixed")
    fixed = sh(repo, "rev-parse", "HEAD").strip()
    second = run()
    assert second.returncode == 0, second.stderr
    assert jobdir.read_status().state == "DONE"

    # The directory: the new attempt's results, the failed one's kept apart.
    reported = [json.loads(line)["values"] for line in jobdir.results.read_text().splitlines()]
    assert reported == [{"value": 20}, {"value": 2}]
    earlier = jobdir.results_of(1).read_text().splitlines()
    assert [json.loads(line)["values"] for line in earlier] == [
        {"value": 10},
        {"value": 1},
        {"broken_only": 1},
    ]

    # The index, the task table, `xpm jobs show` and a rebuild agree on it.
    with open_index(wd, readonly=True) as index:
        rows = index.query("SELECT value, step FROM results ORDER BY seq")
        assert [tuple(r) for r in rows] == [(20, 0), (2, 1)]
        assert index.query('SELECT value FROM "flaky"')[0][0] == 2
        # No column left for a key only the failed attempt reported (a rebuild has none).
        columns = [r[1] for r in index.query('PRAGMA table_info("flaky")')]
        assert "value" in columns and "broken_only" not in columns
    details = job_details(wd, find_job(wd, jobdir.identifier[:12]))
    assert [(r["key"], r["value"]) for r in details["results"]] == [("value", 20), ("value", 2)]
    assert [(g["commit"], g["dirty"]) for g in details["git"]] == [(fixed, False)]
    assert check(wd) == []
    shown = jobs_show(wd, jobdir.identifier[:12])
    assert "results of this attempt:" in shown and "value = 10" not in shown
    # The web view names what each run did: the first launched the failed attempt.
    page = get(make_datasette(wd), f"/-/xpm/job/{jobdir.identifier[:12]}").text
    assert "launched attempt 1 (not the one behind the result)" in page
    assert "launched the attempt behind the result" in page
    assert "earlier   1 attempt(s) beside them" in shown


def test_running_job_shows_its_run_and_git_state(tmp_path: Path) -> None:
    repo = project(tmp_path)
    wd = repo / "wd"
    commit = sh(repo, "rev-parse", "HEAD").strip()
    release = tmp_path / "release"
    background = subprocess.Popen(
        [sys.executable, "experiment.py", str(wd), str(release)],
        cwd=repo,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        jobdir: JobDir | None = None
        row: dict[str, object] = {}
        while time.monotonic() < deadline:
            found = list(iter_job_dirs(wd)) if wd.exists() else []
            if found and found[0].read_status().state == "RUNNING":
                jobdir = found[0]
                with contextlib.suppress(UsageError):  # until the recorder wrote it
                    row = find_job(wd, jobdir.identifier[:12])
                if row:
                    break
            time.sleep(0.1)
        assert jobdir is not None and row, "the job never ran"
        details = job_details(wd, row)
        assert details["job"]["state"] == "RUNNING"
        assert details["run"] is not None and details["run"].startswith("squares/")
        assert [(g["commit"], g["branch"]) for g in details["git"]] == [(commit, "main")]
        # The CLI says it too (it printed `run -` and `git: not recorded`).
        shown = jobs_show(wd, jobdir.identifier[:12])
        assert f"run {details['run']}" in shown and f"commit {commit}" in shown
        assert "not recorded" not in shown
    finally:
        release.write_text("go\n")
        out, err = background.communicate(timeout=120)
    assert background.returncode == 0, err
    assert details["run"] == "squares/" + out.split("RUN ")[1].strip()


def test_an_index_of_schema_1_is_migrated_and_equals_a_rebuild(tmp_path: Path) -> None:
    """An index written before per-attempt provenance: the migration points each job at
    the latest run that submitted it before its launch, as a rebuild of old directories does."""
    repo = project(tmp_path)
    wd = repo / "wd"
    first = run_experiment(repo, str(wd))
    (repo / "mytasks.py").write_text(TASKS.replace("VERSION = 1", "VERSION = 2"))
    sh(repo, "commit", "-qam", "version 2")
    second = run_experiment(repo, str(wd))
    (jobdir,) = iter_job_dirs(wd)
    # Job directories of an older xpm: the event starting the attempt has no provenance.
    lines = jobdir.events.read_text().splitlines()
    old = []
    for line in lines:
        event = json.loads(line)
        for key in ("run", "git", "launcher_description"):
            event.pop(key, None)
        old.append(json.dumps(event))
    jobdir.events.write_text("\n".join(old) + "\n")
    params_as_before_schema_5(wd)
    # An index file of schema 1 with the same rows (what the older xpm wrote).
    rebuild(wd)
    db = wd / "xpm.db"
    conn = sqlite3.connect(db, isolation_level=None)
    for name in ("job_git_states", "job_summary", "latest_results"):
        conn.execute(f'DROP VIEW IF EXISTS "{name}"')
    conn.execute("DROP TABLE attempts")
    conn.execute("DROP TABLE attempt_git_states")
    for (name,) in conn.execute("SELECT name FROM task_tables").fetchall():  # schema 3's
        conn.execute(f'DROP TABLE "{name}"')
    for name in ("task_tables", "task_columns", "results_read"):
        conn.execute(f"DROP TABLE {name}")
    conn.execute("DROP INDEX idx_jobs_run")
    conn.execute("ALTER TABLE jobs DROP COLUMN run")
    conn.execute("ALTER TABLE params DROP COLUMN meta")  # schema 5's
    drop_digests(conn)
    # Schema 1 pointed the job at its latest submission's git state.
    conn.execute(
        "UPDATE jobs SET git_state = (SELECT git_state FROM run_git_states WHERE run = ?)",
        (second,),
    )
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.close()

    with open_index(wd) as index:  # opening migrates
        row = dict(index.query("SELECT run, last_run, git_state FROM jobs")[0])
        first_state = index.query("SELECT git_state FROM run_git_states WHERE run = ?", [first])
        assert (row["run"], row["last_run"]) == (first, second)
        assert row["git_state"] == first_state[0][0]
        version = index.query("SELECT value FROM meta WHERE key = 'schema_version'")[0][0]
        assert version == str(SCHEMA_VERSION)
    assert check(wd) == []
    conn = sqlite3.connect(":memory:", isolation_level=None)
    assert migrate(conn) == (0, SCHEMA_VERSION)
