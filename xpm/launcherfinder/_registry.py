"""The launcher finder: the registry of hosts, matching a spec to one, and its launcher.

The file is looked up from ``$XPM_LAUNCHERS``, then beside the experiment's YAML (for
``xpm run-experiment``), then ``<workdir>/launchers.yaml``, then
``~/.config/xpm/launchers.yaml``.  Without any file, the local machine is
the only host.  PyYAML is imported only when a file is actually read; what the file
says of each host is validated by ``_hosts``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LauncherError
from ._hosts import Host, local_host, parse_hosts
from ._spec import Requirement, Spec, parse_spec

if TYPE_CHECKING:
    from ..launchers import Launcher

#: Environment variable naming the launchers.yaml file to use.
ENV_VARIABLE = "XPM_LAUNCHERS"
#: File name looked up in the workdir and in ``~/.config/xpm``.
FILE_NAME = "launchers.yaml"


# --------------------------------------------------------------------------- launcher options


def launcher_config(host: Host, requirement: Requirement) -> tuple[str, dict[str, Any]]:
    """The launcher class name and keyword arguments running ``requirement`` on ``host``:
    the class of the host's kind (imported here) says, by its
    :meth:`~xpm.launchers.Launcher.options_for` (from the host's common fields and its
    kind's ``settings``).
    """
    from ..launchers import launcher_class

    cls = launcher_class(host.type)
    return cls.__name__, cls.options_for(host, requirement)


def _make_launcher(host: Host, requirement: Requirement) -> Launcher:
    """Instantiate the launcher of :func:`launcher_config`."""
    from ..launchers import launcher_class

    cls = launcher_class(host.type)
    return cls(**cls.options_for(host, requirement))


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
        return cls(
            hosts=parse_hosts(data, where), source=Path(source) if source is not None else None
        )

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
