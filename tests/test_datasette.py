"""The xpm Datasette plugin through Datasette's own test client, on real indexes.

The index comes from running a real tiny experiment (tests/browser/sweep.py: Learn and
Evaluate reporting accuracy, Train reporting a loss per step, one failing job) in a git
repository with uncommitted changes, so the git state and its diff are recorded.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _gitrepo import make_repo

from xpm._experiment import experiment
from xpm.datasette import _files, _pages
from xpm.datasette._app import make_datasette
from xpm.errors import IndexDatabaseError
from xpm.index import CANNED_QUERIES, experiment_keys
from xpm.index._schema import TABLES, VIEWS, table

TESTS = Path(__file__).parent
ROOT = TESTS.parent
SWEEP = TESTS / "browser" / "sweep.py"


def run_sweep(
    repo: Path, workdir: Path, *args: str, git: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), str(ROOT)])}
    env["XPM_GIT"] = "on" if git else "off"
    return subprocess.run(
        [sys.executable, str(repo / "sweep.py"), str(workdir), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=repo,
    )


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workdir whose index was written by a real experiment run from a dirty git repo."""
    base = tmp_path_factory.mktemp("dsxp")
    repo = make_repo(
        base / "code",
        {
            "sweep.py": SWEEP.read_text(),
            "xpm_test_tasks.py": (TESTS / "xpm_test_tasks.py").read_text(),
        },
    )
    with open(repo / "sweep.py", "a") as fh:
        fh.write("# an uncommitted change\n")
    workdir = base / "workdir"
    done = run_sweep(repo, workdir)
    assert done.returncode == 0, done.stderr
    return workdir


def get(ds: Any, path: str, follow: bool = False) -> Any:
    async def go() -> Any:
        return await ds.client.get(path, follow_redirects=follow)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def ds(indexed: Path) -> Any:
    return make_datasette(indexed)


def rows(ds: Any, path: str) -> list[dict[str, Any]]:
    sep = "&" if "?" in path else "?"
    r = get(ds, f"{path}{sep}_shape=array&_size=max")
    assert r.status_code == 200, r.text
    return list(r.json())


def job_id(ds: Any, task: str, tag: str | None = None) -> str:
    url = f"/xpm/jobs.json?task_id={task}" + (f"&_tag={tag}" if tag else "")
    found = rows(ds, url)
    assert len(found) == 1, found
    return str(found[0]["id"])


# --- metadata ----------------------------------------------------------------------------------
def test_metadata_describes_every_table_and_column_from_the_schema(ds: Any) -> None:
    meta = get(ds, "/-/metadata.json").json()
    assert meta["title"].startswith("xpm: ")
    tables = meta["databases"]["xpm"]["tables"]
    for t in TABLES:
        assert tables[t.name]["description"] == t.description
        assert tables[t.name]["columns"] == {c.name: c.description for c in t.columns}
    for v in VIEWS:
        assert tables[v.name]["columns"] == dict(v.columns)
    page = get(ds, "/xpm/jobs").text
    assert table("jobs").column("host").description in page  # shown on the table page


def test_jobs_newest_first_with_facets(ds: Any) -> None:
    data = get(ds, "/xpm/jobs.json").json()
    assert data["human_description_en"] == "sorted by submit_time descending"
    times = [r[data["columns"].index("submit_time")] for r in data["rows"]]
    assert times == sorted(times, reverse=True) and len(times) == 10
    facets = data["facet_results"]
    assert {"task_id", "state", "experiment", "tags"} <= set(facets)
    states = {v["value"]: v["count"] for v in facets["state"]["results"]}
    assert states == {"DONE": 9, "FAILED": 1}
    experiments = {v["value"]: v["count"] for v in facets["experiment"]["results"]}
    assert experiments == {"sweep": 9, "broken": 1}
    tags = {v["value"]: v["count"] for v in facets["tags"]["results"]}
    assert tags == {"lr=0.5": 3, "n_layers=1": 3, "n_layers=2": 3, "n_layers=3": 3}
    # Headed by their names only (Datasette adds a facet's type: "tags (xpm_tags)").
    headings = re.findall(r'class="facet-info-name">\s*<strong>([^<]*)', get(ds, "/xpm/jobs").text)
    assert sorted(h.strip() for h in headings) == ["experiment", "state", "tags", "task_id"]


def test_facet_counts_are_the_same_on_every_page(ds: Any) -> None:
    """Page 2 of the jobs table counts all jobs, not only those after its cursor."""

    def counts(data: dict[str, Any]) -> dict[str, dict[str, int]]:
        return {
            name: {v["value"]: v["count"] for v in facet["results"]}
            for name, facet in data["facet_results"].items()
        }

    for query in ("", "&_tag=n_layers%3D2", "&_sort=task_id"):
        first = get(ds, f"/xpm/jobs.json?_size=2{query}").json()
        assert first["next"], first
        second = get(ds, f"/xpm/jobs.json?_size=2{query}&_next={first['next']}").json()
        assert second["rows"] and second["rows"] != first["rows"]
        assert counts(second) == counts(first), query
        assert set(counts(first)) == {"task_id", "state", "experiment", "tags"}
    tagged = get(ds, "/xpm/jobs.json?_size=2&_tag=n_layers%3D2").json()
    second = get(ds, f"/xpm/jobs.json?_size=2&_tag=n_layers%3D2&_next={tagged['next']}").json()
    assert counts(second)["state"] == {"DONE": 3}  # the n_layers=2 jobs, all of them


def test_tag_and_experiment_filters(ds: Any) -> None:
    found = rows(ds, "/xpm/jobs.json?_tag=n_layers%3D3")
    assert sorted(r["task_id"] for r in found) == [
        "sweep.train",
        "xpm_test_tasks.evaluate",
        "xpm_test_tasks.learn",
    ]
    both = rows(ds, "/xpm/jobs.json?_tag=n_layers%3D3&_tag=lr%3D0.5")
    assert [r["task_id"] for r in both] == ["sweep.train"]
    assert rows(ds, "/xpm/jobs.json?_tag=n_layers%3D4") == []
    broken = rows(ds, "/xpm/jobs.json?_experiment=broken")
    assert [r["state"] for r in broken] == ["FAILED"]
    # The selected facet value is marked, and its toggle removes it.
    facet = get(ds, "/xpm/jobs.json?_tag=n_layers%3D3").json()["facet_results"]["tags"]
    chosen = [v for v in facet["results"] if v["selected"]]
    assert [v["value"] for v in chosen] == ["n_layers=3"] and "_tag" not in chosen[0]["toggle_url"]


