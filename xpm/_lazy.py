"""Names of a package loaded on first use (PEP 562): ``import xpm`` and the command line
stay fast, and the heavy modules load only for the commands that need them."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(
    package: str, names: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``names`` maps a name to the module that
    defines it (``"._db"``, relative to ``package``, or ``"._db:other_name"`` when it is
    defined under another name).  A loaded name is kept in ``namespace`` (the package's
    globals), so the next access is a plain attribute."""

    def __getattr__(name: str) -> Any:
        where = names.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = where.partition(":")
        value = getattr(importlib.import_module(module, package), attribute or name)
        namespace[name] = value
        return value

    return __getattr__
