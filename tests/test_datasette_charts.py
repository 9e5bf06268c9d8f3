"""Charts, compare and job pages of the web view as a new user read them (issue 16 trial):
Meta parameters never split a chart, jobs differing by their upstream job stay apart,
and what a page says is what it did (the page's text, through Datasette's test client).
"""

from __future__ import annotations

import html
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from _dsclient import get_ok as get
from _dsclient import text_of

from xpm import tag
from xpm._experiment import experiment
from xpm.datasette._app import make_datasette

FIT = "xpm_chart_tasks.fit"
SCORE = "xpm_chart_tasks.score"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``devices``: 3 seeds at lr=0.02 on cuda:0 and 3 at lr=0.2 on cuda:1 (Meta);
    ``upstream``: two Score jobs, each of a Fit job differing only by its epochs."""
    from xpm_chart_tasks import Fit, Score

    workdir = tmp_path_factory.mktemp("charts") / "wd"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XPM_GIT", "off")
        with experiment(workdir, "devices", progress=False):
            for lr, device in ((0.02, "cuda:0"), (0.2, "cuda:1")):
                for seed in (0, 1, 2):
                    Fit(lr=lr, seed=tag(seed), device=device, sleep=0.01).submit()
        with experiment(workdir, "upstream", progress=False):
            for epochs in (1, 2):
                Score(model=Fit(lr=0.1, seed=0, epochs=epochs).submit()).submit()
    return workdir


@pytest.fixture(scope="module")
def ds(workdir: Path) -> Any:
    return make_datasette(workdir)


def options(page: str, name: str) -> list[str]:
    """The values a select of the chart form offers."""
    select = page.split(f'name="{name}"')[1].split("</select>")[0]
    return [html.unescape(v) for v in re.findall(r'<option(?: value="([^"]*)")?', select) if v]


def ids_of(workdir: Path, task: str) -> list[str]:
    conn = sqlite3.connect(workdir / "xpm.db")
    try:
        return [r[0] for r in conn.execute("SELECT id FROM jobs WHERE task_id = ?", (task,))]
    finally:
        conn.close()


# --- 1. Meta parameters never define lines, legends, axes or choices ----------------------------
def test_meta_parameters_never_split_a_chart(ds: Any) -> None:
    url = "/-/xpm/chart?experiment=devices&task=" + FIT + "&metric=accuracy&x=lr&average=seed"
    page = get(ds, url).text
    seen = text_of(page)
    assert "device" not in seen.split("Draw")[1], seen
    data = get(ds, url.replace("/chart?", "/chart.json?")).json()["data"]
    assert data["group"] == [] and len(data["series"]) == 1
    [line] = data["series"]
    assert [p[0] for p in line["points"]] == [0.02, 0.2]
    assert all(len(p[2]) == 3 for p in line["points"])  # the three seeds of each lr
    meta = {"param:device", "param:sleep", "param:model_path"}
    assert not meta & set(options(page, "x")) and not meta & set(options(page, "average"))
    assert "param:lr" in options(page, "x") and "tag:seed" in options(page, "average")
    # Fit's output path is inside its own directory: no upstream job to offer.
    assert not [o for o in options(page, "x") if o.startswith("upstream:")]


def test_a_tag_and_its_parameter_are_one_setting(ds: Any) -> None:
    """x or average chosen as the parameter (param:seed) must not split lines by its own
    tag (tag:seed): both are offered, both are the same setting (#16 re-check)."""
    base = f"/-/xpm/chart.json?experiment=devices&task={FIT}&metric=accuracy"
    by_param = get(ds, base + "&x=param:seed").json()["data"]
    assert by_param["group"] == ["lr"] and len(by_param["series"]) == 2
    averaged = get(ds, base + "&x=lr&average=param:seed").json()["data"]
    assert averaged["group"] == [] and len(averaged["series"]) == 1
    assert all(len(p[2]) == 3 for p in averaged["series"][0]["points"])


def test_runs_table_shows_what_upstream_jobs_differ_by(ds: Any) -> None:
    """Score jobs of two Fit jobs differing by epochs look identical by their own
    parameters: the runs table shows the Fit jobs' epochs (#16 re-check)."""
    page = get(ds, f"/-/xpm/experiment/upstream?task={SCORE}").text
    head = page.split('id="xpm-runs"')[1].split("</thead>")[0]
    assert "upstream jobs" in head and 'data-key="upstream:fit.epochs"' in head
    cells = re.findall(r'<td data-key="upstream:fit.epochs"[^>]*>([^<]*)</td>', page)
    assert sorted(cells) == ["1", "2"]
    assert "upstream:fit.lr" not in head  # the same in both: tells nothing apart


def test_jobs_two_levels_downstream_differ_by_their_first_job(tmp_path: Path) -> None:
    """Score of Refit of Fit: the Score jobs differ by the Fit jobs' seed, two levels up
    (one level only said "parameters that differ: none")."""
    from xpm_chart_tasks import Fit, Refit, Score

    workdir = tmp_path / "wd"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XPM_GIT", "off")
        with experiment(workdir, "chain", progress=False):
            for seed in (0, 1):
                Score(model=Refit(model=Fit(lr=0.1, seed=seed).submit()).submit()).submit()
    ds = make_datasette(workdir)
    a, b = ids_of(workdir, SCORE)
    compared = text_of(get(ds, f"/-/xpm/compare?id={a}&id={b}").text)
    assert "fit.seed" in compared.split("differ")[1].split("equal")[0], compared
    url = f"/-/xpm/chart.json?experiment=chain&task={SCORE}&metric=accuracy&x=upstream:fit.seed"
    [line] = get(ds, url).json()["data"]["series"]
    assert [p[0] for p in line["points"]] == [0, 1]


def test_meta_parameters_are_no_parallel_axes(ds: Any) -> None:
    url = f"/-/xpm/chart.json?experiment=devices&task={FIT}&metric=accuracy&view=parallel"
    data = get(ds, url).json()["data"]
    assert data["axes"] == ["seed", "lr", "accuracy"]


# --- 2. jobs that differ only by their upstream job --------------------------------------------
def test_jobs_differing_by_their_upstream_job_are_apart(ds: Any, workdir: Path) -> None:
    base = f"/-/xpm/chart?experiment=upstream&task={SCORE}&metric=accuracy"
    page = get(ds, base).text
    assert "upstream:fit.epochs" in options(page, "x")
    data = get(ds, base.replace("/chart?", "/chart.json?") + "&x=upstream:fit.epochs").json()
    assert data["x"] == "upstream:fit.epochs"
    [line] = data["data"]["series"]
    assert [(p[0], round(p[1], 3)) for p in line["points"]] == [(1, 0.7), (2, 0.8)]
    assert all(isinstance(p[2], str) for p in line["points"])  # one job per point

    a, b = ids_of(workdir, SCORE)
    page = get(ds, f"/-/xpm/compare?id={a[:12]}&id={b[:12]}").text
    differ = page[page.index('id="xpm-compare-params"') :].split("</tbody>")[0]
    assert 'data-key="upstream:fit.epochs"' in differ and ">none<" not in differ
    assert "fit.epochs" in text_of(differ) and "upstream" in text_of(differ)


def test_a_chart_never_averages_silently(ds: Any, workdir: Path, tmp_path: Path) -> None:
    """Jobs nothing shown tells apart (here: their seed erased from a copy of the index)
    make one point: the page says it is their mean, of how many, and why."""
    copy = tmp_path / "wd"
    shutil.copytree(workdir, copy, ignore=shutil.ignore_patterns("jobs"))
    conn = sqlite3.connect(copy / "xpm.db")
    with conn:
        conn.execute("DELETE FROM tags")
        conn.execute("DELETE FROM params WHERE path = 'seed'")
    conn.close()
    url = f"/-/xpm/chart?experiment=devices&task={FIT}&metric=accuracy&x=lr"
    other = make_datasette(copy)
    data = get(other, url.replace("/chart?", "/chart.json?")).json()["data"]
    assert data["merged"] == 3 and len(data["series"]) == 1
    seen = text_of(get(other, url).text)
    assert "each point is the mean of 3 jobs" in seen, seen
    assert "nothing this chart shows tells them apart" in seen

    seen = text_of(get(ds, url + "&average=seed").text)
    assert "each point is the mean of 3 jobs (over seed)" in seen, seen
    data = get(ds, url.replace("/chart?", "/chart.json?")).json()["data"]
    assert data["merged"] == 1 and len(data["series"]) == 3  # a line per seed


def one_failed(workdir: Path, tmp_path: Path, reported: bool) -> tuple[Any, Any]:
    """A copy of the index where the first Fit job FAILED (with its reports when
    ``reported``, none otherwise), served; and that job's seed."""
    copy = tmp_path / "wd"
    shutil.copytree(workdir, copy, ignore=shutil.ignore_patterns("jobs"))
    conn = sqlite3.connect(copy / "xpm.db")
    with conn:
        [job] = conn.execute(
            "SELECT id FROM jobs WHERE task_id = ? ORDER BY id LIMIT 1", (FIT,)
        ).fetchone()
        if not reported:
            conn.execute("DELETE FROM results WHERE job_id = ?", (job,))
        conn.execute("UPDATE jobs SET state = 'FAILED' WHERE id = ?", (job,))
        [seed] = conn.execute(
            "SELECT value FROM tags WHERE job_id = ? AND key = 'seed'", (job,)
        ).fetchone()
    conn.close()
    return make_datasette(copy), seed


def test_a_chart_says_how_many_jobs_have_no_value(workdir: Path, tmp_path: Path) -> None:
    """A failed or running job has no accuracy: the count says so rather than counting it
    among the jobs drawn."""
    other, seed = one_failed(workdir, tmp_path, reported=False)
    for view in ("", "&view=parallel"):
        url = f"/-/xpm/chart?experiment=devices&task={FIT}&metric=accuracy&x=lr{view}"
        data = get(other, url.replace("/chart?", "/chart.json?")).json()["data"]
        assert data["without"] == 1 and data["jobs"] == 6
        # Which jobs, by state and by the tags they share that the drawn ones lack.
        # (one job: every value telling it apart, the tag first, then the parameter lr)
        said = f"from 6 jobs (1 without accuracy: 1 failed, all seed={seed} lr=0."
        assert said in text_of(get(other, url).text)
    seen = text_of(
        get(
            make_datasette(workdir),
            f"/-/xpm/chart?experiment=devices&task={FIT}&metric=accuracy&x=lr",
        ).text
    )
    assert "from 6 jobs." in seen


def test_a_chart_says_which_values_come_from_jobs_that_did_not_finish(
    workdir: Path, tmp_path: Path
) -> None:
    """A job that failed after reporting: its latest value is drawn (and averaged) with
    the finished jobs' last ones; the count says how many and which (a trial saw a failed
    seed's loss at step 2 averaged with the others' at step 4, unsaid)."""
    other, seed = one_failed(workdir, tmp_path, reported=True)
    for view in ("&average=seed", "&view=parallel"):
        url = f"/-/xpm/chart?experiment=devices&task={FIT}&metric=accuracy&x=lr{view}"
        data = get(other, url.replace("/chart?", "/chart.json?")).json()["data"]
        assert data["unfinished"] == 1 and data["without"] == 0, data
        said = text_of(get(other, url).text)
        assert f"1 of the jobs drawn did not finish (1 failed, all seed={seed} lr=0." in said
        assert "is the latest they reported, maybe from an earlier step" in said
    # Every job finished: nothing said.
    done = get(
        make_datasette(workdir), f"/-/xpm/chart?experiment=devices&task={FIT}&metric=accuracy&x=lr"
    )
    assert "did not finish" not in text_of(done.text)


def test_a_curve_over_seeds_says_where_a_job_stopped_reporting(
    workdir: Path, tmp_path: Path
) -> None:
    """A seed that failed after its first step, and one that never reported: the note says
    points average "up to 3" values, the count names the job without any (a trial found
    "mean of 3 jobs" everywhere and no job without a value)."""
    copy = tmp_path / "wd"
    shutil.copytree(workdir, copy, ignore=shutil.ignore_patterns("jobs"))
    conn = sqlite3.connect(copy / "xpm.db")
    with conn:
        first, second = (
            r[0]
            for r in conn.execute(
                "SELECT j.id FROM jobs j JOIN tags t ON t.job_id = j.id AND t.key = 'seed' "
                "WHERE j.task_id = ? AND j.id IN (SELECT job_id FROM params WHERE path = 'lr' "
                "AND value = 0.02) ORDER BY t.value LIMIT 2",
                (FIT,),
            )
        )
        conn.execute("DELETE FROM results WHERE job_id = ? AND step > 0", (first,))
        conn.execute("DELETE FROM results WHERE job_id = ?", (second,))
    conn.close()
    other = make_datasette(copy)
    url = f"/-/xpm/chart?experiment=devices&task={FIT}&metric=loss&x=step&average=seed"
    data = get(other, url.replace("/chart?", "/chart.json?")).json()["data"]
    assert (data["merged"], data["merged_least"], data["without"]) == (3, 1, 1)
    line = next(s for s in data["series"] if [p[2] for p in s["points"]] == [2, 1, 1])
    assert len(line["band"]) == 1  # only step 0 averages more than one value
    seen = text_of(get(other, url).text)
    assert "each point is the mean of up to 3 jobs" in seen, seen
    assert "(1 without loss" in seen
    # Named by state and settings, as the latest-value charts name them (it read "failed,
    # running or not reporting it" for jobs waiting again: a re-check).
    assert "failed, running or not reporting it" not in seen, seen


# --- 3. the job page -----------------------------------------------------------------------------
def test_job_page_results_are_short_and_its_chart_is_its_own(ds: Any, workdir: Path) -> None:
    job = ids_of(workdir, FIT)[0]
    page = get(ds, f"/-/xpm/job/{job}").text
    results = page[page.index('id="xpm-results"') :].split("</table>")[0]
    values = re.findall(r'class="xpm-value[^"]*" title="([^"]+)">([^<]+)<', results)
    assert values and all(len(short.replace(".", "")) <= 6 for _full, short in values), values
    assert any(len(full) > 8 for full, _short in values)  # the whole value in the tooltip
    links = re.findall(r'href="([^"]*/-/xpm/chart\?[^"]*)"', page)
    assert links, page
    link = html.unescape(links[0])
    assert f"task={FIT}" in link and "metric=loss" in link and "x=step" in link
    assert "curves" in text_of(page)
    # And the job's own curves alone (the experiment's chart did not single it out).
    own = re.findall(r'class="xpm-own-curves" href="([^"]+)"', page)
    # It opens at the curves, and the page says what a compare of one job shows.
    assert own == [f"/-/xpm/compare?id={job}#xpm-curve-1"], own
    compared = get(ds, own[0].split("#")[0]).text
    assert 'id="xpm-curve-1"' in compared
    seen = text_of(compared)
    assert job[:8] in seen and "One job: its latest results, its parameters and its curves" in seen
    assert "Tick two jobs" not in seen and "parameters that differ" not in seen
    assert "parameters equal in all" not in seen


# --- 4. wording --------------------------------------------------------------------------------------
def test_unknown_experiment_is_named(ds: Any) -> None:
    seen = text_of(get(ds, "/-/xpm/chart?experiment=nope").text)
    assert "no experiment named nope" in seen and "devices" in seen and "upstream" in seen
    assert "no numeric result" not in seen
    assert "Click a point" not in seen  # nothing drawn: nothing to click (a trial)


def test_parallel_coordinates_offer_no_averaging(ds: Any) -> None:
    """Parallel coordinates draw a line per job: the form no longer offers "average over"."""
    lines = get(ds, f"/-/xpm/chart?experiment=devices&task={FIT}&metric=accuracy&view=parallel")
    assert 'name="average"' not in lines.text and "Click a line to open its job." in lines.text
    assert "averaged point" not in lines.text  # no point is averaged in this view
    chart = get(ds, f"/-/xpm/chart?experiment=devices&task={FIT}&metric=accuracy&x=lr")
    assert 'name="average"' in chart.text


def test_singular_wording(ds: Any, workdir: Path) -> None:
    job = ids_of(workdir, SCORE)[0]
    seen = text_of(get(ds, f"/-/xpm/compare?id={job[:12]}").text)
    assert "Compare 1 job " in seen and "1 jobs" not in seen
    seen = text_of(get(ds, f"/-/xpm/job/{job}").text)
    assert "1 reported value:" in seen


def test_the_chart_note_is_refreshed_live(ds: Any) -> None:
    """The note is always in the page (hidden when empty) and among the live regions, so a
    refresh shows it when jobs end and points start to merge."""
    url = f"/-/xpm/chart?experiment=devices&task={FIT}&metric=accuracy&view=parallel"
    page = get(ds, url).text
    assert '<p class="xpm-chart-note" id="xpm-chart-note" hidden></p>' in page
    regions = re.search(r'data-regions="([^"]*)"', page)
    assert regions and "xpm-chart-note" in regions.group(1).split()


def test_identical_upstream_columns_are_named_by_the_shortest_name() -> None:
    """An upstream Learn job's tag n_layers and the parameter model.n_layers it marks hold
    the same values: the chart names the setting by the tag (it kept the parameter path,
    the first name in alphabetical order)."""
    from xpm.datasette._charts import varying

    ids = ["a", "b", "c"]
    layers = {"a": 1, "b": 2, "c": 3}
    values = {
        "upstream:learn.model.n_layers": dict(layers),
        "upstream:learn.n_layers": dict(layers),
        "param:batch": {"a": 32, "b": 32, "c": 32},
    }
    assert varying(values, ids, sorted(values)) == ["upstream:learn.n_layers"]


def test_an_x_spanning_two_decades_is_drawn_on_a_log_axis_unless_asked(ds: Any) -> None:
    from xpm.datasette._charts import spans_decades

    def data(xs: list[Any], x: str = "lr") -> dict[str, Any]:
        return {"x": x, "series": [{"points": [[v, 1.0, "j"] for v in xs]}]}

    assert spans_decades(data([0.001, 0.01, 0.1]))
    assert not spans_decades(data([0.02, 0.2]))  # one decade
    assert not spans_decades(data([0.0, 0.01, 1.0]))  # 0 has no place on a log axis
    assert not spans_decades(data(["a", 1, 100]))
    assert not spans_decades(data([1, 100], x="step"))  # steps stay linear
    # The devices sweep: lr 0.02 and 0.2, drawn linear without asking.
    url = f"/-/xpm/chart.json?experiment=devices&task={FIT}&metric=accuracy&x=lr"
    assert get(ds, url).json()["data"]["logx"] is False
    assert get(ds, url + "&logx=0&logx=1").json()["data"]["logx"] is True  # box ticked


def test_line_names_say_a_missing_value_and_tell_a_tag_from_its_namesake() -> None:
    """A tag and a parameter of one name that differ somewhere both name lines: the
    parameter is named as such, and a job without a value reads "—" (it read "aug=")."""
    from xpm.datasette._charts import series

    ids = ["a", "b", "c", "d"]
    values = {
        "tag:aug": {"a": 2, "b": 2},
        "param:aug": {"a": 2, "b": 2, "c": 2},
        "param:lr": {"a": 0.1, "b": 0.2, "c": 0.1, "d": 0.2},
        "result:acc": {"a": 0.5, "b": 0.6, "c": 0.7, "d": 0.8},
    }
    names = sorted(s["name"] for s in series(None, values, ids, "acc", "param:lr")["series"])
    assert names == ["aug=2 param:aug=2", "aug=— param:aug=2", "aug=— param:aug=—"]


def test_a_setting_with_one_value_is_offered_last_as_x_with_its_value(ds: Any) -> None:
    """epochs=1 in every job of the sweep drew every point at one x: it is offered after the
    settings that vary, says its value, and is never the default x."""
    page = get(ds, f"/-/xpm/chart?experiment=devices&task={FIT}&metric=accuracy").text
    offered = options(page, "x")
    assert offered[-1] == "param:epochs" and "param:lr" in offered[:-1], offered
    select = page.split('name="x"')[1].split("</select>")[0]
    assert "param:epochs (one value: 1)</option>" in select, select
    assert "param:lr (one value" not in select
    chosen = re.search(r'<option value="([^"]+)" selected', select)
    assert chosen is not None and chosen.group(1) != "param:epochs"