# --- canned queries -----------------------------------------------------------------------------
def test_recent_and_failed_jobs(ds: Any) -> None:
    recent = rows(ds, "/xpm/recent_jobs.json")
    assert len(recent) == 10 and recent[0]["experiment"] == "broken"
    evaluate = [r for r in recent if r["task_id"] == "xpm_test_tasks.evaluate"]
    assert sorted(json.loads(r["results"])["accuracy"] for r in evaluate) == pytest.approx(
        [0.6, 0.7, 0.8]
    )
    failed = rows(ds, "/xpm/failed_jobs.json")
    assert len(failed) == 1 and failed[0]["task_id"] == "xpm_test_tasks.fail"
    assert failed[0]["stderr_tail"].splitlines()[-1] == "RuntimeError: this task always fails"
    html = get(ds, "/xpm/failed_jobs").text
    assert '<pre class="xpm-tail">' in html and "/-/xpm/job/" + failed[0]["id"] in html
    # Times as on the plugin's pages: local time with its zone, the number on hover.
    from xpm.datasette._format import when

    assert failed[0]["ended"] == pytest.approx(float(failed[0]["ended"]))
    assert f'title="{failed[0]["ended"]}">{when(failed[0]["ended"])}</span>' in html
    assert when(failed[0]["ended"]).endswith(time.strftime("%Z"))
    recent_html = get(ds, "/xpm/recent_jobs").text
    assert f">{when(recent[0]['submitted'])}</span>" in recent_html
    # The tab says the query's title, not its SQL; ids are short and open the job page.
    assert "<title>xpm: Failed jobs</title>" in html
    first = recent[0]["id"]
    assert f'href="/-/xpm/job/{first}" title="{first}"><code>{first[:12]}</code></a>' in recent_html


def test_the_jobs_table_links_ids_to_the_job_page(ds: Any) -> None:
    """Datasette's own /xpm/jobs page gets the plugin's script: ids open the job page (not
    the raw row), column descriptions fold away; times show their zone."""
    html = get(ds, "/xpm/jobs").text
    assert 'var jobPage = "/-/xpm/job/";' in html and 'summary.textContent = "Column' in html
    assert 'class="xpm-time"' in html
    assert "var jobPage" not in get(ds, "/xpm/runs").text  # only on the jobs table


def test_run_links_open_the_run_row(ds: Any) -> None:
    """A run's id holds a slash (experiment/run): its row link must encode it (was 404)."""
    html = get(ds, "/-/xpm/experiment/sweep").text
    links = re.findall(r'href="(/xpm/runs/[^"]+)"', html)
    assert links and all("~2F" in link for link in links)
    assert get(ds, links[0]).status_code == 200
    job = get(ds, f"/-/xpm/job/{job_id(ds, 'xpm_test_tasks.evaluate', 'n_layers%3D2')}").text
    run_links = re.findall(r'href="(/xpm/runs/[^"]+)"', job)
    assert run_links and {get(ds, link).status_code for link in run_links} == {200}


def test_sweep_pivot_has_a_column_per_tag_and_result(ds: Any) -> None:
    db = get(ds, "/xpm.json").json()
    names = {q["name"] for q in db["queries"]}
    assert {*CANNED_QUERIES, "sweep_sweep", "sweep_broken"} <= names
    sweep = rows(ds, "/xpm/sweep_sweep.json")
    columns = list(sweep[0])
    assert columns == ["job", "task", "state", "lr", "n_layers", "accuracy", "loss", "weights"]
    evaluate = sorted(
        (r["n_layers"], r["accuracy"]) for r in sweep if r["task"] == "xpm_test_tasks.evaluate"
    )
    assert evaluate == [(1, pytest.approx(0.6)), (2, pytest.approx(0.7)), (3, pytest.approx(0.8))]
    train = [r for r in sweep if r["task"] == "sweep.train"]
    assert len(train) == 3 and all(r["lr"] == 0.5 and r["loss"] < 1 for r in train)


