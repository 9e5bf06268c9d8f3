"""Helpers for the CliRunner tests of the ``xpm`` commands (tests/test_cli_*.py).

``run`` invokes the command line in-process; the ``wd`` fixture is a workdir made by real
experiments (real job processes, a real SQLite index); ``ids`` and ``job_of`` read job
identifiers back.  A test module gets the ``wd`` fixture by importing ``wd_fixture`` (named
so that the tests' ``wd`` parameter does not redefine the import)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from xpm_test_tasks import Count, Evaluate, Fail, Learn, Model, Uses

from xpm import experiment, tag
from xpm.cli import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(name="wd")
def wd_fixture(workdir: Path) -> Path:
    """A workdir with learn/evaluate jobs (tagged), a failed job and a dependency."""
    with experiment(workdir, "study") as xp:
        for n in (2, 3):
            learned = Learn(model=Model(n_layers=tag(n)), epochs=1).submit()
            Evaluate(model=learned).submit()
        upstream = Count(n=tag(7)).submit()
        Uses(upstream=upstream).submit()
        xp.wait()
    with pytest.raises(Exception, match="failed"), experiment(workdir, "broken"):
        Fail().submit()
    return workdir


def ids(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [j["id"] for j in json.loads(result.stdout)]


def job_of(workdir: Path, task: str) -> str:
    (path,) = (workdir / "jobs" / f"xpm_test_tasks.{task}").iterdir()
    return path.name
