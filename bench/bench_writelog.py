"""What the log of writes (index schema 10, ``job_writes``) costs the index's writer.

Run: ``python bench/bench_writelog.py [runs]`` (default 3).

Writes ``JOBS`` jobs as the recorder writes them over a job's life (its row, its
submission, then its row again when it starts and when it ends: 4 rows per job) into a
fresh index, with the log's triggers and without them (dropped), in one process, and
prints the medians of ``runs`` runs of each and the cost per row written.
"""

from __future__ import annotations

import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

JOBS = 30_000


def write_jobs(with_log: bool) -> float:
    """Seconds to write ``JOBS`` jobs' rows over their life into a new index."""
    from xpm.index import open_index

    workdir = Path(tempfile.mkdtemp(prefix="xpm-bench-log-"))
    with open_index(workdir):
        pass  # the schema and its triggers
    conn = sqlite3.connect(workdir / "xpm.db")
    if not with_log:
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'log_%'"
        ).fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
    conn.execute("INSERT INTO runs (id, experiment) VALUES ('e/r', 'e')")
    conn.commit()
    ids = [(f"{n:064x}",) for n in range(JOBS)]
    start = time.perf_counter()
    with conn:
        conn.executemany(
            "INSERT INTO jobs (id, task_id, state, params_digest) VALUES (?, 't', 'WAITING', 'd')",
            ids,
        )
        conn.executemany("INSERT INTO submissions VALUES ('e/r', ?, 1.0)", ids)
    for state in ("RUNNING", "DONE"):
        with conn:
            conn.executemany("UPDATE jobs SET state = ? WHERE id = ?", [(state, i) for (i,) in ids])
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    without, with_log = [], []
    for _ in range(runs):  # alternated: the machine's minute weighs on both alike
        without.append(write_jobs(False))
        with_log.append(write_jobs(True))
    a, b = statistics.median(without), statistics.median(with_log)
    rows = 4 * JOBS
    print(f"{JOBS:,} jobs, {rows:,} rows written, median of {runs}:")
    print(f"without the log's triggers: {a:.2f} s; with them: {b:.2f} s")
    print(
        f"the log costs {(b - a) / rows * 1e6:.1f} us per row, {(b - a) / JOBS * 1e6:.0f} us per job"
    )


if __name__ == "__main__":
    main()
