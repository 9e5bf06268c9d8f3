"""The canonical encoding of configurations and their SHA-256 identifiers.

This module alone decides identity.  The byte format is specified in
docs/identifiers.md and frozen by tests/golden/identifiers.json; any change
here that alters a byte changes every identifier and needs a migration note.
"""

from __future__ import annotations

import enum
import hashlib
import math
import struct
from pathlib import PurePath
from typing import Any

from ._config import Config, cycle_error, missing_error
from ._configinfo import MISSING, ConfigInfo, ParamInfo, module_name
from ._types import GeneratedPath, ParamKind
from .errors import ConfigError

#: Prefix of every encoded configuration; bump the version to change the format on purpose.
FORMAT = b"xpm-id\x001\x00"

_sha256 = hashlib.sha256
_pack_u32 = struct.Struct(">I").pack
_pack_f64 = struct.Struct(">d").pack
_CANONICAL_NAN = _pack_f64(math.nan)

# One tag byte per value kind (docs/identifiers.md lists them).
NONE = b"N"
FALSE = b"f"
TRUE = b"t"
INT = b"I"
FLOAT = b"F"
STR = b"S"
PATH = b"P"
GENPATH = b"G"
ENUM = b"E"
LIST = b"L"
TUPLE = b"T"
DICT = b"D"
CONFIG = b"C"
TASK_OUTPUT = b"O"
PARAM = b"="


class Identifier:
    """A configuration's identity: 32 bytes of SHA-256, shown as 64 hex digits."""

    __slots__ = ("digest",)

    def __init__(self, digest: bytes) -> None:
        self.digest = digest

    @property
    def hex(self) -> str:
        """The identifier as 64 lowercase hexadecimal digits (the job directory name)."""
        return self.digest.hex()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identifier) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __str__(self) -> str:
        return self.digest.hex()

    def __repr__(self) -> str:
        return f"Identifier({self.digest.hex()[:16]}...)"


def _str(buf: bytearray, tag: bytes, text: str) -> None:
    data = text.encode("utf-8")
    buf += tag
    buf += _pack_u32(len(data))
    buf += data


def encode_value(buf: bytearray, value: Any) -> None:
    """Append the typed canonical encoding of ``value`` to ``buf``."""
    t = type(value)
    if t is bool:
        buf += TRUE if value else FALSE
    elif t is int:
        _str(buf, INT, str(value))
    elif t is str:
        _str(buf, STR, value)
    elif t is float:
        buf += FLOAT
        buf += _CANONICAL_NAN if value != value else _pack_f64(value)
    elif value is None:
        buf += NONE
    elif isinstance(value, Config):
        buf += CONFIG
        buf += identifier_of(value).digest
    elif isinstance(value, list):
        buf += LIST
        buf += _pack_u32(len(value))
        for v in value:
            encode_value(buf, v)
    elif isinstance(value, tuple):
        buf += TUPLE
        buf += _pack_u32(len(value))
        for v in value:
            encode_value(buf, v)
    elif isinstance(value, dict):
        buf += DICT
        buf += _pack_u32(len(value))
        if not all(type(k) is str for k in value):
            raise _Unencodable("a dict with non-str keys")
        for k in sorted(value):
            _str(buf, STR, k)
            encode_value(buf, value[k])
    elif isinstance(value, enum.Enum):
        cls = type(value)
        _str(buf, ENUM, f"{module_name(cls)}.{cls.__qualname__}".lower() + ":" + value.name)
    elif isinstance(value, GeneratedPath):
        _str(buf, GENPATH, value.relative)
    elif isinstance(value, PurePath):
        _str(buf, PATH, value.as_posix())
    elif isinstance(value, int):  # int subclasses other than bool (e.g. IntEnum handled above)
        _str(buf, INT, str(int(value)))
    elif isinstance(value, float):
        buf += FLOAT
        buf += _CANONICAL_NAN if value != value else _pack_f64(float(value))
    elif isinstance(value, str):
        _str(buf, STR, str(value))
    else:
        raise _Unencodable(f"a value of type {t.__name__}")


