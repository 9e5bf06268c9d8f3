"""`xpm jobs show` and the web job page show one record (`xpm.index.read_job_details`):
the same job gives the same values in both, also when the index is behind its directory.

The workdir comes from a real experiment (tests/browser/sweep.py) run from a git
repository, so its Evaluate jobs have parameters (a nested model), a tag, results, an
upstream Learn job and a recorded commit.
"""

from __future__ import annotations

import html as htmllib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _cli_fixtures import run
from _dsclient import get_ok
from _gitrepo import make_repo

from xpm._humanize import launcher_text
from xpm._jobdir import JobDir
from xpm._vocabulary import shown_state
from xpm.datasette._app import make_datasette
from xpm.index import read_results

TESTS = Path(__file__).parent
SWEEP = TESTS / "browser" / "sweep.py"


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workdir indexed by a real sweep run from a git repository (git states recorded)."""
    base = tmp_path_factory.mktemp("details")
    files = {
        "sweep.py": SWEEP.read_text(),
        "xpm_test_tasks.py": (TESTS / "xpm_test_tasks.py").read_text(),
    }
    repo = make_repo(base / "code", files)
    workdir = base / "workdir"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), str(TESTS.parent)])}
    env["XPM_GIT"] = "on"
    done = subprocess.run(
        [sys.executable, str(repo / "sweep.py"), str(workdir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=repo,
    )
    assert done.returncode == 0, done.stderr
    return workdir


def _job(workdir: Path, task: str, n_layers: int) -> str:
    with sqlite3.connect(workdir / "xpm.db") as conn:
        (found,) = conn.execute(
            "SELECT j.id FROM jobs j JOIN tags t ON t.job_id = j.id "
            "WHERE j.task_id = ? AND t.key = 'n_layers' AND t.value = ?",
            (task, n_layers),
        ).fetchall()
    return str(found[0])


def _shown(value: Any) -> str:
    """A value as the web page writes it (bool as true/false, lists and dicts as JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=isinstance(value, dict))
    return str(value)


def cli_values(workdir: Path, job: str) -> dict[str, Any]:
    """What `xpm jobs show --json` says, in the shape :func:`web_values` reads the page."""
    shown = run("jobs", "show", "--json", job, "--workdir", str(workdir))
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    leaves = sorted(
        (p["path"].rsplit(".", 1)[-1], _shown(p["value"]))
        for p in data["params"]
        if p["type"] != "config"
    )
    configs = sorted(
        (p["path"].rsplit(".", 1)[-1], str(p["value"]))
        for p in data["params"]
        if p["type"] == "config"
    )
    return {
        "state": shown_state(data["job"]["state"]),
        "params": leaves,
        "configs": configs,
        "tags": {k: str(v) for k, v in data["tags"].items()},
        "results": {r["key"]: str(r["value"]) for r in data["latest"]},
        "reports": len(data["results"]),
        "upstream": [j["id"] for j in data["upstream"]],
        "downstream": [j["id"] for j in data["downstream"]],
        "commits": [g["commit"] for g in data["git"]],
        "launcher": data["launcher_text"],
        "run": data["run"],
    }


def _one(pattern: str, text: str) -> str:
    """The first group of ``pattern``'s match in ``text``, which must match."""
    found = re.search(pattern, text, re.S)
    assert found is not None, pattern
    return htmllib.unescape(found[1])


def _section(page: str, start: str, end: str) -> str:
    return page[page.index(start) : page.index(end)]


def web_values(ds: Any, job: str) -> dict[str, Any]:
    """What the web job page shows of the same things."""
    page = get_ok(ds, f"/-/xpm/job/{job}").text
    params = _section(page, 'id="xpm-params"', 'id="xpm-tags"')
    tags = _section(page, 'id="xpm-tags"', "<h2>Results</h2>")
    results = _section(page, "<h2>Results</h2>", 'id="xpm-history"')
    launcher = _section(page, 'id="xpm-launcher"', 'id="xpm-git"')
    git = _section(page, 'id="xpm-git"', 'id="xpm-logs"')

    def links(kind: str) -> list[str]:
        if f'id="xpm-{kind}"' not in page:
            return []
        part = page.split(f'id="xpm-{kind}"')[1].split("</p>")[0]
        return re.findall(r'href="/-/xpm/job/([0-9a-f]{64})"', part)

    un = htmllib.unescape
    return {
        "state": _one(r'class="xpm-job-title">.*?xpm-state-\w+">(\w+)<', page),
        "params": sorted(
            (un(n), un(v))
            for n, v in re.findall(
                r'<code>([^<]+)</code> = <span class="xpm-value">([^<]*)</span>', params
            )
        ),
        "configs": sorted(
            (un(n), un(v))
            for n, v in re.findall(
                r'<summary><code>([^<]+)</code> <span class="xpm-type">([^<]*)</span>', params
            )
        ),
        "tags": {
            un(k): un(v) for k, v in re.findall(r'">([^<]+)</a></td><td>([^<]*)</td></tr>', tags)
        },
        "results": {
            un(k): un(v)
            for k, v in re.findall(
                r'<tr><td>([^<]+)</td><td class="xpm-value" title="([^"]*)"', results
            )
        },
        "reports": int((re.findall(r"(\d+) reported value", results) or [0])[0]),
        "upstream": links("upstream"),
        "downstream": links("downstream"),
        "commits": re.findall(r"<tr><th>commit</th><td><code>([0-9a-f]*)</code>", git),
        "launcher": _one(r"<tr><th>launcher</th><td>([^<]*)</td>", launcher),
        "run": _one(r"run <code>([^<]+)</code>", git),
    }


