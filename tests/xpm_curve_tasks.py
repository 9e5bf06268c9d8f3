"""A task of the tests of clicks on curves over steps (tests/test_datasette_points.py and
the browser tests); imported by job processes too."""

from __future__ import annotations

from xpm import Meta, Param, Task


class Curve(Task):
    """Reports a loss at steps 0..4 (lower for a higher lr and seed); ``stop``: fails after
    reporting that step (a seed that failed early).  A Meta parameter: it never splits a
    chart's lines, as a crash does not."""

    lr: Param[float]
    seed: Param[int]
    stop: Meta[int] = -1

    def execute(self) -> None:
        for step in range(5):
            self.report(loss=1.0 / (1 + step * self.lr) + self.seed / 100, step=step)
            if step == self.stop:
                raise RuntimeError(f"stopped after step {step}, as asked")
