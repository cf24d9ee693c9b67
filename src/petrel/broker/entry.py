"""What a queue holds and whom it talks to: :class:`Entry`, one message in one queue, and
the two protocols a :class:`~.queues.Queue` sees the broker through: :class:`Consumer`
(a sending link) and :class:`QueueHooks` (store writes, dead letters, waking producers).

An entry's ``state`` is one of :data:`AVAILABLE` (in the queue, or parked with the owner
of its group), :data:`ACQUIRED` (a consumer has it, unsettled) and :data:`GONE` (removed
for good).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from ..message import MessageView
    from .queues import Queue

__all__ = ["ACQUIRED", "AVAILABLE", "GONE", "Consumer", "Entry", "QueueHooks"]

AVAILABLE: Final = 0
ACQUIRED: Final = 1
GONE: Final = 2


class Entry:
    """One message in one queue.

    ``data`` is the message as it will be sent (its header re-encoded only when
    the broker changed something in it); ``view`` reads its sections lazily.
    While the queue is over its memory limit, ``data`` (and ``view``) of new
    entries are None: the body is *paged*, in the store (``stored``: a durable
    message; ``spilled``: a non-durable one given to ``store.page_out``), and
    is loaded back before the entry is handed to a consumer.
    """

    __slots__ = (
        "acquired_at",
        "consumer",
        "data",
        "delivery_count",
        "durable",
        "excluded",
        "expiry",
        "group_id",
        "header_count",
        "priority",
        "queue",
        "seq",
        "size",
        "spilled",
        "state",
        "stored",
        "view",
    )

    def __init__(
        self,
        seq: int,
        data: bytes | None,
        view: MessageView | None,
        *,
        priority: int = 4,
        expiry: int | None = None,
        durable: bool = False,
        delivery_count: int = 0,
        group_id: str | None = None,
        size: int | None = None,
    ) -> None:
        self.seq = seq
        self.data = data
        self.view = view
        self.priority = priority if 0 <= priority <= 9 else (9 if priority > 9 else 0)
        self.expiry = expiry
        self.durable = durable
        self.delivery_count = delivery_count
        self.header_count = delivery_count
        self.group_id = group_id
        self.size = size if size is not None else len(data or b"")
        self.state = AVAILABLE
        #: Acquired: the consumer that has it.  Available: the owner of its group it is
        #: parked with, or None when it is in the queue's shared levels.
        self.consumer: Consumer | None = None
        self.excluded: set[int] | None = None
        self.queue: Queue | None = None
        self.stored = False
        self.spilled = False
        #: When a consumer last acquired it (ms, the broker's clock; 0: never).
        self.acquired_at = 0

    def __repr__(self) -> str:
        return f"<Entry seq={self.seq} prio={self.priority} count={self.delivery_count}>"

    def __lt__(self, other: Entry) -> bool:
        return self.seq < other.seq


class Consumer(Protocol):
    """What a queue needs of a consumer (the broker's sending link)."""

    id: int
    """Unique among the consumers of the broker."""

    @property
    def credit(self) -> int:
        """How many more messages it may be given now."""

    browse: bool
    """Browsers get copies of every message and acquire none."""
    browse_cursor: int
    """Browsers: the ``seq`` of the last message they were shown."""

    def accepts(self, entry: Entry) -> bool:
        """Whether the consumer's selector matches (``True`` without a selector)."""

    def deliver(self, entry: Entry) -> None:
        """Send ``entry`` now (its credit goes down by one)."""


class QueueHooks(Protocol):
    """How a queue reaches the rest of the broker."""

    def entry_removed(self, queue: Queue, entry: Entry) -> None:
        """A message left the queue for good (accepted, dead-lettered, expired)."""

    def delivery_count_changed(self, queue: Queue, entry: Entry) -> None:
        """A message is back in the queue with a higher delivery count."""

    def dead_letter(self, queue: Queue, entry: Entry, condition: str, description: str) -> None:
        """A message was rejected or ran out of delivery attempts."""

    def expired(self, queue: Queue, entry: Entry) -> None:
        """A message's time to live ran out."""

    def room_available(self, queue: Queue) -> None:
        """Producers may get credit for the queue again (see :meth:`Queue.want_room`)."""

    def page_in(self, queue: Queue) -> None:
        """Dispatch reached a paged entry: load the next bodies of :attr:`Queue.paged`
        (asynchronously), then dispatch the queue again."""
