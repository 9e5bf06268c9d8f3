"""Hostile input, full disks and read-only workdirs: every case ends in a clear error (#20)."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT

from xpm import Param, Task
from xpm._jobdir import JobDir
from xpm.errors import ConfigError, JobDirectoryError

# --- task ids (#20 point 1) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("typeid", "problem"),
    [
        ("../escaped-task", "dot-separated names"),
        ("/tmp/absolute", "dot-separated names"),
        ("a/b", "dot-separated names"),
        ("..", "dot-separated names"),
        (".hidden", "dot-separated names"),
        ("trailing.", "dot-separated names"),
        ("with space", "dot-separated names"),
        ("nul\0byte", "dot-separated names"),
        ("new\nline", "dot-separated names"),
        ("-option", "dot-separated names"),
        ("x" * 300, "longer than 200 bytes"),
        ("é" * 101, "longer than 200 bytes"),
    ],
)
def test_bad_task_id_is_refused_at_class_definition(typeid: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:

        class Escaping(Task):
            __xpmid__ = typeid
            x: Param[int] = 1

    message = str(info.value)
    assert "Escaping: the __xpmid__ " in message
    assert problem in message and "\n" not in message


def test_a_too_long_derived_task_id_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"the derived type id .* longer than 200 bytes"):
        type("T" * 250, (Task,), {"__annotations__": {"x": Param[int]}, "x": 1})


def test_an_xpmid_must_be_a_string() -> None:
    with pytest.raises(ConfigError, match="__xpmid__ must be a string, got int"):

        class Numbered(Task):
            __xpmid__ = 12  # type: ignore[assignment]


@pytest.mark.parametrize("typeid", ["mylab.model", "a-b.c_d.E2", "été.modèle", "t.<locals>.m"])
def test_good_task_ids_are_kept(typeid: str) -> None:
    class Fine(Task):
        __xpmid__ = typeid

    assert Fine.__xpm__.typeid == typeid


@pytest.mark.parametrize(
    ("task_id", "identifier"), [("..", "abc"), ("a/../..", "abc"), ("t", ".."), ("t", "a/b")]
)
def test_a_job_directory_never_leaves_workdir_jobs(
    tmp_path: Path, task_id: str, identifier: str
) -> None:
    with pytest.raises(JobDirectoryError, match="cannot name a job directory"):
        JobDir(tmp_path, task_id, identifier)


# --- hostile input: one line, exit 2, nothing written (#20 point 3) -----------------------

EXPERIMENT = """
from xpm import Param, Task
from xpm.experiments import ExperimentHelper, configuration


class Echo(Task):
    name: Param[str]
    x: Param[float] = 0.0
    n: Param[int] = 0

    def execute(self) -> None:
        pass


@configuration
class Configuration:
    name: str = "a"
    x: float = 0.0
    n: int = 0


def run(helper: ExperimentHelper, cfg: Configuration) -> None:
    Echo(name=cfg.name, x=cfg.x, n=cfg.n).submit()
