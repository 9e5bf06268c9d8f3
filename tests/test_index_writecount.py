"""xpm/index/_writecount.py: the count of writes of jobs, submissions and runs, and what
the web view keeps by it (an experiment's jobs, a runs table's base and facet counts).

A real experiment recorded by xpm's recorder, then written the ways a running experiment
writes: reports (not counted, so what was kept stays right) and job rows (counted).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _dsclient import get_ok as get
from test_index_keptvalues import write

from xpm import tag
from xpm._experiment import experiment
from xpm.index import KeptByWrites, jobs_writes, open_index, settings_writes

FIT = "xpm_chart_tasks.fit"
PACKAGE = Path(__file__).resolve().parents[1] / "xpm"


def run(workdir: Path, tagged: str = "seed") -> None:
    from xpm_chart_tasks import Fit

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XPM_GIT", "off")
        with experiment(workdir, "e", progress=False):
            for seed in (0, 1, 2):
                Fit(
                    lr=0.1,
                    seed=tag(seed) if tagged == "seed" else seed,
                    epochs=tag(1) if tagged == "epochs" else 1,
                ).submit()


def count(workdir: Path, of: Any = jobs_writes) -> int | None:
    conn = sqlite3.connect(workdir / "xpm.db")
    try:
        return of(conn)  # type: ignore[no-any-return]
    finally:
        conn.close()


def test_writes_of_jobs_are_counted_and_reports_are_not(tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    run(workdir)
    before = count(workdir)
    assert before is not None and before > 0
    write(workdir, "UPDATE results SET value = value + 1")  # reports: not counted
    write(workdir, "UPDATE results_read SET bytes = bytes + 1")
    assert count(workdir) == before
    write(workdir, "UPDATE jobs SET host = 'other'")  # 3 rows
    assert count(workdir) == before + 3
    # The same jobs submitted again with other tags: written with their jobs rows.
    after = count(workdir)
    run(workdir, "epochs")
    assert count(workdir) is not None and count(workdir) > after  # type: ignore[operator]


def test_params_and_tags_are_written_only_by_write_jobs() -> None:
    """What is kept by the count relies on it: a job's parameters and tags change only in
    write_jobs, which writes the job's row in the same transaction."""
    writers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"(INSERT[^\"']*INTO|DELETE FROM|UPDATE)\s+(params|tags)\b", text):
            writers.append((path.name, match.group(0)))
    assert {name for name, _sql in writers} == {"_ingest.py"}, writers
    ingest = (PACKAGE / "index" / "_ingest.py").read_text(encoding="utf-8")
    body = ingest[ingest.index("def write_jobs(") : ingest.index("def _digest_of(")]
    assert body.index("INSERT INTO jobs") < body.index("DELETE FROM params")


def as_written_by_schema(workdir: Path, version: int) -> None:
    """An index of one job as xpm wrote it at schema ``version`` (7 to 9): without the
    counts and log that came after it."""
    later = {
        8: ("count_%", ["jobs_writes"]),
        9: ("count_settings%", ["settings_writes", "index_id"]),
        10: ("log_%", []),
    }
    with open_index(workdir) as index:
        index.conn.execute("INSERT INTO jobs (id, task_id, state) VALUES ('abc', 't', 'DONE')")
        for step in range(version + 1, 11):
            triggers, keys = later[step]
            if step == 10:
                index.conn.execute("DROP TABLE job_writes")
            for (name,) in index.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?",
                (triggers,),
            ).fetchall():
                index.conn.execute(f'DROP TRIGGER "{name}"')
            for key in keys:
                index.conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        index.conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),)
        )


def test_an_index_of_schema_7_gets_the_count(tmp_path: Path) -> None:
    as_written_by_schema(tmp_path, 7)
    assert count(tmp_path) is None
    with open_index(tmp_path):  # opening for writing migrates
        pass
    assert count(tmp_path) == 0
    write(tmp_path, "UPDATE jobs SET state = 'FAILED'")
    assert count(tmp_path) == 1


def seed_facet(workdir: Path) -> Callable[[], list[str]]:
    """The experiment of :func:`run`, recorded in ``workdir``, and a reader of its runs
    table's facet of seeds (the values listed) in the web view."""
    from xpm.datasette._app import make_datasette

    run(workdir)
    ds = make_datasette(workdir)
    url = f"/-/xpm/experiment/e?task={FIT}"

    def seeds() -> list[str]:
        facet = get(ds, url).text.split('data-key="tag:seed"')[1].split("</div>")[0]
        return re.findall(r">(\d+) <small>", facet)

    return seeds


