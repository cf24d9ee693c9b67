"""Paging: a queue over its memory limit keeps message bodies in the store only.

The queue keeps every entry (its index: sequence, priority, expiry, size); what
pages is the body.  :meth:`Pager.page_out` drops a body from memory once it is
on disk (a durable message is there already; another is written as a spilled
copy), :meth:`Pager.page_in` loads the next bodies when dispatch reaches them,
and :meth:`Pager.recover` rebuilds a queue's index from the store at start,
loading bodies up to the memory limit and leaving the rest paged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import AmqpError, DecodeError
from ..message import MessageView
from ..store import StoredMessage
from .queues import GONE, Entry, Queue

if TYPE_CHECKING:
    from .core import BrokerCore

__all__ = ["PAGE_IN_BYTES", "PAGE_IN_COUNT", "Pager"]

log = logging.getLogger("petrel.broker")

#: A page-in loads at most this many messages, and about this many bytes, per read.
PAGE_IN_COUNT = 1000
PAGE_IN_BYTES = 4 * 1024 * 1024


class Pager:
    """Moves the bodies of the core's queues between memory and its store."""

    __slots__ = ("core",)

    def __init__(self, core: BrokerCore) -> None:
        self.core = core

    async def recover(self, queue: Queue) -> int:
        """Rebuild ``queue``'s entries from the store; the number of messages found."""
        store = self.core.store
        last = 0
        count = 0
        # Bodies up to the memory limit come back with the index; the rest stay paged.
        async for stored in store.iter_messages(queue.name, with_data=False):
            entry = Entry(
                stored.seq,
                None,
                None,
                priority=stored.priority,
                expiry=stored.expiry,
                durable=True,
                delivery_count=stored.delivery_count,
                size=stored.size,
            )
            entry.header_count = -1  # unknown: re-encode the header when sending
            entry.stored = True
            queue.enqueue(entry)
            queue.paged.append(entry)
            last = max(last, stored.seq)
            count += 1
        await self.load(queue, queue.memory_limit)
        max_seq = await store.max_seq(queue.name)
        queue.restore_seq(max(last, max_seq or 0))
        return count

    def page_out(self, queue: Queue, entry: Entry) -> None:
        """Keep ``entry``'s body on disk only: the queue is over its memory limit."""
        if not entry.stored:
            data = entry.data
            assert data is not None
            self.core.store.page_out(
                StoredMessage(
                    queue.name,
                    entry.seq,
                    entry.priority,
                    entry.expiry,
                    entry.delivery_count,
                    data,
                    entry.size,
                )
            )
            entry.spilled = True
        queue.page(entry)

    async def page_in(self, queue: Queue) -> None:
        """Load the bodies dispatch reached (the caller set ``queue.loading``), then on
        while they fit the memory limit; a store that cannot read stops the broker."""
        core = self.core
        try:
            # One batch for the head, then on while the loaded bodies fit the limit.
            budget = max(queue.memory_limit // 4, 1)
            await self.load(queue, min(budget, PAGE_IN_BYTES))
            while (
                queue.paged
                and queue.resident + PAGE_IN_BYTES <= queue.memory_limit
                and core.queues.get(queue.name) is queue
            ):
                core.mark_dirty(queue)
                await self.load(queue, PAGE_IN_BYTES)
        except AmqpError as exc:
            core.fail(f"cannot load paged messages of queue {queue.name!r}: {exc.description}")
        finally:
            queue.loading = False
            core.mark_dirty(queue)

    async def load(self, queue: Queue, max_bytes: int) -> None:
        """Load the next paged bodies of ``queue``, about ``max_bytes`` of them."""
        store = self.core.store
        while queue.paged and max_bytes > 0:
            batch = queue.next_to_load(PAGE_IN_COUNT, max_bytes)
            if not batch:
                return
            found = await store.load_data(queue.name, [e.seq for e in batch])
            for entry in batch:
                data = found.get(entry.seq)
                if data is not None:
                    if entry.group_id is None:
                        # Recovered entries learn their group here (the store keeps no copy).
                        entry.group_id = _group_of(data)
                    queue.loaded(entry, data)
                    max_bytes -= entry.size
                elif entry.state != GONE:
                    log.error("queue %r: paged message %d is missing", queue.name, entry.seq)
                    queue.remove(entry)


def _group_of(data: bytes) -> str | None:
    """The group-id of an encoded message (which was read once already, when it came in)."""
    try:
        return MessageView(data).group_id
    except DecodeError:
        return None
