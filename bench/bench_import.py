"""What ``import xpm`` costs over a bare interpreter start, measured as whole processes.

Target (issue 2): ``python -c "import xpm"`` at most 100 ms slower than ``python -c pass``.
Both (and ``import experimaestro`` when it is installed, for comparison) are timed in the
same run: median wall-clock time of 10 processes each, interleaved so that machine noise
hits all of them alike.

Usage: ``python bench/bench_import.py [--runs N]``; prints a markdown table row.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import subprocess
import sys
import time

import _common  # noqa: F401  (bytecode caching as users have it)

TARGET_MS = 100.0


def run_ms(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.perf_counter() - start) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10, help="processes per command (default 10)")
    args = parser.parse_args(argv)

    commands = {"bare": "pass", "xpm": "import xpm"}
    if importlib.util.find_spec("experimaestro") is not None:
        commands["experimaestro"] = "import experimaestro"
    for code in commands.values():
        run_ms(code)  # warm the file system cache and .pyc files
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, code in commands.items():
            times[name].append(run_ms(code))
    med = {name: statistics.median(values) for name, values in times.items()}
    over = med["xpm"] - med["bare"]

    xpmo = med.get("experimaestro")
    xpmo_text = f"{xpmo - med['bare']:.1f} ms over" if xpmo is not None else "not installed"
    py = f"Python {platform.python_version()}"
    print(
        "| benchmark | `python -c pass` | `import xpm` | xpm over bare | target "
        "| `import experimaestro` | python |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| import (median of {args.runs} processes) | {med['bare']:.1f} ms | {med['xpm']:.1f} ms "
        f"| {over:.1f} ms | <= {TARGET_MS:.0f} ms | {xpmo_text} | {py} |"
    )
    return 0 if over <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
