"""What the SQL stores share: schema and statements per dialect, the batch, the loop side.

:class:`SqlStore` is everything of :class:`~petrel.store.SqliteStore` and
:class:`~petrel.store.PostgresStore` that does not depend on the database: the
lifecycle (a writer thread with its connection, a reader thread with another),
the batch each loop turn fills (see ``_writer``), reads that see what is still in
memory, paging, the backlog. A subclass opens and closes its two connections, and
wraps :func:`write_batch` in its own transaction.

Statements are built once per :class:`Dialect` from one text, so both databases
run the same SQL: ``INSERT ... ON CONFLICT``, keyset pagination on the
``(queue, seq)`` primary key, and no dialect-only forms beyond the few the dialect
names (placeholder, column types, ``length``, how a list of keys is passed).

A batch's messages go in a few statements, not one per row: multi-row
``INSERT ... VALUES (...), (...)`` in the sizes of :data:`INSERT_ROWS`, and one
``DELETE`` per queue for a list of sequence numbers. Each statement is one call
into the database for the writer thread, which lets go of the GIL for it; row by
row (``executemany``) it took the GIL back after every row, and spent about half
as long again binding and stepping (measured on SQLite 3.40: 7.5 against 4.8 µs
of CPU per inserted row, 3.6 against 2.6 per deleted one).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from ._paging import IN_CHUNK, Pager
from ._writer import Batch, GroupCommitter
from .base import (
    DEFAULT_MAX_BACKLOG_BYTES,
    DEFAULT_MAX_BACKLOG_OPS,
    Backlog,
    CommitStats,
    MessageStore,
    QueueRecord,
    StoredMessage,
    StoreError,
)

T = TypeVar("T")
Key = tuple[str, int]
#: A message row: queue, seq, priority, expiry, delivery_count, data.
Row = tuple[str, int, int, int | None, int, bytes]
#: A queue row: name, address, routing, durable_subscription, settings (JSON text).
QueueRow = tuple[str, str, str, bool, str]

MIN_SEQ = -(2**63)

#: Rows per multi-row ``INSERT``, largest first. A batch of ``n`` rows is written as
#: whole statements of these sizes (400 rows: 128, 128, 128, 8, 8), so only these
#: five texts are ever prepared (SQLite and psycopg cache prepared statements by
#: text). 128 rows of 6 columns are 768 parameters: under the 999 that SQLite
#: allowed before 3.32.
INSERT_ROWS = (128, 32, 8, 2, 1)
#: Lengths of a ``seq IN (...)`` list (SQLite); a shorter list is padded to the next
#: one by repeating its last value (a repeat deletes nothing more), again so that a
#: few texts serve every batch. The last is :data:`IN_CHUNK`.
IN_SIZES = (4, 16, 64, 256, IN_CHUNK)


# -- SQL ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the SQL of two databases."""

    param: str
    """The parameter placeholder (``?``, ``%s``)."""
    bigint: str
    """Column type of sequence numbers and expiry times (64 bits)."""
    boolean: str
    """Column type of flags."""
    blob: str
    """Column type of message bodies."""
    json: str
    """Column type of queue settings."""
    json_in: str
    """How a JSON text parameter is written (``?``, ``%s::jsonb``)."""
    json_out: str
    """How the settings column is read back as JSON text."""
    length: str
    """The function giving the length of a blob in bytes."""
    any_array: bool
    """True: a list of keys is one array parameter (``seq = ANY(%s)``); False: chunked
    ``IN (?, ...)`` lists."""


SQLITE = Dialect(
    param="?",
    bigint="INTEGER",
    boolean="INTEGER",
    blob="BLOB",
    json="TEXT",
    json_in="?",
    json_out="settings",
    length="length",
    any_array=False,
)
POSTGRESQL = Dialect(
    param="%s",
    bigint="BIGINT",
    boolean="BOOLEAN",
    blob="BYTEA",
    json="JSONB",
    json_in="%s::jsonb",
    json_out="settings::text",
    length="octet_length",
    any_array=True,
)


