"""``@configuration`` dataclasses and the conversion of YAML values to their field types.

Leaf types (bool, int, float, str, Path, Enum, Optional, list, tuple, dict[str, ...]) are
checked by :func:`xpm._types.compile_type`, the same checker configurations use; nested
``@configuration`` dataclasses (also inside Optional, list, tuple and dict) are built here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import sys
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any, TypeVar, Union

from .._suggest import suggest
from .._types import Mismatch, UnsupportedType, ValueType, compile_type, describe_value
from ..errors import ConfigError

T = TypeVar("T")

#: YAML keys read by the experiment loader; a ``@configuration`` field cannot use them.
RESERVED_KEYS: tuple[str, ...] = (
    "file",
    "module",
    "parent",
    "id",
    "workdir",
    "run_mode",
    "dirty_git",
)

_MARK = "__xpm_configuration__"


@typing.overload
def configuration(cls: type[T], /) -> type[T]: ...


@typing.overload
def configuration(cls: None = None, /) -> Callable[[type[T]], type[T]]: ...


def configuration(cls: type[T] | None = None, /) -> Any:
    """Mark a class as the configuration of an experiment file (and make it a dataclass).

    ``@configuration`` turns the class into a frozen, keyword-only dataclass (unless it
    already is a dataclass), so a nested configuration can be a default value; ``xpm run-experiment`` builds it from the YAML values, checked and converted to the
    declared field types.  Fields may be other ``@configuration`` classes (YAML mappings).
    """

    def wrap(klass: type[T]) -> type[T]:
        if "__dataclass_fields__" not in klass.__dict__:
            try:
                klass = dataclasses.dataclass(kw_only=True, frozen=True)(klass)
            except ValueError as error:  # e.g. a mutable default (a list)
                raise ConfigError(
                    f"{klass.__qualname__}: {error}; "
                    "e.g. items: list[int] = dataclasses.field(default_factory=list)"
                ) from None
        for f in dataclasses.fields(klass):  # type: ignore[arg-type]
            if f.name in RESERVED_KEYS:
                raise ConfigError(
                    f"{klass.__qualname__}.{f.name}: {f.name!r} is a reserved YAML key "
                    f"({', '.join(RESERVED_KEYS)}); rename the field"
                )
        setattr(klass, _MARK, True)
        return klass

    return wrap if cls is None else wrap(cls)


def is_configuration(tp: Any) -> bool:
    """Whether ``tp`` is a class decorated with :func:`configuration`."""
    return isinstance(tp, type) and bool(tp.__dict__.get(_MARK, False))


class Override:
    """A ``-c key=value`` value: the YAML-parsed value, and its text to fall back on.

    ``-c name=123`` parses as the int 123; a ``str`` field then receives ``"123"``.
    """

    __slots__ = ("parsed", "text")

    def __init__(self, parsed: Any, text: str) -> None:
        self.parsed = parsed
        self.text = text

    def __repr__(self) -> str:
        return f"Override({self.parsed!r}, {self.text!r})"


def unwrap(value: Any) -> Any:
    """``value`` with every :class:`Override` replaced by its parsed value."""
    if isinstance(value, Override):
        return value.parsed
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


class ConversionError(Exception):
    """A value does not fit; ``path`` is the dotted key, ``message`` what went wrong."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def type_name(tp: Any) -> str:
    """A readable name for a field type (``list[int]``, ``Model``, ``int | None``)."""
    if is_configuration(tp):
        return str(tp.__name__)
    try:
        return compile_type(tp).name
    except UnsupportedType:
        pass
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if _is_union(origin):
        names = [type_name(a) for a in args if a is not type(None)]
        return " | ".join(names + (["None"] if type(None) in args else []))
    if origin is not None and args:
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return getattr(tp, "__name__", repr(tp))


