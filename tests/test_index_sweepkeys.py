"""xpm/index/_sweeps.py: an experiment's sweep keys when it lacks another task's keys.

An index written row by row with its per-task tables (as xpm keeps them), so which
tasks have which keys is known: an experiment with no job of a task is asked once for
that task, not once per key of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_index_webview import _JOB_COLUMNS, build, ident, job_row, read

from xpm.index import experiment_keys, open_index
from xpm.index._tasktables import refresh_task_rows


def fill(c: Any) -> None:
    """Experiment ``e`` (run e/r1): 3 jobs of task ``a`` with tags x, y and results p, q;
    experiment ``f``: 1 job of task ``b`` with tag z and result r (fewer than the rows of
    x, y, p or q: f's jobs are asked, not those keys' rows)."""
    c.execute("INSERT INTO experiments VALUES ('f', 0, 0, 1)")
    c.execute("INSERT INTO runs VALUES ('f/r1', 'f', 'r1', 'normal', 0, 1, 'h', 'u', 1, '{}')")
    jobs = [job_row(ident(n), float(n), "e/r1", task="a") for n in range(3)]
    jobs.append(job_row(ident(10), 0.0, "f/r1", task="b"))
    c.executemany(f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 18)})", jobs)
    c.executemany("INSERT INTO submissions VALUES (?, ?, 0)", [(j[15], j[0]) for j in jobs])
    c.executemany(
        "INSERT INTO tags VALUES (?, ?, 1, 'int')",
        [(ident(n), k) for n in range(3) for k in ("x", "y")] + [(ident(10), "z")],
    )
    c.executemany(
        "INSERT INTO results VALUES (?, 0, ?, 0.5, 'float', NULL, 0)",
        [(ident(n), k) for n in range(3) for k in ("p", "q")] + [(ident(10), "r")],
    )


def probes(conn: Any) -> tuple[dict[str, Any], list[str]]:
    """experiment_keys, and the statements asking an experiment's jobs for something."""
    asked: list[str] = []
    conn.set_trace_callback(asked.append)
    try:
        keys = experiment_keys(conn)
    finally:
        conn.set_trace_callback(None)
    return keys, [s for s in asked if "CROSS JOIN submissions s ON s.run = r.id" in s]


def test_an_experiment_without_a_job_of_a_task_is_asked_once_for_all_its_keys(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr("xpm.index._sweeps.SWEEP_SAMPLE", 1)
    truth = {"e": (["x", "y"], ["p", "q"]), "f": (["z"], ["r"])}
    workdir = tmp_path / "wd"
    build(workdir, fill)  # no per-task tables: each missing key is looked for
    keys, asked = probes(read(workdir))
    assert keys == truth
    without_tables = len(asked)

    def tables(c: Any) -> None:
        refresh_task_rows(c)

    with open_index(workdir) as index:
        index.write(tables)
    keys, asked = probes(read(workdir))
    assert keys == truth
    # f lacks x, y, p and q, all of task a: one question (has f a job of task a?) instead
    # of one per key.
    per_task = [s for s in asked if "j.task_id IN" in s]
    assert (len(per_task), len(asked), without_tables) == (1, 1, 4), asked
