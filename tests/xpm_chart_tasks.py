"""Tasks of the chart tests (tests/test_datasette_charts.py); imported by job processes too.

``Fit`` has Meta parameters (a device, a sleep, an output path) that must never split
a chart; ``Score`` uses a ``Fit`` job's output through a Meta path only, so two Score
jobs differ by nothing but the Fit job they use.
"""

from __future__ import annotations

from pathlib import Path

from xpm import Config, Meta, Param, PathGenerator, Task, field


class Fitted(Config):
    """The output of Fit: where its model is (a Meta path, nothing else)."""

    path: Meta[Path]


class Fit(Task):
    """Reports an accuracy from lr and seed (and, for the per-step curve, a loss)."""

    lr: Param[float]
    seed: Param[int]
    epochs: Param[int] = 1
    device: Meta[str] = "cpu"
    sleep: Meta[float] = 0.0
    model_path: Meta[Path] = field(default_factory=PathGenerator("model.txt"))

    def execute(self) -> None:
        for step in range(3):
            self.report(loss=1.0 / (1 + step * self.lr), step=step)
        accuracy = 0.5 + self.lr + self.seed / 100 + self.epochs / 10
        self.model_path.write_text(repr(accuracy))
        self.report(accuracy=accuracy)

    def task_outputs(self, dep):  # type: ignore[no-untyped-def]
        return dep(Fitted(path=self.model_path))


class Score(Task):
    """Reports the accuracy of the model a Fit job wrote."""

    model: Param[Fitted]

    def execute(self) -> None:
        self.report(accuracy=float(self.model.path.read_text()))


class Refit(Task):
    """Fine-tunes a Fit job's model: a second level between Score and Fit."""

    model: Param[Fitted]
    model_path: Meta[Path] = field(default_factory=PathGenerator("model.txt"))

    def execute(self) -> None:
        self.model_path.write_text(self.model.path.read_text())

    def task_outputs(self, dep):  # type: ignore[no-untyped-def]
        return dep(Fitted(path=self.model_path))