class Statements:
    """Petrel's tables and every statement on them, in one dialect."""

    def __init__(self, dialect: Dialect, schema_version: int) -> None:
        p = dialect.param
        self.dialect = dialect
        self.create_tables = (
            "CREATE TABLE petrel_schema (version INTEGER NOT NULL)",
            f"INSERT INTO petrel_schema (version) VALUES ({schema_version})",
            "CREATE TABLE petrel_queues ("
            " name TEXT PRIMARY KEY,"
            " address TEXT NOT NULL,"
            " routing TEXT NOT NULL,"
            f" durable_subscription {dialect.boolean} NOT NULL,"
            f" settings {dialect.json} NOT NULL)",
            # The primary key is the index recovery and deletes go through.
            "CREATE TABLE petrel_messages ("
            " queue TEXT NOT NULL,"
            f" seq {dialect.bigint} NOT NULL,"
            " priority INTEGER NOT NULL,"
            f" expiry {dialect.bigint},"
            " delivery_count INTEGER NOT NULL,"
            f" data {dialect.blob} NOT NULL,"
            " PRIMARY KEY (queue, seq))",
        )
        self.tables = frozenset({"petrel_schema", "petrel_queues", "petrel_messages"})
        self.select_version = "SELECT max(version) FROM petrel_schema"
        self.upsert_queue = (
            "INSERT INTO petrel_queues (name, address, routing, durable_subscription, settings)"
            f" VALUES ({p}, {p}, {p}, {p}, {dialect.json_in}) ON CONFLICT (name) DO UPDATE SET"
            " address = excluded.address, routing = excluded.routing,"
            " durable_subscription = excluded.durable_subscription, settings = excluded.settings"
        )
        self.delete_queue = f"DELETE FROM petrel_queues WHERE name = {p}"
        self.delete_queue_messages = f"DELETE FROM petrel_messages WHERE queue = {p}"
        row = f"({', '.join([p] * 6)})"
        #: ``INSERT`` of ``n`` message rows, for each ``n`` of :data:`INSERT_ROWS`.
        self.insert_rows = {
            n: "INSERT INTO petrel_messages (queue, seq, priority, expiry, delivery_count, data)"
            f" VALUES {', '.join([row] * n)}"
            for n in INSERT_ROWS
        }
        delete_in = f"DELETE FROM petrel_messages WHERE queue = {p} AND seq "
        if dialect.any_array:
            self._delete_seqs = {0: f"{delete_in}= ANY({p}::bigint[])"}
        else:
            self._delete_seqs = {n: f"{delete_in}IN ({', '.join([p] * n)})" for n in IN_SIZES}
        self.set_count = (
            f"UPDATE petrel_messages SET delivery_count = {p} WHERE queue = {p} AND seq = {p}"
        )
        self.select_queues = (
            f"SELECT name, address, routing, durable_subscription, {dialect.json_out}"
            " FROM petrel_queues ORDER BY name"
        )
        page = f" FROM petrel_messages WHERE queue = {p} AND seq > {p} ORDER BY seq LIMIT {p}"
        self.select_page = "SELECT seq, priority, expiry, delivery_count, data" + page
        self.select_page_no_data = (
            f"SELECT seq, priority, expiry, delivery_count, {dialect.length}(data)" + page
        )
        self.select_max_seq = f"SELECT max(seq) FROM petrel_messages WHERE queue = {p}"
        self._select_data = f"SELECT seq, data FROM petrel_messages WHERE queue = {p} AND seq "

    def delete_seqs(self, queue: str, seqs: Sequence[int]) -> list[tuple[str, Sequence[Any]]]:
        """The statements (with their parameters) that delete the messages ``seqs`` of
        ``queue``: one (PostgreSQL), or one per :data:`IN_CHUNK` (SQLite)."""
        if self.dialect.any_array:
            return [(self._delete_seqs[0], (queue, list(seqs)))]
        statements: list[tuple[str, Sequence[Any]]] = []
        for start in range(0, len(seqs), IN_CHUNK):
            chunk = list(seqs[start : start + IN_CHUNK])
            size = next(n for n in IN_SIZES if n >= len(chunk))
            chunk += [chunk[-1]] * (size - len(chunk))
            statements.append((self._delete_seqs[size], (queue, *chunk)))
        return statements

    def select_data(self, queue: str, seqs: Sequence[int]) -> list[tuple[str, tuple[Any, ...]]]:
        """The statements (with their parameters) that read the bodies ``seqs`` of ``queue``."""
        p = self.dialect.param
        if self.dialect.any_array:
            return [(f"{self._select_data}= ANY({p}::bigint[])", (queue, list(seqs)))]
        return [
            (f"{self._select_data}IN ({', '.join([p] * len(chunk))})", (queue, *chunk))
            for chunk in (seqs[i : i + IN_CHUNK] for i in range(0, len(seqs), IN_CHUNK))
        ]


class Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What the shared code needs of a connection (``sqlite3.Connection`` has it as is)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...
    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> object: ...


def write_batch(con: Connection, sql: Statements, batch: MessageBatch) -> None:
    """Run a batch's statements, in the order :class:`MessageBatch` says, in the
    caller's transaction."""
    for name in batch.deleted_queues:
        con.execute(sql.delete_queue_messages, (name,))
        con.execute(sql.delete_queue, (name,))
    if batch.queues:
        con.executemany(sql.upsert_queue, batch.queues.values())
    if batch.removes:
        by_queue: dict[str, list[int]] = {}
        for queue, seq in batch.removes:
            seqs = by_queue.get(queue)
            if seqs is None:
                by_queue[queue] = [seq]
            else:
                seqs.append(seq)
        for queue, seqs in by_queue.items():
            for statement, params in sql.delete_seqs(queue, seqs):
                con.execute(statement, params)
    if batch.adds:
        insert_rows(con, sql, list(batch.adds.values()))
    if batch.counts:
        con.executemany(sql.set_count, [(count, *key) for key, count in batch.counts.items()])


def insert_rows(con: Connection, sql: Statements, rows: Sequence[Row]) -> None:
    """Insert ``rows`` in as few statements as :data:`INSERT_ROWS` allows."""
    start = 0
    left = len(rows)
    for size in INSERT_ROWS:
        statement = sql.insert_rows[size]
        while left >= size:
            params: list[Any] = []
            for row in rows[start : start + size]:
                params += row
            con.execute(statement, params)
            start += size
            left -= size


def read_queues(con: Connection, sql: Statements) -> list[QueueRecord]:
    records = []
    for name, address, routing, durable_subscription, settings in con.execute(
        sql.select_queues
    ).fetchall():
        if routing not in ("anycast", "multicast"):
            raise StoreError(f"queue {name!r} has an unknown routing {routing!r}")
        records.append(
            QueueRecord(name, address, routing, bool(durable_subscription), json.loads(settings))
        )
    return records


def read_page(
    con: Connection, sql: Statements, queue: str, after: int, limit: int, with_data: bool
) -> list[StoredMessage]:
    if with_data:
        rows = con.execute(sql.select_page, (queue, after, limit)).fetchall()
        return [StoredMessage(queue, s, p, e, c, d, len(d)) for s, p, e, c, d in rows]
    rows = con.execute(sql.select_page_no_data, (queue, after, limit)).fetchall()
    return [StoredMessage(queue, s, p, e, c, None, n) for s, p, e, c, n in rows]


def read_max_seq(con: Connection, sql: Statements, queue: str) -> int | None:
    row = con.execute(sql.select_max_seq, (queue,)).fetchone()
    return None if row is None else row[0]


def read_data(
    con: Connection, sql: Statements, queue: str, seqs: Sequence[int]
) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for statement, params in sql.select_data(queue, seqs):
        found.update(con.execute(statement, params).fetchall())
    return found


# -- the batch ------------------------------------------------------------------------


class MessageBatch(Batch):
    """One transaction's worth of operations, applied in this order: queue
    deletions, queue saves, message deletions, inserts, delivery counts."""

    __slots__ = ("adds", "counts", "deleted_queues", "queues", "removes")

    def __init__(self) -> None:
        super().__init__()
        self.deleted_queues: list[str] = []
        self.queues: dict[str, QueueRow] = {}
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


# -- the store ------------------------------------------------------------------------


