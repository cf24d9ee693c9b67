"""The shared durable store: PostgreSQL through psycopg 3, for a live/backup pair.

Same tables, statements and semantics as :class:`~petrel.store.SqliteStore` (see
``_sql``), in the database and schema the URL names (tables ``petrel_*`` in the
first schema of the ``search_path``), plus ``petrel_live``, the fencing record
below. Needs the ``postgresql`` extra (``pip install 'petrel[postgresql]'``).

Durability
    A commit future resolves once PostgreSQL has committed the batch's
    transaction, which with ``synchronous_commit`` on (forced on for the writer
    if the server has it off) means its WAL is flushed: the message survives
    ``kill -9`` of the broker and a crash of the server, given a server with
    ``fsync`` on (a warning is logged at open if it is off). With a synchronous
    standby configured, ``on`` also waits for the standby. A commit whose
    connection breaks before the reply is ambiguous: it fails, the broker does
    not settle, the producer sends again, and the message may be stored twice
    (at-least-once).

Threads
    As in the SQLite store: one writer thread and connection (group commit, one
    transaction per batch), one reader thread and connection (autocommit, short
    keyset pages; it reconnects if its connection broke). The live lock has a
    third thread and connection. The event loop never waits on the network.

Live and backup
    Brokers that share a database take turns through a *session-level advisory
    lock* (``pg_try_advisory_lock(classid, objid)`` with classid
    :data:`LIVE_LOCK_CLASS`, objid a hash of the schema name: see
    ``pg_locks``). ``open()`` takes no lock; :meth:`PostgresStore.acquire_live_lock`
    waits until this store holds it, and only then are writes accepted. The
    broker calls it after ``open()`` and before it recovers and listens, so the
    backup waits with its store open and recovers what the live broker left.

    The lock lives as long as the lock connection's session: the server drops
    it when that session ends. If the live broker process dies, the kernel
    closes its socket and the lock goes at once. If its host or the network
    dies, the server notices through TCP keepalives and ``tcp_user_timeout``
    (set on both ends from ``lapse_timeout``, 5 s by default). If the process
    hangs (stopped, frozen VM), the session's ``idle_session_timeout`` ends it,
    since a live store pings its lock connection every ``lapse_timeout / 5``
    from a thread of its own (so a busy event loop does not lose the lock); a
    write transaction it froze in is ended by ``idle_in_transaction_session_timeout``
    (twice ``lapse_timeout``), so it cannot hold up the takeover below.

    The live store watches that connection: when a ping fails, or the lock or the
    fencing record says another store took over, :attr:`lost_lock` is set and
    ``on_lost_lock`` is called; from then on every commit fails, and the broker
    must stop.

    Fencing. The lock alone cannot stop a live broker that lost it and has not
    noticed yet from writing through its *writer* connection, which is another
    session. So each store that takes the lock bumps ``petrel_live.epoch``, and
    every write transaction first reads that row ``FOR SHARE`` and fails if the
    epoch is no longer its own. The bump waits for the old live's transaction in
    flight (it holds the row) and every later one of its transactions sees the
    new epoch: once :meth:`~PostgresStore.acquire_live_lock` has returned, no
    write of the previous live broker can commit, and everything it committed
    is visible to the new one's recovery.

    Limits, honestly: the lock is as good as PostgreSQL's view of the sessions,
    and failure detection takes time. Between losing the lock and noticing it
    (up to ``lapse_timeout`` for a lost network, one ping for a killed session)
    the old live broker may still *deliver* messages from memory, so consumers
    can see a message twice around a failover (at-least-once); it cannot
    *commit*. A store that lost the lock never takes it again: the broker
    restarts and becomes a backup. A server restart or failover of PostgreSQL
    itself ends every session: the live broker loses its lock and must restart
    (its backup takes over). With ``lapse_timeout`` too short for the network, a
    live broker may give up its lock needlessly; that is safe, but costs a
    failover. Servers before PostgreSQL 14 have no ``idle_session_timeout``:
    there a frozen live broker keeps the lock until it is killed. Nothing here
    depends on clocks.

Safety
    At open the store connects (a clear :class:`StoreError` for an unreachable
    server, failed authentication, a missing database), then reads which
    ``petrel_*`` tables exist: none, and it creates them (under a transaction
    advisory lock, so two brokers starting together do not both try); a schema
    version newer than this Petrel's, or a partial or unknown set of tables, and
    it refuses without changing anything.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

try:
    import psycopg
    from psycopg import pq
    from psycopg.conninfo import conninfo_to_dict
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the PostgreSQL store needs psycopg 3: pip install 'petrel[postgresql]'"
    ) from error

from ._paging import Pager
from ._sql import POSTGRESQL, Connection, Cursor, MessageBatch, SqlStore, Statements, write_batch
from ._writer import GroupCommitter
from .base import DEFAULT_MAX_BACKLOG_BYTES, DEFAULT_MAX_BACKLOG_OPS, StoreError

__all__ = ["LIVE_LOCK_CLASS", "SCHEMA_VERSION", "PostgresStore"]

log = logging.getLogger("petrel.store")

#: The schema this version writes. A database with a higher version is refused.
SCHEMA_VERSION = 1
#: ``pg_locks.classid`` of the live lock (``"PETL"``); ``objid`` is a hash of the schema.
LIVE_LOCK_CLASS = 0x5045544C
#: ``classid`` of the transaction lock held while the tables are checked or created.
SCHEMA_LOCK_CLASS = 0x50455453

_CREATE_LIVE = (
    "CREATE TABLE petrel_live ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " epoch BIGINT NOT NULL,"
    " holder TEXT,"
    " since TIMESTAMPTZ)",
    "INSERT INTO petrel_live (id, epoch) VALUES (1, 0)",
)
_SELECT_TABLES = (
    "SELECT c.relname FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND left(c.relname, 7) = 'petrel_'"
)
_FENCE = "SELECT epoch FROM petrel_live WHERE id = 1 FOR SHARE"
_TAKE_OVER = (
    "UPDATE petrel_live SET epoch = epoch + 1, holder = %s, since = now()"
    " WHERE id = 1 RETURNING epoch"
)
_SELECT_HOLDER = "SELECT holder, since FROM petrel_live WHERE id = 1"
_PING = (
    "SELECT (SELECT epoch FROM petrel_live WHERE id = 1), EXISTS (SELECT 1 FROM pg_locks"
    " WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
    " AND classid = %s AND objid = %s AND objsubid = 2)"
)

PgConnection = psycopg.Connection[tuple[Any, ...]]


def _int4(value: int) -> int:
    """An unsigned 32-bit value as the signed ``int4`` PostgreSQL takes."""
    return value - 2**32 if value >= 2**31 else value


def _oid(value: int) -> int:
    """The ``oid`` (unsigned) ``pg_locks`` shows for an ``int4`` lock key."""
    return value & 0xFFFFFFFF


class _Traced:
    """A psycopg connection as the shared code's :class:`Connection`: parameters
    as sequences, ``executemany`` on a cursor, and every statement told to ``trace``
    (once per row for ``executemany``, as SQLite's trace callback does)."""

    __slots__ = ("binary", "con", "trace")

    def __init__(
        self, con: PgConnection, trace: Callable[[str], None] | None, *, binary: bool = False
    ) -> None:
        self.con = con
        self.trace = trace
        self.binary = binary

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        if self.trace is not None:
            self.trace(sql)
        return self.con.execute(sql, parameters or None, binary=self.binary)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> object:
        rows = list(parameters)
        if self.trace is not None:
            for _ in rows:
                self.trace(sql)
        with self.con.cursor() as cursor:
            cursor.executemany(sql, rows)
        return None

    def close(self) -> None:
        self.con.close()


class PostgresStore(SqlStore):
    """A durable :class:`MessageStore` in a PostgreSQL database, shareable by a
    live broker and its backups; see the module docstring.

    ``url`` is a libpq connection URL or string (``postgresql://user@host/db``;
    passwords may also come from ``PGPASSWORD`` or ``~/.pgpass``). Tables go in
    the first schema of its ``search_path``. ``paging_dir`` is where non-durable
    bodies are paged out (a temporary file; default: the system's temporary
    directory). ``connect_timeout`` bounds each connection attempt (seconds).
    ``lapse_timeout`` is how soon the live lock lapses after its holder, its
    host, or the network between it and the server stops answering (seconds).
    ``on_lost_lock`` is called on the event loop, with the reason, when a live
    store loses its lock (:attr:`lost_lock` is set then too).

    ``group_commit=False`` and ``trace`` are as for :class:`SqliteStore`.
    """

    sql = Statements(POSTGRESQL, SCHEMA_VERSION)

    def __init__(
        self,
        url: str,
        *,
        group_commit: bool = True,
        paging_dir: str | os.PathLike[str] | None = None,
        connect_timeout: float = 10.0,
        lapse_timeout: float = 5.0,
        on_lost_lock: Callable[[StoreError], None] | None = None,
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
        if lapse_timeout < 1:
            raise ValueError("lapse_timeout must be at least 1 second")
        self._url = url
        self._paging_dir = Path(paging_dir) if paging_dir is not None else None
        self._connect_timeout = max(2, round(connect_timeout))  # libpq's minimum is 2 s
        self._lapse = lapse_timeout
        self._on_lost_lock = on_lost_lock
        self._where = _describe(url)
        self._wcon: _Traced | None = None
        self._rcon: _Traced | None = None
        self._schema = ""
        self._lock_key = 0
        # The live lock: its own thread and connection, and what it found.
        self._locker: ThreadPoolExecutor | None = None
        self._lock_con: _Traced | None = None
        self._epoch: int | None = None
        self._lost: StoreError | None = None
        self._stop_watch = threading.Event()
        self._watch: asyncio.Future[None] | None = None
        self._closed_event = asyncio.Event()

    @property
    def url(self) -> str:
        """Where the store is, without the password."""
        return self._where

    @property
    def is_live(self) -> bool:
        """True while this store holds the live lock (and has not lost it)."""
        return self._epoch is not None and self._lost is None

    @property
    def epoch(self) -> int | None:
        """The fencing epoch this store took with the live lock, or None if not live."""
        return self._epoch

    # -- the live lock -----------------------------------------------------------------

    async def acquire_live_lock(self, *, poll_interval: float = 1.0) -> None:
        """Wait until this store holds the live lock; only then does it accept writes.

        Tries every ``poll_interval`` seconds, without blocking the event loop,
        riding out lost connections and an unreachable server (logged). Returns
        at once if the lock is already ours. Once it returns, no write of the
        previous live broker can commit any more (see the module docstring);
        recover after it. Raises :class:`StoreError` if the store is closed
        meanwhile, or has lost the lock before (a store is live once). Cancelling
        it gives up the lock if it was just taken.
        """
        self._check_open()
        if self._lost is not None:
            raise StoreError(f"this store lost the live lock: {self._lost}")
        if self._epoch is not None:
            return
        loop = self._loop
        assert loop is not None
        if self._locker is None:
            self._locker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="petrel-store-lock")
        locker = self._locker
        told = failing = False
        try:
            while True:
                if self._state != "open":
                    raise StoreError("the store was closed while waiting for the live lock")
                try:
                    epoch = await loop.run_in_executor(locker, self._try_lock)
                    failing = False
                except StoreError as error:
                    # Said once per outage; the backup keeps trying.
                    level = logging.DEBUG if failing else logging.WARNING
                    log.log(level, "waiting for the live lock: %s", error.description)
                    told = failing = True
                    epoch = None
                if self._state != "open":
                    raise StoreError("the store was closed while waiting for the live lock")
                if epoch is not None:
                    break
                if not told:
                    holder = await loop.run_in_executor(locker, self._holder)
                    log.info("waiting for the live lock on %s, held by %s", self._where, holder)
                    told = True
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._closed_event.wait(), poll_interval)
        except BaseException:
            # Queued after a try in flight, so it releases what that took. (Once
            # the store is closing, its close has queued the same.)
            with suppress(RuntimeError):
                locker.submit(self._close_lock)
            raise
        self._epoch = epoch
        log.info("%s: live (epoch %d)", self._where, epoch)
        self._stop_watch.clear()
        self._watch = loop.run_in_executor(locker, self._watch_lock)
        self._watch.add_done_callback(self._watch_ended)

    def _lose(self, reason: str, cause: BaseException | None = None) -> None:
        """On the loop: the lock is gone. Tell the broker, fail every later commit."""
        if self._lost is not None:
            return
        lost = StoreError(f"lost the live lock on {self._where}: {reason}")
        lost.__cause__ = cause
        self._lost = lost
        log.error("%s", lost)
        self.lost_lock.set()
        if self._on_lost_lock is not None:
            self._on_lost_lock(lost)

    def _watch_ended(self, future: asyncio.Future[None]) -> None:
        if self._stop_watch.is_set():
            if not future.cancelled():
                future.exception()  # closing: whatever happened, it is no loss
            return
        if future.cancelled():
            self._lose("the lock watch was cancelled")
            return
        error = future.exception()
        reason = getattr(error, "description", None) or str(error or "the lock watch ended")
        self._lose(reason, error)

    def _check_writable(self) -> GroupCommitter[MessageBatch]:
        committer = self._check_open()
        if self._epoch is None:
            raise StoreError("the store is not live: await acquire_live_lock() before writing")
        return committer

    # -- lock thread -------------------------------------------------------------------

    def _lock_connection(self) -> _Traced:
        if self._closed_event.is_set():
            raise StoreError("the store is closed")
        if self._lock_con is not None and not self._lock_con.con.broken:
            return self._lock_con
        self._close_lock()
        con = self._connect("lock")
        try:
            # The server's side of the lapse: keepalives on its socket, and
            # statements bounded; idle_session_timeout is set once live.
            for name, value in _server_keepalives(self._lapse, con.info.server_version).items():
                con.execute(f"SET {name} = {value}")
        except psycopg.Error as error:
            con.close()
            raise StoreError(
                f"cannot set up the lock connection to {self._where}: {error}"
            ) from error
        self._lock_con = _Traced(con, self._trace)
        return self._lock_con

    def _try_lock(self) -> int | None:
        """One attempt: the new epoch if the lock is now ours, else None."""
        try:
            con = self._lock_connection()
            row = con.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (_int4(LIVE_LOCK_CLASS), self._lock_key)
            ).fetchone()
            if not row[0]:
                return None
            # Fence off the previous live broker: this waits for its write in flight
            # (which holds the row FOR SHARE); its later writes see the new epoch.
            holder = f"{socket.gethostname()} pid {os.getpid()}"
            epoch: int = con.execute(_TAKE_OVER, (holder,)).fetchone()[0]
            if con.con.info.server_version >= 140000:
                con.execute(f"SET idle_session_timeout = {round(self._lapse * 1000)}")
            return epoch
        except psycopg.Error as error:
            self._close_lock()  # gives up the lock if it was taken
            raise StoreError(f"the lock connection to {self._where} failed: {error}") from error

    def _holder(self) -> str:
        if self._lock_con is None:
            return "another broker"
        try:
            row = self._lock_con.execute(_SELECT_HOLDER).fetchone()
        except psycopg.Error:
            return "another broker"
        if row is None or row[0] is None:
            return "another session"
        return f"{row[0]} since {row[1]:%Y-%m-%d %H:%M:%S %Z}"

    def _watch_lock(self) -> None:
        """Runs on the lock thread while live: ping, until stopped or something is wrong."""
        con = self._lock_con
        assert con is not None
        interval = self._lapse / 5
        key = (_oid(LIVE_LOCK_CLASS), _oid(self._lock_key))
        while not self._stop_watch.wait(interval):
            try:
                epoch, held = con.execute(_PING, key).fetchone()
            except psycopg.Error as error:
                raise StoreError(f"the lock connection failed: {error}") from error
            if not held:
                raise StoreError("the session no longer holds the lock")
            if epoch != self._epoch:
                raise StoreError(f"another store took over (epoch {epoch}, ours {self._epoch})")

    def _close_lock(self) -> None:
        con, self._lock_con = self._lock_con, None
        if con is not None:
            with suppress(psycopg.Error):
                con.close()

    # -- lifecycle hooks ---------------------------------------------------------------

    async def _closing(self) -> None:
        self._closed_event.set()
        self._stop_watch.set()
        if self._locker is None:
            return
        loop = self._loop
        assert loop is not None
        try:
            if self._watch is not None:
                with suppress(Exception):
                    await self._watch
            await loop.run_in_executor(self._locker, self._close_lock)
        finally:
            self._locker.shutdown(wait=False)

    def _new_pager(self) -> Pager:
        assert self._loop is not None
        return Pager(self._loop, directory=self._paging_dir, trace=self._trace)

    def _connect(self, role: str) -> PgConnection:
        """A new autocommit connection with keepalives; StoreError saying why not."""
        given = conninfo_to_dict(self._url)
        options: dict[str, Any] = {
            "connect_timeout": self._connect_timeout,
            "application_name": f"petrel {role}",
            **_client_keepalives(self._lapse),
        }
        for name in given:
            options.pop(name, None)  # what the URL says wins
        try:
            return psycopg.connect(self._url, autocommit=True, **options)
        except psycopg.Error as error:
            raise StoreError(_connect_error(self._where, error)) from error

    # -- reader thread -----------------------------------------------------------------

    def _reader_con(self) -> Connection:
        if self._rcon is None:
            raise StoreError("the store is closed")
        if self._rcon.con.broken:
            log.warning("%s: the reading connection broke; connecting again", self._where)
            self._close_reader()
            self._open_reader()
        assert self._rcon is not None
        return self._rcon

    def _reader_broken(self, error: Exception) -> bool:
        return isinstance(error, psycopg.OperationalError) and (
            self._rcon is not None and self._rcon.con.broken
        )

    def _read_error(self, error: Exception) -> StoreError | None:
        if isinstance(error, psycopg.Error):
            return StoreError(f"reading {self._where} failed: {error}")
        return None

    def _open_reader(self) -> None:
        con = self._connect("reader")
        try:
            con.execute("SET default_transaction_read_only = on")
        except psycopg.Error as error:
            con.close()
            raise StoreError(f"cannot open {self._where}: {error}") from error
        self._rcon = _Traced(con, self._trace, binary=True)

    def _close_reader(self) -> None:
        con, self._rcon = self._rcon, None
        if con is not None:
            with suppress(psycopg.Error):
                con.close()

    # -- writer thread -----------------------------------------------------------------

    def _open_writer(self) -> None:
        con = self._connect("writer")
        try:
            self._set_up_writer(con)
            self._open_schema(_Traced(con, self._trace))
        except BaseException as error:
            con.close()
            if isinstance(error, psycopg.Error):
                raise StoreError(f"cannot open {self._where}: {error}") from error
            raise
        self._wcon = _Traced(con, self._trace)

    def _set_up_writer(self, con: PgConnection) -> None:
        rows = con.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit')"
        ).fetchall()
        settings: dict[str, str] = dict(rows)
        if settings.get("synchronous_commit") == "off":
            # A commit must be on disk before it is acknowledged.
            con.execute("SET synchronous_commit = on")
        if settings.get("fsync") == "off":
            log.warning(
                "%s runs with fsync = off: a crash of the PostgreSQL server may lose "
                "committed messages",
                self._where,
            )
        # A hung broker must not keep the live row locked (see the fencing notes).
        con.execute(f"SET idle_in_transaction_session_timeout = {round(self._lapse * 2000)}")

    def _open_schema(self, con: _Traced) -> None:
        row = con.execute("SELECT current_schema()").fetchone()
        if row is None or row[0] is None:
            raise StoreError(
                f"{self._where}: no schema to keep the tables in (the search_path names "
                "no existing schema)"
            )
        self._schema = row[0]
        self._lock_key = _int4(zlib.crc32(self._schema.encode()))
        con.execute("BEGIN")
        try:
            # One store at a time checks (and creates) the tables.
            con.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", (_int4(SCHEMA_LOCK_CLASS), self._lock_key)
            )
            tables = {name for (name,) in con.execute(_SELECT_TABLES, (self._schema,)).fetchall()}
            if self._check_schema(con, tables):
                for statement in (*self.sql.create_tables, *_CREATE_LIVE):
                    con.execute(statement)
            con.execute("COMMIT")
        except BaseException:
            if con.con.info.transaction_status != pq.TransactionStatus.IDLE:
                with suppress(psycopg.Error):
                    con.execute("ROLLBACK")
            raise

    def _check_schema(self, con: _Traced, tables: set[str]) -> bool:
        """True for a schema without Petrel's tables; raises StoreError for one we cannot use."""
        where = f"{self._where} (schema {self._schema})"
        if not tables:
            return True
        if "petrel_schema" not in tables:
            raise StoreError(f"{where} has petrel_ tables but no petrel_schema: not a Petrel store")
        row = con.execute(self.sql.select_version).fetchone()
        version = row[0] if row else None
        if not isinstance(version, int):
            raise StoreError(f"{where} has no schema version")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{where} was written by a newer Petrel (schema version {version}; "
                f"this one reads up to {SCHEMA_VERSION})"
            )
        if version < SCHEMA_VERSION or not tables >= {*self.sql.tables, "petrel_live"}:
            raise StoreError(f"{where} has an unknown schema (version {version})")
        return False

    def _close_writer(self) -> None:
        con, self._wcon = self._wcon, None
        if con is not None:
            with suppress(psycopg.Error):
                con.close()

    def _write(self, batch: MessageBatch) -> None:
        con = self._wcon
        if con is None:
            raise StoreError("the store is closed")
        lost = self._lost
        if lost is not None:
            raise StoreError(lost.description) from lost
        try:
            con.execute("BEGIN")
            row = con.execute(_FENCE).fetchone()
            if row is None or row[0] != self._epoch:
                epoch = None if row is None else row[0]
                reason = f"another store took over (epoch {epoch}, ours {self._epoch})"
                assert self._loop is not None
                self._loop.call_soon_threadsafe(self._lose, reason)
                raise StoreError(f"{self._where}: {reason}")
            write_batch(con, self.sql, batch)
            con.execute("COMMIT")
        except BaseException:
            if con.con.info.transaction_status != pq.TransactionStatus.IDLE:
                with suppress(psycopg.Error):
                    con.execute("ROLLBACK")
            raise


