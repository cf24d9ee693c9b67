"""Helpers for the store tests: messages, a statement trace, reading a store back, and
``store_factory``, the durable stores (SQLite, PostgreSQL) the shared tests run on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from petrel.store import MessageStore, QueueRecord, SqliteStore, StoredMessage
from petrel.store._sql import SqlStore
from tests.helpers.postgres import fresh_schema

#: The durable stores every test of ``store_factory`` runs on.
KINDS = ("sqlite", "postgresql")


def msg(
    queue: str,
    seq: int,
    data: bytes | None = None,
    *,
    priority: int = 4,
    expiry: int | None = None,
    delivery_count: int = 0,
) -> StoredMessage:
    """A message whose body, unless given, names its queue and seq."""
    if data is None:
        data = f"{queue}:{seq}".encode()
    return StoredMessage(queue, seq, priority, expiry, delivery_count, data, len(data))


def queue(name: str, **settings: object) -> QueueRecord:
    return QueueRecord(name, f"addr/{name}", "anycast", settings=dict(settings))


@dataclass
class Trace:
    """Records every SQL statement a store runs, with the thread that ran it."""

    calls: list[tuple[int, str, str]] = field(default_factory=list)

    def __call__(self, sql: str) -> None:
        thread = threading.current_thread()
        self.calls.append((threading.get_ident(), thread.name, sql))

    def statements(self, prefix: str = "") -> list[str]:
        return [sql for _, _, sql in self.calls if sql.upper().startswith(prefix.upper())]

    def count(self, prefix: str) -> int:
        return len(self.statements(prefix))

    def rows(self, prefix: str) -> int:
        """Rows written by the statements starting with ``prefix``: a multi-row
        ``INSERT ... VALUES (...), (...)`` counts one per row."""
        return sum(sql.count("), (") + 1 for sql in self.statements(prefix))

    def clear(self) -> None:
        self.calls.clear()


@dataclass
class Contents:
    queues: dict[str, QueueRecord]
    messages: dict[str, list[StoredMessage]]


async def read_all(store: MessageStore) -> Contents:
    queues = {record.name: record for record in await store.load_queues()}
    messages = {}
    for name in queues:
        messages[name] = [message async for message in store.iter_messages(name)]
    return Contents(queues, messages)


async def reopen(path: Path, extra_queues: tuple[str, ...] = ()) -> Contents:
    """Open the SQLite store at ``path``, read everything (also ``extra_queues``'
    messages, saved or not), close it."""
    return await read_back(SqliteStore(path), extra_queues)


async def read_back(store: MessageStore, extra_queues: tuple[str, ...] = ()) -> Contents:
    """Open ``store``, read everything (also ``extra_queues``' messages, saved or
    not), close it."""
    await store.open()
    try:
        contents = await read_all(store)
        for name in extra_queues:
            contents.messages[name] = [m async for m in store.iter_messages(name)]
        return contents
    finally:
        await store.close()


def seqs(messages: list[StoredMessage]) -> list[int]:
    return [message.seq for message in messages]


async def pager_idle(store: MessageStore) -> None:
    """Wait until the store's pager (if any) has written everything it holds."""
    pager = getattr(store, "_pager", None)
    if pager is not None:
        await pager._committer.drain()


@dataclass
class StoreFactory:
    """Makes stores of one kind on one database: a fresh directory for SQLite, a
    fresh schema for PostgreSQL."""

    kind: str
    where: str
    """The SQLite data directory, or the PostgreSQL URL."""
    paging_dir: Path

    def new(self, **options: Any) -> SqlStore:
        """A store on the database, not open."""
        if self.kind == "sqlite":
            return SqliteStore(self.where, **options)
        from petrel.store import PostgresStore

        return PostgresStore(self.where, paging_dir=self.paging_dir, **options)

    async def open(self, **options: Any) -> SqlStore:
        """A store on the database, open and writable (live, for PostgreSQL)."""
        store = self.new(**options)
        await store.open()
        await store.acquire_live_lock(poll_interval=0.05)
        return store

    async def reopen(self, extra_queues: tuple[str, ...] = ()) -> Contents:
        """What a new store on the database reads back (see :func:`read_back`)."""
        return await read_back(self.new(), extra_queues)


@pytest.fixture(params=KINDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A :class:`StoreFactory` per durable store kind, on an empty database."""
    paging_dir = tmp_path / "paging"
    paging_dir.mkdir()
    if request.param == "sqlite":
        yield StoreFactory("sqlite", str(tmp_path / "data"), paging_dir)
        return
    url: str = request.getfixturevalue("postgres_url")
    with fresh_schema(url) as schema_url:
        yield StoreFactory("postgresql", schema_url, paging_dir)
