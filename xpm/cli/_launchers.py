"""``xpm launchers list|find``: the hosts of launchers.yaml and what a spec resolves to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._render import echo_json, echo_rows, format_option

_WORKDIR_HELP = (
    "Workdir whose launchers.yaml to read [default: $XPM_WORKDIR, else xpm-workdir at the "
    "git root, else ./xpm-workdir]; $XPM_LAUNCHERS, when set, wins."
)
_YAML_HELP = "Experiment YAML: the launchers.yaml beside it comes first (as in xpm run-experiment)."


def _yaml_option() -> Any:
    return click.option(
        "--yaml",
        "yaml_file",
        metavar="FILE.yaml",
        type=click.Path(dir_okay=False, path_type=Path),
        help=_YAML_HELP,
    )


def _registry(workdir: Path | None, yaml_file: Path | None = None) -> Any:
    from ..launcherfinder import load_registry
    from ..workdir import resolve_workdir

    beside = yaml_file.absolute().parent if yaml_file is not None else None
    return load_registry(resolve_workdir(workdir), beside=beside)


def _source(registry: Any) -> str:
    return (
        f"hosts from {registry.source}"
        if registry.source
        else "no launchers.yaml: local machine only"
    )


def _shown_size(size: int) -> str:
    """A memory size for people: exact when a unit divides it into a short number (``256G``),
    else rounded (``23.5GiB``, not the exact ``24683784KiB`` of the local machine)."""
    from ..launcherfinder import format_size

    exact = format_size(size)
    digits = len(exact.rstrip("BKMGTi"))
    if digits <= 4:
        return exact
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2)):
        if size >= factor:
            return f"{size / factor:.1f}{unit}"
    return exact


def _grouped(accelerators: Any) -> list[str]:
    """``cuda(mem=16G) * 4`` (the spec's own notation) for 4 identical accelerators."""
    counts: dict[str, int] = {}
    for accelerator in accelerators:
        counts[str(accelerator)] = counts.get(str(accelerator), 0) + 1
    return [f"{name} * {n}" if n > 1 else name for name, n in counts.items()]


@click.group("launchers")
def launchers() -> None:
    """Hosts to run jobs on (launchers.yaml) and launcher lookup for resource specs."""


@launchers.command("list")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), help=_WORKDIR_HELP)
@_yaml_option()
@format_option()
def list_hosts(workdir: Path | None, yaml_file: Path | None, fmt: str) -> None:
    """List the hosts jobs can run on (the source file is printed on stderr)."""
    from ..launcherfinder import format_duration, format_size

    registry = _registry(workdir, yaml_file)
    rows = []
    for host in registry.hosts:
        rows.append(
            {
                "name": host.name,
                "type": host.type,
                # The kind's own keys (Slurm's partition, qos...), as the file sets them.
                "settings": (
                    ", ".join(f"{k}={v}" for k, v in host.settings.items()) or None
                    if fmt != "json"
                    else dict(host.settings)
                ),
                "cores": host.cores,
                "memory": (
                    None
                    if host.memory is None
                    else _shown_size(host.memory)
                    if fmt == "table"
                    else format_size(host.memory)
                ),
                "accelerators": _grouped(host.accelerators)
                if fmt == "table"
                else [str(a) for a in host.accelerators],
                "max_duration": (
                    format_duration(host.max_duration) if host.max_duration is not None else None
                ),
                "priority": host.priority,
                "tags": list(host.tags),
            }
        )
    click.echo(_source(registry), err=True)
    echo_rows(
        rows,
        [
            "name",
            "type",
            "settings",
            "cores",
            "memory",
            "accelerators",
            "max_duration",
            "priority",
            "tags",
        ],
        fmt,
    )


@launchers.command("find")
@click.argument("spec")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), help=_WORKDIR_HELP)
@_yaml_option()
@click.option("--tag", "tags", multiple=True, help="Only hosts with this tag (repeatable).")
@format_option()
@click.pass_context
def find(
    ctx: click.Context,
    spec: str,
    workdir: Path | None,
    yaml_file: Path | None,
    tags: tuple[str, ...],
    fmt: str,
) -> None:
    """Show which launcher and options SPEC resolves to, or why each alternative fails.

    SPEC is a resource spec such as "duration=2 days & cuda(mem=16G) * 2 | cpu(cores=4)".
    Exit status 1 when no host fits, 2 when SPEC cannot be parsed.
    """
    from ..launcherfinder import parse_spec

    parsed = parse_spec(spec)  # SpecError (exit 2) before reading any file
    registry = _registry(workdir, yaml_file)
    reports = registry.evaluate(parsed, tags)
    match = registry.find(parsed, tags)
    launcher: dict[str, Any] | None = None
    if match is not None:
        kind, options = match.launcher_config()
        launcher = {
            "launcher": kind,
            "host": match.host.name,
            "alternative": match.index + 1,
            "requirement": str(match.requirement),
            "options": options,
        }
    if fmt == "json":
        echo_json(
            {
                "spec": str(parsed),
                "source": str(registry.source) if registry.source else None,
                "match": launcher,
                "alternatives": [
                    {
                        "alternative": r.index + 1,
                        "requirement": str(r.requirement),
                        "hosts": [
                            {"host": host.name, "fits": not reasons, "reasons": list(reasons)}
                            for host, reasons in r.failures
                        ],
                    }
                    for r in reports
                ],
            }
        )
    elif fmt == "csv":
        rows = [
            {
                "alternative": r.index + 1,
                "requirement": str(r.requirement),
                "host": host.name,
                "fits": not reasons,
                "chosen": match is not None and match.index == r.index and match.host == host,
                "reasons": "; ".join(reasons),
            }
            for r in reports
            for host, reasons in r.failures
        ]
        echo_rows(rows, ["alternative", "requirement", "host", "fits", "chosen", "reasons"], "csv")
    else:
        if launcher is not None:
            click.echo(
                f"{launcher['launcher']} on {launcher['host']} "
                f"(alternative {launcher['alternative']}: {launcher['requirement']})"
            )
            for key, value in launcher["options"].items():
                if value is not None and value != {}:
                    click.echo(f"  {key}: {value}")
        else:
            click.echo("no launcher fits; why, alternative by alternative:")
        explanation = registry.explain(parsed, tags)
        if launcher is None:  # the headline already says it
            explanation = explanation.removesuffix("no launcher found").rstrip()
        click.echo("")
        click.echo(explanation)
    if match is None:
        ctx.exit(1)
