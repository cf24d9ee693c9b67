"""The interface every message store implements, and the records it keeps.

A store knows nothing of frames. It keeps opaque encoded messages plus the few
fields the broker indexes, and the queues they belong to. The broker runs on one
asyncio event loop and talks to the store in two ways:

- *Writes* (:meth:`MessageStore.add`, :meth:`~MessageStore.remove`, ...) are plain
  methods that only append to the current batch; they never do I/O on the
  caller's thread. :meth:`MessageStore.commit` returns a future that resolves once
  everything written so far is durable.
- *Reads* (:meth:`MessageStore.load_queues`, :meth:`~MessageStore.iter_messages`,
  :meth:`~MessageStore.load_data`, ...) are coroutines; their I/O runs off the loop.

All methods must be called from the event loop the store was opened on: a
store is not thread-safe, it only hands work to threads of its own.
"""

from __future__ import annotations

import abc
import asyncio
import bisect
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import AmqpError, Condition

__all__ = [
    "Backlog",
    "MessageStore",
    "QueueRecord",
    "StoreError",
    "StoredMessage",
]

#: Default bound on what may wait to be written before :attr:`MessageStore.backlog_full`.
DEFAULT_MAX_BACKLOG_OPS = 100_000
DEFAULT_MAX_BACKLOG_BYTES = 64 * 1024 * 1024


class StoreError(AmqpError):
    """The store cannot do what was asked: it is closed, unreadable, corrupt, from a
    newer Petrel, in use by another process, or a write failed.

    After a failed write a durable store stays failed (every later commit raises
    this too): once ``fsync`` has failed, nothing written since can be trusted,
    so the broker must stop and be restarted. The original error is chained as
    ``__cause__``.
    """

    condition = Condition.INTERNAL_ERROR


@dataclass(slots=True)
class StoredMessage:
    """One message in one queue, as the store keeps it."""

    queue: str
    """The name of the queue that holds the message."""
    seq: int
    """Per-queue sequence number, assigned by the broker, increasing in arrival order.
    A ``(queue, seq)`` pair is stored at most once: never reuse a sequence number
    within a queue (a queue deleted and created again may start afresh)."""
    priority: int
    """0 (lowest) to 9."""
    expiry: int | None
    """Absolute expiry in ms since the epoch, or None for never."""
    delivery_count: int
    """How many times delivery has been attempted (the header's delivery-count)."""
    data: bytes | None
    """The encoded message, or None when its body is on disk and not loaded."""
    size: int
    """``len(data)``, also when ``data`` is None."""


@dataclass(slots=True)
class QueueRecord:
    """A queue as the store keeps it, so the broker can rebuild it at start."""

    name: str
    """Unique queue name."""
    address: str
    """The address the queue is bound to."""
    routing: str
    """``"anycast"`` (a queue) or ``"multicast"`` (a subscription of a topic)."""
    durable_subscription: bool = False
    """True for the queue of a durable topic subscription."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Queue policies (max messages or bytes, dead-letter address, ...) as
    JSON-able data; the store keeps them without looking inside."""


@dataclass(frozen=True, slots=True)
class Backlog:
    """What a store has accepted but not yet written."""

    ops: int
    """Pending operations (adds, removes, updates, ...)."""
    nbytes: int
    """Message bytes those operations hold in memory."""


class CommitStats:
    """How a durable store's writes go: a histogram of the time each batch took to
    write (one transaction, fsync included) and one of the operations it held.

    Recording is one bisection and two increments (no allocation), on the event
    loop as each batch completes; :meth:`copy` is what a reader (``/metrics``) takes.
    """

    #: Upper bounds of the latency buckets, in seconds (the last bucket is +Inf).
    LATENCY_BOUNDS: ClassVar[tuple[float, ...]] = (
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    )  # fmt: skip
    #: Upper bounds of the batch-size buckets, in operations.
    BATCH_BOUNDS: ClassVar[tuple[float, ...]] = (
        1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000,
    )  # fmt: skip

    __slots__ = ("batch_counts", "batch_sum", "latency_counts", "latency_sum")

    def __init__(self) -> None:
        #: Batches per bucket (not cumulative); the last one is past every bound.
        self.latency_counts = [0] * (len(self.LATENCY_BOUNDS) + 1)
        self.latency_sum = 0.0
        self.batch_counts = [0] * (len(self.BATCH_BOUNDS) + 1)
        self.batch_sum = 0

    @property
    def latency_bounds(self) -> tuple[float, ...]:
        return self.LATENCY_BOUNDS

    @property
    def batch_bounds(self) -> tuple[float, ...]:
        return self.BATCH_BOUNDS

    @property
    def commits(self) -> int:
        """Batches recorded."""
        return sum(self.latency_counts)

    def record(self, seconds: float, operations: int) -> None:
        """One batch of ``operations`` was written in ``seconds``."""
        self.latency_counts[bisect.bisect_left(self.LATENCY_BOUNDS, seconds)] += 1
        self.latency_sum += seconds
        self.batch_counts[bisect.bisect_left(self.BATCH_BOUNDS, operations)] += 1
        self.batch_sum += operations

    def copy(self) -> CommitStats:
        other = CommitStats()
        other.latency_counts = list(self.latency_counts)
        other.latency_sum = self.latency_sum
        other.batch_counts = list(self.batch_counts)
        other.batch_sum = self.batch_sum
        return other


