"""xpm: a git-integrated experiment manager.

Describe experiments as typed configurations (:class:`Config`, :class:`Task` with
``Param``/``Meta``/``Constant`` parameters); every task submission gets a job directory
derived from its identifier, so the same configuration never runs twice.

The public API is re-exported here; heavy modules are imported on first use so that
``import xpm`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_getattr
from .errors import XpmError

__version__ = "0.1.0.dev0"

_LAZY = {
    "Param": "._types",
    "Meta": "._types",
    "Constant": "._types",
    "PathGenerator": "._types",
    "Config": "._config",
    "field": "._configinfo",
    "tag": "._config",
    "describe": "._config",
    "Task": "._task",
    "tagspath": "._task",
    "tags_of": "._task",
    "experiment": "._experiment",
    "Experiment": "._experiment",
    "Identifier": "._identifier",
    "report": "._report",
    "results": ".index._results",
}

__all__ = [
    "Config",
    "Constant",
    "Experiment",
    "Identifier",
    "Meta",
    "Param",
    "PathGenerator",
    "Task",
    "XpmError",
    "describe",
    "experiment",
    "field",
    "report",
    "results",
    "tag",
    "tags_of",
    "tagspath",
]

if TYPE_CHECKING:
    from ._config import Config, describe, tag
    from ._configinfo import field
    from ._experiment import Experiment, experiment
    from ._identifier import Identifier
    from ._report import report
    from ._task import Task, tags_of, tagspath
    from ._types import Constant, Meta, Param, PathGenerator
    from .index import results


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
