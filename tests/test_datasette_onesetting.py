"""A tag and the parameter it marks are one setting on every page of the web view (#16).

``Model(n_layers=tag(3))`` records the tag ``n_layers=3`` beside the parameter
``model.n_layers=3``: runs tables show one column (the tag's), the chart form offers it
once, parallel coordinates draw one axis, compare lists it once; filters and sorts by
either name still work.  When two parameters could be the tag's, or one job's values
differ, both stay.  Checked on an index written row by row (the values chosen), through
Datasette's test client, from what a reader sees.
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

NESTED = "demo.train"  # tag n_layers of model.n_layers, everywhere the same
TWO = "demo.two"  # tag n_layers; model.n_layers and head.n_layers: which one? both kept
APART = "demo.apart"  # tag depth of model.depth, one job's tag set apart: both kept
SCORE = "demo.score"  # scores NESTED jobs 0-2; tagged n_layers as its NESTED job's model
# A parameter added later with its default (identifiers unchanged) and tagged: only the
# two jobs run again have its row, all six have the tag; seed is not tagged.
LATE = "demo.late"


def _fill(c: Any) -> None:
    rows, params, tags, results = [], [], [], []
    for n in range(6):
        job = ident(n)
        rows.append(job_row(job, 100.0 + n, "e/r1", NESTED))
        layers = n % 3 + 1
        params += [
            (job, "model", "demo.Model", "config", 0),
            (job, "model.n_layers", layers, "int", 0),
            (job, "lr", 0.1 * (n % 2 + 1), "float", 0),
            (job, "device", f"cuda:{n % 2}", "str", 1),  # Meta
        ]
        tags.append((job, "n_layers", layers, "int"))
        results.append((job, 0, "accuracy", 0.5 + layers / 10 + n / 100, "float", None, 0))
    for n in range(4):
        job = ident(20 + n)
        rows.append(job_row(job, 200.0 + n, "e/r1", TWO))
        params += [
            (job, "model.n_layers", n + 1, "int", 0),
            (job, "head.n_layers", 2, "int", 0),
        ]
        tags.append((job, "n_layers", n + 1, "int"))
        results.append((job, 0, "accuracy", 0.6 + n / 10, "float", None, 0))
    for n in range(4):
        job = ident(40 + n)
        rows.append(job_row(job, 300.0 + n, "e/r1", APART))
        params.append((job, "model.depth", n + 1, "int", 0))
        # The newest job's tag says 9 where its parameter says 4: a difference to show.
        tags.append((job, "depth", 9 if n == 3 else n + 1, "int"))
        results.append((job, 0, "accuracy", 0.6 + n / 10, "float", None, 0))
    for n in range(3):
        job = ident(60 + n)
        rows.append(job_row(job, 400.0 + n, "e/r1", SCORE))
        params.append((job, "model", f"jobs/{NESTED}/{ident(n)}/model.pt", "path", 1))
        tags.append((job, "n_layers", n % 3 + 1, "int"))
        results.append((job, 0, "accuracy", 0.7 + n / 10, "float", None, 0))
    for n in range(6):
        job = ident(80 + n)
        rows.append(job_row(job, 500.0 + n, "e/r1", LATE))
        lr, seed = 0.1 * (n % 2 + 1), n // 2
        params += [(job, "lr", lr, "float", 0), (job, "seed", seed, "int", 0)]
        if n in (4, 5):  # run again (failed before): its params.json has the new parameter
            params.append((job, "wd", 0.0, "float", 0))
        tags += [(job, "lr", lr, "float"), (job, "wd", 0.0, "float")]
        results.append((job, 0, "accuracy", 0.5 + lr + seed / 100, "float", None, 0))
    insert(c, rows, params, tags, results)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("onesetting") / "wd"
    build(workdir, _fill)
    return workdir


@pytest.fixture(scope="module")
def ds(workdir: Path) -> Any:
    return make_datasette(workdir)


def sql(workdir: Path, query: str, *args: Any) -> list[Any]:
    conn = sqlite3.connect(workdir / "xpm.db")
    try:
        return conn.execute(query, args).fetchall()
    finally:
        conn.close()


def head(page: str) -> str:
    return page[page.index('id="xpm-runs"') :].split("</thead>")[0]


def headers(page: str) -> list[str]:
    """The keys of the runs table's columns, in order."""
    return re.findall(r'<th data-key="([^"]+)"', head(page))


