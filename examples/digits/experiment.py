"""A hyper-parameter search over the MLP's depth and width, as in the seed tutorial."""

from __future__ import annotations

from tasks import MLP, Digits, Evaluate, Learn, Optimizer

from xpm import tag
from xpm.experiments import ExperimentHelper, configuration


@configuration
class Configuration:
    """What debug.yaml and full.yaml set."""

    epochs: int
    """Maximum training epochs"""
    n_layers: list[int]
    """Depths to try"""
    hidden: list[int]
    """Widths to try"""
    learning_rate: float = 1e-3
    """Adam's learning rate"""
    launcher: str = "duration=1 hours & cpu(cores=1)"
    """Resources each job needs, in find_launcher's spec language"""


def run(helper: ExperimentHelper, cfg: Configuration) -> None:
    """Train and evaluate one model per (n_layers, hidden) pair."""
    launcher = helper.require_launcher(cfg.launcher)  # an error says why no host fits
    data = Digits(test_size=0.25, seed=0)
    optimizer = Optimizer(learning_rate=cfg.learning_rate)
    for n_layers in cfg.n_layers:
        for hidden in cfg.hidden:
            model = MLP(n_layers=tag(n_layers), hidden=tag(hidden))
            learned = Learn(model=model, optimizer=optimizer, data=data, epochs=cfg.epochs).submit(
                launcher=launcher
            )
            Evaluate(model=learned).submit(launcher=launcher)
