"""``xpm jobs list|show|log|path|kill|clean``: the jobs of a workdir."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from .._vocabulary import UNSUCCESSFUL_STATES, shown_counts, shown_state
from ._options import (
    duration,
    event_text,
    filter_options,
    make_filter,
    short_value,
    size,
    when,
    workdir_option,
)
from ._render import echo_json, echo_rows, format_option

LIST_COLUMNS = ("id", "task", "state", "tags", "start", "duration", "results")


@click.group("jobs")
def jobs() -> None:
    """List, inspect, stop and remove jobs.

    A job is named by a unique prefix of its identifier (as `xpm jobs list` shows it),
    optionally TASK/PREFIX (task id or its last part: learn/3fa2).
    """


#: The largest --limit (SQLite integers stop at 2**63 - 1).
LIMIT_MAX = 1_000_000_000
#: Jobs shown in a table unless --limit says otherwise (a longer table is not read).
TABLE_LIMIT = 100


def _row(job: dict[str, Any], fmt: str) -> dict[str, Any]:
    results = job.get("results") or {}
    if fmt == "table":
        shown = list(results.items())[:3]
        text = " ".join(f"{k}={short_value(v)}" for k, v in shown)
        tags = " ".join(f"{k}={v}" for k, v in (job.get("tags") or {}).items())
        also = " ".join(f"{k}={short_value(v)}" for k, v in (job.get("also") or {}).items())
        return {
            "id": job["id"][:12],
            "task": job["task_id"],
            "state": shown_state(job["state"]),
            # What tells apart jobs of the same tags: the parameters that differ, in brackets.
            "tags": f"{tags} ({also})".strip() if also else tags,
            "start": when(job.get("start_time")),
            "duration": duration(job.get("start_time"), job.get("end_time"), job["state"]),
            "results": text + (" ..." if len(results) > 3 else ""),
        }
    start, end = job.get("start_time"), job.get("end_time")
    return {
        "id": job["id"],
        "task": job["task_id"],
        "state": shown_state(job["state"]),
        "tags": job.get("tags") or {},
        "start": when(start),
        "duration": round(end - start, 3) if start is not None and end is not None else None,
        "results": results if fmt == "json" else " ".join(f"{k}={v}" for k, v in results.items()),
    }


def _say_why_none(workdir: Path, filters: Any) -> None:
    """On stderr, the filters that name something no job has (typos), with a suggestion."""
    from ..workdir import no_match_hints

    for hint in no_match_hints(workdir, filters):
        click.echo(f"xpm: {hint}", err=True)


@jobs.command("list")
@workdir_option
@filter_options
@click.option(
    "--limit",
    type=click.IntRange(min=0, max=LIMIT_MAX),
    default=None,
    help=f"At most N jobs (0: all). Default: all with --format json|csv, the {TABLE_LIMIT} "
    "most recent in a table.",
)
@click.option(
    "--watch",
    is_flag=True,
    help="Keep the table on screen, refreshed in place: counts by state, running jobs first "
    "with their elapsed time and latest reported values and step.  Ctrl-C quits.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between two refreshes of --watch.",
)
@format_option()
def list_(
    workdir: Path | None,
    states: tuple[str, ...],
    task: str | None,
    tags: tuple[str, ...],
    experiment: str | None,
    since: str | None,
    commit: str | None,
    limit: int | None,
    watch: bool,
    interval: float,
    fmt: str,
) -> None:
    """List jobs, most recent first: id, task, state, tags, start, duration, results.

    Jobs the index says are submitted or running are first checked against their
    directory and their launcher (one squeue for all Slurm jobs); corrections are written
    to the index.  When nothing matches, a filter naming a task, tag or experiment that no
    job has is said on stderr, with the closest existing name.
    """
    from ..workdir import existing_workdir, select_jobs

    if watch:
        _watch(
            existing_workdir(workdir),
            make_filter(states, task, tags, experiment, since, commit),
            interval,
            fmt,
        )
        return
    if limit is None and fmt == "table":
        limit = TABLE_LIMIT
    # One row more than shown tells whether there are more.
    filters = make_filter(
        states, task, tags, experiment, since, commit, limit + 1 if limit else None
    )
    wd = existing_workdir(workdir)
    found = select_jobs(wd, filters, differing=fmt == "table")  # the table shows them
    more = limit is not None and limit > 0 and len(found) > limit
    shown = found[:limit] if limit else found
    echo_rows([_row(j, fmt) for j in shown], LIST_COLUMNS, fmt)
    if not found:
        _say_why_none(wd, filters)
    if more:
        click.echo(
            f"xpm: showing the {limit} most recent matching jobs; there are more: "
            "--limit 0 shows all",
            err=True,
        )


def _terminal_size(out: Any) -> tuple[int, int]:
    """The terminal's size now (it follows a resize; $COLUMNS/$LINES may be stale)."""
    import os
    import shutil

    try:
        size = os.get_terminal_size(out.fileno())
    except (OSError, ValueError):
        size = shutil.get_terminal_size()
    return size.columns, size.lines