def test_jobs_show_and_the_job_page_give_the_same_values(swept: Path) -> None:
    ds = make_datasette(swept)
    evaluate = _job(swept, "xpm_test_tasks.evaluate", 2)
    learn = _job(swept, "xpm_test_tasks.learn", 2)
    cli, web = cli_values(swept, evaluate), web_values(ds, evaluate)
    assert cli == web
    # What the comparison covers is there at all: nested parameters, a tag, results, the
    # upstream job, a commit, the launcher read as text.
    assert ("n_layers", "2") in cli["params"] and ("activation", "relu") in cli["params"]
    assert cli["configs"] and cli["tags"] == {"n_layers": "2"}
    assert cli["results"]["accuracy"] == "0.7" and cli["upstream"] == [learn]
    assert len(cli["commits"]) == 1 and re.fullmatch(r"[0-9a-f]{40}", cli["commits"][0])
    assert cli["launcher"].startswith("local: max_parallel=") and cli["run"].startswith("sweep/")
    page = get_ok(ds, f"/-/xpm/job/{evaluate}").text
    assert '{"kind"' not in page  # no raw JSON
    # The history reads as text on both: who submitted, not a Python dict with a boot id.
    shown = run("jobs", "show", evaluate, "--workdir", str(swept)).stdout
    for text in (page, shown):
        assert "submitter: host=" in text and "{'host'" not in text and "&#39;host" not in text
    # And from the other side: the Learn job is used by the Evaluate job.
    cli, web = cli_values(swept, learn), web_values(ds, learn)
    assert cli == web and cli["downstream"] == [evaluate]


def test_both_read_the_job_directory_when_the_index_is_behind(swept: Path) -> None:
    """A result reported and a tag changed after the index last read the job: both views
    show the directory's values, not the index's (the page is read first: `jobs show`
    may catch the index up)."""
    ds = make_datasette(swept)
    job = _job(swept, "xpm_test_tasks.evaluate", 3)
    jobdir = JobDir(swept, "xpm_test_tasks.evaluate", job)
    with open(jobdir.results, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"values": {"accuracy": 0.975, "late": 1}, "time": time.time()}) + "\n")
    jobdir.write_tags({"n_layers": 3, "note": "added"})
    with sqlite3.connect(swept / "xpm.db") as conn:
        indexed = conn.execute(
            "SELECT value FROM latest_results WHERE job_id = ? AND key = 'accuracy'", (job,)
        ).fetchone()[0]
    assert indexed != 0.975  # the index has not read it
    web = web_values(ds, job)
    cli = cli_values(swept, job)
    assert web == cli
    on_disk = {r["key"]: str(r["value"]) for r in read_results(jobdir)}
    assert web["results"] == on_disk and on_disk["accuracy"] == "0.975" and on_disk["late"] == "1"
    assert web["reports"] == len(read_results(jobdir))
    assert web["tags"] == {"n_layers": "3", "note": "added"}


def test_both_show_the_index_copy_of_a_job_whose_directory_is_gone(swept: Path) -> None:
    """Without its directory (removed by hand), a job shows what the index holds, in both."""
    ds = make_datasette(swept)
    job = _job(swept, "xpm_test_tasks.evaluate", 1)
    shutil.rmtree(JobDir(swept, "xpm_test_tasks.evaluate", job).path)
    web = web_values(ds, job)
    assert web == cli_values(swept, job)
    assert ("n_layers", "1") in web["params"] and web["tags"] == {"n_layers": "1"}
    assert web["results"]["accuracy"] == "0.6" and web["state"] == "DONE"


def test_the_launcher_reads_as_text_on_both() -> None:
    """A recorded launcher description, as `jobs show` prints it and the page shows it
    (the page showed its JSON)."""
    slurm = {"kind": "slurm", "partition": "debug", "time": "1:00:00", "options": {"qos": "high"}}
    assert launcher_text(slurm) == "slurm: partition=debug, time=1:00:00, qos=high"
    assert launcher_text({"kind": "local", "max_parallel": None}) == "local"
    assert launcher_text(None) == ""
