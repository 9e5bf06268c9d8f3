"""Scheduler speed (issue 3): generate-mode submissions, 100 trivial tasks, re-running DONE jobs.

Run: ``python bench/bench_scheduler.py`` (prints a markdown table; numbers go to
docs/performance.md).  Every figure is a whole-process wall time, median of several runs.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import env_with_path, median_time, python, time_process

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


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    tmp = Path(tempfile.mkdtemp(prefix="xpm-bench-"))
    try:
        (tmp / "benchtasks.py").write_text(TASKS)
        (tmp / "xp.py").write_text(XP)
        env = env_with_path([str(tmp)])
        rows = []

        # 1. generate mode: 10,000 distinct configurations.
        rates = []
        for r in range(runs):
            wd = tmp / f"gen{r}"
            elapsed = time_process([python(), str(tmp / "xp.py"), str(wd), "generate", "10000", "2"], env=env)
            rates.append(10000 / elapsed)
        rows.append(("generate mode, 10,000 submissions (whole process)", f"{statistics.median(rates):,.0f} submissions/s", ">= 2,000/s"))

        # 2. 100 trivial local tasks, 2 at a time, versus the floor: 100 `import xpm` processes 2 at a time.
        floor = []
        for _ in range(runs):
            start = time.perf_counter()
            procs: list = []
            import subprocess

            for _i in range(100):
                if len(procs) == 2:
                    procs.pop(0).wait()
                procs.append(subprocess.Popen([python(), "-c", "import xpm"], env=env))
            for p in procs:
                p.wait()
            floor.append(time.perf_counter() - start)
        run100 = []
        for r in range(runs):
            wd = tmp / f"run{r}"
            run100.append(time_process([python(), str(tmp / "xp.py"), str(wd), "normal", "100", "2"], env=env))
        f, t = statistics.median(floor), statistics.median(run100)
        rows.append(("100 trivial tasks, 2 at a time", f"{t:.2f} s (floor {f:.2f} s, ratio {t / f:.2f})", "ratio <= 1.3"))

        # 3. re-running 1,000 DONE jobs.
        wd = tmp / "done1000"
        time_process([python(), str(tmp / "xp.py"), str(wd), "normal", "1000", "2"], env=env)
        rerun = median_time([python(), str(tmp / "xp.py"), str(wd), "normal", "1000", "2"], runs, env=env)
        bare = median_time([python(), "-c", "pass"], runs)
        rows.append(("re-run of 1,000 DONE jobs", f"{rerun - bare:.2f} s beyond interpreter start ({rerun:.2f} s total)", "< 1 s"))

        print("| measurement | result | target |\n|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