"""


def xpm(
    *args: str | bytes, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command line, importing xpm from this checkout."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("XPM_")}
    full_env.update(PYTHONPATH=str(ROOT), XPM_GIT="off", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "xpm.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("xpm: error: ") and "unexpected" not in lines[0]
    return lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    (path / "hx.py").write_text(textwrap.dedent(EXPERIMENT))
    return path


def _alias_bomb() -> bytes:
    """The "billion laughs": 9**9 strings from a few hundred bytes."""
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]\n"
    return text.encode()


HOSTILE_YAML = {
    "not-utf8": (b'name: "caf\xe9"\n', "not UTF-8 text: byte 0xe9 on line 2"),
    "nul-in-id": (b'id: "a\\0b"\n', "invalid experiment name 'a\\x00b': it holds a control"),
    "newline-in-id": (b'id: "a\\nb"\n', "it holds a control character"),
    "too-long-id": (b"id: " + b"x" * 300 + b"\n", "it is 300 bytes long, more than 200"),
    "int-too-large-for-float": (b"x: " + b"9" * 400 + b"\n", "is too large for a float"),
    "int-beyond-4300-digits": (b"n: " + b"9" * 5000 + b"\n", "integer of 5000 characters"),
    "lone-surrogate": (b'name: "\\uD800"\n', "lone surrogate"),
    "float-beyond-range": (b"x: 1.0e+400\n", "1.0e+400 is beyond the range of a float"),
    "alias-bomb": (_alias_bomb(), "expands to more than 1,000,000 values through aliases"),
    "deep-nesting": (b"name: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_YAML))
def test_hostile_experiment_yaml(project: Path, tmp_path: Path, case: str) -> None:
    content, message = HOSTILE_YAML[case]
    (project / "hostile.yaml").write_bytes(b"file: hx\n" + content)
    workdir = tmp_path / "workdir"
    line = one_error_line(
        xpm("run-experiment", "hostile.yaml", "--workdir", str(workdir), cwd=project)
    )
    assert message in line and str(project / "hostile.yaml") in line
    assert not workdir.exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (b"name=caf\xe9", "not valid UTF-8"),
        (b"x=" + b"9" * 400, "is too large for a float"),
        (b"n=" + b"9" * 5000, "integer of 5000 characters (at most 1000 digits)"),
        (b"x=1e400", "1e400 is beyond the range of a float"),  # was a job with x=inf
    ],
    ids=["not-utf8", "int-too-large-for-float", "int-beyond-1000-digits", "float-beyond-range"],
)
def test_hostile_override(project: Path, tmp_path: Path, option: bytes, message: str) -> None:
    (project / "ok.yaml").write_text("file: hx\n")
    workdir = tmp_path / "workdir"
    result = xpm("run-experiment", "ok.yaml", "--workdir", str(workdir), "-c", option, cwd=project)
    assert message in one_error_line(result)
    assert not workdir.exists()


@pytest.mark.parametrize("where", ["file", "dev-null", "under-a-file", "jobs-a-file"])
def test_workdir_that_is_not_a_directory(project: Path, tmp_path: Path, where: str) -> None:
    (project / "ok.yaml").write_text("file: hx\n")
    file = tmp_path / "a-file"
    if where == "jobs-a-file":  # was "unexpected NotADirectoryError", exit 1
        (tmp_path / "workdir").mkdir()
        file = tmp_path / "workdir" / "jobs"
    file.write_text("not a workdir")
    workdir = {"file": file, "dev-null": Path("/dev/null"), "under-a-file": file / "sub"}.get(
        where, tmp_path / "workdir"
    )
    # XPM_WORKDIR, not --workdir: click checks the option itself.
    result = xpm("run-experiment", "ok.yaml", cwd=project, env={"XPM_WORKDIR": str(workdir)})
    line = one_error_line(result)
    assert f"workdir {workdir}: " in line and "is not a directory" in line
    assert file.read_text() == "not a workdir"
    if where == "jobs-a-file":
        assert [p.name for p in file.parent.iterdir()] == ["jobs"]  # nothing written


def test_undecodable_bytes_in_a_job_directory_are_read(indexed: Path) -> None:
    """A non-UTF-8 byte in events.jsonl, results.jsonl or tags.json (a damaged disk) made
    `jobs show`, `index rebuild` and `index check` fail with "unexpected UnicodeDecodeError"."""
    (jobdir,) = [p.parent for p in indexed.glob("jobs/*/*/params.json")]
    with (jobdir / "events.jsonl").open("ab") as fh:
        fh.write(b'{"note": "caf\xe9"}\n')
    with (jobdir / "results.jsonl").open("ab") as fh:
        fh.write(b'{"values": {"word": "caf\xe9"}}\n')
    (jobdir / "tags.json").write_bytes(b'{"t": "caf\xe9"}')
    for command in (("jobs", "show", jobdir.name[:8]), ("index", "rebuild"), ("index", "check")):
        result = xpm(*command, "--workdir", str(indexed), cwd=indexed)
        assert result.returncode == 0, (command, result.stderr)
    shown = xpm("jobs", "show", jobdir.name[:8], "--workdir", str(indexed), cwd=indexed)
    assert "caf\ufffd" in shown.stdout and "DONE" in shown.stdout


@pytest.mark.parametrize(
    "command", [("jobs", "list"), ("query", "select 1"), ("index", "rebuild"), ("index", "check")]
)
def test_index_that_is_a_directory(tmp_path: Path, command: tuple[str, ...]) -> None:
    workdir = tmp_path / "workdir"
    (workdir / "xpm.db").mkdir(parents=True)
    line = one_error_line(xpm(*command, "--workdir", str(workdir), cwd=tmp_path))
    assert f"{workdir / 'xpm.db'} is not a file" in line and "xpm index rebuild" in line
    assert (workdir / "xpm.db").is_dir()


@pytest.mark.parametrize("link", ["loop", "nowhere"])
@pytest.mark.parametrize(
    "command",
    [("jobs", "list"), ("experiments", "list"), ("query", "select 1"), ("index", "check")],
)
def test_index_that_is_a_broken_symbolic_link(
    tmp_path: Path, command: tuple[str, ...], link: str
) -> None:
    """Read as "no experiment has run there yet" before: the user's link was the problem."""
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    target = "xpm.db" if link == "loop" else str(tmp_path / "gone" / "xpm.db")
    (workdir / "xpm.db").symlink_to(target)
    result = xpm(*command, "--workdir", str(workdir), cwd=tmp_path)
    assert result.returncode == 2
    line = one_error_line(result)
    why = "loops" if link == "loop" else "leads nowhere"
    assert f"{workdir / 'xpm.db'} is a symbolic link to {target} that {why}" in line
    assert sorted(p.name for p in workdir.iterdir()) == ["xpm.db"]  # nothing written


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hosts:\n  - name: caf\xe9\n", "not UTF-8 text: byte 0xe9 on line 2"),
        (b"hosts:\n  - name: a\n    name: b\n", "duplicate key 'name'"),
        (b"hosts:\n  - name: a\n    cores: " + b"9" * 5000 + b"\n", "integer of 5000"),
    ],
    ids=["not-utf8", "duplicate-key", "int-beyond-4300-digits"],
)
def test_hostile_launchers_yaml(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "launchers.yaml"
    path.write_bytes(content)
    result = xpm("launchers", "list", cwd=tmp_path, env={"XPM_LAUNCHERS": str(path)})
    assert f"{path}: " in (line := one_error_line(result)) and message in line


def test_a_broken_launchers_yaml_beside_the_experiment_is_refused_before_the_run(
    project: Path, tmp_path: Path
) -> None:
    """It was read only when run() asked for a launcher: exit 2 after the workdir, a run
    record and a job were written (or exit 0 when run() asked for none)."""
    (project / "ok.yaml").write_text("file: hx\n")
    (project / "launchers.yaml").write_bytes(b"hosts:\n  - name: a\n    name: b\n")
    workdir = tmp_path / "workdir"
    line = one_error_line(xpm("run-experiment", "ok.yaml", "--workdir", str(workdir), cwd=project))
    assert f"{project / 'launchers.yaml'}: " in line and "duplicate key 'name'" in line
    assert not workdir.exists()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cuda * 99999999999999999999", "expected '('"),
        ("cuda() * 99999999999999999999", "expected a number of at most 1,024, got '99999"),
        ("cuda() * " + "9" * 5000, "expected a number of at most 1,024"),
        ("cuda() * 1000 & cuda() * 1000", "at most 1024 GPUs in all"),
        ("cpu(mem=99999999999999999999G)", "expected a number of at most 1,000,000,000"),
        ("duration=" + "9" * 5000 + " days", "expected a number of at most 1,000,000,000"),
        ("cpu(cores=\u0661)", "expected a positive number of cores, got '\u0661'"),
        ("cpu(cores=\uff11)", "expected a positive number of cores"),
        ("cpu(mem=\u0661G)", "expected a memory size"),
    ],
    ids=lambda value: value[:40],
)
def test_hostile_launcher_spec(tmp_path: Path, spec: str, message: str) -> None:
    assert message in one_error_line(xpm("launchers", "find", spec, cwd=tmp_path))


