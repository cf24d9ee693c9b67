"""The embedded durable store: one SQLite file, written with group commit.

Durability
    The database runs in WAL mode with ``synchronous = FULL``: every commit
    ``fsync``\\ s the write-ahead log before the commit future resolves, so a
    committed message survives ``kill -9`` *and* a power cut (given a disk that
    honours ``fsync``; on macOS ``fullfsync`` is on too). ``synchronous = NORMAL``
    would survive ``kill -9`` but may lose the last commits on power loss, which
    is not what the broker promises. Nor would it buy much: one ``fsync`` (a
    few milliseconds) serves a whole batch, and with four producers keeping 100
    messages each in flight the broker runs out of CPU (decoding, routing,
    settling, the rows written) long before it runs out of ``fsync`` calls.

Threads
    The event loop never touches the disk. All writes run on one writer thread
    with its own connection, one transaction per batch (see ``_writer``). Reads
    (recovery, paging bodies back in) run on a second thread with a second
    connection: under WAL a reader sees the last commit without blocking the
    writer, so a consumer waiting for a paged-out body does not queue behind
    the ``fsync`` of a group commit, and a long recovery scan, read in short
    keyset pages, never holds a read transaction open. Whatever is still in a
    batch in memory is served from there, so a read never misses a write the
    loop has already made. Non-durable paged-out bodies go to a separate,
    unsynced file (see ``_paging``).

Safety
    A file that is not a Petrel store, is truncated, corrupt or written by a
    newer Petrel raises :class:`StoreError` at open and is left as it was: the
    store never deletes or recreates a file it cannot read. A lock file
    (``<db>.lock``) keeps a second broker off the same database.

SQL
    The tables, the statements and everything on the event loop's side are
    shared with :class:`~petrel.store.PostgresStore` (see ``_sql``); this module
    adds the file: finding, checking, locking and opening it in WAL mode.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from ._paging import Pager
from ._sql import SQLITE, Connection, MessageBatch, SqlStore, Statements, write_batch
from .base import DEFAULT_MAX_BACKLOG_BYTES, DEFAULT_MAX_BACKLOG_OPS, StoredMessage, StoreError

__all__ = ["DEFAULT_FILE", "SCHEMA_VERSION", "SqliteStore"]

#: The database file created in a data directory.
DEFAULT_FILE = "petrel.db"
#: The schema this version writes. A database with a higher version is refused.
SCHEMA_VERSION = 1

_SQLITE_MAGIC = b"SQLite format 3\x00"

_PRAGMAS = (
    "synchronous = FULL",  # fsync the WAL at every commit: power-cut safe
    "fullfsync = ON",  # macOS: F_FULLFSYNC, else fsync does not reach the platter
    "checkpoint_fullfsync = ON",
    "journal_size_limit = 67108864",  # give the WAL back after a burst
    "cache_size = -16384",  # 16 MiB
)


def _db_path(path: Path) -> Path:
    """A directory (existing, or a path without a suffix) holds ``petrel.db``."""
    db = path / DEFAULT_FILE if path.is_dir() or not path.suffix else path
    missing = [parent for parent in db.parents if not parent.exists()]
    if missing:
        db.parent.mkdir(parents=True)
        # Make the new directories' entries durable, as SQLite does for its own files.
        for directory in (*missing, missing[-1].parent):
            _fsync_directory(directory)
    return db


def _fsync_directory(path: Path) -> None:
    if sys.platform == "win32":
        return  # directories cannot be opened, nor need to be synced, there
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _paging_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}-paging{path.suffix}")


def _check_file(path: Path) -> None:
    """Refuse, before SQLite sees it, a file that is not SQLite or is visibly truncated."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if not path.is_file():
        raise StoreError(f"{path} is not a regular file")
    if size == 0:
        return  # created, never written: an empty database
    with path.open("rb") as file:
        header = file.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise StoreError(f"{path} is not an SQLite database (left untouched)")
    page_size = int.from_bytes(header[16:18], "big")
    if page_size == 1:
        page_size = 65536
    if page_size < 512 or page_size & (page_size - 1):
        raise StoreError(f"{path} has a corrupt header (page size {page_size}; left untouched)")
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size:
        return  # pages may still be in the WAL: SQLite replays it
    pages = int.from_bytes(header[28:32], "big")
    pages_valid = header[24:28] == header[92:96]
    if size % page_size or (pages_valid and size < pages * page_size):
        raise StoreError(
            f"{path} is truncated: {size} bytes where its header says "
            f"{pages * page_size} (left untouched)"
        )


def _lock(path: Path) -> int:
    """Hold an exclusive lock on ``<db>.lock`` (POSIX); the fd releases it when closed."""
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    if sys.platform != "win32":
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            raise StoreError(f"{path} is in use by another process") from error
    return fd


