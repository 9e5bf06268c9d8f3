"""A click on a point of a curve over steps compares the jobs behind that point: those of
its line that reported the result at its step (a seed that failed earlier is named, not
compared), through Datasette's test client on a real experiment's index."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from _dsclient import get_ok as get
from _dsclient import text_of

from xpm import tag
from xpm._experiment import experiment
from xpm.datasette._app import make_datasette
from xpm.errors import JobsFailedError

CURVE = "xpm_curve_tasks.curve"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seeds 0, 1, 2 at lr 0.1 and 0.5; at lr 0.1 seed 2 fails after step 1 (of 0..4)."""
    from xpm_curve_tasks import Curve

    workdir = tmp_path_factory.mktemp("points") / "wd"
    with pytest.raises(JobsFailedError), experiment(workdir, "curves", progress=False):
        for lr in (0.1, 0.5):
            for seed in (0, 1, 2):
                stop = 1 if (lr, seed) == (0.1, 2) else -1
                Curve(lr=tag(lr), seed=tag(seed), stop=stop).submit()
    return workdir


@pytest.fixture(scope="module")
def ds(workdir: Path) -> Any:
    return make_datasette(workdir)


def compared(page: str) -> list[str]:
    """The ids of the jobs in the compare table's columns (none without a table)."""
    if 'id="xpm-compare"' not in page:
        return []
    head = page.split('id="xpm-compare"')[1].split("</thead>")[0]
    return re.findall(r'/-/xpm/job/([0-9a-f]+)"', head)


def seeds(workdir: Path) -> dict[str, int]:
    """Job id -> its seed, from the index."""
    conn = sqlite3.connect(workdir / "xpm.db")
    try:
        return dict(conn.execute("SELECT job_id, value FROM tags WHERE key = 'seed'").fetchall())
    finally:
        conn.close()


def line(ds: Any, lr: float) -> dict[str, Any]:
    """The series of ``lr`` of the loss over steps, averaged over seeds."""
    query = f"experiment=curves&task={CURVE}&metric=loss&x=step&average=seed"
    data = get(ds, "/-/xpm/chart.json?" + query).json()["data"]
    return next(s for s in data["series"] if s["name"] == f"lr={lr}")


def link(series: dict[str, Any], step: int) -> str:
    """What a click on the point at ``step`` opens (xpm-chart.js builds the same)."""
    ids = [("id", j) for j in series["jobs"]]
    return "/-/xpm/compare?" + urlencode([*ids, ("metric", "loss"), ("step", step)])


def test_a_point_after_a_seed_failed_compares_the_seeds_that_reported(
    ds: Any, workdir: Path
) -> None:
    series = line(ds, 0.1)
    assert len(series["jobs"]) == 3  # the line lists its three seeds once
    assert [p[2] for p in series["points"]] == [3, 3, 2, 2, 2]
    page = get(ds, link(series, 3)).text
    seen = text_of(page)
    seed = seeds(workdir)
    kept = compared(page)
    assert sorted(seed[j] for j in kept) == [0, 1], kept
    [failed] = [j for j in series["jobs"] if seed[j] == 2]
    assert "loss at step 3: 2 of 3 jobs of the line reported it" in seen, seen
    assert f"not {failed[:8]} seed=2 (failed, last at step 1)." in seen, seen
    assert "Compare 2 jobs" in seen
    # Each compared job's value at that step, beside its latest one.
    row = page.split('data-key="step:loss"')[1].split("</tr>")[0]
    values = [float(v) for v in re.findall(r'class="xpm-num" title="([^"]+)"', row)]
    assert values == [1 / (1 + 3 * 0.1) + seed[j] / 100 for j in kept], row


def test_a_point_all_seeds_reported_compares_them_all(ds: Any) -> None:
    series = line(ds, 0.1)
    page = get(ds, link(series, 1)).text
    assert sorted(compared(page)) == sorted(series["jobs"])
    assert "loss at step 1: all 3 jobs of the line reported it." in text_of(page)


def test_a_step_no_job_reported_compares_none_and_says_so(ds: Any) -> None:
    page = get(ds, link(line(ds, 0.5), 9)).text
    seen = text_of(page)
    assert compared(page) == []
    assert "loss at step 9: 0 of 3 jobs of the line reported it" in seen, seen
    assert "Tick two jobs" not in seen  # not the help of an empty comparison


def test_without_a_step_every_job_given_is_compared(ds: Any) -> None:
    series = line(ds, 0.1)
    ids = "&".join(f"id={j}" for j in series["jobs"])
    for extra in ("", "&metric=loss", "&metric=loss&step=abc"):
        page = get(ds, f"/-/xpm/compare?{ids}{extra}").text
        assert sorted(compared(page)) == sorted(series["jobs"]), extra
        assert "of the line reported it" not in text_of(page)


def test_latest_values_from_different_steps_say_their_steps(ds: Any, workdir: Path) -> None:
    """A failed seed's latest loss is from step 1, the others' from step 4: side by side,
    each says its step (they read as comparable values before)."""
    series = line(ds, 0.1)
    page = get(ds, "/-/xpm/compare?" + "&".join(f"id={j}" for j in series["jobs"])).text
    row = page.split('data-key="result:loss"')[1].split("</tr>")[0]
    assert "(latest steps differ)" in row
    seed = seeds(workdir)
    steps = dict(zip(compared(page), re.findall(r'class="xpm-step">step (\d+)<', row), strict=True))
    assert {seed[j]: int(s) for j, s in steps.items()} == {0: 4, 1: 4, 2: 1}
    # Jobs whose latest reports are at one step: no step said.
    both = [j for j in series["jobs"] if seed[j] != 2]
    same = get(ds, "/-/xpm/compare?" + "&".join(f"id={j}" for j in both)).text
    assert "xpm-step" not in same.split('data-key="result:loss"')[1].split("</tr>")[0]
