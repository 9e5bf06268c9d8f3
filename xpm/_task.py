"""Tasks: configurations that run in a job process, with outputs, tags and results."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from ._config import Config, iter_configs, missing_error
from ._configinfo import MISSING
from ._current import current_experiment
from ._types import GeneratedPath, PathGenerator
from ._vocabulary import jobs_root
from .errors import ExperimentError, XpmError

if TYPE_CHECKING:
    from ._jobdir import JobDir
    from .launchers import Launcher


#: True while a job process imports its task's modules (``python -m xpm.run``): an experiment
#: started then would come from a script that runs one at import, and would recurse.
LOADING_USER_CODE = False
#: The task this job process runs (set by xpm.run; kept here rather than in xpm.run, which
#: runs as ``__main__`` and would be a second, empty copy when user code imports it).
RUNNING_TASK: Task | None = None


class Task(Config):
    """A configuration that computes something: ``execute()`` runs in its job directory.

    ``task.submit()`` inside ``with experiment(...)`` schedules it and returns
    ``task_outputs(dep)`` (or the task itself when it defines no outputs).
    """

    def execute(self) -> None:
        """The work of the task; runs in the job process with the job directory as cwd."""
        raise NotImplementedError(f"{type(self).__qualname__} must define execute()")

    def task_outputs(self, dep: Callable[[Any], Any]) -> Any:
        """What ``submit()`` returns: configurations wrapped with ``dep(...)``."""
        return self

    def submit(self, launcher: Launcher | None = None) -> Any:
        """Schedule this task in the current experiment; returns its outputs."""
        xp = current_experiment()
        if xp is None:
            raise ExperimentError(
                f"{type(self).__qualname__}.submit() was called outside an experiment: "
                "call it inside `with experiment(workdir, name) as xp:`"
            )
        return xp.submit(self, launcher=launcher)

    @property
    def __xpm_jobdir__(self) -> JobDir:
        """The job directory of this task (known once submitted, or in the job process)."""
        jobdir = self.__dict__.get("_xpm_jobdir")
        if jobdir is None:
            raise XpmError(f"{type(self).__qualname__} has no job directory: submit it first")
        return jobdir  # type: ignore[no-any-return]

    def report(self, step: int | None = None, **values: Any) -> None:
        """Record results (``self.report(accuracy=0.93, step=10)``) in the job's results.jsonl.

        Runs in the job process: the scheduler ingests the file into the index.  Values must be
        JSON numbers, strings, booleans or null.
        """
        append_results(self.__xpm_jobdir__, values, step)


def append_results(jobdir: JobDir, values: dict[str, Any], step: int | None) -> None:
    from ._atomicio import append_json_line

    if not values:
        raise XpmError("report() needs at least one key=value result")
    now = time.time()
    for key, value in values.items():
        if not isinstance(value, (int, float, str, bool)) and value is not None:
            raise XpmError(
                f"report({key}=...): results are numbers, strings or booleans, "
                f"not {type(value).__name__}; convert it (e.g. float(x))"
            )
        try:
            json.dumps(value, allow_nan=True)
        except TypeError:
            raise XpmError(f"report({key}=...): {value!r} is not JSON-serializable") from None
    append_json_line(jobdir.results, {"time": now, "step": step, "values": values})


def dep(output: Any) -> Any:
    """Placeholder replaced at submission: marks ``output`` as produced by the submitted task."""
    raise XpmError("dep() is given to task_outputs(); do not call xpm.dep directly")


def mark_outputs(task: Task, outputs: Any) -> Any:
    """Make every configuration in ``outputs`` an output of ``task`` (its identity includes it)."""
    for cfg in iter_configs(outputs):
        if cfg is task:
            continue
        if cfg.__dict__.get("_xpm_task") is None:
            cfg.__dict__["_xpm_task"] = task
        cfg.__xpm_freeze__()
    return outputs


# Exact types that hold no configuration: skipped without further checks.
_LEAVES = frozenset({int, float, str, bool, type(None)})


class Submission:
    """What one walk over a task's configuration tree finds (see :func:`analyze`)."""

    __slots__ = ("dependencies", "tags", "generated", "given_outputs")

    def __init__(self) -> None:
        self.dependencies: list[Task] = []
        self.tags: dict[str, Any] = {}
        #: (configuration, parameter name, template, where it sits in the task): see
        #: :func:`generated_location`.
        self.generated: list[tuple[Config, str, GeneratedPath, str]] = []
        #: Paths given explicitly to parameters whose default is generated (outputs):
        #: (configuration, parameter name, path, where it sits in the task).
        self.given_outputs: list[tuple[Config, str, PurePath, str]] = []


