"""Launchers: where jobs run (``LocalLauncher``; ``SlurmLauncher`` in ``xpm.launchers.slurm``).

A launcher of your own subclasses :class:`Launcher`; the :class:`JobDir` it is handed is
the job directory (its ``path``, its logs ``stdout``/``stderr``, its ``identifier``).
"""

from .._jobdir import JobDir
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
    "JobDir",
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
