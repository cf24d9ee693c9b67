"""Queues: where messages wait for consumers.

A :class:`Queue` holds :class:`Entry` objects — one per message, keeping the
message's encoded bytes exactly as they arrived plus the few fields the
broker acts on — in ten priority levels, each in arrival (``seq``) order.
Consumers (the broker's outgoing links, seen through the small
:class:`Consumer` protocol) take messages within their credit, round-robin
among those with credit.  A message is *acquired* by one consumer until that
consumer settles it:

- accepted: gone for good;
- released, or the consumer went away: back in its place in the queue
  (a consumer that vanished counts as a delivery attempt, as does
  ``modified`` with ``delivery-failed``);
- ``modified`` with ``undeliverable-here``: back, but never again to that
  consumer;
- rejected, or out of delivery attempts: handed to the dead-letter hook.

Expired messages are never delivered: they go to the expiry hook.  Browsing
consumers see every message in order without acquiring any.

Message groups (``group-id``): the first consumer to take a message of a
group *owns* the group until it goes away, and every later message of the
group waits for it, in order, even while it has no credit.  Such messages are
*parked* with their owner (:class:`_Owner`) so that other consumers never
look at them again; when the owner leaves, what it left unsettled and what
waited for it go back to the shared levels in their places, and the next
consumer to take one owns the group.  A message of a group that its owner
will never take (its selector does not match, or it said
``undeliverable-here``) is not held for it: any other consumer may have it,
and the group stays where it is.

The queue never touches the network or the disk itself; the broker's
:class:`QueueHooks` do (store writes, dead-letter routing, waking producers).
:class:`Entry` and the two protocols live in :mod:`.entry`.
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from .entry import ACQUIRED, AVAILABLE, GONE, Consumer, Entry, QueueHooks

if TYPE_CHECKING:
    from ..server.config import QueueSettings
    from .selector import Selector

__all__ = ["ACQUIRED", "AVAILABLE", "GONE", "Consumer", "Entry", "Queue", "QueueHooks"]


def _seq_of(entry: Entry) -> int:
    return entry.seq


#: What a scan returns when a paged entry stops dispatch until its body is loaded.
_WAIT: Final = Entry(0, None, None)
#: A seq after every real one (no bound for a scan).
_NO_BOUND: Final = 1 << 63


def _insert(level: deque[Entry], entry: Entry) -> None:
    """Put ``entry`` in its ``seq`` place in ``level`` (at the end, unless it came back)."""
    if level and level[-1].seq > entry.seq:
        # A message coming back: normally near the head.
        index = 0
        for index, other in enumerate(level):  # noqa: B007
            if other.seq > entry.seq:
                break
        level.insert(index, entry)
    else:
        level.append(entry)


class _Expiring(NamedTuple):
    """A queue's expiry heap item: ordered by expiry, then by arrival."""

    expiry: int
    seq: int
    entry: Entry


class _Owner:
    """A consumer that owns message groups: their ids, and their available messages that
    wait for it (parked), by priority level in ``seq`` order.  Made once per consumer, on
    the first group it gets, and kept while it stays: nothing is allocated per message."""

    __slots__ = ("count", "groups", "levels", "top")

    def __init__(self) -> None:
        self.groups: list[str] = []
        self.levels: list[deque[Entry]] = [deque() for _ in range(10)]
        self.count = 0  # entries in levels
        self.top = -1  # highest level that may be non-empty