def test_sweep_keys_lacking_from_the_sample_are_found(
    indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sample of one job per experiment names few keys: the others are still found."""
    conn = sqlite3.connect(f"file:{indexed / 'xpm.db'}?mode=ro", uri=True)
    try:
        truth: dict[str, tuple[list[str], list[str]]] = {}
        for name, table, slot in [
            (n, t, i)
            for (n,) in conn.execute("SELECT name FROM experiments")
            for i, t in enumerate(("tags", "results"))
        ]:
            found = conn.execute(
                f"SELECT DISTINCT x.key FROM {table} x JOIN submissions s ON s.job_id = x.job_id "
                "JOIN runs r ON r.id = s.run WHERE r.experiment = ? ORDER BY x.key",
                (name,),
            ).fetchall()
            truth.setdefault(name, ([], []))[slot].extend(k for (k,) in found)
        monkeypatch.setattr("xpm.index._sweeps.SWEEP_SAMPLE", 1)
        assert experiment_keys(conn) == truth
        assert truth["sweep"] == (["lr", "n_layers"], ["accuracy", "loss", "weights"])
        # Both ways of finding which experiments hold a key (through the key's rows, or
        # through each experiment's jobs, whichever is fewer) agree with the truth.
        from xpm.index import _sweeps

        names = sorted(truth)
        for slot, table in enumerate(("tags", "results")):
            for key in {k for kept in truth.values() for k in kept[slot]}:
                holding = sorted(n for n in names if key in truth[n][slot])
                for size in (0, 10**9):  # the jobs seem fewer / the rows seem fewer
                    sizes = dict.fromkeys(names, size)
                    assert sorted(_sweeps._having(conn, table, key, names, sizes)) == holding
                    # Asking first whether it has a job of a task with the key: the same.
                    holders = _sweeps._Holders(conn)
                    assert sorted(_sweeps._having(conn, table, key, names, sizes, holders)) == (
                        holding
                    )
    finally:
        conn.close()


def test_compare_two_jobs(ds: Any) -> None:
    a = job_id(ds, "xpm_test_tasks.learn", "n_layers%3D1")
    b = job_id(ds, "xpm_test_tasks.learn", "n_layers%3D3")
    found = rows(ds, f"/xpm/compare_jobs.json?a={a[:10]}&b={b[:10]}")
    by_path = {r["path"]: r for r in found}
    assert by_path["model.n_layers"]["a_value"] == 1 and by_path["model.n_layers"]["b_value"] == 3
    assert by_path["model.n_layers"]["diff"] == "differs" and by_path["epochs"]["diff"] == ""
    assert found[0]["diff"] == "differs"  # differences first


def test_jobs_of_a_commit(ds: Any, indexed: Path) -> None:
    sha = rows(ds, "/xpm/git_states.json")[0]["commit_sha"]
    found = rows(ds, f"/xpm/commit_jobs.json?commit={sha[:8]}")
    assert len(found) == 10 and {r["commit_sha"] for r in found} == {sha}
    assert rows(ds, "/xpm/commit_jobs.json?commit=ffffffffff") == []


# --- read-only ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM jobs",
        "UPDATE jobs SET state = 'DONE'",
        "DROP TABLE jobs",
        "WITH x AS (SELECT 1) INSERT INTO meta SELECT 'k', 'v' FROM x",
        "PRAGMA query_only = 0",
        "ATTACH DATABASE 'other.db' AS other",
        "select 1; delete from jobs",
    ],
)
def test_sql_box_refuses_writes(ds: Any, indexed: Path, sql: str) -> None:
    from urllib.parse import quote

    r = get(ds, "/xpm.json?sql=" + quote(sql))
    assert r.status_code in (400, 403), r.text
    conn = sqlite3.connect(indexed / "xpm.db")
    try:
        assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 10
        assert conn.execute("SELECT COUNT(*) FROM meta WHERE key = 'k'").fetchone()[0] == 0
    finally:
        conn.close()


def test_no_write_connection(ds: Any) -> None:
    async def go() -> None:
        await ds.get_database("xpm").execute_write("DELETE FROM jobs")

    with pytest.raises(sqlite3.OperationalError, match="read-only"):
        asyncio.run(go())
    assert get(ds, "/xpm.db").status_code == 403  # no download either


def test_missing_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexDatabaseError, match="no index"):
        make_datasette(tmp_path)


# --- home page ----------------------------------------------------------------------------------
def test_home_page_lists_experiments_running_and_failed_jobs(ds: Any) -> None:
    r = get(ds, "/")
    assert r.status_code == 200
    html = r.text
    experiments = html[html.index('id="xpm-experiments"') : html.index('id="xpm-running"')]
    # Latest started first, each with how its latest run ended and its jobs by state.
    assert experiments.index('data-experiment="broken"') < experiments.index(
        'data-experiment="sweep"'
    )
    sweep = experiments[experiments.index('data-experiment="sweep"') :]
    assert "9 done" in sweep and ">done<" in sweep
    assert "1 failed" in experiments and "1 job(s) failed" in experiments
    sha = rows(ds, "/xpm/git_states.json")[0]["commit_sha"]
    assert sha[:10] in sweep and "dirty" in sweep
    assert "Nothing is running." in html
    failed = html[html.index('id="xpm-failed"') :]
    fail = job_id(ds, "xpm_test_tasks.fail")
    assert f'href="/-/xpm/job/{fail}"' in failed and "this task always fails" in failed


def test_home_page_title_is_text_and_live_state_is_said_once(ds: Any) -> None:
    html = get(ds, "/").text
    title = html.split("<title>")[1].split("</title>")[0]
    assert "<" not in title and title.strip().startswith("xpm")
    assert html.count('id="xpm-live"') == 1


def test_live_heartbeat_says_what_runs_and_when_the_index_changed(
    indexed: Path, tmp_path: Path
) -> None:
    """Idle live pages ask /-/xpm/live.json; it must change when the index is written."""
    workdir = tmp_path / "wd"
    shutil.copytree(indexed, workdir)
    ds = make_datasette(workdir)
    first = get(ds, "/-/xpm/live.json")
    assert first.headers["cache-control"] == "no-store"
    assert first.json()["active"] == 0
    assert get(ds, "/-/xpm/live.json").json() == first.json()
    from xpm_test_tasks import Count

    time.sleep(0.01)  # a distinct modification time on coarse clocks
    with experiment(workdir, "more", progress=False):
        Count(n=11).submit()
    assert get(ds, "/-/xpm/live.json").json()["version"] != first.json()["version"]


def test_a_live_page_says_the_index_version_it_was_made_at(indexed: Path, tmp_path: Path) -> None:
    """The version an idle page's first heartbeat compares with: the one the request saw
    as it arrived (a write after it shows as a change; none, as the same version)."""
    workdir = tmp_path / "wd"
    shutil.copytree(indexed, workdir)
    ds = make_datasette(workdir)
    for path in ("/", "/-/xpm/experiment/sweep", "/-/xpm/chart?experiment=sweep"):
        made_at = re.findall(r'id="xpm-live"[^>]* data-version="([^"]+)"', get(ds, path).text)
        assert made_at == [get(ds, "/-/xpm/live.json").json()["version"]], path
    page = get(ds, "/").text
    time.sleep(0.01)
    conn = sqlite3.connect(workdir / "xpm.db")
    with conn:
        conn.execute("UPDATE runs SET host = 'elsewhere'")
    conn.close()
    made_at = re.findall(r'data-version="([^"]+)"', page)
    assert made_at and made_at[0] != get(ds, "/-/xpm/live.json").json()["version"]


def test_no_empty_memory_database(ds: Any) -> None:
    assert list(get(ds, "/.json").json()) == ["xpm"]
    assert get(ds, "/_memory").status_code == 404
    assert "_memory" not in get(ds, "/").text


# --- experiment page and runs tables ------------------------------------------------------------
def runs_rows(ds: Any, path: str) -> list[dict[str, str]]:
    """The runs table of a page as {column key: cell text} per row, in order."""
    html = get(ds, path).text
    assert 'id="xpm-runs"' in html, html[-2000:]
    body = html[html.index('id="xpm-runs"') :].split("<tbody>")[1].split("</tbody>")[0]
    out = []
    for row in body.split("</tr>")[:-1]:
        cells = dict(re.findall(r'<td data-key="([^"]+)"[^>]*>([^<]*)</td>', row))
        cells["id"] = re.search(r'data-job="([0-9a-f]{64})"', row).group(1)  # type: ignore[union-attr]
        out.append(cells)
    return out


def test_experiment_page_runs_table(ds: Any) -> None:
    base = "/-/xpm/experiment/sweep?task=xpm_test_tasks.evaluate"
    html = get(ds, base).text
    assert "sweep.train" in html.split('id="xpm-tasks"')[1].split("</nav>")[0]  # task tabs
    # Its charts link opens the charts of the task shown (it opened the first task's).
    link = re.search(r'id="xpm-charts-link" href="([^"]+)"', html)
    assert link and link.group(1).endswith(
        "chart?experiment=sweep&amp;task=xpm_test_tasks.evaluate"
    )
    chart = get(ds, link.group(1).replace("&amp;", "&").replace("/chart?", "/chart.json?")).json()
    assert chart["task"] == "xpm_test_tasks.evaluate"
    found = runs_rows(ds, base + "&sort=result:accuracy")
    assert [r["result:accuracy"] for r in found] == ["0.6", "0.7", "0.8"]
    assert [r["tag:n_layers"] for r in found] == ["1", "2", "3"]
    # The tagged parameter model.model.n_layers is shown as its tag only (one setting).
    assert all("param:model.model.n_layers" not in r for r in found)
    assert [r["result:accuracy"] for r in runs_rows(ds, base + "&sort=-result:accuracy")] == [
        "0.8",
        "0.7",
        "0.6",
    ]
    # Short ids linking to the job page; a page of the whole index of a task, too.
    ev = job_id(ds, "xpm_test_tasks.evaluate", "n_layers%3D2")
    assert f'href="/-/xpm/job/{ev}" title="{ev}"><code>{ev[:8]}</code>' in html
    assert len(runs_rows(ds, "/-/xpm/runs/xpm_test_tasks.evaluate")) == 3
    assert get(ds, "/-/xpm/runs/nope.task").status_code == 404
    assert get(ds, "/-/xpm/experiment/nope").status_code == 404
    # The home page links the experiment's page.
    assert 'href="/-/xpm/experiment/sweep"' in get(ds, "/").text


def test_a_page_past_the_end_shows_the_last_page(ds: Any) -> None:
    base = "/-/xpm/experiment/sweep?task=xpm_test_tasks.evaluate&size=2"
    last = runs_rows(ds, base + "&page=2")
    assert len(last) == 1 and runs_rows(ds, base + "&page=99") == last
    assert "Jobs 3–3 of 3" in get(ds, base + "&page=99").text


def test_runs_table_filters(ds: Any) -> None:
    base = "/-/xpm/experiment/sweep?task=xpm_test_tasks.evaluate&sort=result:accuracy"
    acc = [r["result:accuracy"] for r in runs_rows(ds, base + "&where=accuracy%3E0.65")]
    assert acc == ["0.7", "0.8"]
    # Several values of one tag: any of them; different columns: all.
    two = runs_rows(ds, base + "&where=n_layers%3D1&where=n_layers%3D3")
    assert [r["tag:n_layers"] for r in two] == ["1", "3"]
    one = runs_rows(ds, base + "&where=n_layers%3D1&where=n_layers%3D3&where=accuracy%3E%3D0.7")
    assert [r["tag:n_layers"] for r in one] == ["3"]
    # A parameter by its path or its last part; text contains; state.
    assert len(runs_rows(ds, base + "&where=model.model.n_layers%3C3")) == 2
    assert len(runs_rows(ds, base + "&where=activation~rel")) == 3
    assert runs_rows(ds, base + "&where=state%3DFAILED") == []
    train = "/-/xpm/experiment/sweep?task=sweep.train"
    assert len(runs_rows(ds, train + "&where=lr%3E0.01")) == 3
    # A bad filter says what to write and leaves the table whole.
    html = get(ds, base + "&where=bogus%3E1").text
    assert "no column &#39;bogus&#39;" in html and "n_layers" in html.split("xpm-error")[1]
    assert len(runs_rows(ds, base + "&where=bogus%3E1")) == 3
    pager = html.split('id="xpm-pager"')[1].split("</p>")[0]
    assert "of 3 <strong" in pager and "(filter “bogus&gt;1” not applied: see above)" in pager
    typo = get(ds, base + "&where=n_layer%3D1").text.split("xpm-error")[1].split("</p>")[0]
    assert "did you mean n_layers or learn.n_layers?" in typo, typo
    assert "write NAME OP VALUE" in get(ds, base + "&where=lr").text
    # A comparison of a numeric column with a word is an error, not an empty table.
    word = get(ds, base + "&where=accuracy%3Eabc").text
    assert "accuracy holds numbers; &#39;abc&#39; is not one" in word
    assert len(runs_rows(ds, base + "&where=accuracy%3Eabc")) == 3
    # One box may hold several conditions, as `xpm results --where` reads them.
    for box in ("n_layers%3D3%2C%20accuracy%3E%3D0.7", "n_layers%3D3%20and%20accuracy%3E%3D0.7"):
        assert [r["tag:n_layers"] for r in runs_rows(ds, base + "&where=" + box)] == ["3"]
    spaced = get(ds, base + "&where=n_layers%3D3%20accuracy%3E0.7").text
    assert "has spaces: separate conditions with commas" in spaced
    # A state as the facets and `xpm jobs list --state` write it: any case.
    assert len(runs_rows(ds, base + "&where=state%3Ddone")) == 3
    # Facets count the jobs per value of each tag, ignoring that tag's own filter.
    html = get(ds, base + "&where=n_layers%3D1").text
    facet = html.split('data-key="tag:n_layers"')[1].split("</div>")[0]
    assert re.findall(r">(\d) <small>(\d+)</small>", facet) == [("1", "1"), ("2", "1"), ("3", "1")]
    assert 'class="xpm-chosen">1 <small>' in facet


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """An index of 1,234 jobs written directly (bench/bench_serve.py's builder)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_serve", ROOT / "bench" / "bench_serve.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    # bench/_common.py turns bytecode writing back on for the whole process: undo that, the
    # other tests' subprocesses must not leave __pycache__ in their git repositories.
    saved = (dict(os.environ), sys.dont_write_bytecode)
    try:
        spec.loader.exec_module(bench)
    finally:
        os.environ.clear()
        os.environ.update(saved[0])
        sys.dont_write_bytecode = saved[1]
    workdir = tmp_path_factory.mktemp("big") / "workdir"
    workdir.mkdir()
    bench.build(workdir, 1234)
    return make_datasette(workdir), workdir


def sql(workdir: Path, query: str) -> list[Any]:
    """Rows of ``query`` on the index of ``workdir`` (the truth the pages are checked against)."""
    conn = sqlite3.connect(workdir / "xpm.db")
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def test_runs_table_of_every_job_sorted_and_counted_from_the_indexes(big: tuple[Any, Path]) -> None:
    """One task, no filter: order and facet counts come from the indexes, and are right."""
    ds, workdir = big
    by_tag = [
        r[0]
        for r in sql(
            workdir,
            "SELECT j.id FROM jobs j LEFT JOIN tags t ON t.job_id = j.id AND t.key = 'model' "
            "ORDER BY t.value DESC NULLS LAST, j.id DESC",  # ties in the sort's direction
        )
    ]
    states = dict(sql(workdir, "SELECT state, COUNT(*) FROM jobs GROUP BY state"))
    models = sql(
        workdir,
        "SELECT value, COUNT(*) FROM tags WHERE key = 'model' GROUP BY value ORDER BY value",
    )
    base = "/-/xpm/runs/bench.train?sort=-tag:model&size=500"
    seen = []
    for page in (1, 2, 3):
        seen += [r["id"] for r in runs_rows(ds, f"{base}&page={page}")]
    assert seen == by_tag
    html = get(ds, base + "&page=3").text
    for state, count in states.items():
        assert (
            f"{state} <small>{count}</small>"
            in html.split('data-key="state"')[1].split("</div>")[0]
        )
    facet = html.split('data-key="tag:model"')[1].split("</div>")[0]
    assert re.findall(r">(\w+) <small>(\d+)</small>", facet) == [(v, str(n)) for v, n in models]


def test_runs_table_pages_past_1000_rows(big: tuple[Any, Path]) -> None:
    ds, workdir = big
    expected = [
        r[0]
        for r in sql(
            workdir,
            "SELECT j.id FROM jobs j JOIN results r ON r.job_id = j.id AND r.key = 'accuracy' "
            "ORDER BY r.value DESC, j.id",
        )
    ]
    failed = sql(workdir, "SELECT COUNT(*) FROM jobs WHERE state = 'FAILED'")[0][0]
    assert len(expected) == 1234
    base = "/-/xpm/runs/bench.train?sort=-result:accuracy&size=100"
    seen = []
    for page in range(1, 14):
        seen += [r["id"] for r in runs_rows(ds, f"{base}&page={page}")]
    assert seen == expected
    html = get(ds, f"{base}&page=13").text
    assert "Jobs 1201–1234 of 1234" in html and "page 13 of 13" in html
    states = html.split('data-key="state"')[1].split("</div>")[0]
    assert f"FAILED <small>{failed}</small>" in states
    assert f"DONE <small>{1234 - failed}</small>" in states


# --- compare ----------------------------------------------------------------------------------
def test_compare_jobs_side_by_side(ds: Any) -> None:
    ids = [job_id(ds, "sweep.train", f"n_layers%3D{n}") for n in (1, 2, 3)]
    html = get(ds, "/-/xpm/compare?" + "&".join(f"id={i[:10]}" for i in ids)).text
    differs = html.split('id="xpm-compare-params"')[1].split("</tbody>")[0]
    assert re.findall(r'data-key="param:([^"]+)"', differs) == ["n_layers"]
    assert re.findall(r'<td class="xpm-text" title="(\d)">', differs) == ["1", "2", "3"]
    same = html.split('id="xpm-compare-same"')[1].split("</tbody>")[0]
    assert re.findall(r'data-key="param:([^"]+)"', same) == ["lr"]
    meta = html.split('id="xpm-compare-meta"')[1].split("</tbody>")[0]  # Train's Meta steps
    assert re.findall(r'data-key="meta:([^"]+)"', meta) == ["steps"]
    results = html.split('id="xpm-compare-results"')[1].split("</tbody>")[0]
    assert re.findall(r">([0-9.]+)</td>", results) == ["0.3333", "0.2", "0.1429"]
    # The loss curves overlaid: one series per job, named by what differs.
    data = json.loads(html.split('id="xpm-curve-data-1">')[1].split("</script>")[0])
    assert data["metric"] == "loss"
    assert [s["name"] for s in data["series"]] == [
        f"{ids[0][:8]} n_layers=1",
        f"{ids[1][:8]} n_layers=2",
        f"{ids[2][:8]} n_layers=3",
    ]
    assert all([p[0] for p in s["points"]] == [0, 1, 2, 3, 4] for s in data["series"])
    html = get(ds, f"/-/xpm/compare?id={ids[0]}&id=ffff0000").text
    assert "no job ffff0000" in html


def test_compare_across_tasks_never_fills_a_path_from_a_tag(ds: Any) -> None:
    """A Learn job beside its Evaluate job: model.model.n_layers, which the Learn job lacks,
    differs ("—" against 2); it was read from the Learn job's tag n_layers and listed among
    the parameters equal in all.  The page says the jobs are of two tasks."""
    learn = job_id(ds, "xpm_test_tasks.learn", "n_layers%3D2")
    evaluate = job_id(ds, "xpm_test_tasks.evaluate", "n_layers%3D2")
    html = get(ds, f"/-/xpm/compare?id={learn}&id={evaluate}").text
    differs = html.split('id="xpm-compare-params"')[1].split("</tbody>")[0]
    same = (
        html.split('id="xpm-compare-same"')[1].split("</tbody>")[0]
        if "xpm-compare-same" in html
        else ""
    )
    assert "param:model.model.n_layers" in differs and "param:model.model.n_layers" not in same
    if 'data-key="param:' not in same:  # no row: no heading either (an empty section)
        assert "parameters equal in all" not in html
    note = html.split('id="xpm-compare-tasks">')[1].split("</p>")[0]
    assert "of 2 tasks (xpm_test_tasks.learn, xpm_test_tasks.evaluate)" in note, note
    one = get(ds, f"/-/xpm/compare?id={learn}").text
    assert 'id="xpm-compare-tasks"' not in one
    # Curves named without the paths a job lacks (it read "0d1a6272 lr=0.001 model= lr=").
    train = job_id(ds, "sweep.train", "n_layers%3D2")
    both = get(ds, f"/-/xpm/compare?id={train}&id={learn}").text
    found = re.findall(r'id="xpm-curve-data-\d+">(.*?)</script>', both)
    names = [s["name"] for d in found for s in json.loads(d)["series"]]
    assert names and not any(n.endswith("=") or "= " in n for n in names), names


# --- job page -----------------------------------------------------------------------------------
def test_job_page(ds: Any) -> None:
    job = job_id(ds, "xpm_test_tasks.evaluate", "n_layers%3D2")
    r = get(ds, f"/-/xpm/job/{job[:10]}")
    assert r.status_code == 200
    html = r.text
    params = html[html.index('id="xpm-params"') : html.index('id="xpm-tags"')]
    # A tree: the nested model's parameters under model > model.
    assert params.index("learnedmodel") < params.index("<code>n_layers</code>")
    assert (
        '<code>n_layers</code> = <span class="xpm-value">2</span> <span class="xpm-type">int</span></li>'
        in params
    )
    # Meta parameters are marked (the model's device), settings are not.
    device = params.split("<code>device</code>")[1].split("</li>")[0]
    assert 'class="xpm-meta"' in device
    results = html[html.index('id="xpm-results"') :]
    assert "accuracy" in results and "0.7" in results
    history = html[html.index('id="xpm-history"') : html.index('id="xpm-launcher"')]
    assert history.index("SUBMITTED") < history.index("RUNNING") < history.index("DONE")
    launcher = html[html.index('id="xpm-launcher"') : html.index('id="xpm-git"')]
    assert "local" in launcher and "sweep/" in launcher
    git = html[html.index('id="xpm-git"') : html.index('id="xpm-logs"')]
    assert "dirty" in git and "+# an uncommitted change" in git


def test_job_page_of_a_job_not_launched_shows_bools_and_says_why_no_git(
    tmp_path: Path,
) -> None:
    from xpm_test_tasks import Flagged

    workdir = tmp_path / "wd"
    with experiment(workdir, "gen", "generate", progress=False):
        job = Flagged(flag=True).submit()
    html = get(make_datasette(workdir), f"/-/xpm/job/{job.__xpm_jobdir__.identifier[:10]}").text
    params = html[html.index('id="xpm-params"') : html.index('id="xpm-tags"')]
    assert (
        '<code>flag</code> = <span class="xpm-value">true</span> <span class="xpm-type">bool</span></li>'
        in params
    )
    assert 'class="xpm-meta"' in params.split("<code>scratch</code>")[1]
    git = html[html.index('id="xpm-git"') : html.index('id="xpm-logs"')]
    assert "Not launched yet" in git and "XPM_GIT=off" not in git


def test_job_page_takes_the_state_from_the_job_directory_as_jobs_show_does(
    tmp_path: Path,
) -> None:
    """A job run without anything updating the index (a generated job run by hand, as a
    detached run's jobs are) shows the state its directory holds, as `xpm jobs show`
    does, and says the index is behind, instead of the index's WAITING (#17)."""
    from xpm_test_tasks import Count

    workdir = tmp_path / "wd"
    with experiment(workdir, "gen", "generate", progress=False):
        job = Count(n=3).submit()
    jobdir = job.__xpm_jobdir__
    ds = make_datasette(workdir)
    before = get(ds, f"/-/xpm/job/{jobdir.identifier[:10]}").text
    assert 'xpm-state-waiting">WAITING' in before and "xpm-index-behind" not in before
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    ran = subprocess.run([sys.executable, "-m", "xpm.run", str(jobdir.path)], env=env)
    assert ran.returncode == 0
    html = get(ds, f"/-/xpm/job/{jobdir.identifier[:10]}").text
    title = html.split('class="xpm-job-title"')[1].split("</h1>")[0]
    assert 'xpm-state-done">DONE' in title
    assert "the index still says WAITING" in html.split('id="xpm-index-behind"')[1]
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "xpm.cli",
            "jobs",
            "show",
            "--workdir",
            str(workdir),
            "--json",
            jobdir.identifier[:10],
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert json.loads(shown.stdout)["job"]["state"] == "DONE"
    # Caught up (jobs show records what it read): the note is gone.
    assert "xpm-index-behind" not in get(ds, f"/-/xpm/job/{jobdir.identifier[:10]}").text


def test_job_page_links_upstream_and_downstream(ds: Any) -> None:
    learn = job_id(ds, "xpm_test_tasks.learn", "n_layers%3D2")
    evaluate = job_id(ds, "xpm_test_tasks.evaluate", "n_layers%3D2")
    html = get(ds, f"/-/xpm/job/{evaluate}").text
    upstream = html.split('id="xpm-upstream"')[1].split("</p>")[0]
    assert f'href="/-/xpm/job/{learn}"' in upstream and "xpm_test_tasks.learn" in upstream
    assert 'id="xpm-downstream"' not in html
    html = get(ds, f"/-/xpm/job/{learn}").text
    downstream = html.split('id="xpm-downstream"')[1].split("</p>")[0]
    # Its Evaluate job only: not itself (its own outputs are paths inside its directory).
    assert downstream.count('href="/-/xpm/job/') == 1 and f"/-/xpm/job/{evaluate}" in downstream
    assert 'id="xpm-upstream"' not in html
    train = job_id(ds, "sweep.train", "n_layers%3D2")
    html = get(ds, f"/-/xpm/job/{train}").text
    assert 'id="xpm-upstream"' not in html and 'id="xpm-downstream"' not in html


def test_job_page_log_tails(ds: Any) -> None:
    fail = job_id(ds, "xpm_test_tasks.fail")
    html = get(ds, f"/-/xpm/job/{fail}").text
    assert "RuntimeError: this task always fails" in html.split('id="xpm-stderr"')[1]
    assert "about to fail" in html.split('id="xpm-stdout"')[1]
    train = job_id(ds, "sweep.train", "n_layers%3D1")
    assert "step 4 loss" in get(ds, f"/-/xpm/job/{train}").text


def test_job_page_not_found(ds: Any) -> None:
    missing = get(ds, "/-/xpm/job/" + "0" * 64)
    assert missing.status_code == 404 and "no job 000" in missing.text
    # Not hex: the page says what to give (it was Datasette's bare "404").
    mistyped = get(ds, "/-/xpm/job/zzzz")
    assert mistyped.status_code == 404
    assert "is not a job identifier: give its hex digits" in html.unescape(mistyped.text)
    assert get(ds, "/-/xpm/job/..").status_code == 404


# --- artifacts and logs -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def artifacts(indexed: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str, Path]:
    """A copy of the indexed workdir whose Train job has outputs, links and a long log."""
    workdir = tmp_path_factory.mktemp("artifacts") / "workdir"
    shutil.copytree(indexed, workdir, symlinks=True)
    ds = make_datasette(workdir)
    job = job_id(ds, "sweep.train", "n_layers%3D1")
    jobdir = workdir / "jobs" / "sweep.train" / job
    (jobdir / "out").mkdir()
    (jobdir / "out" / "model.txt").write_text("weights\n")
    (jobdir / "out" / "a b~1.txt").write_text("odd name\n")
    secret = workdir.parent / "secret.txt"
    secret.write_text("secret\n")
    (jobdir / "secret.txt").symlink_to(secret)
    (jobdir / "up").symlink_to(workdir)
    (jobdir / "stderr.log").write_text("".join(f"line {i:06d}\n" for i in range(20000)))
    return ds, job, jobdir


def test_files_listed_with_sizes(artifacts: tuple[Any, str, Path]) -> None:
    ds, job, jobdir = artifacts
    html = get(ds, f"/-/xpm/job/{job}/files").text
    table = html[html.index('id="xpm-files"') :]
    assert f'href="/-/xpm/job/{job}/files/out/model.txt"' in table
    assert f'href="/-/xpm/job/{job}/files/params.json"' in table
    size = (jobdir / "params.json").stat().st_size
    row = table[table.index("params.json") :].split("</tr>")[0]
    assert f"{size} B" in row
    # Links are listed as links, with no download link, and a linked directory is not entered.
    for link in ("secret.txt", "up"):
        row = table[table.index(f'<td class="xpm-wrap">{link}') :].split("</tr>")[0]
        assert "symbolic link, not followed" in row and "href" not in row
    assert "xpm.db" not in table and "experiments" not in table
    assert f"/-/xpm/job/{job}/files" in get(ds, f"/-/xpm/job/{job}").text  # linked


def test_file_download_is_read_only_and_stays_inside(artifacts: tuple[Any, str, Path]) -> None:
    ds, job, jobdir = artifacts
    base = f"/-/xpm/job/{job}/files/"
    r = get(ds, base + "params.json")
    assert r.status_code == 200 and r.text == (jobdir / "params.json").read_text()
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["x-content-type-options"] == "nosniff"
    files = get(ds, f"/-/xpm/job/{job}/files").text
    odd = files.split('">out/a b~1.txt</a>')[0].rsplit('href="', 1)[1]
    assert get(ds, odd).text == "odd name\n"
    r = get(ds, base + "out/model.txt?download=1")
    assert r.status_code == 200 and r.text == "weights\n"
    assert r.headers["content-disposition"].startswith("attachment")
    assert r.headers["content-type"] == "application/octet-stream"
    for bad in [
        "secret.txt",  # a link to a file outside
        "up/xpm.db",  # through a link to a directory
        "up/jobs",
        "..%2F..%2Fxpm.db",
        "%2E%2E/%2E%2E/xpm.db",
        "out/..%2Fparams.json",
        "%2Fetc%2Fpasswd",
        "out",  # a directory: no listing but the job's own
        "nothing",
    ]:
        # Datasette redirects %-escapes to ~-escapes: follow, then refuse.
        assert get(ds, base + bad, follow=True).status_code == 404, bad
    assert get(ds, f"/-/xpm/job/{'0' * 64}/files").status_code == 404


def test_whole_log_page_by_page(artifacts: tuple[Any, str, Path]) -> None:
    ds, job, jobdir = artifacts
    text = (jobdir / "stderr.log").read_text()
    pages = -(-len(text.encode()) // _files.LOG_PAGE)
    assert pages >= 3
    seen = []
    for n in range(1, pages + 1):
        html = get(ds, f"/-/xpm/job/{job}/log/stderr?page={n}").text
        assert f"Page {n} of {pages}" in html
        body = html.split('id="xpm-log">')[1].split("</pre>")[0]
        assert body.startswith("line ") and body.endswith("\n")  # whole lines
        seen.append(body)
    assert "".join(seen) == text  # every line once, in order
    last = get(ds, f"/-/xpm/job/{job}/log/stderr?page=999").text
    assert f"Page {pages} of {pages}" in last
    assert "No stdout.log" not in get(ds, f"/-/xpm/job/{job}/log/stdout").text


def test_open_file_refuses_links_swapped_in(tmp_path: Path) -> None:
    """No component is followed as a link, whatever it points to."""
    from xpm._jobdir import JobDir

    jobdir = JobDir(tmp_path, "t.task", "ab" * 32)
    jobdir.path.mkdir(parents=True)
    (jobdir.path / "a").mkdir()
    (jobdir.path / "a" / "f").write_text("x")
    inside = jobdir.path / "inside"
    inside.symlink_to(jobdir.path / "a")  # even a link staying inside
    for rel, ok in [("a/f", True), ("inside/f", False), ("a", False), ("a/./f", False)]:
        fd = _files.open_file(jobdir, rel)
        assert (fd is not None) == ok, rel
        if fd is not None:
            os.close(fd)


# --- chart --------------------------------------------------------------------------------------
def test_chart_data_against_a_tag_and_a_step(ds: Any) -> None:
    data = get(ds, "/-/xpm/chart.json?experiment=sweep&metric=accuracy&x=n_layers").json()["data"]
    [series] = data["series"]
    assert [(p[0], round(p[1], 3)) for p in series["points"]] == [(1, 0.6), (2, 0.7), (3, 0.8)]
    steps = get(ds, "/-/xpm/chart.json?experiment=sweep&metric=loss&x=step").json()["data"]
    assert len(steps["series"]) == 3 and steps["points"] == 15
    assert all([p[0] for p in s["points"]] == [0, 1, 2, 3, 4] for s in steps["series"])
    # Defaults: the latest experiment with a numeric metric; unknown choices fall back.
    page = get(ds, "/-/xpm/chart?experiment=sweep&metric=nope&x=nope")
    assert page.status_code == 200 and 'id="xpm-chart-data"' in page.text
    assert '<script src="/-/xpm/static/xpm-chart.js"' in page.text


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Noisy jobs for lr 0.01, 0.1, 1 (tagged), width 8, 16 (untagged), seeds 0-2 (tagged)."""
    workdir = tmp_path_factory.mktemp("seeds") / "workdir"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]), "XPM_GIT": "off"}
    done = subprocess.run(
        [sys.executable, str(SWEEP), str(workdir), "seeds"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return make_datasette(workdir)


def accuracy(lr: float, width: int, seed: float) -> float:
    return 0.5 + 0.1 * math.log10(lr) + width / 100 + seed / 100


def test_parallel_coordinates_draw_a_parameter_spanning_decades_on_a_log_axis(
    seeded: Any,
) -> None:
    """lr 0.01, 0.1, 1 on parallel coordinates: a log axis unless asked otherwise (the
    lines view did so for x, parallel coordinates squeezed 0.01 and 0.1 together)."""

    def log_axes(query: str) -> list[str]:
        page = get(seeded, "/-/xpm/chart?experiment=seeds&metric=accuracy&view=parallel" + query)
        found = re.search(
            r'<script type="application/json" id="xpm-chart-data">(.*?)</script>', page.text, re.S
        )
        assert found is not None
        return list(json.loads(found.group(1))["log_axes"])

    assert log_axes("") == ["lr"]  # width (8, 16) and seed (0..2) stay linear
    assert log_axes("&x=lr&logx=0") == []  # the form's x unticked
    assert log_axes("&x=width&logy=1") == ["lr", "accuracy"]


def test_jobs_table_tags_read_as_the_plugin_pages_show_them(seeded: Any) -> None:
    """lr=1.0 is recorded as a float: the /xpm/jobs facet reads lr=1 as the runs tables
    and charts do, and its link keeps the jobs with 1.0."""
    facet = get(seeded, "/xpm/jobs.json").json()["facet_results"]["tags"]["results"]
    values = {v["value"]: v["count"] for v in facet}
    assert {"lr=0.01", "lr=0.1", "lr=1"} <= set(values) and "lr=1.0" not in values, values
    assert values["lr=1"] == 6
    chosen = get(seeded, "/xpm/jobs.json?_tag=lr%3D1").json()
    assert len(chosen["rows"]) == 6
    picked = [v for v in chosen["facet_results"]["tags"]["results"] if v["selected"]]
    assert [v["value"] for v in picked] == ["lr=1"]


def test_chart_averages_over_seeds(seeded: Any) -> None:
    url = "/-/xpm/chart.json?experiment=seeds&metric=accuracy&x=lr&average=seed"
    data = get(seeded, url).json()["data"]
    # Jobs differing by an untagged parameter (width) are apart; seeds are averaged.
    assert data["group"] == ["width"] and [s["name"] for s in data["series"]] == [
        "width=8",
        "width=16",
    ]
    spread = statistics.stdev([0, 0.01, 0.02])  # the sample's, as `xpm results`
    for series, width in zip(data["series"], (8, 16), strict=True):
        assert [p[0] for p in series["points"]] == [0.01, 0.1, 1.0]
        means = [accuracy(lr, width, 1) for lr in (0.01, 0.1, 1.0)]
        assert [p[1] for p in series["points"]] == pytest.approx(means)
        assert all(len(p[2]) == 3 for p in series["points"])  # the three seeds
        assert [v for b in series["band"] for v in b[1:]] == pytest.approx(
            [v for m in means for v in (m - spread, m + spread)]
        )
    # Nothing averaged: a line per seed and width.
    data = get(seeded, "/-/xpm/chart.json?experiment=seeds&metric=accuracy&x=lr").json()["data"]
    assert len(data["series"]) == 6 and data["series"][0]["name"] == "seed=0 width=8"
    assert all(s["band"] == [] for s in data["series"])
    # x = an untagged parameter; x = step averaged over seeds.
    url = "/-/xpm/chart.json?experiment=seeds&metric=accuracy&x=width&average=seed"
    data = get(seeded, url).json()
    assert data["x"] == "param:width" and [s["name"] for s in data["data"]["series"]] == [
        "lr=0.01",
        "lr=0.1",
        "lr=1",
    ]
    url = "/-/xpm/chart.json?experiment=seeds&metric=loss&x=step&average=seed"
    data = get(seeded, url).json()["data"]
    assert len(data["series"]) == 6
    first = data["series"][0]
    assert [p[0] for p in first["points"]] == [0, 1, 2]
    assert first["points"][0][1] == pytest.approx(1.01) and len(first["band"]) == 3
    # A point over steps counts its values (one per seed); the line lists its jobs once.
    assert [p[2] for p in first["points"]] == [3, 3, 3] and len(set(first["jobs"])) == 3
    assert data["merged"] == 3


def test_parallel_coordinates_data(seeded: Any) -> None:
    url = "/-/xpm/chart.json?experiment=seeds&metric=accuracy&view=parallel"
    data = get(seeded, url).json()["data"]
    assert data["axes"] == ["lr", "seed", "width", "accuracy"] and len(data["lines"]) == 18
    for line in data["lines"]:
        lr, seed, width, acc = line["values"]
        assert acc == pytest.approx(accuracy(lr, width, seed))


def test_static_files_are_local_only() -> None:
    """Nothing the plugin ships loads code or styles from another host."""
    package = ROOT / "xpm" / "datasette"
    for path in [*package.glob("templates/*.html"), *package.glob("static/*")]:
        text = path.read_text()
        assert 'src="http' not in text and 'href="http' not in text and "//cdn" not in text, path


# --- live updates -------------------------------------------------------------------------------
def test_refresh_shows_new_jobs_and_states(tmp_path: Path) -> None:
    """While an experiment runs, the pages show its new job, then the job's new state."""
    workdir = tmp_path / "workdir"
    shutil.copy(SWEEP, tmp_path / "sweep.py")
    release = tmp_path / "release"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]), "XPM_GIT": "off"}
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "sweep.py"), str(workdir), "wait", str(release)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (workdir / "xpm.db").exists() or not _has_table(workdir / "xpm.db"):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        ds = make_datasette(workdir)

        def states() -> list[str]:
            return [r["state"] for r in rows(ds, "/xpm/jobs.json?_experiment=live")]

        while states() != ["RUNNING"]:
            assert proc.poll() is None and time.monotonic() < deadline, states()
            time.sleep(0.1)
        release.write_text("go")
        while states() != ["DONE"]:
            assert time.monotonic() < deadline, states()
            time.sleep(0.1)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _has_table(path: Path) -> bool:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'jobs'").fetchone())
    except sqlite3.Error:
        return False
    finally:
        conn.close()


