"""The embedded durable store: one SQLite file, written with group commit.

Durability
    The database runs in WAL mode with ``synchronous = FULL``: every commit
    ``fsync``\\ s the write-ahead log before the commit future resolves, so a
    committed message survives ``kill -9`` *and* a power cut (given a disk that
    honours ``fsync``; on macOS ``fullfsync`` is on too). ``synchronous = NORMAL``
    would survive ``kill -9`` but may lose the last commits on power loss, which
    is not what the broker promises.

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
    Kept to what PostgreSQL also speaks (``INSERT ... ON CONFLICT``, keyset
    pagination, composite primary keys, no ``INSERT OR REPLACE``), with the
    table and column types a PostgreSQL store will map: ``INTEGER`` -> ``BIGINT``,
    ``BLOB`` -> ``BYTEA``, ``settings`` as JSON text -> ``JSONB``,
    ``length()`` -> ``octet_length()``, ``?`` -> ``%s``, ``BEGIN IMMEDIATE`` -> ``BEGIN``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from ._paging import IN_CHUNK, Pager
from ._writer import Batch, GroupCommitter
from .base import (
    DEFAULT_MAX_BACKLOG_BYTES,
    DEFAULT_MAX_BACKLOG_OPS,
    Backlog,
    MessageStore,
    QueueRecord,
    StoredMessage,
    StoreError,
)

__all__ = ["DEFAULT_FILE", "SCHEMA_VERSION", "SqliteStore"]

#: The database file created in a data directory.
DEFAULT_FILE = "petrel.db"
#: The schema this version writes. A database with a higher version is refused.
SCHEMA_VERSION = 1

T = TypeVar("T")
Key = tuple[str, int]
#: A message row: queue, seq, priority, expiry, delivery_count, data.
Row = tuple[str, int, int, int | None, int, bytes]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_MIN_SEQ = -(2**63)

# -- SQL (SQLite dialect; see the module docstring for PostgreSQL) ----------------------

_CREATE = (
    "CREATE TABLE petrel_schema (version INTEGER NOT NULL)",
    f"INSERT INTO petrel_schema (version) VALUES ({SCHEMA_VERSION})",
    "CREATE TABLE petrel_queues ("
    " name TEXT PRIMARY KEY,"
    " address TEXT NOT NULL,"
    " routing TEXT NOT NULL,"
    " durable_subscription INTEGER NOT NULL,"
    " settings TEXT NOT NULL)",
    # The primary key is the index recovery and deletes go through.
    "CREATE TABLE petrel_messages ("
    " queue TEXT NOT NULL,"
    " seq INTEGER NOT NULL,"
    " priority INTEGER NOT NULL,"
    " expiry INTEGER,"
    " delivery_count INTEGER NOT NULL,"
    " data BLOB NOT NULL,"
    " PRIMARY KEY (queue, seq))",
)
_TABLES = {"petrel_schema", "petrel_queues", "petrel_messages"}
_UPSERT_QUEUE = (
    "INSERT INTO petrel_queues (name, address, routing, durable_subscription, settings)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET address = excluded.address,"
    " routing = excluded.routing, durable_subscription = excluded.durable_subscription,"
    " settings = excluded.settings"
)
_DELETE_QUEUE = "DELETE FROM petrel_queues WHERE name = ?"
_DELETE_QUEUE_MESSAGES = "DELETE FROM petrel_messages WHERE queue = ?"
_INSERT = (
    "INSERT INTO petrel_messages (queue, seq, priority, expiry, delivery_count, data)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_DELETE = "DELETE FROM petrel_messages WHERE queue = ? AND seq = ?"
_SET_COUNT = "UPDATE petrel_messages SET delivery_count = ? WHERE queue = ? AND seq = ?"
_SELECT_QUEUES = (
    "SELECT name, address, routing, durable_subscription, settings FROM petrel_queues ORDER BY name"
)
_SELECT_PAGE = (
    "SELECT seq, priority, expiry, delivery_count, data FROM petrel_messages"
    " WHERE queue = ? AND seq > ? ORDER BY seq LIMIT ?"
)
_SELECT_PAGE_NO_DATA = (
    "SELECT seq, priority, expiry, delivery_count, length(data) FROM petrel_messages"
    " WHERE queue = ? AND seq > ? ORDER BY seq LIMIT ?"
)
_SELECT_MAX_SEQ = "SELECT max(seq) FROM petrel_messages WHERE queue = ?"
_SELECT_DATA = "SELECT seq, data FROM petrel_messages WHERE queue = ? AND seq IN ({})"

_PRAGMAS = (
    "synchronous = FULL",  # fsync the WAL at every commit: power-cut safe
    "fullfsync = ON",  # macOS: F_FULLFSYNC, else fsync does not reach the platter
    "checkpoint_fullfsync = ON",
    "journal_size_limit = 67108864",  # give the WAL back after a burst
    "cache_size = -16384",  # 16 MiB
)


class _MessageBatch(Batch):
    """One transaction's worth of operations, applied in this order: queue
    deletions, queue saves, message deletions, inserts, delivery counts."""

    __slots__ = ("adds", "counts", "deleted_queues", "queues", "removes")

    def __init__(self) -> None:
        super().__init__()
        self.deleted_queues: list[str] = []
        self.queues: dict[str, tuple[str, str, str, int, str]] = {}
        self.removes: list[Key] = []
        self.adds: dict[Key, Row] = {}
        self.counts: dict[Key, int] = {}

    def ops(self) -> int:
        return (
            len(self.deleted_queues)
            + len(self.queues)
            + len(self.removes)
            + len(self.adds)
            + len(self.counts)
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


class SqliteStore(MessageStore):
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

    durable: ClassVar[bool] = True

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
        super().__init__(max_backlog_ops=max_backlog_ops, max_backlog_bytes=max_backlog_bytes)
        self._given_path = Path(path)
        self._path: Path | None = None
        self._group = group_commit
        self._verify = verify
        self._trace = trace
        self._state: Literal["new", "open", "closing", "closed"] = "new"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._wcon: sqlite3.Connection | None = None
        self._rcon: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._committer: GroupCommitter[_MessageBatch] | None = None
        self._pager: Pager | None = None

    @property
    def path(self) -> Path:
        """The database file (known once open)."""
        return self._path if self._path is not None else self._given_path

    @property
    def transactions(self) -> int:
        """How many transactions have been committed since open."""
        return self._committer.transactions if self._committer is not None else 0

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        """See :meth:`MessageStore.open`. Creates the directory and the database if missing."""
        if self._state != "new":
            raise StoreError("a SqliteStore can be opened once")
        loop = self._loop = asyncio.get_running_loop()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="petrel-store-writer")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="petrel-store-reader")
        try:
            await loop.run_in_executor(self._writer, self._open_writer)
            await loop.run_in_executor(self._reader, self._open_reader)
        except BaseException:
            await self._release()
            self._state = "closed"
            raise
        self._committer = GroupCommitter(
            loop, self._writer, _MessageBatch, self._write, group=self._group, what="message store"
        )
        self._state = "open"

    async def close(self) -> None:
        """See :meth:`MessageStore.close`."""
        if self._state != "open":
            return
        self._state = "closing"
        assert self._committer is not None
        try:
            await self._committer.drain()
        finally:
            self._committer.close()
            await self._release()
            self._state = "closed"

    async def _release(self) -> None:
        loop = self._loop
        assert loop is not None and self._writer is not None and self._reader is not None
        try:
            if self._pager is not None:
                await self._pager.close()
        finally:
            self._pager = None
            try:
                await loop.run_in_executor(self._reader, self._close_reader)
            finally:
                # The writer closes last: its close checkpoints the WAL into the database.
                await loop.run_in_executor(self._writer, self._close_writer)
                self._reader.shutdown(wait=False)
                self._writer.shutdown(wait=False)

    def _check_open(self) -> GroupCommitter[_MessageBatch]:
        if self._state != "open" or self._committer is None:
            raise StoreError(f"the store is {'not open' if self._state == 'new' else 'closed'}")
        return self._committer

    # -- recovery ----------------------------------------------------------------------

    async def load_queues(self) -> list[QueueRecord]:
        """See :meth:`MessageStore.load_queues`."""
        self._check_open()
        rows = await self._read(lambda con: con.execute(_SELECT_QUEUES).fetchall())
        records = []
        for name, address, routing, durable_subscription, settings in rows:
            if routing not in ("anycast", "multicast"):
                raise StoreError(f"queue {name!r} has an unknown routing {routing!r}")
            records.append(
                QueueRecord(
                    name, address, routing, bool(durable_subscription), json.loads(settings)
                )
            )
        return records

    async def iter_messages(
        self, queue: str, *, with_data: bool = True, batch: int = 1000
    ) -> AsyncIterator[StoredMessage]:
        """See :meth:`MessageStore.iter_messages`. The next ``batch`` is read while
        the caller handles this one."""
        self._check_open()
        if batch < 1:
            raise ValueError("batch must be at least 1")

        def fetch(after: int) -> asyncio.Future[list[StoredMessage]]:
            return self._read_soon(lambda con: _read_page(con, queue, after, batch, with_data))

        pending: asyncio.Future[list[StoredMessage]] | None = fetch(_MIN_SEQ)
        try:
            while pending is not None:
                page = await pending
                pending = fetch(page[-1].seq) if len(page) == batch else None
                for message in page:
                    yield message
        finally:
            if pending is not None:
                pending.cancel()
                # Read it anyway, so that an exception is not reported as never retrieved.
                pending.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def max_seq(self, queue: str) -> int | None:
        """See :meth:`MessageStore.max_seq`."""
        self._check_open()
        row = await self._read(lambda con: con.execute(_SELECT_MAX_SEQ, (queue,)).fetchone())
        return None if row is None else row[0]

    # -- writes ------------------------------------------------------------------------

    def save_queue(self, record: QueueRecord) -> None:
        """See :meth:`MessageStore.save_queue`."""
        committer = self._check_open()
        if record.routing not in ("anycast", "multicast"):
            raise ValueError(f"routing must be 'anycast' or 'multicast', not {record.routing!r}")
        try:
            settings = json.dumps(record.settings, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError) as error:
            raise ValueError(f"the settings of queue {record.name!r}: {error}") from error
        row = (record.name, record.address, record.routing, int(record.durable_subscription))
        committer.pending.queues[record.name] = (*row, settings)
        committer.changed()

    def delete_queue(self, name: str) -> None:
        """See :meth:`MessageStore.delete_queue`."""
        committer = self._check_open()
        batch = committer.pending
        batch.queues.pop(name, None)
        for key in [key for key in batch.adds if key[0] == name]:
            batch.nbytes -= len(batch.adds.pop(key)[5])
        batch.removes = [key for key in batch.removes if key[0] != name]
        batch.counts = {key: count for key, count in batch.counts.items() if key[0] != name}
        batch.deleted_queues.append(name)
        if self._pager is not None:
            self._pager.discard_queue(name)
        committer.changed()

    def add(self, message: StoredMessage) -> None:
        """See :meth:`MessageStore.add`. Raises ``ValueError`` if ``data`` is None or
        the message is already in the pending batch."""
        committer = self._check_open()
        self._add(committer.pending, message)
        committer.changed()

    def remove(self, queue: str, seq: int) -> None:
        """See :meth:`MessageStore.remove`."""
        committer = self._check_open()
        if self._remove(committer.pending, queue, seq):
            committer.changed()

    def set_delivery_count(self, queue: str, seq: int, count: int) -> None:
        """See :meth:`MessageStore.set_delivery_count`. Not recorded for paged-out
        (non-durable) messages."""
        committer = self._check_open()
        key = (queue, seq)
        if self._pager is not None and key in self._pager:
            return
        batch = committer.pending
        row = batch.adds.get(key)
        if row is not None:
            batch.adds[key] = (*row[:4], count, row[5])
            return
        batch.counts[key] = count
        committer.changed()

    def move(self, queue: str, seq: int, to: StoredMessage) -> None:
        """See :meth:`MessageStore.move`."""
        committer = self._check_open()
        self._remove(committer.pending, queue, seq)
        self._add(committer.pending, to)
        committer.changed()

    def commit(self) -> asyncio.Future[None]:
        """See :meth:`MessageStore.commit`."""
        return self._check_open().commit()

    def _add(self, batch: _MessageBatch, message: StoredMessage) -> None:
        data = message.data
        if data is None:
            raise ValueError("a message is added with its data")
        key = (message.queue, message.seq)
        if key in batch.adds:
            raise ValueError(f"message {key} is added twice")
        batch.adds[key] = (
            message.queue,
            message.seq,
            message.priority,
            message.expiry,
            message.delivery_count,
            data,
        )
        batch.nbytes += len(data)

    def _remove(self, batch: _MessageBatch, queue: str, seq: int) -> bool:
        """Record a removal; False if nothing needs writing."""
        if self._pager is not None and self._pager.discard(queue, seq):
            return False
        key = (queue, seq)
        batch.counts.pop(key, None)
        row = batch.adds.pop(key, None)
        if row is not None:
            batch.nbytes -= len(row[5])
            return False
        batch.removes.append(key)
        return True

    # -- paging ------------------------------------------------------------------------

    def page_out(self, message: StoredMessage) -> None:
        """See :meth:`MessageStore.page_out`. Bodies go to ``<db stem>-paging<suffix>``
        (``petrel-paging.db``) next to the database, without ``fsync``."""
        self._check_open()
        if message.data is None:
            raise ValueError("a message is paged out with its data")
        if self._pager is None:
            assert self._loop is not None
            self._pager = Pager(self._loop, path=_paging_path(self.path), trace=self._trace)
        self._pager.put(message.queue, message.seq, message.data)

    async def load_data(self, queue: str, seqs: Sequence[int]) -> dict[int, bytes]:
        """See :meth:`MessageStore.load_data`."""
        committer = self._check_open()
        found: dict[int, bytes] = {}
        paged: list[int] = []
        on_disk: list[int] = []
        batches = [committer.pending, *reversed(committer.inflight)]
        for seq in seqs:
            key = (queue, seq)
            if self._pager is not None and key in self._pager:
                paged.append(seq)
                continue
            for batch in batches:
                row = batch.adds.get(key)
                if row is not None:
                    found[seq] = row[5]
                    break
            else:
                on_disk.append(seq)
        # Both lists were made before the first await: nothing in them can move meanwhile
        # from a batch in memory to a place the reads below would miss.
        if paged and self._pager is not None:
            found.update(await self._pager.get(queue, paged))
        if on_disk:
            found.update(await self._read(lambda con: _read_data(con, queue, on_disk)))
        return found

    # -- flow control ------------------------------------------------------------------

    @property
    def backlog(self) -> Backlog:
        """See :attr:`MessageStore.backlog`; includes bodies waiting to be paged out."""
        ops = nbytes = 0
        if self._committer is not None:
            ops, nbytes = self._committer.backlog_ops, self._committer.backlog_bytes
        if self._pager is not None:
            ops += self._pager.backlog_ops
            nbytes += self._pager.backlog_bytes
        return Backlog(ops, nbytes)

    # -- reader thread -----------------------------------------------------------------

    def _read_soon(self, work: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        self._check_open()
        assert self._loop is not None and self._reader is not None

        def run() -> T:
            if self._rcon is None:
                raise StoreError("the store is closed")
            try:
                return work(self._rcon)
            except sqlite3.Error as error:
                raise StoreError(f"reading {self.path} failed: {error}") from error

        return self._loop.run_in_executor(self._reader, run)

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._read_soon(work)

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
                for statement in _CREATE:
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
        row = con.execute("SELECT max(version) FROM petrel_schema").fetchone()
        version = row[0] if row else None
        if not isinstance(version, int):
            raise StoreError(f"{self._path} has no schema version")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self._path} was written by a newer Petrel (schema version {version}; "
                f"this one reads up to {SCHEMA_VERSION})"
            )
        if version < SCHEMA_VERSION or not tables >= _TABLES:
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

    def _write(self, batch: _MessageBatch) -> None:
        con = self._wcon
        if con is None:
            raise StoreError("the store is closed")
        con.execute("BEGIN IMMEDIATE")
        try:
            for name in batch.deleted_queues:
                con.execute(_DELETE_QUEUE_MESSAGES, (name,))
                con.execute(_DELETE_QUEUE, (name,))
            if batch.queues:
                con.executemany(_UPSERT_QUEUE, batch.queues.values())
            if batch.removes:
                con.executemany(_DELETE, batch.removes)
            if batch.adds:
                con.executemany(_INSERT, batch.adds.values())
            if batch.counts:
                con.executemany(_SET_COUNT, [(count, *key) for key, count in batch.counts.items()])
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


def _read_page(
    con: sqlite3.Connection, queue: str, after: int, limit: int, with_data: bool
) -> list[StoredMessage]:
    if with_data:
        rows: list[tuple[Any, ...]] = con.execute(_SELECT_PAGE, (queue, after, limit)).fetchall()
        return [StoredMessage(queue, s, p, e, c, d, len(d)) for s, p, e, c, d in rows]
    rows = con.execute(_SELECT_PAGE_NO_DATA, (queue, after, limit)).fetchall()
    return [StoredMessage(queue, s, p, e, c, None, n) for s, p, e, c, n in rows]


def _read_data(con: sqlite3.Connection, queue: str, seqs: Sequence[int]) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for i in range(0, len(seqs), IN_CHUNK):
        chunk = seqs[i : i + IN_CHUNK]
        sql = _SELECT_DATA.format(", ".join("?" * len(chunk)))
        found.update(con.execute(sql, (queue, *chunk)).fetchall())
    return found
