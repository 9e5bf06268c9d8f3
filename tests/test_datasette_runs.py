"""Runs tables and the compare page as a new user reads them after a sweep (#16).

Datasette's test client on the index of tests/browser/sweep.py (fixtures of test_datasette).
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
from html import unescape
from typing import Any

from test_datasette import ds, get, indexed, job_id

# Fixtures of the indexed sweep, shared with test_datasette.
__all__ = ["ds", "indexed"]

EVALUATE = "/-/xpm/experiment/sweep?task=xpm_test_tasks.evaluate"
FULL = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+"


def test_time_cells_show_seconds_and_zone_in_a_tooltip(ds: Any) -> None:
    """A sweep starts within a minute: the short cell text keeps it, the tooltip tells apart."""
    html = get(ds, EVALUATE).text
    cells = re.findall(r'<td class="xpm-time" title="([^"]*)">([^<]*)</td>', html)
    assert len(cells) == 6, cells  # submitted and started of 3 jobs
    for full, short in cells:
        # This year's: to the second, without the year (jobs of one minute read in order).
        assert re.fullmatch(FULL, full) and re.fullmatch(r"\d\d-\d\d \d\d:\d\d:\d\d", short)
        assert full[5:].startswith(short)
    ids = [job_id(ds, "sweep.train", f"n_layers%3D{n}") for n in (1, 2)]
    compare = get(ds, "/-/xpm/compare?" + "&".join(f"id={i}" for i in ids)).text
    started = re.findall(r'<td class="xpm-time" title="([^"]*)">([^<]*)</td>', compare)
    assert len(started) == 2 and all(re.fullmatch(FULL, full) for full, _ in started)
    # A time of another year keeps its year (to the minute).
    from xpm.datasette._format import when_short

    now = time.time()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", when_short(now - 400 * 86400, now))


def test_a_bad_filter_lists_each_name_once_and_stays_in_the_box(ds: Any) -> None:
    """An unknown column names the table's settings once each (a tag and the parameter it
    marks are one); the rejected text stays in the filter box, escaped, to be corrected."""
    train = "/-/xpm/experiment/sweep?task=sweep.train"
    html = get(ds, train + "&where=n_layers%3D2&where=bogus%3E%3Cb%3E").text
    error = html.split('class="xpm-error"')[1].split("</")[0]
    names = error.split("result name (")[1].rstrip(")").split(", ")
    assert names and len(names) == len(set(names)), names
    assert "lr" in names and "n_layers" in names and "model.n_layers" not in names
    box = re.search(r'<input type="text" name="where"([^>]*)>', html).group(1)  # type: ignore[union-attr]
    assert 'value="bogus&gt;&lt;b&gt;"' in box, box
    assert "<b>" not in html.split('id="xpm-filters"')[1].split("</form>")[0]
    # The good filter is a chip; a page without a bad filter has an empty box.
    assert 'name="where" value="tag:n_layers=2"' in html
    box = re.search(r'<input type="text" name="where"([^>]*)>', get(ds, train).text)
    assert box is not None and "value=" not in box.group(1)
    # A quote left open is said, not a server error; the text stays, quote escaped.
    html = get(ds, train + "&where=model.activation%3D%22rel").text
    assert "filter &#39;model.activation=&#34;rel&#39;: a quote &#34; is not closed" in html, html[
        -3000:
    ]
    assert "--where" not in html  # the command line's option is not this page's word
    assert 'value="model.activation=&#34;rel"' in html


def test_a_dirty_commit_names_its_state(ds: Any) -> None:
    """Runs from one commit with different uncommitted changes read "49ae270*" alike: the
    star now carries the start of the git state's id (another change, another state)."""
    job = job_id(ds, "xpm_test_tasks.evaluate", "n_layers%3D1")
    state = get(ds, f"/xpm/jobs/{job}.json?_shape=array").json()[0]["git_state"]
    page = get(ds, EVALUATE).text
    row = page.split(f'data-job="{job}"')[1].split("</tr>")[0]
    dirty = re.search(r'<span class="xpm-dirty" title="([^"]+)">\*<small>(\w+)</small>', row)
    assert dirty and dirty.group(2) == state[:4] and state in dirty.group(1), row