class SqlStore(MessageStore):
    """A durable store on an SQL database; see the module docstring.

    Subclasses set :attr:`sql` and implement the thread-side hooks: opening and
    closing the writer's and the reader's connection (each on its own thread),
    :meth:`_write` (one transaction around :func:`write_batch`), :meth:`_reader_con`
    and :meth:`_read_error`, and :meth:`_new_pager`.
    """

    durable: ClassVar[bool] = True
    sql: ClassVar[Statements]

    def __init__(
        self,
        *,
        group_commit: bool = True,
        trace: Callable[[str], None] | None = None,
        max_backlog_ops: int = DEFAULT_MAX_BACKLOG_OPS,
        max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES,
    ) -> None:
        super().__init__(max_backlog_ops=max_backlog_ops, max_backlog_bytes=max_backlog_bytes)
        self._group = group_commit
        self._trace = trace
        self._state: Literal["new", "open", "closing", "closed"] = "new"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._committer: GroupCommitter[MessageBatch] | None = None
        self._pager: Pager | None = None

    @property
    def commit_stats(self) -> CommitStats | None:
        return self._committer.stats if self._committer is not None else None

    @property
    def transactions(self) -> int:
        """How many transactions have been committed since open."""
        return self._committer.transactions if self._committer is not None else 0

    # -- hooks -------------------------------------------------------------------------

    @abc.abstractmethod
    def _open_writer(self) -> None:
        """On the writer thread: connect, check or create the schema. Releases what
        it took if it raises."""

    @abc.abstractmethod
    def _open_reader(self) -> None:
        """On the reader thread: connect for reading."""

    @abc.abstractmethod
    def _close_reader(self) -> None:
        """On the reader thread; idempotent."""

    @abc.abstractmethod
    def _close_writer(self) -> None:
        """On the writer thread, last of all; idempotent."""

    @abc.abstractmethod
    def _write(self, batch: MessageBatch) -> None:
        """On the writer thread: write ``batch`` in one transaction."""

    @abc.abstractmethod
    def _reader_con(self) -> Connection:
        """On the reader thread: its connection; raises StoreError once closed."""

    @abc.abstractmethod
    def _read_error(self, error: Exception) -> StoreError | None:
        """The StoreError a database error raised while reading becomes (None: not one)."""

    def _reader_broken(self, error: Exception) -> bool:
        """True if ``error`` broke the reader's connection and the next
        :meth:`_reader_con` makes a new one (the read is then tried once more)."""
        return False

    @abc.abstractmethod
    def _new_pager(self) -> Pager:
        """Where bodies go on the first :meth:`page_out`."""

    async def _opened(self) -> None:
        """On the loop, once both connections are open (before writes are accepted)."""

    async def _closing(self) -> None:
        """On the loop, after the last write, before the connections close."""

    def _check_writable(self) -> GroupCommitter[MessageBatch]:
        """The committer, if the store accepts writes now; else raises StoreError."""
        return self._check_open()

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        """See :meth:`MessageStore.open`."""
        if self._state != "new":
            raise StoreError(f"a {type(self).__name__} can be opened once")
        loop = self._loop = asyncio.get_running_loop()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="petrel-store-writer")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="petrel-store-reader")
        try:
            await loop.run_in_executor(self._writer, self._open_writer)
            await loop.run_in_executor(self._reader, self._open_reader)
            await self._opened()
        except BaseException:
            await self._release()
            self._state = "closed"
            raise
        self._committer = GroupCommitter(
            loop, self._writer, MessageBatch, self._write, group=self._group, what="message store"
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
            await self._closing()
            if self._pager is not None:
                await self._pager.close()
        finally:
            self._pager = None
            try:
                await loop.run_in_executor(self._reader, self._close_reader)
            finally:
                # The writer closes last (SQLite: its close checkpoints the WAL).
                await loop.run_in_executor(self._writer, self._close_writer)
                self._reader.shutdown(wait=False)
                self._writer.shutdown(wait=False)

    async def acquire_live_lock(self, *, poll_interval: float = 1.0) -> None:
        """See :meth:`MessageStore.acquire_live_lock`: at once, unless a subclass
        shares its database. Raises StoreError if the store is not open."""
        self._check_open()

    def _check_open(self) -> GroupCommitter[MessageBatch]:
        if self._state != "open" or self._committer is None:
            raise StoreError(f"the store is {'not open' if self._state == 'new' else 'closed'}")
        return self._committer

    # -- recovery ----------------------------------------------------------------------

    async def load_queues(self) -> list[QueueRecord]:
        """See :meth:`MessageStore.load_queues`."""
        self._check_open()
        return await self._read(read_queues, self.sql)

    async def iter_messages(
        self, queue: str, *, with_data: bool = True, batch: int = 1000
    ) -> AsyncIterator[StoredMessage]:
        """See :meth:`MessageStore.iter_messages`. The next ``batch`` is read while
        the caller handles this one."""
        self._check_open()
        if batch < 1:
            raise ValueError("batch must be at least 1")

        def fetch(after: int) -> asyncio.Future[list[StoredMessage]]:
            return self._read_soon(read_page, self.sql, queue, after, batch, with_data)

        pending: asyncio.Future[list[StoredMessage]] | None = fetch(MIN_SEQ)
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
        return await self._read(read_max_seq, self.sql, queue)

    # -- writes ------------------------------------------------------------------------

    def save_queue(self, record: QueueRecord) -> None:
        """See :meth:`MessageStore.save_queue`."""
        committer = self._check_writable()
        if record.routing not in ("anycast", "multicast"):
            raise ValueError(f"routing must be 'anycast' or 'multicast', not {record.routing!r}")
        try:
            settings = json.dumps(record.settings, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError) as error:
            raise ValueError(f"the settings of queue {record.name!r}: {error}") from error
        row = (record.name, record.address, record.routing, record.durable_subscription)
        committer.pending.queues[record.name] = (*row, settings)
        committer.changed()

    def delete_queue(self, name: str) -> None:
        """See :meth:`MessageStore.delete_queue`."""
        committer = self._check_writable()
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
        committer = self._check_writable()
        self._add(committer.pending, message)
        committer.changed()

    def remove(self, queue: str, seq: int) -> None:
        """See :meth:`MessageStore.remove`."""
        committer = self._check_writable()
        if self._remove(committer.pending, queue, seq):
            committer.changed()

    def set_delivery_count(self, queue: str, seq: int, count: int) -> None:
        """See :meth:`MessageStore.set_delivery_count`. Not recorded for paged-out
        (non-durable) messages."""
        committer = self._check_writable()
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
        committer = self._check_writable()
        self._remove(committer.pending, queue, seq)
        self._add(committer.pending, to)
        committer.changed()

    def commit(self) -> asyncio.Future[None]:
        """See :meth:`MessageStore.commit`."""
        return self._check_open().commit()

    def when_committed(self, callback: Callable[[StoreError | None], object]) -> None:
        """See :meth:`MessageStore.when_committed`: the callback joins the batch's list."""
        self._check_open().when_committed(callback)

    def when_committed_each(
        self, callback: Callable[[list[Any], StoreError | None], object], item: Any
    ) -> None:
        """See :meth:`MessageStore.when_committed_each`: one call per batch and callback."""
        self._check_open().when_committed_each(callback, item)

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """See :meth:`MessageStore.atomic`: the pending batch is not sealed in the block,
        so what it writes shares one SQL transaction (also without group commit)."""
        committer = self._check_writable()
        committer.hold()
        try:
            yield
        finally:
            committer.release()

    def _add(self, batch: MessageBatch, message: StoredMessage) -> None:
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

    def _remove(self, batch: MessageBatch, queue: str, seq: int) -> bool:
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
        """See :meth:`MessageStore.page_out`."""
        self._check_open()
        if message.data is None:
            raise ValueError("a message is paged out with its data")
        if self._pager is None:
            self._pager = self._new_pager()
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
            found.update(await self._read(read_data, self.sql, queue, on_disk))
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

    def _read_soon(self, work: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``work(connection, *args)`` on the reader thread."""
        self._check_open()
        assert self._loop is not None and self._reader is not None

        def run() -> T:
            try:
                try:
                    return work(self._reader_con(), *args)
                except StoreError:
                    raise
                except Exception as error:
                    if not self._reader_broken(error):
                        raise
                # Reads change nothing: once more, on a new connection.
                return work(self._reader_con(), *args)
            except StoreError:
                raise
            except Exception as error:
                converted = self._read_error(error)
                if converted is None:
                    raise
                raise converted from error

        return self._loop.run_in_executor(self._reader, run)

    async def _read(self, work: Callable[..., T], *args: Any) -> T:
        return await self._read_soon(work, *args)
