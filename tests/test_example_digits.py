"""The README's first command: the digits hyper-parameter search, through the real `xpm`."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits"

pytest.importorskip(
    "sklearn", reason="the examples extra is not installed: pip install -e '.[examples]'"
)


def xpm(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("xpm")
    argv = [exe] if exe else [sys.executable, "-m", "xpm.cli"]
    return subprocess.run(
        [*argv, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        # This repository's xpm, whichever one the `xpm` script was installed from.
        env={
            **os.environ,
            "XPM_LAUNCHERS": str(EXAMPLE / "launchers.yaml"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        },
    )


@pytest.mark.slow
def test_digits_debug_search_reports_one_accuracy_per_point(tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    result = xpm(
        "run-experiment", "--workdir", str(workdir), str(EXAMPLE / "debug.yaml"), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with sqlite3.connect(workdir / "xpm.db") as db:
        rows = db.execute(
            "SELECT json_extract(tags, '$.n_layers'), json_extract(tags, '$.hidden'),"
            " json_extract(results, '$.accuracy') FROM job_summary"
            " WHERE task_id = 'tasks.evaluate'"
        ).fetchall()
    points = {(n, h) for n, h, _ in rows}
    assert points == {(1, 16), (1, 64), (2, 16), (2, 64)}  # debug.yaml's sweep
    assert all(isinstance(acc, float) and acc > 0.5 for _n, _h, acc in rows), rows
    # A second run finds everything done and runs nothing.
    again = xpm(
        "run-experiment", "--workdir", str(workdir), str(EXAMPLE / "debug.yaml"), cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert "0 done, 8 already done, 0 failed" in again.stderr


@pytest.mark.slow
def test_readme_first_command_runs_and_shows_the_results(tmp_path: Path) -> None:
    """The README's set-up command, as written, from the repository's root."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = next(
        line for line in readme.splitlines() if line.startswith("pip install -e '.[examples]'")
    )
    steps = command.split(" && ")
    assert steps[1] == "xpm run-experiment examples/digits/debug.yaml"
    # Same commands in a copy of the layout: a git repository's root, whose xpm-workdir is
    # the default workdir of both commands.
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    run = xpm("run-experiment", "examples/digits/debug.yaml", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert steps[2].startswith("xpm results ")
    shown = xpm(*steps[2].split()[1:], "--format", "csv", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    rows = shown.stdout.strip().splitlines()
    assert rows[0] == "n_layers,hidden,accuracy"
    accuracies = [float(r.split(",")[2]) for r in rows[1:]]
    assert len(rows) == 5 and all(a > 0.5 for a in accuracies)
    assert accuracies == sorted(accuracies, reverse=True)  # --sort -accuracy
