"""Shared fixtures: a temporary workdir and a helper to run Python scripts as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["_slurm_fixtures"]

TESTS = Path(__file__).parent
ROOT = TESTS.parent

# The test tasks live in xpm's own repository: without this, every test experiment would
# snapshot and pin xpm's working tree (refs/xpm/...) and warn that it is dirty.  Tests of
# the git recording turn it back on in their own temporary repositories (tests/test_git*.py).
os.environ.setdefault("XPM_GIT", "off")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty workdir."""
    path = tmp_path / "workdir"
    path.mkdir()
    return path


def run_python(
    code: str, *, cwd: Path | None = None, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that can import the test task modules."""
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def popen_python(code: str, *, cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start ``code`` in a fresh interpreter without waiting for it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def eventually(predicate: Any, what: str, timeout: float = 90.0) -> Any:
    """``predicate()``'s first true value, asked every 50 ms (AssertionError naming ``what``
    after ``timeout`` seconds: a deadline against hangs, not a speed test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def assert_index_equals_rebuild(workdir: Path, scratch: Path) -> None:
    """The index of ``workdir`` equals one rebuilt (in a copy under ``scratch``) from its
    directories and run records, table by table, row for row."""
    import shutil

    from xpm.index import open_index, rebuild
    from xpm.index._schema import TABLES
    from xpm.index._writecount import LOG

    copy = scratch / "rebuilt"
    shutil.copytree(workdir, copy)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy / 'xpm.db'}{suffix}").unlink(missing_ok=True)
    rebuild(copy)
    with open_index(workdir, readonly=True) as a, open_index(copy, readonly=True) as b:
        for t in TABLES:
            if t.name == LOG:  # which rows were written lately, not what they hold
                continue
            order = ", ".join(t.primary_key)
            # meta's counts of writes count writes, not content (a rebuild writes in other
            # steps), and each file has its own name.
            where = (
                " WHERE key NOT IN ('jobs_writes', 'settings_writes', 'index_id')"
                if t.name == "meta"
                else ""
            )
            query = f'SELECT * FROM "{t.name}"{where} ORDER BY {order}'
            assert a.conn.execute(query).fetchall() == b.conn.execute(query).fetchall(), t.name


def params_as_before_schema_5(workdir: Path) -> None:
    """Write the params.json files of ``workdir`` as an xpm older than index schema 5 did:
    without the ``meta`` lists (the migration tests build their old workdirs with it)."""
    for path in workdir.glob("jobs/*/*/params.json"):
        doc = json.loads(path.read_text())
        for obj in doc["objects"]:
            obj.pop("meta", None)
        path.write_text(json.dumps(doc))