# --- messages that point the right way (#20 point 5) ---------------------------------------


@pytest.fixture
def indexed(project: Path, tmp_path: Path) -> Path:
    """A workdir with one finished job and its index, checkpointed into xpm.db."""
    (project / "ok.yaml").write_text("file: hx\n")
    workdir = tmp_path / "workdir"
    result = xpm("run-experiment", "ok.yaml", "--workdir", str(workdir), cwd=project)
    assert result.returncode == 0, result.stderr
    conn = sqlite3.connect(workdir / "xpm.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return workdir


def _damage(path: Path, how: str) -> None:
    conn = sqlite3.connect(path)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'jobs'").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(path, "r+b") as fh:
        if how == "malformed":  # the jobs table's root page overwritten
            fh.seek((root - 1) * page_size)
            fh.write(b"\xa5" * page_size)
        else:  # a page size SQLite refuses, behind a sound "SQLite format 3" magic
            fh.seek(16)
            fh.write((3).to_bytes(2, "big"))


@pytest.mark.parametrize(
    ("how", "sqlite_says"),
    [("malformed", "database disk image is malformed"), ("notadb", "file is not a database")],
)
def test_damaged_index_through_query_points_to_rebuild(
    indexed: Path, how: str, sqlite_says: str
) -> None:
    _damage(indexed / "xpm.db", how)
    line = one_error_line(
        xpm("query", "SELECT * FROM jobs", "--workdir", str(indexed), cwd=indexed)
    )
    assert sqlite_says in line and "xpm index rebuild" in line and "--schema" not in line
    # ... and the advice works.
    rebuilt = xpm("index", "rebuild", "--workdir", str(indexed), cwd=indexed)
    assert rebuilt.returncode == 0, rebuilt.stderr
    after = xpm("query", "SELECT COUNT(*) AS n FROM jobs", "--workdir", str(indexed), cwd=indexed)
    assert after.returncode == 0 and after.stdout.split()[-1] == "1", after.stderr


def test_a_huge_limit_is_an_option_error(indexed: Path) -> None:
    args = ("jobs", "list", "--workdir", str(indexed), "--limit", "99999999999999999999")
    line = one_error_line(xpm(*args, cwd=indexed))
    assert "Invalid value for '--limit'" in line and "index" not in line


def test_a_workdir_without_its_index_points_to_a_rebuild(indexed: Path) -> None:
    """A deleted (or not copied) xpm.db listed "(none)" and said no experiment had run."""
    for path in indexed.glob("xpm.db*"):
        path.unlink()
    listed = xpm("jobs", "list", "--workdir", str(indexed), cwd=indexed)
    assert listed.returncode == 0
    assert "has job directories: run `xpm index rebuild`" in listed.stderr
    experiments = xpm("experiments", "list", "--workdir", str(indexed), cwd=indexed)
    assert "has job directories: run `xpm index rebuild`" in experiments.stderr
    shown = one_error_line(xpm("jobs", "show", "abc", "--workdir", str(indexed), cwd=indexed))
    assert "has job directories: run `xpm index rebuild`" in shown
    assert not (indexed / "xpm.db").exists()  # a reader does not make one


@pytest.mark.parametrize("digits", [20, 5000])
def test_a_huge_query_parameter_is_refused(indexed: Path, digits: int) -> None:
    """Beyond SQLite's 64-bit integers (it was "unexpected OverflowError", exit 1)."""
    args = ("query", "SELECT :n AS n", "--param", "n=" + "9" * digits)
    line = one_error_line(xpm(*args, "--workdir", str(indexed), cwd=indexed))
    assert "an integer beyond SQLite's 64 bits" in line and len(line) < 300
    as_float = ("query", "SELECT typeof(:n) AS t, :n > 1e19 AS big", "--param", "n=1.0e20")
    result = xpm(*as_float, "--format", "csv", "--workdir", str(indexed), cwd=indexed)
    assert result.returncode == 0 and result.stdout.split()[-1] == "real,1", result.stderr


# --- full disks and read-only workdirs (#20 point 4) ---------------------------------------

MANY = """
from pathlib import Path

from xpm import Param, Task
from xpm.experiments import ExperimentHelper, configuration


class Fill(Task):
    i: Param[int]
    size: Param[int] = 0

    def execute(self) -> None:
        Path("out.bin").write_bytes(b"x" * self.size)


@configuration
class Configuration:
    count: int = 10
    size: int = 0


def run(helper: ExperimentHelper, cfg: Configuration) -> None:
    for i in range(cfg.count):
        Fill(i=i, size=cfg.size).submit()
"""


def _mount(*args: str) -> None:
    """Run mount(8); skip without the right to mount, fail under XPM_REQUIRE_MOUNT=1 (CI)."""
    result = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        reason = f"cannot mount (needs root): mount {' '.join(args)}: {result.stderr.strip()}"
        if os.environ.get("XPM_REQUIRE_MOUNT", "") not in ("", "0"):
            pytest.fail(reason + " (XPM_REQUIRE_MOUNT is set)")
        pytest.skip(reason)


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    """Mount points to unmount after the test (most recent first)."""
    points: list[Path] = []
    yield points
    for point in reversed(points):
        subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=60)


