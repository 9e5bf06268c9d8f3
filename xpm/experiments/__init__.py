"""Experiments described by a YAML file and a Python module (``xpm run-experiment``).

``experiment.py``::

    from xpm.experiments import ExperimentHelper, configuration

    @configuration
    class Configuration:
        epochs: int
        n_layers: list[int]

    def run(helper: ExperimentHelper, cfg: Configuration) -> None: ...

``debug.yaml``::

    file: experiment
    epochs: 16
    n_layers: [3, 5]

See docs/experiments.md.  Importing this package imports neither PyYAML nor the scheduler
(task modules often import it, and job processes import task modules).
"""

from __future__ import annotations

from ..workdir import DEFAULT_WORKDIR, WORKDIR_ENV
from ._configuration import RESERVED_KEYS, configuration, describe_configuration, is_configuration
from ._helper import DIRTY_GIT_MODES, ExperimentHelper, run_experiment_file, run_prepared
from ._loader import (
    RUN_MODES,
    ExperimentFile,
    PreparedExperiment,
    apply_overrides,
    load_yaml,
    parse_override,
    prepare,
    resolve_workdir,
)

__all__ = [
    "DEFAULT_WORKDIR",
    "DIRTY_GIT_MODES",
    "RESERVED_KEYS",
    "RUN_MODES",
    "WORKDIR_ENV",
    "ExperimentFile",
    "ExperimentHelper",
    "PreparedExperiment",
    "apply_overrides",
    "configuration",
    "describe_configuration",
    "is_configuration",
    "load_yaml",
    "parse_override",
    "prepare",
    "resolve_workdir",
    "run_experiment_file",
    "run_prepared",
]