class SqliteStore(SqlStore):
    """A durable :class:`MessageStore` in one SQLite file.

    ``path`` is a data directory (an existing directory, or a path without a
    suffix, created if missing) holding ``petrel.db``, or the database file
    itself. Next to it live ``<db>-wal``/``-shm`` (SQLite's), ``<db>.lock`` and,
    while paging, ``petrel-paging.db`` (throwaway; for a file ``x.db``, ``x-paging.db``).

    ``group_commit=False`` writes one transaction per operation: for benchmarks
    only (to show what group commit buys); it is not atomic for :meth:`move`.
    ``trace``, if given, is called with every SQL statement, on the thread that
    runs it. ``verify=True`` runs SQLite's ``quick_check`` at open, which reads
    the whole file.
    """

    sql = Statements(SQLITE, SCHEMA_VERSION)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        group_commit: bool = True,
        verify: bool = False,
        trace: Callable[[str], None] | None = None,
        max_backlog_ops: int = DEFAULT_MAX_BACKLOG_OPS,
        max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES,
    ) -> None:
        super().__init__(
            group_commit=group_commit,
            trace=trace,
            max_backlog_ops=max_backlog_ops,
            max_backlog_bytes=max_backlog_bytes,
        )
        self._given_path = Path(path)
        self._path: Path | None = None
        self._verify = verify
        self._wcon: sqlite3.Connection | None = None
        self._rcon: sqlite3.Connection | None = None
        self._lock_fd: int | None = None

    @property
    def path(self) -> Path:
        """The database file (known once open)."""
        return self._path if self._path is not None else self._given_path

    def page_out(self, message: StoredMessage) -> None:
        """See :meth:`MessageStore.page_out`. Bodies go to ``<db stem>-paging<suffix>``
        (``petrel-paging.db``) next to the database, without ``fsync``."""
        super().page_out(message)

    def _new_pager(self) -> Pager:
        assert self._loop is not None
        return Pager(self._loop, path=_paging_path(self.path), trace=self._trace)

    # -- reader thread -----------------------------------------------------------------

    def _reader_con(self) -> Connection:
        if self._rcon is None:
            raise StoreError("the store is closed")
        return self._rcon

    def _read_error(self, error: Exception) -> StoreError | None:
        if isinstance(error, sqlite3.Error):
            return StoreError(f"reading {self.path} failed: {error}")
        return None

    def _open_reader(self) -> None:
        assert self._path is not None
        con = _connect(self._path, self._trace)
        try:
            con.execute("PRAGMA query_only = ON")
            con.execute("PRAGMA cache_size = -16384")
        except sqlite3.Error as error:
            con.close()
            raise StoreError(f"cannot open {self._path}: {error}") from error
        self._rcon = con

    def _close_reader(self) -> None:
        if self._rcon is not None:
            self._rcon.close()
            self._rcon = None

    # -- writer thread -----------------------------------------------------------------

    def _open_writer(self) -> None:
        try:
            path = self._path = _db_path(self._given_path)
            self._lock_fd = _lock(path)
            _check_file(path)
        except OSError as error:
            self._close_writer()
            raise StoreError(f"cannot open {self._given_path}: {error}") from error
        except BaseException:
            self._close_writer()
            raise
        con = None
        try:
            con = _connect(path, self._trace)
            # Everything up to the version check only reads: a file we refuse is left as is.
            fresh = self._check_schema(con)
            if self._verify:
                problems = [row[0] for row in con.execute("PRAGMA quick_check")]
                if problems != ["ok"]:
                    raise StoreError(f"{path} is corrupt: {'; '.join(problems[:5])}")
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{path}: cannot use WAL mode (got {mode!r})")
            for pragma in _PRAGMAS:
                con.execute(f"PRAGMA {pragma}")
            if fresh:
                con.execute("BEGIN IMMEDIATE")
                for statement in self.sql.create_tables:
                    con.execute(statement)
                con.execute("COMMIT")
                _fsync_directory(path.parent)  # the new database file's entry
            _paging_path(path).unlink(missing_ok=True)  # left by a crash
        except BaseException as error:
            if con is not None:
                con.close()
            self._close_writer()
            if isinstance(error, sqlite3.Error | OSError):
                raise StoreError(f"cannot open {path}: {error}") from error
            raise
        self._wcon = con

    def _check_schema(self, con: sqlite3.Connection) -> bool:
        """True for an empty database; raises StoreError for one we cannot use."""
        tables = {
            row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if not tables:
            return True
        if "petrel_schema" not in tables:
            raise StoreError(f"{self._path} is an SQLite database but not a Petrel store")
        row = con.execute(self.sql.select_version).fetchone()
        version = row[0] if row else None
        if not isinstance(version, int):
            raise StoreError(f"{self._path} has no schema version")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self._path} was written by a newer Petrel (schema version {version}; "
                f"this one reads up to {SCHEMA_VERSION})"
            )
        if version < SCHEMA_VERSION or not tables >= self.sql.tables:
            raise StoreError(f"{self._path} has an unknown schema (version {version})")
        return False

    def _close_writer(self) -> None:
        try:
            if self._wcon is not None:
                self._wcon.close()
                self._wcon = None
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _write(self, batch: MessageBatch) -> None:
        con = self._wcon
        if con is None:
            raise StoreError("the store is closed")
        con.execute("BEGIN IMMEDIATE")
        try:
            write_batch(con, self.sql, batch)
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                with suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
            raise


def _connect(path: Path, trace: Callable[[str], None] | None) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions, the store says BEGIN and COMMIT.
    con = sqlite3.connect(path, isolation_level=None)
    if trace is not None:
        con.set_trace_callback(trace)
    con.execute("PRAGMA busy_timeout = 10000")
    return con
