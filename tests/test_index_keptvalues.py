"""xpm/index/_keptvalues.py and jobs.params_digest: the values a chart reads of each job are
kept between loads only while nothing says they changed, and every recorded change shows.

A real experiment recorded by xpm's own recorder (its jobs' parameters, tags and results),
then changed the ways an experiment changes it: submitted again with other tags, a job
run again.  Changes made behind the index's back (SQL that leaves the digest or the
results' marks alone) are what show that values were kept.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from _oldschema import drop_digests

from xpm import tag
from xpm._experiment import experiment
from xpm.index import (
    MAX_CHART_JOBS,
    KeptValues,
    column_values,
    experiment_jobs,
    open_index,
    rebuild,
    stepped_results,
)
from xpm.index._digests import params_digest

FIT = "xpm_chart_tasks.fit"


def run(workdir: Path, tagged: str) -> None:
    """Experiment ``e``: Fit at lr 0.1 and 0.2 for seeds 0-2, the parameter ``tagged``
    (``seed`` or ``epochs``) given as a tag (tags do not change a job's identity)."""
    from xpm_chart_tasks import Fit

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XPM_GIT", "off")
        with experiment(workdir, "e", progress=False):
            for lr in (0.1, 0.2):
                for seed in (0, 1, 2):
                    Fit(
                        lr=lr,
                        seed=tag(seed) if tagged == "seed" else seed,
                        epochs=tag(1) if tagged == "epochs" else 1,
                    ).submit()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    workdir = tmp_path / "wd"
    run(workdir, "seed")
    return workdir


def connect(workdir: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{workdir / 'xpm.db'}?mode=ro", uri=True)


def read(kept: KeptValues, workdir: Path, result: str = "accuracy") -> tuple[Any, Any]:
    """What ``kept`` gives, and what the readers that keep nothing give, on one snapshot."""
    conn = connect(workdir)
    try:
        jobs = experiment_jobs(conn, "e")[FIT]
        got = kept.read(conn, jobs, MAX_CHART_JOBS, result)
        ids = jobs.ids[:MAX_CHART_JOBS]
        expected = column_values(conn, ids, result), bool(stepped_results(conn, ids, [result]))
        return (got.values, got.stepped), expected
    finally:
        conn.close()


def write(workdir: Path, sql: str, *args: Any) -> None:
    conn = sqlite3.connect(workdir / "xpm.db")
    with conn:
        conn.execute(sql, args)
    conn.close()


def test_kept_values_equal_a_fresh_read_and_follow_new_tags(workdir: Path) -> None:
    kept = KeptValues()
    got, expected = read(kept, workdir)
    assert got == expected
    values, stepped = got
    assert sorted(values["tag:seed"].values()) == [0, 0, 1, 1, 2, 2] and not stepped
    assert len(values["result:accuracy"]) == 6
    got, expected = read(kept, workdir, "loss")  # reported at steps: its curves
    assert got == expected and got[1] is True

    # Behind the index's back (the digest unchanged): the kept tag is what shows.
    write(workdir, "UPDATE tags SET value = 99 WHERE key = 'seed'")
    got, expected = read(kept, workdir)
    assert 99 not in got[0]["tag:seed"].values() and 99 in expected[0]["tag:seed"].values()

    # The same jobs submitted again with another tag: recorded, so it shows at once.
    ids = set(got[0]["tag:seed"])
    run(workdir, "epochs")
    got, expected = read(KeptValues(), workdir)
    assert set(got[0]["tag:epochs"]) == ids  # same jobs: tags are not part of their identity
    got, expected = read(kept, workdir)
    assert got == expected
    assert "tag:seed" not in got[0] and set(got[0]["tag:epochs"].values()) == {1}


def test_an_ended_jobs_result_is_kept_until_its_marks_change(workdir: Path) -> None:
    kept = KeptValues()
    read(kept, workdir)
    conn = connect(workdir)
    job = experiment_jobs(conn, "e")[FIT].ids[0]
    conn.close()
    newest = "UPDATE results SET value = ? WHERE job_id = ? AND key = 'accuracy'"
    write(workdir, newest, 42.0, job)  # behind the index's back: kept
    got, expected = read(kept, workdir)
    assert got[0]["result:accuracy"][job] != 42.0 == expected[0]["result:accuracy"][job]
    # More of its results file read (what the index writes with new reports): read again.
    write(workdir, "UPDATE results_read SET bytes = bytes + 1 WHERE job_id = ?", job)
    got, expected = read(kept, workdir)
    assert got == expected and got[0]["result:accuracy"][job] == 42.0
    # A running job's reports are read on every load, whatever its marks.
    write(workdir, "UPDATE jobs SET state = 'RUNNING' WHERE id = ?", job)
    read(kept, workdir)
    write(workdir, newest, 43.0, job)
    got, expected = read(kept, workdir)
    assert got == expected and got[0]["result:accuracy"][job] == 43.0
    # Run again (a new attempt) and ended: read again once, then kept.
    write(workdir, "UPDATE jobs SET state = 'DONE', attempt = attempt + 1 WHERE id = ?", job)
    write(workdir, newest, 44.0, job)
    assert read(kept, workdir)[0][0]["result:accuracy"][job] == 44.0


def test_a_job_without_digest_is_read_on_every_load(workdir: Path) -> None:
    """A job recorded without its parameters (NULL digest) is never kept."""
    kept = KeptValues()
    read(kept, workdir)
    write(workdir, "UPDATE jobs SET params_digest = NULL")
    write(workdir, "UPDATE tags SET value = 7 WHERE key = 'seed'")
    got, expected = read(kept, workdir)
    assert got == expected and set(got[0]["tag:seed"].values()) == {7}


def test_digests_are_set_by_the_recorder_and_equal_rebuilt_and_migrated_ones(
    workdir: Path, tmp_path: Path
) -> None:
    def digests(wd: Path) -> dict[str, str]:
        conn = connect(wd)
        try:
            return dict(conn.execute("SELECT id, params_digest FROM jobs"))
        finally:
            conn.close()

    live = digests(workdir)
    assert len(live) == 6 and all(live.values()) and len(set(live.values())) == 6
    # What the digest covers: the job's params and tags rows, and nothing else.
    conn = connect(workdir)
    job = next(iter(live))
    params = conn.execute(
        "SELECT path, value, type, meta FROM params WHERE job_id = ?", (job,)
    ).fetchall()
    tags = conn.execute("SELECT key, value, type FROM tags WHERE job_id = ?", (job,)).fetchall()
    conn.close()
    assert params_digest(params, tags) == live[job]
    assert params_digest(params[::-1], tags) == live[job] != params_digest(params, [])

    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy)
    (copy / "xpm.db").unlink()
    rebuild(copy)
    assert digests(copy) == live

    # An index of schema 6 (before the column) gets the same digests when migrated.
    conn = sqlite3.connect(workdir / "xpm.db", isolation_level=None)
    drop_digests(conn)
    conn.close()
    write(workdir, "UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    with open_index(workdir):  # opening for writing migrates
        pass
    assert digests(workdir) == live


def test_a_served_chart_follows_tags_given_again(workdir: Path) -> None:
    """Through the web view (its server keeps the values between loads): the chart's
    choices and lines follow the tags of the same jobs submitted again."""
    from _dsclient import get_ok

    from xpm.datasette._app import make_datasette

    def x_choices(page: str) -> list[str]:
        select = page.split('name="x"')[1].split("</select>")[0]
        return re.findall(r'<option value="([^"]*)"', select)

    ds = make_datasette(workdir)
    url = f"/-/xpm/chart?experiment=e&task={FIT}&metric=accuracy&x=lr"
    before = get_ok(ds, url).text
    data = get_ok(ds, url.replace("/chart?", "/chart.json?")).json()["data"]
    assert "tag:seed" in x_choices(before) and "tag:epochs" not in x_choices(before)
    assert data["group"] == ["seed"] and len(data["series"]) == 3
    run(workdir, "epochs")
    after = get_ok(ds, url).text
    data = get_ok(ds, url.replace("/chart?", "/chart.json?")).json()["data"]
    assert "tag:seed" not in x_choices(after) and "param:seed" in x_choices(after)
    # epochs is 1 for every job: a tag now, but no line or axis of its own.
    assert data["group"] == ["seed"] and len(data["series"]) == 3
    # x = the new tag: each job has its value (kept values from before had none).
    by_epochs = get_ok(ds, url.replace("/chart?", "/chart.json?").replace("x=lr", "x=epochs"))
    data = by_epochs.json()["data"]
    assert data["x"] == "tag:epochs" and data["without"] == 0
    assert [p[0] for s in data["series"] for p in s["points"]] == [1] * 6  # a line per lr, seed


def test_upstream_values_are_kept_under_the_upstream_jobs_digests(tmp_path: Path) -> None:
    """Score jobs each using a Fit job's output: the Fit jobs' values reach the chart,
    equal to a fresh read, kept while the Fit jobs' digests are unchanged."""
    from xpm_chart_tasks import Fit, Score

    workdir = tmp_path / "wd"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XPM_GIT", "off")
        with experiment(workdir, "e", progress=False):
            for epochs in (1, 2, 3):
                Score(model=Fit(lr=0.1, seed=tag(0), epochs=epochs).submit()).submit()
    kept = KeptValues()

    def score_values() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        conn = connect(workdir)
        try:
            jobs = experiment_jobs(conn, "e")["xpm_chart_tasks.score"]
            got = kept.read(conn, jobs, MAX_CHART_JOBS, "accuracy").values
            return got, column_values(conn, jobs.ids, "accuracy")
        finally:
            conn.close()

    got, expected = score_values()
    assert got == expected
    assert sorted(got["upstream:fit.epochs"].values()) == [1, 2, 3]
    assert set(got["upstream:fit.seed"].values()) == {0}
    # A Fit job's tag changed behind the index's back: the kept value shows...
    write(
        workdir,
        "UPDATE tags SET value = 5 WHERE key = 'seed' AND job_id IN "
        "(SELECT id FROM jobs WHERE task_id = 'xpm_chart_tasks.fit')",
    )
    got, expected = score_values()
    assert (
        set(got["upstream:fit.seed"].values()) == {0} != set(expected["upstream:fit.seed"].values())
    )
    # ... until the Fit jobs' digests say they changed.
    write(
        workdir, "UPDATE jobs SET params_digest = 'changed' WHERE task_id = 'xpm_chart_tasks.fit'"
    )
    got, expected = score_values()
    assert got == expected and set(got["upstream:fit.seed"].values()) == {5}


def test_upstream_digests_are_read_again_only_when_an_upstream_job_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Fit jobs' digests are kept while they only start and end and while other jobs
    are added (the count of settings written moves), and read again when one of them is
    written with other settings."""
    from xpm_chart_tasks import Fit, Score

    from xpm.index import _keptvalues

    workdir = tmp_path / "wd"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XPM_GIT", "off")
        with experiment(workdir, "e", progress=False):
            for epochs in (1, 2):
                Score(model=Fit(lr=0.1, seed=tag(0), epochs=epochs).submit()).submit()
    reads: list[list[str]] = []
    real = _keptvalues._digests

    def counted(conn: sqlite3.Connection, ids: list[str]) -> dict[str, str | None]:
        reads.append(ids)
        return real(conn, ids)

    monkeypatch.setattr(_keptvalues, "_digests", counted)
    kept = KeptValues()

    def read() -> dict[str, dict[str, Any]]:
        conn = connect(workdir)
        try:
            jobs = experiment_jobs(conn, "e")["xpm_chart_tasks.score"]
            return kept.read(conn, jobs, MAX_CHART_JOBS, "accuracy").values
        finally:
            conn.close()

    first = read()
    assert len(reads) == 1 and len(reads[0]) == 2
    fit = "(SELECT id FROM jobs WHERE task_id = 'xpm_chart_tasks.fit')"
    write(workdir, f"UPDATE jobs SET state = 'RUNNING' WHERE id IN {fit}")
    write(workdir, "INSERT INTO jobs (id, task_id, params_digest) VALUES ('new', 'other', 'd')")
    assert read() == first and len(reads) == 1
    write(workdir, f"UPDATE jobs SET params_digest = 'changed' WHERE id IN {fit}")
    assert read() == first and len(reads) == 2


def test_signatures_read_with_the_values_are_the_curves_own(workdir: Path) -> None:
    """A chart over steps gives CurveAverages the signatures KeptValues read (one pass over
    the jobs less): they must be what job_signatures reads, or kept sums go stale."""
    from xpm.index._curves import job_signatures

    first, second = sorted(r[0] for r in connect(workdir).execute("SELECT id FROM jobs"))[:2]
    write(workdir, "UPDATE jobs SET state = 'RUNNING', end_time = NULL WHERE id = ?", first)
    write(workdir, "DELETE FROM results_read WHERE job_id = ?", second)  # not read yet
    conn = connect(workdir)
    try:
        jobs = experiment_jobs(conn, "e")[FIT]
        got = KeptValues().read(conn, jobs, MAX_CHART_JOBS, "loss").signatures
        assert got == job_signatures(conn, jobs.ids) and len(got) == 6
        assert len({s[0] for s in got.values()}) == 2  # RUNNING and DONE
        assert any(s[3:] == (None, None, None) for s in got.values())
    finally:
        conn.close()