def runs_of(html: str) -> list[str]:
    body = html.split('id="xpm-runs"')[1].split("</table>")[0] if 'id="xpm-runs"' in html else ""
    return re.findall(r'<tr data-job="([0-9a-f]{64})"', body)


def test_times_durations_and_commits_filter_as_the_table_shows_them(ds: Any) -> None:
    """submitted>2026-12-07, duration>0.2s and commit=ed06848 (7 characters, a star and a
    state for a dirty tree) were taken as numbers or whole hashes: "No job matches"."""
    every = runs_of(get(ds, EVALUATE).text)
    assert len(every) == 3

    def kept(where: str) -> list[str]:
        return runs_of(get(ds, f"{EVALUATE}&where={where}").text)

    today = time.strftime("%Y-%m-%d", time.localtime(time.time() - 86400))
    assert sorted(kept(f"submitted%3E{today}")) == sorted(every)
    assert kept("submitted%3C2000-01-01") == [] and kept("started%3C2000-01-01T10:00") == []
    # Quoted with a space (what the filter box asks for a value with a space), and this
    # year's time without its year, as the table shows it.
    assert sorted(kept(f"submitted%3E%27{today}%2000:00%27")) == sorted(every)
    assert kept("started%3C01-01") == []
    assert sorted(kept("duration%3E0s")) == sorted(every)
    assert kept("duration%3E2d") == [] and sorted(kept("duration%3C5m")) == sorted(every)
    job = every[0]
    sha = get(ds, f"/xpm/jobs/{job}.json?_shape=array").json()[0]["git_state"]
    commit = get(ds, f"/xpm/git_states/{sha}.json?_shape=array").json()[0]["commit_sha"]
    with_it = kept(f"commit%3D{commit[:7]}")
    assert job in with_it and kept(f"commit%3D{commit[:7]}*ab12") == with_it
    assert kept("commit%3D0000000") == []
    assert "write the start of the commit" in get(ds, f"{EVALUATE}&where=commit%3Dmaster").text
    # What cannot be read is said, with what to write.
    html = get(ds, f"{EVALUATE}&where=submitted%3Eyesterday").text
    assert "is not a time; write a date and time as 2026-12-07" in html
    assert "a number with s, m, h or d" in get(ds, f"{EVALUATE}&where=duration%3E5y").text


