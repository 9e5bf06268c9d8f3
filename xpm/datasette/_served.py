"""What every page of the plugin reads of what is served: the workdir, whether the index
file changed (for caches), and one consistent snapshot of the index."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

from ..index import CurveAverages, KeptByWrites, KeptValues, settings_writes
from ._metadata import PLUGIN


def workdir_of(datasette: Any) -> Path | None:
    """The workdir configured for the plugin (None when the plugin is not configured)."""
    config = datasette.plugin_config(PLUGIN) or {}
    workdir = config.get("workdir")
    return Path(workdir) if workdir else None


def index_signature(path: str | None) -> tuple[Any, ...]:
    """Changes whenever the index file (or its write-ahead log) is written."""
    sig: list[Any] = []
    for suffix in ("", "-wal"):
        try:
            st = os.stat(f"{path}{suffix}")
            sig += [st.st_mtime_ns, st.st_size]
        except (OSError, TypeError):
            sig += [None, None]
    return tuple(sig)


_T = TypeVar("_T")

#: Values kept by :func:`while_unchanged` (the least recently used go first): a chart's
#: data is up to 2 MB.
CACHE_SIZE = 64
_cache: OrderedDict[tuple[str, Hashable], tuple[tuple[Any, ...], Any]] = OrderedDict()


#: Computations under way, by key and signature: a second request for the same value
#: waits for the first one's answer instead of computing it again.
_running: dict[tuple[tuple[str, Hashable], tuple[Any, ...]], asyncio.Future[Any]] = {}


async def while_unchanged(path: Any, key: Hashable, compute: Callable[[], Awaitable[_T]]) -> _T:
    """``compute()``, or what it gave last time for ``key`` if the index at ``path`` has
    not been written since (or what a computation already under way gives).

    For what a page computes from many jobs and that depends on the index alone (facet
    counts, chart data, the columns of a table): over 100,000 jobs these took 40-500 ms
    on every load of a page, while the index of a finished sweep never changes.  The
    signature is taken before computing, so a value read while the index changed is kept
    under the old signature and recomputed on the next request.
    """
    full = (str(path), key)
    sig = index_signature(str(path))
    found = _cache.get(full)
    if found is not None and found[0] == sig:
        _cache.move_to_end(full)
        return found[1]  # type: ignore[no-any-return]
    if found is not None:
        # Written since: every value kept for this index is stale for good (the signature
        # only moves on), so free them now rather than when they get old.
        for stale in [k for k, (kept, _v) in _cache.items() if k[0] == full[0] and kept != sig]:
            del _cache[stale]
    under_way = _running.get((full, sig))
    if under_way is not None:
        # Shielded: a request that goes away does not cancel the others' answer.
        return await asyncio.shield(under_way)  # type: ignore[no-any-return]
    task = asyncio.ensure_future(compute())
    _running[(full, sig)] = task
    try:
        value = await asyncio.shield(task)
    finally:
        if _running.get((full, sig)) is task:
            del _running[(full, sig)]
    _cache[full] = (sig, value)
    _cache.move_to_end(full)
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return value


#: How long :func:`lagging` answers a value without computing it again, whatever writes.
LAG_SECONDS = 5.0
#: What :func:`lagging` gave last, by index and key: (signature, shape, when, value).
_lagging: dict[tuple[str, Hashable], tuple[tuple[Any, ...], Any, float, Any]] = {}


async def lagging(
    path: Any,
    key: Hashable,
    compute: Callable[[], Awaitable[_T]],
    shape: Callable[[], Awaitable[Hashable]],
    lag: float = LAG_SECONDS,
) -> _T:
    """``compute()`` for the index at ``path``, computed again at most every ``lag``
    seconds while the index is written (the value kept is answered meanwhile, then once
    more while the new one is computed in the background), and at once when ``shape()``
    (cheap) changed.

    For the sweep canned queries: Datasette builds its list of queries on every one of its
    pages (``/xpm/jobs`` too), and building them took 77 ms over 100,000 jobs after every
    write, which a running experiment makes twice a second, while they change only when
    an experiment, a task or a key appears.  Their ``shape`` is the experiments' names, so
    a new experiment's query is there at once; a key new to an experiment shows as a
    column within ``lag`` seconds (the rows are always read from the index as it is).
    """
    full = (str(path), key)
    sig = index_signature(str(path))
    found = _lagging.get(full)
    if found is not None and found[0] == sig:
        return found[3]  # type: ignore[no-any-return]
    now = await shape()
    if found is None or found[1] != now:
        value = await while_unchanged(path, key, compute)
        _lagging[full] = (sig, now, time.monotonic(), value)
        return value
    if time.monotonic() - found[2] >= lag:

        async def refresh() -> None:
            # while_unchanged: requests arriving meanwhile share one computation.
            value = await while_unchanged(path, key, compute)
            _lagging[full] = (sig, now, time.monotonic(), value)

        _lagging[full] = (found[0], found[1], time.monotonic(), found[3])  # one refresh
        in_background(refresh())
    return found[3]  # type: ignore[no-any-return]


_curves: dict[str, CurveAverages] = {}


def curve_averages(path: Any) -> CurveAverages:
    """What keeps the sums of curves of the charts of the index at ``path`` between loads
    (the sums of jobs that ended stay right across writes: :class:`~xpm.index.CurveAverages`)."""
    found = _curves.get(str(path))
    if found is None:
        found = _curves[str(path)] = CurveAverages()
    return found


_values: dict[str, KeptValues] = {}
_by_writes: dict[str, KeptByWrites] = {}


def kept_by_writes(path: Any) -> KeptByWrites:
    """What keeps the values computed from the jobs of the index at ``path`` while they
    are not written (:class:`~xpm.index.KeptByWrites`): an experiment's jobs, a runs
    table's base and facet counts."""
    found = _by_writes.get(str(path))
    if found is None:
        found = _by_writes[str(path)] = KeptByWrites()
    return found