def _describe(url: str) -> str:
    """``postgresql://user@host:port/dbname`` from a URL or string: never the password."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as error:
        raise StoreError(f"not a PostgreSQL connection URL: {error}") from None
    user = params.get("user") or os.environ.get("PGUSER", "")
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST", "")
    port = params.get("port") or os.environ.get("PGPORT", "")
    dbname = params.get("dbname") or os.environ.get("PGDATABASE", "")
    netloc = f"{user}@" if user else ""
    netloc += str(host) if host and not str(host).startswith("/") else ""
    netloc += f":{port}" if port else ""
    where = f"postgresql://{netloc}/{dbname}"
    if host and str(host).startswith("/"):
        where += f" (socket in {host})"
    return where


def _connect_error(where: str, error: psycopg.Error) -> str:
    # A failed connection carries no SQLSTATE in psycopg: read the server's words
    # (in English unless the server says otherwise; the message follows anyway).
    detail = str(error).strip().replace("\n", "; ")
    text = detail.lower()
    state = error.sqlstate or ""
    if state.startswith("28") or any(
        words in text
        for words in ("authentication failed", "no pg_hba.conf entry", 'role "', "password")
    ):
        why = "authentication failed"
    elif state == "3D000" or ('database "' in text and "does not exist" in text):
        why = "no such database"
    elif state.startswith("53") or "too many" in text:
        why = "the server has no room for another connection"
    else:
        why = "cannot connect"
    return f"cannot open the store at {where}: {why}: {detail}"


def _client_keepalives(lapse: float) -> dict[str, int]:
    """libpq options: notice a silent server within about ``lapse`` seconds."""
    idle = max(1, int(lapse / 2))
    return {
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": 1,
        "keepalives_count": max(1, int(lapse) - idle),
        "tcp_user_timeout": round(lapse * 1000),
    }


def _server_keepalives(lapse: float, server_version: int) -> dict[str, int]:
    """The server's settings for its end of the lock connection (seconds, ms)."""
    idle = max(1, int(lapse / 2))
    settings = {
        "tcp_keepalives_idle": idle,
        "tcp_keepalives_interval": 1,
        "tcp_keepalives_count": max(1, int(lapse) - idle),
        "statement_timeout": round(lapse * 1000),
    }
    if server_version >= 120000:
        settings["tcp_user_timeout"] = round(lapse * 1000)
    return settings
