"""Identifiers per second for a config with 3 scalar params and one nested config of 2 params.

Target (issue 2): at least 50,000 identifiers/s.  Two measurements, median of 5 runs each:

* construct + identifier: build the nested and the outer configuration, then hash;
* identifier alone: hash an already built (unfrozen, so uncached) configuration.

Usage: ``python bench/bench_identifiers.py [--n N]``; prints a markdown table row.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable

from xpm import Config, Meta, Param

TARGET = 50_000


class Optimizer(Config):
    lr: Param[float] = 1e-3
    momentum: Param[float] = 0.9


class Model(Config):
    n_layers: Param[int] = 2
    activation: Param[str] = "relu"
    dropout: Param[float] = 0.1
    optimizer: Param[Optimizer]
    device: Meta[str] = "cpu"


def construct_and_hash(i: int) -> str:
    return Model(n_layers=i, dropout=0.5, optimizer=Optimizer(lr=0.01)).__identifier__().hex


def rate(fn: Callable[[int], object], n: int, runs: int = 5) -> float:
    """Median calls per second of ``fn`` over ``runs`` runs of ``n`` calls."""
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=50_000, help="calls per run (default 50000)")
    args = parser.parse_args(argv)

    built = Model(n_layers=3, dropout=0.5, optimizer=Optimizer(lr=0.01))
    rate(construct_and_hash, 1000, runs=1)  # warm up (class info, caches)
    both = rate(construct_and_hash, args.n)
    alone = rate(lambda _i: built.__identifier__().hex, args.n)

    py = f"Python {platform.python_version()}"
    print("| benchmark | construct + identifier (/s) | identifier alone (/s) | target | python |")
    print("|---|---|---|---|---|")
    print(
        f"| identifiers (3 scalars + nested 2) | {both:,.0f} | {alone:,.0f} "
        f"| >= {TARGET:,}/s | {py} |"
    )
    return 0 if both >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
