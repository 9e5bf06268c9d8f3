"""Opening the index file: location, journal mode, busy timeout, retries, corruption.

``WORKDIR/xpm.db`` unless ``XPM_INDEX`` names another file (keep the index on a local
disk when the workdir is on a network file system).  WAL journal on local file systems
(readers never block the writer), the rollback journal where WAL cannot work (network
file systems: WAL needs shared memory on one host).  Writes are short ``BEGIN IMMEDIATE``
transactions with a busy timeout, retried when SQLite still reports the file locked.
"""

from __future__ import annotations

import errno
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from stat import S_ISREG as stat_is_file
from typing import TYPE_CHECKING, Any, TypeVar

from .._vocabulary import index_file
from ..errors import IndexDatabaseError, StorageError
from ._version import SCHEMA_VERSION, schema_version, too_new

if TYPE_CHECKING:
    import sqlite_utils

#: Environment variable naming the index file (default: WORKDIR/xpm.db).
ENV_INDEX = "XPM_INDEX"
#: Seconds SQLite itself waits for a lock before reporting "database is locked".
BUSY_TIMEOUT = 30.0
#: Total seconds a write keeps retrying after that.
RETRY_FOR = 300.0
#: File systems where WAL is unsafe (shared memory does not span hosts).
NETWORK_FS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "lustre",
        "gpfs",
        "beegfs",
        "ceph",
        "glusterfs",
        "fuse.glusterfs",
        "fuse.sshfs",
        "afs",
        "9p",
        "panfs",
        "fuse.ceph",
        "wekafs",
    }
)
REBUILD_HINT = "the index is derived from the job directories: recreate it with `xpm index rebuild`"

T = TypeVar("T")


#: Page cache of a writing connection, in KiB.
WRITE_CACHE_KIB = 32768


def index_path(workdir: str | os.PathLike[str]) -> Path:
    """Where the index of ``workdir`` lives: ``$XPM_INDEX`` or ``WORKDIR/xpm.db``."""
    env = os.environ.get(ENV_INDEX)
    path = Path(env).expanduser().absolute() if env else index_file(workdir)
    if path.is_symlink() and not path.exists():
        # Otherwise read as "no index yet", or SQLite's "unable to open database file".
        try:
            path.stat()
            why = "leads nowhere"
        except OSError as e:
            why = "loops" if e.errno == errno.ELOOP else "leads nowhere"
        raise IndexDatabaseError(
            f"{path} is a symbolic link to {os.readlink(path)} that {why}: point it at the "
            "index or remove it, then run `xpm index rebuild`"
        )
    return path


def filesystem_type(path: Path) -> str | None:
    """The file system type holding ``path`` (from /proc/mounts; None when unknown)."""
    from .._storage import mount_entry

    return mount_entry(path)[1]


def readonly_uri(path: Path) -> str:
    """The SQLite URI that opens the index ``path`` read-only.

    On a read-only file system (a colleague's results mounted read-only) SQLite cannot
    create the WAL's shared-memory file, and a plain ``mode=ro`` fails with "unable to open
    database file": there the file is opened ``immutable`` (nothing can write it anyway).
    """
    uri = path.as_uri() + "?mode=ro"
    if not on_readonly_fs(path.parent):
        return uri
    if not _has_wal_pages(path):
        return uri + "&immutable=1"
    # ``immutable`` would ignore the WAL, where a crashed or running experiment's last
    # writes are (every table would look empty).  With the shared-memory file present,
    # SQLite reads the WAL read-only; without it, a private copy of both files is read.
    if Path(f"{path}-shm").exists():
        return uri
    return _private_copy(path).as_uri() + "?mode=ro"


def _has_wal_pages(path: Path) -> bool:
    try:
        return os.path.getsize(f"{path}-wal") > 0
    except OSError:
        return False


_COPIES: dict[Path, Path] = {}


def _private_copy(path: Path) -> Path:
    """A copy of the index ``path`` and its WAL in a temporary directory (removed at exit),
    for reading an index on a read-only file system whose WAL cannot be mapped there."""
    import atexit
    import shutil
    import tempfile

    if path not in _COPIES:
        folder = Path(tempfile.mkdtemp(prefix="xpm-readonly-index-"))
        atexit.register(shutil.rmtree, folder, True)
        shutil.copyfile(path, folder / path.name)
        shutil.copyfile(f"{path}-wal", folder / f"{path.name}-wal")
        _COPIES[path] = folder / path.name
    return _COPIES[path]


