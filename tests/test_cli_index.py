"""``xpm index check`` and ``xpm index rebuild`` through CliRunner."""

from __future__ import annotations

from pathlib import Path

from _cli_fixtures import job_of, run, wd_fixture  # noqa: F401  (fixture wd)

from xpm._jobdir import JobDir


def test_index_check_and_rebuild(wd: Path) -> None:
    w = ["--workdir", str(wd)]
    ok = run("index", "check", *w)
    assert ok.exit_code == 0 and "matches" in ok.stdout
    fail = job_of(wd, "fail")
    import shutil

    shutil.rmtree(JobDir(wd, "xpm_test_tasks.fail", fail).path)
    bad = run("index", "check", *w)
    assert bad.exit_code == 1 and f"missing-dir: xpm_test_tasks.fail/{fail}" in bad.stdout
    rebuilt = run("index", "rebuild", *w)
    assert rebuilt.exit_code == 0 and "6 jobs" in rebuilt.stdout
    assert run("index", "check", *w).exit_code == 0