class Queue:
    """A FIFO with priorities, competing consumers, browsing and redelivery."""

    def __init__(self, name: str, settings: QueueSettings, hooks: QueueHooks) -> None:
        self.name = name
        #: The address it belongs to (the broker core sets it).
        self.address: str | None = None
        self.settings = settings
        # The limits read per message, as plain ints (set by :meth:`configure`).
        self._max_messages = -1
        self._max_bytes = -1
        #: Bytes of message bodies held in memory; past ``memory_limit`` new ones are paged.
        self.memory_limit = 1 << 62
        #: ``default_ttl`` in ms, 0 for none.
        self.default_ttl_ms = 0
        self.configure(settings)
        self.hooks = hooks
        self.durable_subscription = False
        self._levels: list[deque[Entry]] = [deque() for _ in range(10)]
        self._top = -1  # highest level that may be non-empty
        self._all: dict[int, Entry] = {}  # every entry still in the queue, in seq order
        self._expiring: list[_Expiring] = []
        self._expiring_live = 0  # entries in _expiring still in the queue
        self._consumers: list[Consumer] = []
        self._browsers: list[Consumer] = []
        #: While browsers are attached: entries in seq order, GONE ones not yet dropped.
        self._order: list[Entry] | None = None
        #: Group id -> the consumer that owns the group.
        self._groups: dict[str, Consumer] = {}
        #: Consumer id -> its groups and the messages parked for it.
        self._owners: dict[int, _Owner] = {}
        self._rr = 0
        self._last_seq = 0
        self.available = 0
        self.bytes = 0
        self.enqueued_total = 0
        self.enqueued_bytes = 0
        self.acknowledged_total = 0
        self.expired_total = 0
        self.dead_lettered_total = 0
        #: Messages sent to consumers and browsers (redeliveries too).
        self.delivered_total = 0
        #: Consumers' outcomes other than accepted (counted by the consumer links).
        self.rejected_total = 0
        self.released_total = 0
        self.modified_total = 0
        #: Times a producer was left without credit because the queue had no room.
        self.credit_stalls_total = 0
        #: Credit producers hold for this queue (see :meth:`credit_room`).
        self.reserved = 0
        #: Someone waits for :meth:`credit_room` to become positive.
        self.room_wanted = False
        #: A subscription's selector, applied when messages are routed here.
        self.filter: Selector | None = None
        self.filter_text: str | None = None
        #: Bytes of message bodies held in memory (see ``memory_limit``).
        self.resident = 0
        #: Entries whose bodies are paged, in the order they were paged (seq order).
        self.paged: deque[Entry] = deque()
        #: A page-in is under way.
        self.loading = False

    # --- state --------------------------------------------------------------------------------

    def configure(self, settings: QueueSettings) -> None:
        """Take new policies (limits, dead letters, TTL), in force at once.  The limits
        each message is checked against are kept as plain fields: reading them from the
        settings model is a generic attribute lookup each time."""
        self.settings = settings
        self._max_messages = -1 if settings.max_messages is None else settings.max_messages
        self._max_bytes = -1 if settings.max_bytes is None else settings.max_bytes
        self.memory_limit = settings.memory_limit_bytes or (1 << 62)
        ttl = settings.default_ttl
        self.default_ttl_ms = int(ttl * 1000) if ttl else 0

    def next_seq(self) -> int:
        """A new sequence number for a message entering this queue."""
        self._last_seq = seq = self._last_seq + 1
        return seq

    def restore_seq(self, last: int) -> None:
        """After recovery: continue numbering after ``last``."""
        self._last_seq = last

    @property
    def depth(self) -> int:
        """Messages in the queue, acquired ones included."""
        return len(self._all)

    @property
    def consumer_count(self) -> int:
        return len(self._consumers) + len(self._browsers)

    @property
    def consumers(self) -> list[Consumer]:
        """Its consumers and browsers."""
        return [*self._consumers, *self._browsers]

    def has_room(self, size: int = 0) -> bool:
        """Whether the queue's limits allow another message (of ``size`` bytes)."""
        limit = self._max_messages
        if limit >= 0 and len(self._all) >= limit:
            return False
        limit = self._max_bytes
        return limit < 0 or self.bytes + size <= limit

    def credit_room(self) -> int | None:
        """How many more messages producers may be given credit for now, or ``None`` when
        no limit bounds credit (no limits, or the ``reject`` policy).

        Credit already held by producers (:attr:`reserved`) counts as used, so
        the queue never holds more than ``max_messages``.  A ``max_bytes``
        limit is turned into a count with the average message size so far:
        that bound is approximate (within one credit window of messages).
        """
        s = self.settings
        if s.full_policy != "block":
            return None
        room = None
        if s.max_messages is not None:
            room = s.max_messages - len(self._all) - self.reserved
        if s.max_bytes is not None:
            free = s.max_bytes - self.bytes
            average = self.enqueued_bytes // self.enqueued_total if self.enqueued_total else 0
            fits = (free // average if average else 1) if free > 0 else 0
            by_bytes = fits - self.reserved
            room = by_bytes if room is None or by_bytes < room else room
        return room

    def want_room(self) -> None:
        """Call the ``room_available`` hook once :meth:`credit_room` is positive again
        (a producer is waiting for credit: counted as a credit stall)."""
        self.room_wanted = True
        self.credit_stalls_total += 1

    def room_changed(self) -> None:
        """Messages or reservations went away: wake whoever waits for room, if any now."""
        if self.room_wanted:
            room = self.credit_room()
            if room is None or room > 0:
                self.room_wanted = False
                self.hooks.room_available(self)

    def entries(self) -> Iterator[Entry]:
        """Every message in the queue, in arrival order."""
        return iter(list(self._all.values()))

    # --- messages in ----------------------------------------------------------------------------

    def enqueue(self, entry: Entry) -> None:
        """Add a message (its ``seq`` from :meth:`next_seq`) and offer it to consumers."""
        entry.queue = self
        self._all[entry.seq] = entry
        self.bytes += entry.size
        if entry.data is not None:
            self.resident += entry.size
        self.enqueued_total += 1
        self.enqueued_bytes += entry.size
        if entry.expiry is not None:
            heapq.heappush(self._expiring, _Expiring(entry.expiry, entry.seq, entry))
            self._expiring_live += 1
        self._make_available(entry)
        order = self._order
        if order is not None:
            order.append(entry)
            if len(order) > 2 * len(self._all) + 64:
                self._order = [e for e in order if e.state != GONE]

    def _make_available(self, entry: Entry) -> None:
        entry.state = AVAILABLE
        entry.consumer = None
        self.available += 1
        if entry.group_id is not None and self._groups and entry.data is not None:
            owner = self._groups.get(entry.group_id)
            if owner is not None and self._owner_takes(owner, entry):
                self._park(owner, entry)
                return
        _insert(self._levels[entry.priority], entry)
        if entry.priority > self._top:
            self._top = entry.priority

    def _unlink(self, entry: Entry) -> None:
        """Take an available entry out of the level that holds it (shared, or its owner's)."""
        owner = entry.consumer
        if owner is None:
            self._levels[entry.priority].remove(entry)
        else:
            held = self._owners[owner.id]
            held.levels[entry.priority].remove(entry)
            held.count -= 1
            entry.consumer = None
        self.available -= 1

    # --- groups ---------------------------------------------------------------------------------

    @staticmethod
    def _owner_takes(owner: Consumer, entry: Entry) -> bool:
        """Whether the owner of ``entry``'s group would ever take it (else anyone may)."""
        if entry.excluded is not None and owner.id in entry.excluded:
            return False
        return owner.accepts(entry)

    def _own(self, consumer: Consumer, group: str) -> None:
        self._groups[group] = consumer
        owner = self._owners.get(consumer.id)
        if owner is None:
            owner = self._owners[consumer.id] = _Owner()
        owner.groups.append(group)

    def _park(self, consumer: Consumer, entry: Entry) -> None:
        """Hold an available ``entry`` for the owner of its group (which has an _Owner)."""
        owner = self._owners[consumer.id]
        _insert(owner.levels[entry.priority], entry)
        owner.count += 1
        if entry.priority > owner.top:
            owner.top = entry.priority
        entry.consumer = consumer

    def _disown(self, consumer: Consumer) -> None:
        """``consumer`` left: its groups are free and what was parked for it goes back to the
        shared levels, each message in its place."""
        owner = self._owners.pop(consumer.id, None)
        if owner is None:
            return
        for group in owner.groups:
            del self._groups[group]
        if not owner.count:
            return
        levels = self._levels
        for level_no, parked in enumerate(owner.levels):
            if parked:
                for entry in parked:
                    entry.consumer = None
                levels[level_no] = deque(heapq.merge(levels[level_no], parked))
                if level_no > self._top:
                    self._top = level_no

    # --- consumers ------------------------------------------------------------------------------

    def add_consumer(self, consumer: Consumer) -> None:
        if consumer.browse:
            if self._order is None:
                # Entries are added in seq order, so the dict's order is the queue's.
                self._order = list(self._all.values())
            self._browsers.append(consumer)
        else:
            self._consumers.append(consumer)

    def remove_consumer(self, consumer: Consumer, held: list[Entry]) -> None:
        """Forget a consumer; ``held`` are the entries it had not settled: they come back
        (before any later message of their group)."""
        if self._owners:
            self._disown(consumer)
        if consumer.browse:
            if consumer in self._browsers:
                self._browsers.remove(consumer)
                if not self._browsers:
                    self._order = None
            return
        if consumer in self._consumers:
            self._consumers.remove(consumer)
        for entry in sorted(held):
            if entry.state == ACQUIRED and entry.consumer is consumer:
                self.release(entry, delivery_failed=True)

    # --- dispatch -------------------------------------------------------------------------------

    def dispatch(self, now_ms: int) -> int:
        """Give available messages to consumers with credit; return how many were sent."""
        sent = 0
        if self._browsers:
            sent += self._dispatch_browsers(now_ms)
        consumers = self._consumers
        if not consumers or not self.available:
            self.delivered_total += sent
            return sent
        count = len(consumers)
        idle = 0  # consumers in a row that could take nothing
        while self.available and idle < count:
            if self._rr >= count:
                self._rr = 0
            consumer = consumers[self._rr]
            self._rr += 1
            if consumer.credit <= 0:
                idle += 1
                continue
            entry = self._take_for(consumer, now_ms)
            if entry is None:
                idle += 1
                continue
            idle = 0
            entry.state = ACQUIRED
            entry.consumer = consumer
            entry.acquired_at = now_ms
            consumer.deliver(entry)
            sent += 1
        self.delivered_total += sent
        return sent

    def _take_for(self, consumer: Consumer, now_ms: int) -> Entry | None:
        """Remove and return the first available entry ``consumer`` may have."""
        if self._owners:
            owner = self._owners.get(consumer.id)
            if owner is not None and owner.count:
                return self._take_with_parked(consumer, owner, now_ms)
        levels = self._levels
        level_no = self._top
        while level_no >= 0:
            level = levels[level_no]
            if not level:
                if level_no == self._top:
                    self._top -= 1
                level_no -= 1
                continue
            head = level[0]
            # Fast path: a plain message at the head for any consumer.
            if (
                head.group_id is None
                and head.data is not None
                and head.excluded is None
                and (head.expiry is None or head.expiry > now_ms)
                and consumer.accepts(head)
            ):
                level.popleft()
                self.available -= 1
                return head
            entry = self._scan(level, consumer, now_ms, _NO_BOUND)
            if entry is not None:
                return None if entry is _WAIT else entry
            level_no -= 1
        return None

    def _take_with_parked(self, consumer: Consumer, owner: _Owner, now_ms: int) -> Entry | None:
        """:meth:`_take_for` a consumer that has messages parked for it: level by level, the
        first of its parked messages, unless a shared one it may have came before it."""
        levels = self._levels
        level_no = self._top if self._top > owner.top else owner.top
        while level_no >= 0:
            parked = owner.levels[level_no]
            level = levels[level_no]
            while parked:
                head = parked[0]
                if level and level[0].seq < head.seq:
                    entry = self._scan(level, consumer, now_ms, head.seq)
                    if entry is not None:
                        return None if entry is _WAIT else entry
                if head.data is None:
                    if not self.loading:
                        self.hooks.page_in(self)
                    return None
                parked.popleft()
                owner.count -= 1
                self.available -= 1
                head.consumer = None
                if head.expiry is not None and head.expiry <= now_ms:
                    self._expire(head)
                    continue
                return head
            if level_no == owner.top:
                owner.top -= 1
            if level:
                entry = self._scan(level, consumer, now_ms, _NO_BOUND)
                if entry is not None:
                    return None if entry is _WAIT else entry
            level_no -= 1
        return None

    def _scan(
        self, level: deque[Entry], consumer: Consumer, now_ms: int, before: int
    ) -> Entry | None:
        """Remove and return the first entry of the shared ``level`` (of those before seq
        ``before``) that ``consumer`` may have; :data:`_WAIT` if a paged one comes first.

        On the way expired entries go, and entries of groups that other consumers own are
        parked with their owners: each is passed over once, not by every later scan.
        """
        groups = self._groups
        index = 0
        while index < len(level):
            entry = level[index]
            if entry.seq >= before:
                return None
            if entry.data is None:
                # Paged: nothing further in this queue goes out before it is loaded.
                if not self.loading:
                    self.hooks.page_in(self)
                return _WAIT
            if entry.expiry is not None and entry.expiry <= now_ms:
                del level[index]
                self.available -= 1
                self._expire(entry)
                continue
            group = entry.group_id
            owner = groups.get(group) if group is not None and groups else None
            if owner is not None and owner is not consumer and self._owner_takes(owner, entry):
                del level[index]
                self._park(owner, entry)
                continue
            if (entry.excluded is None or consumer.id not in entry.excluded) and consumer.accepts(
                entry
            ):
                del level[index]
                self.available -= 1
                if group is not None and owner is None:
                    self._own(consumer, group)
                return entry
            index += 1
        return None

    def _dispatch_browsers(self, now_ms: int) -> int:
        sent = 0
        order = self._order
        if order is None:
            return 0
        for browser in self._browsers:
            if browser.credit <= 0:
                continue
            # Start after the last message this browser saw: no rescan of the whole queue.
            index = bisect.bisect_right(order, browser.browse_cursor, key=_seq_of)
            while index < len(order) and browser.credit > 0:
                entry = order[index]
                index += 1
                if entry.state == GONE:
                    continue
                if entry.data is None:
                    if not self.loading:
                        self.hooks.page_in(self)
                    break
                browser.browse_cursor = entry.seq
                if entry.expiry is not None and entry.expiry <= now_ms:
                    continue
                if browser.accepts(entry):
                    browser.deliver(entry)
                    sent += 1
        return sent

    # --- outcomes -------------------------------------------------------------------------------

    def accept(self, entry: Entry) -> None:
        """The consumer accepted the message: it leaves the queue."""
        if entry.state == GONE:
            return
        self.acknowledged_total += 1
        self._remove(entry)

    def release(
        self, entry: Entry, *, delivery_failed: bool = False, undeliverable_here: bool = False
    ) -> None:
        """Put an acquired message back (``released``/``modified``, or its consumer left)."""
        if entry.state != ACQUIRED:
            return
        consumer = entry.consumer
        if undeliverable_here and consumer is not None:
            if entry.excluded is None:
                entry.excluded = set()
            entry.excluded.add(consumer.id)
        if delivery_failed:
            entry.delivery_count += 1
            limit = self.settings.max_delivery_attempts
            if limit and entry.delivery_count >= limit:
                self._remove(entry)
                self.hooks.dead_letter(
                    self,
                    entry,
                    "petrel:delivery-attempts-exceeded",
                    f"delivered {entry.delivery_count} times without being accepted",
                )
                return
            self.hooks.delivery_count_changed(self, entry)
        # It was acquired: the header it goes out with next says first-acquirer false.
        entry.header_count = -1
        self._make_available(entry)

    def reject(self, entry: Entry, condition: str, description: str) -> None:
        """The consumer rejected the message: it goes to the dead-letter hook."""
        if entry.state == GONE:
            return
        self._remove(entry)
        self.hooks.dead_letter(self, entry, condition, description)

    def _remove(self, entry: Entry) -> None:
        if entry.state == AVAILABLE:
            self._unlink(entry)
        entry.state = GONE
        entry.consumer = None
        del self._all[entry.seq]
        self.bytes -= entry.size
        if entry.data is not None:
            self.resident -= entry.size
        if entry.expiry is not None:
            self._expiry_gone()
        self.hooks.entry_removed(self, entry)
        if self.room_wanted:
            self.room_changed()

    def remove(self, entry: Entry) -> None:
        """Take a message out of the queue (management, or it was moved elsewhere)."""
        if entry.state != GONE:
            self._remove(entry)

    # --- paging -------------------------------------------------------------------------------

    def page(self, entry: Entry) -> None:
        """``entry``'s body is now kept in the store only (the caller saw to that): drop it."""
        entry.data = None
        entry.view = None
        self.resident -= entry.size
        self.paged.append(entry)

    def next_to_load(self, max_count: int, max_bytes: int) -> list[Entry]:
        """The next paged entries to load (in seq order), at most ``max_count`` of them and
        about ``max_bytes``; entries that left the queue meanwhile are skipped."""
        batch: list[Entry] = []
        nbytes = 0
        paged = self.paged
        while paged and len(batch) < max_count and nbytes < max_bytes:
            entry = paged.popleft()
            if entry.state != GONE and entry.data is None:
                batch.append(entry)
                nbytes += entry.size
        return batch

    def loaded(self, entry: Entry, data: bytes) -> None:
        """A paged body is back in memory."""
        if entry.state != GONE and entry.data is None:
            entry.data = data
            self.resident += entry.size

    def purge(self) -> int:
        """Remove every available message; return how many."""
        count = 0
        for levels in [self._levels, *(owner.levels for owner in self._owners.values())]:
            for level in levels:
                while level:
                    self._remove(level[0])
                    count += 1
        return count

    # --- time -----------------------------------------------------------------------------------

    def expire(self, now_ms: int) -> int:
        """Expire every available message whose time is up; return how many."""
        count = 0
        heap = self._expiring
        with_consumers = []
        while heap and heap[0].expiry <= now_ms:
            item = heapq.heappop(heap)
            entry = item.entry
            if entry.state == AVAILABLE:
                self._unlink(entry)
                self._expire(entry)
                count += 1
            elif entry.state == ACQUIRED:
                # With a consumer now: it expires if it comes back (checked again then).
                with_consumers.append(item)
        for item in with_consumers:
            heapq.heappush(heap, item)
        return count

    def _expire(self, entry: Entry) -> None:
        entry.state = GONE
        del self._all[entry.seq]
        self.bytes -= entry.size
        if entry.data is not None:
            self.resident -= entry.size
        self._expiry_gone()
        # The hook first: a paged body must still be in the store when it forwards it.
        self.hooks.expired(self, entry)
        self.hooks.entry_removed(self, entry)
        if self.room_wanted:
            self.room_changed()

    def _expiry_gone(self) -> None:
        """An entry with an expiry left the queue.  Its heap item stays until its time comes,
        holding the message; once most items are such leftovers (messages consumed long
        before their TTL), the heap is rebuilt, so memory follows what the queue holds."""
        self._expiring_live -= 1
        heap = self._expiring
        if len(heap) > 2 * self._expiring_live + 64:
            self._expiring = [item for item in heap if item.entry.state != GONE]
            heapq.heapify(self._expiring)

    def next_expiry(self) -> int | None:
        """When the next message may expire (ms since the epoch), if any has a TTL."""
        return self._expiring[0].expiry if self._expiring else None

    # --- introspection --------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Figures for management and metrics."""
        return {
            "name": self.name,
            "depth": self.depth,
            "available": self.available,
            "bytes": self.bytes,
            "resident_bytes": self.resident,
            "paged": sum(1 for e in self.paged if e.data is None and e.state != GONE),
            "consumers": self.consumer_count,
            "enqueued": self.enqueued_total,
            "acknowledged": self.acknowledged_total,
        }

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} depth={self.depth} consumers={self.consumer_count}>"
