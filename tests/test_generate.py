"""Generate mode's directory writer (xpm/_dirwriter.py): job directories made by a helper
process, equal to those the experiment makes itself, with real processes and files."""

from __future__ import annotations

import enum
import json
import shutil
from pathlib import Path

import pytest
from test_index import snapshot
from xpm_test_tasks import Count, Learn, Model

from xpm import Param, Task, _dirwriter, tag
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


@pytest.mark.parametrize("start_after", [0, 10_000], ids=["helper", "in-process"])
def test_directory_made_by_another_process_meanwhile(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, start_after: int
) -> None:
    """Between the experiment's look at the task's directory and the mkdir, another process
    runs one of the jobs to the end: its params.json is kept, and the experiment reports and
    records the job as DONE with the params it ran with."""
    monkeypatch.setattr(_dirwriter, "START_AFTER", start_after)
    monkeypatch.setattr(_dirwriter, "BATCH", 1000)  # nothing leaves before the end
    messages: list[str] = []
    with experiment(workdir, "gen", run_mode="generate", progress=False) as xp:
        xp._echo = messages.append
        tasks = [Count(n=i) for i in range(4)]
        tasks[0].submit()  # the experiment has looked at the task's directory
        other = JobDir(workdir, Count.__xpm__.typeid, tasks[2].__identifier__().hex)
        other.create()
        theirs = dumps(Count(n=2, counter="theirs"), workdir)  # same job, their Meta value
        other.write_params(theirs, fresh=True)
        other.mark_done()
        for task in tasks[1:]:
            task.submit()
    assert other.params.read_text() == theirs
    assert tasks[0].__xpm_jobdir__.params.read_text() == dumps(tasks[0], workdir)
    states = {j["id"]: j["state"] for j in list_jobs(workdir)}
    assert states[other.identifier] == "DONE"
    assert sorted(states.values()) == ["DONE", "UNSCHEDULED", "UNSCHEDULED", "UNSCHEDULED"]
    assert messages[-1] == "xpm gen: generated 4 job directories (1 already done)"
    with open_index(workdir, readonly=True) as index:  # the index says what the disk says
        rows = index.query(
            "SELECT value FROM params WHERE job_id = ? AND path = 'counter'", (other.identifier,)
        )
    assert [r[0] for r in rows] == ["theirs"]


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
    outcome = json.loads(info)["outcome"]
    assert outcome.startswith("error: JobDirectoryError: could not write job directories")


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


class Colour(enum.IntEnum):
    RED = 1


class Sweep(Task):
    lr: Param[float]
    level: Param[int] = 0


