"""Runs tables and the compare page as a new user reads them after a sweep (#16).

Datasette's test client on the index of tests/browser/sweep.py (fixtures of test_datasette).
"""

from __future__ import annotations

import re
import time
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