def small_disk(path: Path, size: str, mounts: list[Path]) -> Path:
    path.mkdir()
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    mounts.append(path)
    return path


def _disk_full_line(result: subprocess.CompletedProcess[str], disk: Path, workdir: Path) -> str:
    assert result.returncode == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("xpm: error: ")]
    assert len(errors) == 1, result.stderr
    line = errors[0]
    assert line.startswith(f"xpm: error: no space left on the file system at {disk} ("), line
    assert f"job(s) are in {workdir / 'jobs'} (" in line
    assert f"xpm jobs list --workdir {workdir} --experiment many" in line
    assert "free space, then run the same command again" in line
    assert "unexpected" not in result.stderr
    return line


def _recovers(project: Path, disk: Path, workdir: Path, *args: str) -> None:
    """Once space is free, the same command finishes every job and the index is exact."""
    _mount("-o", "remount,size=64m", str(disk))
    again = xpm("run-experiment", "many.yaml", "--workdir", str(workdir), *args, cwd=project)
    assert again.returncode == 0, again.stderr
    listed = xpm("jobs", "list", "--workdir", str(workdir), "--format", "json", cwd=project)
    states = [job["state"] for job in json.loads(listed.stdout)]
    assert len(states) == 100 and set(states) == {"DONE"}, states
    check = xpm("index", "check", "--workdir", str(workdir), cwd=project)
    assert check.returncode == 0, check.stdout + check.stderr


