"""What a Slurm host of launchers.yaml sets beyond the keys every host has: its partition,
account, QOS, node constraint, how it is asked for GPUs and its other sbatch options.

Their reading (with launchers.yaml's one-line errors), their defaults and what a host's
description shows of them live here, beside the launcher they configure: launcherfinder
keeps them in ``Host.settings`` without knowing them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ..errors import LauncherError

if TYPE_CHECKING:
    from ..launcherfinder import Host, HostEntry

#: How a Slurm host is asked for GPUs: ``--gres=gpu:N`` (default) or ``--gpus=N``.
GPU_REQUESTS: tuple[str, ...] = ("gres", "gpus")

#: The host keys passed to sbatch as they are written.
_PASSED = ("partition", "account", "qos", "constraint")
#: sbatch options set from the spec or from the keys above; not allowed under ``options``.
_MANAGED_OPTIONS = ("time", "cpus-per-task", "mem", "gpus", "gres", *_PASSED)


@dataclass(frozen=True)
class SlurmHostSettings:
    """A Slurm host's own settings, with their defaults (``partition``: ``None`` leaves
    the host's name, see :meth:`partition_of`)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gpu_request: str = "gres"
    options: Mapping[str, str | int | bool] = field(default_factory=dict)

    @classmethod
    def of(cls, host: Host) -> SlurmHostSettings:
        """The settings of ``host`` (a Slurm host), the defaults for those it does not set."""
        unknown = sorted(set(host.settings) - set(HOST_KEYS))
        if unknown:
            raise LauncherError(
                f"host {host.name!r}: unknown Slurm host setting(s) {', '.join(unknown)}; "
                f"valid ones: {', '.join(HOST_KEYS)}"
            )
        return cls(**host.settings)

    def partition_of(self, host: Host) -> str:
        """The partition jobs go to: the ``partition`` key, else the host's name."""
        return self.partition or host.name


#: The keys of a Slurm host beyond the common ones (``SlurmLauncher.host_keys``).
HOST_KEYS: tuple[str, ...] = tuple(f.name for f in fields(SlurmHostSettings))


def read_host_settings(entry: HostEntry) -> dict[str, Any]:
    """The Slurm keys the launchers.yaml host ``entry`` sets, checked (a one-line error
    naming the file, the host and the key otherwise)."""
    settings: dict[str, Any] = {key: entry.string(key) for key in _PASSED}
    settings["gpu_request"] = entry.choice("gpu_request", GPU_REQUESTS)
    settings["options"] = _read_options(entry)
    return {key: value for key, value in settings.items() if value is not None}


def describe_host(host: Host) -> list[str]:
    """What ``str(host)`` shows of a Slurm host's settings: its partition when set."""
    partition = SlurmHostSettings.of(host).partition
    return [f"partition {partition}"] if partition else []


def _read_options(entry: HostEntry) -> dict[str, str | int | bool] | None:
    value = entry.data.get("options")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise entry.expected("options", "a mapping of sbatch options")
    options: dict[str, str | int | bool] = {}
    for key, option in value.items():
        if not isinstance(key, str) or not key:
            raise entry.error(f"options: option names must be strings, got {entry.shown(key)}")
        if key.replace("_", "-").lstrip("-") in _MANAGED_OPTIONS:
            raise entry.error(
                f"options: {key!r} is set by xpm (from the spec or the host's "
                f"{'/'.join(_PASSED)} keys); remove it from options"
            )
        if not isinstance(option, (str, int, bool)):
            raise entry.error(
                f"options: {key}: expected a string, integer or boolean, got {entry.shown(option)}"
            )
        options[key] = option
    return options
