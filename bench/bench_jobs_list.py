"""``xpm jobs list`` as whole processes: on an empty index, and filtered over 100,000 jobs.

Targets (issue 5): ``xpm jobs list`` on an empty index at most 150 ms over ``python -c pass``;
``xpm jobs list --tag model=cnn --state failed`` over an index of 100,000 jobs under 300 ms
as a whole process.  The big index is made with the index library's own schema and rows
inserted directly (jobs, tags, results), as an experiment writing it would leave them.

Usage: ``python bench/bench_jobs_list.py [--runs N] [--jobs N]``; prints a markdown table;
exit 1 over a target.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import run_ms, xpm_script

EMPTY_TARGET_MS = 150.0
BIG_TARGET_MS = 300.0
STATES = ["DONE"] * 80 + ["FAILED"] * 12 + ["CANCELLED"] * 5 + ["UNSCHEDULED"] * 3
MODELS = ["cnn", "rnn", "mlp", "transformer", "linear"]


def build_index(workdir: Path, n: int) -> None:
    """An index of ``n`` jobs with tags (model, lr, seed) and two results each."""
    from xpm.index import open_index

    rng = random.Random(0)
    jobs, tags, results = [], [], []
    now = time.time()
    for i in range(n):
        ident = hashlib.sha256(str(i).encode()).hexdigest()
        task = f"bench.task{i % 4}"
        state = rng.choice(STATES)
        start = now - rng.uniform(0, 30 * 86400)
        end = start + rng.uniform(1, 3600) if state in ("DONE", "FAILED", "CANCELLED") else None
        jobs.append((ident, task, f"jobs/{task}/{ident}", state, 1, start, start, end, "local"))
        tags += [
            (ident, "model", MODELS[i % len(MODELS)], "str"),
            (ident, "lr", rng.choice([0.1, 0.01, 0.001]), "float"),
            (ident, "seed", i % 10, "int"),
        ]
        results += [
            (ident, 0, "loss", rng.random(), "float", None, end),
            (ident, 1, "accuracy", rng.random(), "float", None, end),
        ]
    with open_index(workdir) as db:

        def fill(conn):  # type: ignore[no-untyped-def]
            conn.executemany(
                "INSERT INTO jobs (id, task_id, path, state, attempt, submit_time, start_time, "
                "end_time, launcher) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                jobs,
            )
            conn.executemany("INSERT INTO tags VALUES (?, ?, ?, ?)", tags)
            conn.executemany(
                "INSERT INTO results (job_id, seq, key, value, type, step, time) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                results,
            )

        db.write(fill)
        db.conn.execute("ANALYZE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10, help="processes per command (default 10)")
    parser.add_argument("--jobs", type=int, default=100_000, help="jobs in the big index")
    args = parser.parse_args(argv)

    script = xpm_script()
    with tempfile.TemporaryDirectory() as tmp:
        empty, big = Path(tmp) / "empty", Path(tmp) / "big"
        empty.mkdir()
        big.mkdir()
        from xpm.index import open_index

        open_index(empty).close()
        t0 = time.perf_counter()
        build_index(big, args.jobs)
        built = time.perf_counter() - t0
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "xpm jobs list (empty index)": [*script, "jobs", "list", "--workdir", str(empty)],
            f"xpm jobs list --tag model=cnn --state failed ({args.jobs:,} jobs)": [
                *script,
                "jobs",
                "list",
                "--tag",
                "model=cnn",
                "--state",
                "failed",
                "--workdir",
                str(big),
            ],  # fmt: skip
        }
        for command in commands.values():
            run_ms(command)  # warm caches
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                times[name].append(run_ms(command))
    med = {name: statistics.median(values) for name, values in times.items()}
    bare = med["python -c pass"]
    empty_name, big_name = list(commands)[1:]
    print(
        f"median of {args.runs} processes, Python {platform.python_version()}, {script[0]}; "
        f"index of {args.jobs:,} jobs built in {built:.1f} s"
    )
    print()
    print("| command | median | over `python -c pass` | target |")
    print("|---|---|---|---|")
    print(f"| `python -c pass` | {bare:.1f} ms | | |")
    print(f"| `{empty_name}` | {med[empty_name]:.1f} ms | {med[empty_name] - bare:.1f} ms "
          f"| <= {EMPTY_TARGET_MS:.0f} ms over |")  # fmt: skip
    print(f"| `{big_name}` | {med[big_name]:.1f} ms | {med[big_name] - bare:.1f} ms "
          f"| < {BIG_TARGET_MS:.0f} ms whole |")  # fmt: skip
    ok = med[empty_name] - bare <= EMPTY_TARGET_MS and med[big_name] < BIG_TARGET_MS
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
