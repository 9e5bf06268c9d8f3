"""Index speed (issue 4): recording submissions in generate mode, querying 100,000 jobs.

Run: ``python bench/bench_index.py [runs]`` (prints a markdown table; numbers go to
docs/performance.md).

1. A whole experiment process submitting 10,000 distinct trivial configurations in
   generate mode, the index recorder on (as always): submissions per second, median of
   ``runs`` runs; the index is checked to hold all 10,000 jobs afterwards.
2. An index of 100,000 jobs (rows written directly, 5 tags, 4 parameters, 2 results each;
   10% FAILED; model in cnn/mlp/rnn/vit): "failed jobs with tag model=cnn" through
   ``xpm.index.list_jobs`` (and the bare SQL), median of 50 queries.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import env_with_path, python, time_process  # noqa: E402
from bench_scheduler import TASKS, XP  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def generate_rate(tmp: Path, runs: int) -> tuple[float, int]:
    (tmp / "benchtasks.py").write_text(TASKS)
    (tmp / "xp.py").write_text(XP)
    env = env_with_path([str(tmp)])
    env.pop("XPM_INDEX", None)
    rates = []
    count = 0
    for r in range(runs):
        wd = tmp / f"gen{r}"
        elapsed = time_process(
            [python(), str(tmp / "xp.py"), str(wd), "generate", "10000", "2"], env=env
        )
        rates.append(10000 / elapsed)
        with sqlite3.connect(wd / "xpm.db") as conn:
            count = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        conn.close()
        shutil.rmtree(wd)
    return statistics.median(rates), count


def build_large(workdir: Path, n: int = 100_000) -> None:
    from xpm.index import open_index
    from xpm.index._ingest import write_jobs
    from xpm.index._rows import JobRows

    rng = random.Random(0)
    models = ["cnn", "mlp", "rnn", "vit"]
    now = time.time()
    with open_index(workdir) as index:
        for start in range(0, n, 10_000):
            batch = []
            for i in range(start, min(n, start + 10_000)):
                ident = f"{rng.getrandbits(256):064x}"
                state = "FAILED" if rng.random() < 0.1 else "DONE"
                job = {
                    "id": ident,
                    "task_id": "bench.train",
                    "path": f"jobs/bench.train/{ident}",
                    "state": state,
                    "reason": "boom" if state == "FAILED" else None,
                    "attempt": 1,
                    "submit_time": now - i,
                    "start_time": now - i + 1,
                    "end_time": now - i + 2,
                    "exit_code": 1 if state == "FAILED" else 0,
                    "signal": None,
                    "launcher": "local",
                    "launcher_job_id": str(i),
                    "host": "h",
                    "pid": i,
                }
                tags = [
                    ("model", models[i % 4], "str"),
                    ("seed", i % 10, "int"),
                    ("lr", 0.1 * (i % 3), "float"),
                    ("dataset", "mnist", "str"),
                    ("n_layers", i % 6, "int"),
                ]
                params = [
                    ("model", "bench.model", "config"),
                    ("model.n_layers", i % 6, "int"),
                    ("lr", 0.1 * (i % 3), "float"),
                    ("epochs", 10, "int"),
                ]
                results = [
                    {
                        "job_id": ident,
                        "seq": s,
                        "key": "accuracy",
                        "value": rng.random(),
                        "type": "float",
                        "step": s,
                        "time": now,
                    }
                    for s in range(2)
                ]
                batch.append(JobRows(job, params=params, tags=tags, results=results))
            index.write(lambda conn, b=batch: write_jobs(conn, b))
        index.conn.execute("ANALYZE")


def query_times(workdir: Path, repeat: int = 50) -> tuple[float, float, int]:
    from xpm.index import list_jobs, open_index

    # The SQL list_jobs runs for a selective state: jobs of the state first (covering index
    # on jobs(state, id)), then the covering index on tags(key, value, job_id).
    sql = (
        "SELECT j.* FROM jobs j CROSS JOIN tags t ON t.job_id = j.id "
        "AND t.key = 'model' AND t.value = 'cnn' WHERE j.state = 'FAILED'"
    )
    lib, raw = [], []
    count = 0
    with open_index(workdir) as index:
        for _ in range(repeat):
            start = time.perf_counter()
            jobs = list_jobs(index, state="FAILED", tags={"model": "cnn"})
            lib.append(time.perf_counter() - start)
            count = len(jobs)
            start = time.perf_counter()
            index.conn.execute(sql).fetchall()
            raw.append(time.perf_counter() - start)
    return statistics.median(lib) * 1000, statistics.median(raw) * 1000, count


#: A researcher's question on one task's table (issue 15): filtered, sorted, every row.
TASK_TABLE_SQL = (
    'SELECT id, "model.n_layers", lr, model, accuracy FROM "train" '
    "WHERE state = 'DONE' AND model = 'cnn' AND lr > 0.05 ORDER BY accuracy DESC"
)


def task_table_time(workdir: Path, repeat: int = 50) -> tuple[float, int]:
    """Median milliseconds of :data:`TASK_TABLE_SQL` and its row count."""
    from xpm.index import open_index

    times = []
    rows = 0
    with open_index(workdir, readonly=True) as index:
        for _ in range(repeat):
            start = time.perf_counter()
            rows = len(index.conn.execute(TASK_TABLE_SQL).fetchall())
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, rows


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    tmp = Path(tempfile.mkdtemp(prefix="xpm-bench-index-"))
    os.environ.pop("XPM_INDEX", None)
    try:
        rate, count = generate_rate(tmp, runs)
        large = tmp / "large"
        large.mkdir()
        start = time.perf_counter()
        build_large(large)
        built = time.perf_counter() - start
        lib_ms, raw_ms, n = query_times(large)
        table_ms, table_rows = task_table_time(large)
        print("| measurement | result | target |\n|---|---|---|")
        print(
            f"| generate mode, 10,000 submissions recorded (whole process, median of {runs}) "
            f"| {rate:,.0f} submissions/s ({count} jobs in the index) | >= 2,000/s |"
        )
        print(
            f"| failed jobs with tag model=cnn among 100,000 (list_jobs, {n} rows) "
            f"| {lib_ms:.1f} ms (bare SQL {raw_ms:.1f} ms) | < 50 ms |"
        )
        print(
            f"| one task's table among 100,000 jobs: DONE cnn jobs with lr > 0.05 by "
            f"accuracy ({table_rows} rows) | {table_ms:.1f} ms | < 50 ms |"
        )
        print(
            f"| writing 100,000 jobs with tags, params, results (10 transactions) "
            f"| {built:.1f} s | |"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
