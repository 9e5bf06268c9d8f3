"""``xpm results [TASK]``: the results of a sweep as one table."""

from __future__ import annotations

from pathlib import Path

import click

from ._options import workdir_option
from ._render import echo_results, format_option


@click.command("results")
@click.argument("task", required=False)
@workdir_option
@click.option("--experiment", help="Only jobs submitted by a run of this experiment.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only jobs with this tag value (repeatable; all must match).",
)
@click.option(
    "--where",
    multiple=True,
    metavar="EXPR",
    help="Comparisons on any column, joined by commas or 'and' (repeatable): "
    '"lr>0.01, optimizer=adam"; operators = != < <= > >=; quote text with spaces '
    "(name='a b') and column names with odd characters (\"tag:lr\"=0.1); null matches "
    "missing values. When no job matches, stderr says which condition left nothing and "
    "what its column holds.",
)
@click.option(
    "--sort",
    metavar="[-]COLUMN,...",
    help="Sort by these columns (-COLUMN: descending); missing values last. Default: oldest first.",
)
@click.option(
    "--columns",
    metavar="COLUMN,...",
    help="Columns to show ('*': all). Default: id, state, tags, parameters that vary "
    "(Meta parameters only when named), results, duration.",
)
@click.option(
    "--group-by", metavar="COLUMN,...", help="One row per value of these columns (e.g. lr)."
)
@click.option(
    "--agg",
    metavar="FUNC,...",
    help="With --group-by: mean, std, min, max, median, count (of values: a job without the "
    "result is not counted) of every result (or of --columns), as COLUMN_FUNC columns "
    "[default: mean,std,count].",
)
@format_option()
def results(
    task: str | None,
    workdir: Path | None,
    experiment: str | None,
    tags: tuple[str, ...],
    where: tuple[str, ...],
    sort: str | None,
    columns: str | None,
    group_by: str | None,
    agg: str | None,
    fmt: str,
) -> None:
    """The results of a sweep as one table: a row per job of TASK, a column per tag,
    varying parameter and latest result.

    TASK: a task id, its last part (evaluate) or its table name; may be left out when only
    one task has results. Numbers are rounded in a table, given whole in json and csv.

    Example: xpm results evaluate --where "lr>0.01" --sort -accuracy;
    xpm results train --group-by lr --agg mean,std,count
    """
    from ..index import results as query
    from ..workdir import JobFilter, existing_workdir, no_match_hints, parse_tags

    wd = existing_workdir(workdir)
    rows = query(
        wd,
        task,
        experiment=experiment,
        tags=parse_tags(tags),
        where=list(where),
        sort=sort,
        columns=columns,
        group_by=group_by,
        agg=agg,
    )
    echo_results(rows, rows.columns, fmt)
    if rows.unmatched:  # which filter left nothing (stderr: json and csv stay clean)
        click.echo(f"xpm: no job matches: {'; '.join(rows.unmatched)}", err=True)
    if not rows and experiment:  # a typo in the experiment's name: say which one was meant
        for hint in no_match_hints(wd, JobFilter(experiment=experiment)):
            click.echo(f"xpm: {hint}", err=True)