def on_readonly_fs(path: Path) -> bool:
    """Whether ``path`` is on a file system mounted read-only."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def is_locked_error(error: BaseException) -> bool:
    """Whether ``error`` is SQLite's 'database is locked' / 'busy' (worth retrying)."""
    text = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def check_header(path: Path) -> None:
    """Refuse files that are not SQLite databases or were truncated."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return
    if not stat_is_file(stat.st_mode):
        raise IndexDatabaseError(
            f"{path} is not a file (a directory or a device) but should be the index: move it "
            "away, then run `xpm index rebuild`"
        )
    size = stat.st_size
    if size == 0:
        return  # SQLite creates the file empty; the schema is written on first open
    with open(path, "rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise IndexDatabaseError(f"{path} is not an SQLite database (bad header): {REBUILD_HINT}")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # SQLite trusts the header's page count only when it was written with the current
    # change counter, and pages may still sit in the WAL (a checkpoint cut short by a full
    # disk leaves the header ahead of the file): only then is a short file truncated.
    trusted = header[92:96] == header[24:28] and not _has_wal_pages(path)
    if trusted and page_size and pages and size < pages * page_size:
        raise IndexDatabaseError(
            f"{path} is truncated ({size} bytes, its header says {pages * page_size}): "
            f"{REBUILD_HINT}"
        )


class IndexDB:
    """An open index: a sqlite3 connection, its sqlite-utils wrapper, and safe writes."""

    def __init__(self, workdir: str | os.PathLike[str], readonly: bool = False) -> None:
        self.workdir = Path(workdir).absolute()
        self.path = index_path(self.workdir)
        #: Opened read-only because its file system is mounted read-only: read what is
        #: there (listing a colleague's results), refuse writes as a full disk is refused.
        self.readonly_fs = not readonly and self.path.exists() and on_readonly_fs(self.path.parent)
        readonly = readonly or self.readonly_fs
        self.readonly = readonly
        if readonly and not self.path.exists():
            raise IndexDatabaseError(
                f"no index at {self.path}: run an experiment on {self.workdir} or "
                "`xpm index rebuild`"
            )
        check_header(self.path)
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if readonly:
                uri = readonly_uri(self.path)
                self.conn = sqlite3.connect(
                    uri,
                    uri=True,
                    timeout=BUSY_TIMEOUT,
                    isolation_level=None,
                    check_same_thread=False,
                )
            else:
                self.conn = sqlite3.connect(
                    str(self.path),
                    timeout=BUSY_TIMEOUT,
                    isolation_level=None,
                    check_same_thread=False,
                )
        except sqlite3.Error as e:
            raise IndexDatabaseError(f"cannot open the index {self.path}: {e}") from None
        try:
            self._setup()
        except BaseException:
            self.conn.close()
            raise
        self._db: sqlite_utils.Database | None = None

    def _setup(self) -> None:
        with self.errors():
            if not self.readonly:
                self.retry(self._set_journal)
            self.conn.execute("PRAGMA foreign_keys = OFF")
            if self.readonly:
                version = schema_version(self.conn)
                if version > SCHEMA_VERSION:
                    # Writing it would not help: this xpm cannot upgrade a newer schema.
                    raise too_new(version, where=f"the index {self.path}")
                if version != SCHEMA_VERSION:
                    raise IndexDatabaseError(
                        f"the index {self.path} has schema version {version}, this xpm "
                        f"reads {SCHEMA_VERSION}: open it for writing once (any experiment "
                        "run) to upgrade it, or run `xpm index rebuild`"
                    )
            elif schema_version(self.conn) != SCHEMA_VERSION:
                from ._migrations import migrate  # the schema definitions: only when needed

                self.write(lambda conn: migrate(conn))

    def _set_journal(self) -> None:
        fstype = filesystem_type(self.path.parent)
        mode = "delete" if fstype in NETWORK_FS else "wal"
        current = self.conn.execute("PRAGMA journal_mode").fetchone()[0]
        if current.lower() != mode:
            self.conn.execute(f"PRAGMA journal_mode = {mode}")
        self.journal_mode = mode
        self.conn.execute("PRAGMA synchronous = NORMAL")
        # Job identifiers are random: each batch touches pages all over the indexes, and
        # SQLite's default 2 MB cache re-reads them (30% of a 10,000-job batch's time).
        self.conn.execute(f"PRAGMA cache_size = -{WRITE_CACHE_KIB}")

    # --- sqlite-utils ---------------------------------------------------------------------
    @property
    def db(self) -> sqlite_utils.Database:
        """The sqlite-utils view of the connection."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    # --- errors, retries, transactions ------------------------------------------------------
    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn SQLite corruption errors into :class:`IndexDatabaseError` naming the fix."""
        try:
            yield
        except sqlite3.OperationalError as e:
            if is_locked_error(e):
                raise
            # A full disk, a read-only file...: the file may be fine, the cause kept.
            raise IndexDatabaseError(
                f"the index {self.path} cannot be used ({e}): free disk space or fix its "
                f"permissions; {REBUILD_HINT}"
            ) from e
        except sqlite3.DatabaseError as e:
            raise IndexDatabaseError(
                f"the index {self.path} is unreadable ({e}): {REBUILD_HINT}"
            ) from None

    def retry(self, fn: Callable[[], T]) -> T:
        """Call ``fn``, again after a short random pause while the database is locked."""
        deadline = time.monotonic() + RETRY_FOR
        delay = 0.01
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as e:
                if not is_locked_error(e) or time.monotonic() > deadline:
                    raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in one short write transaction (``BEGIN IMMEDIATE``), with retries."""
        if self.readonly_fs:
            raise StorageError(
                f"the index {self.path} is on a read-only file system: it can be read, not "
                "written; remount it read-write or copy the workdir"
            )
        if self.readonly:
            raise IndexDatabaseError(f"the index {self.path} was opened read-only")

        def attempt() -> T:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(self.conn)
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            return result

        with self.errors():
            return self.retry(attempt)

    def query(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        """Rows of a read query (as :class:`sqlite3.Row`), with corruption errors explained."""
        with self.errors():
            cursor = self.retry(lambda: self.conn.execute(sql, params))
            cursor.row_factory = sqlite3.Row  # type: ignore[assignment]
            return list(cursor.fetchall())

    def query_dicts(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        """Rows of a read query as dicts (column name -> value)."""
        with self.errors():
            cursor = self.retry(lambda: self.conn.execute(sql, params))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> IndexDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
