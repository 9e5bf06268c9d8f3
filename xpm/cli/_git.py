"""``xpm reproduce``, ``xpm gc-refs`` and ``xpm hooks install|uninstall``: git provenance."""

from __future__ import annotations

from pathlib import Path

import click

from ._options import workdir_option


def _repo(given: Path | None) -> str:
    from ..errors import UsageError
    from ..git import repo_root

    where = given if given is not None else Path.cwd()
    root = repo_root(where)
    if root is None:
        raise UsageError(f"{where} is not inside a git repository: give --repo DIR")
    return root


@click.command("reproduce")
@click.argument("job")
@workdir_option
@click.option(
    "--dir",
    "dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="New directory for the worktree [default: <project>-reproduce-<id> beside the git "
    "repository holding the workdir, else reproduce-<id> beside the workdir].",
)
def reproduce(job: str, workdir: Path | None, dest: Path | None) -> None:
    """Check the exact code of a job out into a fresh git worktree (the dirty snapshot when
    the tree was dirty) and print the command that reruns the job there, into a separate
    workdir (<dir>.workdir)."""
    from .._jobdir import JobDir
    from ..git import reproduce as reproduce_job
    from ..workdir import existing_workdir, find_job, reproduction_dir

    wd = existing_workdir(workdir)
    found = find_job(wd, job)
    target = dest if dest is not None else reproduction_dir(wd, found["id"])
    if dest is None:
        click.echo(f"# worktree at {target} (outside the project: its next run stays clean)")
    result = reproduce_job(JobDir(wd, found["task_id"], found["id"]).path, target)
    for command in result.commands:
        click.echo(command if command.startswith("#") else f"$ {command}")
    for repo, tree in result.worktrees.items():
        click.echo(f"code of {repo} -> {tree}")
    if result.rerun:
        click.echo(f"rerun it with:\n  {result.rerun}")


@click.command("gc-refs")
@workdir_option
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Repository whose pins to clean [default: the one holding the current directory].",
)
@click.option("--dry-run", is_flag=True, help="Only show the refs that would be removed.")
def gc_refs(workdir: Path | None, repo: Path | None, dry_run: bool) -> None:
    """Remove the pins (refs/xpm/...) of experiment runs of this workdir that are gone."""
    from ..git import gc_refs as gc
    from ..workdir import resolve_workdir

    removed = gc(resolve_workdir(workdir), _repo(repo), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for ref in removed:
        click.echo(f"{verb} {ref}")
    if not removed:
        click.echo("no pin to remove: the runs of this workdir that made pins still exist")
    else:
        click.echo(f"{verb} {len(removed)} pin{'' if len(removed) == 1 else 's'}")


@click.group("hooks")
def hooks() -> None:
    """Install or remove xpm's git hooks (post-rewrite, post-commit) in a repository."""


@hooks.command("install")
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Repository [default: the one holding the current directory].",
)
def install(repo: Path | None) -> None:
    """Install the hooks; existing hooks are kept and run first (chained)."""
    from ..git import install as install_hooks

    for action in install_hooks(_repo(repo)):
        click.echo(action)


@hooks.command("uninstall")
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Repository [default: the one holding the current directory].",
)
def uninstall(repo: Path | None) -> None:
    """Remove xpm's hooks and restore the hooks they chained."""
    from ..git import uninstall as uninstall_hooks

    for action in uninstall_hooks(_repo(repo)):
        click.echo(action)


__all__ = ["gc_refs", "hooks", "reproduce"]