def test_a_runs_table_exports_every_job_as_csv(ds: Any) -> None:
    """The table's CSV link: every job it keeps (all pages), in its order, with the stored
    values (not the page's 4 digits), its filters applied; what cannot be read is refused."""
    import csv
    import html as htmllib
    import io

    train = "/-/xpm/experiment/sweep?task=sweep.train&sort=-n_layers&where=n_layers%3E1"
    page = get(ds, train + "&size=1").text  # one row per page: the export is every page
    link = htmllib.unescape(re.search(r'class="xpm-csv" href="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    assert link.startswith("/-/xpm/runs.csv?task=sweep.train&experiment=sweep")
    assert "size=" not in link and "page=" not in link
    answer = get(ds, link)
    assert answer.headers["content-type"].startswith("text/csv")
    assert "sweep-sweep.train.csv" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    shown = runs_of(get(ds, train).text)
    assert [r["id"] for r in rows] == shown and len(shown) == 2
    assert [int(r["tag:n_layers"]) for r in rows] == [3, 2]
    assert all(r["task"] == "sweep.train" and r["state"] == "DONE" for r in rows)
    assert all(float(r["duration"]) >= 0 and r["submitted"][10] == "T" for r in rows)
    for row in rows:  # a dirty tree's commit carries its state, as the table shows it
        job = get(ds, f"/xpm/jobs/{row['id']}.json?_shape=array").json()[0]
        state = get(ds, f"/xpm/git_states/{job['git_state']}.json?_shape=array").json()[0]
        assert state["dirty"] == 1 and row["commit"] == (
            f"{state['commit_sha']}*{job['git_state'][:4]}"
        ), row
    for row in rows:  # the stored value, whole
        stored = get(ds, f"/xpm/results.json?_shape=array&job_id={row['id']}").json()
        latest = {r["key"]: r["value"] for r in sorted(stored, key=lambda r: r["seq"])}
        assert {k: float(v) for k, v in row.items() if k.startswith("result:")} == {
            f"result:{k}": v for k, v in latest.items()
        }
    # A filter that cannot be read: refused, not another table.
    bad = asyncio.run(ds.client.get("/-/xpm/runs.csv?task=sweep.train&where=bogus%3D1"))
    assert bad.status_code == 400 and "no column 'bogus'" in bad.text
    assert asyncio.run(ds.client.get("/-/xpm/runs.csv?task=nope")).status_code == 404


def test_a_bare_name_that_is_a_tag_and_a_parameter_offers_the_parameters_reading(
    tmp_path: Any, monkeypatch: Any
) -> None:
    """seed tagged in two runs' jobs, left untagged in a third: the table shows a tag and a
    parameter named seed; seed=2 reads the tag (no job) and the page offers param:seed=2,
    which keeps the untagged job (a trial saw "No job matches" under a column of 2s)."""
    from xpm_chart_tasks import Fit

    from xpm import tag
    from xpm._experiment import experiment
    from xpm.datasette._app import make_datasette

    monkeypatch.setenv("XPM_GIT", "off")
    workdir = tmp_path / "wd"
    with experiment(workdir, "e", progress=False):
        Fit(lr=0.1, seed=tag(0), epochs=1).submit()
        Fit(lr=0.1, seed=tag(1), epochs=1).submit()
        Fit(lr=0.1, seed=2, epochs=1).submit()
    site = make_datasette(workdir)
    url = "/-/xpm/experiment/e?task=xpm_chart_tasks.fit"
    page = get(site, url + "&where=seed%3D2").text
    assert runs_of(page) == []
    note = page.split('class="xpm-reading"')[1].split("</p>")[0]
    assert "<code>tag:seed=2</code> reads the tag" in note and "keeps 1 job." in note, note
    other = re.search(r'href="([^"]+)"', note).group(1)  # type: ignore[union-attr]
    kept = get(site, other.replace("&amp;", "&")).text
    assert len(runs_of(kept)) == 1 and 'class="xpm-reading"' not in kept
    # A name that is a tag only, or the same count either way: nothing offered.
    assert 'class="xpm-reading"' not in get(site, url + "&where=lr%3D0.1").text
    assert 'class="xpm-reading"' not in get(site, url + "&where=seed%3D0").text


def test_an_unknown_experiment_is_named_with_the_ones_there_are(ds: Any) -> None:
    """A mistyped or not yet started experiment: a 404 naming the experiments (it said
    only "no experiment"), with the close ones first."""
    import html as htmllib

    answer = asyncio.run(ds.client.get("/-/xpm/experiment/swep"))
    assert answer.status_code == 404
    text = htmllib.unescape(answer.text)
    assert "no experiment 'swep' in the index (not run yet, or mistyped)" in text
    assert "did you mean sweep?" in text and "broken" in text


def test_a_first_click_sorts_settings_up_and_results_and_times_down(ds: Any) -> None:
    """lr, seed, the id: lowest first; accuracy and the submission time: highest and
    newest first; a second click on the sorted column reverses it."""
    import html as htmllib

    page = get(ds, EVALUATE + "&sort=tag:n_layers").text

    def link(key: str) -> str:
        found = re.search(rf'<th data-key="{re.escape(key)}"[^>]*><a href="([^"]+)"', page)
        assert found is not None, key
        return urllib.parse.unquote(htmllib.unescape(found.group(1)))

    assert "sort=-tag:n_layers" in link("tag:n_layers")  # sorted up: the other way
    assert "sort=-result:accuracy" in link("result:accuracy")
    assert "sort=-submitted" in link("submitted")
    assert "sort=id" in link("id") and "sort=-id" not in link("id")
    assert "sort=state" in link("state")


def test_an_experiment_opens_on_the_task_it_submitted_first(ds: Any) -> None:
    """sweep submits Learn, then its Evaluate, then Train: its page opens on Learn (it
    opened on the alphabetically first task, sweep.train); the tabs stay in name order."""
    page = get(ds, "/-/xpm/experiment/sweep").text
    tabs = page.split('id="xpm-tasks"')[1].split("</nav>")[0]
    current = re.search(r'class="xpm-current">([^<]+)<', tabs)
    assert current is not None and current.group(1).strip() == "xpm_test_tasks.learn", tabs
    names = re.findall(r">([\w.]+) <small>", tabs)
    assert names == sorted(names) and len(names) == 3


def test_a_table_no_job_matches_says_which_filter_left_nothing(ds: Any) -> None:
    """ "No job matches" left the reader guessing which filter was wrong: each filtered
    column says what it keeps alone and, when nothing, the values it holds."""
    train = "/-/xpm/experiment/sweep?task=sweep.train"

    def said(*where: str) -> str:
        html = get(ds, train + "".join(f"&where={urllib.parse.quote(w)}" for w in where)).text
        assert runs_of(html) == [] and "No job matches" in html
        note = html.split('id="xpm-no-match">')[1].split("</p>")[0]
        return unescape(re.sub(r"<[^>]+>", "", note))

    # A threshold past every run, beside a filter that keeps one.
    seen = said("n_layers>5", "lr=0.5")
    assert "tag:n_layers>5 keeps none: n_layers holds 1, 2, 3 here" in seen, seen
    assert "tag:lr=0.5 alone keeps 3 jobs" in seen, seen
    # A value no job has: the values there are; two values of one column are "or".
    seen = said("lr=0.7", "n_layers=1", "n_layers=2")
    assert "tag:lr=0.7 keeps none: lr holds 0.5 here" in seen, seen
    assert "tag:n_layers=1 or tag:n_layers=2 alone keeps 2 jobs" in seen, seen
    # Text values are listed; states read as the table shows them.
    seen = said("state=failed")
    assert "state=failed keeps none: state holds done here." in seen, seen
    # Each keeps jobs, never the same ones (latest loss: 1/3, 1/5, 1/7 for 1, 2, 3 layers).
    seen = said("n_layers=1", "loss<0.3")
    assert "alone keeps 1 job;" in seen and "alone keeps 2 jobs." in seen, seen
    assert "Each keeps jobs alone, but no job meets them all." in seen
    # Two conditions on one column that contradict: said so, not its values (a trial).
    seen = said("n_layers>2", "n_layers<2")
    assert (
        "tag:n_layers>2, tag:n_layers<2 keeps none: each keeps jobs alone, never together" in seen
    )
    # Times, durations and commits as the table shows them.
    seen = said("submitted<2000-01-01")
    assert re.search(r"keeps none: submitted from \d\d-\d\d \d\d:\d\d:\d\d to ", seen), seen
    assert re.search(r"keeps none: durations from [\d.]+ to [\d.]+ s here", said("duration>2d"))
    assert re.search(r"keeps none: commit holds [0-9a-f]{7} here", said("commit=0000000"))
    # A table that shows jobs says none of it.
    assert 'id="xpm-no-match"' not in get(ds, train + "&where=n_layers%3D1").text


def test_a_facet_of_many_values_says_how_many_more_and_how_to_reach_them(
    tmp_path: Any, monkeypatch: Any
) -> None:
    """A tag of 40 seeds listed 30 and "…": the rest are counted, with what to type."""
    from xpm_chart_tasks import Fit

    from xpm import tag
    from xpm._experiment import experiment
    from xpm.datasette._app import make_datasette

    monkeypatch.setenv("XPM_GIT", "off")
    workdir = tmp_path / "wd"
    with experiment(workdir, "many", "generate", progress=False):  # written, not run
        for seed in range(40):
            Fit(lr=0.1, seed=tag(seed)).submit()
    page = get(make_datasette(workdir), "/-/xpm/experiment/many").text
    facet = page.split('data-key="tag:seed"')[1].split("</div>")[0]
    assert len(re.findall(r"<a href=", facet)) == 30
    seen = unescape(re.sub(r"<[^>]+>", "", facet))
    assert "… and 10 more: type seed=… or seed>… in the filter box" in seen, seen
    # Past a few values, a number column says its range when a filter keeps none.
    page = get(make_datasette(workdir), "/-/xpm/experiment/many?where=seed%3E100").text
    note = unescape(re.sub(r"<[^>]+>", "", page.split('id="xpm-no-match">')[1].split("</p>")[0]))
    assert note == "tag:seed>100 keeps none: seed runs from 0 to 39 here.", note


def test_a_column_hidden_by_its_header_stays_hidden_and_comes_back(ds: Any) -> None:
    """A wide sweep on a laptop: a header's × hides its column; sorting, filtering and
    paging keep it hidden; the pager line lists hidden columns, each a link back."""
    train = "/-/xpm/experiment/sweep?task=sweep.train"
    page = get(ds, train).text
    hide = re.search(r'<th data-key="tag:lr"[^>]*>.*?<a class="xpm-hide" href="([^"]+)"', page)
    assert hide is not None, page
    hidden = get(ds, unescape(hide.group(1))).text
    head = hidden.split('id="xpm-runs"')[1].split("</thead>")[0]
    assert 'data-key="tag:lr"' not in head and 'data-key="tag:n_layers"' in head
    body = hidden.split('id="xpm-runs"')[1].split("<tbody>")[1].split("</tbody>")[0]
    assert 'data-key="tag:lr"' not in body and 'data-key="tag:n_layers"' in body
    note = hidden.split('id="xpm-hidden">')[1].split("</span>")[0]
    assert unescape(re.sub(r"<[^>]+>", "", note)) == "1 column hidden: lr"
    back = re.search(r'href="([^"]+)"', note).group(1)  # type: ignore[union-attr]
    shown = get(ds, unescape(back)).text.split('id="xpm-runs"')[1].split("</thead>")[0]
    assert 'data-key="tag:lr"' in shown
    # A sort link and the filter form keep it hidden (two hidden: both kept).
    two = get(ds, train + "&hide=tag:lr&hide=result:loss").text
    assert "2 columns hidden: lr, loss (show all)" in unescape(re.sub(r"<[^>]+>", "", two))
    sort = re.search(r'<th data-key="tag:n_layers"[^>]*><a href="([^"]+)"', two).group(1)  # type: ignore[union-attr]
    assert "hide=tag%3Alr&amp;hide=result%3Aloss" in sort, sort
    form = two.split('id="xpm-filters"')[1].split("</form>")[0]
    kept = re.findall(r'<input type="hidden" name="hide" value="([^"]+)">', form)
    assert kept == ["tag:lr", "result:loss"], form


def test_a_large_table_no_job_matches_says_why_on_request(ds: Any, monkeypatch: Any) -> None:
    """Past WHY_AT_ONCE jobs the note costs a few hundred ms after each write (an experiment
    of 10,000 jobs): the page links it instead of reading it every time."""
    from xpm.datasette import _views

    monkeypatch.setattr(_views, "WHY_AT_ONCE", 0)
    url = "/-/xpm/experiment/sweep?task=sweep.train&where=n_layers%3E5"
    page = get(ds, url).text
    assert runs_of(page) == [] and 'id="xpm-no-match"' not in page
    link = re.search(r'<a id="xpm-why" href="([^"]+)">which filter left nothing\?</a>', page)
    assert link is not None, page
    why = get(ds, unescape(link.group(1))).text
    note = unescape(re.sub(r"<[^>]+>", "", why.split('id="xpm-no-match">')[1].split("</p>")[0]))
    assert note.startswith("tag:n_layers>5 keeps none: n_layers holds 1, 2, 3 here"), note
    assert 'id="xpm-why"' not in why


def test_the_jobs_table_reads_a_typed_state_as_the_views_show_it(
    tmp_path: Any, monkeypatch: Any
) -> None:
    """`/xpm/jobs?state=WAITING` (the name every view shows) found no job: the index
    stores UNSCHEDULED.  Typed by hand in any case, it reads the stored name."""
    from xpm_chart_tasks import Fit

    from xpm._experiment import experiment
    from xpm.datasette._app import make_datasette

    monkeypatch.setenv("XPM_GIT", "off")
    workdir = tmp_path / "wd"
    with experiment(workdir, "gen", "generate", progress=False):  # written, not run
        for seed in range(3):
            Fit(lr=0.1, seed=seed).submit()
    site = make_datasette(workdir)
    for typed in ("WAITING", "waiting", "unscheduled", "UNSCHEDULED"):
        rows = get(site, f"/xpm/jobs.json?state={typed}&_shape=array").json()
        assert len(rows) == 3 and {r["state"] for r in rows} == {"UNSCHEDULED"}, typed
    assert get(site, "/xpm/jobs.json?state=done&_shape=array").json() == []
    assert len(get(site, "/xpm/jobs.json?state__not=waiting&_shape=array").json()) == 0
    # Other values and other columns are left as typed.
    assert get(site, "/xpm/jobs.json?task_id=waiting&_shape=array").json() == []
    assert len(get(site, "/xpm/jobs?state=WAITING").text) > 0