# --- the path check of log tails ----------------------------------------------------------------
def test_log_tail_path_check(tmp_path: Path) -> None:
    workdir = tmp_path / "w"
    job = workdir / "jobs" / "a.task" / ("ab" * 32)
    job.mkdir(parents=True)
    (job / "stderr.log").write_text("".join(f"line {i}\n" for i in range(100)))
    rel = f"jobs/a.task/{'ab' * 32}"
    assert _files.log_tail(workdir, rel, "stderr", 3) == "line 97\nline 98\nline 99"
    outside = tmp_path / "secret.txt"
    outside.write_text("secret\n")
    for bad in [
        "../secret.txt",
        "jobs/../../secret.txt",
        "/etc/passwd",
        f"jobs/a.task/{'ab' * 32}/..",
        "jobs/a.task",
        "",
        None,
        3,
    ]:
        assert _files.log_tail(workdir, bad, "stderr", 5) is None  # type: ignore[arg-type]
    assert _files.log_tail(workdir, rel, "params", 5) is None
    # A log that is a link out of the job directory is not read.
    (job / "stdout.log").symlink_to(outside)
    assert _files.log_tail(workdir, rel, "stdout", 5) is None
    # Nor is a job directory that is a link to somewhere else.
    elsewhere = tmp_path / "elsewhere" / "x"
    elsewhere.mkdir(parents=True)
    (elsewhere / "stderr.log").write_text("secret\n")
    (workdir / "jobs" / "a.task" / ("cd" * 32)).symlink_to(elsewhere)
    assert _files.log_tail(workdir, f"jobs/a.task/{'cd' * 32}", "stderr", 5) is None


