"""Configurations: typed, validated, documented parameter sets with a stable identity.

The instances: construction and assignment (values checked and converted), equality,
the identifier, freezing, cycles and unset required parameters, ``tag`` and ``describe``.
What a class declares (its parameters, ``field``, its type id) is xpm/_configinfo.py.
"""

from __future__ import annotations

import reprlib
import threading
import typing
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from ._configinfo import MISSING, ConfigInfo, ParamInfo, check_overrides, typeid_of
from ._types import (
    Configurable,
    GeneratedPath,
    Mismatch,
    ParamKind,
    Tagged,
    describe_value,
)
from .errors import ConfigError

_SPECIAL = (Tagged, GeneratedPath)  # values that need more than a type check
# Attributes of every new configuration; _xpm_task: the task whose output it is (xpm._task).
# _xpm_generated: templates of generated paths once resolved; _xpm_owner: (job key, label) of
# the job they were resolved for (xpm._task.resolve_generated).
_FRESH = {
    "_xpm_tags": None,
    "_xpm_frozen": False,
    "_xpm_task": None,
    "_xpm_id": None,
    "_xpm_generated": None,
    "_xpm_owner": None,
}


class ConfigMeta(type):
    """Metaclass of configurations: gives every class a lazily built ``__xpm__``."""

    @property
    def __xpm__(cls) -> ConfigInfo:
        # Every class gets its own _xpm_info (None until built) from __init_subclass__, so a
        # plain attribute read is enough: cheaper than cls.__dict__ (a new mappingproxy).
        info = cls._xpm_info  # type: ignore[attr-defined]
        if info is None or info.cls is not cls:
            info = ConfigInfo(cls)
            type.__setattr__(cls, "_xpm_info", info)
        return typing.cast(ConfigInfo, info)


# xpm._identifier.identifier_of, once imported (a function-level import costs on every call).
_identifier_of: Callable[[Config], Any] | None = None


