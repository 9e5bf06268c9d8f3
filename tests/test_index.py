"""The SQLite index: recording, typed values, views, rebuild/check, corruption, migrations,
stale states and the documented schema, against real SQLite files and real job processes."""

from __future__ import annotations

import enum
import json
import logging
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _oldschema import drop_digests
from conftest import ROOT, TESTS
from xpm_test_tasks import Count, Evaluate, Fail, Learn, Model, SelfKill

from xpm import Config, Param, tag
from xpm._experiment import experiment
from xpm._jobdir import DONE_MARKER_MISSING, iter_job_dirs
from xpm._serialize import to_params
from xpm.errors import IndexDatabaseError, JobsFailedError, UsageError
from xpm.index import (
    SCHEMA_VERSION,
    check,
    datasette_metadata,
    find_job,
    list_jobs,
    open_index,
    rebuild,
    render_markdown,
)
from xpm.index._migrations import migrate, schema_version
from xpm.index._rows import flatten_params
from xpm.index._schema import INDEXES, TABLES, VIEWS, Column, Table
from xpm.index._schemasql import create_table_sql
from xpm.index._writecount import LOG

DOC = ROOT / "docs" / "index.md"


class Color(enum.Enum):
    RED = 1


class Inner(Config):
    a: Param[int] = 1


class Hostile(Config):
    f: Param[float]
    nan: Param[float]
    t: Param[tuple[int, ...]]
    d: Param[dict[str, int]]
    p: Param[Path]
    c: Param[Color]
    items: Param[list[Inner]]
    flag: Param[bool]
    name: Param[str]


def run_xp(workdir: Path, name: str = "xp", **kw):  # type: ignore[no-untyped-def]
    return experiment(workdir, name, progress=False, **kw)


INODE = ("results_read", "file")


def snapshot(workdir: Path, copied: bool = False) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, ordered by primary key.  ``copied``: leave out the inodes
    of the results files read (a copied workdir's files are other files; its index still
    names the originals, and reads them again from the start, which changes nothing)."""
    out = {}
    with open_index(workdir, readonly=True) as index:
        for t in TABLES:
            if t.name in ("meta", LOG):  # about the file's writes, not the record
                continue
            order = ", ".join(f'"{c}"' for c in t.primary_key)
            columns = [c for c in t.columns if not (copied and (t.name, c.name) == INODE)]
            # typeof() too: Python sees 1 == 1.0, a query filtering on types would not.
            typed = ", ".join(f'"{c.name}", typeof("{c.name}")' for c in columns)
            out[t.name] = index.conn.execute(
                f'SELECT {typed} FROM "{t.name}" ORDER BY {order}'
            ).fetchall()
    return out


def remove_index(workdir: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{workdir / 'xpm.db'}{suffix}").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workdir with a real sweep: 3 Learn + 3 Evaluate (model tags), one failure, one generated."""
    workdir = tmp_path_factory.mktemp("sweep") / "workdir"
    with pytest.raises(JobsFailedError), run_xp(workdir, "sweep") as xp:
        for n, kind in ((1, "cnn"), (3, "cnn"), (4, "mlp")):
            learned = Learn(model=Model(n_layers=tag(n), activation=tag(kind)), epochs=2).submit()
            Evaluate(model=learned).submit()
        Fail(n=tag(7)).submit()
    assert len(xp.jobs) == 7
    with run_xp(workdir, "gen", run_mode="generate"):
        Count(n=tag(99)).submit()
    return workdir


