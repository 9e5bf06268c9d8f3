"""The hosts of launchers.yaml: what each offers, and the validation of the file's content.

A :class:`Host` is the local machine or a Slurm partition (cores, memory, accelerators,
longest duration, priority, tags, sbatch settings).  :func:`parse_hosts` turns the parsed
content of a launchers.yaml file into hosts, or raises a
:class:`~xpm.errors.LauncherError` naming the entry and key at fault.  No YAML here: the
registry reads the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import LauncherError, SpecError
from ._spec import (
    ACCELERATOR_TYPES,
    Accelerator,
    format_duration,
    format_size,
    parse_duration,
    parse_size,
)

#: How a Slurm host is asked for GPUs: ``--gres=gpu:N`` (default) or ``--gpus=N``.
GPU_REQUESTS: tuple[str, ...] = ("gres", "gpus")

_TOP_KEYS = ("hosts",)
_COMMON_KEYS = (
    "name",
    "type",
    "cpus",
    "memory",
    "accelerators",
    "max_duration",
    "priority",
    "tags",
)
_ACCELERATOR_KEYS = ("type", "memory", "count")
#: sbatch options set from the spec or from dedicated keys; not allowed under ``options``.
_MANAGED_OPTIONS = (
    "time",
    "cpus-per-task",
    "mem",
    "gpus",
    "gres",
    "partition",
    "account",
    "qos",
    "constraint",
)


@dataclass(frozen=True)
class Host:
    """A place to run jobs: the local machine or a Slurm partition.

    ``cores``/``memory`` (bytes)/``max_duration`` (seconds) are ``None`` when unknown
    or unlimited; matching then does not check them.
    """

    name: str
    type: str = "local"
    cores: int | None = None
    memory: int | None = None
    accelerators: tuple[Accelerator, ...] = ()
    max_duration: int | None = None
    priority: int = 0
    tags: tuple[str, ...] = ()
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gpu_request: str = "gres"
    options: Mapping[str, str | int | bool] = field(default_factory=dict, hash=False)

    def __str__(self) -> str:
        parts = [f"{self.name} ({self.type}"]
        if self.partition:
            parts.append(f"partition {self.partition}")
        if self.cores is not None:
            parts.append(f"{self.cores} cores")
        if self.memory is not None:
            parts.append(f"{format_size(self.memory)} memory")
        if self.accelerators:
            parts.append(f"{len(self.accelerators)} GPUs")
        if self.max_duration is not None:
            parts.append(f"max {format_duration(self.max_duration)}")
        parts.append(f"priority {self.priority}")
        return ", ".join(parts) + ")"


def local_host() -> Host:
    """The local machine: all its cores and memory, no accelerators, unlimited duration."""
    memory: int | None
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        memory = None
    return Host(name="local", type="local", cores=os.cpu_count(), memory=memory)


def parse_hosts(data: Any, where: str) -> tuple[Host, ...]:
    """The hosts of the content of a launchers.yaml file (already parsed); ``where`` names
    it in error messages."""
    if not isinstance(data, Mapping):
        raise LauncherError(
            f"{where}: expected a mapping with a 'hosts' list at the top, got {_kind(data)}"
        )
    _check_keys(data, _TOP_KEYS, where)
    raw_hosts = data.get("hosts")
    if not isinstance(raw_hosts, list) or not raw_hosts:
        raise LauncherError(f"{where}: 'hosts' must be a non-empty list of hosts")
    hosts: list[Host] = []
    for position, raw in enumerate(raw_hosts):
        host = _parse_host(raw, f"{where}: hosts[{position}]")
        if any(other.name == host.name for other in hosts):
            raise LauncherError(
                f"{where}: hosts[{position}]: duplicate host name {host.name!r}; "
                "names must be unique"
            )
        hosts.append(host)
    return tuple(hosts)


# --------------------------------------------------------------------------- validation


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"


def _check_keys(data: Mapping[Any, Any], valid: Sequence[str], where: str) -> None:
    for key in data:
        if key not in valid:
            raise LauncherError(
                f"{where}: unknown key {key!r}; valid keys: {', '.join(sorted(valid))}"
            )


def _string(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise LauncherError(f"{where}: {key}: expected a non-empty string, got {_kind(value)}")
    return value


def _integer(data: Mapping[str, Any], key: str, where: str, *, minimum: int | None) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (minimum is not None and value < minimum)
    ):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise LauncherError(f"{where}: {key}: expected an integer{bound}, got {_kind(value)}")
    return value


def _size(data: Mapping[str, Any], key: str, where: str) -> int | None:
    return _parsed(
        data, key, where, parse_size,
        "a memory size like 16G or 16GiB (units K, M, G, T, KiB, MiB, GiB, TiB)",
    )  # fmt: skip


def _duration(data: Mapping[str, Any], key: str, where: str) -> int | None:
    return _parsed(
        data, key, where, parse_duration, "a duration like '2 days', '12h' or '90 minutes'"
    )


def _parsed(
    data: Mapping[str, Any], key: str, where: str, parse: Callable[[str], int], expected: str
) -> int | None:
    """``data[key]`` parsed by ``parse`` (None when absent); a one-line error naming the
    file's place and what was expected otherwise."""
    value = data.get(key)
    if value is None:
        return None
    message = f"{where}: {key}: expected {expected}, got {_kind(value)}"
    if not isinstance(value, str):
        raise LauncherError(message)
    try:
        return parse(value)
    except SpecError as error:
        raise LauncherError(message) from error