def field_types(cls: type) -> dict[str, Any]:
    """The resolved field types of a configuration dataclass."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception as error:  # noqa: BLE001 - NameError etc. from user annotations
        raise ConfigError(
            f"{cls.__qualname__}: cannot resolve the field annotations: {error}; "
            "make every type importable at module level"
        ) from error
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def build(cls: type[T], data: Mapping[str, Any], path: str = "") -> T:
    """Build the configuration ``cls`` from YAML ``data``, converting every value.

    Raises :class:`ConversionError` locating the first problem (unknown key, missing required
    keys, wrong type) by its dotted key path.
    """
    types_ = field_types(cls)
    prefix = f"{path}." if path else ""
    for key in data:
        if key not in types_:
            valid = sorted(types_)
            raise ConversionError(
                f"{prefix}{key}",
                f"unknown key {prefix + str(key)!r} for {cls.__qualname__}"
                f"{suggest(str(key), valid)} (valid keys: {', '.join(valid) or 'none'})",
            )
    missing = [
        f"{prefix}{f.name} ({type_name(types_[f.name])})"
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConversionError(
            path,
            f"missing required key{'s' if len(missing) > 1 else ''} for {cls.__qualname__}: "
            f"{', '.join(missing)}; set them in the YAML or with -c KEY=VALUE",
        )
    values = {key: convert(types_[key], value, f"{prefix}{key}") for key, value in data.items()}
    return cls(**values)


def convert(tp: Any, value: Any, path: str) -> Any:
    """Convert one YAML value to the annotation ``tp``; ``path`` names it in errors."""
    if isinstance(value, Override):
        try:
            return convert(tp, value.parsed, path)
        except ConversionError:
            if isinstance(value.parsed, str):
                raise
            first = sys.exc_info()[1]
        try:  # -c name=123 for a str field: the text itself
            return convert(tp, value.text, path)
        except ConversionError:
            if isinstance(first, ConversionError):
                raise first from None
            raise
    if is_configuration(tp):
        if not isinstance(value, Mapping):
            raise _mismatch(path, f"a mapping of {tp.__name__} keys", value)
        return build(tp, value, path)
    if not _has_configuration(tp):
        return _convert_leaf(tp, value, path)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if _is_union(origin):
        if value is None and type(None) in args:
            return None
        errors: list[ConversionError] = []
        for option in args:
            if option is type(None):
                continue
            try:
                return convert(option, value, path)
            except ConversionError as error:
                errors.append(error)
        if len(errors) == 1:
            raise errors[0]
        raise _mismatch(path, type_name(tp), value)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise _mismatch(path, type_name(tp), value)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise _mismatch(path, f"{type_name(tp)} ({len(args)} items)", value)
            return tuple(convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))  # noqa: B905
        item = args[0]
        items = [convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _mismatch(path, type_name(tp), value)
        return {str(k): convert(args[1], v, f"{path}.{k}") for k, v in value.items()}
    return _convert_leaf(tp, value, path)


_LEAF_CACHE: dict[Any, ValueType] = {}


def _convert_leaf(tp: Any, value: Any, path: str) -> Any:
    try:
        checker = _LEAF_CACHE.get(tp)
    except TypeError:  # unhashable annotation
        checker = None
    if checker is None:
        try:
            checker = compile_type(tp)
        except UnsupportedType as error:
            raise ConversionError(path, f"{error} (field {path!r})") from None
        with contextlib.suppress(TypeError):  # unhashable annotation: not cached
            _LEAF_CACHE[tp] = checker
    try:
        return checker.convert(unwrap(value))
    except Mismatch as error:
        raise _mismatch(path + error.path, error.expected, error.value) from None


def _mismatch(path: str, expected: str, value: Any) -> ConversionError:
    hint = ""
    if isinstance(value, bool | int | float) and expected.startswith("str"):
        hint = "; quote the value in the YAML to make it a string"
    elif isinstance(value, str) and _looks_like(value, expected.split(" ")[0]):
        hint = "; write it without quotes"
    return ConversionError(
        path, f"key {path!r}: expected {expected}, got {describe_value(value)}{hint}"
    )


def _looks_like(text: str, expected: str) -> bool:
    """Whether a quoted YAML string would have been a valid ``expected`` without quotes."""
    if expected == "bool":
        return text.lower() in ("true", "false")
    if expected in ("int", "float"):
        try:
            (int if expected == "int" else float)(text)
        except ValueError:
            return False
        return True
    return False


def _is_union(origin: Any) -> bool:
    return origin is Union or origin is types.UnionType


def _has_configuration(tp: Any) -> bool:
    if is_configuration(tp):
        return True
    return any(_has_configuration(a) for a in typing.get_args(tp) if a is not Ellipsis)


def describe_configuration(cls: type) -> str:
    """A readable list of a ``@configuration`` class's YAML keys: type, default, doc."""
    lines = [f"{cls.__module__}.{cls.__qualname__}  (@configuration)"]
    doc = cls.__doc__
    if doc and not doc.startswith(f"{cls.__name__}("):  # skip the dataclass-generated doc
        lines.append("")
        lines.extend("  " + line.strip() for line in doc.strip().splitlines())
    lines.append("")
    types_ = field_types(cls)
    from .._configinfo import attribute_docs  # the docstring under each field, as for Config

    docs = attribute_docs(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.default is not dataclasses.MISSING:
            default = f" = {_show(f.default)}"
        elif f.default_factory is not dataclasses.MISSING:
            default = f" = {_show(f.default_factory())}"
        else:
            default = "  (required)"
        lines.append(f"  {f.name}: {type_name(types_[f.name])}{default}")
        lines.extend("      " + line for line in docs.get(f.name, "").splitlines())
    if not dataclasses.fields(cls):  # type: ignore[arg-type]
        lines.append("  (no keys)")
    return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, PurePath):
        return str(value)
    return repr(value)
