"""Experiment YAML files: ``parent:`` inheritance, ``-c`` overrides, module import, checking.

Everything here only reads: a YAML file with a mistake is reported before any directory
is created.  PyYAML is imported only when a file is read.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import os
import re
import sys
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._vocabulary import RUN_MODES
from ..errors import ConfigError, UsageError
from ..workdir import locate_workdir
from ._configuration import (
    RESERVED_KEYS,
    ConversionError,
    Override,
    build,
    is_configuration,
    suggest,
)

#: Run modes (see :func:`xpm.experiment`).

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass
class ExperimentFile:
    """A YAML file merged with its parents (and ``-c`` overrides): not yet checked."""

    path: Path
    #: ``file:`` resolved to an absolute path, or None.
    module_file: Path | None = None
    #: ``module:`` (a dotted module name), or None.
    module_name: str | None = None
    #: ``id:``, or None (the file's stem is used).
    id: str | None = None
    #: ``workdir:`` resolved against the YAML that set it, or None.
    workdir: Path | None = None
    run_mode: str | None = None
    #: ``dirty_git:`` (ignore, warn or error), or None.
    dirty_git: str | None = None
    #: The configuration values (everything but the reserved keys).
    values: dict[str, Any] = field(default_factory=dict)
    #: Where each key path was last set: a YAML file or ``-c key=value``.
    origins: dict[str, str] = field(default_factory=dict)
    #: Where each reserved key was last set.
    reserved_origins: dict[str, str] = field(default_factory=dict)

    def origin(self, path: str) -> str:
        """The file (or ``-c`` option) that set the key path ``path`` (or a parent of it)."""
        key = path
        while key:
            if key in self.origins:
                return self.origins[key]
            key = re.sub(r"(\.[^.\[]*|\[[^\]]*\])$", "", key) if ("." in key or "[" in key) else ""
        return str(self.path)

    @property
    def name(self) -> str:
        """The experiment name: ``id:`` or the YAML file's stem."""
        return self.id or self.path.stem


def load_yaml(path: str | os.PathLike[str]) -> ExperimentFile:
    """Read an experiment YAML and its parents (later keys override earlier ones)."""
    path = Path(path).absolute()
    result = ExperimentFile(path=path)
    _merge_file(result, path, [])
    return result


def _read_mapping(path: Path, chain: list[Path]) -> dict[str, Any]:
    from .. import _yaml

    if not path.is_file():
        if chain:
            raise UsageError(
                f"{chain[-1]}: parent {path} not found; fix the 'parent:' path "
                "(relative to the YAML that names it)"
            )
        raise UsageError(f"{path}: no such file; give the path of an experiment YAML file")
    try:
        data = _yaml.read(path)
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror or error}") from error
    except _yaml.YamlProblem as error:
        raise UsageError(f"{path}: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(
            f"{path}: expected a mapping of keys (epochs: 10, ...), got {type(data).__name__}"
        )
    for key in data:
        if not isinstance(key, str):
            raise UsageError(f"{path}: key {key!r} must be a string")
    return data


def _merge_file(result: ExperimentFile, path: Path, chain: list[Path]) -> None:
    resolved = path.resolve()
    if resolved in [p.resolve() for p in chain]:
        cycle = " -> ".join(str(p) for p in [*chain, path])
        raise UsageError(f"parent cycle: {cycle}; remove one of these 'parent:' keys")
    data = _read_mapping(path, chain)
    where = str(path)
    parents = data.pop("parent", None)
    if parents is not None:
        if isinstance(parents, str):
            parents = [parents]
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            raise UsageError(
                f"{where}: 'parent' must be a path or a list of paths, got {parents!r}"
            )
        for parent in parents:
            _merge_file(result, (path.parent / Path(parent).expanduser()), [*chain, path])
    if "file" in data and "module" in data:
        raise UsageError(f"{where}: give either 'file:' or 'module:', not both")
    _set_reserved(result, data, where, path.parent)
    _merge_values(result.values, data, "", where, result.origins)


def _set_reserved(result: ExperimentFile, data: dict[str, Any], where: str, base: Path) -> None:
    """Take the reserved keys out of ``data`` into ``result`` (paths resolved against base)."""
    for key in RESERVED_KEYS:
        if key not in data:
            continue
        value = data.pop(key)
        if isinstance(value, Override):
            value = value.parsed if isinstance(value.parsed, str) else value.text
        if key == "parent":
            raise UsageError(f"{where}: 'parent' cannot be overridden; set it in the YAML")
        if not isinstance(value, str) or not value:
            raise UsageError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
        result.reserved_origins[key] = where
        if key == "file":
            file = base / Path(value).expanduser()
            if file.suffix != ".py":
                file = file.with_name(file.name + ".py")
            result.module_file, result.module_name = file, None
        elif key == "module":
            result.module_name, result.module_file = value, None
        elif key == "id":
            result.id = value
        elif key == "workdir":
            result.workdir = base / Path(value).expanduser()
        elif key == "run_mode":
            if value not in RUN_MODES:
                raise UsageError(
                    f"{where}: run_mode {value!r} is not one of {', '.join(RUN_MODES)}"
                    f"{suggest(value, list(RUN_MODES))}"
                )
            result.run_mode = value
        elif key == "dirty_git":
            from ..git import DIRTY_POLICIES

            if value not in DIRTY_POLICIES:
                raise UsageError(
                    f"{where}: dirty_git {value!r} is not one of {', '.join(DIRTY_POLICIES)}"
                )
            result.dirty_git = value


