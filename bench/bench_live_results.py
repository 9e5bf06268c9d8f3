"""Live results (issue 15): what reading running jobs' results.jsonl costs the experiment.

Run: ``python bench/bench_live_results.py [seconds]`` (prints a markdown table; numbers go
to docs/performance.md).

1. 100 local jobs running at once, each reporting 10 values a second (one ``report()``
   a tenth of a second) for ``seconds`` (default 20): CPU time of the experiment process
   (all its threads) per second of wall time, with live results on and with them off
   (the recorder's look at running jobs disabled); the difference is their cost.
2. One job reporting 1,000,000 values (100,000 reports of 10 keys, as fast as it can):
   the experiment process's CPU time, how long after the job's end the experiment ends
   (both with live results off too),
   rows kept in ``results`` (thinned: the file keeps everything), the index's size, and
   the time of the task-table query showing its latest values.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import env_with_path, python  # noqa: E402

TASKS = textwrap.dedent(
    """
    import time
    from xpm import Meta, Param, Task

    class Reporter(Task):
        n: Param[int]
        seconds: Meta[float] = 10.0

        def execute(self):
            start = time.monotonic()
            step = 0
            while time.monotonic() - start < self.seconds:
                self.report(loss=1.0 / (step + 1), step=step)
                step += 1
                time.sleep(max(0.0, start + step * 0.1 - time.monotonic()))

    class Flood(Task):
        reports: Param[int] = 100_000

        def execute(self):
            for step in range(self.reports):
                self.report(step=step, **{f"k{i}": step * i for i in range(10)})
    """
)

XP = textwrap.dedent(
    """
    import json, sys, time
    from xpm import experiment
    from xpm.launchers import LocalLauncher
    import xpm.index._recorder as recorder
    from benchtasks import Flood, Reporter
    workdir, what, seconds, live = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    if live == "off":
        recorder.LIVE_INTERVAL = 1e9
    cpu0, wall0 = time.process_time(), time.monotonic()
    with experiment(workdir, "bench", progress=False,
                    launcher=LocalLauncher(max_parallel=100)):
        if what == "reporters":
            for n in range(100):
                Reporter(n=n, seconds=seconds).submit()
        else:
            Flood().submit()
    print(json.dumps({"cpu": time.process_time() - cpu0, "wall": time.monotonic() - wall0,
                      "end": time.time()}))
    """
)


def run(tmp: Path, what: str, seconds: float, live: str) -> dict[str, float]:
    import subprocess

    wd = tmp / f"{what}-{live}"
    env = env_with_path([str(tmp)])
    env.pop("XPM_INDEX", None)
    out = subprocess.run(
        [python(), str(tmp / "xp.py"), str(wd), what, str(seconds), live],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    if what == "flood":
        events = next(wd.glob("jobs/*.flood/*/events.jsonl")).read_text().splitlines()
        ended = [json.loads(e)["time"] for e in events if '"DONE"' in e]
        result["after_end"] = result["end"] - ended[-1] if ended else float("nan")
        with sqlite3.connect(wd / "xpm.db") as conn:
            result["rows"] = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            start = time.perf_counter()
            conn.execute("SELECT * FROM flood").fetchall()
            result["query_ms"] = (time.perf_counter() - start) * 1000
        conn.close()
        result["db_mib"] = sum(p.stat().st_size for p in wd.glob("xpm.db*")) / 2**20
        result["file_mib"] = next(wd.glob("jobs/*.flood/*/results.jsonl")).stat().st_size / 2**20
    shutil.rmtree(wd)
    return result


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    tmp = Path(tempfile.mkdtemp(prefix="xpm-bench-live-"))
    os.environ.pop("XPM_INDEX", None)
    try:
        (tmp / "benchtasks.py").write_text(TASKS)
        (tmp / "xp.py").write_text(XP)
        on = run(tmp, "reporters", seconds, "on")
        off = run(tmp, "reporters", seconds, "off")
        flood = run(tmp, "flood", 0, "on")
        flood_off = run(tmp, "flood", 0, "off")
        share_on = on["cpu"] / on["wall"] * 100
        share_off = off["cpu"] / off["wall"] * 100
        print("| measurement | result | target |\n|---|---|---|")
        print(
            f"| 100 running jobs x 10 values/s for {seconds:.0f} s: experiment process CPU, "
            f"live results on / off | {share_on:.1f}% / {share_off:.1f}% of a core "
            f"(live results: +{share_on - share_off:.1f} points) | <= +5% |"
        )
        print(
            f"| one job reporting 1,000,000 values (100,000 lines, {flood['file_mib']:.0f} MiB "
            f"file) | experiment CPU {flood['cpu']:.1f} s (live results off: "
            f"{flood_off['cpu']:.1f} s), ended {flood['after_end']:.1f} s after the job "
            f"(off: {flood_off['after_end']:.1f} s); {flood['rows']:,} rows in results, index "
            f"{flood['db_mib']:.0f} MiB; task-table query {flood['query_ms']:.1f} ms "
            "| no slow-down |"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
