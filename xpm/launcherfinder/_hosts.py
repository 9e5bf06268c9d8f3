"""The hosts of launchers.yaml: what each offers, and the validation of the file's content.

A :class:`Host` is a place to run jobs: the local machine, a Slurm partition, or a host of
any other launcher kind.  It holds what every kind shares (cores, memory, accelerators,
longest duration, priority, tags) and, in ``settings``, the keys its kind's launcher class
declares (:attr:`~xpm.launchers.Launcher.host_keys`) as that class read them
(:meth:`~xpm.launchers.Launcher.host_settings`): this module names no backend's keys.
:func:`parse_hosts` turns the parsed content of a launchers.yaml file into hosts, or
raises a :class:`~xpm.errors.LauncherError` naming the entry and key at fault.  No YAML
here: the registry reads the file.
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


@dataclass(frozen=True)
class Host:
    """A place to run jobs: the local machine, a Slurm partition, ...

    ``cores``/``memory`` (bytes)/``max_duration`` (seconds) are ``None`` when unknown
    or unlimited; matching then does not check them.  ``settings`` holds the keys of the
    host's kind (those its launcher class lists in ``host_keys``) that the file set, as
    that class read them; the class gives their defaults.
    """

    name: str
    type: str = "local"
    cores: int | None = None
    memory: int | None = None
    accelerators: tuple[Accelerator, ...] = ()
    max_duration: int | None = None
    priority: int = 0
    tags: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __str__(self) -> str:
        parts = [f"{self.name} ({self.type}", *self._described_settings()]
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

    def _described_settings(self) -> list[str]:
        """What the launcher class of the host's kind shows of its ``settings``."""
        if not self.settings:
            return []  # nothing to show: no backend imported
        from ..launchers import launcher_class

        try:
            return launcher_class(self.type).describe_host(self)
        except LauncherError:  # a kind this xpm does not know: its settings are not shown
            return []