def header_texts(page: str) -> list[str]:
    """What a reader sees in the header row of the columns (the labels, sort arrows; not
    the × that hides a column)."""
    row = head(page).split('class="xpm-groups"')[1].split("</tr>")[1]
    row = re.sub(r'<a class="xpm-hide"[^>]*>×</a>', "", row)
    return [
        re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", cell))).strip()
        for cell in re.findall(r"<th[^>]*>(.*?)</th>", row, flags=re.S)
    ]


def row_ids(page: str) -> list[str]:
    body = page[page.index('id="xpm-runs"') :].split("<tbody>")[1].split("</tbody>")[0]
    return re.findall(r'<tr data-job="([0-9a-f]{64})"', body)


def options(page: str, name: str) -> list[str]:
    select = page.split(f'name="{name}"')[1].split("</select>")[0]
    return [html.unescape(v) for v in re.findall(r'<option(?: value="([^"]*)")?', select) if v]


RUNS = f"/-/xpm/experiment/e?task={NESTED}"


@pytest.mark.parametrize("base", [RUNS, f"/-/xpm/runs/{NESTED}?"])
def test_a_tagged_nested_parameter_is_one_column(ds: Any, base: str) -> None:
    page = get(ds, base).text
    shown = headers(page)
    assert "tag:n_layers" in shown and "param:model.n_layers" not in shown
    assert "param:lr" in shown and "param:device" not in shown  # Meta still hidden
    labels = header_texts(page)
    assert labels.count("n_layers") == 1 and "model.n_layers" not in labels, labels
    title = re.search(r'<th data-key="tag:n_layers" title="([^"]+)"', page)
    assert title and "tag of model.n_layers" in html.unescape(title.group(1))
    cells = re.findall(r'<td data-key="tag:n_layers"[^>]*>([^<]*)</td>', page)
    assert sorted(cells) == ["1", "1", "2", "2", "3", "3"]
    # The Meta toggle shows the Meta parameter and still not the marked one.
    meta = get(ds, base + "&meta=1").text
    assert "param:device" in headers(meta) and "param:model.n_layers" not in headers(meta)


def layers(workdir: Path, tail: str) -> list[str]:
    """Ids of the NESTED jobs by their model.n_layers parameter: ``tail`` adds a condition
    on ``value`` or an order (what the page must agree with)."""
    query = (
        "SELECT job_id FROM params WHERE path = 'model.n_layers' "
        f"AND job_id IN (SELECT id FROM jobs WHERE task_id = ?) {tail}"
    )
    return [r[0] for r in sql(workdir, query, NESTED)]


def test_filters_and_sorts_by_the_hidden_name_still_work(ds: Any, workdir: Path) -> None:
    two = set(layers(workdir, "AND value = 2"))
    assert len(two) == 2
    for where in ("model.n_layers%3D2", "param:model.n_layers%3D2", "n_layers%3D2"):
        assert set(row_ids(get(ds, f"{RUNS}&where={where}").text)) == two, where
    more = get(ds, f"{RUNS}&where=model.n_layers%3E1").text
    assert set(row_ids(more)) == set(layers(workdir, "AND value > 1")) and "Jobs 1–4 of 4" in more
    page = get(ds, f"{RUNS}&sort=-param:model.n_layers").text
    assert row_ids(page) == layers(workdir, "ORDER BY value DESC, job_id DESC")
    # A sort names its column as a filter does (it said "cannot sort by 'n_layers'").
    for name in ("model.n_layers", "n_layers"):
        short = get(ds, f"{RUNS}&sort=-{name}").text
        assert row_ids(short) == row_ids(page) and "cannot sort" not in short, name
    assert "cannot sort" not in page
    # The tag's column says it is the order.
    assert "n_layers ▼" in header_texts(page)
    ascending = get(ds, f"{RUNS}&sort=param:model.n_layers&size=4&page=2").text
    assert row_ids(ascending) == layers(workdir, "ORDER BY value, job_id")[4:]
    assert "n_layers ▲" in header_texts(ascending)


