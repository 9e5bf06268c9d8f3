"""Output of the commands: tables for people (tabulate), JSON and CSV for scripts.

Every command that prints records takes ``--format table|json|csv`` (:func:`format_option`)
and prints them with :func:`echo_rows`.  JSON is a list of objects with the same keys as
the table's columns; CSV has a header row.  tabulate is imported only for tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click

from .._vocabulary import ACTIVE_STATES, NOT_STARTED, UNSUCCESSFUL_STATES

FORMATS: tuple[str, ...] = ("table", "json", "csv")

F = TypeVar("F", bound=Callable[..., Any])


def format_option(default: str = "table") -> Callable[[F], F]:
    """The ``--format table|json|csv`` option (parameter name ``fmt``)."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default=default,
        show_default=True,
        help="Output format: a table for people, json or csv for scripts.",
    )


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return " ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return ", ".join(str(v) for v in value)
    return value


def render_rows(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str = "table"
) -> str:
    """``rows`` as a table, a JSON list of objects or CSV, with the given ``columns``."""
    if fmt == "json":
        import json  # per format: a table never needs json or csv

        return json.dumps([{c: row.get(c) for c in columns} for row in rows], indent=2, default=str)
    if fmt == "csv":
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
        return out.getvalue().rstrip("\n")
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}")
    if not rows:
        return "(none)"
    cells = [[str(_cell(row.get(c))) for c in columns] for row in rows]
    plain = _plain_table(cells, [str(c) for c in columns])
    if plain is not None:
        return plain
    from tabulate import tabulate

    return tabulate(cells, headers=list(columns), tablefmt="simple", disable_numparse=True)


def _plain_table(cells: list[list[str]], headers: list[str]) -> str | None:
    """tabulate's "simple" table for one-line printable ASCII cells, without its per-cell
    width computations (10x faster on thousands of rows); None for other text."""
    texts = [headers, *cells]
    if not all(t.isascii() and t.isprintable() for row in texts for t in row):
        return None
    widths = [
        max(len(h) + 2, *(len(row[i]) for row in cells)) for i, h in enumerate(headers)
    ]  # tabulate pads headers by 2
    lines = ["  ".join(t.ljust(w) for t, w in zip(row, widths, strict=True)) for row in texts]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def echo_rows(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str = "table"
) -> None:
    """Print :func:`render_rows` on stdout."""
    click.echo(render_rows(rows, columns, fmt))


def _digits(values: Sequence[Any]) -> int:
    """Significant digits for a column of floats: 4, or as many more (up to 10) as it takes
    for values that differ to print differently (1.002 and 1.0015 both printed 1.002)."""
    floats = {v for v in values if isinstance(v, float)}
    for digits in range(4, 11):
        if len({f"{v:.{digits}g}" for v in floats}) == len(floats):
            return digits
    return 10


def _human(column: str, value: Any, digits: int = 4) -> Any:
    """A value of ``xpm results`` for people: short ids, ``digits`` significant digits,
    1m12s."""
    if value is None:
        return ""
    if column == "id" and isinstance(value, str):
        return value[:12]
    if (column == "duration" or column.startswith("duration_")) and isinstance(value, (int, float)):
        from ._options import duration

        return duration(0.0, float(value))
    if column in ("start_time", "end_time") and isinstance(value, (int, float)):
        from ._options import when

        return when(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return value


def echo_results(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str) -> None:
    """Rows of ``xpm results``: rounded for people in a table, every digit in json/csv."""
    from .._vocabulary import shown_state

    if "state" in columns:  # a job not started is WAITING here too, as everywhere
        rows = [
            {**row, "state": shown_state(row["state"])} if row.get("state") else row for row in rows
        ]
    if fmt == "table":
        digits = {c: _digits([row.get(c) for row in rows]) for c in columns}
        rows = [{c: _human(c, row.get(c), digits[c]) for c in columns} for row in rows]
    echo_rows(rows, columns, fmt)


def echo_json(value: Any) -> None:
    """Print one JSON document on stdout."""
    import json

    click.echo(json.dumps(value, indent=2, default=str))


#: Order of the states in the live view's counts line: what runs, what waits, what ended.
_COUNT_ORDER = (*reversed(ACTIVE_STATES), NOT_STARTED, "DONE", *UNSUCCESSFUL_STATES)


def render_watch(snap: Any, width: int, height: int, interval: float) -> list[str]:
    """The live view (``xpm jobs list --watch``) of a :class:`xpm._watch.Snapshot` as at
    most ``height`` lines, each cut to ``width - 1`` characters (a line as wide as the
    terminal wraps on some terminals, which would scroll the frame)."""
    import time

    from .._vocabulary import shown_counts, shown_state
    from ._options import duration, short_value

    counts = shown_counts(snap.counts)
    order: list[str] = [s for s in _COUNT_ORDER if counts.get(s)]
    order += sorted(s for s in counts if s not in _COUNT_ORDER and counts[s])
    lines = [
        f"xpm jobs: {snap.workdir}  {time.strftime('%H:%M:%S', time.localtime(snap.taken))}"
        f"  (every {interval:g}s; Ctrl-C quits)",
        f"{snap.total} jobs: " + ("  ".join(f"{counts[s]} {s}" for s in order) or "none yet"),
        "",
    ]
    header = ("ID", "TASK", "STATE", "ELAPSED", "STEP", "LATEST RESULTS", "TAGS")
    cells = []
    for job in snap.jobs:
        live = job.get("live")
        values = live["values"] if live else (job.get("results") or {})
        step = live.get("step") if live else None
        cells.append(
            (
                job["id"][:12],
                job["task_id"].rsplit(".", 1)[-1],
                shown_state(job["state"]),
                duration(job.get("start_time"), job.get("end_time"), job["state"]),
                "" if step is None else str(step),
                " ".join(f"{k}={short_value(v)}" for k, v in values.items()),
                " ".join(f"{k}={v}" for k, v in (job.get("tags") or {}).items()),
            )
        )
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(header)]
    room = max(0, height - len(lines) - 2)  # the header line and the "more" line
    for row in [header, *cells[:room]]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    hidden = snap.total - min(len(cells), room)
    if hidden > 0:
        lines.append(
            f"... {hidden} more job(s) not shown (a taller terminal or --task, --state, "
            "--tag narrow the list)"
        )
    return [line[: max(1, width - 1)] for line in lines[:height]]


__all__ = [
    "FORMATS",
    "echo_json",
    "echo_results",
    "echo_rows",
    "format_option",
    "render_rows",
    "render_watch",
]
