"""A Datasette instance on a workdir's index: read-only, with the xpm plugin."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

from datasette.app import Datasette
from datasette.database import Database

from ..errors import UsageError
from ..index import IndexDB
from ._metadata import DATABASE, PLUGIN, metadata

#: Datasette settings of ``xpm serve``.  Facet suggestions run one query per column
#: (too slow on a large index); the xpm facets are configured in the metadata instead.
SETTINGS: dict[str, Any] = {
    "suggest_facets": False,
    "allow_download": False,
    "facet_time_limit_ms": 500,
    "sql_time_limit_ms": 5000,
}


class ReadOnlyDatabase(Database):  # type: ignore[misc]
    """A Datasette database opened only with ``mode=ro`` (``immutable`` only on a read-only
    file system, where nothing can write it).

    Datasette opens a write connection for plugins that ask for one; this class never
    does, so no page, plugin or query can write the index.  Rows written by running
    experiments are seen at once (the file is not assumed immutable).
    """

    def connect(self, write: bool = False) -> sqlite3.Connection:
        if write:
            raise sqlite3.OperationalError(
                "the xpm index is served read-only: write it through xpm (experiments, "
                "`xpm index rebuild`), not through Datasette"
            )
        from ..index import readonly_uri

        conn = sqlite3.connect(readonly_uri(Path(self.path)), uri=True, check_same_thread=False)
        self._all_file_connections.append(conn)
        return conn


def register() -> None:
    """Register the plugin's hooks with Datasette (no-op when the entry point already did)."""
    from datasette.plugins import pm

    # The plugin is the package (Datasette takes its templates and static files from the
    # package's directory), always loaded before this module: no import needed.
    plugin = sys.modules[__package__ or "xpm.datasette"]
    if not pm.is_registered(plugin):
        pm.register(plugin, name=PLUGIN)


def make_datasette(
    workdir: str | os.PathLike[str], *, settings: dict[str, Any] | None = None
) -> Datasette:
    """A Datasette serving the index of ``workdir`` read-only, with the xpm plugin.

    Raises :class:`~xpm.errors.IndexDatabaseError` when there is no index (or it is
    damaged or of another schema version).
    """
    workdir = Path(workdir).absolute()
    if not workdir.is_dir():
        raise UsageError(
            f"workdir {workdir} does not exist: give the directory of your experiments"
        )
    with IndexDB(workdir, readonly=True) as index:  # clear errors: missing, damaged, old
        path = index.path
    register()
    ds = Datasette(
        [],
        metadata=metadata(workdir),
        settings={**SETTINGS, **(settings or {})},
    )
    ds.add_database(ReadOnlyDatabase(ds, path=str(path), is_mutable=True), name=DATABASE)
    if "_memory" in ds.databases:
        # Datasette adds an empty in-memory database when given no file: nothing to show.
        ds.remove_database("_memory")
    return ds


def _main() -> None:  # pragma: no cover - debugging aid: python -m xpm.datasette._app WORKDIR
    make_datasette(sys.argv[1])


def url_of(host: str, port: int) -> str:
    """The URL a browser opens for a server bound to ``host:port``."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"  # IPv6
    return f"http://{shown}:{port}/"


def serve(
    workdir: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    open_browser: bool = False,
    on_ready: Any = None,
) -> None:
    """Serve the index of ``workdir`` until interrupted (``xpm serve``).

    ``on_ready(url)`` is called once the server listens (``xpm serve`` prints the URL);
    ``open_browser`` opens it in the default web browser.
    """
    import asyncio
    import socket

    import uvicorn

    from ..index import settle_workdir

    settle_workdir(workdir)  # what a crashed run left, once, before serving the rows
    ds = make_datasette(workdir)
    asyncio.run(ds.invoke_startup())
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # connections wait in the backlog until the server accepts them
    except OSError as e:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port} ({e.strerror}): choose another --port"
        ) from None
    url = url_of(host, sock.getsockname()[1])
    if on_ready is not None:
        on_ready(url)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    config = uvicorn.Config(ds.app(), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
