"""xpm/index/_chartdata.py and _runtables.py: what the web view's charts and runs tables
read, on a real index file written row by row.

Rows are inserted following the schema (as bench/bench_serve.py does) so the values can
be chosen: a result far from zero with a tiny spread, repeated submissions, Meta
parameters, several reports of one result.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from xpm.index import (
    KeptByWrites,
    Selection,
    column_values,
    experiment_jobs,
    facets,
    job_count,
    open_index,
    runs_table,
    settings_writes,
    step_means,
    stepped_results,
    task_columns,
)

TASK = "demo.train"
_JOB_COLUMNS = (
    "id, task_id, path, state, reason, attempt, submit_time, start_time, end_time, "
    "exit_code, signal, launcher, launcher_job_id, host, pid, last_run, last_submitted, git_state"
)


def job_row(ident: str, submitted: float, run: str, task: str = TASK) -> tuple[Any, ...]:
    return (ident, task, f"jobs/{task}/{ident}", "DONE", None, 1, submitted, submitted,
            submitted + 1, 0, None, "local", "1", "h", 1, run, submitted, None)  # fmt: skip


def ident(n: int) -> str:
    return f"{n:064x}"


def build(workdir: Path, fill: Any) -> None:
    """An index whose rows ``fill(conn)`` inserts (one experiment ``e`` of two runs)."""
    workdir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with open_index(workdir) as index:

        def write(_conn: object) -> None:
            c = index.conn
            c.execute("INSERT INTO experiments VALUES ('e', ?, ?, 2)", (now, now))
            for run in ("e/r1", "e/r2"):
                c.execute(
                    "INSERT INTO runs VALUES (?, 'e', ?, 'normal', ?, ?, 'h', 'u', 1, '{}')",
                    (run, run[2:], now, now + 1),
                )
            fill(c)

        index.write(write)


def read(workdir: Path) -> Any:
    import sqlite3

    return sqlite3.connect(f"file:{workdir / 'xpm.db'}?mode=ro", uri=True)


def test_experiment_jobs_are_newest_first_by_task_and_counted_once(tmp_path: Path) -> None:
    def fill(c: Any) -> None:
        rows = [job_row(ident(n), 100.0 + n, "e/r1") for n in range(4)]
        rows.append(job_row(ident(9), 50.0, "e/r1", task="demo.evaluate"))
        c.executemany(f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 18)})", rows)
        subs = [("e/r1", r[0], r[6]) for r in rows] + [("e/r2", ident(1), 300.0)]
        c.executemany("INSERT INTO submissions VALUES (?, ?, ?)", subs)

    build(tmp_path / "wd", fill)
    found = experiment_jobs(read(tmp_path / "wd"), "e")
    # Job 1 was submitted by both runs: listed once, at its place among the newest.
    assert {t: j.ids for t, j in found.items()} == {
        TASK: [ident(3), ident(2), ident(1), ident(0)],
        "demo.evaluate": [ident(9)],
    }
    assert found[TASK].states == ["DONE"] * 4
    assert experiment_jobs(read(tmp_path / "wd"), "nope") == {}


def test_column_values_latest_report_no_meta_and_upstream(tmp_path: Path) -> None:
    learn, evaluate = ident(1), ident(2)

    def fill(c: Any) -> None:
        rows = [job_row(learn, 1.0, "e/r1", "demo.learn"), job_row(evaluate, 2.0, "e/r1")]
        c.executemany(f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 18)})", rows)
        c.executemany(
            "INSERT INTO params (job_id, path, value, type, meta) VALUES (?, ?, ?, ?, ?)",
            [
                (learn, "epochs", 5, "int", 0),
                (evaluate, "lr", 0.1, "float", 0),
                (evaluate, "device", "cuda:0", "str", 1),  # Meta: never a chart column
                (evaluate, "model", f"jobs/demo.learn/{learn}/model.pt", "path", 1),
            ],
        )
        c.execute("INSERT INTO tags VALUES (?, 'seed', 3, 'int')", (evaluate,))
        c.executemany(
            "INSERT INTO results VALUES (?, ?, 'acc', ?, 'float', NULL, 0)",
            [(evaluate, 0, 0.5), (evaluate, 2, 0.9), (evaluate, 1, 0.7)],
        )

    build(tmp_path / "wd", fill)
    values = column_values(read(tmp_path / "wd"), [evaluate], "acc")
    assert values["result:acc"] == {evaluate: 0.9}  # the report with the highest seq
    assert values["param:lr"] == {evaluate: 0.1} and values["tag:seed"] == {evaluate: 3}
    assert "param:device" not in values and "param:model" not in values
    assert values["upstream:learn.epochs"] == {evaluate: 5}  # named by the Meta path
    # Over steps the latest value is not read.
    assert "result:acc" not in column_values(read(tmp_path / "wd"), [evaluate], None)


def test_step_means_match_python_even_far_from_zero(tmp_path: Path) -> None:
    """Means and spreads per group and step equal statistics.fmean/stdev, for values
    around 1e9 with a spread of 1e-3 (summing raw squares would lose every digit)."""
    values = {
        (job, step): 1e9 + 0.001 * job + step * 0.5
        for job in range(6)
        for step in range(3)  # fmt: skip
    }

    def fill(c: Any) -> None:
        rows = [job_row(ident(j), float(j), "e/r1") for j in range(6)]
        c.executemany(f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 18)})", rows)
        c.executemany(
            "INSERT INTO results VALUES (?, ?, 'time', ?, 'float', ?, 0)",
            [(ident(j), s, v, s) for (j, s), v in values.items()],
        )
        # Not numeric, or without a step: not part of any curve.
        c.execute("INSERT INTO results VALUES (?, 9, 'time', 'n/a', 'str', 1, 0)", (ident(0),))
        c.execute("INSERT INTO results VALUES (?, 8, 'time', 5.0, 'float', NULL, 0)", (ident(0),))

    build(tmp_path / "wd", fill)
    groups = {ident(j): j % 2 for j in range(6)}  # even and odd jobs
    conn = read(tmp_path / "wd")
    means = {(m.group, m.step): m for m in step_means(conn, groups, "time")}
    assert sorted(means) == [(g, s) for g in (0, 1) for s in range(3)]
    for (group, step), mean in means.items():
        ys = [values[j, step] for j in range(6) if j % 2 == group]
        assert mean.reports == 3
        assert mean.mean == pytest.approx(statistics.fmean(ys), rel=1e-15)
        assert mean.spread == pytest.approx(statistics.stdev(ys), rel=1e-6)
    assert stepped_results(conn, list(groups), ["time", "other"]) == ["time"]
    assert step_means(conn, groups, "other") == [] and step_means(conn, {}, "time") == []


def test_runs_tables_read_from_the_experiments_jobs_agree_with_sql(tmp_path: Path) -> None:
    """Counts, the state facet and newest-first pages taken from experiment_jobs are what
    the SQL over submissions gives, with filters, in both orders, on every page; jobs of
    another experiment and of another task stay out, a job submitted twice counts once."""

    def fill(c: Any) -> None:
        rows = [job_row(ident(n), 100.0 + n % 7, "e/r1") for n in range(23)]
        rows += [job_row(ident(50 + n), 200.0 + n, "x/r1") for n in range(3)]
        rows.append(job_row(ident(90), 150.0, "e/r1", task="demo.evaluate"))
        states = ["DONE", "FAILED", "RUNNING"]
        rows = [(*r[:3], states[k % 3], *r[4:]) for k, r in enumerate(rows)]
        c.execute("INSERT INTO experiments VALUES ('x', 0, 0, 1)")
        c.execute("INSERT INTO runs VALUES ('x/r1', 'x', 'r1', 'normal', 0, 1, 'h', 'u', 1, '{}')")
        c.executemany(f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 18)})", rows)
        subs = [(r[15], r[0], r[6]) for r in rows] + [("e/r2", ident(4), 400.0)]
        c.executemany("INSERT INTO submissions VALUES (?, ?, ?)", subs)
        c.executemany(
            "INSERT INTO tags VALUES (?, 'seed', ?, 'int')",
            [(r[0], k % 4) for k, r in enumerate(rows)],
        )

    build(tmp_path / "wd", fill)
    conn = read(tmp_path / "wd")
    jobs = experiment_jobs(conn, "e")[TASK]
    assert len(jobs.ids) == 23
    columns = task_columns(conn, TASK, "e", sample=jobs.ids[:200])
    for filters in ([], [("state", "=", ["FAILED"])], [("tag:seed", "=", [1, 2])]):
        for descending in (True, False):
            for page in (1, 2, 3, 4):
                args = (TASK, "e", filters, "submitted", descending, page, 8)
                known, asked = Selection(*args, jobs=jobs), Selection(*args)
                assert job_count(conn, known, columns) == job_count(conn, asked, columns)
                assert facets(conn, known, columns) == facets(conn, asked, columns)
                mine = runs_table(conn, known, columns)
                sql = runs_table(conn, asked, columns)
                assert [r["id"] for r in mine["rows"]] == [r["id"] for r in sql["rows"]]
                assert mine["count"] == sql["count"]
    state = dict(facets(conn, Selection(TASK, "e", jobs=jobs), columns)[0]["values"])
    assert sum(state.values()) == 23 and set(state) == {"DONE", "FAILED", "RUNNING"}


def test_a_whole_task_among_others_counts_and_sorts_as_sql_does(tmp_path: Path) -> None:
    """A task's table over all its jobs takes counts and orders from the indexes over every
    job less the other tasks' jobs: the same as SQL over the task's own jobs, although the
    other task shares its tag keys (and values)."""
    other = "demo.other"

    def fill(c: Any) -> None:
        rows = [job_row(ident(n), float(n), "e/r1") for n in range(30)]
        rows += [job_row(ident(100 + n), float(n), "e/r1", task=other) for n in range(7)]
        states = ["DONE", "FAILED", "RUNNING", "DONE"]
        rows = [(*r[:3], states[k % 4], *r[4:]) for k, r in enumerate(rows)]
        c.executemany(f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 18)})", rows)
        c.executemany(
            "INSERT INTO tags VALUES (?, 'seed', ?, 'int')",
            [(r[0], k % 5) for k, r in enumerate(rows)],
        )
        c.executemany(
            "INSERT INTO params (job_id, path, value, type, meta) VALUES (?, 'lr', ?, 'float', 0)",
            [(r[0], (k % 3) / 10) for k, r in enumerate(rows)],
        )

    build(tmp_path / "wd", fill)
    conn = read(tmp_path / "wd")
    columns = task_columns(conn, TASK, None)
    everything = [("submitted", ">", -1)]  # keeps every job, but takes the SQL path
    for sort in ("tag:seed", "param:lr"):
        for descending in (True, False):
            for page in (1, 2, 3, 4):
                args = (TASK, None)
                whole = Selection(*args, [], sort, descending, page, 8)
                asked = Selection(*args, everything, sort, descending, page, 8)
                assert job_count(conn, whole, columns) == job_count(conn, asked, columns) == 30
                ids = [r["id"] for r in runs_table(conn, whole, columns)["rows"]]
                assert ids == [r["id"] for r in runs_table(conn, asked, columns)["rows"]]
                assert all(int(i, 16) < 100 for i in ids)  # never a job of the other task
    mine, sql = (
        facets(conn, Selection(TASK), columns),
        facets(conn, Selection(TASK, None, everything), columns),
    )
    assert mine == sql
    assert sum(n for _v, n in mine[0]["values"]) == 30
    # A tag's own facet when its filter is the only one counts every job of the task from
    # the (key, value) index (400 ms row by row over 100,000 jobs): the same counts.
    by_tag: list[tuple[str, str, Any]] = [("tag:seed", "=", [0])]
    fast = facets(conn, Selection(TASK, None, by_tag), columns)
    assert fast == facets(conn, Selection(TASK, None, by_tag + everything), columns)
    assert next(f for f in fast if f["key"] == "tag:seed") == next(
        f for f in mine if f["key"] == "tag:seed"
    )
    # And the whole task's page takes its order from the (key, value) index, not from a
    # value looked up job by job (1 s over 100,000 jobs beside another task).
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    runs_table(conn, Selection(TASK, None, [], "tag:seed", False, 3, 8), columns)
    assert any(s.startswith("SELECT value, job_id FROM tags WHERE key = ") for s in statements)
    # What it keeps while no job's settings are written gives the same pages and facets.
    kept = KeptByWrites(count=settings_writes)
    for sort in ("tag:seed", "param:lr"):
        for descending in (True, False):
            for page in (1, 2, 4, 5):
                whole = Selection(TASK, None, [], sort, descending, page, 8)
                expected = [r["id"] for r in runs_table(conn, whole, columns)["rows"]]
                for _twice in range(2):
                    got = runs_table(conn, whole, columns, kept=kept)["rows"]
                    assert [r["id"] for r in got] == expected
                    assert facets(conn, whole, columns, kept) == mine
    conn.close()
    # A job of the task without the tag (the other task's jobs all have it): the index
    # alone cannot place it, the order is SQL's, the job last.
    import sqlite3

    writer = sqlite3.connect(tmp_path / "wd" / "xpm.db")
    with writer:
        writer.execute("DELETE FROM tags WHERE job_id = ?", (ident(0),))
    writer.close()
    conn = read(tmp_path / "wd")
    for page in (1, 4):
        whole = Selection(TASK, None, [], "tag:seed", False, page, 8)
        asked = Selection(TASK, None, everything, "tag:seed", False, page, 8)
        ids = [r["id"] for r in runs_table(conn, whole, columns)["rows"]]
        assert ids == [r["id"] for r in runs_table(conn, asked, columns)["rows"]]
    assert ids[-1] == ident(0)


def test_experiment_facet_counts_each_job_once_whatever_the_runs(tmp_path: Path) -> None:
    """``e`` has two runs that both submitted job 1 (a relaunch), ``f`` one run: the facet
    over every job and over a filtered page count distinct jobs, as SQL does."""
    from xpm.index import experiment_facet_sql

    def fill(c: Any) -> None:
        c.execute("INSERT INTO experiments VALUES ('f', 0, 0, 1)")
        c.execute("INSERT INTO runs VALUES ('f/r1', 'f', 'r1', 'normal', 0, 1, 'h', 'u', 1, '{}')")
        rows = [job_row(ident(n), float(n), "e/r1") for n in range(5)]
        c.executemany(f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 18)})", rows)
        subs = [("e/r1", ident(0)), ("e/r1", ident(1)), ("e/r2", ident(1)), ("e/r2", ident(2))]
        subs += [("f/r1", ident(n)) for n in (2, 3, 4)]
        c.executemany("INSERT INTO submissions VALUES (?, ?, 0)", subs)

    build(tmp_path / "wd", fill)
    conn = read(tmp_path / "wd")
    truth = dict(
        conn.execute(
            "SELECT r.experiment, COUNT(DISTINCT s.job_id) FROM submissions s "
            "JOIN runs r ON r.id = s.run GROUP BY r.experiment"
        ).fetchall()
    )
    assert truth == {"e": 3, "f": 3}
    assert dict(conn.execute(experiment_facet_sql(None, 31)).fetchall()) == truth
    page = f"SELECT * FROM jobs WHERE id IN ('{ident(1)}', '{ident(2)}')"
    assert dict(conn.execute(experiment_facet_sql(page, 31)).fetchall()) == {"e": 2, "f": 1}


def test_an_unknown_filter_column_is_answered_with_the_closest_names() -> None:
    """A typo gets "did you mean"; a long list of names says how many more there are
    instead of trailing off with "..."."""
    from xpm.index import Column, parse_filter

    columns = [Column("param", f"layer{i}_width", numeric=True) for i in range(12)]
    columns.append(Column("tag", "n_layers", numeric=True))
    with pytest.raises(ValueError) as typo:
        parse_filter("n_layer=3", columns)
    assert "did you mean n_layers?" in str(typo.value)
    assert "and 5 more: the table's headers" in str(typo.value)
    assert "..." not in str(typo.value)


@pytest.mark.parametrize(("null", "keep"), [(False, 20_000), (True, 20_000), (False, 0)])
def test_a_whole_tasks_order_by_a_tag_of_mixed_values_is_sqls(
    tmp_path: Path, null: bool, keep: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Numbers of both kinds and text, many ties, the other task's jobs between the task's
    in the index order: every page in both directions is SQL's page (ties in the sort's
    direction); with a NULL value somewhere SQL's order is taken as is.  Too many other
    jobs to keep (``keep`` 0): their values are read on each page, to the same pages."""
    from xpm.index import _wholetask
    from xpm.index._wholetask import sorted_page

    monkeypatch.setattr(_wholetask, "KEEP_OTHERS", keep)

    other = "demo.other"
    values: list[Any] = [3, 1.5, "x", "a", 1, 2, 1.5]

    def fill(c: Any) -> None:
        rows = [job_row(ident(n), float(n), "e/r1") for n in range(40)]
        rows += [job_row(ident(100 + n), float(n), "e/r1", task=other) for n in range(15)]
        c.executemany(f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 18)})", rows)
        tags = [(r[0], values[k % len(values)]) for k, r in enumerate(rows)]
        if null:
            tags[-1] = (tags[-1][0], None)
        c.executemany("INSERT INTO tags VALUES (?, 'v', ?, 'str')", tags)

    build(tmp_path / "wd", fill)
    conn = read(tmp_path / "wd")
    columns = task_columns(conn, TASK, None)
    everything = [("submitted", ">", -1)]
    kept = KeptByWrites(count=settings_writes)
    for descending in (False, True):
        pages = []
        for page in range(1, 8):
            whole = Selection(TASK, None, [], "tag:v", descending, page, 7)
            asked = Selection(TASK, None, everything, "tag:v", descending, page, 7)
            ids = [r["id"] for r in runs_table(conn, whole, columns, kept=kept)["rows"]]
            assert ids == [r["id"] for r in runs_table(conn, asked, columns)["rows"]]
            pages += ids
        assert sorted(pages) == [ident(n) for n in range(40)]  # each job once, on some page
        direct = sorted_page(conn, TASK, "tag", "v", descending, 14, 7, 40)
        assert (direct is None) == null
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    for _twice in range(2):
        sorted_page(conn, TASK, "tag", "v", False, 14, 7, 40, kept)
    theirs = [s for s in statements if "CROSS JOIN tags t ON t.job_id = o.id" in s]
    assert len(theirs) == (2 if keep == 0 else 0)  # kept from the pages above, or read again
    conn.close()