def test_log_tail_sql_function(ds: Any) -> None:
    from urllib.parse import quote

    sql = "select xpm_log_tail('jobs/../../etc/passwd', 'stderr', 5) as t"
    assert rows(ds, "/xpm.json?sql=" + quote(sql)) == [{"t": None}]


def test_param_tree() -> None:
    tree = _pages.param_tree(
        [
            {"path": "model", "value": "m.model", "type": "config"},
            {"path": "model.n_layers", "value": 2, "type": "int"},
            {"path": "epochs", "value": 3, "type": "int"},
        ]
    )
    assert (
        tree["model"]["value"] == "m.model" and tree["model"]["children"]["n_layers"]["value"] == 2
    )
    assert tree["epochs"]["children"] == {}


def test_task_tables_are_offered_with_sorting_and_facets(ds: Any) -> None:
    meta = get(ds, "/-/metadata.json").json()["databases"]["xpm"]["tables"]
    assert meta["evaluate"]["columns"]["n_layers"] == "Tag `n_layers`."
    data = get(ds, "/xpm/evaluate.json").json()
    assert data["human_description_en"] == "sorted by start_time descending"
    assert {"state", "experiment", "n_layers"} <= set(data["facet_results"])
    layers = {v["value"]: v["count"] for v in data["facet_results"]["n_layers"]["results"]}
    assert layers == {1: 1, 2: 1, 3: 1}
    found = rows(ds, "/xpm/evaluate.json?_sort_desc=accuracy")
    assert [r["n_layers"] for r in found] == [3, 2, 1]


