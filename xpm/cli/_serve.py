"""``xpm serve``: browse the index of a workdir in Datasette (read-only)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("serve")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Workdir whose index to serve [default: $XPM_WORKDIR, else xpm-workdir at the root "
    "of the current git repository, else ./xpm-workdir].",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8001,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; the default serves this machine only.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a web browser.")
def serve(workdir: Path | None, port: int, host: str, open_browser: bool) -> None:
    """Browse jobs, results and charts of the index in Datasette (read-only).

    Pages: the jobs table with facets on task, state, experiment and tags; canned
    queries (recent and failed jobs, sweeps, comparisons, jobs of a commit); a page
    per job (/-/xpm/job/ID) and charts of a result against a tag or a step
    (/-/xpm/chart).  Stop it with Ctrl-C.
    """
    from ..datasette import serve as run_server
    from ..experiments import resolve_workdir

    def ready(url: str) -> None:
        click.echo(f"xpm: serving {url} (Ctrl-C to stop)", err=False)

    try:
        run_server(
            resolve_workdir(workdir, None),
            host=host,
            port=port,
            open_browser=open_browser,
            on_ready=ready,
        )
    except KeyboardInterrupt:  # Ctrl-C is how a user stops it: not an error
        click.echo("xpm: stopped", err=True)
