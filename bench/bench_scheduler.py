"""Scheduler speed (issue 3): generate-mode submissions, 100 trivial tasks, re-running DONE jobs.

Run: ``python bench/bench_scheduler.py`` (prints a markdown table; numbers go to
docs/performance.md).  Every figure is a whole-process wall time, median of several runs.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

from _common import env_with_path, import_floor, median_time, python, time_process

TASKS = textwrap.dedent(
    """
    from xpm import Config, Param, Task

    class Inner(Config):
        a: Param[int] = 0
        b: Param[str] = "x"

    class Trivial(Task):
        n: Param[int]
        lr: Param[float] = 0.1
        name: Param[str] = "t"
        inner: Param[Inner]

        def execute(self):
            pass
    """
)

XP = textwrap.dedent(
    """
    import sys, time
    from xpm import experiment
    from xpm.launchers import LocalLauncher
    from benchtasks import Inner, Trivial
    workdir, mode, count, parallel = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    start = time.perf_counter()
    with experiment(workdir, "bench", run_mode=mode, progress=False,
                    launcher=LocalLauncher(max_parallel=parallel)) as xp:
        for i in range(count):
            Trivial(n=i, inner=Inner(a=i % 7)).submit()
        submitted = time.perf_counter()
    print(submitted - start, time.perf_counter() - start)
    """
)


FLOOR = textwrap.dedent(
    """
    import os, sys
    base = sys.argv[1]
    os.makedirs(f"{base}/jobs/t")
    for i in range(int(sys.argv[2])):
        job = f"{base}/jobs/t/{i:064d}"
        os.mkdir(job)
        fd = os.open(f"{job}/params.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b"x" * 1000)
        os.close(fd)
    """
)


def _generate(base: Path, tmp: Path, env: dict[str, str], runs: int) -> tuple[float, float, float]:
    """Generate mode under ``base``: (xpm's rate, the disk's floor rate, xpm time / floor time).

    Each xpm run is paired with a run of the floor right before it (a process that only makes
    the 10,000 directories and files), so a disk that changes speed over minutes is compared
    with itself.
    """
    rates, floors, ratios = [], [], []
    for _ in range(runs):
        floor_dir = Path(tempfile.mkdtemp(prefix="floor-", dir=base))
        work_dir = Path(tempfile.mkdtemp(prefix="gen-", dir=base))
        try:
            floor = time_process([python(), str(tmp / "floor.py"), str(floor_dir), "10000"])
            elapsed = time_process(
                [python(), str(tmp / "xp.py"), str(work_dir / "wd"), "generate", "10000", "2"],
                env=env,
            )
        finally:
            shutil.rmtree(floor_dir, ignore_errors=True)
            shutil.rmtree(work_dir, ignore_errors=True)
        rates.append(10000 / elapsed)
        floors.append(10000 / floor)
        ratios.append(elapsed / floor)
    return statistics.median(rates), statistics.median(floors), statistics.median(ratios)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    # Under the repository: the same file system as a project's workdir.
    (Path(__file__).parent / ".work").mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="xpm-bench-", dir=Path(__file__).parent / ".work"))
    try:
        (tmp / "benchtasks.py").write_text(TASKS)
        (tmp / "xp.py").write_text(XP)
        env = env_with_path([str(tmp)])
        rows = []

        # 1. generate mode: 10,000 distinct configurations, on the project's disk and, where
        # there is one, on a RAM file system (what xpm itself costs, without the disk).
        (tmp / "floor.py").write_text(FLOOR)
        places = [("project disk", tmp)]
        shm = Path("/dev/shm")
        if shm.is_dir() and os.access(shm, os.W_OK):
            places.append(("tmpfs", Path(tempfile.mkdtemp(prefix="xpm-bench-", dir=shm))))
        try:
            for label, base in places:
                rate, floor, ratio = _generate(base, tmp, env, runs)
                rows.append(
                    (
                        f"generate mode, 10,000 submissions (whole process), {label}",
                        f"{rate:,.0f} submissions/s (mkdir + write alone: {floor:,.0f}/s; "
                        f"xpm takes {ratio:.1f}x as long)",
                        ">= 2,000/s",
                    )
                )
        finally:
            for _label, base in places[1:]:
                shutil.rmtree(base, ignore_errors=True)

        # 2. 100 trivial local tasks, 2 at a time, versus the floor: 100 `import xpm` processes
        # 2 at a time.  Each run is paired with a floor measured right before it.  Jobs are
        # forked from the local fork server by default; XPM_FORK_SERVER=0 starts a fresh
        # interpreter per job (what Slurm jobs and other launchers do).
        for label, extra in (
            ("fork server (default)", {}),
            ("fresh interpreter per job (XPM_FORK_SERVER=0)", {"XPM_FORK_SERVER": "0"}),
        ):
            floors, runs100, ratios = [], [], []
            for r in range(runs):
                wd = tmp / f"run{r}-{len(extra)}"
                floor = import_floor(env)
                took = time_process(
                    [python(), str(tmp / "xp.py"), str(wd), "normal", "100", "2"],
                    env={**env, **extra},
                )
                floors.append(floor)
                runs100.append(took)
                ratios.append(took / floor)
            rows.append(
                (
                    f"100 trivial tasks, 2 at a time, {label}",
                    f"{statistics.median(runs100):.2f} s (floor {statistics.median(floors):.2f} s, "
                    f"ratio {statistics.median(ratios):.2f}; runs {min(ratios):.2f}-{max(ratios):.2f})",
                    "ratio <= 1.3",
                )
            )

        # 3. re-running 1,000 DONE jobs.
        wd = tmp / "done1000"
        time_process([python(), str(tmp / "xp.py"), str(wd), "normal", "1000", "2"], env=env)
        rerun = median_time(
            [python(), str(tmp / "xp.py"), str(wd), "normal", "1000", "2"], runs, env=env
        )
        bare = median_time([python(), "-c", "pass"], runs)
        rows.append(
            (
                "re-run of 1,000 DONE jobs",
                f"{rerun - bare:.2f} s beyond interpreter start ({rerun:.2f} s total)",
                "< 1 s",
            )
        )

        print("| measurement | result | target |\n|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
