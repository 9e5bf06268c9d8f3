"""What a job process sees: the running task, its environment, its files."""

from __future__ import annotations

import json
from pathlib import Path

from xpm_test_tasks import ReportWithFunction

from xpm._experiment import experiment


def test_module_level_report_finds_the_running_task(workdir: Path) -> None:
    # `python -m xpm.run` runs xpm/run.py as __main__: the running task must be found by
    # user code importing xpm, not only by the __main__ copy of the module.
    with experiment(workdir, "xp", progress=False):
        out = ReportWithFunction(x=4).submit()
    rows = [json.loads(line) for line in out.__xpm_jobdir__.results.read_text().splitlines()]
    assert [(r["step"], r["values"]) for r in rows] == [(1, {"value": 40})]
