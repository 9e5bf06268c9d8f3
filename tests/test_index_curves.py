"""xpm/index/_curves.py: curves over steps keep what the jobs that ended contributed,
and stay equal to a fresh average while the index changes under them.

On a real index file written row by row (as bench/bench_serve.py does), so a test can
change a job's reports with or without what tells that they changed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_index_webview import _JOB_COLUMNS, build, ident, job_row, read

from xpm.index import CurveAverages, StepMean, step_means

JOBS, STEPS = 8, 5


def fill(c: Any) -> None:
    """8 jobs (6 DONE, 2 RUNNING) reporting ``loss`` at 5 steps, with how much of their
    results files the index read."""
    rows = [job_row(ident(j), float(j), "e/r1") for j in range(JOBS)]
    c.executemany(f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 18)})", rows)
    c.execute("UPDATE jobs SET state = 'RUNNING', end_time = NULL WHERE id IN (?, ?)",
              (ident(6), ident(7)))  # fmt: skip
    c.executemany(
        "INSERT INTO results VALUES (?, ?, 'loss', ?, 'float', ?, 0)",
        [(ident(j), s, 1.0 / (1 + j + s), s) for j in range(JOBS) for s in range(STEPS)],
    )
    c.executemany(
        "INSERT INTO results_read VALUES (?, ?, ?, '{}', 1)",
        [(ident(j), 100 * STEPS, STEPS) for j in range(JOBS)],
    )


def write(workdir: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    conn = sqlite3.connect(workdir / "xpm.db")
    with conn:
        for sql, args in statements:
            conn.execute(sql, args)
    conn.close()


def fresh(workdir: Path, groups: dict[str, int]) -> list[StepMean]:
    return sorted(step_means(read(workdir), groups, "loss"), key=lambda m: (m.group, m.step))


def kept(averages: CurveAverages, workdir: Path, groups: dict[str, int]) -> list[StepMean]:
    means, _reported = averages.means(read(workdir), "chart", groups, "loss")
    return sorted(means, key=lambda m: (m.group, m.step))


def same(got: list[StepMean], expected: list[StepMean]) -> bool:
    """The same points and counts, means and spreads equal but for rounding (kept sums and
    the others' are added in another order than one SQL sum)."""
    return [(m.group, m.step, m.reports) for m in got] == [
        (m.group, m.step, m.reports) for m in expected
    ] and all(
        a.mean == pytest.approx(b.mean, rel=1e-12) and a.spread == pytest.approx(b.spread, rel=1e-9)
        for a, b in zip(got, expected, strict=True)
    )


def stale(got: list[StepMean], expected: list[StepMean]) -> bool:
    """Step 0 of group 0 far from a fresh average (a hand-made report of 100 left out)."""
    return abs(got[0].mean - expected[0].mean) > 1


def test_kept_sums_follow_every_change_that_says_so(tmp_path: Path) -> None:
    """Running jobs reporting more, a job ended and run again, a job gone, a job moved to
    another line: each load equals a fresh average; an ended job whose reports changed
    behind the index's back (nothing says so) is what shows the sums were kept."""
    workdir = tmp_path / "wd"
    build(workdir, fill)
    groups = {ident(j): j % 2 for j in range(JOBS)}
    averages = CurveAverages()
    assert same(kept(averages, workdir, groups), fresh(workdir, groups))

    # Kept: a DONE job's value changed with nothing saying so is not read again...
    write(workdir, ("UPDATE results SET value = 100 WHERE job_id = ? AND seq = 0", (ident(0),)))
    assert stale(kept(averages, workdir, groups), fresh(workdir, groups))
    # ...but a running job's new report is.
    write(
        workdir,
        ("INSERT INTO results VALUES (?, 5, 'loss', 0.5, 'float', 5, 0)", (ident(7),)),
        ("UPDATE results_read SET lines = 6, bytes = 600 WHERE job_id = ?", (ident(7),)),
    )
    after = kept(averages, workdir, groups)
    assert [m for m in after if m.step == 5] == [StepMean(1, 5, 0.5, 0.0, 1)]
    # Run again (a new attempt): read again, so the hand-made change shows now.
    write(workdir, ("UPDATE jobs SET attempt = 2 WHERE id = ?", (ident(0),)))
    assert same(kept(averages, workdir, groups), fresh(workdir, groups))
    # A job gone from the chart, and one moved to the other line.
    del groups[ident(2)]
    assert same(kept(averages, workdir, groups), fresh(workdir, groups))
    groups[ident(3)] = 0
    assert same(kept(averages, workdir, groups), fresh(workdir, groups))
    # Ended since: its reports are the same whether kept or read on each load.
    write(workdir, ("UPDATE jobs SET state = 'DONE', end_time = 9 WHERE id = ?", (ident(6),)))
    assert same(kept(averages, workdir, groups), fresh(workdir, groups))


def test_how_many_jobs_reported_counts_kept_and_read_jobs(tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    build(workdir, fill)
    write(workdir, ("DELETE FROM results WHERE job_id IN (?, ?)", (ident(1), ident(6))))
    groups = {ident(j): 0 for j in range(JOBS)}
    averages = CurveAverages()
    for _ in range(2):  # computed, then with the ended jobs' part kept
        means, reported = averages.means(read(workdir), "chart", groups, "loss")
        assert reported == JOBS - 2
        assert {m.reports for m in means} == {JOBS - 2}
    assert averages.means(read(workdir), "chart", {}, "loss") == ([], 0)
    # A result nobody reported: no curve, nobody reporting it.
    assert averages.means(read(workdir), "chart", groups, "other") == ([], 0)


def test_running_jobs_never_make_the_kept_sums_redone_but_jobs_ended_since_do(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Running jobs are summed on every load anyway: however many there are, the ended
    jobs' sums stay kept (a sweep of mostly running jobs recomputed everything on every
    load); past the threshold of jobs ended since, the kept sums are redone."""
    import xpm.index._curves as curves

    monkeypatch.setattr(curves, "REDO_AFTER", 1)
    monkeypatch.setattr(curves, "REDO_PART", 0.0)
    workdir = tmp_path / "wd"
    build(workdir, fill)  # 2 running jobs: more than the threshold
    groups = {ident(j): 0 for j in range(JOBS)}
    averages = CurveAverages()
    kept(averages, workdir, groups)
    write(workdir, ("UPDATE results SET value = 100 WHERE job_id = ? AND seq = 0", (ident(0),)))
    assert stale(kept(averages, workdir, groups), fresh(workdir, groups))  # still kept
    # Both running jobs end: 2 ended since, over the threshold: summed again from scratch.
    write(workdir, ("UPDATE jobs SET state = 'DONE', end_time = 9 WHERE id IN (?, ?)",
                    (ident(6), ident(7))))  # fmt: skip
    assert same(kept(averages, workdir, groups), fresh(workdir, groups))
