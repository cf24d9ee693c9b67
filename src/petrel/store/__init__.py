"""Persistence for the broker: one interface, a memory and an SQLite store.

The store knows nothing of frames: it keeps opaque encoded messages plus the
few fields the broker indexes (queue, sequence, priority, expiry, delivery
count) and the queues they belong to. See :class:`MessageStore` for the
contract every store keeps.
"""

from __future__ import annotations

from .base import Backlog, MessageStore, QueueRecord, StoredMessage, StoreError
from .memory import MemoryStore
from .sqlite import SqliteStore

__all__ = [
    "Backlog",
    "MemoryStore",
    "MessageStore",
    "QueueRecord",
    "SqliteStore",
    "StoreError",
    "StoredMessage",
]