def test_two_tasks_share_what_is_kept_without_mixing_them(tmp_path: Path) -> None:
    """Two tasks of as many jobs (each table over every job), with other values of one
    tag: pages and facets read in turn through one kept store are each task's own."""
    other = "demo.other"

    def fill(c: Any) -> None:
        rows = [job_row(ident(n), float(n), "e/r1") for n in range(20)]
        rows += [job_row(ident(100 + n), float(n), "e/r1", task=other) for n in range(20)]
        c.executemany(f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 18)})", rows)
        c.executemany(
            "INSERT INTO tags VALUES (?, 'seed', ?, 'int')",
            [(r[0], k % 3 if k < 20 else 10 + k % 4) for k, r in enumerate(rows)],
        )

    build(tmp_path / "wd", fill)
    conn = read(tmp_path / "wd")
    kept = KeptByWrites(count=settings_writes)
    everything = [("submitted", ">", -1)]
    for _round in range(2):
        for task, seeds in ((TASK, {0, 1, 2}), (other, {10, 11, 12, 13})):
            columns = task_columns(conn, task, None)
            for page in (1, 2, 3):
                whole = Selection(task, None, [], "tag:seed", True, page, 8)
                asked = Selection(task, None, everything, "tag:seed", True, page, 8)
                ids = [r["id"] for r in runs_table(conn, whole, columns, kept=kept)["rows"]]
                assert ids == [r["id"] for r in runs_table(conn, asked, columns)["rows"]]
            counts = facets(conn, Selection(task), columns, kept)
            assert counts == facets(conn, Selection(task, None, everything), columns)
            assert {v for v, _n in counts[1]["values"]} == seeds
    conn.close()
