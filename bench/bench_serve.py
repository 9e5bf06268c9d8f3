"""``xpm serve`` on a large index (issues 7 and 16): time to open every page of the web view.

Run: ``python bench/bench_serve.py [jobs] [runs]`` (defaults 100000 and 5).

Builds an index of ``jobs`` jobs with direct inserts following the schema (10
experiments of one run each, the first launched again for half its jobs; per job 3 tags,
3 parameters, 2 results, a submission; 10% FAILED), plus an experiment of 5,000 jobs
reporting a result at 100 steps each (:func:`curves`), an experiment of 5,000 Evaluate jobs
each using the output of a job of the first task (:func:`evaluations`), and their per-task
tables, digests of parameters and how far each results file was read (as xpm writes
them), and starts ``xpm serve`` on it.  Checks that the facet counts of page 2 of ``/xpm/jobs`` are
those of page 1 and of SQL, then times the HTTP GET of each page of the web view (home,
jobs table and its page 2, an experiment's runs table and its later pages, sorted and
filtered, a task's runs table over every job, charts, parallel coordinates, a job page, a
comparison): the first GET, the median of ``runs`` more, and the median of ``runs`` GETs
each made right after a write to the index (what a page costs while an experiment
writes: the caches kept while the index is unchanged are stale; each write adds a report
by each of the 50 running jobs of ``curves``), the median of ``runs`` GETs each right
after a write that also changes a job's row (a job starting or ending: what is kept while
no job row changes is stale too), and the median of ``runs`` GETs each right after a job
is submitted into the task of 100,000 jobs (what is kept while no job's task, parameters
or tags change is stale too).
Goal: every page under 300 ms, after a write too.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import env_with_path, python  # noqa: E402

#: The jobs columns the bench fills, named: columns added to the schema later keep their
#: defaults.
JOB_COLUMNS = (
    "id, task_id, path, state, reason, attempt, submit_time, start_time, end_time, "
    "exit_code, signal, launcher, launcher_job_id, host, pid, last_run, last_submitted, git_state"
)


def job_row(
    ident: str, task: str, state: str, submitted: float, started: float | None,
    ended: float | None, run: str, n: int,
) -> tuple[Any, ...]:  # fmt: skip
    """A ``jobs`` row of :data:`JOB_COLUMNS` for a local job of ``task`` (the n-th)."""
    failed = state == "FAILED"
    return (
        ident, task, f"jobs/{task}/{ident}", state, "boom" if failed else None, 1,
        submitted, started, ended, 1 if failed else 0, None, "local", str(n), "h", n, run,
        submitted, None,
    )  # fmt: skip


def insert_jobs(c: Any, rows: list[tuple[Any, ...]]) -> None:
    c.executemany(f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({','.join('?' * 18)})", rows)


def build(workdir: Path, n: int, with_curves: bool = False) -> None:
    """An index of ``n`` jobs written directly (schema from xpm.index), and the experiment
    of learning curves (:func:`curves`) when ``with_curves``."""
    from xpm.index import open_index
    from xpm.index._digests import fill_params_digests
    from xpm.index._tasktables import refresh_task_rows

    rng = random.Random(0)
    now = time.time()
    experiments = [f"sweep{i}" for i in range(10)]
    with open_index(workdir) as index:

        def fill(conn: object) -> None:
            c = index.conn
            for k, name in enumerate(experiments):
                start = now - (10 - k) * 3600
                # sweep0 was launched again after a crash (a second run submitting half its
                # jobs again): its jobs are counted once.
                c.execute(
                    "INSERT INTO experiments VALUES (?, ?, ?, ?)",
                    (name, start, start + (1800 if k == 0 else 0), 2 if k == 0 else 1),
                )
                c.execute(
                    "INSERT INTO runs VALUES (?, ?, ?, 'normal', ?, ?, 'h', 'u', 1, '{}')",
                    (f"{name}/r{k}", name, f"r{k}", start, start + 3000),
                )
            c.execute(
                "INSERT INTO runs VALUES ('sweep0/again', 'sweep0', 'again', 'normal', ?, ?, "
                "'h', 'u', 1, '{}')",
                (now - 10 * 3600 + 1800, now - 10 * 3600 + 3000),
            )
            jobs, tags, params, results, subs = [], [], [], [], []
            for i in range(n):
                ident = f"{rng.getrandbits(256):064x}"
                run = f"{experiments[i % 10]}/r{i % 10}"
                state = "FAILED" if rng.random() < 0.1 else "DONE"
                t = now - (n - i)
                jobs.append(job_row(ident, "bench.train", state, t, t + 1, t + 2, run, i))
                subs.append((run, ident, t))
                if i % 10 == 0 and i < n // 2:
                    subs.append(("sweep0/again", ident, t + 1))
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
            insert_jobs(c, jobs)
            c.executemany("INSERT INTO submissions VALUES (?, ?, ?)", subs)
            c.executemany("INSERT INTO tags VALUES (?, ?, ?, ?)", tags)
            c.executemany(
                "INSERT INTO params (job_id, path, value, type) VALUES (?, ?, ?, ?)", params
            )
            c.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?)", results)
            if with_curves:
                curves(c, rng, now)
                evaluations(c, rng, now, [j[0] for j in jobs[:EVALUATIONS]])
            # The per-task tables, the digests of parameters and how far each results
            # file was read, as every write of xpm keeps them (the web view reads which
            # columns a task has from the first, and keeps a job's values by the others).
            refresh_task_rows(c)
            fill_params_digests(c)
            c.execute(
                "INSERT INTO results_read SELECT job_id, 100 * COUNT(*), COUNT(*), '{}', 1 "
                "FROM results GROUP BY job_id"
            )

        index.write(fill)
        index.conn.execute("ANALYZE")


#: The experiment of learning curves: jobs, the steps each reports, and how many of its
#: newest jobs still run (each write to the index adds a report to each of these).
CURVE_JOBS, CURVE_STEPS, CURVE_RUNNING = 5000, 100, 50


def curves(c: Any, rng: random.Random, now: float) -> None:
    """Experiment ``curves``: :data:`CURVE_JOBS` jobs of task ``bench.curve`` (4 learning
    rates x seeds) each reporting ``loss`` at :data:`CURVE_STEPS` steps (500,000 reports:
    what a chart by step of the most jobs a chart reads averages), the newest
    :data:`CURVE_RUNNING` of them still running."""
    run = "curves/r0"
    c.execute("INSERT INTO experiments VALUES ('curves', ?, ?, 1)", (now, now))
    c.execute(
        "INSERT INTO runs VALUES (?, 'curves', 'r0', 'normal', ?, ?, 'h', 'u', 1, '{}')",
        (run, now, now + 3000),
    )
    jobs, tags, results = [], [], []
    for i in range(CURVE_JOBS):
        ident = f"{rng.getrandbits(256):064x}"
        t = now + i
        running = i >= CURVE_JOBS - CURVE_RUNNING
        state, ended = ("RUNNING", None) if running else ("DONE", t + 1)
        jobs.append(job_row(ident, "bench.curve", state, t, t, ended, run, i))
        lr = [0.001, 0.01, 0.1, 1.0][i % 4]
        tags += [(ident, "lr", lr, "float"), (ident, "seed", i // 4, "int")]
        base = rng.random()
        results += [
            (ident, step, "loss", base / (1 + step * lr), "float", step, t)
            for step in range(CURVE_STEPS)
        ]
    insert_jobs(c, jobs)
    c.executemany("INSERT INTO submissions VALUES (?, ?, ?)", [(run, j[0], j[6]) for j in jobs])
    c.executemany("INSERT INTO tags VALUES (?, ?, ?, ?)", tags)
    c.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?)", results)


#: Jobs of experiment ``evals``: each evaluates one ``bench.train`` job's output.
EVALUATIONS = 5000


def evaluations(c: Any, rng: random.Random, now: float, learned: list[str]) -> None:
    """Experiment ``evals``: a ``bench.evaluate`` job per job of ``learned`` (``bench.train``),
    using its output through a Meta path (the values that tell them apart are their
    upstream jobs'), with the tags of the job it evaluates (as xpm gives a configuration's
    tags to the jobs using it) and a ``score``."""
    run = "evals/r0"
    c.execute("INSERT INTO experiments VALUES ('evals', ?, ?, 1)", (now, now))
    c.execute(
        "INSERT INTO runs VALUES (?, 'evals', 'r0', 'normal', ?, ?, 'h', 'u', 1, '{}')",
        (run, now, now + 3000),
    )
    tags: dict[str, list[tuple[str, Any, str]]] = {}
    for job_id, key, value, kind in c.execute(
        "SELECT job_id, key, value, type FROM tags WHERE job_id IN (SELECT value FROM "
        "json_each(?))",
        (json.dumps(learned),),
    ):
        tags.setdefault(job_id, []).append((key, value, kind))
    jobs, params, own_tags, results = [], [], [], []
    for i, learn in enumerate(learned):
        ident = f"{rng.getrandbits(256):064x}"
        t = now + i
        jobs.append(job_row(ident, "bench.evaluate", "DONE", t, t, t + 1, run, i))
        params += [
            (ident, "model", f"jobs/bench.train/{learn}/model.pt", "path", 1),
            (ident, "batch", 32, "int", None),
        ]
        own_tags += [(ident, *t) for t in tags.get(learn, ())]
        results.append((ident, 0, "score", rng.random(), "float", None, t))
    insert_jobs(c, jobs)
    c.executemany("INSERT INTO submissions VALUES (?, ?, ?)", [(run, j[0], j[6]) for j in jobs])
    c.executemany(
        "INSERT INTO params (job_id, path, value, type, meta) VALUES (?, ?, ?, ?, ?)", params
    )
    c.executemany("INSERT INTO tags VALUES (?, ?, ?, ?)", own_tags)
    c.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?)", results)


def write_index(workdir: Path, count: int) -> None:
    """A write to the index as a running experiment makes it, as one commit: a report of
    ``loss`` by each running job of ``curves`` (at a new step, with how far its results
    file was read and its task-table row).  (The recorder writes a run's row only when its
    record changes, at its start and end, and a job's row when its state does.)"""
    conn = sqlite3.connect(workdir / "xpm.db")
    try:
        with conn:
            running = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM jobs WHERE state = 'RUNNING' AND task_id = 'bench.curve'"
                )
            ]
            step, value = CURVE_STEPS + count, 1.0 / (2 + count)
            conn.executemany(
                "INSERT OR REPLACE INTO results VALUES (?, ?, 'loss', ?, 'float', ?, ?)",
                [(j, step, value, step, time.time()) for j in running],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO results_read VALUES (?, ?, ?, '{}', 1)",
                [(j, 100 * (step + 1), step + 1) for j in running],
            )
            conn.executemany(
                'UPDATE "curve" SET loss = ? WHERE id = ?', [(value, j) for j in running]
            )
    finally:
        conn.close()


