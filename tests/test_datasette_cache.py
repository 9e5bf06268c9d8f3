"""What the web view keeps between requests while the index is unchanged, and forgets when
it changes: facet counts, runs table counts, chart data, the home page."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from _dsclient import get_ok as get

from xpm import tag
from xpm._experiment import experiment
from xpm.datasette import _served
from xpm.datasette._app import make_datasette
from xpm.index import open_index


def test_while_unchanged_computes_again_only_after_a_write(tmp_path: Path) -> None:
    with open_index(tmp_path):
        pass  # a real index file
    path = str(tmp_path / "xpm.db")
    calls: list[int] = []

    async def compute() -> int:
        calls.append(1)
        return len(calls)

    def value() -> int:
        return asyncio.run(_served.while_unchanged(path, ("test", 1), compute))

    assert [value(), value()] == [1, 1] and len(calls) == 1
    with open_index(tmp_path) as index:
        index.conn.execute(
            "INSERT INTO jobs (id, task_id, state, submit_time) VALUES ('abc', 't', 'DONE', 1)"
        )
    assert [value(), value()] == [2, 2] and len(calls) == 2
    # What was kept for the index before the write is dropped with the first miss.
    asyncio.run(_served.while_unchanged(path, ("other", 1), compute))
    with open_index(tmp_path) as index:
        index.conn.execute("DELETE FROM jobs")
    assert value() == 4
    assert [k for k in _served._cache if k[0] == path] == [(path, ("test", 1))]


def test_requests_for_a_value_being_computed_wait_for_that_computation(tmp_path: Path) -> None:
    """Two pages asking for the same value at once (the jobs table's facets, started
    together, then each asked for in turn) compute it once; a failure reaches both, and
    the next request computes again."""
    with open_index(tmp_path):
        pass
    path = str(tmp_path / "xpm.db")
    calls: list[int] = []

    async def both(key: tuple[str, int]) -> list[Any]:
        release = asyncio.Event()

        async def compute() -> int:
            calls.append(1)
            await release.wait()
            if key[0] == "fails":
                raise RuntimeError("the query was interrupted")
            return len(calls)

        first = asyncio.ensure_future(_served.while_unchanged(path, key, compute))
        second = asyncio.ensure_future(_served.while_unchanged(path, key, compute))
        await asyncio.sleep(0.01)
        release.set()
        return await asyncio.gather(first, second, return_exceptions=True)

    assert asyncio.run(both(("once", 1))) == [1, 1] and len(calls) == 1
    failed = asyncio.run(both(("fails", 1)))
    assert [str(e) for e in failed] == ["the query was interrupted"] * 2 and len(calls) == 2
    assert not _served._running  # nothing left under way
    assert asyncio.run(both(("once", 2))) == [3, 3] and len(calls) == 3


def seen(ds: Any) -> dict[str, Any]:
    """What the cached pages say about the experiment ``grow``."""
    home = get(ds, "/").text
    row = home.split('data-experiment="grow"')[1].split("</tr>")[0]
    facets = get(ds, "/xpm/jobs.json").json()["facet_results"]
    page = get(ds, "/-/xpm/experiment/grow").text
    table = page[page.index('id="xpm-runs"') :]
    chart = get(ds, "/-/xpm/chart.json?experiment=grow&metric=value&x=x").json()["data"]
    return {
        "home runs": re.findall(r'<td class="xpm-num">(\d+)</td>', row),
        "state facet": {v["value"]: v["count"] for v in facets["state"]["results"]},
        "tag facet": sorted(v["value"] for v in facets["tags"]["results"]),
        "runs table": len(set(re.findall(r'data-job="([0-9a-f]{64})"', table))),
        "runs count": re.findall(r"Jobs 1–\d+ of (\d+)", page),
        "chart x": [p[0] for s in chart["series"] for p in s["points"]],
    }


def grown(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The experiment ``grow`` of two tagged jobs recorded in ``workdir``, and a Datasette
    on it."""
    from xpm_test_tasks import ReportWithFunction

    monkeypatch.setenv("XPM_GIT", "off")
    with experiment(workdir, "grow", progress=False):
        for x in (1, 2):
            ReportWithFunction(x=tag(x)).submit()
    return make_datasette(workdir)