def test_the_chart_offers_the_pair_once(ds: Any) -> None:
    base = f"/-/xpm/chart?experiment=e&task={NESTED}&metric=accuracy"
    page = get(ds, base).text
    assert "tag:n_layers" in options(page, "x") and "param:model.n_layers" not in options(page, "x")
    assert "param:model.n_layers" not in options(page, "average")
    # A link naming the parameter draws against the tag: the same setting.
    for x in ("param:model.n_layers", "model.n_layers"):
        data = get(ds, base.replace("/chart?", "/chart.json?") + f"&x={x}").json()
        assert data["x"] == "tag:n_layers", x
        assert [p[0] for s in data["data"]["series"] for p in s["points"]][:3] == [1, 2, 3]
        assert (
            "n_layers" not in data["data"]["group"]
            and "model.n_layers" not in data["data"]["group"]
        )
    parallel = get(ds, base.replace("/chart?", "/chart.json?") + "&view=parallel").json()["data"]
    assert sorted(parallel["axes"]) == ["accuracy", "lr", "n_layers"]


def test_compare_lists_the_pair_once(ds: Any) -> None:
    a, b = ident(0), ident(1)  # n_layers 1 and 2
    page = get(ds, f"/-/xpm/compare?id={a}&id={b}").text
    differ = page[page.index('id="xpm-compare-params"') :].split("</tbody>")[0]
    keys = re.findall(r'<tr data-key="([^"]+)"', differ)
    assert sorted(keys) == ["param:lr", "param:model.n_layers"]


def test_two_parameters_of_the_tags_name_both_stay(ds: Any) -> None:
    page = get(ds, f"/-/xpm/experiment/e?task={TWO}").text
    assert {"tag:n_layers", "param:model.n_layers"} <= set(headers(page))
    title = re.search(r'<th data-key="tag:n_layers" title="([^"]+)"', page)
    assert title and "tag of" not in title.group(1)
    # head.n_layers is 2 in every job: shown (a runs table shows every parameter).
    assert "param:head.n_layers" in headers(page)
    chart = get(ds, f"/-/xpm/chart?experiment=e&task={TWO}&metric=accuracy").text
    assert {"tag:n_layers", "param:model.n_layers"} <= set(options(chart, "x"))


def test_a_tag_differing_from_its_parameter_on_one_job_keeps_both(ds: Any) -> None:
    page = get(ds, f"/-/xpm/experiment/e?task={APART}").text
    assert {"tag:depth", "param:model.depth"} <= set(headers(page))
    tag_cells = re.findall(r'<td data-key="tag:depth"[^>]*>([^<]*)</td>', page)
    param_cells = re.findall(r'<td data-key="param:model.depth"[^>]*>([^<]*)</td>', page)
    assert tag_cells[0] == "9" and param_cells[0] == "4"  # newest first: the one apart
    chart = get(ds, f"/-/xpm/chart?experiment=e&task={APART}&metric=accuracy").text
    assert {"tag:depth", "param:model.depth"} <= set(options(chart, "x"))
    data = get(ds, f"/-/xpm/chart.json?experiment=e&task={APART}&metric=accuracy&view=parallel")
    assert sorted(data.json()["data"]["axes"]) == ["accuracy", "depth", "model.depth"]


def test_an_upstream_value_holding_a_tag_of_the_job_is_that_tag(ds: Any) -> None:
    """Score jobs tagged n_layers use NESTED jobs whose model.n_layers (and tag n_layers)
    hold the same: the chart offers n_layers once (the tag), the upstream lr still."""
    chart = get(ds, f"/-/xpm/chart?experiment=e&task={SCORE}&metric=accuracy").text
    offered = options(chart, "x")
    assert "tag:n_layers" in offered and "upstream:train.lr" in offered
    assert not [o for o in offered if o.startswith("upstream:") and "n_layers" in o], offered
    page = get(ds, f"/-/xpm/experiment/e?task={SCORE}").text
    shown = headers(page)
    assert "upstream:train.lr" in shown and "tag:n_layers" in shown
    assert not [k for k in shown if k.startswith("upstream:") and "n_layers" in k], shown
    # Sorted by one of them, it shows: the choice is the reader's.
    sorted_page = get(ds, f"/-/xpm/experiment/e?task={SCORE}&sort=-upstream:train.model.n_layers")
    cells = re.findall(
        r'<td data-key="upstream:train.model.n_layers"[^>]*>([^<]*)</td>', sorted_page.text
    )
    assert cells == ["3", "2", "1"]