def test_live_page_reads_its_rows_and_its_state_from_one_snapshot(tmp_path: Path) -> None:
    """A job ending between two reads of a page must not split the page across both states."""
    from xpm.datasette import _served
    from xpm.index import active_job_count

    path = tmp_path / "xpm.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE jobs (id TEXT, state TEXT)")
    writer.execute("INSERT INTO jobs VALUES ('a', 'RUNNING')")
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    def read(conn: sqlite3.Connection) -> tuple[str, int]:
        shown = conn.execute("SELECT state FROM jobs").fetchone()[0]
        writer.execute("UPDATE jobs SET state = 'DONE'")  # the job ends right now
        return shown, active_job_count(conn)

    assert _served.snapshot(read)(reader) == ("RUNNING", 1)  # consistent: still polling
    assert not reader.in_transaction
    writer.execute("UPDATE jobs SET state = 'RUNNING'")
    # Without the snapshot the page showed RUNNING and stopped refreshing: the bug.
    assert read(reader) == ("RUNNING", 0)
    assert _served.snapshot(lambda c: active_job_count(c))(reader) == 0


def test_a_workdir_path_with_a_hash_keeps_its_task_tables(indexed: Path, tmp_path: Path) -> None:
    """The task tables' metadata was read through a URI built by hand: a "#" in the path
    cut it there (no metadata) and SQLite created an empty file at the cut (a review)."""
    copy = tmp_path / "lab#1" / "workdir"
    shutil.copytree(indexed, copy, ignore=shutil.ignore_patterns("jobs"))
    served = make_datasette(copy)
    meta = get(served, "/-/metadata.json").json()["databases"]["xpm"]["tables"]
    assert meta["evaluate"]["columns"]["n_layers"] == "Tag `n_layers`."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab#1"]  # nothing at "lab"
