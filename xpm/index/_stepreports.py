"""Which of some jobs reported a result at one step: what the web view's comparison of the
jobs behind a point of a curve over steps keeps.

A chart over steps lists each line's jobs once and gives each point only how many values
it averages (a chart of 5,000 jobs x 100 steps cannot send every job's steps); a click on a
point sends the line's jobs, the result and the step, and the jobs that reported it there
are found here.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StepReport:
    """What one job reported of a result at one step, and the last step it reported it."""

    job_id: str
    state: str | None
    #: Its value at the step (the last report there), None when it did not report it.
    value: float | None
    reported: bool
    #: The last step at which it reported the result (a job that failed early: its end).
    last_step: Any


def reports_at_step(
    conn: sqlite3.Connection, ids: list[str], key: str, step: float
) -> list[StepReport]:
    """For each of the jobs ``ids`` (in that order), whether it reported result ``key`` (a
    number) at ``step``, its value there and the last step it reported ``key``."""
    if not ids:
        return []
    rows = conn.execute(
        "SELECT sel.value, j.state, "
        "(SELECT x.value FROM results x WHERE x.job_id = sel.value AND x.key = :key "
        "AND x.step = :step AND x.type IN ('int', 'float') ORDER BY x.seq DESC LIMIT 1), "
        "EXISTS (SELECT 1 FROM results x WHERE x.job_id = sel.value AND x.key = :key "
        "AND x.step = :step AND x.type IN ('int', 'float')), "
        "(SELECT MAX(x.step) FROM results x WHERE x.job_id = sel.value AND x.key = :key "
        "AND x.step IS NOT NULL AND x.type IN ('int', 'float')) "
        "FROM json_each(:ids) sel LEFT JOIN jobs j ON j.id = sel.value ORDER BY sel.key",
        {"ids": json.dumps(ids), "key": key, "step": step},
    )
    return [
        StepReport(job_id, state, value, bool(reported), last)
        for job_id, state, value, reported, last in rows
    ]