def test_disk_full_while_submitting(project: Path, tmp_path: Path, mounts: list[Path]) -> None:
    (project / "many.py").write_text(textwrap.dedent(MANY))
    (project / "many.yaml").write_text("file: many\ncount: 100\n")
    disk = small_disk(tmp_path / "disk", "256k", mounts)
    workdir = disk / "workdir"
    result = xpm("run-experiment", "many.yaml", "--workdir", str(workdir), cwd=project)
    line = _disk_full_line(result, disk, workdir)
    assert "(0 bytes free)" in line
    _recovers(project, disk, workdir)


def test_disk_full_while_jobs_write(project: Path, tmp_path: Path, mounts: list[Path]) -> None:
    """Jobs fill the disk with their outputs; the experiment's own last writes fail too."""
    (project / "many.py").write_text(textwrap.dedent(MANY))
    (project / "many.yaml").write_text("file: many\ncount: 100\n")
    disk = small_disk(tmp_path / "disk", "1m", mounts)
    workdir = disk / "workdir"
    args = ("-c", "size=100000")
    result = xpm("run-experiment", "many.yaml", "--workdir", str(workdir), *args, cwd=project)
    _disk_full_line(result, disk, workdir)
    _recovers(project, disk, workdir, *args)


API_FILL = """
import sys
from pathlib import Path

from xpm import Experiment, Param, Task
from xpm.errors import StorageError


class Fill(Task):
    i: Param[int]

    def execute(self) -> None:
        pass


try:
    with Experiment(Path(sys.argv[1]), "api", "generate") as xp:
        for i in range(200):
            Fill(i=i).submit()
except StorageError as error:
    print("storage:", error)
    sys.exit(7)
"""


