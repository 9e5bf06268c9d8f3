"""Parameter kinds (Param, Meta, Constant) and value types: checking and conversion.

An annotation such as ``Param[list[int]]`` is compiled once per class into a
:class:`ValueType` that converts and checks every value assigned to it, and
names what was expected when a value does not fit.
"""

from __future__ import annotations

import enum
import os
import types
import typing
from pathlib import Path, PurePath
from typing import Annotated, Any, TypeVar, Union

T = TypeVar("T")


class ParamKind(enum.Enum):
    """How a parameter takes part in a configuration's identity."""

    PARAM = "param"  # part of the identifier
    META = "meta"  # never part of the identifier
    CONSTANT = "constant"  # fixed value, always part of the identifier


#: ``Param[T]``: a parameter that is part of the configuration's identity.
Param = Annotated[T, ParamKind.PARAM]
#: ``Meta[T]``: a parameter that does not change the outcome (device, verbosity, output paths).
Meta = Annotated[T, ParamKind.META]
#: ``Constant[T]``: a fixed value (e.g. a code version) always hashed; bump it to invalidate results.
Constant = Annotated[T, ParamKind.CONSTANT]


class Mismatch(Exception):
    """A value does not fit a type; ``path`` locates it inside containers (e.g. ``[2]``)."""

    def __init__(self, expected: str, value: Any, path: str = "") -> None:
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.path = path


def describe_value(value: Any) -> str:
    """A short ``type value`` rendering for error messages (``None`` alone: "NoneType None"
    reads as a typo)."""
    if value is None:
        return "None"
    try:
        text = repr(value)
    except ValueError:  # an int over Python's 4,300-digit str limit
        text = f"<{value.bit_length()}-bit integer>" if isinstance(value, int) else "<unprintable>"
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


class Configurable:
    """The base of :class:`xpm.Config`, known here so that value types recognise
    configurations without importing the configuration machinery (which imports this)."""

    __slots__ = ()


