"""The launcher kinds: the one place a backend is named, and how a recorded one is rebuilt.

Each job attempt records its launcher's :meth:`~xpm.launchers.Launcher.describe` (its kind
and the options that differ from the defaults).  Commands that act on jobs later (``xpm
jobs list`` asking Slurm about active jobs, ``xpm jobs kill``) rebuild that launcher here,
so a configured ``binpath`` or other option is honoured.  Backends are imported on first
use only: ``xpm.launchers.slurm`` stays unloaded for local work.
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


def launcher_class(kind: str) -> type[Launcher]:
    """The launcher class of ``kind`` (``local``, ``slurm``)."""
    try:
        module, _, name = KINDS[kind].partition(":")
    except KeyError:
        raise LauncherError(
            f"unknown launcher kind {kind!r}: this xpm knows {', '.join(sorted(KINDS))}"
        ) from None
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, Launcher)):  # a bug in KINDS
        raise TypeError(f"{KINDS[kind]} is not a Launcher")
    return cls


def launcher_from_description(
    description: Mapping[str, Any] | None, kind: str | None = None
) -> Launcher:
    """The launcher ``description`` (a recorded :meth:`Launcher.describe`) stands for; with
    no description (jobs recorded by an older xpm), the default launcher of ``kind``."""
    options = dict(description or {})
    kind = str(options.pop("kind", None) or kind or "local")
    return launcher_class(kind).from_description(options)


def description_key(description: Mapping[str, Any] | None, kind: str | None = None) -> str:
    """A hashable key grouping jobs whose recorded launchers are the same."""
    return json.dumps({"kind": kind, **(description or {})}, sort_keys=True, default=str)
