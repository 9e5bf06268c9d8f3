"""The xpm Datasette plugin through Datasette's own test client, on real indexes.

The index comes from running a real tiny experiment (tests/browser/sweep.py: Learn and
Evaluate reporting accuracy, Train reporting a loss per step, one failing job) in a git
repository with uncommitted changes, so the git state and its diff are recorded.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _gitrepo import make_repo

from xpm.datasette import _data, _files
from xpm.datasette._app import make_datasette
from xpm.datasette._metadata import QUERIES
from xpm.errors import IndexDatabaseError
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


def get(ds: Any, path: str) -> Any:
    async def go() -> Any:
        return await ds.client.get(path)

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


def test_sweep_pivot_has_a_column_per_tag_and_result(ds: Any) -> None:
    db = get(ds, "/xpm.json").json()
    names = {q["name"] for q in db["queries"]}
    assert {*QUERIES, "sweep_sweep", "sweep_broken"} <= names
    sweep = rows(ds, "/xpm/sweep_sweep.json")
    columns = list(sweep[0])
    assert columns == ["job", "task", "state", "lr", "n_layers", "accuracy", "loss", "weights"]
    evaluate = sorted(
        (r["n_layers"], r["accuracy"]) for r in sweep if r["task"] == "xpm_test_tasks.evaluate"
    )
    assert evaluate == [(1, pytest.approx(0.6)), (2, pytest.approx(0.7)), (3, pytest.approx(0.8))]
    train = [r for r in sweep if r["task"] == "sweep.train"]
    assert len(train) == 3 and all(r["lr"] == 0.5 and r["loss"] < 1 for r in train)


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


# --- job page -----------------------------------------------------------------------------------
def test_job_page(ds: Any) -> None:
    job = job_id(ds, "xpm_test_tasks.evaluate", "n_layers%3D2")
    r = get(ds, f"/-/xpm/job/{job[:10]}")
    assert r.status_code == 200
    html = r.text
    params = html[html.index('id="xpm-params"') : html.index('id="xpm-tags"')]
    # A tree: the nested model's parameters under model > model.
    assert params.index("learnedmodel") < params.index("<code>n_layers</code>")
    assert '<code>n_layers</code> = <span class="xpm-value">2</span>' in params
    results = html[html.index('id="xpm-results"') :]
    assert "accuracy" in results and "0.7" in results
    history = html[html.index('id="xpm-history"') : html.index('id="xpm-launcher"')]
    assert history.index("SUBMITTED") < history.index("RUNNING") < history.index("DONE")
    launcher = html[html.index('id="xpm-launcher"') : html.index('id="xpm-git"')]
    assert "local" in launcher and "sweep/" in launcher
    git = html[html.index('id="xpm-git"') : html.index('id="xpm-logs"')]
    assert "dirty" in git and "+# an uncommitted change" in git


def test_job_page_log_tails(ds: Any) -> None:
    fail = job_id(ds, "xpm_test_tasks.fail")
    html = get(ds, f"/-/xpm/job/{fail}").text
    assert "RuntimeError: this task always fails" in html.split('id="xpm-stderr"')[1]
    assert "about to fail" in html.split('id="xpm-stdout"')[1]
    train = job_id(ds, "sweep.train", "n_layers%3D1")
    assert "step 4 loss" in get(ds, f"/-/xpm/job/{train}").text


def test_job_page_not_found(ds: Any) -> None:
    assert get(ds, "/-/xpm/job/" + "0" * 64).status_code == 404
    assert get(ds, "/-/xpm/job/zz").status_code == 404


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
    tree = _data.param_tree(
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
