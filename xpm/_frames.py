"""Messages on the pipes between xpm's own processes (the local fork server, generate mode's
directory writer): each is a 4-byte big-endian length, then the :mod:`marshal` bytes of a
tuple, list or dict of plain values.  Both ends are the same xpm, so marshal's format (fast,
stdlib, no code objects here) is enough; nothing else ever reads these pipes.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterator, Mapping
from typing import IO, Any, Generic, TypeVar

#: Bytes of the length that precedes each message.
HEADER = 4


def frame(message: Any) -> bytes:
    """``message`` as the bytes to write on the pipe."""
    data = marshal.dumps(message)
    return len(data).to_bytes(HEADER, "big") + data


class FrameBuffer:
    """Bytes read so far from a pipe read in chunks (non-blocking), cut into messages."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """Add ``data``; return the messages now complete (the rest waits for more)."""
        self._data += data
        messages = []
        while len(self._data) >= HEADER:
            size = int.from_bytes(self._data[:HEADER], "big")
            end = HEADER + size
            if len(self._data) < end:
                break
            messages.append(marshal.loads(bytes(self._data[HEADER:end])))
            del self._data[:end]
        return messages


def read_frames(stream: IO[bytes]) -> Iterator[Any]:
    """The messages of a blocking stream, until it ends (a cut last message is dropped)."""
    while True:
        header = stream.read(HEADER)
        if len(header) < HEADER:
            return
        size = int.from_bytes(header, "big")
        data = stream.read(size)
        if len(data) < size:
            return
        yield marshal.loads(data)


_Record = TypeVar("_Record", bound=tuple[Any, ...])


class Tagged(Generic[_Record]):
    """The named records (``NamedTuple`` types) one pipe carries, each framed as its tag
    then its fields: one way to send and read them for every pipe."""

    __slots__ = ("_tags", "_types")

    def __init__(self, tags: Mapping[type, str]) -> None:
        self._tags = dict(tags)
        self._types = {tag: kind for kind, tag in self._tags.items()}

    def frame(self, record: _Record) -> bytes:
        """``record`` as the bytes to write on the pipe."""
        return frame((self._tags[type(record)], *record))

    def parse(self, message: Any) -> _Record:
        """The record a message read from the pipe holds."""
        kind: Any = self._types[message[0]]
        record: _Record = kind._make(message[1:])
        return record