class MessageStore(abc.ABC):
    """Where a broker keeps its queues and messages.

    Lifecycle: ``await open()``, then recovery (:meth:`load_queues`, then
    :meth:`iter_messages` and :meth:`max_seq` per queue), then writes and reads
    in any order, then ``await close()``. Every method raises :class:`StoreError`
    when the store is not open.

    Writes only append to the current batch; a durable store writes a batch in
    one transaction off the event loop, after the loop turn in which it was
    filled. Within a batch operations take effect in the order they were made;
    batches are written in order. Nothing is durable until the future from
    :meth:`commit` has resolved.
    """

    durable: ClassVar[bool]
    """True when committed messages survive a restart (and a crash)."""

    def __init__(
        self,
        *,
        max_backlog_ops: int = DEFAULT_MAX_BACKLOG_OPS,
        max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES,
    ) -> None:
        self.max_backlog_ops = max_backlog_ops
        self.max_backlog_bytes = max_backlog_bytes
        self.lost_lock = asyncio.Event()
        """Set when a store that several brokers share loses the live lock (see
        :meth:`acquire_live_lock`): the broker must stop. Never set for the others."""

    @property
    def commit_stats(self) -> CommitStats | None:
        """How its writes go (a store that writes batches), else None (memory)."""
        return None

    # -- lifecycle ---------------------------------------------------------------------

    @abc.abstractmethod
    async def open(self) -> None:
        """Open (or create) the store and bind it to the running event loop.

        Raises :class:`StoreError` if the store cannot be opened: unreadable,
        corrupt or truncated, written by a newer Petrel, or in use by another
        process. Opening never deletes or rewrites data it cannot read.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Write what is pending, wait for it, then release every file and thread.

        Idempotent. Raises :class:`StoreError` if the store has failed (a write,
        this last one or an earlier one, did not become durable); the store is
        closed all the same.
        """

    async def acquire_live_lock(self, *, poll_interval: float = 1.0) -> None:
        """Wait until this broker is the live one, the one that may write.

        Call it after :meth:`open`, before recovery. A store several brokers
        share (PostgreSQL) waits here, trying every ``poll_interval`` seconds,
        until the live broker's lock is ours; it then refuses writes from the
        broker that held it before, and sets :attr:`lost_lock` if it loses the
        lock later. Stores only one broker can open (memory; SQLite, locked at
        open) return at once.
        """
        return None

    # -- recovery ----------------------------------------------------------------------

    @abc.abstractmethod
    async def load_queues(self) -> list[QueueRecord]:
        """Every saved queue, by name. Reads what is committed."""

    @abc.abstractmethod
    def iter_messages(
        self, queue: str, *, with_data: bool = True, batch: int = 1000
    ) -> AsyncIterator[StoredMessage]:
        """The committed messages of ``queue`` in ``seq`` order, read ``batch`` at a time.

        With ``with_data=False`` the bodies stay on disk (``data`` is None, ``size``
        is set) and can be fetched later with :meth:`load_data`. Meant for
        recovery, before writing: messages written while iterating may or may not
        be seen.
        """

    @abc.abstractmethod
    async def max_seq(self, queue: str) -> int | None:
        """The highest committed ``seq`` of ``queue``, or None if it holds no message.

        After recovery the broker numbers new messages from ``max_seq + 1``.
        """

    # -- writes: no I/O on the caller's thread -----------------------------------------

    @abc.abstractmethod
    def save_queue(self, record: QueueRecord) -> None:
        """Create or replace the queue ``record.name``; durable after :meth:`commit`.

        Raises ``ValueError`` if ``settings`` is not JSON-able.
        """

    @abc.abstractmethod
    def delete_queue(self, name: str) -> None:
        """Delete the queue ``name`` and every message in it (durable and paged out).

        Messages added to a queue of that name later in the same batch are kept.
        """

    @abc.abstractmethod
    def add(self, message: StoredMessage) -> None:
        """Store a durable message; durable once :meth:`commit`'s future resolves.

        ``message.data`` must be set. The store takes a snapshot of the fields
        and keeps a reference to the bytes (never a copy), so the caller may
        change ``message`` afterwards (drop ``data`` when paging, say).
        """

    @abc.abstractmethod
    def remove(self, queue: str, seq: int) -> None:
        """Delete a message (the consumer accepted it), whether added or paged out.

        Removing a message whose :meth:`add` or :meth:`page_out` is still in the
        pending batch cancels both: nothing reaches the disk. Removing a message
        the store never had is harmless. Call it only for messages given to
        :meth:`add`, :meth:`move` or :meth:`page_out`; others would cost a write.
        """

    @abc.abstractmethod
    def set_delivery_count(self, queue: str, seq: int, count: int) -> None:
        """Record a message's new delivery count (it was released or modified)."""

    @abc.abstractmethod
    def move(self, queue: str, seq: int, to: StoredMessage) -> None:
        """Remove ``(queue, seq)`` and add ``to`` in one batch, so a crash leaves
        exactly one of the two (dead-lettering, expiry)."""

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """Every write made inside the block is durable together or not at all: one
        batch, one transaction (a broker transaction's commit). The block must not
        await: the loop turn it runs in is the batch. A store that is not durable has
        nothing to do."""
        yield

    @abc.abstractmethod
    def commit(self) -> asyncio.Future[None]:
        """A future that resolves when everything written so far is durable.

        Every call returns a new future (cancelling one affects no other caller).
        The future raises :class:`StoreError` if the write failed; the broker must
        then not settle the deliveries it covers as accepted. A store that is
        not durable returns a resolved future.
        """

    def when_committed(self, callback: Callable[[StoreError | None], object]) -> None:
        """Call ``callback(None)`` once everything written so far is durable, or
        ``callback(error)`` (a :class:`StoreError`) if it cannot be.

        :meth:`commit` without the future: for a caller that waits per message
        (the broker, per durable delivery), a durable store keeps the callbacks of a
        batch in a list and runs them one after another as the batch completes.
        The callback always runs later, on the loop, never inside this call; it
        should not raise (an exception is logged and the other callbacks run).
        """

        def done(future: asyncio.Future[None]) -> None:
            if future.cancelled():
                callback(StoreError("the commit was cancelled"))
                return
            error = future.exception()
            if error is None or isinstance(error, StoreError):
                callback(error)
            else:
                failed = StoreError(f"the commit failed: {error}")
                failed.__cause__ = error
                callback(failed)

        self.commit().add_done_callback(done)

    def when_committed_each(
        self, callback: Callable[[list[Any], StoreError | None], object], item: Any
    ) -> None:
        """:meth:`when_committed` for many waiters at once: ``callback(items, error)``
        runs once per batch with, in order, every ``item`` given with that same
        ``callback`` (equal bound methods count as the same) since the last one.

        For the broker's producer links: one call per link per batch, not one
        closure and one call per durable delivery.  This default runs each item on
        its own; a store that batches groups them.
        """
        self.when_committed(lambda error: callback([item], error))

    # -- paging ------------------------------------------------------------------------

    @abc.abstractmethod
    def page_out(self, message: StoredMessage) -> None:
        """Keep the body of a message that is *not* durable on disk, to bound memory.

        After this the caller may drop ``message.data`` and get it back with
        :meth:`load_data`. The store holds the bytes until they are written
        (counted in :attr:`backlog`). Paged-out bodies go when the message is
        removed, and are never recovered after a restart. For a durable message
        this is not needed: its body is already in the store.
        """

    @abc.abstractmethod
    async def load_data(self, queue: str, seqs: Sequence[int]) -> dict[int, bytes]:
        """The bodies of the messages ``seqs`` of ``queue``, added or paged out.

        Sees every write made before the call, committed or not. Sequence numbers
        the store does not hold are left out of the result.
        """

    # -- flow control ------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def backlog(self) -> Backlog:
        """What is accepted but not yet written (pending and being written)."""

    @property
    def backlog_full(self) -> bool:
        """True when :attr:`backlog` is over a limit: the broker should stop giving
        producers credit until it goes down (after the next :meth:`commit`)."""
        backlog = self.backlog
        return backlog.ops >= self.max_backlog_ops or backlog.nbytes >= self.max_backlog_bytes