class Tagged:
    """A value marked as a tag by :func:`xpm.tag`; unwrapped when assigned."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class GeneratedPath:
    """A path inside the job directory, resolved when the task is submitted."""

    __slots__ = ("relative",)

    def __init__(self, relative: str) -> None:
        self.relative = relative

    def __repr__(self) -> str:
        return f"GeneratedPath({self.relative!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GeneratedPath) and other.relative == self.relative

    def __hash__(self) -> int:
        return hash(("GeneratedPath", self.relative))


class PathGenerator:
    """A default factory for a path inside the job directory: ``field(default_factory=PathGenerator("model.pth"))``.

    The path is resolved when the task is submitted.  Generated paths never count in the
    identifier (they are outputs, not inputs).
    """

    __slots__ = ("relative",)

    def __init__(self, relative: str) -> None:
        from .errors import ConfigError

        rel = PurePath(relative)
        if not str(relative) or rel.is_absolute() or ".." in rel.parts:
            raise ConfigError(
                f"PathGenerator({relative!r}): the path must stay inside the job directory; "
                "give a relative path without '..'"
            )
        self.relative = rel.as_posix()

    def __call__(self) -> GeneratedPath:
        return GeneratedPath(self.relative)

    def __repr__(self) -> str:
        return f"PathGenerator({self.relative!r})"


class ValueType:
    """A compiled annotation: converts a value or raises :class:`Mismatch`."""

    name: str = "?"

    def convert(self, value: Any) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


class _Scalar(ValueType):
    def __init__(
        self, name: str, exact: type, check: typing.Callable[[Any], bool], cast: Any = None
    ) -> None:
        self.name = name
        self._exact = exact
        self._check = check
        self._cast = cast

    def convert(self, value: Any) -> Any:
        if type(value) is self._exact:
            return value
        if not self._check(value):
            raise Mismatch(self.name, value)
        if self._cast is None:
            return value
        try:
            return self._cast(value)
        except OverflowError:
            # An int beyond float range (10**400): a mismatch, not a crash deep in the caller.
            raise Mismatch(
                f"{self.name} (this int is too large for a float: at most about 1.8e308)", value
            ) from None


class _PathType(ValueType):
    name = "Path"

    def convert(self, value: Any) -> Any:
        if isinstance(value, (Path, GeneratedPath)):
            return value
        if isinstance(value, (str, PurePath, os.PathLike)):
            return Path(value)
        raise Mismatch("Path (or str)", value)


class _EnumType(ValueType):
    def __init__(self, cls: type[enum.Enum]) -> None:
        self.cls = cls
        self.name = cls.__name__

    def convert(self, value: Any) -> Any:
        if isinstance(value, self.cls):
            return value
        if isinstance(value, str) and value in self.cls.__members__:
            return self.cls[value]
        names = ", ".join(self.cls.__members__)
        raise Mismatch(f"{self.name} (one of {names})", value)


class _ConfigType(ValueType):
    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.name = cls.__name__

    def convert(self, value: Any) -> Any:
        if isinstance(value, self.cls):
            return value
        raise Mismatch(f"a {self.name} configuration", value)


class _AnyType(ValueType):
    """``Any``: any value the identifier can encode, checked recursively at assignment."""

    name = "Any"
    _SUPPORTED = (
        "a supported value (bool, int, float, str, None, Path, Enum, Config, "
        "or a list, tuple or dict[str, ...] of those)"
    )

    def convert(self, value: Any) -> Any:
        self._check(value, "")
        return value

    def _check(self, value: Any, path: str) -> None:
        if value is None or isinstance(
            value, (bool, int, float, str, PurePath, enum.Enum, GeneratedPath, Configurable)
        ):
            return
        if isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                self._check(v, f"{path}[{i}]")
            return
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, str):
                    raise Mismatch("str keys", k, f"{path}[{k!r}]")
                self._check(v, f"{path}[{k!r}]")
            return
        raise Mismatch(self._SUPPORTED, value, path)


class _UnionType(ValueType):
    def __init__(self, options: list[ValueType], optional: bool) -> None:
        self.options = options
        self.optional = optional
        names = [o.name for o in options]
        self.name = " | ".join(names + (["None"] if optional else []))

    def convert(self, value: Any) -> Any:
        if value is None and self.optional:
            return None
        # An exact type match first, so that True stays a bool in ``int | bool``.
        for option in self.options:
            if isinstance(option, _Scalar) and option.name == type(value).__name__:
                return option.convert(value)
        for option in self.options:
            try:
                return option.convert(value)
            except Mismatch:
                continue
        raise Mismatch(self.name, value)


def is_optional(vtype: ValueType) -> bool:
    """Whether ``vtype`` is ``Optional[T]`` / ``T | None`` (explicitly allows None)."""
    return isinstance(vtype, _UnionType) and vtype.optional


class _ListType(ValueType):
    def __init__(self, item: ValueType) -> None:
        self.item = item
        self.name = f"list[{item.name}]"

    def convert(self, value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise Mismatch(self.name, value)
        out = []
        for i, v in enumerate(value):
            try:
                out.append(self.item.convert(v))
            except Mismatch as e:
                raise Mismatch(e.expected, e.value, f"[{i}]{e.path}") from None
        return out


class _TupleType(ValueType):
    def __init__(self, items: list[ValueType] | None, variadic: ValueType | None) -> None:
        self.items = items
        self.variadic = variadic
        if items is not None:
            self.name = f"tuple[{', '.join(i.name for i in items)}]"
        elif variadic is not None:
            self.name = f"tuple[{variadic.name}, ...]"
        else:
            self.name = "tuple"

    def convert(self, value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise Mismatch(self.name, value)
        if self.items is not None:
            if len(value) != len(self.items):
                raise Mismatch(f"{self.name} ({len(self.items)} items)", value)
            types_ = self.items
        else:
            types_ = [self.variadic or _ANY] * len(value)
        out = []
        for i, (t, v) in enumerate(zip(types_, value, strict=True)):
            try:
                out.append(t.convert(v))
            except Mismatch as e:
                raise Mismatch(e.expected, e.value, f"[{i}]{e.path}") from None
        return tuple(out)


class _DictType(ValueType):
    def __init__(self, item: ValueType) -> None:
        self.item = item
        self.name = f"dict[str, {item.name}]"

    def convert(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise Mismatch(self.name, value)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise Mismatch("str keys", k, f"[{k!r}]")
            try:
                out[k] = self.item.convert(v)
            except Mismatch as e:
                raise Mismatch(e.expected, e.value, f"[{k!r}]{e.path}") from None
        return out


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_BOOL = _Scalar("bool", bool, lambda v: isinstance(v, bool))
_INT = _Scalar("int", int, _is_int)
_FLOAT = _Scalar("float", float, lambda v: _is_int(v) or isinstance(v, float), float)
_STR = _Scalar("str", str, lambda v: isinstance(v, str))
_ANY = _AnyType()


class UnsupportedType(Exception):
    """An annotation xpm cannot check (the message names it)."""


def compile_type(tp: Any) -> ValueType:
    """Compile a Python annotation (without its Param/Meta wrapper) into a checker."""
    if tp is bool:
        return _BOOL
    if tp is int:
        return _INT
    if tp is float:
        return _FLOAT
    if tp is str:
        return _STR
    if tp is Any or tp is object:
        return _ANY
    if isinstance(tp, type):
        if issubclass(tp, PurePath):
            return _PathType()
        if issubclass(tp, enum.Enum):
            return _EnumType(tp)
        if issubclass(tp, Configurable):
            return _ConfigType(tp)
        if tp is list:
            return _ListType(_ANY)
        if tp is dict:
            return _DictType(_ANY)
        if tp is tuple:
            return _TupleType(None, None)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        optional = type(None) in args
        options = [compile_type(a) for a in args if a is not type(None)]
        if len(options) == 1 and optional:
            return _UnionType(options, True)
        return _UnionType(options, optional)
    if origin in (list, typing.List):  # noqa: UP006
        return _ListType(compile_type(args[0]) if args else _ANY)
    if origin in (tuple, typing.Tuple):  # noqa: UP006
        if len(args) == 2 and args[1] is Ellipsis:
            return _TupleType(None, compile_type(args[0]))
        return _TupleType([compile_type(a) for a in args], None)
    if origin in (dict, typing.Dict):  # noqa: UP006
        if args and args[0] is not str:
            raise UnsupportedType(f"dict keys must be str, not {args[0]!r}")
        return _DictType(compile_type(args[1]) if args else _ANY)
    raise UnsupportedType(
        f"unsupported type {tp!r}: use bool, int, float, str, Path, an Enum, a Config, "
        "Optional, list, tuple or dict[str, ...] of those"
    )


def split_annotation(annotation: Any) -> tuple[ParamKind, Any] | None:
    """``(kind, inner type)`` for ``Param[T]``/``Meta[T]``/``Constant[T]``; None otherwise."""
    if typing.get_origin(annotation) is Annotated:
        inner, *extras = typing.get_args(annotation)
        for extra in extras:
            if isinstance(extra, ParamKind):
                return extra, inner
    return None


def _union_args(tp: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(tp)
    if origin is Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        return typing.get_args(tp)
    return None


def narrows(new: Any, old: Any) -> bool:
    """Whether every value of annotation ``new`` is also a value of annotation ``old``.

    A subclass may re-declare an inherited parameter with a narrower type (a subclass of a
    Config, ``T`` for ``Optional[T]``, ``list[Sub]`` for ``list[Base]``), never another one.
    ``bool`` does not narrow ``int``: xpm refuses ``True`` for an ``int`` parameter.
    """
    if old is Any or old is object or new == old:
        return True
    new_options = _union_args(new)
    if new_options is not None:
        return all(narrows(option, old) for option in new_options)
    old_options = _union_args(old)
    if old_options is not None:
        return any(narrows(new, option) for option in old_options)
    new_origin, old_origin = typing.get_origin(new), typing.get_origin(old)
    # (``list[int]`` passes isinstance(..., type) on Python 3.10: look at the origin first.)
    if new_origin is None and old_origin is None:
        if not isinstance(new, type) or not isinstance(old, type):
            return False
        if new is bool and old is not bool:
            return False
        return issubclass(new, old) or (new is int and old is float)
    if new_origin is None or new_origin is not old_origin:
        # A parameterised container (``list[int]``) narrows the bare one (``list``).
        return old_origin is None and new_origin is old
    new_args, old_args = typing.get_args(new), typing.get_args(old)
    if not old_args:
        return True
    if len(old_args) == 2 and old_args[1] is Ellipsis and Ellipsis not in new_args:
        return all(narrows(a, old_args[0]) for a in new_args)  # tuple[int, int] vs [int, ...]
    if len(new_args) != len(old_args):
        return False
    return all(
        a is b or (a is not Ellipsis and b is not Ellipsis and narrows(a, b))
        for a, b in zip(new_args, old_args, strict=True)
    )