def test_disk_full_through_the_python_api(tmp_path: Path, mounts: list[Path]) -> None:
    """Not only the CLI: ``with Experiment(...)`` ends in a StorageError saying where the
    jobs are, never a bare OSError."""
    script = tmp_path / "fill.py"
    script.write_text(API_FILL)
    disk = small_disk(tmp_path / "disk", "128k", mounts)
    workdir = disk / "workdir"
    result = subprocess.run(
        [sys.executable, str(script), str(workdir)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 7, result.stdout + result.stderr
    assert f"no space left on the file system at {disk}" in result.stdout
    assert f"job(s) are in {workdir / 'jobs'}" in result.stdout or "no job of this run" in (
        result.stdout
    )
    assert "Traceback" not in result.stderr


def test_an_int_beyond_float_range_is_a_config_error() -> None:
    class Scaled(Task):
        factor: Param[float]

    with pytest.raises(
        ConfigError, match=r"Scaled\.factor: expected float \(this int is too large"
    ):
        Scaled(factor=10**400)
    with pytest.raises(ConfigError, match="integer"):
        Scaled(factor=10**5000)


@pytest.fixture
def readonly_workdir(indexed: Path, tmp_path: Path, mounts: list[Path]) -> Path:
    """``indexed`` seen through a read-only bind mount (a colleague's results)."""
    view = tmp_path / "readonly"
    view.mkdir()
    _mount("--bind", str(indexed), str(view))
    mounts.append(view)
    _mount("-o", "remount,bind,ro", str(view))
    with pytest.raises(OSError, match="Read-only file system"):
        (view / "probe").write_text("")
    return view


@pytest.mark.parametrize(
    "command",
    [
        ("jobs", "list"),
        ("jobs", "list", "--state", "DONE", "--format", "json"),
        ("query", "SELECT task_id, state FROM jobs"),
        ("jobs", "show", "TASK/PREFIX"),
        ("index", "check"),
    ],
    ids=["jobs-list", "jobs-list-json", "query", "jobs-show", "index-check"],
)
def test_a_readonly_workdir_can_be_read(readonly_workdir: Path, command: tuple[str, ...]) -> None:
    job = next((readonly_workdir / "jobs").glob("*/*"))
    args = [a.replace("TASK/PREFIX", f"{job.parent.name}/{job.name[:8]}") for a in command]
    result = xpm(*args, "--workdir", str(readonly_workdir), cwd=readonly_workdir)
    assert result.returncode == 0, result.stderr
    assert "hx.echo" in result.stdout or "matches" in result.stdout, result.stdout


# A process that dies with commits only in the WAL (a crashed or still running experiment).
WAL_WRITER = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("PRAGMA wal_autocheckpoint=0")
conn.execute("UPDATE jobs SET state = 'CANCELLED'")
conn.execute("CREATE TABLE padding (x)")
conn.executemany("INSERT INTO padding VALUES (?)", [("x" * 500,) for _ in range(400)])
conn.commit()
os._exit(0)
"""


def _leave_wal(workdir: Path) -> None:
    subprocess.run([sys.executable, "-c", WAL_WRITER, str(workdir / "xpm.db")], check=True)
    assert (workdir / "xpm.db-wal").stat().st_size > 0


@pytest.mark.parametrize("shm", ["kept", "gone"])
def test_a_readonly_workdir_is_read_with_its_wal(
    indexed: Path, tmp_path: Path, mounts: list[Path], shm: str
) -> None:
    """The last writes of a run that crashed (or still runs elsewhere) are in the WAL: a
    read-only mount must show them, not the older main file (``immutable`` ignored them)."""
    _leave_wal(indexed)
    if shm == "gone":
        (indexed / "xpm.db-shm").unlink()
    view = tmp_path / "readonly-wal"
    view.mkdir()
    _mount("--bind", str(indexed), str(view))
    mounts.append(view)
    _mount("-o", "remount,bind,ro", str(view))
    result = xpm("query", "SELECT state FROM jobs", "--workdir", str(view), cwd=view)
    assert result.returncode == 0, result.stderr
    assert "CANCELLED" in result.stdout and "DONE" not in result.stdout, result.stdout
    listed = xpm("jobs", "list", "--workdir", str(view), "--format", "json", cwd=view)
    assert listed.returncode == 0, listed.stderr
    assert [j["state"] for j in json.loads(listed.stdout)] == ["CANCELLED"]


def test_a_header_ahead_of_the_file_with_pages_in_the_wal_is_not_truncation(
    indexed: Path,
) -> None:
    """A checkpoint cut short (a full disk) can write the header's page count before the
    pages: SQLite reads the rest from the WAL, and so must xpm instead of refusing."""
    _leave_wal(indexed)
    db = indexed / "xpm.db"
    with open(db, "r+b") as fh:
        header = fh.read(100)
        pages = int.from_bytes(header[28:32], "big")
        fh.seek(28)
        fh.write((pages + 41).to_bytes(4, "big"))
    result = xpm(
        "query", "SELECT COUNT(*) AS n FROM padding", "--workdir", str(indexed), cwd=indexed
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "400"
    check = xpm("index", "check", "--workdir", str(indexed), cwd=indexed)
    assert "truncated" not in check.stdout + check.stderr


def test_a_readonly_workdir_can_be_served(readonly_workdir: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("XPM_")}
    env.update(PYTHONPATH=str(ROOT), XPM_GIT="off")
    command = [sys.executable, "-m", "xpm.cli", "serve", "--workdir", str(readonly_workdir)]
    log = readonly_workdir.parent / "serve.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [*command, "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # "xpm: serving ..." once listening; "" if it ended
        assert "serving" in first, log.read_text()
        url = f"http://127.0.0.1:{port}/xpm/jobs.json?_shape=array"
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - local
            rows = json.loads(response.read())
        assert [row["task_id"] for row in rows] == ["hx.echo"]
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()


def test_writing_a_readonly_workdir_is_a_storage_error(
    project: Path, readonly_workdir: Path
) -> None:
    rebuilt = xpm("index", "rebuild", "--workdir", str(readonly_workdir), cwd=project)
    assert rebuilt.returncode == 3, rebuilt.stderr
    assert "read-only file system" in rebuilt.stderr and "unexpected" not in rebuilt.stderr
    (project / "ok.yaml").write_text("file: hx\n")
    run = xpm("run-experiment", "ok.yaml", "--workdir", str(readonly_workdir), cwd=project)
    assert run.returncode == 3, run.stderr
    assert f"the file system at {readonly_workdir} is read-only" in run.stderr
