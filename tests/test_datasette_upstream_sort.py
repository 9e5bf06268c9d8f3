"""Runs tables sort and filter by the values of upstream jobs (``upstream:learn.epochs``),
with right counts and pages (#16, point 2: "sortable by any column, filterable").

On an index written row by row: Learn jobs, two of them resuming another Learn job (two
levels), Evaluate jobs each using one Learn job's output through a Meta path, one whose
Learn job is missing from the index and one using none.  The order and the jobs kept
are checked against :func:`xpm.index.upstream_values` (the values the page shows).
"""

from __future__ import annotations

import html
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from _dsclient import get_ok as get
from _indexrows import insert
from test_index_webview import build, ident, job_row

from xpm.datasette._app import make_datasette
from xpm.index import upstream_values
from xpm.index._upstream import upstream_expr

LEARN, EVALUATE = "demo.learn", "demo.evaluate"
MISSING = ident(999)  # a Learn job cleaned from the index


def learn(n: int) -> str:
    return ident(100 + n)


def evaluate(n: int) -> str:
    return ident(200 + n)


def _fill(c: Any) -> None:
    rows, params, tags, results = [], [], [], []
    for n in range(6):
        job = learn(n)
        rows.append(job_row(job, 100.0 + n, "e/r1", LEARN))
        params += [
            (job, "epochs", n + 1, "int", 0),
            (job, "lr", 0.1, "float", 0),
            # Its own output: names no other job.
            (job, "model_path", f"jobs/{LEARN}/{job}/model.pt", "path", 1),
        ]
        tags.append((job, "seed", n % 2, "int"))
        if n >= 4:  # resumes Learn job 0: two levels of upstream jobs
            params.append((job, "init", f"jobs/{LEARN}/{learn(0)}/model.pt", "path", 0))
    params.append((learn(1), "seed", 7, "int", 0))  # a parameter its tag hides, differing
    tags.append((learn(0), "warm", "no", "str"))  # Learn 0 only: reached through 4 and 5
    for n in range(8):
        job = evaluate(n)
        rows.append(job_row(job, 200.0 + n, "e/r1", EVALUATE))
        params.append((job, "split", "test", "str", 0))
        used = learn(n) if n < 6 else MISSING
        if n < 7:  # Evaluate 7 uses no job
            params.append((job, "model", f"jobs/{LEARN}/{used}/model.pt", "path", 1))
        if n == 5:  # and two: Learn 5's values win (the greatest id), Learn 0's epochs lose
            params.append((job, "baseline", f"jobs/{LEARN}/{learn(0)}/model.pt", "path", 0))
        results.append((job, 0, "accuracy", 0.5 + n / 100, "float", None, 0))
    insert(c, rows, params, tags, results)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """The web view of the index written by ``_fill``, and its workdir."""
    workdir = tmp_path_factory.mktemp("upstream") / "wd"
    build(workdir, _fill)
    return make_datasette(workdir), workdir