# --- recording -------------------------------------------------------------------------------
def test_experiment_records_runs_jobs_params_tags_results(sweep: Path) -> None:
    with open_index(sweep, readonly=True) as index:
        q = index.query
        runs = {r["experiment"]: dict(r) for r in q("SELECT * FROM runs")}
        assert set(runs) == {"sweep", "gen"}
        assert runs["sweep"]["run_mode"] == "normal" and runs["gen"]["run_mode"] == "generate"
        assert runs["sweep"]["end_time"] >= runs["sweep"]["start_time"] > 0
        assert runs["sweep"]["host"] and runs["sweep"]["user"]
        states = {(r["task_id"], r["state"]) for r in q("SELECT task_id, state FROM jobs")}
        assert ("xpm_test_tasks.fail", "FAILED") in states
        assert ("xpm_test_tasks.count", "UNSCHEDULED") in states
        assert q("SELECT COUNT(*) FROM jobs WHERE state = 'DONE'")[0][0] == 6
        failed = dict(q("SELECT * FROM jobs WHERE state = 'FAILED'")[0])
        assert failed["exit_code"] == 1 and "always fails" in failed["reason"]
        assert failed["launcher"] == "local" and failed["launcher_job_id"] and failed["host"]
        assert failed["last_run"].startswith("sweep/") and failed["attempt"] == 1
        # Typed parameters: integers stay integers, so `value > 2` compares numbers.
        rows = q(
            "SELECT j.task_id, p.value, typeof(p.value) AS t FROM params p JOIN jobs j "
            "ON j.id = p.job_id WHERE p.path = 'model.n_layers' AND p.value > 2"
        )
        assert sorted(r["value"] for r in rows) == [3, 4] and {r["t"] for r in rows} == {"integer"}
        nested = q("SELECT COUNT(*) FROM params WHERE path = 'model.model.n_layers'")[0][0]
        assert nested == 3  # Evaluate's LearnedModel -> Model
        tags = q("SELECT key, value, type FROM tags WHERE job_id = ?", (failed["id"],))
        assert [tuple(t) for t in tags] == [("n", 7, "int")]
        # Results: Evaluate reports accuracy = 0.5 + 0.1 * n_layers.
        acc = q(
            "SELECT json_extract(params, '$.\"model.model.n_layers\"') AS n, "
            "json_extract(results, '$.accuracy') AS acc FROM job_summary "
            "WHERE results != '{}' ORDER BY n"
        )
        assert [(r["n"], round(r["acc"], 6)) for r in acc] == [(1, 0.6), (3, 0.8), (4, 0.9)]
        assert q("SELECT COUNT(*) FROM submissions")[0][0] == 8
        # The git state of each run, as its run record lists it.
        for run in runs.values():
            record = json.loads(
                (
                    sweep / "experiments" / run["experiment"] / "runs" / f"{run['run_id']}.json"
                ).read_text()
            )
            git = record.get("git") or []
            linked = q("SELECT COUNT(*) FROM run_git_states WHERE run = ?", (run["id"],))[0][0]
            assert linked == len(git)
            if git and git[0].get("commit"):
                row = q(
                    "SELECT g.* FROM run_git_states rg JOIN git_states g ON g.id = rg.git_state "
                    "WHERE rg.run = ? AND rg.position = 0",
                    (run["id"],),
                )[0]
                assert row["commit_sha"] == git[0]["commit"]
                assert row["dirty"] == int(bool(git[0].get("dirty")))


def test_flatten_params_hostile_values() -> None:
    cfg = Hostile(
        f=math.inf,
        nan=math.nan,
        t=(1, 2),
        d={"x'; DROP TABLE jobs; --": 1},
        p=Path("/a b/c"),
        c=Color.RED,
        items=[Inner(a=5)],
        flag=True,
        name="x\n'\"\x00",
    )
    rows = {path: (value, kind) for path, value, kind in flatten_params(to_params(cfg))}
    assert rows["f"] == (math.inf, "float") and rows["nan"] == (None, "float")
    assert rows["t"] == ("[1, 2]", "list") and rows["flag"] == (1, "bool")
    assert json.loads(rows["d"][0]) == {"x'; DROP TABLE jobs; --": 1}
    assert rows["p"] == ("/a b/c", "path") and rows["c"] == ("RED", "enum")
    assert rows["items.0"][1] == "config" and rows["items.0.a"] == (5, "int")
    assert rows["name"] == ("x\n'\"\x00", "str")


