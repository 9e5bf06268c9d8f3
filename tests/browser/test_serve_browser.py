"""``xpm serve`` in a real headless Chromium, with the network blocked except loopback.

Needs Debian's chromium (/usr/bin/chromium) and playwright (in the test extra:
pip install -e '.[test]'; the browser is never downloaded).  Without them the tests skip, unless XPM_REQUIRE_BROWSER
is set (CI), where they fail.  XPM_UPDATE_SCREENSHOTS=1 writes the screenshots used by
docs/datasette.md into docs/images/ (otherwise they go to a temporary directory).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

HERE = Path(__file__).parent
TESTS = HERE.parent
ROOT = TESTS.parent
CHROMIUM = os.environ.get("XPM_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Anything the route guard misses (e.g. websockets) goes to a dead proxy; loopback is
    # never proxied.
    "--proxy-server=http://127.0.0.1:9",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _require_browser() -> Any:
    problems = []
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        problems.append(f"there is no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        sync_api = None
        problems.append("playwright is not installed (pip install -e '.[test]')")
    if problems:
        reason = "browser test skipped: " + " and ".join(problems)
        if os.environ.get("XPM_REQUIRE_BROWSER", "") not in ("", "0"):
            pytest.fail(reason + " (XPM_REQUIRE_BROWSER is set)")
        pytest.skip(reason)
    return sync_api


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]), "XPM_GIT": "off"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``xpm serve`` on the index of a real tiny experiment; yields its URL."""
    _require_browser()
    workdir = tmp_path_factory.mktemp("served") / "workdir"
    _sweep(workdir)  # the sweep (10 jobs)
    _sweep(workdir, "seeds")  # then 18 seeded jobs
    with _serving(workdir) as url:
        yield url