def _merge_values(
    target: dict[str, Any],
    data: Mapping[str, Any],
    prefix: str,
    where: str,
    origins: dict[str, str],
) -> None:
    """Deep-merge ``data`` into ``target``: mappings merge key by key, other values replace."""
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            origins.setdefault(path, where)
            _merge_values(target[key], value, f"{path}.", where, origins)
        else:
            target[key] = _copy(value)
            for known in [k for k in origins if k.startswith(f"{path}.")]:
                del origins[known]
            origins[path] = where


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _short_option(option: str) -> str:
    return option if len(option) <= 60 else f"{option[:40]}...({len(option)} characters)"


def parse_override(option: str) -> tuple[str, Override]:
    """Split ``key=value`` (value parsed as a YAML scalar or flow collection)."""
    from .. import _yaml

    key, sep, text = option.partition("=")
    key = key.strip()
    if not sep or not _KEY.match(key):
        raise UsageError(
            f"-c {option!r}: expected KEY=VALUE with KEY a name or dotted path "
            "(e.g. -c epochs=10 or -c model.n_layers=[3,4])"
        )
    if not _valid_unicode(text):
        raise UsageError(
            f"-c {option!r}: not valid UTF-8 (the command line holds undecodable bytes); "
            "write the value in UTF-8"
        )
    try:
        parsed = _yaml.parse(text)
    except _yaml.YamlValueProblem as problem:
        raise UsageError(f"-c {_short_option(option)}: {problem.detail}") from None
    except _yaml.YamlProblem:
        parsed = text  # e.g. "[3" is kept as text
    stripped = text.lstrip()
    if isinstance(parsed, dict) and not stripped.startswith("{"):
        parsed = text  # "a: b" stays a string; write {a: b} for a mapping
    elif isinstance(parsed, list) and not stripped.startswith("["):
        parsed = text  # "- a" stays a string; write [a] for a list
    elif not isinstance(parsed, (dict, list, bool, int, float, str, type(None))):
        parsed = text  # dates and other YAML types: keep the text
    return key, Override(parsed, text)


def apply_overrides(result: ExperimentFile, options: Iterable[str]) -> None:
    """Apply ``-c key=value`` options (dotted keys reach into nested configurations)."""
    for option in options:
        key, value = parse_override(option)
        where = f"-c {option}"
        parts = key.split(".")
        if parts[0] in RESERVED_KEYS:
            if len(parts) > 1:
                raise UsageError(f"{where}: {parts[0]!r} has no sub-keys")
            _set_reserved(result, {key: value}, where, Path.cwd())
            continue
        target = result.values
        for i, part in enumerate(parts[:-1]):
            current = target.get(part)
            if current is None:
                current = target[part] = {}
            elif not isinstance(current, dict):
                sub = ".".join(parts[: i + 1])
                raise UsageError(
                    f"{where}: {sub!r} is not a mapping (it is {current!r}); "
                    f"set {sub!r} itself or fix the YAML"
                )
            target = current
        _merge_values(
            target,
            {parts[-1]: value},
            ".".join(parts[:-1]) + "." if len(parts) > 1 else "",
            where,
            result.origins,
        )