def test_runs_tables_keep_their_facets_until_a_job_is_written(tmp_path: Path) -> None:
    """A tag changed behind the index's back (no job row written) leaves the kept facet
    counts; a report (what a running experiment writes) too, and a job's row written
    without other settings; a job written with other settings shows."""
    workdir = tmp_path / "wd"
    seeds = seed_facet(workdir)
    assert seeds() == ["0", "1", "2"]
    write(workdir, "UPDATE tags SET value = 7 WHERE key = 'seed'")
    write(workdir, "UPDATE results SET value = value + 1")
    assert seeds() == ["0", "1", "2"]  # kept: no job written
    write(workdir, "UPDATE jobs SET host = 'other'")
    assert seeds() == ["0", "1", "2"]  # kept: no job's settings written
    write(workdir, "UPDATE jobs SET params_digest = 'other'")  # as write_jobs writes tags
    assert seeds() == ["7"]


def settings(workdir: Path) -> int | None:
    return count(workdir, settings_writes)


def test_settings_writes_count_jobs_added_moved_or_given_other_tags(tmp_path: Path) -> None:
    """The second count moves when a job is added, removed, moved to another task or
    written with other parameters or tags, not when it starts, ends or reports."""
    workdir = tmp_path / "wd"
    run(workdir)
    before, first = settings(workdir), count(workdir)
    # Each job's row, then its digest (written after its parameters and tags).
    assert before == 6 and first is not None
    write(workdir, "UPDATE jobs SET state = 'RUNNING', host = 'other', pid = 7")
    write(workdir, "UPDATE results SET value = value + 1")
    write(workdir, "UPDATE jobs SET params_digest = params_digest")  # written, unchanged
    assert settings(workdir) == before
    assert count(workdir) > first  # type: ignore[operator]  # the first count moved
    run(workdir, "epochs")  # the same jobs, recorded by xpm with other tags
    retagged = settings(workdir)
    assert retagged is not None and retagged > before
    write(workdir, "UPDATE jobs SET task_id = 'moved' WHERE rowid = (SELECT MIN(rowid) FROM jobs)")
    assert settings(workdir) == retagged + 1
    write(workdir, "DELETE FROM jobs WHERE task_id = 'moved'")
    assert settings(workdir) == retagged + 2


def test_an_index_of_schema_8_gets_the_settings_count(tmp_path: Path) -> None:
    as_written_by_schema(tmp_path, 8)
    assert settings(tmp_path) is None and count(tmp_path) is not None
    with open_index(tmp_path):  # opening for writing migrates
        pass
    assert settings(tmp_path) == 0
    write(tmp_path, "UPDATE jobs SET state = 'FAILED'")
    assert settings(tmp_path) == 0
    write(tmp_path, "UPDATE jobs SET params_digest = 'other'")
    assert settings(tmp_path) == 1


def test_a_whole_tasks_table_keeps_its_tag_counts_while_jobs_start_and_end(
    tmp_path: Path,
) -> None:
    """A task's table over every job: its tag counts and its order by a tag are kept while
    only states change (the state facet is counted again), and follow a job written with
    other settings."""
    from xpm.datasette._app import make_datasette

    workdir = tmp_path / "wd"
    run(workdir)
    ds = make_datasette(workdir)
    url = f"/-/xpm/runs/{FIT}?sort=-tag:seed"

    def facet(key: str) -> list[str]:
        part = get(ds, url).text.split(f'data-key="{key}"')[1].split("</div>")[0]
        return re.findall(r">([\w.]+) <small>", part)

    assert facet("tag:seed") == ["0", "1", "2"]
    write(workdir, "UPDATE tags SET value = 7 WHERE key = 'seed'")  # behind the index's back
    write(workdir, "UPDATE jobs SET state = 'FAILED'")
    assert facet("state") == ["FAILED"]  # counted again: the jobs were written
    assert facet("tag:seed") == ["0", "1", "2"]  # kept: no job's settings were written
    write(workdir, "UPDATE jobs SET params_digest = 'changed'")
    assert facet("tag:seed") == ["7"]


def test_a_file_made_again_is_not_taken_for_the_old_one(tmp_path: Path) -> None:
    """An index deleted and recorded anew (or a damaged one replaced) counts from zero
    again: a value kept at the old file's count is computed again for the new file."""
    kept = KeptByWrites(count=settings_writes)
    workdir = tmp_path / "wd"

    def tags_now() -> list[Any]:
        conn = sqlite3.connect(f"file:{workdir / 'xpm.db'}?mode=ro", uri=True)
        try:
            return kept.get(
                conn, "tags", lambda: conn.execute("SELECT key FROM tags ORDER BY 1").fetchall()
            )
        finally:
            conn.close()

    run(workdir)
    counted = settings(workdir)
    assert {k for (k,) in tags_now()} == {"seed"}
    shutil.rmtree(workdir)
    run(workdir, "epochs")  # the same writes, other tags
    assert settings(workdir) == counted
    assert {k for (k,) in tags_now()} == {"epochs"}
