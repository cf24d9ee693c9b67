"""The non-durable store: keeps nothing, except paged-out bodies.

The broker holds its queues in memory anyway, so :class:`MemoryStore` writes
nothing and recovers nothing: commits resolve at once. Paging still works, so
that a broker with no durable store keeps its memory bounded: bodies given to
:meth:`MemoryStore.page_out` go to a temporary SQLite file (created on the
first page-out, in ``paging_dir`` or the system's temporary directory, deleted
at close) through a thread of its own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import ClassVar, Literal

from ._paging import Pager
from .base import (
    DEFAULT_MAX_BACKLOG_BYTES,
    DEFAULT_MAX_BACKLOG_OPS,
    Backlog,
    MessageStore,
    QueueRecord,
    StoredMessage,
    StoreError,
)

__all__ = ["MemoryStore"]


class MemoryStore(MessageStore):
    """A :class:`MessageStore` that is not durable; see the module docstring.

    ``paging_dir`` should be on a disk, not a RAM file system (``/tmp`` is
    ``tmpfs`` on some systems: paging there saves no memory).
    """

    durable: ClassVar[bool] = False

    def __init__(
        self,
        *,
        paging_dir: str | os.PathLike[str] | None = None,
        max_backlog_ops: int = DEFAULT_MAX_BACKLOG_OPS,
        max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES,
    ) -> None:
        super().__init__(max_backlog_ops=max_backlog_ops, max_backlog_bytes=max_backlog_bytes)
        self._paging_dir = Path(paging_dir) if paging_dir is not None else None
        self._state: Literal["new", "open", "closed"] = "new"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pager: Pager | None = None

    async def open(self) -> None:
        """See :meth:`MessageStore.open`; creates no file."""
        if self._state != "new":
            raise StoreError("a MemoryStore can be opened once")
        self._loop = asyncio.get_running_loop()
        self._state = "open"

    async def close(self) -> None:
        """See :meth:`MessageStore.close`; deletes the paging file."""
        if self._state != "open":
            return
        self._state = "closed"
        if self._pager is not None:
            pager, self._pager = self._pager, None
            await pager.close()

    def _check_open(self) -> None:
        if self._state != "open":
            raise StoreError(f"the store is {'not open' if self._state == 'new' else 'closed'}")

    # -- recovery: there is nothing to recover -----------------------------------------

    async def load_queues(self) -> list[QueueRecord]:
        """Always empty."""
        self._check_open()
        return []

    async def iter_messages(
        self, queue: str, *, with_data: bool = True, batch: int = 1000
    ) -> AsyncIterator[StoredMessage]:
        """Always empty."""
        self._check_open()
        nothing: tuple[StoredMessage, ...] = ()
        for message in nothing:
            yield message

    async def max_seq(self, queue: str) -> int | None:
        """Always None."""
        self._check_open()
        return None

    # -- writes: nothing is kept -------------------------------------------------------

    def save_queue(self, record: QueueRecord) -> None:
        """Does nothing."""
        self._check_open()

    def delete_queue(self, name: str) -> None:
        """Forgets the queue's paged-out bodies."""
        self._check_open()
        if self._pager is not None:
            self._pager.discard_queue(name)

    def add(self, message: StoredMessage) -> None:
        """Does nothing: the message is not durable."""
        self._check_open()

    def remove(self, queue: str, seq: int) -> None:
        """Forgets the message's body if it was paged out."""
        self._check_open()
        if self._pager is not None:
            self._pager.discard(queue, seq)

    def set_delivery_count(self, queue: str, seq: int, count: int) -> None:
        """Does nothing."""
        self._check_open()

    def move(self, queue: str, seq: int, to: StoredMessage) -> None:
        """Forgets the source's body if it was paged out."""
        self.remove(queue, seq)

    def commit(self) -> asyncio.Future[None]:
        """A resolved future: there is nothing to wait for."""
        self._check_open()
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()
        future.set_result(None)
        return future

    # -- paging ------------------------------------------------------------------------

    def page_out(self, message: StoredMessage) -> None:
        """See :meth:`MessageStore.page_out`. The first call starts the paging file."""
        self._check_open()
        if message.data is None:
            raise ValueError("a message is paged out with its data")
        if self._pager is None:
            assert self._loop is not None
            self._pager = Pager(self._loop, directory=self._paging_dir)
        self._pager.put(message.queue, message.seq, message.data)

    async def load_data(self, queue: str, seqs: Sequence[int]) -> dict[int, bytes]:
        """See :meth:`MessageStore.load_data`: only paged-out bodies are found."""
        self._check_open()
        if self._pager is None:
            return {}
        return await self._pager.get(queue, seqs)

    @property
    def backlog(self) -> Backlog:
        """Bodies waiting to be paged out."""
        if self._pager is None:
            return Backlog(0, 0)
        return Backlog(self._pager.backlog_ops, self._pager.backlog_bytes)
