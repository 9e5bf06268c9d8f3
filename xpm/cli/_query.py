"""``xpm query "SQL"``: read-only SQL on the index."""

from __future__ import annotations

from pathlib import Path

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

    The database is opened read-only: a statement that would write fails (exit 2).  SQL
    is read from stdin when given as -.  Examples:
    xpm query "SELECT state, COUNT(*) FROM jobs GROUP BY state";
    xpm query --param commit=3fa2 - < jobs-of-a-commit.sql
    """
    from ..errors import UsageError

    if schema:
        from .._inspect import schema_text
        from .._manage import resolve_workdir

        click.echo(schema_text(resolve_workdir(workdir)))
        return
    if sql == "-":
        sql = click.get_text_stream("stdin").read()
    if not sql or not sql.strip():
        raise UsageError('give an SQL query (xpm query "SELECT ...", or - to read it from stdin)')
    from .._inspect import parse_query_params, run_query
    from .._manage import resolve_workdir

    columns, rows = run_query(resolve_workdir(workdir), sql, parse_query_params(params))
    echo_rows([dict(zip(columns, row, strict=True)) for row in rows], columns, fmt)
