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

from ._config import MISSING, Config
from ._types import GeneratedPath, ParamKind
from .errors import ConfigError

#: Prefix of every encoded configuration; bump the version to change the format on purpose.
FORMAT = b"xpm-id\x001\x00"

_pack_u32 = struct.Struct(">I").pack
_pack_f64 = struct.Struct(">d").pack
_CANONICAL_NAN = _pack_f64(math.nan)

# One tag byte per value kind.
NONE, FALSE, TRUE, INT, FLOAT, STR, PATH, GENPATH, ENUM, LIST, TUPLE, DICT, CONFIG = (
    b"N", b"f", b"t", b"I", b"F", b"S", b"P", b"G", b"E", b"L", b"T", b"D", b"C"
)
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
        for k in sorted(value):
            _str(buf, STR, k)
            encode_value(buf, value[k])
    elif isinstance(value, enum.Enum):
        cls = type(value)
        _str(buf, ENUM, f"{cls.__module__}.{cls.__qualname__}".lower() + ":" + value.name)
    elif isinstance(value, GeneratedPath):
        _str(buf, GENPATH, value.relative)
    elif isinstance(value, PurePath):
        _str(buf, PATH, value.as_posix())
    elif isinstance(value, int):  # int subclasses other than bool (e.g. IntEnum handled above)
        _str(buf, INT, str(int(value)))
    elif isinstance(value, float):
        buf += FLOAT
        buf += _pack_f64(float(value))
    elif isinstance(value, str):
        _str(buf, STR, str(value))
    else:
        raise ConfigError(f"cannot compute an identifier for a value of type {t.__name__}")


def encode_config(cfg: Config) -> bytes:
    """The canonical bytes whose SHA-256 is the identifier of ``cfg``."""
    info = type(cfg).__xpm__
    values = cfg.__dict__
    buf = bytearray(FORMAT)
    task = values.get("_xpm_task")
    if task is not None:
        # A task output is identified by the task that produces it, then by its own values.
        buf += TASK_OUTPUT
        buf += identifier_of(task).digest
    _str(buf, STR, info.typeid)
    for p in info.identity_params:
        value = values.get(p.name, MISSING)
        if value is MISSING:
            raise ConfigError(
                f"{type(cfg).__qualname__}.{p.name} is required but was not set: "
                f"pass {p.name}=... when building {type(cfg).__qualname__}"
            )
        if p.kind is ParamKind.PARAM:
            default = p.reference_default()
            if default is not MISSING and type(value) is type(default):
                if isinstance(value, Config):
                    if identifier_of(value) == identifier_of(default):
                        continue
                elif value == default and _same_shape(value, default):
                    continue
        _str(buf, PARAM, p.name)
        encode_value(buf, value)
    return bytes(buf)


def _same_shape(a: Any, b: Any) -> bool:
    """Equal values that would also encode identically (``[1]`` vs ``[True]`` are not)."""
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(
            type(x) is type(y) and _same_shape(x, y) for x, y in zip(a, b)
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
    ident = Identifier(hashlib.sha256(encode_config(cfg)).digest())
    if values.get("_xpm_frozen"):
        values["_xpm_id"] = ident
    return ident
