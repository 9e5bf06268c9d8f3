"""Why a job filter matched nothing: the names the index knows, and the closest to a typo.

``xpm jobs list --tag n_layer=3`` printing "(none)" leaves the user guessing between "no
such job" and "no such tag".  :func:`filter_hints` says which filter names something the
index has never seen, and the closest name it does know.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from ._db import IndexDB
from ._query import parse_tag_value

#: Values listed when a tag exists but never has the value asked for.
_VALUES_SHOWN = 8


def _closest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    if close:
        return f"; did you mean {close[0]!r}?"
    if known and len(known) <= _VALUES_SHOWN:
        return f"; known: {', '.join(known)}"
    return ""


def filter_hints(
    db: IndexDB,
    *,
    task: str | None = None,
    tags: Mapping[str, str] | None = None,
    experiment: str | None = None,
) -> list[str]:
    """One line per filter naming a task, tag key, tag value or experiment that no job of
    the index has, with the closest known name (filters that exist say nothing)."""
    hints: list[str] = []
    if task:
        tasks = [r[0] for r in db.query("SELECT DISTINCT task_id FROM jobs ORDER BY task_id")]
        short = sorted({t.rsplit(".", 1)[-1] for t in tasks})
        if task not in tasks and task not in short:
            hint = _closest(task, short + tasks)
            hints.append(f"--task {task}: no job of this task{hint}")
    for key, value in (tags or {}).items():
        keys = [r[0] for r in db.query("SELECT DISTINCT key FROM tags ORDER BY key")]
        if key not in keys:
            hints.append(f"--tag {key}={value}: no job has a tag {key!r}{_closest(key, keys)}")
            continue
        values = parse_tag_value(value)
        marks = ",".join("?" * len(values))
        found = db.query(
            f"SELECT 1 FROM tags WHERE key = ? AND value IN ({marks}) LIMIT 1", [key, *values]
        )
        if not found:
            rows = db.query(
                "SELECT DISTINCT value FROM tags WHERE key = ? ORDER BY value LIMIT ?",
                [key, _VALUES_SHOWN + 1],
            )
            shown = [str(r[0]) for r in rows]
            more = ", ..." if len(shown) > _VALUES_SHOWN else ""
            hints.append(
                f"--tag {key}={value}: no job has {key}={value}; "
                f"its values: {', '.join(shown[:_VALUES_SHOWN])}{more}"
            )
    if experiment:
        names = [r[0] for r in db.query("SELECT DISTINCT experiment FROM runs ORDER BY 1")]
        if experiment not in names:
            hint = _closest(experiment, names)
            hints.append(f"--experiment {experiment}: no run of this experiment{hint}")
    return hints