@dataclass(frozen=True)
class HostEntry:
    """A mapping of launchers.yaml (a host, or one of its accelerators) and its place in the
    file (``where``: the file, the host's position and name).

    Its methods read one key each and raise a one-line :class:`~xpm.errors.LauncherError`
    naming the place, the key and what was expected; a launcher class reads its own
    :attr:`~xpm.launchers.Launcher.host_keys` with them
    (:meth:`~xpm.launchers.Launcher.host_settings`).
    """

    data: Mapping[str, Any]
    where: str

    @staticmethod
    def shown(value: Any) -> str:
        """``value`` as an error message shows what was found (``str 'pbs'``, ``nothing``)."""
        return "nothing" if value is None else f"{type(value).__name__} {value!r}"

    def error(self, message: str) -> LauncherError:
        """The error of this entry saying ``message`` (``"options: ..."``)."""
        return LauncherError(f"{self.where}: {message}")

    def expected(self, key: str, expected: str) -> LauncherError:
        """The error of ``key`` holding something else than ``expected``."""
        return self.error(f"{key}: expected {expected}, got {self.shown(self.data.get(key))}")

    def check_keys(self, valid: Sequence[str]) -> None:
        """Refuse a key not in ``valid``, listing the valid ones."""
        for key in self.data:
            if key not in valid:
                raise self.error(f"unknown key {key!r}; valid keys: {', '.join(sorted(valid))}")

    def string(self, key: str) -> str | None:
        """A non-empty string, or None when absent."""
        value = self.data.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise self.expected(key, "a non-empty string")
        return value

    def integer(self, key: str, *, minimum: int | None) -> int | None:
        """An integer (not a boolean) at least ``minimum``, or None when absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (minimum is not None and value < minimum)
        ):
            bound = f" >= {minimum}" if minimum is not None else ""
            raise self.expected(key, f"an integer{bound}")
        return value

    def choice(self, key: str, valid: Sequence[str]) -> str | None:
        """One of ``valid``, or None when absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if value not in valid:
            raise self.expected(key, f"one of {', '.join(valid)}")
        return str(value)

    def parsed(self, key: str, parse: Callable[[str], int], expected: str) -> int | None:
        """A string parsed by ``parse`` (None when absent); ``expected`` says what the
        error asks for."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.expected(key, expected)
        try:
            return parse(value)
        except SpecError as error:
            raise self.expected(key, expected) from error

    def size(self, key: str) -> int | None:
        """A memory size in bytes (``16G``, ``16GiB``), or None when absent."""
        return self.parsed(
            key, parse_size,
            "a memory size like 16G or 16GiB (units K, M, G, T, KiB, MiB, GiB, TiB)",
        )  # fmt: skip

    def duration(self, key: str) -> int | None:
        """A duration in seconds (``2 days``, ``12h``), or None when absent."""
        return self.parsed(key, parse_duration, "a duration like '2 days', '12h' or '90 minutes'")


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
            f"{where}: expected a mapping with a 'hosts' list at the top, "
            f"got {HostEntry.shown(data)}"
        )
    HostEntry(data, where).check_keys(_TOP_KEYS)
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


def _parse_accelerators(entry: HostEntry) -> tuple[Accelerator, ...]:
    value = entry.data.get("accelerators")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise entry.expected("accelerators", "a list like [{type: cuda, memory: 16G, count: 4}]")
    accelerators: list[Accelerator] = []
    for position, raw in enumerate(value):
        here = f"{entry.where}: accelerators[{position}]"
        if not isinstance(raw, Mapping):
            raise LauncherError(f"{here}: expected a mapping with keys type, memory, count")
        item = HostEntry(raw, here)
        item.check_keys(_ACCELERATOR_KEYS)
        kind = item.choice("type", ACCELERATOR_TYPES)
        memory = item.size("memory")
        if kind is None or memory is None:
            missing = "type" if kind is None else "memory"
            raise item.error(f"missing key {missing!r} (keys: type, memory, count)")
        count = item.integer("count", minimum=1)
        accelerators.extend([Accelerator(kind, memory)] * (1 if count is None else count))
    return tuple(accelerators)


def _parse_host(raw: Any, where: str) -> Host:
    if not isinstance(raw, Mapping):
        raise LauncherError(
            f"{where}: expected a mapping describing a host, got {HostEntry.shown(raw)}"
        )
    name = HostEntry(raw, where).string("name")
    if name is None:
        raise LauncherError(f"{where}: missing key 'name'")
    entry = HostEntry(raw, f"{where} ({name})")
    # Each launcher kind declares the keys of its hosts (imported only to read a file).
    from ..launchers import KINDS, launcher_class

    host_type = entry.choice("type", tuple(KINDS))
    if host_type is None:
        raise entry.error(f"missing key 'type' (one of {', '.join(KINDS)})")
    cls = launcher_class(host_type)
    valid = _COMMON_KEYS + cls.host_keys
    for key in raw:
        if key in valid:
            continue  # other kinds' classes load only to name a misplaced key's owner
        owners = [kind for kind in KINDS if key in launcher_class(kind).host_keys]
        if owners:
            raise entry.error(
                f"key {key!r} is only valid for {' or '.join(owners)} hosts; "
                f"valid keys for {host_type} hosts: {', '.join(sorted(valid))}"
            )
    entry.check_keys(valid)
    cores = entry.integer("cpus", minimum=1)
    memory = entry.size("memory")
    if host_type == "local":
        detected = local_host()
        cores = detected.cores if cores is None else cores
        memory = detected.memory if memory is None else memory
    tags = raw.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise entry.expected("tags", "a list of strings")
    return Host(
        name=name,
        type=host_type,
        cores=cores,
        memory=memory,
        accelerators=_parse_accelerators(entry),
        max_duration=entry.duration("max_duration"),
        priority=entry.integer("priority", minimum=None) or 0,
        tags=tuple(tags),
        settings=cls.host_settings(entry),
    )
