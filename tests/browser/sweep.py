"""A tiny experiment for the Datasette tests: ``python sweep.py WORKDIR [wait FILE]``.

Without arguments after WORKDIR it runs two experiments: ``sweep`` (Learn/Evaluate for
n_layers 1..3 reporting accuracy, and Train reporting a loss per step) and ``broken``
(one job that fails with a traceback on stderr).  ``wait FILE`` runs an experiment
``live`` whose one job blocks until FILE exists (to watch states change in the browser).
``seeds`` runs an experiment ``seeds``: Noisy for lr 0.01, 0.1, 1 (tagged), width 8 and 16
(not tagged) and seeds 0, 1, 2 (tagged), reporting an accuracy and a loss per step.
``curves`` runs an experiment ``curves``: a loss over steps 0..4 for seeds 0, 1, 2, seed 2
failing after step 1.
"""

from __future__ import annotations

import faulthandler
import math
import signal
import sys
import time
from pathlib import Path

from xpm_test_tasks import Evaluate, Fail, Learn, Model

from xpm import Meta, Param, Task, experiment, tag
from xpm.errors import JobsFailedError


class Train(Task):
    """Reports a decreasing loss at each step."""

    n_layers: Param[int]
    lr: Param[float] = 0.1
    steps: Meta[int] = 5

    def execute(self) -> None:
        for step in range(self.steps):
            loss = 1.0 / (1 + step * self.lr * self.n_layers)
            print(f"step {step} loss {loss:.4f}")
            self.report(loss=loss, step=step)


class Wait(Task):
    """Waits until a file exists."""

    n: Param[int] = 0
    until: Meta[str] = ""

    def execute(self) -> None:
        print("waiting for", self.until)
        while not Path(self.until).exists():
            time.sleep(0.05)
        self.report(waited=1)


class Noisy(Task):
    """Accuracy 0.5 + 0.1 log10(lr) + width/100 + seed/100; loss (1 + seed/100)/(1 + step)."""

    lr: Param[float]
    width: Param[int]
    seed: Param[int]

    def execute(self) -> None:
        for step in range(3):
            self.report(loss=(1 + self.seed / 100) / (1 + step), step=step)
        self.report(accuracy=0.5 + 0.1 * math.log10(self.lr) + self.width / 100 + self.seed / 100)


def main(workdir: str, *args: str) -> None:
    # A test that finds this run stuck asks where it is (every thread's stack on stderr).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    if args and args[0] == "seeds":
        with experiment(workdir, "seeds", progress=False):
            for lr in (0.01, 0.1, 1.0):
                for width in (8, 16):
                    for seed in (0, 1, 2):
                        Noisy(lr=tag(lr), width=width, seed=tag(seed)).submit()
        return
    if args and args[0] == "curves":  # seeds 0, 1, 2 of a loss by step; seed 2 fails early
        from xpm_curve_tasks import Curve

        try:
            with experiment(workdir, "curves", progress=False):
                for seed in (0, 1, 2):
                    Curve(lr=0.1, seed=tag(seed), stop=1 if seed == 2 else -1).submit()
        except JobsFailedError:
            pass  # expected: seed 2 stops after step 1
        return
    if args and args[0] == "wait":  # wait FILE [N]: job n=N (1) waits for FILE
        with experiment(workdir, "live", progress=False):
            Wait(n=int(args[2]) if len(args) > 2 else 1, until=args[1]).submit()
        return
    with experiment(workdir, "sweep", progress=False):
        for n in (1, 2, 3):
            learned = Learn(model=Model(n_layers=tag(n)), epochs=2).submit()
            Evaluate(model=learned).submit()
            Train(n_layers=tag(n), lr=tag(0.5)).submit()
    try:
        with experiment(workdir, "broken", progress=False):
            Fail(n=7).submit()
    except JobsFailedError:
        pass  # expected: the point of this experiment


if __name__ == "__main__":
    main(*sys.argv[1:])