def test_pages_show_a_newly_recorded_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read once, served from the cache, then a run records a job: every page shows it."""
    from xpm_test_tasks import ReportWithFunction

    workdir = tmp_path / "wd"
    ds = grown(workdir, monkeypatch)
    before = seen(ds)
    assert (
        before
        == seen(ds)
        == {
            "home runs": ["1"],
            "state facet": {"DONE": 2},
            "tag facet": ["x=1", "x=2"],
            "runs table": 2,
            "runs count": ["2"],
            "chart x": [1, 2],
        }
    )
    with experiment(workdir, "grow", progress=False):
        ReportWithFunction(x=tag(3)).submit()
    assert seen(ds) == {
        "home runs": ["2"],
        "state facet": {"DONE": 3},
        "tag facet": ["x=1", "x=2", "x=3"],
        "runs table": 3,
        "runs count": ["3"],
        "chart x": [1, 2, 3],
    }


def test_lagging_values_are_computed_again_at_most_every_lag_seconds(tmp_path: Path) -> None:
    """The sweep queries (built on every Datasette page) are not built again after every
    write of a running experiment: within the lag the kept value is answered; past it, once
    more while the new one is computed; a new shape (a new experiment) is computed at once.
    A real index file written for real; the lag is shortened rather than waited for."""
    with open_index(tmp_path):
        pass
    path = str(tmp_path / "xpm.db")
    calls: list[int] = []
    shape = ["e"]

    async def compute() -> int:
        calls.append(1)
        return len(calls)

    async def shape_now() -> Any:
        return tuple(shape)

    def write(n: int) -> None:
        with open_index(tmp_path) as index:
            index.conn.execute(
                "INSERT INTO jobs (id, task_id, state, submit_time) VALUES (?, 't', 'DONE', 1)",
                (f"job{n}",),
            )

    async def scenario() -> list[int]:
        seen = []

        async def value(lag: float) -> int:
            return await _served.lagging(path, ("lagging", 1), compute, shape_now, lag)

        seen.append(await value(60))  # first: computed (1)
        write(1)
        seen.append(await value(60))  # written, within the lag: kept (1)
        seen.append(await value(0))  # past the lag: kept once more (1), new one under way
        await asyncio.sleep(0.05)
        seen.append(await value(60))  # the new one (2)
        write(2)
        shape.append("f")  # a new experiment: computed at once (3)
        seen.append(await value(60))
        return seen

    assert asyncio.run(scenario()) == [1, 1, 1, 2, 3] and len(calls) == 3


def test_the_jobs_tables_facets_over_every_job_follow_what_they_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over every job, the jobs table's facets are counted again after a write of what
    they count only: a report leaves them; a job's row recounts the states, not the tags
    (only a job written with other settings does: its tags are written with them)."""
    from test_index_keptvalues import write

    workdir = tmp_path / "wd"
    ds = grown(workdir, monkeypatch)

    def facets() -> dict[str, list[Any]]:
        found = get(ds, "/xpm/jobs.json").json()["facet_results"]
        return {
            name: sorted((v["value"], v["count"]) for v in found[name]["results"])
            for name in ("state", "tags")
        }

    assert facets() == {"state": [("DONE", 2)], "tags": [("x=1", 1), ("x=2", 1)]}
    # Behind the index's back (xpm writes a job's tags with its row and digest only).
    write(workdir, "UPDATE tags SET value = 5 WHERE value = 1")
    write(workdir, "UPDATE results SET value = value + 1")  # a report: nothing recounted
    assert facets()["tags"] == [("x=1", 1), ("x=2", 1)]
    write(workdir, "UPDATE jobs SET state = 'FAILED' WHERE id IN (SELECT id FROM jobs LIMIT 1)")
    assert facets() == {"state": [("DONE", 1), ("FAILED", 1)], "tags": [("x=1", 1), ("x=2", 1)]}
    write(workdir, "UPDATE jobs SET params_digest = 'other'")
    assert facets()["tags"] == [("x=2", 1), ("x=5", 1)]


def test_a_facet_over_every_job_still_stops_at_the_time_limit(tmp_path: Path) -> None:
    """Kept or not, a facet's count runs under Datasette's facet time limit: one that
    takes longer is listed as timed out and the page still answers."""
    with open_index(tmp_path):
        pass
    conn = sqlite3.connect(tmp_path / "xpm.db")
    with conn:  # one transaction
        conn.executemany(
            "INSERT INTO jobs (id, task_id, state, submit_time) VALUES (?, 't', 'DONE', 1)",
            [(f"{n:064x}",) for n in range(30_000)],
        )
        conn.executemany(
            "INSERT INTO tags (job_id, key, value, type) VALUES (?, 'seed', ?, 'int')",
            [(f"{n:064x}", n) for n in range(30_000)],
        )
    conn.close()
    ds = make_datasette(tmp_path)
    ds._settings["facet_time_limit_ms"] = 1
    page = get(ds, "/xpm/jobs").text
    assert "These facets timed out: " in page and "task_id" in page.split("timed out: ")[1][:80]
    ds._settings["facet_time_limit_ms"] = 5_000
    _served._cache.clear()
    page = get(ds, "/xpm/jobs").text
    assert "timed out" not in page
    counts = get(ds, "/xpm/jobs.json").json()["facet_results"]
    assert counts["task_id"]["results"][0]["count"] == 30_000