def _watch(workdir: Path, filters: Any, interval: float, fmt: str) -> None:
    """Redraw the live view in place until Ctrl-C: the alternate screen (the shell's screen
    comes back at the end), each frame written at once from the top-left corner over the
    previous one, lines cleared to their end: no blank frame between two, so no flicker."""
    import sys
    import time

    from .._watch import snapshot
    from ..errors import UsageError
    from ._render import render_watch

    if fmt != "table":
        raise UsageError("--watch draws a table: drop --format (or drop --watch for json|csv)")
    out = sys.stdout
    if not out.isatty():
        raise UsageError(
            "--watch redraws a terminal, and stdout is not one: drop --watch to print once"
        )
    out.write("\x1b[?1049h\x1b[?25l")  # alternate screen, cursor hidden
    last = None
    try:
        while True:
            columns, lines = _terminal_size(out)
            snap = snapshot(workdir, filters, rows=max(0, lines - 5))
            last = snap
            frame = render_watch(snap, columns, lines, interval)
            out.write("\x1b[H" + "\x1b[K\r\n".join(frame) + "\x1b[K\x1b[J")
            out.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        out.write("\x1b[?25h\x1b[?1049l")
        out.flush()
    if last is not None:  # what was on screen, in one line, left in the shell
        shown = shown_counts(last.counts)
        counts = ", ".join(f"{n} {s}" for s, n in sorted(shown.items()))
        click.echo(f"xpm: {last.total} jobs ({counts or 'none'}) in {workdir}")


