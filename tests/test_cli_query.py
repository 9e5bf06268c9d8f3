"""``xpm query`` through CliRunner: formats, parameters, stdin, the schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli_fixtures import run, wd_fixture  # noqa: F401  (fixture wd)
from click.testing import CliRunner

from xpm.cli import cli
from xpm.errors import UsageError


def test_query_formats_and_schema(wd: Path) -> None:
    w = ["--workdir", str(wd)]
    sql = "SELECT key, ROUND(value, 2) AS v FROM latest_results WHERE key = 'accuracy' ORDER BY v"
    table = run("query", sql, *w)
    assert table.exit_code == 0 and "accuracy" in table.stdout
    rows = json.loads(run("query", sql, *w, "--format", "json").stdout)
    assert rows == [{"key": "accuracy", "v": 0.7}, {"key": "accuracy", "v": 0.8}]
    assert run("query", sql, *w, "--format", "csv").stdout.splitlines() == [
        "key,v",
        "accuracy,0.7",
        "accuracy,0.8",
    ]
    schema = run("query", "--schema")
    assert schema.exit_code == 0
    assert "### Table `jobs`" in schema.stdout and "### View `job_summary`" in schema.stdout


def test_query_parameters_stdin_and_hints(wd: Path) -> None:
    """#19: the cookbook's :commit query could not be run from `xpm query`."""
    w = ["--workdir", str(wd)]
    sql = "SELECT task_id FROM jobs WHERE task_id LIKE :task || '%' AND attempt >= :n ORDER BY 1"
    args = ["--format", "csv", "--param", "task=xpm_test_tasks.l", "--param", "n=1"]
    rows = run("query", sql, *w, *args)
    assert rows.exit_code == 0, rows.output
    assert rows.stdout.splitlines() == ["task_id", "xpm_test_tasks.learn", "xpm_test_tasks.learn"]
    piped = CliRunner().invoke(cli, ["query", "-", *w, *args], input=sql)
    assert piped.exit_code == 0, piped.output
    assert piped.stdout == rows.stdout
    missing = run("query", sql, *w, "--param", "n=1")
    assert missing.exit_code == 2
    assert missing.stderr.strip().endswith("give it with --param task=VALUE")
    assert "--schema" not in missing.stderr
    bad = run("query", sql, *w, "--param", "n")
    assert bad.exit_code == 2 and "--param 'n': write NAME=VALUE" in bad.stderr
    from xpm.cli._query import parse_query_params

    assert parse_query_params(["a=3", "b=-0.5", "c=0123", "d=1e5", "e=x=y"]) == {
        "a": 3, "b": -0.5, "c": "0123", "d": "1e5", "e": "x=y"
    }  # fmt: skip
    schema = run("query", "--schema")
    assert schema.stdout.startswith("Schema version") and "<!--" not in schema.stdout
    with pytest.raises(UsageError, match=r"n=1\.0e400: beyond the range of a float"):
        parse_query_params(["n=1.0e400"])  # it was bound as the text '1.0e400'


def test_schema_says_why_the_task_tables_are_missing(wd: Path, tmp_path: Path) -> None:
    """A damaged index or a broken xpm.db link printed the schema without the workdir's
    task tables, as if it had none."""
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "xpm.db").symlink_to("xpm.db")
    shown = run("query", "--schema", "--workdir", str(linked))
    assert shown.exit_code == 0
    assert "The task tables of this workdir are not listed: " in shown.stdout
    assert "symbolic link to xpm.db that loops" in shown.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    plain = run("query", "--schema", "--workdir", str(empty))
    assert "not listed" not in plain.stdout  # no index yet: nothing to explain
