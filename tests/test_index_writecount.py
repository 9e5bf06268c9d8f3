"""xpm/index/_writecount.py: the count of writes of jobs, submissions and runs, and what
the web view keeps by it (an experiment's jobs, a runs table's base and facet counts).

A real experiment recorded by xpm's recorder, then written the ways a running experiment
writes: reports (not counted, so what was kept stays right) and job rows (counted).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from _dsclient import get_ok as get
from test_index_keptvalues import write

from xpm import tag
from xpm._experiment import experiment
from xpm.index import jobs_writes, open_index

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


def count(workdir: Path) -> int | None:
    conn = sqlite3.connect(workdir / "xpm.db")
    try:
        return jobs_writes(conn)
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


def test_an_index_of_schema_7_gets_the_count(tmp_path: Path) -> None:
    with open_index(tmp_path) as index:
        index.conn.execute("INSERT INTO jobs (id, task_id, state) VALUES ('abc', 't', 'DONE')")
        for (name,) in index.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        ).fetchall():
            index.conn.execute(f'DROP TRIGGER "{name}"')
        index.conn.execute("DELETE FROM meta WHERE key = 'jobs_writes'")
        index.conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    assert count(tmp_path) is None
    with open_index(tmp_path):  # opening for writing migrates
        pass
    assert count(tmp_path) == 0
    write(tmp_path, "UPDATE jobs SET state = 'FAILED'")
    assert count(tmp_path) == 1


def test_runs_tables_keep_their_facets_until_a_job_is_written(tmp_path: Path) -> None:
    """A tag changed behind the index's back (no job row written) leaves the kept facet
    counts; a report (what a running experiment writes) too; a job row written shows."""
    from xpm.datasette._app import make_datasette

    workdir = tmp_path / "wd"
    run(workdir)
    ds = make_datasette(workdir)
    url = f"/-/xpm/experiment/e?task={FIT}"

    def seeds() -> list[str]:
        facet = get(ds, url).text.split('data-key="tag:seed"')[1].split("</div>")[0]
        return re.findall(r">(\d+) <small>", facet)

    assert seeds() == ["0", "1", "2"]
    write(workdir, "UPDATE tags SET value = 7 WHERE key = 'seed'")
    write(workdir, "UPDATE results SET value = value + 1")
    assert seeds() == ["0", "1", "2"]  # kept: no job written
    write(workdir, "UPDATE jobs SET host = 'other'")
    assert seeds() == ["7"]
