"""A 10,000-point sweep submitted to the local Slurm cluster, then detached (issue 18).

Run: ``python bench/bench_slurm_sweep.py [POINTS] [--own-cluster]`` (default 10,000) with
the cluster of tests/slurm/start-local-slurm.sh running.  ``--own-cluster`` (as root)
starts a second cluster beside it with the same script (``SLURM_LOCAL_*`` overrides:
``MaxJobCount=20000``, ``MaxArraySize=1001``, Slurm's default), runs the sweep there and
stops it: the shared cluster keeps finished jobs an hour, so its ``MaxJobCount`` leaves
too little room for 10,000 points (xpm would wait for room, which is not what this
measures).  The jobs are submitted held
(``options={"hold": True}``) so that they stay queued and never run on the small machine,
and are cancelled at the end.  Prints a markdown table: sbatch and scontrol calls, squeue
calls per poll (a poll of every job, then a re-attaching run), seconds to submit, peak open
descriptors of the experiment process and its peak memory.  Numbers go to
docs/performance.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from _common import ROOT, env_with_path, python

sys.path.insert(0, str(ROOT / "tests"))  # the second cluster's helper, shared with the tests
from _second_cluster import start_second_cluster, stop_second_cluster  # noqa: E402

TASKS = textwrap.dedent(
    """
    from xpm import Param, Task

    class Point(Task):
        lr: Param[float]
        seed: Param[int] = 0

        def execute(self):
            pass
    """
)

XP = textwrap.dedent(
    """
    import os, resource, sys, threading, time
    from xpm import experiment
    from xpm.launchers.slurm import SlurmLauncher
    from benchtasks import Point
    workdir, bindir, points = sys.argv[1], sys.argv[2], int(sys.argv[3])
    peak = [0]
    def sample():
        while True:
            peak[0] = max(peak[0], len(os.listdir("/proc/self/fd")))
            time.sleep(0.005)
    threading.Thread(target=sample, daemon=True).start()
    launcher = SlurmLauncher(binpath=bindir, poll_interval=5, options={"hold": True})
    start = time.perf_counter()
    with experiment(workdir, "sweep", progress=False, detach=True, launcher=launcher):
        for i in range(points):
            Point(lr=i / points, seed=i % 3).submit()
        loop = time.perf_counter() - start
    total = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{loop:.1f} {total:.1f} {peak[0]} {rss:.0f}")
    """
)

POLL = textwrap.dedent(
    """
    import sys
    from xpm._jobdir import iter_job_dirs
    from xpm.launchers import LaunchedJob
    from xpm.launchers.slurm import SlurmLauncher
    from pathlib import Path
    jobs = [LaunchedJob(j, j.read_status().launcher_job_id or "")
            for j in iter_job_dirs(Path(sys.argv[1]))]
    outcomes = SlurmLauncher(binpath=sys.argv[2]).poll([j for j in jobs if j.launcher_job_id])
    print(sum(o.state == "SUBMITTED" for o in outcomes.values()))
    """
)


def wrappers(bindir: Path, log: Path) -> None:
    """Slurm commands that log each call, then run the real one."""
    bindir.mkdir()
    for name in ("sbatch", "squeue", "sacct", "scontrol", "scancel"):
        real = shutil.which(name)
        assert real is not None, f"{name} not found: start tests/slurm/start-local-slurm.sh"
        (bindir / name).write_text(f'#!/bin/bash\necho "{name}" >> {log}\nexec {real} "$@"\n')
        (bindir / name).chmod(0o755)


def calls(log: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        counts[line] = counts.get(line, 0) + 1
    log.write_text("")
    return counts


def own_cluster(base: Path) -> dict[str, str]:
    """Start a second cluster under ``base`` with room for the sweep; the variables that
    name it (for its stop script) plus ``SLURM_CONF`` (for the commands)."""
    limits = {"MAX_JOB_COUNT": "20000", "MAX_ARRAY_SIZE": "1001"}
    return start_second_cluster(base / "cluster", "xpmbench", limits)


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--own-cluster"]
    points = int(args[0]) if args else 10_000
    base = Path(tempfile.mkdtemp(prefix="xpm-bench-slurm-"))
    bindir, log, workdir = base / "bin", base / "calls.log", base / "workdir"
    cluster = own_cluster(base) if "--own-cluster" in sys.argv else {}
    os.environ.update(cluster)  # the wrapped commands, the sweep and scancel reach it
    wrappers(bindir, log)
    (base / "benchtasks.py").write_text(TASKS)
    env = env_with_path([str(base)])
    try:
        run = [python(), "-c", XP, str(workdir), str(bindir), str(points)]
        out = subprocess.run(run, env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
        loop, total, fds, rss = out.stdout.split()
        submit = calls(log)
        poll = [python(), "-c", POLL, str(workdir), str(bindir)]
        queued = subprocess.run(poll, env=env, capture_output=True, text=True, check=True)
        polled = calls(log)
        again = subprocess.run(run, env=env, capture_output=True, text=True, check=False)
        reattach = calls(log)
        where = "own cluster, MaxJobCount=20000" if cluster else "shared cluster"
        print(f"| {points:,}-point sweep, submit + detach ({where}) | value |")
        print("|---|---|")
        print(f"| sbatch calls | {submit.get('sbatch', 0)} |")
        print(f"| scontrol calls (limits, releases) | {submit.get('scontrol', 0)} |")
        print(f"| squeue calls while submitting | {submit.get('squeue', 0)} |")
        print(f"| seconds: submission loop / until detached | {loop} / {total} |")
        print(f"| peak open descriptors | {fds} |")
        print(f"| peak memory (max RSS, MB) | {rss} |")
        print(f"| jobs queued in Slurm after detaching | {queued.stdout.strip()} |")
        print(f"| squeue calls to poll every job | {polled.get('squeue', 0)} |")
        print(
            f"| re-attaching run: squeue / sbatch calls, seconds | {reattach.get('squeue', 0)} / "
            f"{reattach.get('sbatch', 0)}, {again.stdout.split()[1] if again.stdout else '?'} |"
        )
    finally:
        ids = {
            line.split("_")[0]
            for line in subprocess.run(
                [
                    "bash",
                    "-c",
                    f"cat {workdir}/jobs/*/*/events.jsonl | grep -o '\"launcher_job_id\": \"[0-9]*' | grep -o '[0-9]*$' | sort -u",
                ],
                capture_output=True,
                text=True,
            ).stdout.split()
        }
        if ids:
            subprocess.run(["scancel", *sorted(ids)], check=False)
        if cluster:
            stop_second_cluster(cluster)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