def _sweep(workdir: Path, *args: str) -> None:
    """Run tests/browser/sweep.py's experiments ``args`` name into ``workdir``."""
    done = subprocess.run(
        [sys.executable, str(HERE / "sweep.py"), str(workdir), *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


@contextlib.contextmanager
def _serving(workdir: Path) -> Iterator[str]:
    """``xpm serve`` on ``workdir`` in a real process; yields its URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "xpm.cli", "serve", "--workdir", str(workdir), "--port", str(port)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line, (
            line,
            proc.stderr.read() if proc.stderr else "",
        )
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "-/versions.json", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = _require_browser()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page whose requests may only go to loopback; asserts nothing else was asked for."""
    blocked: list[str] = []
    errors: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("data", "blob", "about") or parts.hostname in LOOPBACK:
            route.continue_()
        else:
            blocked.append(url)
            route.abort("blockedbyclient")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.route("**/*", guard)
    pg = context.new_page()
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.blocked = blocked
    try:
        yield pg
    finally:
        context.close()
    assert blocked == [], f"the page asked for non-local URLs: {blocked}"
    assert errors == [], f"JavaScript errors: {errors}"


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("XPM_UPDATE_SCREENSHOTS", "") not in ("", "0"):
        return ROOT / "docs" / "images"
    return tmp_path_factory.mktemp("screenshots")


def test_guard_catches_cdn_loads(browser: Any) -> None:
    """The route guard sees and blocks a CDN script (so an empty list means something)."""
    blocked: list[str] = []
    context = browser.new_context()
    context.route(
        "**/*",
        lambda route: (blocked.append(route.request.url), route.abort("blockedbyclient")),
    )
    pg = context.new_page()
    pg.set_content('<script src="https://cdn.jsdelivr.net/npm/vega@6"></script><p>x</p>')
    context.close()
    assert blocked == ["https://cdn.jsdelivr.net/npm/vega@6"]


def test_home_page(server: str, page: Any, shots: Path) -> None:
    """The home page lists the experiments (latest first) and failed jobs, no _memory."""
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(server)
    names = page.locator("#xpm-experiments tbody tr td:first-child").all_inner_texts()
    assert names == ["seeds", "broken", "sweep"]
    sweep = page.locator('#xpm-experiments tr[data-experiment="sweep"]').inner_text()
    assert "9 done" in sweep and time.strftime("%Z") in sweep  # the zone is shown
    assert "Nothing is running." in page.locator("#xpm-running").inner_text()
    assert "_memory" not in page.locator("body").inner_text()
    # The experiments table fits a 1366 px wide laptop screen.
    box = page.locator("#xpm-experiments table").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 1366
    page.screenshot(path=str(shots / "datasette-home.png"), full_page=False)
    page.locator("#xpm-failed tbody a").first.click()
    page.wait_for_url("**/-/xpm/job/*")
    assert "this task always fails" in page.locator("#xpm-stderr").inner_text()


def test_experiment_runs_table(server: str, page: Any, shots: Path) -> None:
    """From home to an experiment's runs table: sort by a header, facets, a typed filter."""
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(server)
    page.locator("#xpm-experiments a", has_text="sweep").click()
    page.wait_for_url("**/-/xpm/experiment/sweep")
    page.locator("#xpm-tasks a", has_text="xpm_test_tasks.evaluate").click()
    page.wait_for_url("**task=xpm_test_tasks.evaluate")

    def column(key: str) -> list[str]:
        return page.locator(f'#xpm-runs tbody td[data-key="{key}"]').all_inner_texts()

    page.locator('#xpm-runs th[data-key="result:accuracy"] a:not(.xpm-hide)').click()
    page.wait_for_url("**sort=-result*")
    assert column("result:accuracy") == ["0.8", "0.7", "0.6"]
    page.locator('#xpm-runs th[data-key="result:accuracy"] a:not(.xpm-hide)').click()
    page.wait_for_url("**sort=result*")
    assert column("result:accuracy") == ["0.6", "0.7", "0.8"]
    # What a 1366x768 laptop shows without scrolling: ids, states, results, tags.
    for key in ("id", "state", "result:accuracy", "tag:n_layers"):
        box = page.locator(f'#xpm-runs th[data-key="{key}"]').bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 1366, key
        assert box["y"] + box["height"] <= 768, key
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    ids = page.locator("#xpm-runs td.xpm-id").all_inner_texts()
    assert all(len(i.strip()) == 8 for i in ids), ids
    page.screenshot(path=str(shots / "datasette-runs.png"), full_page=False)
    # Two values of one tag from its facet, then a numeric comparison typed in.
    page.locator('.xpm-facet[data-key="tag:n_layers"] a', has_text="1").first.click()
    page.wait_for_url("**where=*")
    assert column("tag:n_layers") == ["1"]
    page.locator('.xpm-facet[data-key="tag:n_layers"] a', has_text="3").first.click()
    page.wait_for_load_state()
    assert column("tag:n_layers") == ["1", "3"]
    page.locator('#xpm-filters input[type="text"]').fill("accuracy > 0.65")
    page.locator("#xpm-filters button").click()
    page.wait_for_url("**accuracy*")
    assert column("tag:n_layers") == ["3"]
    assert "result:accuracy>0.65" in page.locator("#xpm-filters").inner_text()


def test_compare_ticked_jobs(server: str, page: Any) -> None:
    """Tick two Train jobs in the runs table: their differences, results and loss curves;
    Train's Meta parameter (steps) is a column only on request, and apart in the comparison."""
    page.goto(server + "-/xpm/experiment/sweep?task=sweep.train&sort=tag:n_layers")
    assert page.locator('#xpm-runs th[data-key="param:steps"]').count() == 0
    page.locator("#xpm-meta-toggle").click()
    page.wait_for_url("**meta=1*")
    assert page.locator('#xpm-runs th[data-key="param:steps"]').is_visible()
    assert page.locator("#xpm-meta-toggle").inner_text() == "hide Meta parameters"
    boxes = page.locator('#xpm-runs tbody input[type="checkbox"]')
    boxes.nth(0).check()
    boxes.nth(2).check()
    page.locator("#xpm-runs-form button").click()
    page.wait_for_url("**/-/xpm/compare?id=*")
    differs = page.locator("#xpm-compare-params tr.xpm-differs")
    assert differs.count() == 1
    assert differs.first.inner_text().split() == ["n_layers", "1", "3"]
    assert page.locator("#xpm-compare-meta").inner_text().split()[-3:] == ["steps", "Meta", "5"]
    assert "loss" in page.locator("#xpm-compare-results").inner_text()
    page.wait_for_selector('#xpm-curve-1[data-drawn="1"] svg')
    svg = page.locator("#xpm-curve-1 svg")
    assert svg.locator("g.series").count() == 2 and svg.locator("circle").count() == 10
    legend = page.locator("#xpm-curve-1 .xpm-legend li").all_inner_texts()
    assert [name.split(" ", 1)[1] for name in legend] == ["n_layers=1", "n_layers=3"]


def test_jobs_table_tag_facet_and_job_page(server: str, page: Any, shots: Path) -> None:
    page.goto(server + "xpm/jobs")
    assert page.locator("h1").first.inner_text().startswith("jobs")
    # Facets on task, state, experiment and tags are there without asking.
    facets = page.locator(".facet-info")
    names = [facets.nth(i).get_attribute("data-column") for i in range(facets.count())]
    assert {"task_id", "state", "experiment", "tags"} <= set(names), names
    assert "28 rows" in page.locator("h3").first.inner_text()

    # Filter by a tag facet: n_layers=2 -> the Learn, Evaluate and Train jobs of n_layers 2.
    page.locator('.facet-info[data-column="tags"] a', has_text="n_layers=2").first.click()
    page.wait_for_url("**_tag=n_layers*")
    assert "3 rows" in page.locator("h3").first.inner_text()
    assert "tag n_layers = 2" in page.content()
    tasks = page.locator("td.col-task_id").all_inner_texts()
    assert sorted(tasks) == ["sweep.train", "xpm_test_tasks.evaluate", "xpm_test_tasks.learn"]
    page.locator("form.filters").scroll_into_view_if_needed()
    page.evaluate("document.querySelector('form.filters').scrollIntoView()")
    page.screenshot(path=str(shots / "datasette-jobs.png"), full_page=False)

    # Open the Evaluate job's page from its directory link.
    row = page.locator("tbody tr", has_text="xpm_test_tasks.evaluate")
    row.locator("td.col-path a").click()
    page.wait_for_url("**/-/xpm/job/*")
    params = page.locator("#xpm-params").inner_text()
    assert "n_layers" in params and "activation" in params and "learnedmodel" in params
    results = page.locator("#xpm-results").inner_text()
    assert "accuracy" in results and "0.7" in results
    assert "n_layers" in page.locator("#xpm-tags").inner_text()
    history = page.locator("#xpm-history").inner_text()
    assert "SUBMITTED" in history and "RUNNING" in history and "DONE" in history
    assert "local" in page.locator("#xpm-launcher").inner_text()
    page.screenshot(path=str(shots / "datasette-job.png"), full_page=True)


def test_job_page_links_and_wraps_long_values(server: str, page: Any) -> None:
    """An Evaluate job links its Learn job and back; its long path wraps in its column."""
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(server + "xpm/jobs?task_id=xpm_test_tasks.evaluate&_tag=n_layers%3D2")
    page.locator("td.col-path a").first.click()
    page.wait_for_url("**/-/xpm/job/*")
    evaluate_url = page.url
    params = page.locator("#xpm-params").bounding_box()
    tags = page.locator("#xpm-tags").bounding_box()
    assert params is not None and tags is not None
    values = page.locator("#xpm-params .xpm-value")
    longest = max(values.all_inner_texts(), key=len)
    assert longest.startswith("jobs/xpm_test_tasks.learn/") and len(longest) >= 100
    for i in range(values.count()):
        box = values.nth(i).bounding_box()
        assert box is not None and box["x"] + box["width"] <= params["x"] + params["width"] + 1
    if tags["y"] < params["y"] + params["height"]:  # side by side: no overlap
        assert params["x"] + params["width"] <= tags["x"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    # State badges stay on one line (a trial saw "SUBMITTE / D" in the history).
    heights = page.locator(".xpm-state").evaluate_all(
        "bs => bs.map(b => b.getClientRects().length)"
    )
    assert heights and all(n == 1 for n in heights), heights
    page.locator("#xpm-upstream a").first.click()
    page.wait_for_url("**/-/xpm/job/*")
    assert page.locator("h1").first.inner_text().startswith("xpm_test_tasks.learn")
    page.locator("#xpm-downstream a").first.click()
    page.wait_for_url(evaluate_url)


def test_job_files_and_whole_logs(server: str, page: Any) -> None:
    """From a job page: its files with sizes, one opened as text, the whole stdout."""
    page.goto(server + "xpm/jobs?task_id=sweep.train&_tag=n_layers%3D1")
    page.locator("td.col-path a").first.click()
    page.wait_for_url("**/-/xpm/job/*")
    job_url = page.url
    page.locator("#xpm-files-link").click()
    page.wait_for_url("**/files")
    rows = {
        r.locator("td").first.inner_text(): r.locator("td").nth(1).inner_text()
        for r in page.locator("#xpm-files tbody tr").all()
    }
    assert {"params.json", "results.jsonl", "stdout.log", "stderr.log"} <= set(rows), rows
    assert rows["stderr.log"] == "0 B" and rows["stdout.log"].endswith(" B")
    page.locator("#xpm-files a", has_text="stdout.log").first.click()
    assert "step 4 loss" in page.locator("body").inner_text()
    page.goto(job_url)
    page.locator("#xpm-logs a", has_text="all of it").first.click()
    page.wait_for_url("**/log/stdout")
    assert "Page 1 of 1" in page.locator("#xpm-pager").inner_text()
    log = page.locator("#xpm-log").inner_text()
    assert log.startswith("step 0 loss") and "step 4 loss" in log


def test_failed_job_shows_stderr_tail(server: str, page: Any, shots: Path) -> None:
    page.goto(server + "xpm/failed_jobs")
    assert "RuntimeError: this task always fails" in page.locator("pre.xpm-tail").first.inner_text()
    page.evaluate(
        "document.querySelector('.table-wrapper, table.rows-and-columns').scrollIntoView()"
    )
    page.screenshot(path=str(shots / "datasette-failed.png"), full_page=False)
    page.locator("a", has_text="job page").first.click()
    page.wait_for_url("**/-/xpm/job/*")
    assert "RuntimeError: this task always fails" in page.locator("#xpm-stderr").inner_text()
    assert "about to fail" in page.locator("#xpm-stdout").inner_text()


@pytest.mark.parametrize(
    ("query", "series", "points", "name"),
    [
        ("experiment=sweep&metric=accuracy&x=n_layers", 1, 3, "datasette-chart.png"),
        ("experiment=sweep&metric=loss&x=step", 3, 15, "datasette-chart-steps.png"),
    ],
)
def test_chart_draws_offline(
    server: str, page: Any, shots: Path, query: str, series: int, points: int, name: str
) -> None:
    page.goto(server + "-/xpm/chart?" + query)
    page.wait_for_selector('#xpm-chart[data-drawn="1"] svg')
    svg = page.locator("#xpm-chart svg")
    assert svg.locator("g.series").count() == series
    assert svg.locator("circle").count() == points
    lines = svg.locator("g.series path.line")
    assert lines.count() == series and len(lines.first.get_attribute("d") or "") > 10
    box = svg.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 200
    page.screenshot(path=str(shots / name), full_page=False)
    # A point links to its job.
    svg.locator("circle").last.click()  # drawn last: on top
    page.wait_for_url("**/-/xpm/job/*")


def test_chart_averages_seeds_with_bands_on_a_log_axis(server: str, page: Any) -> None:
    """x = a tagged float on a log axis, one line per untagged width, seeds averaged."""
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(server + "-/xpm/chart?experiment=seeds&metric=accuracy&x=lr&average=seed&logx=1")
    page.wait_for_selector('#xpm-chart[data-drawn="1"] svg')
    svg = page.locator("#xpm-chart svg")
    assert svg.locator("g.series").count() == 2
    assert svg.locator("g.series path.band").count() == 2
    assert page.locator("#xpm-chart .xpm-legend li").all_inner_texts() == ["width=8", "width=16"]
    # Log x: 0.01, 0.1 and 1 equally spaced.
    cx = [
        float(c)
        for c in svg.locator("g.series")
        .first.locator("circle")
        .evaluate_all("cs => cs.map(c => c.getAttribute('cx'))")
    ]
    assert len(cx) == 3 and abs((cx[1] - cx[0]) - (cx[2] - cx[1])) < 1
    ticks = svg.locator("g.axis text").all_text_contents()
    assert {"0.01", "0.1", "1"} <= set(ticks)
    assert "mean accuracy (over seed)" in ticks  # the y axis says its points are means
    # lr spans two decades: without logx, the chart is drawn on a log x axis and says so;
    # unticking it (the form sends logx=0) draws it linear.
    plain = server + "-/xpm/chart.json?experiment=seeds&metric=accuracy&x=lr&average=seed"
    assert page.request.get(plain).json()["data"]["logx"] is True
    assert page.request.get(plain + "&logx=0").json()["data"]["logx"] is False
    page.goto(server + "-/xpm/chart?experiment=seeds&metric=accuracy&x=lr&average=seed")
    page.wait_for_selector('#xpm-chart[data-drawn="1"] svg')
    assert page.locator('input[type="checkbox"][name="logx"]').is_checked()
    page.locator('input[type="checkbox"][name="logx"]').uncheck()
    page.locator("#xpm-chart-form button[type=submit]").click()
    page.wait_for_selector('#xpm-chart[data-drawn="1"] svg')
    assert "logx=0" in page.url
    assert not page.locator('input[type="checkbox"][name="logx"]').is_checked()
    page.goto(server + "-/xpm/chart?experiment=seeds&metric=accuracy&x=lr&average=seed&logx=1")
    page.wait_for_selector('#xpm-chart[data-drawn="1"] svg')
    # A log y within one decade still has ticks to read values by (1, 2, 5 left one).
    page.goto(page.url + "&logy=1")
    page.wait_for_selector('#xpm-chart[data-drawn="1"] svg')
    y_ticks = page.locator('#xpm-chart svg g.axis text[text-anchor="end"]').all_text_contents()
    assert len(y_ticks) >= 3, y_ticks
    page.go_back()
    page.wait_for_selector('#xpm-chart[data-drawn="1"] svg')
    # The width follows the window.
    wide = svg.bounding_box()
    assert wide is not None and wide["width"] > 1000
    page.set_viewport_size({"width": 800, "height": 768})
    page.wait_for_function(
        "document.querySelector('#xpm-chart svg').getBoundingClientRect().width < 800"
    )
    # An averaged point opens the comparison of its seeds.
    page.locator("#xpm-chart g.series circle").first.click()
    page.wait_for_url("**/-/xpm/compare?id=*")
    assert page.locator("#xpm-compare thead th a").count() == 3


def test_chart_step_point_compares_the_jobs_that_reported_there(page: Any, tmp_path: Path) -> None:
    """Seeds 0, 1, 2 of a loss over steps 0..4, seed 2 failed after step 1: a click on the
    last point compares seeds 0 and 1 and names seed 2 (it opened all three)."""
    workdir = tmp_path / "workdir"
    _sweep(workdir, "curves")
    with _serving(workdir) as url:
        page.goto(url + "-/xpm/chart?experiment=curves&metric=loss&x=step&average=seed")
        page.wait_for_selector('#xpm-chart[data-drawn="1"] svg')
        circles = page.locator("#xpm-chart g.series circle")
        assert circles.count() == 5
        assert "(mean of 2 values)" in circles.last.locator("title").text_content()
        circles.last.click()
        page.wait_for_url("**/-/xpm/compare?id=*&metric=loss&step=4")
        assert page.locator("#xpm-compare thead th a").count() == 2
        note = page.locator("#xpm-compare-step").inner_text()
        assert "loss at step 4: 2 of 3 jobs of the line reported it; not " in note, note
        assert "seed=2 (failed, last at step 1)" in note, note
        seeds = page.locator('#xpm-compare tr[data-key="param:seed"] td').all_inner_texts()
        assert sorted(seeds) == ["0", "1"], seeds
        # The first point: all three seeds had reported.
        page.go_back()
        page.wait_for_selector('#xpm-chart[data-drawn="1"] svg')
        page.locator("#xpm-chart g.series circle").first.click()
        page.wait_for_url("**/-/xpm/compare?id=*&metric=loss&step=0")
        assert page.locator("#xpm-compare thead th a").count() == 3


def test_chart_every_series_in_the_legend(server: str, page: Any) -> None:
    """Loss by step, nothing averaged: a line per lr, seed and width, all 18 in the legend."""
    page.goto(server + "-/xpm/chart?experiment=seeds&metric=loss&x=step")
    page.wait_for_selector('#xpm-chart[data-drawn="1"] svg')
    assert page.locator("#xpm-chart g.series").count() == 18
    legend = page.locator("#xpm-chart .xpm-legend li").all_inner_texts()
    assert len(legend) == 18 and "lr=0.01 seed=0 width=8" in legend


def test_parallel_coordinates(server: str, page: Any, shots: Path) -> None:
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(server + "-/xpm/chart?experiment=seeds&metric=accuracy&view=parallel")
    page.wait_for_selector('#xpm-chart[data-drawn="1"] svg')
    names = page.locator("#xpm-chart g.paxis").evaluate_all(
        "gs => gs.map(g => g.getAttribute('data-name'))"
    )
    assert names == ["lr", "seed", "width", "accuracy"]
    assert page.locator("#xpm-chart path.job").count() == 18
    page.screenshot(path=str(shots / "datasette-parallel.png"), full_page=False)
    page.locator("#xpm-chart path.job").first.click(force=True)
    page.wait_for_url("**/-/xpm/job/*")


def test_parallel_coordinates_log_axis_and_integer_ticks(server: str, page: Any) -> None:
    """The x of the form (lr) follows "log x"; an integer parameter has integer ticks."""
    page.goto(server + "-/xpm/chart?experiment=seeds&metric=accuracy&view=parallel&x=lr&logx=1")
    page.wait_for_selector('#xpm-chart[data-drawn="1"] svg')

    def ticks(name: str) -> dict[str, float]:
        axis = page.locator(f'#xpm-chart g.paxis[data-name="{name}"] text:not([font-weight])')
        found = axis.evaluate_all("ts => ts.map(t => [t.textContent, t.getAttribute('y')])")
        return {text: float(y) for text, y in found}

    lr = ticks("lr")
    assert {"0.01", "0.1", "1"} <= set(lr), lr
    assert abs((lr["0.01"] - lr["0.1"]) - (lr["0.1"] - lr["1"])) < 1  # equally spaced: log
    assert set(ticks("seed")) == {"0", "1", "2"}
    assert all(float(t) == int(float(t)) for t in ticks("width"))


def _job_states(db: Path) -> list[str]:
    """States of the jobs in the index at ``db`` ([] while it is not there yet)."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error:
        return []
    try:
        return [r[0] for r in conn.execute("SELECT state FROM jobs")]
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def _stuck(proc: subprocess.Popen[str], workdir: Path) -> str:
    """What a run that never showed its job RUNNING was doing: its threads' stacks (sweep.py
    dumps them on SIGUSR1), its stderr, the index states and the job's events."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(1)
        proc.kill()
    _, stderr = proc.communicate()
    events = [p.read_text() for p in (workdir / "jobs").glob("*/*/events.jsonl")]
    return (
        f"the job never showed RUNNING in the index (exit {proc.returncode}, index states "
        f"{_job_states(workdir / 'xpm.db')}, job events {events});\nstderr:\n{stderr}"
    )


def test_live_pages_refresh_while_a_job_runs(page: Any, tmp_path: Path) -> None:
    """Home, runs table and job page follow a running job without reloading, then stop
    refreshing; an idle page notices the next run by its heartbeat and follows it too."""
    workdir, release = tmp_path / "workdir", tmp_path / "release"
    second: subprocess.Popen[str] | None = None
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "sweep.py"), str(workdir), "wait", str(release)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _job_states(workdir / "xpm.db") != ["RUNNING"]:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(_stuck(proc, workdir))
            time.sleep(0.1)
        with _serving(workdir) as url:
            page.goto(url + "?_refresh=500&_idle=500")
            assert page.locator("#xpm-running tbody tr").count() == 1
            assert page.evaluate("document.documentElement.dataset.xpmLive") == "polling"
            page.evaluate("window.xpmNotReloaded = true")
            runs = page.context.new_page()
            runs.set_viewport_size({"width": 360, "height": 700})  # the table scrolls sideways
            runs.goto(url + "-/xpm/experiment/live?_refresh=500")
            assert runs.locator("#xpm-runs tbody td span.xpm-state").inner_text() == "running"
            assert runs.locator('#xpm-runs th[data-key="result:waited"]').count() == 0
            runs.locator('#xpm-runs tbody input[type="checkbox"]').check()
            runs.evaluate("window.xpmNotReloaded = true")
            scroll = "document.getElementById('xpm-runs-scroll')"
            wide = runs.evaluate(f"{scroll}.scrollWidth - {scroll}.clientWidth")
            assert wide > 40, "the runs table should be wider than a 360 px window"
            runs.evaluate(f"{scroll}.scrollLeft = 40")
            done = int(runs.evaluate("document.documentElement.dataset.xpmRefreshes || '0'"))
            runs.wait_for_function(
                f"parseInt(document.documentElement.dataset.xpmRefreshes || '0') > {done}"
            )
            assert runs.evaluate(f"{scroll}.scrollLeft") == 40  # kept across refreshes
            # Nothing written while the job waits: the page asks the small heartbeat, and
            # fetches itself only every 10th time (a 15 MB chart was fetched every 3 s).
            fetched: list[str] = []
            runs.on("request", lambda r: fetched.append(r.url))
            runs.wait_for_timeout(2500)
            itself = [u for u in fetched if "/-/xpm/experiment/live" in u]
            beats = [u for u in fetched if u.endswith("/-/xpm/live.json")]
            assert len(itself) <= 1 and len(beats) >= 3, fetched
            assert int(runs.evaluate("document.documentElement.dataset.xpmSkipped || '0'")) >= 3
            job = page.context.new_page()
            job.goto(
                url
                + "-/xpm/job/"
                + runs.locator("#xpm-runs tbody tr").get_attribute("data-job")
                + "?_refresh=500"
            )
            assert "RUNNING" in job.locator("#xpm-history").inner_text()
            # Charts: nothing reported yet, so no result to offer; one reader changes a
            # choice without drawing (their form must stay as they left it).
            charts, edited = page.context.new_page(), page.context.new_page()
            for p in (charts, edited):
                p.goto(url + "-/xpm/chart?experiment=live&_refresh=500")
                assert "waited" not in p.locator('select[name="metric"]').inner_text()
            edited.select_option('select[name="view"]', "parallel")

            release.write_text("go")
            idle = "document.documentElement.dataset.xpmLive === 'idle'"
            for p in (page, runs, job, charts, edited):
                p.wait_for_function(idle, timeout=120_000)
            # The result reported at the end is offered without a reload (the form is a
            # live region), except to the reader who changed a choice.
            assert "waited" in charts.locator('select[name="metric"]').inner_text()
            assert "waited" in charts.locator("#xpm-chart-title").inner_text()
            assert edited.locator('select[name="view"]').input_value() == "parallel"
            assert "waited" not in edited.locator('select[name="metric"]').inner_text()
            assert "Nothing is running." in page.locator("#xpm-running").inner_text()
            assert "1 done" in page.locator("#xpm-experiments").inner_text()
            assert runs.locator("#xpm-runs tbody td span.xpm-state").inner_text() == "done"
            assert runs.locator('#xpm-runs tbody td[data-key="result:waited"]').inner_text() == "1"
            assert runs.locator('#xpm-runs tbody input[type="checkbox"]').is_checked()
            assert "DONE" in job.locator("#xpm-history").inner_text()
            # The whole page follows, its head too (a trial saw RUNNING above a DONE history).
            head = job.locator("h1.xpm-job-title").inner_text()
            assert "DONE" in head and "RUNNING" not in head, head
            assert "waited" in job.locator("#xpm-results").inner_text()
            # A write just after a page went idle (the run's last records) is caught by its
            # first heartbeat, 10 s later: it compares with the version of the last refresh
            # (it took a new version instead, and the page stayed stale for good).
            conn = sqlite3.connect(workdir / "xpm.db", timeout=30)
            with conn:
                conn.execute("UPDATE results SET value = 42 WHERE key = 'waited'")
            conn.close()
            runs.wait_for_function(
                "document.querySelector('#xpm-runs tbody td[data-key=\"result:waited\"]')"
                ".innerText.trim() === '42'",
                timeout=40_000,
            )
            for p in (page, runs):
                assert p.evaluate("window.xpmNotReloaded") is True  # swapped, not reloaded
                assert int(p.evaluate("document.documentElement.dataset.xpmRefreshes")) >= 1
            # Idle: the page no longer fetches itself, only the small heartbeat.
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.wait_for_timeout(2000)
            assert requests and all(u.endswith("/-/xpm/live.json") for u in requests), requests
            proc.communicate(timeout=120)
            assert proc.returncode == 0
            # A run started while the page is idle: the heartbeat sees it, the page follows.
            later = tmp_path / "release2"
            second = subprocess.Popen(
                [sys.executable, str(HERE / "sweep.py"), str(workdir), "wait", str(later), "2"],
                env=_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            page.wait_for_function(
                "document.querySelectorAll('#xpm-running tbody tr').length === 1",
                timeout=120_000,
            )
            assert page.evaluate("window.xpmNotReloaded") is True
            later.write_text("go")
            page.wait_for_function(idle, timeout=120_000)
            assert "Nothing is running." in page.locator("#xpm-running").inner_text()
            assert "live\t2\t" in page.locator("#xpm-experiments").inner_text()  # two runs
            # The runs table's task tab counts the second run's job too (it stayed at 1).
            runs.wait_for_function(
                "document.querySelector('#xpm-tasks small').innerText.trim() === '(2)'",
                timeout=60_000,
            )
            assert runs.evaluate("window.xpmNotReloaded") is True
            second.communicate(timeout=120)
            assert second.returncode == 0
    finally:
        # The job waits for this file: without it, a failure above left the job running,
        # an orphan of the killed experiment, after its directory was deleted.
        release.write_text("go")
        (tmp_path / "release2").write_text("go")
        if second is not None and second.poll() is None:
            second.kill()
            second.communicate()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if proc.stderr is not None and not proc.stderr.closed:
            proc.stderr.close()  # an early failure left the pipe open, reported later by gc


def test_jobs_table_ids_open_the_job_page(server: str, page: Any) -> None:
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(server + "xpm/jobs")
    first = page.locator("td.type-pk a").first
    assert len(first.inner_text()) == 12
    assert "/-/xpm/job/" in (first.get_attribute("href") or "")
    assert not page.locator("dl.column-descriptions").is_visible()  # folded away
    assert page.locator("details summary", has_text="Column descriptions").count() == 1
    first.click()
    page.wait_for_url("**/-/xpm/job/*")


def test_sql_box_refuses_writes(server: str, page: Any) -> None:
    sql = "DELETE FROM jobs"
    page.goto(server + "xpm?" + urllib.parse.urlencode({"sql": sql}))
    assert "Statement must be a SELECT" in page.content()
    page.goto(server + "xpm?" + urllib.parse.urlencode({"sql": "select count(*) as n from jobs"}))
    assert page.locator("td.col-n").inner_text().strip() == "28"
