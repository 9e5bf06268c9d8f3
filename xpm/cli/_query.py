"""``xpm query "SQL"``: read-only SQL on the index."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ._options import workdir_option
from ._render import echo_rows, format_option


@click.command("query")
@click.argument("sql", metavar="[SQL|-]", required=False)
@workdir_option
@click.option(
    "--param",
    "params",
    metavar="NAME=VALUE",
    multiple=True,
    help="A value for :NAME in the SQL (integers and decimals such as 3, -0.5 or 1.0e20 bound as numbers, the rest as text).  Repeatable.",
)
@click.option(
    "--schema",
    is_flag=True,
    help="Print the documented schema of the index, then the task tables of this workdir.",
)
@format_option()
def query(
    sql: str | None, workdir: Path | None, params: tuple[str, ...], schema: bool, fmt: str
) -> None:
    """Run a read-only SQL query on the index (tables: jobs, params, tags, results, runs...).

    The database is opened read-only: a statement that would write fails (exit 2).  First,
    as `xpm jobs list` does, xpm records what running jobs (of a detached run too) did
    since.  SQL is read from stdin when given as -.  Examples:
    xpm query "SELECT state, COUNT(*) FROM jobs GROUP BY state";
    xpm query --param commit=3fa2 - < jobs-of-a-commit.sql
    """
    from ..errors import UsageError

    if schema:
        from ..index import schema_text
        from ..workdir import resolve_workdir

        click.echo(schema_text(resolve_workdir(workdir)))
        return
    if sql == "-":
        sql = click.get_text_stream("stdin").read()
    if not sql or not sql.strip():
        raise UsageError('give an SQL query (xpm query "SELECT ...", or - to read it from stdin)')
    from ..index import run_query
    from ..workdir import resolve_workdir

    columns, rows = run_query(resolve_workdir(workdir), sql, parse_query_params(params))
    echo_rows([dict(zip(columns, row, strict=True)) for row in rows], columns, fmt)


_INTEGER = re.compile(r"^-?(0|[1-9][0-9]*)$")

_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]*)\.[0-9]+([eE][-+]?[0-9]+)?$")


def parse_query_params(items: Sequence[str]) -> dict[str, Any]:
    """``--param name=value`` options as SQL parameters: integers and decimal numbers
    (``3``, ``-2``, ``0.5``) are bound as numbers, so ``value > :n`` compares numbers;
    anything else, a leading zero (``0123``, a commit prefix) included, as text.  Integers
    beyond SQLite's 64 bits are refused (:class:`UsageError`)."""
    from ..errors import UsageError

    params: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().lstrip(":")
        if not sep or not name.isidentifier():
            raise UsageError(
                f"--param {item!r}: write NAME=VALUE for a :NAME in the SQL (e.g. --param commit=3fa2)"
            )
        value: Any = text
        if _INTEGER.match(text):
            digits = len(text.lstrip("+-"))
            if digits > 19 or not -(2**63) <= int(text) < 2**63:
                shown = text if len(text) <= 30 else f"{text[:20]}...({len(text)} characters)"
                raise UsageError(
                    f"--param {name}={shown}: an integer beyond SQLite's 64 bits (at most "
                    f"{2**63 - 1}); write it as a decimal (e.g. 1.0e20) to compare as a float"
                )
            value = int(text)
        elif _DECIMAL.match(text):
            value = float(text)
            if value in (float("inf"), float("-inf")):
                raise UsageError(
                    f"--param {name}={text}: beyond the range of a float (about 1.8e308)"
                )
        params[name] = value
    return params
