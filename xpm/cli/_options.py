"""Options shared by the job commands: ``--workdir`` and the job filters; value formatting."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .._humanize import duration, event_text, short_value, size  # noqa: F401 - the CLI's formats
from .._vocabulary import FILTER_STATES, stored_state

F = TypeVar("F", bound=Callable[..., Any])


def workdir_option(f: F) -> F:
    """``--workdir DIR`` (default: $XPM_WORKDIR, else xpm-workdir at the git root, else here)."""
    return click.option(
        "--workdir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Workdir [default: $XPM_WORKDIR, else xpm-workdir at the root of the current "
        "git repository, else ./xpm-workdir].",
    )(f)


def filter_options(f: F) -> F:
    """The job filters: --state, --task, --tag, --experiment, --since, --commit."""
    options = [
        click.option(
            "--state",
            "states",
            multiple=True,
            type=click.Choice(FILTER_STATES, case_sensitive=False),
            help="Only jobs in this state (repeatable).",
        ),
        click.option("--task", help="Only jobs of this task (its id or last part: learn)."),
        click.option(
            "--tag",
            "tags",
            multiple=True,
            metavar="KEY=VALUE",
            help="Only jobs with this tag value (repeatable; all must match).",
        ),
        click.option("--experiment", help="Only jobs submitted by a run of this experiment."),
        click.option(
            "--since",
            metavar="WHEN",
            help="Only jobs active since WHEN: 30m, 2h, 3d, 1w, or a date/time (2025-01-31).",
        ),
        click.option(
            "--commit",
            metavar="REV",
            help="Only jobs run at this commit (also its amended/rebased versions, as "
            "recorded by the git hooks).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def make_filter(
    states: tuple[str, ...],
    task: str | None,
    tags: tuple[str, ...],
    experiment: str | None,
    since: str | None,
    commit: str | None,
    limit: int | None = None,
) -> Any:
    """A :class:`xpm.workdir.JobFilter` from the filter options."""
    from ..workdir import JobFilter, parse_since, parse_tags

    if since:
        parse_since(since)  # a bad value is an error even when no job would be read
    return JobFilter(
        states=sorted({stored_state(s) for s in states}),
        task=task,
        tags=parse_tags(tags),
        experiment=experiment,
        since=since,
        commit=commit,
        limit=limit,
    )


def when(ts: float | None) -> str:
    """A Unix time as local ``YYYY-MM-DD HH:MM:SS`` ('' for None)."""
    if ts is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
