"""Runs tables in a real headless Chromium at 1366x768 (#16): a tag and the parameter it
marks are one visible column, and the upstream jobs' values sort and filter.

The served experiment is tests/browser/sweep.py's ``sweep``: Evaluate jobs of Learn jobs
of ``Model(n_layers=tag(n))`` for n = 1, 2, 3 (fixtures from test_serve_browser).
"""

from __future__ import annotations

from typing import Any

import pytest
from test_serve_browser import browser, page, server

pytestmark = pytest.mark.browser
# Fixtures of the served experiment and its guarded page, shared with test_serve_browser.
__all__ = ["browser", "page", "server"]

EVALUATE = "-/xpm/experiment/sweep?task=xpm_test_tasks.evaluate"


def _column(page: Any, key: str) -> list[str]:
    return [
        t.strip() for t in page.locator(f'#xpm-runs tbody td[data-key="{key}"]').all_inner_texts()
    ]


def _headers(page: Any) -> list[str]:
    """The column headers a reader sees (their text), in order."""
    texts = page.locator("#xpm-runs thead tr:not(.xpm-groups) th").all_inner_texts()
    return [t.strip().removesuffix("×").strip() for t in texts]  # less the hide link


def test_a_tag_and_its_parameter_are_one_visible_column(server: str, page: Any) -> None:
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(server + EVALUATE)
    seen = _headers(page)
    assert seen.count("n_layers") == 1 and "model.model.n_layers" not in seen, seen
    assert page.locator('#xpm-runs th[data-key="param:model.model.n_layers"]').count() == 0
    header = page.locator('#xpm-runs th[data-key="tag:n_layers"]')
    assert "tag of model.model.n_layers" in (header.get_attribute("title") or "")
    box = header.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 1366 and box["y"] + box["height"] <= 768
    # Sorted by the parameter's own name (an old link): the tag's column says so.
    page.goto(server + EVALUATE + "&sort=-param:model.model.n_layers")
    assert _column(page, "tag:n_layers") == ["3", "2", "1"]
    assert header.locator("a:not(.xpm-hide)").inner_text().strip() == "n_layers ▼"
    # Filtered by it, typed in the box.
    page.locator('#xpm-filters input[type="text"]').fill("model.model.n_layers < 3")
    page.locator("#xpm-filters button").click()
    page.wait_for_url("**where=*")
    assert _column(page, "tag:n_layers") == ["2", "1"]


def test_upstream_values_sort_and_filter(server: str, page: Any) -> None:
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(server + EVALUATE + "&sort=upstream:learn.model.n_layers")
    key = "upstream:learn.model.n_layers"
    assert _column(page, key) == ["1", "2", "3"]
    header = page.locator(f'#xpm-runs th[data-key="{key}"] a:not(.xpm-hide)')
    assert header.inner_text().strip() == "learn.model.n_layers ▲"
    header.click()  # again: the other way
    page.wait_for_url("**sort=-upstream*")
    assert _column(page, key) == ["3", "2", "1"]
    page.locator('#xpm-filters input[type="text"]').fill("learn.model.n_layers >= 2")
    page.locator("#xpm-filters button").click()
    page.wait_for_url("**where=*")
    assert _column(page, key) == ["3", "2"]
    assert "Jobs 1–2 of 2" in page.locator("#xpm-pager").inner_text()
    assert "upstream:learn.model.n_layers>=2" in page.locator("#xpm-filters").inner_text()


def test_ticks_are_kept_across_pages_of_a_table(server: str, page: Any) -> None:
    """Jobs ticked on page 1 are still ticked, and compared, after going to page 2."""
    page.goto(server + EVALUATE + "&size=2&sort=tag:n_layers")
    button = page.locator("#xpm-runs-form button[type=submit]")
    assert button.is_disabled() and button.inner_text() == "Compare ticked jobs"
    first = page.locator("#xpm-runs tbody tr").first.get_attribute("data-job")
    page.locator("#xpm-runs tbody input[type=checkbox]").first.check()
    assert not button.is_disabled() and button.inner_text() == "Compare 1 ticked job"
    page.locator("#xpm-pager a[rel=next]").click()
    page.wait_for_url("**page=2*")
    assert _column(page, "tag:n_layers") == ["3"]
    assert button.inner_text() == "Compare 1 ticked job"
    second = page.locator("#xpm-runs tbody tr").first.get_attribute("data-job")
    page.locator("#xpm-runs tbody input[type=checkbox]").first.check()
    assert button.inner_text() == "Compare 2 ticked jobs"
    button.click()
    page.wait_for_url("**/-/xpm/compare?*")
    assert f"id={first}" in page.url and f"id={second}" in page.url, page.url
    assert page.locator("#xpm-compare-params").count() == 1
    # Back to page 2: a box the browser puts back ticked agrees with the button (forgotten).
    # Headless Chromium here restores neither its page cache nor the form on Back, so the
    # test does what a desktop browser does (a trial saw it): the box ticked again without
    # a change event, then the page shown again.
    page.go_back()
    page.wait_for_url("**page=2*")
    page.evaluate(
        "document.querySelector('#xpm-runs tbody input[type=checkbox]').checked = true;"
        "window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}));"
    )
    checked = page.locator("#xpm-runs tbody input:checked").count()
    assert (checked, button.is_disabled()) == (0, True), (checked, button.inner_text())
    # Compared: the ticks are forgotten; back on page 1 nothing is ticked.
    page.goto(server + EVALUATE + "&size=2&sort=tag:n_layers")
    assert button.is_disabled() and button.inner_text() == "Compare ticked jobs"
    assert page.locator("#xpm-runs tbody input:checked").count() == 0
    # Unticking forgets a job too.
    box = page.locator("#xpm-runs tbody input[type=checkbox]").first
    box.check()
    box.uncheck()
    page.reload()
    assert button.is_disabled() and page.locator("#xpm-runs tbody input:checked").count() == 0


def test_ticks_count_without_storage(server: str, page: Any) -> None:
    """Where sessionStorage refuses (a private window's quota), the ticks of the page still
    count: the button is not left disabled with jobs ticked."""
    page.add_init_script("Storage.prototype.setItem = function () { throw new Error('quota'); };")
    page.goto(server + EVALUATE)
    button = page.locator("#xpm-runs-form button[type=submit]")
    assert button.is_disabled()
    page.locator("#xpm-runs tbody input[type=checkbox]").nth(0).check()
    page.locator("#xpm-runs tbody input[type=checkbox]").nth(1).check()
    assert not button.is_disabled() and button.inner_text() == "Compare 2 ticked jobs"
    button.click()
    page.wait_for_url("**/-/xpm/compare?*")
    assert page.url.count("id=") == 2, page.url


def test_a_column_hidden_from_its_header_leaves_room_and_comes_back(server: str, page: Any) -> None:
    """At 1366x768, the × of a header hides that column (the table narrows), and the link
    above the table shows it again."""
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(server + EVALUATE)
    before = page.locator("#xpm-runs").bounding_box()
    assert "accuracy" in _headers(page)
    page.locator('#xpm-runs th[data-key="result:accuracy"] a.xpm-hide').click()
    page.wait_for_url("**hide=result*")
    assert "accuracy" not in _headers(page)
    after = page.locator("#xpm-runs").bounding_box()
    assert before is not None and after is not None and after["width"] < before["width"]
    assert page.locator("#xpm-hidden").inner_text().strip() == "1 column hidden: accuracy"
    page.locator("#xpm-hidden a").click()
    page.wait_for_url(lambda url: "hide=" not in url)
    assert "accuracy" in _headers(page)
