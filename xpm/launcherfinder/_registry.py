"""Hosts from ``launchers.yaml`` and the launcher finder.

The file is looked up from ``$XPM_LAUNCHERS``, then beside the experiment's YAML (for
``xpm run-experiment``), then ``<workdir>/launchers.yaml``, then
``~/.config/xpm/launchers.yaml``.  Without any file, the local machine is
the only host.  PyYAML is imported only when a file is actually read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LauncherError, SpecError
from ._spec import (
    ACCELERATOR_TYPES,
    Accelerator,
    Requirement,
    Spec,
    format_duration,
    format_size,
    parse_duration,
    parse_size,
    parse_spec,
)

if TYPE_CHECKING:
    from ..launchers import Launcher

#: Environment variable naming the launchers.yaml file to use.
ENV_VARIABLE = "XPM_LAUNCHERS"
#: File name looked up in the workdir and in ``~/.config/xpm``.
FILE_NAME = "launchers.yaml"
#: Host types.
HOST_TYPES: tuple[str, ...] = ("local", "slurm")
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
_SLURM_KEYS = ("partition", "account", "qos", "constraint", "gpu_request", "options")
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


# --------------------------------------------------------------------------- launcher options


def slurm_time(seconds: int) -> str:
    """A Slurm ``--time`` value (``D-HH:MM:SS``), rounded up to whole minutes."""
    minutes = -(-seconds // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:00"


def slurm_mem(size: int) -> str:
    """A Slurm ``--mem`` value.  Slurm's M/G are binary: round up to whole MiB."""
    mebibytes = -(-size // 1024**2)
    if mebibytes % 1024 == 0:
        return f"{mebibytes // 1024}G"
    return f"{mebibytes}M"


def launcher_config(host: Host, requirement: Requirement) -> tuple[str, dict[str, Any]]:
    """The launcher class name and keyword arguments running ``requirement`` on ``host``.

    Pure: imports no launcher.  ``LocalLauncher`` gets ``max_parallel``: how many jobs
    needing the requested cores fit on the host at once (``None``, one job per core, when no
    cores are requested); ``SlurmLauncher`` gets the partition, the host's sbatch
    options and time/cpus/mem/GPUs filled from the requirement.  GPUs go to ``gpus``
    (which ``SlurmLauncher`` writes as ``--gres=gpu:N``), or to ``options["gpus"]``
    (``--gpus=N``) for a host with ``gpu_request: gpus``.
    """
    if host.type == "local":
        cores = requirement.cpu.cores
        if not cores:
            return "LocalLauncher", {"max_parallel": None}
        return "LocalLauncher", {"max_parallel": max(1, (host.cores or 1) // cores)}
    options: dict[str, Any] = dict(host.options)
    gpus: int | None = len(requirement.accelerators) or None
    if gpus is not None and host.gpu_request == "gpus":
        options["gpus"] = gpus
        gpus = None
    return "SlurmLauncher", {
        "partition": host.partition or host.name,
        "time": slurm_time(requirement.duration) if requirement.duration is not None else None,
        "cpus_per_task": requirement.cpu.cores,
        "mem": slurm_mem(requirement.cpu.mem) if requirement.cpu.mem is not None else None,
        "gpus": gpus,
        "account": host.account,
        "qos": host.qos,
        "constraint": host.constraint,
        "options": options,
    }


def _make_launcher(host: Host, requirement: Requirement) -> Launcher:
    """Instantiate the launcher of :func:`launcher_config` (imports the backend lazily)."""
    name, kwargs = launcher_config(host, requirement)
    if name == "LocalLauncher":
        from ..launchers.local import LocalLauncher

        return LocalLauncher(**kwargs)
    from ..launchers.slurm import SlurmLauncher

    return SlurmLauncher(**kwargs)


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Match:
    """The host chosen for a spec, with the alternative (0-based index) it satisfies."""

    index: int
    requirement: Requirement
    host: Host

    def launcher_config(self) -> tuple[str, dict[str, Any]]:
        """See :func:`launcher_config`."""
        return launcher_config(self.host, self.requirement)

    def make_launcher(self) -> Launcher:
        """A configured launcher instance (imports the backend module)."""
        return _make_launcher(self.host, self.requirement)

    def __str__(self) -> str:
        return f"alternative {self.index + 1} ({self.requirement}) on {self.host.name}"


@dataclass(frozen=True)
class AlternativeReport:
    """How one alternative fared: for every host, why it fails (empty when it fits)."""

    index: int
    requirement: Requirement
    failures: tuple[tuple[Host, tuple[str, ...]], ...]

    @property
    def fitting(self) -> list[Host]:
        """Hosts that can run the alternative, in file order."""
        return [host for host, reasons in self.failures if not reasons]

    @property
    def best(self) -> Host | None:
        """The highest-priority fitting host (the first one in file order on ties)."""
        fitting = self.fitting
        return max(fitting, key=lambda host: host.priority) if fitting else None


@dataclass(frozen=True)
class LauncherRegistry:
    """The hosts one can run on, and where they were read from (``None``: built in)."""

    hosts: tuple[Host, ...]
    source: Path | None = None

    @classmethod
    def local_only(cls) -> LauncherRegistry:
        """The registry used when no launchers.yaml exists: the local machine only."""
        return cls(hosts=(local_host(),))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LauncherRegistry:
        """Read and validate a launchers.yaml file."""
        from .. import _yaml  # PyYAML only when a file is read

        path = Path(path)
        try:
            data = _yaml.read(path)
        except OSError as error:
            raise LauncherError(f"{path}: cannot read launchers file: {error}") from error
        except _yaml.YamlProblem as error:
            raise LauncherError(f"{path}: {error}") from None
        return cls.from_dict(data, source=path)

    @classmethod
    def from_dict(cls, data: Any, source: str | os.PathLike[str] | None = None) -> LauncherRegistry:
        """Validate the content of a launchers.yaml file (already parsed)."""
        where = str(source) if source is not None else "launchers configuration"
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
        return cls(hosts=tuple(hosts), source=Path(source) if source is not None else None)

    def evaluate(
        self, spec: str | Spec, tags: Sequence[str] | None = None
    ) -> list[AlternativeReport]:
        """Check every alternative against every host."""
        parsed = parse_spec(spec) if isinstance(spec, str) else spec
        reports = []
        for index, requirement in enumerate(parsed.alternatives):
            failures = []
            for host in self.hosts:
                reasons = [f"lacks tag {tag!r}" for tag in tags or () if tag not in host.tags]
                reasons.extend(requirement.mismatches(host))
                failures.append((host, tuple(reasons)))
            reports.append(AlternativeReport(index, requirement, tuple(failures)))
        return reports

    def find(self, spec: str | Spec, tags: Sequence[str] | None = None) -> Match | None:
        """The highest-priority host of the first alternative any host can run."""
        for report in self.evaluate(spec, tags):
            best = report.best
            if best is not None:
                return Match(report.index, report.requirement, best)
        return None

    def explain(self, spec: str | Spec, tags: Sequence[str] | None = None) -> str:
        """A multi-line account of which host fails each alternative, and on what."""
        origin = (
            f"hosts from {self.source}" if self.source else "no launchers.yaml: local machine only"
        )
        lines = [origin]
        chosen = False
        for report in self.evaluate(spec, tags):
            head = f"alternative {report.index + 1} ({report.requirement})"
            if chosen:
                lines.append(f"{head}: not tried")
                continue
            best = report.best
            if best is not None:
                chosen = True
                lines.append(f"{head}: matches {best.name} (priority {best.priority})")
            else:
                lines.append(f"{head}: no host matches")
            for host, reasons in report.failures:
                if reasons:
                    lines.append(f"  {host.name}: {'; '.join(reasons)}")
                elif host is not best:
                    lines.append(f"  {host.name}: fits (priority {host.priority})")
        if not chosen:
            lines.append("no launcher found")
        return "\n".join(lines)


# --------------------------------------------------------------------------- lookup


def find_launchers_file(
    workdir: str | os.PathLike[str] | None = None,
    *,
    beside: str | os.PathLike[str] | None = None,
) -> Path | None:
    """The launchers.yaml to use: ``$XPM_LAUNCHERS``, the one in the directory ``beside``
    (the experiment YAML's), the workdir's, then the user's (``~/.config/xpm``)."""
    from_env = os.environ.get(ENV_VARIABLE)
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise LauncherError(
                f"{ENV_VARIABLE}={from_env}: no such file; point it to a launchers.yaml or unset it"
            )
        return path
    candidates = []
    if beside is not None:
        candidates.append(Path(beside) / FILE_NAME)
    if workdir is not None:
        candidates.append(Path(workdir) / FILE_NAME)
    candidates.append(Path.home() / ".config" / "xpm" / FILE_NAME)
    return next((path.absolute() for path in candidates if path.is_file()), None)


def load_registry(
    workdir: str | os.PathLike[str] | None = None,
    *,
    beside: str | os.PathLike[str] | None = None,
) -> LauncherRegistry:
    """The registry of :func:`find_launchers_file`, or the local machine alone."""
    path = find_launchers_file(workdir, beside=beside)
    return LauncherRegistry.load(path) if path is not None else LauncherRegistry.local_only()


def _registry(
    registry: LauncherRegistry | str | os.PathLike[str] | None,
    workdir: str | os.PathLike[str] | None,
) -> LauncherRegistry:
    if registry is None:
        return load_registry(workdir)
    if isinstance(registry, LauncherRegistry):
        return registry
    return LauncherRegistry.load(registry)


def find_match(
    spec: str | Spec,
    *,
    workdir: str | os.PathLike[str] | None = None,
    registry: LauncherRegistry | str | os.PathLike[str] | None = None,
    tags: Sequence[str] | None = None,
) -> Match | None:
    """The chosen host and alternative for ``spec``, without creating a launcher."""
    return _registry(registry, workdir).find(spec, tags)


def find_launcher(
    spec: str | Spec,
    *,
    workdir: str | os.PathLike[str] | None = None,
    registry: LauncherRegistry | str | os.PathLike[str] | None = None,
    tags: Sequence[str] | None = None,
) -> Launcher | None:
    """A launcher configured for the first satisfiable alternative of ``spec``, or ``None``.

    ``registry`` is a :class:`LauncherRegistry` or the path of a launchers.yaml; by
    default the file is looked up (see :func:`find_launchers_file`).  With ``tags``,
    only hosts carrying all of them are considered.
    """
    match = find_match(spec, workdir=workdir, registry=registry, tags=tags)
    return match.make_launcher() if match is not None else None


def require_launcher(
    spec: str | Spec,
    *,
    workdir: str | os.PathLike[str] | None = None,
    registry: LauncherRegistry | str | os.PathLike[str] | None = None,
    tags: Sequence[str] | None = None,
) -> Launcher:
    """Like :func:`find_launcher`, but raises :class:`LauncherError` saying what failed."""
    hosts = _registry(registry, workdir)
    match = hosts.find(spec, tags)
    if match is None:
        details = hosts.explain(spec, tags).replace("\n  ", "; ").replace("\n", " | ")
        raise LauncherError(
            f"no launcher satisfies {str(spec)!r}: {details}; "
            "add a host to launchers.yaml or relax the spec"
        )
    return match.make_launcher()


def explain(
    spec: str | Spec,
    *,
    workdir: str | os.PathLike[str] | None = None,
    registry: LauncherRegistry | str | os.PathLike[str] | None = None,
    tags: Sequence[str] | None = None,
) -> str:
    """For each alternative of ``spec``, which host fails on what (see ``find_launcher``)."""
    return _registry(registry, workdir).explain(spec, tags)


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
    value = data.get(key)
    if value is None:
        return None
    message = (
        f"{where}: {key}: expected a memory size like 16G or 16GiB "
        f"(units K, M, G, T, KiB, MiB, GiB, TiB), got {_kind(value)}"
    )
    if not isinstance(value, str):
        raise LauncherError(message)
    try:
        return parse_size(value)
    except SpecError as error:
        raise LauncherError(message) from error


def _duration(data: Mapping[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    message = (
        f"{where}: {key}: expected a duration like '2 days', '12h' or '90 minutes', "
        f"got {_kind(value)}"
    )
    if not isinstance(value, str):
        raise LauncherError(message)
    try:
        return parse_duration(value)
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
    host_type = _choice(raw, "type", where, HOST_TYPES)
    if host_type is None:
        raise LauncherError(f"{where}: missing key 'type' (one of {', '.join(HOST_TYPES)})")
    valid = _COMMON_KEYS + (_SLURM_KEYS if host_type == "slurm" else ())
    for key in raw:
        if key in _SLURM_KEYS and host_type != "slurm":
            raise LauncherError(
                f"{where}: key {key!r} is only valid for slurm hosts; "
                f"valid keys for local hosts: {', '.join(sorted(valid))}"
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
