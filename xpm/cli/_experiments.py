"""``xpm experiments list|show``: the experiments of a workdir and their runs."""

from __future__ import annotations

from pathlib import Path

import click

from ._options import when, workdir_option
from ._render import echo_json, echo_rows, format_option


@click.group("experiments")
def experiments() -> None:
    """List experiments and show their runs."""


def _counts(counts: dict[str, int]) -> str:
    from .._vocabulary import shown_counts

    shown = shown_counts(counts)
    return " ".join(f"{state.lower()}={n}" for state, n in sorted(shown.items())) or "-"


@experiments.command("list")
@workdir_option
@format_option()
def list_(workdir: Path | None, fmt: str) -> None:
    """List experiments: number of runs, first and last start, jobs by state."""
    from ..index import index_path
    from ..workdir import existing_workdir, list_experiments, no_index_hint

    where = existing_workdir(workdir)
    rows = list_experiments(where)
    if not rows and not index_path(Path(where)).exists():
        click.echo(f"xpm: {no_index_hint(Path(where))}", err=True)
    if fmt == "table":
        for row in rows:
            row["first_start"] = when(row["first_start"])
            row["last_start"] = when(row["last_start"])
            row["jobs"] = _counts(row["jobs"])
    echo_rows(rows, ("name", "runs", "first_start", "last_start", "jobs"), fmt)


@experiments.command("show")
@click.argument("name")
@workdir_option
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON object.")
def show(name: str, workdir: Path | None, as_json: bool) -> None:
    """Show an experiment: its runs (newest first) with their git state, job counts by
    state, and the commands that check the code of each run out."""
    from ..workdir import existing_workdir, experiment_details

    details = experiment_details(existing_workdir(workdir), name)
    if as_json:
        echo_json(details)
        return
    exp = details["experiment"]
    out = [
        f"experiment {exp['name']}: {exp['runs']} run(s), jobs {_counts(details['jobs'])}",
    ]
    for run in details["runs"]:
        ended = when(run["end_time"]) or "not ended"
        out += [
            "",
            f"run {run['run_id']} ({run['run_mode']}) on {run['host'] or '?'} by "
            f"{run['user'] or '?'}: {when(run['start_time'])} -> {ended}",
        ]
        if run.get("outcome"):  # how the run ended: its jobs may have run again since
            out.append(f"  outcome: {run['outcome']}")
        out.append(f"  its jobs now: {_counts(run['jobs'])}")
        for g in run["git"]:
            state = f"dirty, snapshot {g['snapshot']}" if g["dirty"] else "clean"
            out.append(f"  git: {g['repo']} commit {g['commit']} ({g['branch'] or '-'}, {state})")
        if not run["git"]:
            out.append("  git: not recorded")
        for command in run["checkout"]:
            out.append(f"  checkout: {command}")
    click.echo("\n".join(out))