def write_job_row(workdir: Path, count: int) -> None:
    """A write of one job's row (what the recorder writes when a job starts, ends or is
    launched again): the pid of a running job of ``curves``, with a report by each of them.
    Everything the web view keeps while no job row changes is computed again after it."""
    write_index(workdir, count)
    conn = sqlite3.connect(workdir / "xpm.db")
    try:
        with conn:
            conn.execute(
                "UPDATE jobs SET pid = ? WHERE id = (SELECT id FROM jobs WHERE state = 'RUNNING' "
                "AND task_id = 'bench.curve' ORDER BY id LIMIT 1)",
                (count,),
            )
    finally:
        conn.close()


def write_submission(workdir: Path, count: int) -> None:
    """A job submitted into ``bench.train`` (the task of 100,000 jobs): its row, parameters,
    tags, digest, task-table row and submission, as the recorder writes them, with a report
    by each running job of ``curves``.  What is kept while no job's task, parameters or
    tags change is computed again after it."""
    from xpm.index._digests import params_digest
    from xpm.index._tasktables import refresh_task_rows

    write_index(workdir, count)
    ident = f"{random.Random(count).getrandbits(256):064x}"
    tags = [("model", "cnn", "str"), ("n_layers", count % 6, "int"), ("seed", count % 3, "int")]
    params = [
        ("model", "bench.model", "config", None),
        ("model.n_layers", count % 6, "int", None),
        ("epochs", 10, "int", None),
    ]
    conn = sqlite3.connect(workdir / "xpm.db")
    try:
        with conn:
            now = time.time()
            insert_jobs(
                conn, [job_row(ident, "bench.train", "WAITING", now, None, None, "sweep1/r1", 0)]
            )
            conn.execute(
                "UPDATE jobs SET params_digest = ? WHERE id = ?",
                (params_digest(params, tags), ident),
            )
            conn.execute("INSERT INTO submissions VALUES ('sweep1/r1', ?, ?)", (ident, now))
            conn.executemany("INSERT INTO tags VALUES (?, ?, ?, ?)", [(ident, *t) for t in tags])
            conn.executemany(
                "INSERT INTO params (job_id, path, value, type) VALUES (?, ?, ?, ?)",
                [(ident, *p[:3]) for p in params],
            )
            refresh_task_rows(conn, [ident])
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[float, bytes]:
    """Seconds for one GET of ``url`` and its body (fails loudly on anything but 200)."""
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as r:
        body = r.read()
        status = r.status
    elapsed = time.perf_counter() - start
    if status != 200:
        raise SystemExit(f"GET {url}: HTTP {status}")
    return elapsed, body


