"""Runs tables and the compare page as a new user reads them after a sweep (#16).

Datasette's test client on the index of tests/browser/sweep.py (fixtures of test_datasette).
"""

from __future__ import annotations

import re
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
        assert re.fullmatch(FULL, full) and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", short)
        assert full.startswith(short)
    ids = [job_id(ds, "sweep.train", f"n_layers%3D{n}") for n in (1, 2)]
    compare = get(ds, "/-/xpm/compare?" + "&".join(f"id={i}" for i in ids)).text
    started = re.findall(r'<td class="xpm-time" title="([^"]*)">([^<]*)</td>', compare)
    assert len(started) == 2 and all(re.fullmatch(FULL, full) for full, _ in started)