def _suggest(name: str, choices: typing.Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class Config(Configurable, metaclass=ConfigMeta):
    """Base class of configurations: typed parameters declared as ``name: Param[T] = default``.

    Build one by calling the class: ``CNN(n_layers=3)``.  Values are checked and converted at
    construction and assignment; required parameters are checked when the identifier is
    computed (at the latest when a task is submitted).
    """

    __xpmid__: ClassVar[str | None] = None
    _xpm_info: ClassVar[ConfigInfo | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        type.__setattr__(cls, "_xpm_info", None)
        typeid_of(cls)  # a bad type id is refused where the class is defined
        # Keep the declared defaults: ConfigInfo removes them from the class namespace.  A
        # subclass may override an inherited parameter's default without re-annotating it.
        annotated = {
            name for klass in cls.__mro__ for name in klass.__dict__.get("__annotations__", {})
        }
        defaults = {name: cls.__dict__[name] for name in annotated if name in cls.__dict__}
        type.__setattr__(cls, "_xpm_defaults", defaults)
        check_overrides(cls, None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        info = cls.__dict__.get("_xpm_info") or cls.__xpm__
        if args:
            raise ConfigError(
                f"{type(self).__qualname__} takes keyword arguments only, got {len(args)} "
                f"positional; write {type(self).__qualname__}(name=value, ...) "
                f"(parameters: {', '.join(info.params) or 'none'})"
            )
        values = self.__dict__
        values.update(_FRESH)
        values.update(info.fixed_defaults)
        params = info.params
        for name, value in kwargs.items():
            p = params.get(name)
            if p is None:
                raise ConfigError(
                    f"{type(self).__qualname__} has no parameter {name!r} (given "
                    f"{describe_value(value)}){_suggest(name, params)} "
                    f"(parameters: {', '.join(params) or 'none'})"
                )
            if p.plain and type(value) not in _SPECIAL:
                try:
                    values[name] = p.type.convert(value)
                    continue
                except Mismatch:
                    pass  # _convert raises the error with its message
            values[name] = self._convert(p, value)
        for p in info.dynamic_defaults:
            if p.name in kwargs:
                continue
            if p.default is not MISSING:
                import copy  # only for mutable defaults: job processes rarely need it

                values[p.name] = copy.deepcopy(p.default)
            else:
                values[p.name] = self._convert(p, p.factory())  # type: ignore[misc]

    def _convert(self, p: ParamInfo, value: Any) -> Any:
        if isinstance(value, Tagged):
            value = value.value
            tags = self.__dict__.get("_xpm_tags")
            if tags is None:
                tags = self.__dict__["_xpm_tags"] = {}
            tags[p.name] = value
        if isinstance(value, GeneratedPath) and p.kind is not ParamKind.CONSTANT:
            return value
        try:
            converted = p.type.convert(value)
        except Mismatch as e:
            raise ConfigError(
                f"{type(self).__qualname__}.{p.name}{e.path}: expected {e.expected}, "
                f"got {describe_value(e.value)}"
            ) from None
        if p.kind is ParamKind.CONSTANT and not same_value(converted, p.default):
            raise ConfigError(
                f"{type(self).__qualname__}.{p.name} is a Constant equal to {p.default!r}; "
                f"it cannot be set to {value!r}"
            )
        return converted

    def __setattr__(self, name: str, value: Any) -> None:
        params = type(self).__xpm__.params
        p = params.get(name)
        if p is None:
            if name.startswith("_"):
                object.__setattr__(self, name, value)
                return
            raise ConfigError(
                f"{type(self).__qualname__} has no parameter {name!r} (given "
                f"{describe_value(value)}){_suggest(name, params)}; "
                "use a name starting with '_' for other attributes"
            )
        if self.__dict__.get("_xpm_frozen"):
            raise ConfigError(
                f"cannot set {type(self).__qualname__}.{name}: the configuration is frozen "
                "(it was submitted); build a new one instead"
            )
        self.__dict__[name] = self._convert(p, value)
        self.__dict__["_xpm_id"] = None

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: an unset required parameter or a typo.
        info = type(self).__xpm__
        if name in info.params:
            raise missing_error(type(self), info.params[name])
        raise AttributeError(f"{type(self).__qualname__!r} object has no attribute {name!r}")

    # --- identity ---------------------------------------------------------------------------
    def __identifier__(self) -> Any:
        """The identifier of this configuration (see docs/identifiers.md)."""
        global _identifier_of
        if _identifier_of is None:
            from ._identifier import identifier_of

            _identifier_of = identifier_of
        return _identifier_of(self)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        if other is self:
            return True
        pair = (id(self), id(other))
        comparing = _comparing.__dict__.setdefault("pairs", set())
        if pair in comparing:
            return True  # a cycle met again: equal so far, the rest decides
        comparing.add(pair)
        try:
            names = type(self).__xpm__.params
            return all(
                same_value(self.__dict__.get(n, MISSING), other.__dict__.get(n, MISSING))
                for n in names
            ) and self.__dict__.get("_xpm_task") == other.__dict__.get("_xpm_task")
        finally:
            comparing.discard(pair)

    def __hash__(self) -> int:
        return hash(self.__identifier__().digest)

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        info = type(self).__xpm__
        parts = []
        for p in info.param_list:
            v = self.__dict__.get(p.name, MISSING)
            if v is MISSING:
                continue
            if p.default is not MISSING and type(v) is type(p.default) and v == p.default:
                continue
            parts.append(f"{p.name}={v!r}")
        return f"{type(self).__qualname__}({', '.join(parts)})"

    # --- helpers ----------------------------------------------------------------------------
    def __xpm_values__(self) -> Iterator[tuple[ParamInfo, Any]]:
        """Every declared parameter and its value (MISSING when unset)."""
        values = self.__dict__
        for p in type(self).__xpm__.param_list:
            yield p, values.get(p.name, MISSING)

    def __xpm_freeze__(self) -> None:
        """Freeze this configuration and every nested one: no more assignment."""
        if self.__dict__.get("_xpm_frozen"):
            return
        self.__dict__["_xpm_frozen"] = True
        for _p, value in self.__xpm_values__():
            for child in iter_configs(value):
                child.__xpm_freeze__()


#: Pairs of configurations being compared by this thread (a cyclic configuration compares
#: without recursing forever).
_comparing = threading.local()


def same_value(a: Any, b: Any) -> bool:
    """Equality of parameter values as the identifier sees them: ``1``, ``1.0`` and ``True``
    differ, and NaN equals NaN (so a configuration loaded from params.json equals its source)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (a != a and b != b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return bool(a == b)


def iter_configs(value: Any) -> Iterator[Config]:
    """The configurations directly inside a value (itself, or in lists, tuples and dicts)."""
    if isinstance(value, Config):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from iter_configs(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from iter_configs(v)


def find_cycle(root: Config) -> str | None:
    """A cycle of configurations reachable from ``root``, as ``A.x -> B.y -> A`` (or None).

    Iterative, so that it still works when the recursion it explains has used up the stack.
    """
    on_path: dict[int, int] = {}  # id -> index in path
    path: list[tuple[Config, str]] = []
    done: set[int] = set()
    stack: list[tuple[Config, Iterator[tuple[str, Config]]]] = []

    def edges(cfg: Config) -> Iterator[tuple[str, Config]]:
        for p, value in cfg.__xpm_values__():
            for child in iter_configs(value):
                yield p.name, child
        task = cfg.__dict__.get("_xpm_task")
        if isinstance(task, Config):
            yield "<output of>", task

    on_path[id(root)] = 0
    path.append((root, ""))
    stack.append((root, edges(root)))
    while stack:
        cfg, it = stack[-1]
        step = next(it, None)
        if step is None:
            stack.pop()
            on_path.pop(id(cfg), None)
            path.pop()
            done.add(id(cfg))
            continue
        name, child = step
        path[-1] = (cfg, name)
        if id(child) in on_path:
            loop = path[on_path[id(child)] :]
            parts = [f"{type(c).__qualname__}.{n}" for c, n in loop]
            return " -> ".join([*parts, type(child).__qualname__])
        if id(child) in done:
            continue
        on_path[id(child)] = len(path)
        path.append((child, ""))
        stack.append((child, edges(child)))
    return None


def cycle_error(cfg: Config) -> ConfigError:
    """The error for a configuration whose identifier recursion never ends."""
    cycle = find_cycle(cfg)
    if cycle is None:
        return ConfigError(
            f"{type(cfg).__qualname__}: configurations nested too deeply to compute an "
            "identifier; flatten the nesting"
        )
    return ConfigError(
        f"configuration cycle: {cycle}; a configuration cannot contain itself, "
        "build the nested one without the reference back"
    )


def missing_error(cls: type, p: ParamInfo) -> ConfigError:
    """The error for a required parameter that was never given a value."""
    name = cls.__qualname__
    return ConfigError(
        f"{name}.{p.name} ({p.type_name()}) is required but was not set: "
        f"pass {p.name}=... when building {name}"
    )


def check_required(cfg: Config) -> None:
    """Raise a ConfigError naming the first unset required parameter in the whole tree."""
    for p, value in cfg.__xpm_values__():
        if value is MISSING:
            raise missing_error(type(cfg), p)
        for child in iter_configs(value):
            check_required(child)


def tag(value: Any) -> Any:
    """Mark a parameter value as a tag: ``Model(layers=tag(3))`` records the tag ``layers=3``.

    Tags never change identifiers; they are recorded with the jobs that use the configuration.
    """
    return Tagged(value)


def describe(cls: type[Config]) -> str:
    """A readable table of a configuration class's parameters: kind, type, default, doc."""
    info = cls.__xpm__
    lines = [f"{cls.__module__}.{cls.__qualname__}  (type id: {info.typeid})"]
    if info.doc:
        lines.append("")
        lines.extend("  " + line for line in info.doc.splitlines())
    lines.append("")
    if not info.param_list:
        lines.append("  (no parameters)")
    for p in info.param_list:
        if p.default is not MISSING:
            default = f" = {p.default!r}"
        elif p.factory is not None:
            name = getattr(p.factory, "__name__", None)
            default = f" = {name}()" if name else f" = {p.factory!r}"
        else:
            default = "  (required)"
        lines.append(f"  {p.name}: {p.kind.value.capitalize()}[{p.type_name()}]{default}")
        if p.doc:
            lines.extend("      " + line for line in p.doc.splitlines())
    return "\n".join(lines)
