"""Files other processes may read at any moment: writes they never see half of.

A whole file replaced atomically (temporary file, then rename), a JSON object appended as
one line by a single ``write`` (concurrent appenders keep their lines whole), and the
reading of such a JSON-lines file that skips a torn last line.  Used for job directories,
run records and launcher scripts alike.  Standard library only: the job process imports it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old or the new file, never half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def append_json_line(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON object as a line; a single ``write`` keeps concurrent lines whole."""
    line = json.dumps(record, sort_keys=True, default=str) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file, skipping a torn last line (a writer killed mid-write); bytes
    that are not UTF-8 (a damaged disk, a stray write) are read as U+FFFD, not an error."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
