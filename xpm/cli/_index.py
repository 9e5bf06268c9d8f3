"""``xpm index rebuild|check``: the SQLite index of a workdir."""

from __future__ import annotations

from pathlib import Path

import click

from ._options import workdir_option


@click.group("index")
def index() -> None:
    """Rebuild or check the index (WORKDIR/xpm.db, or $XPM_INDEX)."""


@index.command("rebuild")
@workdir_option
def rebuild(workdir: Path | None) -> None:
    """Recreate the index from the job directories and experiment-run records."""
    from ..index import index_path
    from ..index import rebuild as rebuild_index
    from ..workdir import existing_workdir

    wd = existing_workdir(workdir)
    counts = rebuild_index(wd)
    click.echo(
        f"rebuilt {index_path(wd)}: {counts.get('jobs', 0)} jobs, {counts.get('runs', 0)} runs, "
        f"{counts.get('results', 0)} results"
    )


@index.command("check")
@workdir_option
def check(workdir: Path | None) -> None:
    """Compare the index with the job directories and run records; exit 1 when they differ."""
    from ..index import check as check_index
    from ..workdir import existing_workdir

    problems = check_index(existing_workdir(workdir))
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} mismatch(es): fix them with `xpm index rebuild`", err=True)
        raise click.exceptions.Exit(1)
    click.echo("the index matches the job directories")
