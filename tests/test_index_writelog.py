"""xpm/index/_writecount.py's log of writes (``job_writes``, schema 10) and what the web
view brings up to date from it instead of reading it again: an experiment's jobs
(xpm/index/_experimentjobs.py) and the tag counts of a runs table's jobs.

Real SQLite files written by xpm's recorder, then written the ways a running experiment
(and `xpm clean`, a second run, another experiment) writes them, in plain SQL.
"""

from __future__ import annotations

import random
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_index_keptvalues import write
from test_index_writecount import as_written_by_schema, run, seed_facet

from xpm.index import KeptByWrites, open_index, settings_writes
from xpm.index import _experimentjobs as ej
from xpm.index._writecount import LOGGED, Changes, changes_since, last_write


def connect(workdir: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{workdir / 'xpm.db'}?mode=ro", uri=True)


def test_the_log_names_the_jobs_and_runs_written_and_keeps_the_latest(tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    run(workdir)
    conn = connect(workdir)
    try:
        seq = last_write(conn)
        assert seq is not None and seq > 0
        jobs = [r[0] for r in conn.execute("SELECT id FROM jobs ORDER BY id")]
        write(workdir, "UPDATE results SET value = value + 1")  # reports: not logged
        assert last_write(conn) == seq
        write(workdir, "UPDATE jobs SET state = 'RUNNING' WHERE id = ?", jobs[0])
        write(workdir, "UPDATE runs SET host = 'other'")
        changes = changes_since(conn, seq)
        assert changes is not None and changes.jobs == {jobs[0]}
        assert changes.runs == {r[0] for r in conn.execute("SELECT id FROM runs")}
        write(workdir, "DELETE FROM submissions WHERE job_id = ?", jobs[1])
        changes = changes_since(conn, seq)
        assert changes is not None and changes.jobs == {jobs[0], jobs[1]}
        assert changes_since(conn, seq, limit=2) is None  # more rows than asked for
        # Past LOGGED writes, the oldest are gone: what was kept then cannot be updated.
        with sqlite3.connect(workdir / "xpm.db") as writer:
            writer.executemany(
                "UPDATE jobs SET pid = ? WHERE id = ?", [(n, jobs[2]) for n in range(LOGGED)]
            )
        writer.close()
        assert changes_since(conn, seq) is None
        assert conn.execute("SELECT COUNT(*) FROM job_writes").fetchone()[0] == LOGGED
        latest = last_write(conn)
        assert latest is not None
        got = changes_since(conn, latest - 3)
        assert got is not None and got.jobs == {jobs[2]}
    finally:
        conn.close()


def test_the_log_tells_jobs_added_removed_moved_and_given_other_settings(
    tmp_path: Path,
) -> None:
    with open_index(tmp_path):
        pass
    conn = connect(tmp_path)
    try:
        start = last_write(conn)
        assert start == 0
        for sql in (
            "INSERT INTO jobs (id, task_id, params_digest) VALUES ('a', 't', 'd'), ('b', 't', 'd'), "
            "('c', 't', 'd'), ('d', 't', 'd')",
            "INSERT INTO jobs (id, task_id, params_digest) VALUES ('a', 't', 'd') "
            "ON CONFLICT(id) DO UPDATE SET state = 'DONE'",  # xpm's upsert: a write
            "UPDATE jobs SET params_digest = 'e' WHERE id = 'b'",
            "UPDATE jobs SET task_id = 'u' WHERE id = 'c'",
            "UPDATE jobs SET id = 'd2' WHERE id = 'd'",
        ):
            write(tmp_path, sql)
        changes = changes_since(conn, 4)  # after the four inserts
        assert changes is not None
        assert changes.added == set() and changes.resettled == {"b"}
        assert changes.removed == {"c", "d", "d2"} and changes.jobs == {"a", "b", "c", "d", "d2"}
        everything = changes_since(conn, 0)
        assert everything is not None and everything.added == {"a", "b", "c", "d"}
        before = last_write(conn)
        assert before == 9  # 4 inserts, 3 updates, an id changed (the new one, the old one)
        write(tmp_path, "DELETE FROM jobs WHERE id = 'a'")
        gone = changes_since(conn, before)
        assert gone is not None and gone.removed == {"a"} and gone.jobs == {"a"}
    finally:
        conn.close()


def test_an_index_of_schema_9_gets_the_log(tmp_path: Path) -> None:
    as_written_by_schema(tmp_path, 9)
    conn = connect(tmp_path)
    assert last_write(conn) is None
    conn.close()
    with open_index(tmp_path):  # opening for writing migrates
        pass
    conn = connect(tmp_path)
    try:
        assert last_write(conn) == 0
        write(tmp_path, "UPDATE jobs SET state = 'FAILED'")
        assert changes_since(conn, 0) == Changes(frozenset({"abc"}), frozenset())
    finally:
        conn.close()


# --- an experiment's jobs, brought up to date -----------------------------------------------
class Index:
    """An index of two experiments written as the recorder writes them, in plain SQL."""

    def __init__(self, workdir: Path) -> None:
        with open_index(workdir):  # the schema, the triggers
            pass
        self.workdir = workdir
        self.conn = sqlite3.connect(workdir / "xpm.db")
        self.rng = random.Random(7)
        self.runs = {"a": ["a/1"], "b": ["b/1"]}
        self.clock = 1000.0
        for experiment, (name,) in self.runs.items():
            self.sql("INSERT INTO runs (id, experiment) VALUES (?, ?)", name, experiment)
        self.jobs: list[str] = []

    def sql(self, sql: str, *args: Any) -> None:
        with self.conn:
            self.conn.execute(sql, args)

    def tick(self) -> float:
        self.clock += self.rng.choice([0.0, 1.0, 2.5])  # ties too: ordered by id then
        return self.clock

    def submit(self, run: str, job: str | None = None) -> None:
        """A new job (of one of two tasks), or ``job`` submitted again by ``run``."""
        now = self.tick()
        with self.conn:
            if job is None:
                job = f"{self.rng.getrandbits(64):016x}"
                self.jobs.append(job)
                self.conn.execute(
                    "INSERT INTO jobs (id, task_id, state, submit_time, attempt, params_digest) "
                    "VALUES (?, ?, 'WAITING', ?, 1, ?)",
                    (job, self.rng.choice(["t.learn", "t.eval"]), now, job[:4]),
                )
            else:
                self.conn.execute(
                    "UPDATE jobs SET submit_time = ?, state = 'WAITING' WHERE id = ?", (now, job)
                )
            self.conn.execute("INSERT OR IGNORE INTO submissions VALUES (?, ?, ?)", (run, job, now))

    def step(self) -> str:
        """One write a running experiment (or a second run, another experiment, a clean)
        makes; returns what it was."""
        what = self.rng.choice(
            ["submit", "submit", "state", "state", "state", "again", "new run", "other", "end"]
        )
        if what == "submit" or not self.jobs:
            self.submit(self.rng.choice(self.runs["a"]))
        elif what == "state":
            job = self.rng.choice(self.jobs)
            self.sql(
                "UPDATE jobs SET state = ? WHERE id = ?", self.rng.choice(["RUNNING", "DONE"]), job
            )
        elif what == "end":
            job = self.rng.choice(self.jobs)
            self.sql(
                "UPDATE jobs SET end_time = ?, attempt = attempt + 1 WHERE id = ?", self.tick(), job
            )
        elif what == "again":  # a later run of the experiment submits a job again
            self.submit(self.runs["a"][-1], self.rng.choice(self.jobs))
        elif what == "new run":
            name = f"a/{len(self.runs['a']) + 1}"
            self.runs["a"].append(name)
            self.sql("INSERT INTO runs (id, experiment) VALUES (?, ?)", name, "a")
        else:  # another experiment: a new job, or one of a's submitted by it too
            self.submit("b/1", self.rng.choice([None, *self.jobs]))
        return what


def test_an_experiments_jobs_brought_up_to_date_equal_a_fresh_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = Index(tmp_path)
    reads: list[str] = []
    fresh = ej.read_experiment_jobs

    def counted(conn: sqlite3.Connection, experiment: str) -> ej.ExperimentJobs:
        reads.append(experiment)
        return fresh(conn, experiment)

    monkeypatch.setattr(ej, "read_experiment_jobs", counted)
    kept = KeptByWrites()
    reader = connect(tmp_path)

    def check() -> None:
        with reader:  # one snapshot, as the web view reads
            reader.execute("BEGIN")
            got = ej.experiment_jobs(reader, "a", kept)
            expected = fresh(reader, "a").tasks
        assert list(got) == list(expected)  # the task submitted first, first
        assert got == expected

    check()
    steps = []
    for _ in range(300):
        steps.append(index.step())
        check()
    # Brought up to date from the log, read again only when a run of the experiment is
    # written (its submissions may have been recorded before it).
    assert len(reads) == 1 + steps.count("new run")
    assert {"submit", "state", "end", "again", "other", "new run"} <= set(steps)
    # A submission recorded before its run's row (the run's record unread yet): the job
    # joins the experiment when the run's row comes.
    index.submit("a/late")
    check()
    index.sql("INSERT INTO runs (id, experiment) VALUES ('a/late', 'a')")
    check()
    steps.append("new run")
    # A job cleaned (its submissions and row gone): read again, and right.
    gone = index.jobs[0]
    index.sql("DELETE FROM submissions WHERE job_id = ?", gone)
    index.sql("DELETE FROM jobs WHERE id = ?", gone)
    check()
    assert len(reads) == 2 + steps.count("new run")
    # More writes than the log keeps: read again.
    with index.conn:
        index.conn.executemany(
            "UPDATE jobs SET pid = ? WHERE id = ?", [(n, index.jobs[1]) for n in range(LOGGED)]
        )
    check()
    assert len(reads) == 3 + steps.count("new run")
    # Writes no xpm writer makes, each followed by a fresh comparison: the first
    # submission of a task moved later (the task order may change), a run moved to
    # another experiment, a run deleted with its row only.
    first_task = next(iter(fresh(reader, "a").tasks))
    earliest = reader.execute(
        "SELECT s.run, s.job_id FROM submissions s JOIN runs r ON r.id = s.run JOIN jobs j "
        "ON j.id = s.job_id WHERE r.experiment = 'a' AND j.task_id = ? ORDER BY s.time LIMIT 1",
        (first_task,),
    ).fetchone()
    index.sql("UPDATE submissions SET time = 1e9 WHERE run = ? AND job_id = ?", *earliest)
    check()
    index.sql("UPDATE runs SET experiment = 'b' WHERE id = 'a/1'")
    check()
    index.sql("DELETE FROM runs WHERE id = 'a/late'")
    check()
    reader.close()


def test_a_rebuild_or_an_older_copy_of_the_file_is_read_again(tmp_path: Path) -> None:
    """`xpm index rebuild` rewrites every row (a job whose directory is gone is dropped):
    what was kept is read again, as it is when the file is replaced by an older copy of
    itself (the same name, a log that went back)."""
    import shutil

    from xpm.index import rebuild

    workdir = tmp_path / "wd"
    run(workdir)
    kept = KeptByWrites()

    def both() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        conn = connect(workdir)
        try:
            with conn:
                conn.execute("BEGIN")
                got = ej.experiment_jobs(conn, "e", kept)
                expected = ej.read_experiment_jobs(conn, "e").tasks
            return {t: j.ids for t, j in got.items()}, {t: j.ids for t, j in expected.items()}
        finally:
            conn.close()

    got, expected = both()
    assert got == expected and sum(len(ids) for ids in got.values()) == 3
    shutil.copy(workdir / "xpm.db", tmp_path / "older.db")
    conn = connect(workdir)
    gone = conn.execute("SELECT path FROM jobs ORDER BY id LIMIT 1").fetchone()[0]
    conn.close()
    shutil.rmtree(workdir / gone)
    rebuild(workdir)
    got, expected = both()
    assert got == expected and sum(len(ids) for ids in got.values()) == 2
    for suffix in ("-wal", "-shm"):
        (workdir / f"xpm.db{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "older.db", workdir / "xpm.db")
    got, expected = both()
    assert got == expected and sum(len(ids) for ids in got.values()) == 3


def test_xpm_never_writes_a_job_over_another() -> None:
    """The log tells a job added from one written again because xpm upserts jobs: an
    INSERT OR REPLACE would delete the old row without its trigger, and a job moved or
    retagged that way would read as added only."""
    package = Path(__file__).resolve().parents[1] / "xpm"
    found = [
        path.name
        for path in package.rglob("*.py")
        if re.search(r"(REPLACE|OR\s+REPLACE)\s+INTO\s+\"?jobs\b", path.read_text("utf-8"))
    ]
    assert found == []


# --- a runs table's tag counts ----------------------------------------------------------------
def test_a_runs_tables_tag_counts_follow_only_its_own_jobs_writes(tmp_path: Path) -> None:
    """The tag counts of an experiment's table are kept while other jobs are written with
    their settings (a second experiment's submissions change the count of settings
    written), and counted again when one of its own jobs is."""
    workdir = tmp_path / "wd"
    seeds = seed_facet(workdir)
    assert seeds() == ["0", "1", "2"]
    conn = connect(workdir)
    mine = [r[0] for r in conn.execute("SELECT job_id FROM tags WHERE key = 'seed' ORDER BY value")]
    conn.close()
    # Behind the index's back: no job row written, so nothing says the tag changed.
    write(workdir, "UPDATE tags SET value = 7 WHERE key = 'seed' AND job_id = ?", mine[0])
    before = settings(workdir)
    with pytest.MonkeyPatch.context() as mp:  # another experiment's job, with its settings
        mp.setenv("XPM_GIT", "off")
        from xpm_chart_tasks import Fit

        from xpm import tag
        from xpm._experiment import experiment

        with experiment(workdir, "other", progress=False):
            Fit(lr=0.5, seed=tag(9), epochs=1).submit()
    assert settings(workdir) != before
    assert seeds() == ["0", "1", "2"]  # kept: none of this table's jobs was written
    # A job of the table written without other settings: what is kept by them stays.
    write(workdir, "UPDATE jobs SET host = 'h2' WHERE id = ?", mine[0])
    assert seeds() == ["0", "1", "2"]
    # Written with other settings (as write_jobs writes a job's tags): counted again.
    write(workdir, "UPDATE jobs SET params_digest = 'other' WHERE id = ?", mine[0])
    assert seeds() == ["1", "2", "7"]
    # Not as xpm writes: a job of the table written over (logged as added only).
    write(workdir, "UPDATE tags SET value = 8 WHERE key = 'seed' AND job_id = ?", mine[1])
    write(
        workdir,
        "INSERT OR REPLACE INTO jobs SELECT * FROM jobs WHERE id = ?",
        mine[1],
    )
    assert seeds() == ["2", "7", "8"]


def settings(workdir: Path) -> int | None:
    conn = connect(workdir)
    try:
        return settings_writes(conn)
    finally:
        conn.close()


# --- a task's table over every job ------------------------------------------------------------
def test_a_whole_tasks_counts_and_order_brought_up_to_date_equal_a_fresh_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs submitted into the task and into another, started, ended, written with other
    tags or removed, in plain SQL as xpm writes them: the kept counts of the task's tags,
    the other tasks' jobs and a page ordered by a tag, brought up to date from the log,
    equal a fresh read after each write; jobs only started or submitted never make them
    read again."""
    from xpm.index import _wholetask as wt

    with open_index(tmp_path):
        pass
    conn = sqlite3.connect(tmp_path / "xpm.db")
    rng = random.Random(3)
    jobs: dict[str, str] = {}

    def sql(query: str, *args: Any) -> None:
        with conn:
            conn.execute(query, args)

    def add(task: str) -> None:
        job = f"{rng.getrandbits(64):016x}"
        jobs[job] = task
        with conn:
            conn.execute(
                "INSERT INTO jobs (id, task_id, state, params_digest) VALUES (?, ?, 'WAITING', ?)",
                (job, task, job[:6]),
            )
            conn.executemany(
                "INSERT INTO tags (job_id, key, value, type) VALUES (?, ?, ?, 'int')",
                [(job, "seed", rng.randrange(4)), (job, "lr", rng.randrange(3))],
            )

    for _ in range(40):
        add("t.main")
    for _ in range(10):
        add("t.other")
    kept = KeptByWrites(count=settings_writes)
    reads: list[str] = []
    real = wt._others_values

    def counted(*args: Any) -> Any:
        reads.append("_others_values")
        return real(*args)

    monkeypatch.setattr(wt, "_others_values", counted)
    reader = connect(tmp_path)

    def check() -> None:
        with reader:
            reader.execute("BEGIN")
            others = wt.others_count(reader, "t.main", kept)
            assert others == wt.others_count(reader, "t.main")
            assert others is not None
            keys = ["lr", "seed"]
            got = wt.task_tags(reader, "t.main", others, keys, kept)
            assert got == wt.task_tags(reader, "t.main", others, keys)
            count = sum(n for key, _v, n in got if key == "seed")
            for descending in (False, True):
                page = wt.sorted_page(
                    reader, "t.main", "tag", "seed", descending, 5, 10, count, kept
                )
                fresh = wt.sorted_page(reader, "t.main", "tag", "seed", descending, 5, 10, count)
                assert page == fresh and page is not None and len(page) == 10

    try:
        check()
        first = len(reads)
        for _ in range(60):  # what a running sweep writes: submissions into it, states
            if rng.random() < 0.4:
                add("t.main")
            else:
                job = rng.choice(list(jobs))
                sql(
                    "UPDATE jobs SET state = 'RUNNING', pid = ? WHERE id = ?",
                    rng.randrange(99),
                    job,
                )
            check()
        # The other tasks' values were read again only for the fresh pages compared with
        # (two per check): what was kept was brought up to date.
        assert len(reads) == first + 2 * 60
        main = [j for j, t in jobs.items() if t == "t.main"]
        other = [j for j, t in jobs.items() if t == "t.other"]
        for write in (
            lambda: add("t.other"),  # another task's job: read again
            lambda: (
                sql("UPDATE tags SET value = 9 WHERE job_id = ? AND key = 'seed'", main[0])
                or sql("UPDATE jobs SET params_digest = 'x' WHERE id = ?", main[0])
            ),
            lambda: (
                sql("DELETE FROM tags WHERE job_id = ?", other[0])
                or sql("DELETE FROM jobs WHERE id = ?", other[0])
            ),
            # Not as xpm writes: another task's job written over, into the task.
            lambda: sql(
                "INSERT OR REPLACE INTO jobs (id, task_id, state, params_digest) "
                "VALUES (?, 't.main', 'DONE', ?)",
                other[1],
                other[1][:6],
            ),
        ):
            write()
            check()
    finally:
        reader.close()
        conn.close()
