"""Where the 100-trivial-task ratio of issue 3 goes: the job side versus the experiment side.

Run: ``python bench/bench_job_overhead.py [runs]``.  Whole processes, medians:

1. one job process (``python -m xpm.run JOBDIR``) versus ``python -c "import xpm"``, 20 of
   each one at a time: what the job side adds per job;
2. the 100-task run of bench_scheduler.py with every job replaced by a bare
   ``python -c "import xpm"`` process, versus the same floor: what the experiment process
   (scheduler, index writer, start and end) adds on its own;
3. from the experiment script's start to its first launch.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import env_with_path, import_floor, python, time_process
from bench_scheduler import TASKS, XP

# Every job's command becomes a bare `import xpm` process (not an xpm.run command, so the
# local launcher starts it as given instead of forking it from its server).
FAKE_JOBS = (
    "import sys\n"
    "import xpm._scheduler as scheduler\n"
    "def bare(job):\n"
    "    return [sys.executable, '-c', 'import xpm'], scheduler.job_environment()\n"
    "scheduler.Scheduler._command = staticmethod(bare)\n"
    "exec(open(sys.argv[0].replace('fake.py', 'xp.py')).read())\n"
)

FIRST_LAUNCH = (
    "import sys, time\n"
    "start = time.perf_counter()\n"
    "import xpm.launchers.local as local\n"
    "submit = local.LocalLauncher.submit\n"
    "def first(self, *a, **k):\n"
    "    print(time.perf_counter() - start, file=sys.stderr, flush=True)\n"
    "    local.LocalLauncher.submit = submit\n"
    "    return submit(self, *a, **k)\n"
    "local.LocalLauncher.submit = first\n"
    "exec(open(sys.argv[0].replace('first.py', 'xp.py')).read())\n"
)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    (Path(__file__).parent / ".work").mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="xpm-bench-", dir=Path(__file__).parent / ".work"))
    try:
        for name, text in (("benchtasks.py", TASKS), ("xp.py", XP)):
            (tmp / name).write_text(text)
        (tmp / "fake.py").write_text(FAKE_JOBS)
        (tmp / "first.py").write_text(FIRST_LAUNCH)
        env = env_with_path([str(tmp)])

        # 1. job process versus `import xpm`, one at a time.
        wd = tmp / "jobs20"
        time_process([python(), str(tmp / "xp.py"), str(wd), "generate", "20", "1"], env=env)
        jobdirs = sorted(p for p in (wd / "jobs").glob("*/*") if p.is_dir())
        extra = []
        for _ in range(runs):
            bare = statistics.median(
                time_process([python(), "-c", "import xpm"], env=env) for _ in jobdirs
            )
            job = []
            for jobdir in jobdirs:
                for name in ("done", "events.jsonl", "running.lock"):
                    (jobdir / name).unlink(missing_ok=True)
                job.append(time_process([python(), "-m", "xpm.run", str(jobdir)], env=env))
            extra.append((statistics.median(job) - bare) * 1000)

        # 2. the 100-task run with bare `import xpm` jobs, paired with its floor.
        ratios = []
        for r in range(runs):
            floor = import_floor(env)
            start = time.perf_counter()
            subprocess.run(
                [python(), str(tmp / "fake.py"), str(tmp / f"fake{r}"), "normal", "100", "2"],
                env=env,
                capture_output=True,  # the bare jobs end without a done marker: "failed"
            )
            ratios.append((time.perf_counter() - start) / floor)

        # 3. script start to first launch.
        firsts = []
        for r in range(runs):
            out = subprocess.run(
                [python(), str(tmp / "first.py"), str(tmp / f"first{r}"), "normal", "2", "2"],
                env=env,
                capture_output=True,
                text=True,
            )
            firsts.append(float(out.stderr.split()[0]) * 1000)

        print("| measurement | result |\n|---|---|")
        print(
            f"| job process over `import xpm` (median of {runs}) | {statistics.median(extra):.1f} ms |"
        )
        print(
            f"| 100 bare `import xpm` jobs through the scheduler, vs the floor | "
            f"ratio {statistics.median(ratios):.2f} |"
        )
        print(f"| experiment script start to first launch | {statistics.median(firsts):.0f} ms |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