def test_generate_mode_records_every_submission(workdir: Path) -> None:
    with run_xp(workdir, "gen", run_mode="generate"):
        for i in range(300):
            Count(n=tag(i)).submit()
    with open_index(workdir, readonly=True) as index:
        assert index.query("SELECT COUNT(*) FROM jobs WHERE state = 'UNSCHEDULED'")[0][0] == 300
        assert (
            index.query("SELECT COUNT(*) FROM tags WHERE key = 'n' AND value >= 150")[0][0] == 150
        )
        assert index.query("SELECT end_time FROM runs")[0][0] is not None
    assert check(workdir) == []


def test_dry_run_writes_no_index(workdir: Path) -> None:
    with run_xp(workdir, "dry", run_mode="dry-run"):
        Count(n=1).submit()
    assert not (workdir / "xpm.db").exists()


def test_unwritable_index_never_loses_a_job(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "not-a-db"
    bad.write_bytes(b"this is not SQLite" * 100)
    monkeypatch.setenv("XPM_INDEX", str(bad))
    with caplog.at_level(logging.WARNING, logger="xpm.index"), run_xp(workdir) as xp:
        Count(n=1).submit()
    assert [j.state for j in xp.jobs.values()] == ["DONE"]
    assert "xpm index rebuild" in caplog.text and "not an SQLite database" in caplog.text
    # The index can be rebuilt afterwards, to the file XPM_INDEX names.
    rebuild(workdir)
    assert list_jobs(workdir)[0]["state"] == "DONE"


def test_a_failed_index_write_is_tried_again(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real SQLite failure (the database is full: its page limit is the disk limit's
    stand-in) keeps the rows for the next write instead of dropping them."""
    with (
        caplog.at_level(logging.WARNING, logger="xpm.index"),
        run_xp(workdir, "gen", run_mode="generate") as xp,
    ):
        recorder = xp._recorder
        conn = recorder.index.conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        for i in range(300):
            Count(n=tag(i)).submit()
        recorder.flush()
        assert recorder.failures >= 1
        conn.execute("PRAGMA max_page_count = 1073741823")  # room again
    assert "database or disk is full" in caplog.text and "tries again" in caplog.text
    assert len(list_jobs(workdir)) == 300
    with open_index(workdir, readonly=True) as index:
        assert index.query("SELECT COUNT(*) FROM submissions")[0][0] == 300
        assert index.query("SELECT COUNT(*) FROM tags WHERE key = 'n'")[0][0] == 300
    assert check(workdir) == []


def test_xpm_index_env_moves_the_file(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "local" / "index.db"
    monkeypatch.setenv("XPM_INDEX", str(elsewhere))
    with run_xp(workdir, "gen", run_mode="generate"):
        Count(n=1).submit()
    assert elsewhere.exists() and not (workdir / "xpm.db").exists()
    with open_index(workdir) as index:
        assert index.path == elsewhere and index.journal_mode == "wal"
        assert index.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --- rebuild and check ----------------------------------------------------------------------
def test_rebuild_equals_recorded_index_row_for_row(sweep: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)  # a moved workdir keeps everything (paths are relative)
    before = snapshot(copy, copied=True)
    assert sum(len(rows) for rows in before.values()) > 50
    remove_index(copy)
    counts = rebuild(copy)
    assert counts["jobs"] == 8
    after = snapshot(copy, copied=True)
    for name in before:
        assert after[name] == before[name], name
    # Rebuilding over an existing index gives the same rows again, inodes included.
    rebuilt = snapshot(copy)
    rebuild(copy)
    assert snapshot(copy) == rebuilt


def test_check_reports_every_mismatch(sweep: Path, tmp_path: Path) -> None:
    wd = tmp_path / "copy"
    shutil.copytree(sweep, wd)
    assert check(wd) == []
    jobs = sorted(iter_job_dirs(wd), key=lambda j: j.identifier)
    gone, extra, changed, rerun = jobs[0], jobs[1], jobs[2], jobs[3]
    shutil.rmtree(gone.path)
    with open_index(wd) as index:
        index.write(lambda c: c.execute("DELETE FROM jobs WHERE id = ?", (extra.identifier,)))
        index.write(
            lambda c: c.execute(
                "UPDATE jobs SET state = 'RUNNING' WHERE id = ?", (changed.identifier,)
            )
        )
        # What a run the index missed leaves (an older xpm's, refusing a newer index):
        # a job run again to the same end, and the run itself.
        index.write(
            lambda c: c.execute(
                "UPDATE jobs SET attempt = attempt - 1 WHERE id = ?", (rerun.identifier,)
            )
        )
    record = sorted(wd.glob("experiments/*/runs/*.json"))[0]
    doc = json.loads(record.read_text())
    doc["run_id"] = "missed"
    record.with_name("missed.json").write_text(json.dumps(doc))
    found = {(m.kind, m.job.split("/")[-1]) for m in check(wd)}
    assert found == {
        ("missing-dir", gone.identifier),
        ("missing-row", extra.identifier),
        ("state", changed.identifier),
        ("attempt", rerun.identifier),
        ("missing-run", "missed"),
    }
    rebuild(wd)
    assert check(wd) == []


def test_check_reports_a_done_job_whose_marker_was_removed(sweep: Path, tmp_path: Path) -> None:
    """The next run runs such a job again: its record must not keep saying DONE."""
    wd = tmp_path / "copy"
    shutil.copytree(sweep, wd)
    done = next(j for j in iter_job_dirs(wd) if j.is_done())
    done.done_marker.unlink()
    status = done.read_status()
    assert (status.state, status.reason) == ("FAILED", DONE_MARKER_MISSING)
    found = [(m.kind, m.job.split("/")[-1]) for m in check(wd)]
    assert found == [("state", done.identifier)]
    rebuild(wd)
    assert check(wd) == []
    assert {j["id"]: j["state"] for j in list_jobs(wd)}[done.identifier] == "FAILED"


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_index_names_the_rebuild_command(sweep: Path, tmp_path: Path, damage: str) -> None:
    wd = tmp_path / "copy"
    shutil.copytree(sweep, wd)
    with open_index(wd) as index:  # fold the WAL into the file so that it is all there is
        index.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    remove_index_side_files(wd)
    db = wd / "xpm.db"
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 1000)
    for call in (lambda: open_index(wd), lambda: check(wd), lambda: list_jobs(wd)):
        with pytest.raises(IndexDatabaseError, match="xpm index rebuild"):
            call()
    rebuild(wd)
    assert check(wd) == [] and len(list_jobs(wd)) == 8


def remove_index_side_files(workdir: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{workdir / 'xpm.db'}{suffix}").unlink(missing_ok=True)


# --- queries ----------------------------------------------------------------------------------
def test_list_jobs_filters(sweep: Path) -> None:
    assert {j["task_id"] for j in list_jobs(sweep, state="failed")} == {"xpm_test_tasks.fail"}
    assert len(list_jobs(sweep, task="learn")) == 3
    assert len(list_jobs(sweep, task="xpm_test_tasks.evaluate")) == 3
    assert list_jobs(sweep, task="earn") == []  # the last part of a task id, not a substring
    cnn = list_jobs(sweep, tags={"activation": "cnn"})
    assert len(cnn) == 4 and all(j["tags"]["activation"] == "cnn" for j in cnn)
    # A command-line string matches the typed value: "3" is the integer 3.
    three = list_jobs(sweep, tags={"n_layers": "3", "activation": "cnn"})
    assert len(three) == 2 and {j["tags"]["n_layers"] for j in three} == {3}
    assert list_jobs(sweep, tags={"n_layers": "3", "activation": "mlp"}) == []
    assert {j["experiment"] for j in list_jobs(sweep, experiment="gen")} == {"gen"}
    assert len(list_jobs(sweep, experiment="sweep")) == 7
    assert len(list_jobs(sweep, since=time.time() - 3600)) == 8
    assert list_jobs(sweep, since=time.time() + 3600) == []
    assert len(list_jobs(sweep, limit=2)) == 2
    with open_index(sweep, readonly=True) as index:
        commits = [
            r[0]
            for r in index.query("SELECT commit_sha FROM git_states WHERE commit_sha IS NOT NULL")
        ]
    if commits:  # the tests live in a git repository: its commit was recorded
        assert len(list_jobs(sweep, commit=commits[0][:8])) == 8
    assert list_jobs(sweep, commit="0000000") == []
    with pytest.raises(UsageError, match="unknown state"):
        list_jobs(sweep, state="SLEEPING")


def test_find_job_by_prefix_and_task(sweep: Path) -> None:
    failed = list_jobs(sweep, state="FAILED")[0]
    assert find_job(sweep, failed["id"][:10])["id"] == failed["id"]
    assert find_job(sweep, f"fail/{failed['id'][:6]}")["id"] == failed["id"]
    assert find_job(sweep, f"jobs/xpm_test_tasks.fail/{failed['id']}")["id"] == failed["id"]
    with pytest.raises(UsageError, match="matches several jobs"):
        find_job(sweep, "learn/")
    assert find_job(sweep, "fail/")["id"] == failed["id"]
    with pytest.raises(UsageError, match="no job matches"):
        find_job(sweep, f"learn/{failed['id'][:10]}")
    with pytest.raises(UsageError, match="identifier prefix"):
        find_job(sweep, "not-hex'; --")


def test_dead_running_job_is_reconciled_to_failed(workdir: Path) -> None:
    with run_xp(workdir, "gen", run_mode="generate") as xp:
        SelfKill().submit()
    jobdir = next(iter(xp.jobs.values())).jobdir
    # The job process records RUNNING, then dies by SIGKILL before writing any marker.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-m", "xpm.run", str(jobdir.path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -9
    assert jobdir.read_status().state == "RUNNING"
    rebuild(workdir)
    with open_index(workdir) as index:
        assert index.query("SELECT state FROM jobs")[0][0] == "RUNNING"
    # The next read finds the process gone: marker and event first, then the row.
    job = list_jobs(workdir)[0]
    assert job["state"] == "FAILED" and "is gone" in job["reason"]
    assert jobdir.failed_marker.exists() and jobdir.read_status().state == "FAILED"
    with open_index(workdir, readonly=True) as index:
        assert index.query("SELECT state FROM jobs")[0][0] == "FAILED"
    assert check(workdir) == []


def test_live_running_job_is_not_touched(workdir: Path, tmp_path: Path) -> None:
    started = tmp_path / "started"
    with run_xp(workdir, "gen", run_mode="generate") as xp:
        Count(n=1, sleep=30, started=str(started)).submit()
    jobdir = next(iter(xp.jobs.values())).jobdir
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "xpm.run", str(jobdir.path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        rebuild(workdir)
        assert list_jobs(workdir)[0]["state"] == "RUNNING"
        assert not jobdir.failed_marker.exists()
    finally:
        proc.kill()
        proc.wait()


# --- schema, migrations, docs ------------------------------------------------------------------
def test_empty_file_is_a_new_index(tmp_path: Path) -> None:
    (tmp_path / "xpm.db").touch()  # version 0: SQLite created the file, nothing was written
    with open_index(tmp_path) as index:
        assert schema_version(index.conn) == SCHEMA_VERSION
        names = {r[0] for r in index.query("SELECT name FROM sqlite_master")}
    assert {t.name for t in TABLES} | {v.name for v in VIEWS} | {i.name for i in INDEXES} <= names


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "xpm.db") as conn:
        conn.execute("CREATE TABLE other (x)")
    conn.close()
    with pytest.raises(IndexDatabaseError, match="not an xpm index"):
        open_index(tmp_path)


def test_migration_upgrades_in_place_keeping_rows(tmp_path: Path) -> None:
    # Version 2 of a schema: a new column in jobs, a new table, and a data fix.
    jobs_v2 = Table(
        "jobs",
        "",
        (
            *(c for c in TABLES[[t.name for t in TABLES].index("jobs")].columns),
            Column("priority", "INTEGER", "", since=2),
        ),
        ("id",),
    )
    notes = Table(
        "notes",
        "",
        (Column("job_id", "TEXT", ""), Column("text", "TEXT", "")),
        ("job_id",),
        since=2,
    )
    tables_v2 = [jobs_v2 if t.name == "jobs" else t for t in TABLES] + [notes]

    def fill_priority(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE jobs SET priority = 5")

    path = tmp_path / "xpm.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        migrate(conn, target=1, tables=tables_v2)  # what an older xpm wrote
        assert schema_version(conn) == 1
        conn.execute("INSERT INTO jobs (id, task_id, state) VALUES ('abc', 't', 'DONE')")
        conn.execute("INSERT INTO tags (job_id, key, value, type) VALUES ('abc', 'k', 3, 'int')")
        assert "priority" not in [r[1] for r in conn.execute("PRAGMA table_info(jobs)")]
        assert migrate(conn, target=2, tables=tables_v2, custom={2: fill_priority}) == (1, 2)
        assert conn.execute("SELECT id, state, priority FROM jobs").fetchall() == [
            ("abc", "DONE", 5)
        ]
        assert conn.execute("SELECT value FROM tags").fetchall() == [(3,)]
        assert conn.execute("SELECT COUNT(*) FROM notes").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM job_summary").fetchone() == (1,)
        # The upgraded layout equals a database created at version 2 directly.
        fresh = sqlite3.connect(":memory:", isolation_level=None)
        migrate(fresh, target=2, tables=tables_v2)
        for t in tables_v2:
            assert [r[1:3] for r in conn.execute(f"PRAGMA table_info({t.name})")] == [
                r[1:3] for r in fresh.execute(f"PRAGMA table_info({t.name})")
            ]
        fresh.close()
        # An older xpm refuses an index from the future instead of damaging it.
        with pytest.raises(IndexDatabaseError, match="newer xpm"):
            migrate(conn, target=1, tables=tables_v2)
    finally:
        conn.close()


def test_an_index_of_schema_5_gets_the_newest_first_order_of_the_web_view(
    tmp_path: Path,
) -> None:
    with open_index(tmp_path) as index:
        index.conn.execute(
            "INSERT INTO jobs (id, task_id, state, submit_time) VALUES ('abc', 't', 'DONE', 1)"
        )
        index.conn.execute("DROP INDEX idx_jobs_newest")  # what xpm wrote at schema 5
        drop_digests(index.conn)
        index.conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    with open_index(tmp_path) as index:  # opening for writing migrates
        assert schema_version(index.conn) == SCHEMA_VERSION >= 6
        assert [r[0] for r in index.query("SELECT id FROM jobs")] == ["abc"]
        plan = " ".join(
            str(r[-1])
            for r in index.conn.execute(
                # The order in which Datasette pages /xpm/jobs (sort_desc submit_time).
                "EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE submit_time < 5 OR "
                "submit_time IS NULL OR (submit_time = 5 AND id > 'a') "
                "ORDER BY submit_time DESC, id LIMIT 101"
            )
        )
    assert "idx_jobs_newest" in plan and "TEMP B-TREE" not in plan


def test_schema_sql_matches_the_data_source(tmp_path: Path) -> None:
    with open_index(tmp_path) as index:
        for t in TABLES:
            columns = [(r[1], r[2]) for r in index.conn.execute(f'PRAGMA table_info("{t.name}")')]
            assert columns == [(c.name, c.type) for c in t.columns], t.name
            assert "CREATE TABLE" in create_table_sql(t)
        for v in VIEWS:
            columns = [r[1] for r in index.conn.execute(f'PRAGMA table_info("{v.name}")')]
            assert columns == [name for name, _ in v.columns], v.name
    meta = datasette_metadata()["databases"]["xpm"]["tables"]
    assert set(meta) == {t.name for t in TABLES} | {v.name for v in VIEWS}
    assert all(meta[t.name]["columns"][c.name] for t in TABLES for c in t.columns)


def test_docs_schema_reference_is_up_to_date() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert render_markdown() in text, (
        "docs/index.md is out of date: run `python -m xpm.index._schemadoc docs/index.md`"
    )
    for t in TABLES:
        for c in t.columns:
            assert f"| `{c.name}` |" in text


def test_cookbook_queries_run_on_a_real_index(sweep: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    cookbook = text[text.index("## Values keep their types") : text.index("## Schema")]
    queries = re.findall(r"```sql\n(.*?)```", cookbook, re.S)
    assert len(queries) == 8
    with open_index(sweep, readonly=True) as index:
        commit = index.query("SELECT commit_sha FROM git_states")
        params = {"commit": (commit[0][0] or "")[:7] if commit else "", "job": ""}
        results = [index.query(q, params) for q in queries]
    for by_n in results[0], results[1]:
        assert [(n, round(a, 6)) for n, a in by_n] == [(1, 0.6), (3, 0.8), (4, 0.9)]
    results = results[1:]
    best = [(r["activation"], round(r["best_accuracy"], 6)) for r in results[1]]
    assert best == [("mlp", 0.9), ("cnn", 0.8)]
    table = [(r["task_id"].split(".")[-1], r["n_layers"], r["activation"]) for r in results[2]]
    assert len(table) == 7 and ("evaluate", 4, "mlp") in table and ("fail", None, None) in table
    assert [r["task_id"] for r in results[3]] == ["xpm_test_tasks.fail"]
    if params["commit"]:
        assert len({r["id"] for r in results[4]}) == 8
    assert [r["n_layers"] for r in results[5]] == [3, 4]
    # The sweep run launched every job it submitted; the generated job was never launched.
    produced = sorted((r["run"].split("/")[0], r["produced_it"]) for r in results[6])
    assert produced == [("gen", None)] + [("sweep", 1)] * 7


def test_rerunning_done_jobs_fills_a_missing_index(workdir: Path) -> None:
    """A re-run skips re-reading DONE jobs the index has, but restores the ones it lacks."""
    with experiment(workdir, "again", progress=False):
        for n in (1, 2):
            Count(n=tag(n)).submit()
    db_path = workdir / "xpm.db"
    with sqlite3.connect(db_path) as db:
        before = db.execute("SELECT id, state FROM jobs ORDER BY id").fetchall()
        params_before = db.execute("SELECT count(*) FROM params").fetchone()[0]
    assert [state for _id, state in before] == ["DONE", "DONE"]
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    with experiment(workdir, "again", progress=False) as xp:
        for n in (1, 2):
            Count(n=tag(n)).submit()
    assert xp.counts() == {"ALREADY_DONE": 2}
    with sqlite3.connect(db_path) as db:
        after = db.execute("SELECT id, state FROM jobs ORDER BY id").fetchall()
        params_after = db.execute("SELECT count(*) FROM params").fetchone()[0]
        tags = db.execute("SELECT count(*) FROM tags WHERE key = 'n'").fetchone()[0]
        runs = db.execute("SELECT count(*) FROM submissions").fetchone()[0]
    assert after == before and params_after == params_before and tags == 2
    assert runs == 2  # this run's two submissions (the first run's record is on disk only)


def test_reading_an_index_of_a_newer_xpm_says_to_upgrade_xpm(workdir: Path) -> None:
    """`xpm serve` and `xpm index check` open the index read-only: an index of a newer
    schema is one this xpm can neither read nor upgrade by a run (a trial was told to
    "open it for writing once" with the older xpm, which cannot)."""
    with experiment(workdir, "xp", "generate", progress=False):
        Count(n=1).submit()
    conn = sqlite3.connect(workdir / "xpm.db", isolation_level=None)
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.close()
    for args in (["index", "check"], ["serve", "--port", "0"]):
        done = subprocess.run(
            [sys.executable, "-m", "xpm.cli", *args, "--workdir", str(workdir)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "newer xpm (schema version 999" in lines[0], done.stderr
        assert "upgrade xpm" in lines[0] and "open it for writing" not in lines[0]


def test_rebuild_never_replaces_an_index_written_by_a_newer_xpm(workdir: Path) -> None:
    from xpm.errors import IndexTooNewError

    with experiment(workdir, "xp", "generate", progress=False):
        Count(n=1).submit()
    db = workdir / "xpm.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(IndexTooNewError, match="newer xpm"):
        rebuild(workdir)
    assert db.read_bytes() == before  # a damaged index is replaced; this one is kept