def test_a_parameter_added_later_and_tagged_is_one_setting(ds: Any) -> None:
    """New-user trial: ``wd=tag(0.0)`` on a parameter added with that default split the
    sweep into lines "wd=" (jobs recorded before it) and "wd=0", and showed two wd columns."""
    page = get(ds, f"/-/xpm/experiment/e?task={LATE}").text
    assert "tag:wd" in headers(page) and "param:wd" not in headers(page)
    base = f"/-/xpm/chart.json?experiment=e&task={LATE}&metric=accuracy&x=lr&average=seed"
    data = get(ds, base).json()
    assert data["average"] == "param:seed" and data["data"]["group"] == []
    [line] = data["data"]["series"]
    assert [len(p[2]) for p in line["points"]] == [3, 3]  # each lr: its three seeds
    parallel = get(ds, base + "&view=parallel").json()["data"]
    assert sorted(parallel["axes"]) == ["accuracy", "lr", "seed"]


def test_a_bookmark_naming_a_tag_no_longer_there(ds: Any) -> None:
    """``average=tag:seed`` from before seed was untagged averages over the parameter seed;
    a name no job has is said on the page."""
    base = f"/-/xpm/chart?experiment=e&task={LATE}&metric=accuracy&x=lr"
    data = get(ds, base.replace("/chart?", "/chart.json?") + "&average=tag:seed").json()
    assert data["average"] == "param:seed"
    page = get(ds, base + "&average=tag:nope").text
    assert "average over tag:nope: no such column among these jobs; averaged over nothing" in (
        html.unescape(re.sub(r"<[^>]+>", "", page))
    )
    assert "xpm-chart-dropped" not in get(ds, base + "&average=seed").text
    # A task or a result these jobs lack is said too (they switched silently).
    for asked, said in (
        (f"task={LATE}&metric=nope", "y nope: no numeric result of that name in this task; "
         "drawn for accuracy"),
        ("task=demo.nope&metric=accuracy", "task demo.nope: no such task in this experiment; "
         "drawn for demo."),
    ):  # fmt: skip
        page = get(ds, f"/-/xpm/chart?experiment=e&{asked}").text
        assert said in html.unescape(re.sub(r"<[^>]+>", "", page)), asked


def test_compare_takes_a_missing_parameter_from_its_tag(ds: Any) -> None:
    """Two LATE jobs, one recorded before wd existed (no row), one after: both tagged
    wd=0.0, so wd is equal, not "0 | —" among the parameters that differ."""
    page = get(ds, f"/-/xpm/compare?id={ident(80)}&id={ident(84)}").text
    differ = page[page.index('id="xpm-compare-params"') :].split("</tbody>")[0]
    same = page[page.index('id="xpm-compare-same"') :].split("</tbody>")[0]
    assert 'data-key="param:wd"' not in differ and 'data-key="param:wd"' in same
    assert 'data-key="param:lr"' in same and 'data-key="param:seed"' in differ


def test_jobs_without_a_value_are_named_by_an_untagged_parameter(tmp_path: Path) -> None:
    """Seed untagged (a trial's second sweep): the count still names the failed seed by
    its parameter ("2 failed, all seed=2"; it said "2 failed" only)."""
    workdir = tmp_path / "wd"
    build(workdir, _fill)
    conn = sqlite3.connect(workdir / "xpm.db")
    with conn:
        failed = [ident(84), ident(85)]  # seed 2 of each lr
        conn.executemany("DELETE FROM results WHERE job_id = ?", [(j,) for j in failed])
        conn.executemany("UPDATE jobs SET state = 'FAILED' WHERE id = ?", [(j,) for j in failed])
    conn.close()
    url = f"/-/xpm/chart?experiment=e&task={LATE}&metric=accuracy&x=lr&average=seed"
    page = get(make_datasette(workdir), url).text
    seen = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))
    assert "(2 without accuracy: 2 failed, all seed=2)" in seen, seen[-600:]