@jobs.command("show")
@click.argument("job")
@workdir_option
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON object.")
def show(job: str, workdir: Path | None, as_json: bool) -> None:
    """Show a job: parameters (defaults marked), tags, results, state history, git state,
    launcher, paths, how to rerun it and the commands that check its code out.

    The same record as the web view's job page: read from the job directory, with the
    index for the jobs and runs linked to it."""
    from ..workdir import existing_workdir, find_job, job_details

    wd = existing_workdir(workdir)
    details = job_details(wd, find_job(wd, job))
    if as_json:
        echo_json(details)
        return
    j = details["job"]
    out = [
        f"job       {j['task_id']}/{j['id']}",
        f"state     {shown_state(j['state'])}" + (f" ({j['reason']})" if j.get("reason") else ""),
        f"experiment {j.get('experiment') or '-'}   run {details['run'] or '-'}",
        f"submitted {when(j.get('submit_time')) or '-'}   started {when(j.get('start_time')) or '-'}"
        f"   ended {when(j.get('end_time')) or '-'}"
        f"   duration {duration(j.get('start_time'), j.get('end_time'), j['state']) or '-'}",
    ]
    launcher = details["launcher"]
    out.append(
        f"launcher  {launcher['kind'] or '-'}   job id {launcher['job_id'] or '-'}"
        f"   host {launcher['host'] or '-'}   pid {launcher['pid'] or '-'}"
    )
    out += ["", "parameters (* = default value):"]
    for p in details["params"]:
        mark = "*" if p["default"] else " "
        kind = f"  [{p['kind']}]" if p["kind"] and p["kind"] != "param" else ""
        out.append(f"  {mark} {p['path']} = {p['value']!r}{kind}")
    if details["params_note"]:
        out.append(f"  ({details['params_note']})")
    tags = details["tags"]
    out += ["", "tags: " + (" ".join(f"{k}={v}" for k, v in tags.items()) or "none")]
    earlier = details["earlier_attempts"]
    label = "results of this attempt" if earlier else "results"
    out += ["", f"{label}:" if details["results"] else f"{label}: none"]
    for r in details["results"]:
        step = f" (step {r['step']})" if r.get("step") is not None else ""
        out.append(f"  {r['key']} = {short_value(r['value'])}{step}")
    out += ["", "history:"]
    for event in details["history"]:
        text = event_text(event)
        state = shown_state(str(event["state"]))  # WAITING, as every view says it
        out.append(f"  {when(event.get('time'))}  {state:<10} {text}".rstrip())
    if details["launched"] and details["last_submitted_by"] not in (None, details["run"]):
        # Submitted again later (found DONE, or waiting): not the code of this result.
        out.append(f"  (submitted again by run {details['last_submitted_by']}, not run by it)")
    if details["launcher_text"]:
        out.append(f"  launched with {details['launcher_text']}")
    label = "git (code of this attempt):" if details["launched"] else "git (not launched yet):"
    out += ["", label if details["git"] else "git: not recorded"]
    for g in details["git"]:
        if not g["dirty"]:
            dirty = " clean"
        elif g["snapshot"]:
            dirty = f" dirty (snapshot {g['snapshot']})"
        else:
            why = g.get("snapshot_error") or "git could not make it"
            dirty = f" dirty (no snapshot: {why}; the diff is recorded)"
        commit = g["commit"] or "(none yet: the repository had no commit)"
        out.append(f"  {g['repo']}  commit {commit}  branch {g['branch'] or '-'}{dirty}")
        if g["dirty"] and g.get("dirty_files"):
            files = g["dirty_files"]
            more = f" and {len(files) - 10} more" if len(files) > 10 else ""
            out.append(f"    uncommitted: {', '.join(files[:10])}{more}")
    out += ["", "paths:"]
    for name, path in details["paths"].items():
        # A job not started yet has no logs or results: do not send people looking for them.
        missing = "" if os.path.lexists(path) else "  (not written yet)"
        out.append(f"  {name:<9} {path}{missing}")
    if earlier:
        kept = "stdout.N.log, stderr.N.log, results.N.jsonl"
        out.append(f"  earlier   {earlier} attempt(s) beside them: {kept} (N = 1..{earlier})")
    out += ["", "rerun:"] + [f"  {c}" for c in details["rerun"]]
    if details["checkout"]:
        out += ["", "check its code out:"] + [f"  {c}" for c in details["checkout"]]
    click.echo("\n".join(out))


@jobs.command("log")
@click.argument("job")
@workdir_option
@click.option("--stderr", "stderr", is_flag=True, help="Show standard error instead of output.")
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing what the job writes until it ends."
)
def log(job: str, workdir: Path | None, stderr: bool, follow: bool) -> None:
    """Print the standard output (or error) of a job's latest attempt."""
    import sys
    import time

    from .._jobdir import JobDir
    from ..workdir import existing_workdir, find_job

    wd = existing_workdir(workdir)
    found = find_job(wd, job)
    jobdir = JobDir(wd, found["task_id"], found["id"])
    path = jobdir.log("stderr" if stderr else "stdout")
    if not path.exists() and not follow:
        from ..errors import UsageError

        status = jobdir.read_status()
        why = (
            f"it never started ({status.reason})"
            if status.terminal
            and status.reason
            and not any(e.get("state") == "RUNNING" for e in status.history)
            else f"the job has not run yet ({shown_state(found['state'])})"
        )
        raise UsageError(f"{path} does not exist: {why}")
    if not stderr and not follow and found["state"] in UNSUCCESSFUL_STATES:
        # A failed job's traceback is in stderr: an empty output must not look like all.
        err = jobdir.log("stderr")
        if path.stat().st_size == 0 and err.exists() and err.stat().st_size:
            click.echo(
                f"xpm: {path.name} is empty; the error is in stderr: xpm jobs log {job} --stderr",
                err=True,
            )
    out = sys.stdout.buffer
    position = 0

    def copy() -> None:
        nonlocal position
        if path.exists():
            with open(path, "rb") as fh:
                fh.seek(position)
                chunk = fh.read()
            position += len(chunk)
            out.write(chunk)
            out.flush()

    copy()
    while follow:
        ended = jobdir.read_status().terminal  # read before the log: nothing is missed
        time.sleep(0.2)
        copy()
        if ended:
            return