#: Pages a reader asks for by a link after a page (not the pages of the 300 ms goal).
ON_DEMAND = "on request: "


def pages(workdir: Path) -> list[tuple[str, str]]:
    """(name, path) of every page of the web view, on the jobs of this index."""
    conn = sqlite3.connect(workdir / "xpm.db")
    try:
        job, second = [r[0] for r in conn.execute("SELECT id FROM jobs LIMIT 2 OFFSET 5000")]
    finally:
        conn.close()
    jobs_page_2 = next_page(workdir)
    exp = "/-/xpm/experiment/sweep3"
    return [
        ("home", "/"),
        ("jobs table", "/xpm/jobs"),
        ("jobs table, page 2", jobs_page_2),
        ("experiment (10,000 jobs)", exp),
        ("its page 2", exp + "?page=2"),
        ("its last page", exp + "?page=200"),
        ("sorted by a parameter, page 100", exp + "?sort=param:model.n_layers&page=100"),
        ("sorted by a result", exp + "?sort=-result:accuracy"),
        ("filtered: tag and result", exp + "?where=n_layers%3D2&where=accuracy%3E0.5"),
        ("a filter no job meets (links why)", exp + "?where=n_layers%3E9&where=accuracy%3E0.5"),
        (
            ON_DEMAND + "which filter left nothing",
            exp + "?where=n_layers%3E9&where=accuracy%3E0.5&why=1",
        ),
        ("runs table of a task (100,000 jobs)", "/-/xpm/runs/bench.train"),
        ("a task's table, a filter no job meets", "/-/xpm/runs/bench.train?where=model%3Dgpt"),
        ("its page 1,000, sorted by a tag", "/-/xpm/runs/bench.train?page=1000&sort=tag:model"),
        (
            "chart, seeds averaged",
            "/-/xpm/chart?experiment=sweep3&metric=accuracy&x=n_layers&average=seed",
        ),
        ("chart by step", "/-/xpm/chart?experiment=sweep3&metric=loss&x=step"),
        (
            "chart by step, 5,000 jobs x 100 steps, seeds averaged",
            "/-/xpm/chart?experiment=curves&metric=loss&x=step&average=seed",
        ),
        ("parallel coordinates", "/-/xpm/chart?experiment=sweep3&metric=accuracy&view=parallel"),
        (
            "chart of 5,000 Evaluate jobs (each reads its Learn job's values)",
            "/-/xpm/chart?experiment=evals&metric=score&x=n_layers&average=seed",
        ),
        ("job page", f"/-/xpm/job/{job}"),
        ("compare two jobs", f"/-/xpm/compare?id={job}&id={second}"),
    ]


