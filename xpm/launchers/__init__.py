"""Launchers: where jobs run (``LocalLauncher``; ``SlurmLauncher`` in ``xpm.launchers.slurm``)."""

from ._base import LaunchedJob, Launcher, LaunchOutcome
from ._kinds import (
    KINDS,
    description_key,
    launcher_class,
    launcher_from_description,
    recorded_description,
)
from .local import LocalLauncher

__all__ = [
    "KINDS",
    "Launcher",
    "LaunchedJob",
    "LaunchOutcome",
    "LocalLauncher",
    "SlurmLauncher",
    "description_key",
    "launcher_class",
    "launcher_from_description",
    "recorded_description",
]


def __getattr__(name: str) -> object:
    if name == "SlurmLauncher":
        from .slurm import SlurmLauncher

        return SlurmLauncher
    raise AttributeError(name)
