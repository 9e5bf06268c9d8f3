"""The code an experiment records is its own, never xpm's, however xpm is started (#21)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _gitrepo import git_out, git_recording, make_repo  # noqa: F401  (autouse fixture)
from conftest import ROOT

MODULE = """
from pathlib import Path

from xpm import Param, Task
from xpm.experiments import ExperimentHelper, configuration


class Write(Task):
    n: Param[int]

    def execute(self) -> None:
        Path("out.txt").write_text(str(self.n))


@configuration
class Configuration:
    n: int


def run(helper: ExperimentHelper, cfg: Configuration) -> None:
    Write(n=cfg.n).submit()
"""


def xpm_refs() -> set[str]:
    """The refs xpm pins (refs/xpm/...) in xpm's own repository."""
    out = git_out(ROOT, "for-each-ref", "--format=%(refname)", "refs/xpm")
    return set(out.stdout.split())


def test_python_m_xpm_cli_records_the_experiments_repository_not_xpms(tmp_path: Path) -> None:
    # The real situation: xpm's source is a git checkout, on the path of `python -m`
    # (as an editable install puts it); the experiment lives in a repository of its own.
    assert (ROOT / ".git").exists() and (ROOT / "xpm" / "cli" / "__main__.py").is_file()
    project = make_repo(
        tmp_path / "project",
        {"experiment.py": MODULE, "exp.yaml": "file: experiment\nn: 3\nworkdir: wd\n"},
    )
    before = xpm_refs()
    run = subprocess.run(
        [sys.executable, "-m", "xpm.cli", "run-experiment", "exp.yaml"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT), "XPM_GIT": "on"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    (record,) = (project / "wd" / "experiments" / "exp" / "runs").glob("*[0-9].json")
    states = json.loads(record.read_text())["git"]
    repos = [Path(s["repo"]).resolve() for s in states]
    assert repos == [project.resolve()], repos
    assert ROOT.resolve() not in repos
    # Nothing pinned in xpm's repository; the experiment's run is pinned in its own.
    assert xpm_refs() == before
    pinned = git_out(project, "for-each-ref", "--format=%(refname)", "refs/xpm").stdout
    assert "refs/xpm/runs/" in pinned
