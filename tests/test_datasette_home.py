"""The home page's running and failed jobs say which setting each is and link a failed
dependency (#16 trial: ids alone said nothing, and an Evaluate failed because its Learn
job failed looked like any failure).  On an index written row by row (the values chosen).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from _dsclient import get_ok as get
from _dsclient import text_of
from _indexrows import insert
from test_index_webview import build, job_row

from xpm.datasette._app import make_datasette
from xpm.datasette._format import dependency

LEARN, EVALUATE, RUNNING, WAITING = (digit * 64 for digit in "abcd")  # apart from the 1st digit


def _fill(c: Any) -> None:
    learn, evaluate, running = LEARN, EVALUATE, RUNNING
    rows = [
        job_row(learn, 100.0, "e/r1", "demo.learn"),
        job_row(evaluate, 101.0, "e/r1", "demo.evaluate"),
        job_row(running, 102.0, "e/r1", "demo.learn"),
    ]
    tags = [
        (learn, "lr", 0.1, "float"),
        (learn, "seed", 2, "int"),
        (evaluate, "seed", 2, "int"),
        (running, "lr", 0.01, "float"),
        (running, "seed", 0, "int"),
    ]
    insert(c, rows, [], tags, [])
    c.execute("UPDATE jobs SET state = 'FAILED', reason = 'exit code 1' WHERE id = ?", (learn,))
    c.execute(
        "UPDATE jobs SET state = 'FAILED', submit_time = NULL, start_time = NULL, "
        "end_time = 200, reason = ? WHERE id = ?",
        (f"dependency failed (demo.learn/{learn[:12]})", evaluate),
    )
    c.execute("UPDATE jobs SET state = 'RUNNING', end_time = NULL WHERE id = ?", (running,))
    # Submitted by the run at 103, waiting for a job it needs: never handed to a launcher.
    insert(c, [job_row(WAITING, 103.0, "e/r1", "demo.learn")], [], [], [])
    c.execute(
        "UPDATE jobs SET state = 'UNSCHEDULED', submit_time = NULL, start_time = NULL, "
        "end_time = NULL WHERE id = ?",
        (WAITING,),
    )


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Any:
    workdir = tmp_path_factory.mktemp("home") / "wd"
    build(workdir, _fill)
    return make_datasette(workdir)


def section(page: str, name: str) -> str:
    return page[page.index(f'id="xpm-{name}"') :].split("</section>")[0]


def test_running_and_failed_jobs_show_their_tags(ds: Any) -> None:
    page = get(ds, "/").text
    running = text_of(section(page, "running"))
    assert "lr=0.01 seed=0" in running
    failed = text_of(section(page, "failed"))
    assert "lr=0.1 seed=2" in failed and "exit code 1" in failed


def test_a_failed_dependency_links_the_job_that_failed(ds: Any) -> None:
    failed = section(get(ds, "/").text, "failed")
    learn = LEARN
    link = re.search(r'dependency failed: <a href="([^"]+)">demo\.learn/([0-9a-f]+)</a>', failed)
    assert link and link.group(2) == learn[:12], failed
    # The link opens the failed job's page (a prefix of its id is enough).
    assert learn in get(ds, link.group(1)).text
    assert dependency("dependency failed (demo.learn/0123456789ab)") == (
        "demo.learn",
        "0123456789ab",
    )
    assert dependency("exit code 1") is None and dependency("dependency failed") is None


def test_a_waiting_job_shows_when_its_run_submitted_it(ds: Any) -> None:
    """Its submitted cell was blank while the sweep ran (it has no launch time yet)."""
    from xpm.datasette._format import when_short

    page = get(ds, "/-/xpm/experiment/e?task=demo.learn").text
    row = page.split(f'data-job="{WAITING}"')[1].split("</tr>")[0]
    cell = re.search(r'<td class="xpm-time xpm-queued" title="([^"]+)"><em>([^<]+)</em>', row)
    assert cell and cell.group(2) == when_short(103.0)
    assert "not handed to a launcher yet" in cell.group(1)
    ran = page.split(f'data-job="{RUNNING}"')[1].split("</tr>")[0]
    assert "xpm-queued" not in ran and f">{when_short(102.0)}<" in ran
    # Failed before its launch (its dependency failed): never handed to a launcher.
    ended = get(ds, "/-/xpm/experiment/e?task=demo.evaluate").text
    row = ended.split(f'data-job="{EVALUATE}"')[1].split("</tr>")[0]
    assert "never handed to a launcher" in row and "not handed to a launcher yet" not in row


def test_failed_jobs_with_the_same_tags_are_told_apart_by_their_parameters(
    tmp_path: Any,
) -> None:
    """Two failed lr=0.01 seed=3 jobs of widths 32 and 64 read the same (a trial): the
    parameters that differ between them show beside the tags; Meta ones and the ones
    they share do not, nor anything for a job whose tags are its own."""
    one, two, three = (digit * 64 for digit in "123")

    def fill(c: Any) -> None:
        rows = [
            job_row(j, 100.0 + k, "e/r1", "demo.learn") for k, j in enumerate((one, two, three))
        ]
        tags = [
            (j, k, v, t)
            for j in (one, two)
            for k, v, t in (("lr", 0.01, "float"), ("seed", 3, "int"))
        ]
        tags += [(three, "lr", 0.1, "float"), (three, "seed", 3, "int")]
        params = [
            (one, "width", 32, "int", None),
            (two, "width", 64, "int", None),
            (three, "width", 64, "int", None),
            *((j, "epochs", 5, "int", None) for j in (one, two, three)),
            *((j, "device", f"cuda:{k}", "str", 1) for k, j in enumerate((one, two, three))),
        ]
        insert(c, rows, params, tags, [])
        c.execute("UPDATE jobs SET state = 'FAILED', reason = 'exit code 1'")

    build(tmp_path / "wd", fill)
    failed = section(get(make_datasette(tmp_path / "wd"), "/").text, "failed")
    rows = {r.split('title="')[1][:64]: text_of(r) for r in failed.split("<tr>")[2:]}
    assert "width=32" in rows[one] and "width=64" in rows[two], rows
    assert not any("epochs" in r or "device" in r for r in rows.values()), rows
    assert "width" not in rows[three], rows
