"""Charts in a real headless Chromium (#16): what the axes and the footer of parallel
coordinates say.  The served experiment ``seeds`` (tests/browser/sweep.py): lr 0.01, 0.1,
1, width 8 and 16, seeds 0, 1, 2 (fixtures from test_serve_browser).
"""

from __future__ import annotations

from typing import Any

import pytest
from test_serve_browser import browser, page, server

pytestmark = pytest.mark.browser
# Fixtures of the served experiments and its guarded page, shared with test_serve_browser.
__all__ = ["browser", "page", "server"]

PARALLEL = "-/xpm/chart?experiment=seeds&metric=accuracy&view=parallel"


def _ticks(page: Any, name: str) -> list[str]:
    axis = page.locator(f'#xpm-chart g.paxis[data-name="{name}"] text:not([font-weight])')
    return [t.strip() for t in axis.all_text_contents()]


def test_parallel_integer_axes_tick_only_their_values(server: str, page: Any) -> None:
    """width is 8 or 16: its axis ticks 8 and 16, not 10, 12, 14 (no job has them)."""
    page.goto(server + PARALLEL)
    page.wait_for_selector('#xpm-chart[data-drawn="1"] svg')
    assert _ticks(page, "width") == ["8", "16"]
    assert _ticks(page, "seed") == ["0", "1", "2"]
    # The footer says what a click on a line does; no "averaged point" in this view.
    count = page.locator("#xpm-chart-count").inner_text()
    assert "Click a line to open its job." in count and "averaged" not in count, count
    # Lines: x = width, the same ticks; the footer speaks of points.
    page.goto(server + "-/xpm/chart?experiment=seeds&metric=accuracy&x=width&average=seed")
    page.wait_for_selector('#xpm-chart[data-drawn="1"] svg')
    texts = page.locator("#xpm-chart g.axis text").all_text_contents()
    assert "8" in texts and "16" in texts and "12" not in texts, texts
    assert "an averaged point: compare its jobs" in page.locator("#xpm-chart-count").inner_text()


def test_parallel_coordinates_say_what_their_colours_mean(server: str, page: Any) -> None:
    """A colour scale above the axes: the result's lowest and highest values at the ends of
    the gradient from the lowest line's colour to the highest's, clear of the axes' names."""
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(server + PARALLEL)
    page.wait_for_selector('#xpm-chart[data-drawn="1"] svg')
    found = page.evaluate(
        """() => {
          const data = JSON.parse(document.getElementById('xpm-chart-data').textContent);
          const ys = data.lines.map(l => l.values[l.values.length - 1]);
          const g = document.querySelector('#xpm-chart g.colour-scale');
          const stops = [...document.querySelectorAll('#xpm-chart linearGradient stop')];
          const strokes = Object.fromEntries([...document.querySelectorAll('#xpm-chart path.job')]
            .map(p => [p.getAttribute('data-job'), p.getAttribute('stroke')]));
          const low = data.lines[ys.indexOf(Math.min(...ys))].job;
          const high = data.lines[ys.indexOf(Math.max(...ys))].job;
          const names = [...document.querySelectorAll('#xpm-chart g.paxis text[font-weight]')];
          return {
            low: Math.min(...ys), high: Math.max(...ys),
            shownLow: Number(g.getAttribute('data-low')), shownHigh: Number(g.getAttribute('data-high')),
            texts: [...g.querySelectorAll('text')].map(t => t.textContent),
            first: stops[0].getAttribute('stop-color'), last: stops[stops.length - 1].getAttribute('stop-color'),
            lowStroke: strokes[low], highStroke: strokes[high],
            bottom: g.getBoundingClientRect().bottom,
            namesTop: Math.min(...names.map(n => n.getBoundingClientRect().top)),
          };
        }"""
    )
    assert (found["shownLow"], found["shownHigh"]) == (found["low"], found["high"])
    assert found["texts"][0].startswith("accuracy ") and len(found["texts"]) == 2, found
    # 4 significant digits, as the tables show results.
    shown = [found["texts"][0].split()[-1], found["texts"][1]]
    assert shown == [f"{found['low']:.4g}", f"{found['high']:.4g}"], found
    assert (found["lowStroke"], found["highStroke"]) == (found["first"], found["last"]), found
    assert found["bottom"] <= found["namesTop"], found  # above the axes' names
    # No scale when the colours tell nothing: one value for every line, or words.
    for last in ("0.5", "'high'"):
        shown = page.evaluate(
            """(last) => {
              const box = document.getElementById('xpm-chart');
              const data = JSON.parse(document.getElementById('xpm-chart-data').textContent);
              data.lines.forEach(l => { l.values[l.values.length - 1] = eval(last); });
              window.xpmChart.draw(box, data);
              return [box.querySelectorAll('path.job').length,
                      box.querySelectorAll('g.colour-scale').length];
            }""",
            last,
        )
        assert shown == [18, 0], (last, shown)


def test_a_chart_of_many_curves_draws(server: str, page: Any) -> None:
    """130,000 points (1,300 curves of 100 steps): drawn, as lines without a circle per
    point (Math.min.apply overflowed the stack past about 124,000 values: a blank chart)."""
    page.goto(server + "-/xpm/chart?experiment=seeds&metric=loss&x=step")
    page.wait_for_selector('#xpm-chart[data-drawn="1"] svg')
    assert page.locator("#xpm-chart circle").count() > 0  # a small chart marks its points
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    drawn = page.evaluate(
        """() => {
          const box = document.getElementById('xpm-chart');
          const data = JSON.parse(document.getElementById('xpm-chart-data').textContent);
          data.series = [];
          for (let k = 0; k < 1300; k++) {
            const points = [];
            for (let step = 0; step < 100; step++) { points.push([step, 1 / (1 + step + k), 1]); }
            data.series.push({name: 'seed=' + k, points: points, band: [], jobs: ['a' + k]});
          }
          const svg = window.xpmChart.draw(box, data);
          return [svg !== null, box.querySelectorAll('g.series').length,
                  box.querySelectorAll('path.line').length, box.querySelectorAll('circle').length,
                  box.querySelector('path.line title').textContent,
                  box.querySelectorAll('details.xpm-legend-fold li').length,
                  box.querySelector('details.xpm-legend-fold').open];
        }"""
    )
    # The complete legend, folded: 1,300 lines (it made the page 15,000 px tall).
    assert drawn == [True, 1300, 1300, 0, "seed=0", 1300, False] and not errors, (drawn, errors)
