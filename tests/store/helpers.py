"""Helpers for the store tests: messages, a statement trace, reading a store back."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from petrel.store import MessageStore, QueueRecord, SqliteStore, StoredMessage


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
    """Open the store at ``path``, read everything (also ``extra_queues``' messages,
    saved or not), close it."""
    store = SqliteStore(path)
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
