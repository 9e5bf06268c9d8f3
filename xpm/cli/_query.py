"""``xpm query "SQL"``: read-only SQL on the index."""

from __future__ import annotations

from pathlib import Path

import click

from ._options import workdir_option
from ._render import echo_rows, format_option


@click.command("query")
@click.argument("sql", required=False)
@workdir_option
@click.option(
    "--schema",
    is_flag=True,
    help="Print the documented schema of the index, then the task tables of this workdir.",
)
@format_option()
def query(sql: str | None, workdir: Path | None, schema: bool, fmt: str) -> None:
    """Run a read-only SQL query on the index (tables: jobs, params, tags, results, runs...).

    The database is opened read-only: a statement that would write fails (exit 2).
    Example: xpm query "SELECT state, COUNT(*) FROM jobs GROUP BY state"
    """
    from ..errors import UsageError

    if schema:
        from .._inspect import schema_text
        from .._manage import resolve_workdir

        click.echo(schema_text(resolve_workdir(workdir)))
        return
    if not sql:
        raise UsageError('give an SQL query (xpm query "SELECT ...") or --schema')
    from .._inspect import run_query
    from .._manage import resolve_workdir

    columns, rows = run_query(resolve_workdir(workdir), sql)
    echo_rows([dict(zip(columns, row, strict=True)) for row in rows], columns, fmt)