class _Unencodable(Exception):
    """A value the canonical encoding has no tag for (turned into a ConfigError)."""


class _Plan:
    """Per-class bytes computed once: the encoded type id and each parameter's prefix."""

    __slots__ = ("typeid", "entries")

    def __init__(self, info: ConfigInfo) -> None:
        buf = bytearray()
        _str(buf, STR, info.typeid)
        self.typeid = bytes(buf)
        # (name, encoded "=name" prefix, default to skip or MISSING, ParamInfo)
        self.entries: list[tuple[str, bytes, Any, ParamInfo]] = []
        for p in info.identity_params:
            buf = bytearray()
            _str(buf, PARAM, p.name)
            default = p.reference_default() if p.kind is ParamKind.PARAM else MISSING
            self.entries.append((p.name, bytes(buf), default, p))


# Types whose default-skip test is plain equality (containers also compare element types).
_PLAIN = frozenset({bool, int, float, str, type(None)})


def encode_config(cfg: Config) -> bytes:
    """The canonical bytes whose SHA-256 is the identifier of ``cfg``."""
    return bytes(_encode(cfg))


def _encode(cfg: Config) -> bytearray:
    cls = type(cfg)
    info = cls.__dict__.get("_xpm_info") or cls.__xpm__
    plan = info.id_plan
    if plan is None:
        plan = info.id_plan = _Plan(info)
    values = cfg.__dict__
    buf = bytearray(FORMAT)
    task = values.get("_xpm_task")
    if task is not None:
        # A task output is identified by the task that produces it, then by its own values.
        buf += TASK_OUTPUT
        buf += identifier_of(task).digest
    buf += plan.typeid
    for name, prefix, default, p in plan.entries:
        value = values.get(name, MISSING)
        if value is MISSING:
            raise missing_error(type(cfg), p)
        t = type(value)
        if default is not MISSING and t is type(default):
            # A Param equal to its declared default is left out (schema evolution).
            if t in _PLAIN:
                if value == default:
                    continue
            elif isinstance(value, Config):
                if identifier_of(value) == identifier_of(default):
                    continue
            elif value == default and _same_shape(value, default):
                continue
        buf += prefix
        if t is int:
            _str(buf, INT, str(value))
        elif t is str:
            _str(buf, STR, value)
        elif t is float:
            buf += FLOAT
            buf += _CANONICAL_NAN if value != value else _pack_f64(value)
        elif isinstance(value, Config):
            buf += CONFIG
            buf += identifier_of(value).digest
        else:
            try:
                encode_value(buf, value)
            except _Unencodable as e:
                raise ConfigError(
                    f"{type(cfg).__qualname__}.{name}: cannot compute an identifier for {e}; "
                    "use bool, int, float, str, None, Path, Enum, Config, or lists, tuples and "
                    "dict[str, ...] of those"
                ) from None
    return buf


def _same_shape(a: Any, b: Any) -> bool:
    """Equal values that would also encode identically (``[1]`` vs ``[True]`` are not)."""
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(
            type(x) is type(y) and _same_shape(x, y) for x, y in zip(a, b, strict=True)
        )
    if isinstance(a, dict):
        return all(type(a[k]) is type(b[k]) and _same_shape(a[k], b[k]) for k in a)
    return True


def identifier_of(cfg: Config) -> Identifier:
    """The identifier of ``cfg``; cached once the configuration is frozen."""
    values = cfg.__dict__
    cached = values.get("_xpm_id")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    try:
        ident = Identifier(_sha256(_encode(cfg)).digest())
    except RecursionError:
        # Free of cost on the normal path; a cycle is the usual cause (found and named here,
        # possibly by an outer call once the stack has room again).
        raise cycle_error(cfg) from None
    if values.get("_xpm_frozen"):
        values["_xpm_id"] = ident
    return ident