_by_settings: dict[str, KeptByWrites] = {}


def kept_by_settings(path: Any) -> KeptByWrites:
    """What keeps the values computed from the tasks, parameters and tags of the jobs of
    the index at ``path`` (:func:`~xpm.index.settings_writes`): a task's table over every
    job keeps its tag counts and orders while its jobs start and end."""
    found = _by_settings.get(str(path))
    if found is None:
        # Few: each may hold the other tasks' values of a sorted name (up to 8 MB).
        found = _by_settings[str(path)] = KeptByWrites(size=16, count=settings_writes)
    return found


def kept_values(path: Any) -> KeptValues:
    """What keeps the values that the charts of the index at ``path`` read of each job
    between loads (those of jobs whose marks are unchanged: :class:`~xpm.index.KeptValues`)."""
    found = _values.get(str(path))
    if found is None:
        found = _values[str(path)] = KeptValues()
    return found


def in_background(work: Awaitable[Any]) -> None:
    """Start ``work`` without waiting for it (what it computes is kept by
    :func:`while_unchanged`; a failure shows to whoever asks for that value)."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda done: done.cancelled() or done.exception())


def snapshot(read: Callable[[sqlite3.Connection], _T]) -> Callable[[sqlite3.Connection], _T]:
    """``read`` run inside one read transaction, so all its queries see the same index.

    A live page computes both its rows and whether anything still runs; read in separate
    statements, a job ending in between gave a page that said "nothing runs" (and so
    stopped refreshing) while its table still showed the job running.
    """

    def in_one_snapshot(conn: sqlite3.Connection) -> _T:
        if conn.in_transaction:
            return read(conn)
        conn.execute("BEGIN")
        try:
            return read(conn)
        finally:
            conn.execute("COMMIT")

    return in_one_snapshot
