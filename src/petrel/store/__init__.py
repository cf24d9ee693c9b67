"""Persistence for the broker: one interface; memory, SQLite and PostgreSQL stores.

The store knows nothing of frames: it keeps opaque encoded messages plus the
few fields the broker indexes (queue, sequence, priority, expiry, delivery
count) and the queues they belong to. See :class:`MessageStore` for the
contract every store keeps. :class:`PostgresStore` needs the ``postgresql``
extra (psycopg 3); it is imported on first use.
"""

from __future__ import annotations

from .base import Backlog, CommitStats, MessageStore, QueueRecord, StoredMessage, StoreError
from .memory import MemoryStore
from .sqlite import SqliteStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .postgresql import PostgresStore

__all__ = [
    "Backlog",
    "CommitStats",
    "MemoryStore",
    "MessageStore",
    "PostgresStore",
    "QueueRecord",
    "SqliteStore",
    "StoreError",
    "StoredMessage",
]


def __getattr__(name: str) -> object:
    # PostgresStore is imported lazily, so that psycopg stays optional.
    if name == "PostgresStore":
        from .postgresql import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