def _choice(data: Mapping[str, Any], key: str, where: str, valid: Sequence[str]) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if value not in valid:
        raise LauncherError(
            f"{where}: {key}: expected one of {', '.join(valid)}, got {_kind(value)}"
        )
    return str(value)


def _parse_accelerators(value: Any, where: str) -> tuple[Accelerator, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise LauncherError(
            f"{where}: accelerators: expected a list like "
            f"[{{type: cuda, memory: 16G, count: 4}}], got {_kind(value)}"
        )
    accelerators: list[Accelerator] = []
    for position, raw in enumerate(value):
        here = f"{where}: accelerators[{position}]"
        if not isinstance(raw, Mapping):
            raise LauncherError(f"{here}: expected a mapping with keys type, memory, count")
        _check_keys(raw, _ACCELERATOR_KEYS, here)
        kind = _choice(raw, "type", here, ACCELERATOR_TYPES)
        memory = _size(raw, "memory", here)
        if kind is None or memory is None:
            missing = "type" if kind is None else "memory"
            raise LauncherError(f"{here}: missing key {missing!r} (keys: type, memory, count)")
        count = _integer(raw, "count", here, minimum=1)
        accelerators.extend([Accelerator(kind, memory)] * (1 if count is None else count))
    return tuple(accelerators)


def _parse_options(value: Any, where: str) -> dict[str, str | int | bool]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise LauncherError(
            f"{where}: options: expected a mapping of sbatch options, got {_kind(value)}"
        )
    options: dict[str, str | int | bool] = {}
    for key, option in value.items():
        if not isinstance(key, str) or not key:
            raise LauncherError(f"{where}: options: option names must be strings, got {_kind(key)}")
        if key.replace("_", "-").lstrip("-") in _MANAGED_OPTIONS:
            raise LauncherError(
                f"{where}: options: {key!r} is set by xpm (from the spec or the host's "
                "partition/account/qos/constraint keys); remove it from options"
            )
        if not isinstance(option, (str, int, bool)):
            raise LauncherError(
                f"{where}: options: {key}: expected a string, integer or boolean, got {_kind(option)}"
            )
        options[key] = option
    return options


def _parse_host(raw: Any, where: str) -> Host:
    if not isinstance(raw, Mapping):
        raise LauncherError(f"{where}: expected a mapping describing a host, got {_kind(raw)}")
    name = _string(raw, "name", where)
    if name is None:
        raise LauncherError(f"{where}: missing key 'name'")
    where = f"{where} ({name})"
    # Each launcher kind declares the keys of its hosts (imported only to read a file).
    from ..launchers import KINDS, launcher_class

    host_type = _choice(raw, "type", where, tuple(KINDS))
    if host_type is None:
        raise LauncherError(f"{where}: missing key 'type' (one of {', '.join(KINDS)})")
    valid = _COMMON_KEYS + launcher_class(host_type).host_keys
    for key in raw:
        owners = [kind for kind in KINDS if key in launcher_class(kind).host_keys]
        if owners and key not in valid:
            raise LauncherError(
                f"{where}: key {key!r} is only valid for {' or '.join(owners)} hosts; "
                f"valid keys for {host_type} hosts: {', '.join(sorted(valid))}"
            )
    _check_keys(raw, valid, where)
    cores = _integer(raw, "cpus", where, minimum=1)
    memory = _size(raw, "memory", where)
    if host_type == "local":
        detected = local_host()
        cores = detected.cores if cores is None else cores
        memory = detected.memory if memory is None else memory
    tags = raw.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise LauncherError(f"{where}: tags: expected a list of strings, got {_kind(tags)}")
    return Host(
        name=name,
        type=host_type,
        cores=cores,
        memory=memory,
        accelerators=_parse_accelerators(raw.get("accelerators"), where),
        max_duration=_duration(raw, "max_duration", where),
        priority=_integer(raw, "priority", where, minimum=None) or 0,
        tags=tuple(tags),
        partition=_string(raw, "partition", where),
        account=_string(raw, "account", where),
        qos=_string(raw, "qos", where),
        constraint=_string(raw, "constraint", where),
        gpu_request=_choice(raw, "gpu_request", where, GPU_REQUESTS) or "gres",
        options=_parse_options(raw.get("options"), where),
    )