def import_module(source: ExperimentFile) -> Any:
    """Import the module named by ``file:`` (from the YAML's directory) or ``module:``."""
    where = source.reserved_origins.get("file") or source.reserved_origins.get("module")
    if source.module_file is not None:
        file = source.module_file
        if not file.is_file():
            raise UsageError(
                f"{where}: file: {file.stem!r}: no such file {file}; "
                "name a Python file beside the YAML (without .py)"
            )
        name = file.stem
        if not name.isidentifier():
            raise UsageError(f"{where}: file: {file.name!r} is not an importable module name")
        folder = str(file.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        loaded = sys.modules.get(name)
        if loaded is not None and not _same_file(getattr(loaded, "__file__", None), file):
            raise UsageError(
                f"{where}: file: {file.name}: a module named {name!r} is already imported "
                f"from {getattr(loaded, '__file__', 'a built-in')}; rename {file.name}"
            )
        return importlib.import_module(name)
    if source.module_name is not None:
        name = source.module_name
        for folder in (str(Path.cwd()), str(source.path.parent)):
            if folder not in sys.path:
                sys.path.insert(0, folder)
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            raise UsageError(
                f"{where}: module: {name!r} cannot be found; check the name, or install it "
                "(it is looked up beside the YAML, in the current directory and on sys.path)"
            )
        return importlib.import_module(name)
    raise UsageError(
        f"{source.path}: no 'file:' or 'module:' key: name the Python module that defines "
        "run(helper, cfg) (e.g. file: experiment)"
    )


def _same_file(a: str | None, b: Path) -> bool:
    try:
        return a is not None and Path(a).resolve() == b.resolve()
    except OSError:
        return False


def find_entry_points(module: Any, where: str) -> tuple[Callable[..., Any], type]:
    """``run`` and the configuration class of an experiment module."""
    run = getattr(module, "run", None)
    mod_file = getattr(module, "__file__", module.__name__)
    if not callable(run):
        raise UsageError(
            f"{where}: {mod_file} has no function run(helper, cfg); define it in the module"
        )
    cls: Any = None
    params = list(inspect.signature(run).parameters.values())
    if len(params) >= 2:
        try:
            hints = typing.get_type_hints(run)
        except Exception:  # noqa: BLE001 - unresolvable annotations: fall back to the name
            hints = {}
        cls = hints.get(params[1].name)
        if cls is not None and not is_configuration(cls):
            raise ConfigError(
                f"{mod_file}: run() annotates {params[1].name!r} as {cls!r}, "
                "which is not a @configuration class; decorate it with @configuration"
            )
    if cls is None:
        cls = getattr(module, "Configuration", None)
        if not is_configuration(cls):
            raise ConfigError(
                f"{mod_file}: cannot find the configuration: annotate run's second parameter "
                "with a @configuration class (def run(helper, cfg: Configuration))"
            )
    return run, cls


@dataclass
class PreparedExperiment:
    """A checked experiment, ready to run: nothing has been written yet."""

    source: ExperimentFile
    run: Callable[..., Any]
    config: Any  # an instance of the @configuration class
    workdir: Path
    name: str
    run_mode: str
    #: ``title:`` and ``description:`` from the YAML, recorded with the run.
    description: dict[str, str] = field(default_factory=dict)

    #: Why this workdir (``--workdir``, ``workdir: in FILE``, ``$XPM_WORKDIR``, ...).
    workdir_reason: str = ""


#: YAML keys recorded with the run (experimaestro's ConfigurationBase fields), unless the
#: configuration class declares a field of that name, which then receives the value.
DESCRIPTION_KEYS: tuple[str, ...] = ("title", "description")


def _take_description(source: ExperimentFile, cls: type) -> dict[str, str]:
    """Take ``title:``/``description:`` out of the values when ``cls`` has no such field."""
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    found: dict[str, str] = {}
    for key in DESCRIPTION_KEYS:
        if key in fields or key not in source.values:
            continue
        value = source.values.pop(key)
        if isinstance(value, Override):
            value = value.parsed if isinstance(value.parsed, str) else value.text
        if not isinstance(value, str):
            raise UsageError(
                f"{source.origin(key)}: {key!r} is recorded with the run and must be text, "
                f"got {value!r}; quote it"
            )
        found[key] = value
    return found


def prepare(
    path: str | os.PathLike[str],
    *,
    overrides: Iterable[str] = (),
    run_mode: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
) -> PreparedExperiment:
    """Load, override, import and check an experiment YAML; raise on the first problem.

    The workdir is ``workdir``, else ``workdir:`` from the YAML (relative to it), else
    ``$XPM_WORKDIR``, else ``xpm-workdir`` at the git root of the YAML (else beside it).
    """
    source = load_yaml(path)
    apply_overrides(source, overrides)
    if run_mode is not None and run_mode not in RUN_MODES:
        raise UsageError(
            f"unknown run mode {run_mode!r}: use one of {', '.join(RUN_MODES)}"
            f"{suggest(run_mode, list(RUN_MODES))}"
        )
    mode = run_mode or source.run_mode or "normal"
    name = source.name
    from .._experiment import name_problem

    problem = name_problem(name)
    if problem is not None:
        where = source.reserved_origins.get("id", str(source.path))
        shown = name if len(name) <= 60 else name[:57] + "..."
        raise UsageError(f"{where}: invalid experiment name {shown!r}: {problem}")
    module = import_module(source)
    run, cls = find_entry_points(module, str(source.path))
    description = _take_description(source, cls)
    try:
        config: Any = build(cls, source.values)
    except ConversionError as error:
        raise UsageError(f"{source.origin(error.path)}: {error.message}") from None
    location, why = locate_experiment_workdir(workdir, source)
    return PreparedExperiment(
        source, run, config, location, name, mode, description=description, workdir_reason=why
    )


def resolve_workdir(given: str | os.PathLike[str] | None, source: ExperimentFile | None) -> Path:
    """The workdir of an experiment: see :func:`locate_workdir`."""
    return locate_experiment_workdir(given, source)[0]


def locate_experiment_workdir(
    given: str | os.PathLike[str] | None, source: ExperimentFile | None
) -> tuple[Path, str]:
    """``given``, else the YAML's ``workdir:``, else ``$XPM_WORKDIR``, else ``xpm-workdir`` at
    the git root of the YAML (else beside it); with the reason, as words for the user."""
    if source is None:
        return locate_workdir(given)
    return locate_workdir(
        given,
        yaml_workdir=source.workdir,
        yaml_key_origin=source.reserved_origins.get("workdir"),
        start=source.path.parent,
    )


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
