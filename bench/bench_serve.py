"""``xpm serve`` on a large index (issue 7): time to open the jobs table page.

Run: ``python bench/bench_serve.py [jobs] [runs] [--with-submit-time-index]`` (defaults
100000 and 5; the option adds an index on ``jobs(submit_time)`` before serving, to show
what the newest-first sort gains from it while the schema has none).

Builds an index of ``jobs`` jobs with direct inserts following the schema (10
experiments of one run each; per job 3 tags, 3 parameters, 2 results, a submission;
10% FAILED), starts ``xpm serve`` on it, and times the HTTP GET of ``/xpm/jobs`` (the
HTML page: newest first, facets on task, state, experiment and tags).  Prints the first
GET (it also builds the per-experiment sweep queries) and the median of ``runs`` more.
Goal: under 1 s.
"""

from __future__ import annotations

import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import env_with_path, python  # noqa: E402


def build(workdir: Path, n: int) -> None:
    """An index of ``n`` jobs written directly (schema from xpm.index)."""
    from xpm.index import open_index

    rng = random.Random(0)
    now = time.time()
    experiments = [f"sweep{i}" for i in range(10)]
    with open_index(workdir) as index:

        def fill(conn: object) -> None:
            c = index.conn
            for k, name in enumerate(experiments):
                start = now - (10 - k) * 3600
                c.execute("INSERT INTO experiments VALUES (?, ?, ?, 1)", (name, start, start))
                c.execute(
                    "INSERT INTO runs VALUES (?, ?, ?, 'normal', ?, ?, 'h', 'u', 1, '{}')",
                    (f"{name}/r{k}", name, f"r{k}", start, start + 3000),
                )
            jobs, tags, params, results, subs = [], [], [], [], []
            for i in range(n):
                ident = f"{rng.getrandbits(256):064x}"
                run = f"{experiments[i % 10]}/r{i % 10}"
                state = "FAILED" if rng.random() < 0.1 else "DONE"
                t = now - (n - i)
                jobs.append(
                    (
                        ident,
                        "bench.train",
                        f"jobs/bench.train/{ident}",
                        state,
                        "boom" if state == "FAILED" else None,
                        1,
                        t,
                        t + 1,
                        t + 2,
                        1 if state == "FAILED" else 0,
                        None,
                        "local",
                        str(i),
                        "h",
                        i,
                        run,
                        t,
                        None,
                    )
                )
                subs.append((run, ident, t))
                tags += [
                    (ident, "model", ["cnn", "mlp", "rnn", "vit"][i % 4], "str"),
                    (ident, "n_layers", i % 6, "int"),
                    (ident, "seed", i % 3, "int"),
                ]
                params += [
                    (ident, "model", "bench.model", "config"),
                    (ident, "model.n_layers", i % 6, "int"),
                    (ident, "epochs", 10, "int"),
                ]
                results += [
                    (ident, 0, "loss", rng.random(), "float", 0, t),
                    (ident, 1, "accuracy", rng.random(), "float", None, t),
                ]
            c.executemany(f"INSERT INTO jobs VALUES ({','.join('?' * 18)})", jobs)
            c.executemany("INSERT INTO submissions VALUES (?, ?, ?)", subs)
            c.executemany("INSERT INTO tags VALUES (?, ?, ?, ?)", tags)
            c.executemany("INSERT INTO params VALUES (?, ?, ?, ?)", params)
            c.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?)", results)

        index.write(fill)
        index.conn.execute("ANALYZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[float, int]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as r:
        body = r.read()
        status = r.status
    elapsed = time.perf_counter() - start
    if status != 200 or b"facet-info" not in body:
        raise SystemExit(f"GET {url}: HTTP {status}, no facets in the page")
    return elapsed, len(body)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 100_000
    runs = int(args[1]) if len(args) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) / "workdir"
        workdir.mkdir()
        start = time.perf_counter()
        build(workdir, n)
        print(f"built an index of {n} jobs in {time.perf_counter() - start:.1f} s")
        if "--with-submit-time-index" in sys.argv:  # what the schema should have
            conn = sqlite3.connect(workdir / "xpm.db")
            conn.execute("CREATE INDEX IF NOT EXISTS idx_jobs_submit_time ON jobs (submit_time)")
            conn.commit()
            conn.close()
        port = free_port()
        proc = subprocess.Popen(
            [python(), "-m", "xpm.cli", "serve", "--workdir", str(workdir), "--port", str(port)],
            env=env_with_path(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if "serving" not in line:
                raise SystemExit(
                    f"xpm serve did not start: {line} {proc.stderr.read() if proc.stderr else ''}"
                )
            url = f"http://127.0.0.1:{port}/xpm/jobs"
            first, size = get(url)
            times = [get(url)[0] for _ in range(runs)]
        finally:
            proc.terminate()
            proc.communicate(timeout=30)
    median = statistics.median(times)
    print("| jobs | first GET /xpm/jobs | median of next GETs | page size |")
    print("|---|---|---|---|")
    print(
        f"| {n:,} | {first * 1000:.0f} ms | {median * 1000:.0f} ms (of {runs}) | {size // 1024} KiB |"
    )
    print("goal: under 1 s:", "met" if median < 1.0 else "NOT met")


if __name__ == "__main__":
    main()
