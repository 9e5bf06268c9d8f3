"""Find a launcher for a resource spec such as ``"cuda(mem=16G) * 2 & duration=2 days"``.

Public API::

    from xpm.launcherfinder import find_launcher
    launcher = find_launcher("duration=2 days & cuda(mem=16G) * 4 | cpu(cores=4)")

The spec language is parsed by :func:`parse_spec`; hosts come from launchers.yaml
(see :func:`find_launchers_file`) or, without one, the local machine alone.
Importing this package imports neither PyYAML nor any launcher backend.
"""

from __future__ import annotations

from ..errors import LauncherError, SpecError
from ._hosts import Host, HostEntry, local_host
from ._registry import (
    ENV_VARIABLE,
    AlternativeReport,
    LauncherRegistry,
    Match,
    explain,
    find_launcher,
    find_launchers_file,
    find_match,
    launcher_config,
    load_registry,
    require_launcher,
)
from ._spec import (
    ACCELERATOR_TYPES,
    DURATION_UNITS,
    MEMORY_UNITS,
    Accelerator,
    CPURequirement,
    Requirement,
    Spec,
    format_duration,
    format_size,
    parse_duration,
    parse_size,
    parse_spec,
)

__all__ = [
    "ACCELERATOR_TYPES",
    "DURATION_UNITS",
    "ENV_VARIABLE",
    "MEMORY_UNITS",
    "Accelerator",
    "AlternativeReport",
    "CPURequirement",
    "Host",
    "HostEntry",
    "LauncherError",
    "LauncherRegistry",
    "Match",
    "Requirement",
    "Spec",
    "SpecError",
    "explain",
    "find_launcher",
    "find_launchers_file",
    "find_match",
    "format_duration",
    "format_size",
    "launcher_config",
    "load_registry",
    "local_host",
    "parse_duration",
    "parse_size",
    "parse_spec",
    "require_launcher",
    "slurm_mem",
    "slurm_time",
]


def __getattr__(name: str) -> object:
    # Slurm's formatting belongs to its launcher; kept here by name for older code.
    if name in ("slurm_mem", "slurm_time"):
        from ..launchers import slurm

        return getattr(slurm, name)
    raise AttributeError(name)
