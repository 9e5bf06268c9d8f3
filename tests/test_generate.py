"""Generate mode's directory writer (xpm/_dirwriter.py): job directories made by a helper
process, equal to those the experiment makes itself, with real processes and files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_index import snapshot
from xpm_test_tasks import Count

from xpm import _dirwriter, tag
from xpm._experiment import experiment
from xpm._jobdir import JobDir
from xpm._serialize import dumps
from xpm.errors import JobDirectoryError
from xpm.index import check, list_jobs, open_index, rebuild


def generate(workdir: Path, tasks: list[Count]) -> None:
    with experiment(workdir, "gen", run_mode="generate", progress=False):
        for task in tasks:
            task.submit()


@pytest.mark.parametrize("start_after", [0, 7, 10_000], ids=["helper", "both", "in-process"])
def test_directories_are_the_same_whoever_writes_them(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_after: int
) -> None:
    monkeypatch.setattr(_dirwriter, "START_AFTER", start_after)
    monkeypatch.setattr(_dirwriter, "BATCH", 5)
    tasks = [Count(n=tag(i), counter=f"c{i}") for i in range(23)]
    generate(workdir, tasks)
    for task in tasks:
        jobdir = task.__xpm_jobdir__
        assert jobdir.params.read_text() == dumps(task, workdir)
        assert jobdir.read_tags() == {"n": task.n}
        assert sorted(p.name for p in jobdir.path.iterdir()) == ["params.json", "tags.json"]
    jobs = list_jobs(workdir)
    assert len(jobs) == 23 and {j["state"] for j in jobs} == {"UNSCHEDULED"}
    # What the index recorded equals what it rebuilds from the directories alone.
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy)
    recorded = snapshot(copy)
    rebuild(copy)
    assert snapshot(copy) == recorded


def test_directory_made_by_another_process_meanwhile(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the experiment's existence check and the helper's mkdir, another process
    runs the same job to the end: the helper keeps its params.json, and the experiment
    reports and records the job as DONE (the race is provoked by holding the batch back)."""
    monkeypatch.setattr(_dirwriter, "START_AFTER", 0)
    monkeypatch.setattr(_dirwriter, "BATCH", 1000)  # nothing leaves before the end
    messages: list[str] = []
    with experiment(workdir, "gen", run_mode="generate", progress=False) as xp:
        xp._echo = messages.append
        tasks = [Count(n=i) for i in range(4)]
        for task in tasks:
            task.submit()
        other = tasks[2].__xpm_jobdir__
        other.create()
        other.write_params('{"theirs": true}\n', fresh=True)
        other.mark_done()
    assert json.loads(other.params.read_text()) == {"theirs": True}
    assert tasks[0].__xpm_jobdir__.params.read_text() == dumps(tasks[0], workdir)
    states = {j["id"]: j["state"] for j in list_jobs(workdir)}
    assert states[other.identifier] == "DONE"
    assert sorted(states.values()) == ["DONE", "UNSCHEDULED", "UNSCHEDULED", "UNSCHEDULED"]
    assert messages[-1] == "xpm gen: generated 4 job directories (1 already done)"


@pytest.mark.parametrize(
    ("start_after", "batch", "count"),
    [(0, 128, 1), (0, 1, 200), (10, 128, 1)],
    ids=["helper-at-exit", "helper-while-submitting", "in-process"],
)
def test_write_failure_names_the_directory_and_fails_the_run(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, start_after: int, batch: int, count: int
) -> None:
    """The helper stops at its first failure; the experiment raises it (at a later
    submission when the pipe is already closed, or at the end) and records the run."""
    monkeypatch.setattr(_dirwriter, "START_AFTER", start_after)
    monkeypatch.setattr(_dirwriter, "BATCH", batch)
    task_dir = JobDir(workdir, Count.__xpm__.typeid, "x").path.parent
    task_dir.parent.mkdir(parents=True)
    task_dir.write_text("a file where the task's directory should be")
    with pytest.raises(JobDirectoryError) as error:
        generate(workdir, [Count(n=i) for i in range(count)])
    text = str(error.value)
    assert "could not write job directories" in text and str(task_dir) in text
    with open_index(workdir, readonly=True) as index:
        (info,) = index.query("SELECT info FROM runs")[0]
    assert json.loads(info)["outcome"] == "error: JobDirectoryError"


def test_generating_again_keeps_existing_jobs(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Directories that exist when the run starts are never sent to the helper: a DONE job
    keeps the params.json it ran with, and both runs end up recorded as they are on disk."""
    monkeypatch.setattr(_dirwriter, "START_AFTER", 0)
    generate(workdir, [Count(n=i) for i in range(5)])
    first = [Count(n=i, counter="meta") for i in range(5)]
    messages: list[str] = []
    with experiment(workdir, "gen", run_mode="generate", progress=False) as xp:
        xp._echo = messages.append
        for task in first[:2]:
            task.submit()
        for task in first[:2]:
            task.__xpm_jobdir__.mark_done()
    done = {t.__xpm_jobdir__.identifier for t in first[:2]}
    with experiment(workdir, "gen", run_mode="generate", progress=False) as xp:
        xp._echo = messages.append
        again = [Count(n=i, counter="other") for i in range(7)]
        for task in again:
            task.submit()
    assert messages[-1] == "xpm gen: generated 7 job directories (2 already done)"
    for task in first[:2]:  # DONE: params.json as it ran (counter="meta")
        doc = json.loads(task.__xpm_jobdir__.params.read_text())
        assert doc["objects"][doc["root"]]["values"]["counter"] == "meta"
    doc = json.loads(again[3].__xpm_jobdir__.params.read_text())  # not done: this run's
    assert doc["objects"][doc["root"]]["values"]["counter"] == "other"
    states = {j["id"]: j["state"] for j in list_jobs(workdir)}
    assert len(states) == 7 and {i for i, s in states.items() if s == "DONE"} == done


def test_ctrl_c_during_a_large_generate_run_leaves_whole_directories(workdir: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while the helper
    is busy: the helper finishes what it was given, every directory holds a complete
    params.json, the run is recorded as interrupted, and a new run completes the rest."""
    import os
    import signal
    import time

    from conftest import popen_python

    script = (
        "from xpm._experiment import experiment\n"
        "from xpm_test_tasks import Count\n"
        f"with experiment({str(workdir)!r}, 'gen', run_mode='generate', progress=False):\n"
        "    for i in range(30000):\n"
        "        Count(n=i).submit()\n"
    )
    proc = popen_python(script)
    try:
        jobs = workdir / "jobs" / Count.__xpm__.typeid
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if jobs.is_dir() and len(os.listdir(jobs)) > _dirwriter.START_AFTER + 200:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGINT)
        # The helper is in the same process group as a terminal would signal.
        for child in _children(proc.pid):
            os.kill(child, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    made = sorted(jobs.iterdir())
    assert _dirwriter.START_AFTER < len(made) < 30000
    for path in made:
        doc = json.loads((path / "params.json").read_text())  # whole, never torn
        assert doc["objects"][doc["root"]]["identifier"] == path.name
    with open_index(workdir, readonly=True) as index:
        (info,) = index.query("SELECT info FROM runs")[0]
    assert json.loads(info)["outcome"] == "interrupted"
    assert check(workdir) == []  # the index holds exactly the directories that exist
    generate(workdir, [Count(n=i) for i in range(30000)][: len(made) + 10])
    assert len(list(jobs.iterdir())) == len(made) + 10
    rebuild(workdir)
    assert len(list_jobs(workdir)) == len(made) + 10


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found
