"""The launcher kinds: the one place a backend is named, and how a recorded one is rebuilt.

Each job attempt records its launcher's :meth:`~xpm.launchers.Launcher.describe` (its kind
and the options that differ from the defaults).  Commands that act on jobs later (``xpm
jobs list`` asking Slurm about active jobs, ``xpm jobs kill``) rebuild that launcher here,
so a configured ``binpath`` or other option is honoured.  Backends are imported on first
use only: ``xpm.launchers.slurm`` stays unloaded for local work.

A launcher defined outside xpm needs no registration: the description recorded with its
jobs names its class (``"class": "module:QualName"``), which is imported to rebuild it.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

from ..errors import LauncherError
from ._base import Launcher

#: Launcher kind -> ``module:class`` (a new backend is one line here).
KINDS: dict[str, str] = {
    "local": "xpm.launchers.local:LocalLauncher",
    "slurm": "xpm.launchers.slurm:SlurmLauncher",
}
#: The kinds every xpm knows without any registration: only their classes go unrecorded.
_SHIPPED = dict(KINDS)


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_class(where: str) -> Any:
    module, _, name = where.partition(":")
    found: Any = importlib.import_module(module)
    for part in name.split("."):
        found = getattr(found, part)
    return found


def launcher_class(kind: str, class_path: str | None = None) -> type[Launcher]:
    """The launcher class of ``kind``: the class ``class_path`` (``module:QualName``,
    recorded by :func:`recorded_description` for a launcher that is not xpm's own, a lab's
    subclass of :class:`~xpm.launchers.slurm.SlurmLauncher` included), else xpm's own.

    A recorded class that cannot be imported here falls back to xpm's own class of the same
    kind when there is one: it still reaches the same backend.
    """
    error: Exception | None = None
    for where in (class_path, KINDS.get(kind)):
        if where is None:
            continue
        try:
            found = _import_class(where)
        except (ImportError, AttributeError) as e:
            error = error or e
            continue
        if not (isinstance(found, type) and issubclass(found, Launcher)) or found.kind != kind:
            raise LauncherError(f"launcher kind {kind!r}: {where} is not a Launcher of that kind")
        return found
    if error is not None:
        raise LauncherError(
            f"launcher kind {kind!r}: cannot import its class {class_path} ({error}); make its "
            "module importable here (PYTHONPATH) to list or kill its jobs"
        )
    raise LauncherError(
        f"unknown launcher kind {kind!r} and no class recorded for it: this xpm knows "
        f"{', '.join(sorted(KINDS))}"
    )


def recorded_description(launcher: Launcher) -> dict[str, Any]:
    """What each attempt records about ``launcher``: its :meth:`~Launcher.describe`, plus
    its class when that is not xpm's own for its kind, so a later process can rebuild it
    (:func:`launcher_from_description`) without any registration."""
    described = dict(launcher.describe())
    own = type(launcher)
    # Against xpm's own kinds, not KINDS: a kind registered in one process (KINDS["mylab"]
    # = ...) is unknown to the next `xpm jobs list` or `kill`, which needs the class.
    if _SHIPPED.get(own.kind) != _class_path(own):
        described["class"] = _class_path(own)
    return described


def launcher_from_description(
    description: Mapping[str, Any] | None, kind: str | None = None
) -> Launcher:
    """The launcher ``description`` (a recorded :meth:`Launcher.describe`) stands for; with
    no description (jobs recorded by an older xpm), the default launcher of ``kind``."""
    options = dict(description or {})
    kind = str(options.pop("kind", None) or kind or "local")
    class_path = options.pop("class", None)
    return launcher_class(kind, class_path).from_description(options)


def description_key(description: Mapping[str, Any] | None, kind: str | None = None) -> str:
    """A hashable key grouping jobs whose recorded launchers are the same."""
    return json.dumps({"kind": kind, **(description or {})}, sort_keys=True, default=str)