def test_tags_of_any_numeric_or_enum_type(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A numpy float (a float subclass) and an IntEnum as tags: written as plain JSON values
    (the enum by name) by the helper and by the experiment alike."""
    import numpy as np

    monkeypatch.setattr(_dirwriter, "START_AFTER", 3)
    tasks = [Sweep(lr=tag(lr)) for lr in np.linspace(0, 1, 6)]
    tasks += [Sweep(lr=0.5, level=tag(Colour.RED)), Sweep(lr=0.25, level=tag(Colour.RED))]
    generate(workdir, tasks)
    assert check(workdir) == []
    assert tasks[5].__xpm_jobdir__.read_tags() == {"lr": 1.0}
    assert tasks[7].__xpm_jobdir__.read_tags() == {"level": "RED"}
    with open_index(workdir, readonly=True) as index:
        kinds = {tuple(r) for r in index.query("SELECT key, typeof(value) FROM tags")}
    assert kinds == {("lr", "real"), ("level", "text")}


def test_a_failed_helper_leaves_no_index_row_without_its_directory(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One task's directory cannot be made (a file is in the way) while another task's can:
    the helper stops at the first failure, and the index holds exactly the directories that
    were written, no row for one that never was."""
    monkeypatch.setattr(_dirwriter, "START_AFTER", 0)
    monkeypatch.setattr(_dirwriter, "BATCH", 7)
    blocked = JobDir(workdir, Count.__xpm__.typeid, "x").path.parent
    blocked.parent.mkdir(parents=True)
    blocked.write_text("in the way")
    tasks: list[Task] = []
    for i in range(300):
        tasks.append(Learn(model=Model(n_layers=i), epochs=1))
        if i == 150:
            tasks.append(Count(n=i))
    with pytest.raises(JobDirectoryError, match=str(blocked)):
        generate(workdir, tasks)
    made = {p.name for p in (workdir / "jobs" / Learn.__xpm__.typeid).iterdir()}
    assert 0 < len(made) < 300
    assert check(workdir) == []
    assert {j["id"] for j in list_jobs(workdir)} == made


def test_a_huge_integer_parameter_is_recorded(workdir: Path) -> None:
    """SQLite integers are 64-bit: a larger value is kept as text, typed int, and the other
    jobs of the batch are recorded as usual."""
    generate(workdir, [Count(n=2**70), *(Count(n=i) for i in range(20))])
    assert check(workdir) == []
    with open_index(workdir, readonly=True) as index:
        rows = index.query(
            "SELECT value, type FROM params WHERE path = 'n' AND value = ?", (str(2**70),)
        )
    assert [tuple(r) for r in rows] == [(str(2**70), "int")]


def test_a_helper_error_that_is_not_an_os_error_names_the_job(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_dirwriter, "START_AFTER", 0)
    with pytest.raises(JobDirectoryError) as error:
        generate(workdir, [Count(n=1, counter="caf\udce9")])  # cannot be written as UTF-8
    text = str(error.value)
    assert "UnicodeEncodeError" in text and str(workdir / "jobs") in text
    assert check(workdir) == []


def test_a_slow_run_sees_its_directories_without_filling_a_batch(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Submissions that come slowly are sent once the batch is BATCH_AGE old, not only when
    it is full or the run ends."""
    import time

    monkeypatch.setattr(_dirwriter, "START_AFTER", 0)
    monkeypatch.setattr(_dirwriter, "BATCH_AGE", 0.2)
    with experiment(workdir, "gen", run_mode="generate", progress=False):
        first = Count(n=1)
        first.submit()
        time.sleep(0.3)
        Count(n=2).submit()  # the batch is old: both are sent now
        deadline = time.monotonic() + 30
        while not first.__xpm_jobdir__.params.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first.__xpm_jobdir__.params.exists()


def test_a_job_not_started_has_one_name_in_every_view(workdir: Path) -> None:
    """#19: the progress line said "pending", the CLI and the web view "UNSCHEDULED", the
    scheduler "WAITING": people now read WAITING everywhere (the index still stores
    UNSCHEDULED; --state accepts both)."""
    from click.testing import CliRunner

    from xpm.cli import cli

    generate(workdir, [Count(n=tag(i)) for i in range(2)])
    w = ["--workdir", str(workdir)]
    runner = CliRunner()
    table = runner.invoke(cli, ["jobs", "list", *w])
    assert table.exit_code == 0, table.output
    assert table.stdout.count(" WAITING ") == 2 and "UNSCHEDULED" not in table.stdout
    for state in ("waiting", "unscheduled"):
        listed = runner.invoke(cli, ["jobs", "list", *w, "--state", state, "--format", "json"])
        assert [j["state"] for j in json.loads(listed.stdout)] == ["WAITING", "WAITING"]
    shown = runner.invoke(cli, ["experiments", "list", *w])
    assert "waiting=2" in shown.stdout
    results = runner.invoke(cli, ["results", "count", *w, "--format", "json"])
    assert [r["state"] for r in json.loads(results.stdout)] == ["WAITING", "WAITING"]

    # The web view: home counts, the runs table, its state facet, the raw jobs table.
    import asyncio

    from xpm.datasette import make_datasette

    ds = make_datasette(workdir)

    def page(path: str) -> str:
        async def get() -> str:
            response = await ds.client.get(path)
            assert response.status_code == 200, path
            return str(response.text)

        return asyncio.run(get())

    for path in ("/", "/-/xpm/runs/xpm_test_tasks.count", "/xpm/jobs"):
        text = page(path)
        assert "WAITING" in text.upper() and ">UNSCHEDULED<" not in text.upper(), path
    assert "2 waiting" in page("/")

    with experiment(workdir, "again", run_mode="generate", progress=False) as xp:
        for i in range(3):
            Count(n=tag(i)).submit()
        line = xp._progress_line()  # what the live progress line of a normal run says
    assert line == "xpm again: 0 done, 0 running, 0 failed, 3 waiting"


def test_a_helper_error_read_between_batches_is_still_reported(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper's final report can arrive during the read that follows a batch; it was
    dropped there, and the error said only "its helper process ended with code 1"."""
    monkeypatch.setattr(_dirwriter, "START_AFTER", 0)
    monkeypatch.setattr(_dirwriter, "BATCH", 1)
    blocked = workdir / "jobs" / "t.blocked"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("in the way")
    announced: list[object] = []
    writer = _dirwriter.DirectoryWriter(workdir, lambda job, done: announced.append(job))
    writer.write(("t.blocked", "a" * 64, "{}", None), "first")  # sent at once: it fails
    helper = writer._helper
    assert helper is not None
    helper.wait(timeout=60)  # its report is in the pipe now
    writer._read_acks(block=False)  # what the next write does after sending its batch
    with pytest.raises(JobDirectoryError, match=str(blocked)):
        writer.close()
    assert announced == []


def test_a_generated_job_run_by_hand_is_seen_by_every_reader(tmp_path: Path) -> None:
    """Generate mode writes directories for another tool to run (`python -m xpm.run DIR`,
    which never opens the index): `xpm jobs list`, `xpm jobs show` and `xpm results`
    read the state and results from its directory instead of WAITING forever."""
    import os
    import subprocess
    import sys

    from xpm_test_tasks import Train

    workdir = tmp_path / "wd"
    with experiment(workdir, "gen", "generate", progress=False):
        ran = Train(lr=tag(0.3), seed=1).submit()
        Train(lr=tag(0.5), seed=1).submit()  # never run: stays WAITING
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    path = ran.__xpm_jobdir__.path
    assert subprocess.run([sys.executable, "-m", "xpm.run", str(path)], env=env).returncode == 0

    def cli(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "xpm.cli", *args, "--workdir", str(workdir)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    results = json.loads(cli("results", "xpm_test_tasks.train", "--format", "json"))
    by_lr = {row["tag:lr"]: row for row in results}  # `lr` is also a result: tag:lr
    assert by_lr[0.3]["state"] == "DONE" and by_lr[0.3]["accuracy"] == 0.81
    assert by_lr[0.5]["state"] == "WAITING" and by_lr[0.5].get("accuracy") is None
    listed = {
        row["tags"]["lr"]: row["state"]
        for row in json.loads(cli("jobs", "list", "--format", "json"))
    }
    assert listed == {0.3: "DONE", 0.5: "WAITING"}
    # Killing a job not started says it by the name every view uses (not UNSCHEDULED).
    assert "not running (WAITING)" in cli("jobs", "kill", "--tag", "lr=0.5")