def analyze(task: Task) -> Submission:
    """One walk over ``task``'s tree: checks required values, freezes every configuration,
    and collects the tasks it depends on, its own tags and its generated paths (with where
    each sits in the task, so that siblings never share one).

    Tasks nested in the tree (or producing outputs held in it) are dependencies; their own
    trees are not walked again (their tags come from their jobs).  A generated path already
    resolved for a job is found through the template its configuration keeps.
    """
    found = Submission()
    seen: set[int] = {id(task)}
    own_tags: list[dict[str, Any]] = []

    def walk(cfg: Config, owned: bool, location: str) -> None:
        values = cfg.__dict__
        values["_xpm_frozen"] = True
        tags = values.get("_xpm_tags")
        if tags:
            own_tags.append(tags)
        templates = values.get("_xpm_generated")
        for p in type(cfg).__xpm__.param_list:
            value = values.get(p.name, MISSING)
            if type(value) in _LEAVES:
                continue
            if value is MISSING:
                raise missing_error(type(cfg), p)
            template = value if isinstance(value, GeneratedPath) else None
            if template is None and templates:
                template = templates.get(p.name)  # resolved by an earlier submission
            if template is not None:
                if owned:
                    found.generated.append((cfg, p.name, template, location))
                continue
            if isinstance(value, PurePath):
                if owned and isinstance(p.factory, PathGenerator):
                    found.given_outputs.append((cfg, p.name, value, location))
                continue
            if isinstance(value, (Config, list, tuple, dict)):
                prefix = f"{location}/{p.name}" if location else p.name
                for child, where in _located(value, prefix):
                    if id(child) in seen:
                        continue
                    seen.add(id(child))
                    if isinstance(child, Task):
                        found.dependencies.append(child)
                        continue
                    producer = child.__dict__.get("_xpm_task")
                    if producer is not None:
                        if id(producer) not in seen:
                            seen.add(id(producer))
                            found.dependencies.append(producer)
                        walk(child, False, where)
                        continue
                    walk(child, owned, where)

    walk(task, True, "")
    for tags in own_tags:
        found.tags.update(tags)
    return found


def _located(value: Any, location: str) -> Iterator[tuple[Config, str]]:
    """The configurations directly inside ``value``, each with its position in the task:
    ``model``, ``models/0``, ``by_name/<key>`` (see docs/tasks.md)."""
    if isinstance(value, Config):
        yield value, location
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _located(v, f"{location}/{i}")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _located(v, f"{location}/{_path_component(k)}")


def _path_component(key: Any) -> str:
    """A dict key as one safe file-name component (``/``, ``%``, NUL and dot names escaped)."""
    text = str(key)
    if text and text not in (".", "..") and not any(c in text for c in "/%\0\\"):
        return text
    from urllib.parse import quote  # rare: keys are usually plain names

    escaped = quote(text, safe="")
    if escaped in ("", ".", ".."):
        # "%" alone never comes out of quote() (it escapes "%"): the empty key gets it.
        escaped = escaped.replace(".", "%2E") or "%"
    return escaped


def generated_location(location: str, template: GeneratedPath) -> str:
    """Where a generated path lands inside its job directory: ``template`` as given for a
    parameter of the task itself, under the parameter path of a nested configuration."""
    return f"{location}/{template.relative}" if location else template.relative


