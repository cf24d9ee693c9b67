"""Group commit: batches filled on the event loop, written one at a time on one thread.

Operations made during one loop turn land in the *pending* batch. At the end of
the turn the batch is sealed and handed to the writer thread, which writes it
in one transaction. While it does (``fsync`` and all), new operations gather in
the next pending batch, which goes as soon as the thread is free: the busier the
broker, the more messages share one ``fsync``.

The loop side never blocks: it only fills dictionaries, submits sealed batches
to a single-worker executor and learns of the outcome through a callback on
the loop. A sealed batch is never touched by the loop again, so the thread can
read it without locks.

Who waits for a batch holds a future (:meth:`GroupCommitter.commit`) or gave a
plain callback (:meth:`GroupCommitter.when_committed`), or a callback and an item
(:meth:`GroupCommitter.when_committed_each`). The broker waits once per durable
delivery, hundreds of times per batch: a future costs an object, its done
callbacks and one scheduled loop call per callback, where a batch keeps each
callback once with the list of its items, and calls it once as it completes
(plain callbacks are the items of one such callback, which runs them in a row).
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Generic, TypeVar

from .base import CommitStats, StoreError

log = logging.getLogger("petrel.store")


#: Told of a batch's outcome: None once it is written, else the StoreError.
Callback = Callable[[StoreError | None], object]
#: Told of a batch's outcome with the items it was given (see ``when_committed_each``).
GroupCallback = Callable[[list[Any], StoreError | None], object]


class Batch(abc.ABC):
    """What one transaction writes. Subclasses add the operations."""

    __slots__ = ("groups", "nbytes", "started", "waiters")

    def __init__(self) -> None:
        self.nbytes = 0
        self.waiters: list[asyncio.Future[None]] = []
        #: Each callback told of this batch's outcome, with its items in order.
        self.groups: dict[GroupCallback, list[Any]] = {}
        #: When it was handed to the writer (the loop's clock).
        self.started = 0.0

    def watched(self) -> bool:
        """Whether anyone waits for this batch."""
        return bool(self.waiters or self.groups)

    @abc.abstractmethod
    def ops(self) -> int:
        """How many operations the batch holds (0: nothing to write)."""


B = TypeVar("B", bound=Batch)


class GroupCommitter(Generic[B]):
    """Runs ``write(batch)`` on ``executor`` for each batch, in order.

    ``executor`` must have exactly one worker. With ``group=False`` (for
    benchmarks) every operation is sealed and written on its own. A failed
    write makes the committer *failed*: the batch's waiters, and every later
    commit, raise :class:`StoreError`; ``on_failure`` is told of the failed batch.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        executor: Executor,
        new_batch: Callable[[], B],
        write: Callable[[B], None],
        *,
        group: bool = True,
        on_failure: Callable[[B], None] | None = None,
        what: str = "store",
    ) -> None:
        self._loop = loop
        self._executor = executor
        self._new_batch = new_batch
        self._write = write
        self._group = group
        self._on_failure = on_failure
        self._what = what
        self.pending: B = new_batch()
        self.inflight: deque[B] = deque()
        self.failed: StoreError | None = None
        self.transactions = 0
        #: The time each batch took and its size (read by ``/metrics``).
        self.stats = CommitStats()
        self._handle: asyncio.Handle | None = None
        self._closed = False
        self._inflight_ops = 0
        self._inflight_bytes = 0
        #: Open :meth:`hold` blocks; while any is, the pending batch is not sealed.
        self._holds = 0
        self._changed_while_held = False

    # -- loop side ---------------------------------------------------------------------

    def hold(self) -> None:
        """Seal nothing until :meth:`release`: what is written meanwhile goes into one
        batch, even with ``group=False`` (a broker transaction's work, all or nothing)."""
        self._holds += 1

    def release(self) -> None:
        """End a :meth:`hold`; the batch goes as it would have."""
        self._holds -= 1
        if not self._holds and self._changed_while_held:
            self._changed_while_held = False
            self.changed()

    def changed(self) -> None:
        """The pending batch was changed: write it at the end of this loop turn."""
        if self._holds:
            self._changed_while_held = True
            return
        if not self._group:
            self._flush()
        elif self._handle is None:
            self._handle = self._loop.call_soon(self._flush)

    def commit(self) -> asyncio.Future[None]:
        """A new future for "everything so far is written" (see MessageStore.commit)."""
        waiter: asyncio.Future[None] = self._loop.create_future()
        if self.failed is not None:
            waiter.set_exception(self._failure())
            return waiter
        batch = self._last_batch()
        if batch is None:
            waiter.set_result(None)
        else:
            batch.waiters.append(waiter)
        return waiter

    def when_committed(self, callback: Callback) -> None:
        """Call ``callback(None)`` once everything so far is written, or
        ``callback(error)`` if that write failed; always later, on the loop, never
        from inside this call."""
        self.when_committed_each(self._call_each, callback)

    def when_committed_each(self, callback: GroupCallback, item: Any) -> None:
        """:meth:`when_committed` as ``callback(items, error)``, once per batch for
        every ``item`` given with an equal ``callback`` (see the store's method)."""
        if self.failed is not None:
            self._loop.call_soon(callback, [item], self._failure())
            return
        batch = self._last_batch()
        if batch is None:
            self._loop.call_soon(callback, [item], None)
            return
        items = batch.groups.get(callback)
        if items is None:
            batch.groups[callback] = [item]
        else:
            items.append(item)

    def _last_batch(self) -> B | None:
        """The batch that holds the last write so far (the pending one, made to go at
        the end of this turn, else the last in flight); None if all is written."""
        if self.pending.ops():
            self.changed()
            return self.pending
        return self.inflight[-1] if self.inflight else None

    @property
    def backlog_ops(self) -> int:
        return self.pending.ops() + self._inflight_ops

    @property
    def backlog_bytes(self) -> int:
        return self.pending.nbytes + self._inflight_bytes

    async def drain(self, *, flush: bool = True) -> None:
        """Write what is pending (unless ``flush`` is false) and wait until nothing
        is in flight.

        Raises :class:`StoreError` if the committer has failed.
        """
        while True:
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None
            if flush and not self.inflight:
                self._flush()
            if not self.inflight:
                break
            waiter: asyncio.Future[None] = self._loop.create_future()
            self.inflight[-1].waiters.append(waiter)
            await waiter
        if self.failed is not None:
            raise self._failure()

    def close(self) -> None:
        """Write nothing more: pending work is dropped and its waiters fail."""
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
        self._flush()

    def _closed_error(self) -> StoreError:
        return StoreError(f"the {self._what} is closed")

    def _failure(self) -> StoreError:
        error = StoreError(f"the {self._what} has failed: {self.failed}")
        error.__cause__ = self.failed
        return error

    def _flush(self) -> None:
        self._handle = None
        batch = self.pending
        if self.failed is not None or self._closed:
            # Nothing more is written once a write has failed (or after close).
            self.pending = self._new_batch()
            for waiter in batch.waiters:
                if not waiter.done():
                    waiter.set_exception(self._failure() if self.failed else self._closed_error())
            if batch.groups:
                error = self._failure() if self.failed else self._closed_error()
                self._loop.call_soon(self._call_back, batch, error)
            return
        if not batch.ops():
            # Everything in it was cancelled: its waiters only wait for what went before.
            if batch.watched():
                if self.inflight:
                    last = self.inflight[-1]
                    last.waiters.extend(batch.waiters)
                    for callback, items in batch.groups.items():
                        last.groups.setdefault(callback, []).extend(items)
                    batch.waiters.clear()
                    batch.groups = {}
                else:
                    for waiter in batch.waiters:
                        if not waiter.done():
                            waiter.set_result(None)
                    batch.waiters.clear()
                    # The batch object goes: a new one is pending (ops() was 0 anyway).
                    self.pending = self._new_batch()
                    if batch.groups:
                        self._loop.call_soon(self._call_back, batch, None)
            return
        if self._group and self.inflight:
            return  # goes when the batch in flight is done (see _done)
        self.pending = self._new_batch()
        self.inflight.append(batch)
        self._inflight_ops += batch.ops()
        self._inflight_bytes += batch.nbytes
        batch.started = self._loop.time()
        future = self._loop.run_in_executor(self._executor, self._write, batch)
        future.add_done_callback(lambda f: self._done(batch, f))

    def _done(self, batch: B, future: asyncio.Future[None]) -> None:
        done = self.inflight.popleft()
        assert done is batch, "batches complete in order"
        self._inflight_ops -= batch.ops()
        self._inflight_bytes -= batch.nbytes
        error = future.exception() if not future.cancelled() else asyncio.CancelledError()
        if error is None and self.failed is None:
            self.transactions += 1
            self.stats.record(self._loop.time() - batch.started, batch.ops())
            for waiter in batch.waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._call_back(batch, None)
        else:
            if self.failed is None:
                # A write after a failed one proves nothing (a failed fsync may have
                # dropped dirty pages that a later fsync then reports as written).
                log.error("writing to the %s failed: %s", self._what, error)
                if isinstance(error, StoreError):
                    self.failed = error
                else:
                    self.failed = StoreError(f"writing to the {self._what} failed: {error}")
                    self.failed.__cause__ = error
            for waiter in batch.waiters:
                if not waiter.done():
                    waiter.set_exception(self._failure())
            self._call_back(batch, self._failure())
            if self._on_failure is not None:
                self._on_failure(batch)
        if self.pending.ops() or self.pending.watched():
            # At the end of this turn, so that what the producers just woken up add
            # next goes into the same batch as what gathered during this write.
            self.changed()

    def _call_back(self, batch: B, error: StoreError | None) -> None:
        """Call each of a batch's callbacks with its items; the batch lets go of them."""
        groups, batch.groups = batch.groups, {}
        for callback, items in groups.items():
            try:
                callback(items, error)
            except Exception:
                log.exception("a commit callback of the %s failed", self._what)

    def _call_each(self, callbacks: list[Callback], error: StoreError | None) -> None:
        """Run plain callbacks in order; one that raises is logged and the rest run."""
        for callback in callbacks:
            try:
                callback(error)
            except Exception:
                log.exception("a commit callback of the %s failed", self._what)
