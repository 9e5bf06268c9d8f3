"""``xpm jobs list --watch`` in a real pseudo-terminal (tmux), with real running jobs (#19)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
ROOT = TESTS.parent

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

TASKS = '''
import time
from pathlib import Path

from xpm import Meta, Param, Task


class Train(Task):
    """Reports a loss at step 3, then waits for its gate file before the last report."""

    n: Param[int]
    gate: Meta[str] = ""

    def execute(self) -> None:
        self.report(loss=1.5, step=3)
        while self.gate and not Path(self.gate).exists():
            time.sleep(0.05)
        self.report(loss=0.25, step=4)
'''

SCRIPT = """
import sys
from xpm import experiment, tag
from livetasks import Train

gate, count = sys.argv[2], int(sys.argv[3])
with experiment(sys.argv[1], "live", max_parallel=1, progress=False):
    for n in range(count):
        Train(n=tag(n), gate=gate).submit()
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XPM_")}
    env.update(PYTHONPATH=str(ROOT), XPM_GIT="off")
    return env


def wait_for(
    what: str, check: Callable[[], bool], seen: Callable[[], str] = str, seconds: float = 120
) -> None:
    """Poll ``check`` until true (never a test of speed: the deadline is only a backstop)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; seen:\n{seen()}")
        time.sleep(0.1)


class Tmux:
    """A detached tmux server of its own (its own socket) running one command."""

    def __init__(self, tmp: Path, command: str, width: int = 110, height: int = 16) -> None:
        self.socket = str(tmp / "tmux.sock")
        self.log = tmp / "pane.bytes"
        self.tmux("new-session", "-d", "-s", "w", "-x", str(width), "-y", str(height), command)
        # Every byte the command writes to its terminal, to check how frames are drawn.
        self.tmux("pipe-pane", "-t", "w", "-o", f"cat >> {shlex.quote(str(self.log))}")

    def tmux(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-S", self.socket, *args], capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "w")

    def kill(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "livetasks.py").write_text(textwrap.dedent(TASKS))
    (tmp_path / "live.py").write_text(textwrap.dedent(SCRIPT))
    yield tmp_path


def test_watch_refreshes_in_place_and_quits_on_ctrl_c(project: Path) -> None:
    workdir, gate = project / "wd", project / "gate"
    experiment = subprocess.Popen(
        [sys.executable, "live.py", str(workdir), str(gate), "30"],
        cwd=project,
        env={**_env(), "PYTHONPATH": os.pathsep.join([str(project), str(ROOT)])},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for("the index", lambda: (workdir / "xpm.db").exists())
    command = (
        f"cd {shlex.quote(str(project))} && env PYTHONPATH={shlex.quote(str(ROOT))} "
        f"{shlex.quote(sys.executable)} -m xpm.cli jobs list --watch --interval 0.2 "
        f"--workdir {shlex.quote(str(workdir))}; echo EXIT=$?; sleep 600"
    )
    term = Tmux(project, command)
    try:
        # The running job comes first, with its latest report read from its directory.  (On
        # a loaded machine the job may report before the experiment has recorded all 30.)
        wait_for(
            "a running job's step and loss, all 30 jobs recorded",
            lambda: " 3 " in (s := term.screen()) and "loss=1.5" in s and "30 jobs:" in s,
            term.screen,
        )
        screen = term.screen().splitlines()
        assert screen[0].startswith(f"xpm jobs: {workdir}")
        assert screen[1].startswith("30 jobs: 1 RUNNING")
        assert screen[3].split() == [
            "ID",
            "TASK",
            "STATE",
            "ELAPSED",
            "STEP",
            "LATEST",
            "RESULTS",
            "TAGS",
        ]
        running = screen[4].split()
        assert running[1:3] == ["train", "RUNNING"] and running[4:6] == ["3", "loss=1.5"]
        # 16 lines: 4 of heading, 11 jobs, one line for the rest: only visible rows are read.
        assert len(term.screen().rstrip("\n").splitlines()) == 16
        assert screen[15].startswith("... 19 more job(s) not shown")

        gate.write_text("go")  # every job finishes; the same screen follows them
        assert experiment.wait(timeout=300) == 0
        wait_for("the end of every job", lambda: "30 jobs: 30 DONE" in term.screen(), term.screen)
        assert "loss=0.25" in term.screen() and "RUNNING" not in term.screen()

        term.tmux("send-keys", "-t", "w", "C-c")
        wait_for("the exit status", lambda: "EXIT=" in term.screen(), term.screen)
        after = term.screen()
        assert "EXIT=0" in after
        assert f"xpm: 30 jobs (30 DONE) in {workdir}" in after
        assert "LATEST RESULTS" not in after  # the shell's screen is back
        raw = term.log.read_bytes()
        assert raw.startswith(b"\x1b[?1049h")  # the alternate screen, left at the end
        assert b"\x1b[?1049l" in raw and b"\x1b[?25h" in raw  # and the cursor shown again
        assert b"\x1b[2J" not in raw  # frames overwrite each other: never a blank screen
        assert raw.count(b"\x1b[H") > 2
    finally:
        term.kill()
        gate.write_text("go")  # a job left running (it has its own session) ends too
        if experiment.poll() is None:
            experiment.kill()
            experiment.wait()


def test_watch_needs_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "wd").mkdir()
    args = ["-m", "xpm.cli", "jobs", "list", "--watch", "--workdir", str(tmp_path / "wd")]
    result = subprocess.run(
        [sys.executable, *args], env=_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "xpm: error: --watch redraws a terminal, and stdout is not one: drop --watch to print once"
    )


def test_latest_report_keeps_each_keys_latest_value(tmp_path: Path) -> None:
    """A trial: a job reporting `loss` and `grad_norm` each step and `lr_now` apart showed
    only `lr_now` (the last line's values)."""
    from xpm._watch import latest_report

    path = tmp_path / "results.jsonl"
    lines = [
        {"step": 0, "values": {"loss": 0.9, "grad_norm": 3.0}},
        {"step": 1, "values": {"loss": 0.5, "grad_norm": 2.0}},
        {"step": None, "values": {"lr_now": 0.01}},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"step": 2, "val')
    assert latest_report(path) == {
        "step": 1,
        "values": {"lr_now": 0.01, "loss": 0.5, "grad_norm": 2.0},
    }
    assert latest_report(tmp_path / "missing.jsonl") is None
