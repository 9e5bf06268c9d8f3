"""Helpers shared by the benchmark scripts: whole-process timings, medians."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Measure what users get: Python caches compiled modules (.pyc).  Some environments (this
# project's development machines among them) set PYTHONDONTWRITEBYTECODE, which makes every
# process compile every module from source again: ~40 ms per job process here.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False


def env_with_path(extra: list[str] | None = None) -> dict[str, str]:
    """The environment with the repository (and ``extra``) on PYTHONPATH."""
    paths = [str(ROOT), *(extra or [])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def time_process(
    argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> float:
    """Wall time of one whole process, in seconds; fails loudly when it fails."""
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stderr[-2000:]}")
    return elapsed


def import_floor(env: dict[str, str], count: int = 100, parallel: int = 2) -> float:
    """Wall time of ``count`` ``python -c "import xpm"`` processes, ``parallel`` at a time:
    the physical floor of running that many trivial jobs."""
    start = time.perf_counter()
    procs: list[subprocess.Popen[bytes]] = []
    for _ in range(count):
        if len(procs) == parallel:
            procs.pop(0).wait()
        procs.append(subprocess.Popen([python(), "-c", "import xpm"], env=env))
    for proc in procs:
        proc.wait()
    return time.perf_counter() - start


def median_time(argv: list[str], runs: int, **kw: object) -> float:
    """Median wall time of ``runs`` whole-process runs."""
    return statistics.median(time_process(argv, **kw) for _ in range(runs))  # type: ignore[arg-type]


def python() -> str:
    return sys.executable


def xpm_script() -> list[str]:
    """How to run the installed ``xpm`` command (beside this Python, on PATH, or -m)."""
    import shutil
    import sys

    beside = Path(sys.executable).parent / "xpm"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("xpm")
    return [found] if found else [sys.executable, "-m", "xpm.cli"]


def run_ms(command: list[str]) -> float:
    """Wall time of one whole process in milliseconds (output discarded)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000