_NEXT: dict[str, str] = {}


def next_page(workdir: Path) -> str:
    """The URL of page 2 of the jobs table (found by ``check_facets``)."""
    return _NEXT.get(str(workdir), "/xpm/jobs")


def check_facets(base: str, workdir: Path) -> str:
    """Page 2 of /xpm/jobs counts the same as page 1 and as SQL; returns page 2's path."""
    import json

    first = json.loads(get(base + "/xpm/jobs.json")[1])
    path = f"/xpm/jobs?_next={urllib.parse.quote(first['next'])}"
    second = json.loads(get(base + path.replace("/xpm/jobs", "/xpm/jobs.json"))[1])
    conn = sqlite3.connect(workdir / "xpm.db")
    try:
        states = dict(conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
        experiments = dict(
            conn.execute(
                "SELECT r.experiment, COUNT(DISTINCT s.job_id) FROM submissions s "
                "JOIN runs r ON r.id = s.run GROUP BY r.experiment"
            ).fetchall()
        )
    finally:
        conn.close()

    def counts(data: dict[str, object], name: str) -> dict[str, int]:
        facet = data["facet_results"][name]  # type: ignore[index]
        return {v["value"]: v["count"] for v in facet["results"]}

    for name in ("task_id", "state", "experiment", "tags"):
        if counts(second, name) != counts(first, name):
            raise SystemExit(f"facet {name}: page 2 counts differ from page 1")
    if counts(second, "state") != states:
        raise SystemExit(f"facet state: {counts(second, 'state')} != {states} (SQL)")
    if counts(second, "experiment") != experiments:
        raise SystemExit(f"facet experiment: {counts(second, 'experiment')} != {experiments}")
    _NEXT[str(workdir)] = path
    return path


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 100_000
    runs = int(args[1]) if len(args) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) / "workdir"
        workdir.mkdir()
        start = time.perf_counter()
        build(workdir, n, with_curves=True)
        print(f"built an index of {n} jobs in {time.perf_counter() - start:.1f} s")
        # The 460 MB just written go to disk now, not while pages are timed.
        os.sync()
        port = free_port()
        proc = subprocess.Popen(
            [python(), "-m", "xpm.cli", "serve", "--workdir", str(workdir), "--port", str(port)],
            env=env_with_path(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        rows = []
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if "serving" not in line:
                raise SystemExit(
                    f"xpm serve did not start: {line} {proc.stderr.read() if proc.stderr else ''}"
                )
            base = f"http://127.0.0.1:{port}"
            check_facets(base, workdir)
            print("facet counts of /xpm/jobs page 2: the same as page 1 and as SQL")
            for name, path in pages(workdir):
                first = get(base + path)[0]
                times = [get(base + path)[0] for _ in range(runs)]
                written, rewritten, submitted = [], [], []
                for _ in range(runs):
                    write_index(workdir, len(rows) * runs + len(written))
                    written.append(get(base + path)[0])
                for _ in range(runs):
                    write_job_row(workdir, 10**6 + len(rows) * runs + len(rewritten))
                    rewritten.append(get(base + path)[0])
                for _ in range(runs):
                    write_submission(workdir, 2 * 10**6 + len(rows) * runs + len(submitted))
                    submitted.append(get(base + path)[0])
                rows.append(
                    (
                        name,
                        path,
                        first,
                        statistics.median(times),
                        statistics.median(written),
                        statistics.median(rewritten),
                        statistics.median(submitted),
                    )
                )
        finally:
            proc.terminate()
            proc.communicate(timeout=30)
    print(
        f"| page ({n:,} jobs) | first GET | median of {runs} more "
        f"| median of {runs} after a report | median of {runs} after a job's row "
        f"| median of {runs} after a job is submitted |"
    )
    print("|---|---|---|---|---|---|")
    for name, _path, first, median, *after in rows:
        print(
            f"| {name} | {first * 1000:.0f} ms | {median * 1000:.0f} ms | "
            + " | ".join(f"{t * 1000:.0f} ms" for t in after)
            + " |"
        )
    slow = [
        name
        for name, _p, _f, *times in rows
        if max(times) >= 0.3 and not name.startswith(ON_DEMAND)
    ]
    print("goal: every page under 300 ms:", "met" if not slow else f"NOT met ({', '.join(slow)})")


if __name__ == "__main__":
    main()