@jobs.command("path")
@click.argument("job")
@workdir_option
def path(job: str, workdir: Path | None) -> None:
    """Print the directory of a job (cd "$(xpm jobs path 3fa2)")."""
    from .._jobdir import JobDir
    from ..workdir import existing_workdir, find_job

    wd = existing_workdir(workdir)
    found = find_job(wd, job)
    click.echo(str(JobDir(wd, found["task_id"], found["id"]).path))


@jobs.command("kill")
@click.argument("job_refs", metavar="[JOB]...", nargs=-1)
@workdir_option
@filter_options
def kill(
    job_refs: tuple[str, ...],
    workdir: Path | None,
    states: tuple[str, ...],
    task: str | None,
    tags: tuple[str, ...],
    experiment: str | None,
    since: str | None,
    commit: str | None,
) -> None:
    """Stop running jobs (named, or matching the filters) and record them CANCELLED.

    Local jobs: SIGTERM to the job's process group (SIGKILL 5 s later); Slurm jobs:
    scancel; the jobs of any other launcher: its own cancel.  Jobs that already ended are
    left alone; exit 1 when a launcher could not stop some.
    """
    from ..workdir import existing_workdir, jobs_for, kill_jobs

    wd = existing_workdir(workdir)
    selected = jobs_for(wd, job_refs, make_filter(states, task, tags, experiment, since, commit))
    if not selected:
        click.echo("no job matches")
        _say_why_none(wd, make_filter(states, task, tags, experiment, since, commit))
        return
    failed = 0
    for result in kill_jobs(wd, selected):
        name = f"{result.job['task_id']}/{result.job['id'][:12]}"
        click.echo(f"{result.action:<9} {name}  {result.detail}")
        failed += result.action == "failed"
    if failed:
        click.echo(
            f"xpm: {failed} job(s) could not be stopped; they are left as they were", err=True
        )
        sys.exit(1)


@jobs.command("clean")
@click.argument("job_refs", metavar="[JOB]...", nargs=-1)
@workdir_option
@filter_options
@click.option("--dry-run", is_flag=True, help="Only show what would be removed.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--force",
    is_flag=True,
    help="Also remove running jobs and jobs that other jobs depend on.",
)
def clean(
    job_refs: tuple[str, ...],
    workdir: Path | None,
    states: tuple[str, ...],
    task: str | None,
    tags: tuple[str, ...],
    experiment: str | None,
    since: str | None,
    commit: str | None,
    dry_run: bool,
    yes: bool,
    force: bool,
) -> None:
    """Remove job directories (named, or matching the filters) and their index rows.

    Shows what would be removed with sizes, then asks.  Refuses a submitted or running job
    and a job another job depends on, unless --force.  Never deletes anything outside
    WORKDIR/jobs: symbolic links are removed, never followed.  Exit status 2 when some
    jobs were kept.
    """
    from ..workdir import clean as clean_jobs
    from ..workdir import existing_workdir, jobs_for, plan_clean

    wd = existing_workdir(workdir)
    selected = jobs_for(wd, job_refs, make_filter(states, task, tags, experiment, since, commit))
    if not selected:
        click.echo("no job matches")
        _say_why_none(wd, make_filter(states, task, tags, experiment, since, commit))
        return
    plan = plan_clean(wd, selected, force=force)
    doomed = [i for i in plan if i.refused is None]
    for item in plan:
        name = f"{item.job['task_id']}/{item.job['id'][:12]}"
        if item.refused is None:
            click.echo(f"remove  {name}  {item.job['state']:<9} {size(item.size):>10}  {item.path}")
        else:
            click.echo(f"keep    {name}  {item.refused}")
    total = sum(i.size for i in doomed)
    click.echo(
        f"{len(doomed)} job(s), {size(total)}"
        + (f"; {len(plan) - len(doomed)} kept" if len(doomed) < len(plan) else "")
    )
    if doomed and not dry_run:
        if not yes:
            click.confirm(
                f"remove {len(doomed)} job director{'y' if len(doomed) == 1 else 'ies'}?",
                abort=True,
            )
        removed = clean_jobs(wd, doomed)
        click.echo(f"removed {len(removed)} job(s), {size(sum(i.size for i in removed))}")
    kept = len(plan) - len(doomed)
    if kept:
        from ..errors import UsageError

        raise UsageError(
            f"{kept} job(s) kept (see above): running, used by other jobs or unsafe to remove;"
            " --force removes running and depended-on jobs anyway"
        )
