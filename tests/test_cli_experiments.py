"""``xpm experiments list`` and ``xpm experiments show`` through CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from _cli_fixtures import run, wd_fixture  # noqa: F401  (fixture wd)


def test_experiments_list_and_show(wd: Path) -> None:
    w = ["--workdir", str(wd)]
    rows = json.loads(run("experiments", "list", *w, "--format", "json").stdout)
    assert {r["name"]: r["jobs"] for r in rows} == {
        "study": {"DONE": 6},
        "broken": {"FAILED": 1},
    }
    show = run("experiments", "show", "study", *w)
    assert show.exit_code == 0, show.output
    assert "experiment study: 1 run(s), jobs done=6" in show.stdout
    assert "git: not recorded" in show.stdout

    # How each run ended, beside its jobs' states now (a later run may have rerun them).
    broken = run("experiments", "show", "broken", *w)
    assert "  outcome: 1 job(s) failed\n  its jobs now: failed=1" in broken.stdout, broken.stdout
    assert "  outcome: done\n  its jobs now: done=6" in show.stdout, show.stdout
