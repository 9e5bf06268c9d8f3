"""What ``xpm --help`` costs over a bare interpreter start, measured as whole processes.

Target (issue 5): ``xpm --help`` at most 150 ms slower than ``python -c pass``.  Both are
timed in the same run (median wall-clock time of N processes each, interleaved so machine
noise hits all alike), together with ``python -m xpm.cli --help`` and ``xpm --version``.

The ``xpm`` script is the one installed beside ``sys.executable`` (not a pyenv shim, whose
own bash start-up would dominate), else the first on PATH.

Usage: ``python bench/bench_cli.py [--runs N]``; prints a markdown table; exit 1 over target.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys

from _common import run_ms, xpm_script

TARGET_MS = 150.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10, help="processes per command (default 10)")
    args = parser.parse_args(argv)

    script = xpm_script()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "xpm --help": [*script, "--help"],
        "xpm --version": [*script, "--version"],
        "python -m xpm.cli --help": [sys.executable, "-m", "xpm.cli", "--help"],
        "xpm run-experiment --help": [*script, "run-experiment", "--help"],
    }
    for command in commands.values():
        run_ms(command)  # warm the file system cache and .pyc files
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            times[name].append(run_ms(command))
    med = {name: statistics.median(values) for name, values in times.items()}
    bare = med["python -c pass"]
    print(f"median of {args.runs} processes, Python {platform.python_version()}, {script[0]}")
    print()
    print("| command | median | over `python -c pass` | target |")
    print("|---|---|---|---|")
    for name, value in med.items():
        target = f"<= {TARGET_MS:.0f} ms" if name == "xpm --help" else ""
        over = "" if name == "python -c pass" else f"{value - bare:.1f} ms"
        print(f"| `{name}` | {value:.1f} ms | {over} | {target} |")
    return 0 if med["xpm --help"] - bare <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