def connect(workdir: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{workdir / 'xpm.db'}?mode=ro", uri=True)


def shown(workdir: Path) -> dict[str, dict[str, Any]]:
    """Evaluate job -> its upstream values as the page shows them (Python's reading)."""
    conn = connect(workdir)
    try:
        return upstream_values(conn, [evaluate(n) for n in range(8)])
    finally:
        conn.close()


def expected(workdir: Path, key: str, descending: bool, keep: Any = None) -> list[str]:
    """The Evaluate jobs ``keep`` accepts by the value of ``key``, in the table's order:
    by that (numeric) value, missing last in either direction, then by id in the same
    direction (the order of the index a whole task's table reads)."""
    values = {j: shown(workdir).get(j, {}).get(key) for j in (evaluate(n) for n in range(8))}
    kept = [j for j, v in values.items() if keep is None or (v is not None and keep(v))]
    have = sorted(
        (j for j in kept if values[j] is not None), key=lambda j: (values[j], j), reverse=descending
    )
    return have + sorted((j for j in kept if values[j] is None), reverse=descending)


def row_ids(page: str) -> list[str]:
    body = page[page.index('id="xpm-runs"') :].split("<tbody>")[1].split("</tbody>")[0]
    return re.findall(r'<tr data-job="([0-9a-f]{64})"', body)


RUNS = f"/-/xpm/experiment/e?task={EVALUATE}"


def test_the_sql_value_is_the_one_the_page_shows(site: tuple[Any, Path]) -> None:
    """upstream_expr gives each job what upstream_values gives it, for every key: the
    nearest job's value (Learn 4's epochs, not Learn 0's), a value two levels up (warm),
    a tag before a parameter, nothing for a missing or absent upstream job."""
    workdir = site[1]
    found = shown(workdir)
    assert found[evaluate(4)]["upstream:learn.epochs"] == 5
    assert found[evaluate(5)]["upstream:learn.epochs"] == 6
    assert found[evaluate(4)]["upstream:learn.warm"] == "no"
    assert found[evaluate(1)]["upstream:learn.seed"] == 1  # the tag, not the parameter 7
    assert not found.get(evaluate(6)) and not found.get(evaluate(7))
    keys = sorted({k for values in found.values() for k in values}) + ["upstream:learn.nope"]
    assert "upstream:learn.model_path" not in keys  # Meta
    conn = connect(workdir)
    try:
        for key in keys:
            sql = (
                f"SELECT j.id, {upstream_expr(key.split(':', 1)[1])} FROM jobs j WHERE task_id = ?"
            )
            got = dict(conn.execute(sql, (EVALUATE,)).fetchall())
            want = {evaluate(n): found.get(evaluate(n), {}).get(key) for n in range(8)}
            assert got == want, key
    finally:
        conn.close()


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("base", [RUNS, f"/-/xpm/runs/{EVALUATE}?"])
def test_sorted_by_an_upstream_value_missing_last(
    site: tuple[Any, Path], base: str, descending: bool
) -> None:
    ds, workdir = site
    order = ("-" if descending else "") + "upstream:learn.epochs"
    page = get(ds, f"{base}&sort={order}").text
    assert "cannot sort" not in page
    ids = row_ids(page)
    assert ids == expected(workdir, "upstream:learn.epochs", descending)
    # No upstream value: last either way (between them, by id in the sort's direction).
    assert sorted(ids[-2:]) == [evaluate(6), evaluate(7)]
    # Its header is a sort link saying the order, and the cells show the values.
    head = page[page.index('id="xpm-runs"') :].split("</thead>")[0]
    header = re.search(
        r'<th data-key="upstream:learn.epochs"[^>]*><a href="([^"]+)">([^<]+)</a>', head
    )
    assert header, head
    assert header.group(2) == "learn.epochs " + ("▼" if descending else "▲")
    assert "sort=" in html.unescape(header.group(1))
    cells = re.findall(r'<td data-key="upstream:learn.epochs"[^>]*>([^<]*)</td>', page)
    numbers = ["1", "2", "3", "4", "5", "6"]
    assert cells == (numbers[::-1] if descending else numbers) + ["", ""]


def test_sorted_by_an_upstream_value_page_by_page(site: tuple[Any, Path]) -> None:
    ds, workdir = site
    want = expected(workdir, "upstream:learn.epochs", True)
    seen = []
    for page in (1, 2, 3):
        text = get(ds, f"{RUNS}&sort=-upstream:learn.epochs&size=3&page={page}").text
        seen += row_ids(text)
    assert seen == want and "page 3 of 3" in text


@pytest.mark.parametrize(
    ("where", "keep"),
    [
        ("learn.epochs%3E3", lambda v: v > 3),
        ("upstream:learn.epochs%3D5", lambda v: v == 5),
        ("upstream:learn.epochs%3D2&where=upstream:learn.epochs%3D5", lambda v: v in (2, 5)),
        ("learn.warm%3Dno", lambda v: v == "no"),
        ("learn.seed%3D1%2C%20learn.epochs%3C5", None),
    ],
)
def test_filtered_by_an_upstream_value_counted_and_paged(
    site: tuple[Any, Path], where: str, keep: Any
) -> None:
    ds, workdir = site
    if keep is None:  # two conditions: both must hold
        values = shown(workdir)
        want = sorted(
            j
            for j, v in values.items()
            if v.get("upstream:learn.seed") == 1 and v.get("upstream:learn.epochs", 99) < 5
        )
    else:
        key = "upstream:learn.warm" if "warm" in where else "upstream:learn.epochs"
        want = sorted(expected(workdir, key, False, keep))
    assert want  # the filter keeps some jobs, not all
    page = get(ds, f"{RUNS}&where={where}&sort=id&size=2").text
    assert 'class="xpm-error"' not in page, page[-3000:]
    assert f"of {len(want)}" in page and row_ids(page) == want[:2]
    if len(want) > 2:
        assert row_ids(get(ds, f"{RUNS}&where={where}&sort=id&size=2&page=2").text) == want[2:4]


def test_a_filter_on_an_upstream_value_says_what_is_wrong(site: tuple[Any, Path]) -> None:
    ds = site[0]
    page = get(ds, f"{RUNS}&where=learn.epochs%3Eabc").text
    assert "learn.epochs holds numbers" in html.unescape(page)
    assert len(row_ids(page)) == 8