def claim_generated(
    task: Task, job_key: tuple[str, str], jobdir: JobDir, found: Submission
) -> None:
    """Check that no output of ``task`` lies in another job's directory.

    A configuration holding a generated path is resolved for one job: sharing it with a
    second task would make that task write into the first one's directory; so would a path
    resolved for one job and given by hand to an output parameter of another
    (``Validation(index=v.index)``).  Raises before anything is changed.
    """
    from .errors import ConfigError

    def where(location: str) -> str:
        return type(task).__qualname__ + ("." + location.replace("/", ".") if location else "")

    for cfg, name, value, location in found.given_outputs:
        other = _job_directory_of(Path(value), jobdir)
        if other is not None:
            cls = type(cfg).__qualname__
            raise ConfigError(
                f"{where(location)}.{name}: {str(value)!r} is inside the job directory of "
                f"{other}, but {cls}.{name} is an output (its default is generated): this job "
                f"would write into that one's; leave {name} unset so that it is generated "
                "here, or give a path outside the workdir's jobs/"
            )
    for cfg, name, _template, location in found.generated:
        owner = cfg.__dict__.get("_xpm_owner")
        if owner is not None and owner[0] != job_key:
            cls = type(cfg).__qualname__
            raise ConfigError(
                f"{where(location)}: this {cls} holds the generated path {name!r}, already placed in "
                f"the job directory of {owner[1]}; a configuration with generated paths belongs "
                f"to one task: build a new {cls}(...) for each task"
            )


def _job_directory_of(path: Path, jobdir: JobDir) -> str | None:
    """The job (``task/identifier[:12]``) whose directory holds ``path``, when it is a job
    of ``jobdir``'s workdir other than ``jobdir``'s."""
    if not path.is_absolute():
        return None  # relative to where the job runs: its own directory
    try:
        parts = path.relative_to(jobs_root(jobdir.workdir)).parts
    except ValueError:
        return None
    if len(parts) < 3 or (parts[0], parts[1]) == (jobdir.task_id, jobdir.identifier):
        return None
    return f"{parts[0]}/{parts[1][:12]}"


def resolve_generated(
    job_key: tuple[str, str], label: str, jobdir: JobDir, found: Submission
) -> None:
    """Point every generated path of ``found`` into ``jobdir`` (after :func:`claim_generated`)."""
    for cfg, name, template, location in found.generated:
        values = cfg.__dict__
        templates = values.get("_xpm_generated")
        if templates is None:
            templates = values["_xpm_generated"] = {}
        templates[name] = template
        values["_xpm_owner"] = (job_key, label)
        values[name] = jobdir.inside(generated_location(location, template))


def collect_tags(cfg: Config, _seen: set[int] | None = None) -> dict[str, Any]:
    """Tags of ``cfg``: its own, those of nested configurations and of the tasks it uses.

    A task's output (what ``submit()`` returns through ``dep``) carries the tags of the task
    that produces it, as in experimaestro.
    """
    seen = _seen if _seen is not None else set()
    tags: dict[str, Any] = {}
    producer = cfg.__dict__.get("_xpm_task")
    if producer is not None and id(producer) not in seen:
        seen.add(id(producer))
        tags.update(collect_tags(producer, seen))
    for _p, value in cfg.__xpm_values__():
        for child in iter_configs(value):
            if id(child) in seen:
                continue
            seen.add(id(child))
            tags.update(collect_tags(child, seen))
    own = cfg.__dict__.get("_xpm_tags")
    if own:
        tags.update(own)
    return tags


def _tag_text(value: Any) -> str:
    if isinstance(value, Config):
        return type(value).__name__
    return (
        str(getattr(value, "name", value))
        if hasattr(value, "name") and not isinstance(value, str)
        else str(value)
    )


def tagspath(cfg: Config) -> str:
    """The tags of ``cfg`` as sorted ``key=value`` pairs joined with ``_``, safe as a file name."""
    parts = []
    for key, value in sorted(collect_tags(cfg).items()):
        text = f"{key}={_tag_text(value)}"
        parts.append(text.replace("/", "-").replace("\\", "-").replace("\0", ""))
    return "_".join(parts)


def tags_of(cfg: Config) -> dict[str, Any]:
    """The tags of ``cfg`` (public helper)."""
    return collect_tags(cfg)
