"""The messages of a first hour with xpm: a group without its command, a typo in a command,
``launchers list``, a parameter given None."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli_fixtures import run
from click.testing import CliRunner
from xpm_test_tasks import Count

from xpm.cli import cli
from xpm.errors import ConfigError


def test_first_hour_messages(tmp_path: Path) -> None:
    """#19: `xpm jobs` alone printed its help as an error; `xpm job` got no suggestion;
    `launchers list` showed 24683792KiB and one accelerator per unit; `got NoneType None`."""
    alone = CliRunner().invoke(cli, ["jobs"], prog_name="xpm")
    assert alone.exit_code == 2
    assert alone.stdout.startswith("Usage: xpm jobs") and "xpm: error" not in alone.output
    typo = CliRunner().invoke(cli, ["job", "list"], prog_name="xpm")
    assert typo.exit_code == 2
    assert typo.stderr.strip() == (
        "xpm: error: No such command 'job'. Did you mean 'jobs'? (see 'xpm --help')"
    )
    assert "Did you mean 'list'?" in run("jobs", "lst").stderr

    hosts = tmp_path / "launchers.yaml"
    hosts.write_text(
        "hosts:\n  - {name: gpu, type: slurm, cpus: 8, memory: 256G,\n"
        "     accelerators: [{type: cuda, memory: 16G, count: 4}]}\n"
        "  - {name: odd, type: local, memory: 24683792KiB}\n"
    )
    table = CliRunner().invoke(cli, ["launchers", "list"], env={"XPM_LAUNCHERS": str(hosts)})
    assert table.exit_code == 0, table.output
    assert "cuda(mem=16G) * 4" in table.stdout and table.stdout.count("cuda") == 1
    assert " 256G " in table.stdout and "23.5GiB" in table.stdout and "KiB" not in table.stdout
    as_json = CliRunner().invoke(
        cli, ["launchers", "list", "--format", "json"], env={"XPM_LAUNCHERS": str(hosts)}
    )
    assert json.loads(as_json.stdout)[1]["memory"] == "24683792KiB"  # exact for scripts

    with pytest.raises(ConfigError) as error:
        Count(n=None)
    assert str(error.value).endswith("got None")
