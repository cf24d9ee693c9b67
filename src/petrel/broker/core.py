"""The broker's address space: addresses, queues, routing, and the store behind them.

:class:`BrokerCore` knows nothing of connections or frames.  The connection
layer hands it encoded messages (:meth:`BrokerCore.publish`) and consumers
(:meth:`BrokerCore.subscribe`); it keeps the queues, writes durable messages
through the :class:`~petrel.store.MessageStore`, dead-letters and expires
messages, and tells producers when a full queue has room again.

Dispatch is batched: publishing marks a queue *dirty*, and all dirty queues
are dispatched once at the end of the event-loop turn, so a burst of
incoming transfers becomes one burst of outgoing ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, Final

from ..errors import AmqpError, Condition, DecodeError
from ..message import MessageView
from ..server.config import BrokerSettings, QueueSettings
from ..store import MessageStore, QueueRecord, StoredMessage
from ..tracing import server_tracing
from ..types import Symbol
from .lookup import selector_lookup
from .paging import Pager
from .queues import Entry, Queue
from .selector import Lookup, Selector, SelectorError, compile_selector

__all__ = ["DYNAMIC_PREFIX", "AddressInfo", "BrokerCore"]

log = logging.getLogger("petrel.broker")

ANYCAST: Final = "anycast"
MULTICAST: Final = "multicast"

DEAD_LETTER_REASON: Final = Symbol("x-opt-petrel-dead-letter-reason")
DEAD_LETTER_DESCRIPTION: Final = Symbol("x-opt-petrel-dead-letter-description")
ORIGINAL_QUEUE: Final = Symbol("x-opt-petrel-original-queue")

#: Addresses of dynamic nodes start with this; they are never auto-created, so a reply
#: to a temporary queue that has gone is refused rather than kept forever.
DYNAMIC_PREFIX: Final = "dynamic."
#: The key under which a subscription's selector is kept in its stored queue settings.
_SELECTOR_KEY: Final = "selector"
#: Kept with a queue's stored settings: its address was declared (config, management).
_DECLARED_KEY: Final = "declared"
#: A stored record that holds no queue: it declares a multicast address (a topic made by
#: management), under this name prefix.
_ADDRESS_RECORD: Final = "$address:"


class AddressInfo:
    """An address: one queue (anycast) or a set of subscription queues (multicast)."""

    __slots__ = ("declared", "name", "owner", "queue", "routing", "subscriptions", "temporary")

    def __init__(self, name: str, routing: str, *, declared: bool = False) -> None:
        self.name = name
        self.routing = routing
        self.declared = declared
        self.temporary = False
        #: For a dynamic node: the connection it was made for, the only one that may
        #: consume from it (others may send to it: it is a reply address).
        self.owner: object | None = None
        self.queue: Queue | None = None
        self.subscriptions: dict[str, Queue] = {}

    def __repr__(self) -> str:
        return f"<Address {self.name!r} {self.routing}>"


class BrokerCore:
    """Addresses, queues and the store: everything but the network."""

    def __init__(
        self,
        settings: BrokerSettings,
        store: MessageStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.addresses: dict[str, AddressInfo] = {}
        self.queues: dict[str, Queue] = {}
        self._queue_settings = {q.name: q for q in settings.queues}
        self._dirty: set[Queue] = set()
        self._dispatch_handle: asyncio.Handle | None = None
        self._room_waiters: dict[Queue, list[Callable[[], None]]] = {}
        self._expiry_task: asyncio.Task[None] | None = None
        self.tracing = server_tracing(settings.tracing.enabled, settings.container_id)
        self.dead_lettered_total = 0
        self.expired_total = 0
        #: What deleted queues had counted (dynamic ones aside): the broker's totals are
        #: these plus the live queues'.
        self.retired_enqueued = 0
        self.retired_acknowledged = 0
        #: Expired paged entries whose bodies are being loaded to be forwarded.
        self._forwarding: set[Entry] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Moves bodies between memory and the store for queues over their memory limit.
        self.paging = Pager(self)
        #: Set when the broker must stop: the store failed or lost the live lock.
        self.failed = asyncio.Event()
        #: Why :attr:`failed` was set (one line).
        self.failure: str | None = None

    def fail(self, reason: str) -> None:
        """The broker cannot go on safely (the store failed, or another broker is live):
        log ``reason`` and set :attr:`failed`; whoever runs the broker stops it."""
        if self.failure is None:
            self.failure = reason
            log.error("%s; stopping", reason)
            self.failed.set()

    def commit(self) -> asyncio.Future[None]:
        """``store.commit()``, watched: a store that cannot write stops the broker (the
        producers of the batch are rejected by whoever waits on the future)."""
        future = self.store.commit()
        future.add_done_callback(self._check_commit)
        return future

    def store_failed(self, error: BaseException) -> None:
        """A write the broker waited for failed: the broker stops."""
        reason = error.description if isinstance(error, AmqpError) else str(error)
        self.fail(f"the store failed: {reason}")

    def _check_commit(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled():
            error = future.exception()
            if error is not None:
                self.store_failed(error)

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, wait until this broker is the live one (a store shared by a
        live/backup pair), recover what the store holds, declare the configured addresses."""
        store = self.store
        await store.open()
        lock = asyncio.ensure_future(store.acquire_live_lock())
        try:
            done, _ = await asyncio.wait({lock}, timeout=0.5)
            if not done:  # a backup: said once, then it waits (without listening)
                log.info("waiting to become live")
                await lock
                log.info("live")
            lock.result()
        except BaseException:
            lock.cancel()
            raise
        for record in await self.store.load_queues():
            await self._recover_queue(record)
        for address in self.settings.addresses:
            info = self._address(address.name, address.routing, declared=True)
            if info.routing == ANYCAST and info.queue is None:
                self._create_anycast_queue(info)
        for queue_settings in self.settings.queues:
            info = self._address(
                queue_settings.address or queue_settings.name, queue_settings.routing, declared=True
            )
            if info.routing == ANYCAST and info.queue is None:
                self._create_anycast_queue(info, queue_settings.name)
        self._expiry_task = asyncio.get_running_loop().create_task(self._expiry_loop())

    async def stop(self) -> None:
        """Stop timers and close the store (pending writes are finished first)."""
        if self._expiry_task is not None:
            self._expiry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry_task
            self._expiry_task = None
        if self._dispatch_handle is not None:
            self._dispatch_handle.cancel()
            self._dispatch_handle = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.store.close()

    async def _recover_queue(self, record: QueueRecord) -> None:
        saved = dict(record.settings)
        declared = bool(saved.pop(_DECLARED_KEY, False))
        info = self._address(record.address, record.routing, declared=declared)
        if record.name.startswith(_ADDRESS_RECORD):
            return  # a topic declared by management: the address is all there is
        selector_text = saved.pop(_SELECTOR_KEY, None)
        settings = self._settings_for(record.name, saved)
        queue = Queue(record.name, settings, self)
        queue.address = record.address
        queue.durable_subscription = record.durable_subscription
        if selector_text:
            try:
                queue.filter = compile_selector(selector_text)
                queue.filter_text = selector_text
            except SelectorError as exc:
                log.warning("subscription %r: stored selector unusable: %s", record.name, exc)
        self.queues[record.name] = queue
        if record.routing == ANYCAST:
            info.queue = queue
        else:
            info.subscriptions[record.name] = queue
        count = await self.paging.recover(queue)
        if count:
            log.info("recovered %d messages in queue %r", count, record.name)

    # --- addresses and queues -------------------------------------------------------------------

    def _address(self, name: str, routing: str, *, declared: bool) -> AddressInfo:
        info = self.addresses.get(name)
        if info is None:
            info = AddressInfo(name, routing, declared=declared)
            self.addresses[name] = info
        elif declared:
            info.declared = True
        return info

    def _settings_for(self, name: str, stored: dict[str, Any] | None = None) -> QueueSettings:
        configured = self._queue_settings.get(name)
        if configured is not None:
            return configured
        if stored:
            try:
                return QueueSettings.model_validate(stored)
            except ValueError:
                log.warning("queue %r: stored settings unreadable; using defaults", name)
        return self.settings.queue_defaults.model_copy(update={"name": name})

    def _create_anycast_queue(self, info: AddressInfo, name: str | None = None) -> Queue:
        name = name or info.name
        settings = self._settings_for(name)
        queue = Queue(name, settings, self)
        queue.address = info.name
        self.queues[name] = queue
        info.queue = queue
        if not info.temporary:
            self._save_record(info, queue)
        return queue

    def _save_record(self, info: AddressInfo, queue: Queue) -> None:
        """Write ``queue``'s record to the store: its address, routing and settings (with
        its selector, and whether the address was declared)."""
        stored = queue.settings.model_dump()
        if queue.filter_text:
            stored[_SELECTOR_KEY] = queue.filter_text
        if info.declared:
            stored[_DECLARED_KEY] = True
        record = QueueRecord(
            queue.name,
            info.name,
            info.routing,
            durable_subscription=queue.durable_subscription,
            settings=stored,
        )
        self.store.save_queue(record)

    def lookup(self, name: str) -> AddressInfo | None:
        """The address called ``name``, if it exists."""
        return self.addresses.get(name)

    def resolve(self, name: str, routing_hint: str | None = None) -> AddressInfo:
        """The address called ``name``, created if auto-create is on.

        ``routing_hint`` (from the terminus capabilities ``queue``/``topic``)
        picks the routing of a new address.  Raises an
        :class:`~petrel.errors.AmqpError` with ``amqp:not-found`` when the
        address does not exist and may not be created.
        """
        info = self.addresses.get(name)
        if info is not None:
            return info
        if not self.settings.auto_create or name.startswith(DYNAMIC_PREFIX):
            raise AmqpError(f"no such address: {name!r}", condition=Condition.NOT_FOUND)
        routing = routing_hint or ANYCAST
        info = self._address(name, routing, declared=False)
        if routing == ANYCAST:
            self._create_anycast_queue(info)
        log.info("auto-created %s address %r", routing, name)
        return info

    def create_temporary_queue(self, owner: object) -> Queue:
        """A dynamic node: a queue with a new address, that lives as long as the link that
        asked for it (the caller deletes it); only ``owner`` (a connection) consumes from
        it."""
        info = self._address(f"{DYNAMIC_PREFIX}{uuid.uuid4()}", ANYCAST, declared=False)
        info.temporary = True
        info.owner = owner
        return self._create_anycast_queue(info)

    def subscribe(
        self,
        info: AddressInfo,
        name: str,
        *,
        durable: bool,
        selector: Selector | None = None,
        selector_text: str | None = None,
    ) -> Queue:
        """The subscription queue ``name`` of a multicast address, created if needed.

        A subscription's ``selector`` is applied when messages are routed, so
        what it does not match never enters the queue.  Subscribing again with
        another selector replaces an idle subscription (JMS: a changed durable
        subscription is a new one) and is refused while it has consumers.
        """
        queue = info.subscriptions.get(name)
        if queue is not None and queue.filter_text != selector_text:
            if queue.consumer_count:
                raise AmqpError(
                    f"subscription {name!r} is in use with another selector",
                    condition=Condition.PRECONDITION_FAILED,
                )
            self.delete_queue(queue)
            queue = None
        if queue is None:
            settings = self._settings_for(name)
            queue = Queue(name, settings, self)
            queue.address = info.name
            queue.durable_subscription = durable
            queue.filter = selector
            queue.filter_text = selector_text
            self.queues[name] = queue
            info.subscriptions[name] = queue
            if durable:
                self._save_record(info, queue)
        return queue

    # --- management -------------------------------------------------------------------------

    def create_queue(self, settings: QueueSettings) -> Queue:
        """A queue declared at runtime (management), kept exactly as a ``[[queues]]`` entry
        would be: its settings are stored with it, so it comes back after a restart.
        Raises ``amqp:precondition-failed`` when its address is a topic or already has
        a queue."""
        if settings.routing != ANYCAST:
            raise AmqpError(
                "a queue is anycast; declare a topic as an address with routing multicast",
                condition=Condition.PRECONDITION_FAILED,
            )
        address = settings.address or settings.name
        if settings.name in self.queues:
            raise AmqpError(
                f"queue {settings.name!r} exists", condition=Condition.PRECONDITION_FAILED
            )
        existing = self.addresses.get(address)
        if existing is not None and (existing.routing != ANYCAST or existing.queue is not None):
            raise AmqpError(
                f"address {address!r} has a {existing.routing} node already",
                condition=Condition.PRECONDITION_FAILED,
            )
        self._queue_settings[settings.name] = settings
        info = self._address(address, ANYCAST, declared=True)
        return self._create_anycast_queue(info, settings.name)

    def update_queue(self, queue: Queue, settings: QueueSettings) -> None:
        """New policies for ``queue`` (limits, dead letters, TTL), in force at once and kept
        with it in the store."""
        queue.configure(settings)
        self._queue_settings[queue.name] = settings
        info = self.address_of(queue)
        if info is not None and _is_stored(info, queue):
            self._save_record(info, queue)
        self.mark_dirty(queue)
        self.room_available(queue)

    def declare_address(self, name: str, routing: str) -> AddressInfo:
        """An address declared at runtime; an anycast one gets its queue at once.  Raises
        ``amqp:precondition-failed`` if it exists."""
        if name in self.addresses:
            raise AmqpError(f"address {name!r} exists", condition=Condition.PRECONDITION_FAILED)
        info = self._address(name, routing, declared=True)
        if routing == ANYCAST:
            self._create_anycast_queue(info)
        else:
            record = QueueRecord(
                f"{_ADDRESS_RECORD}{name}", name, MULTICAST, settings={_DECLARED_KEY: True}
            )
            self.store.save_queue(record)
        return info

    def remove_address(self, info: AddressInfo) -> list[Queue]:
        """Forget ``info`` and delete its queue or subscriptions (and their messages); the
        queues deleted, whose consumers the caller detaches."""
        queues = [q for q in (info.queue, *info.subscriptions.values()) if q is not None]
        for queue in queues:
            self.delete_queue(queue)
            self._queue_settings.pop(queue.name, None)
        if info.routing == MULTICAST and info.declared:
            self.store.delete_queue(f"{_ADDRESS_RECORD}{info.name}")
        self.addresses.pop(info.name, None)
        return queues

    def address_of(self, queue: Queue) -> AddressInfo | None:
        """The address ``queue`` belongs to (``None`` once it was deleted)."""
        info = self.addresses.get(queue.address) if queue.address is not None else None
        if info is not None and (
            info.queue is queue or info.subscriptions.get(queue.name) is queue
        ):
            return info
        return None

    def delete_queue(self, queue: Queue) -> None:
        """Remove a queue, its messages and its record in the store."""
        if self.queues.get(queue.name) is not queue:
            return
        info = self.address_of(queue)
        recorded = info is not None and _is_stored(info, queue)
        del self.queues[queue.name]
        if info is not None:
            if not info.temporary:  # a dynamic node's traffic is not the broker's totals'
                self.retired_enqueued += queue.enqueued_total
                self.retired_acknowledged += queue.acknowledged_total
            if info.queue is queue:
                info.queue = None
                if info.temporary:
                    del self.addresses[info.name]
            info.subscriptions.pop(queue.name, None)
        self._dirty.discard(queue)
        # Producers waiting for room in it look again: their other queues may have room.
        for callback in self._room_waiters.pop(queue, ()):
            asyncio.get_running_loop().call_soon(callback)
        if recorded or any(e.stored or e.spilled for e in queue.entries()):
            self.store.delete_queue(queue.name)

    # --- publishing -----------------------------------------------------------------------------

    def targets(self, info: AddressInfo) -> list[Queue]:
        """The queues a message sent to ``info`` lands in (none once a dynamic node is gone)."""
        if info.routing == ANYCAST:
            queue = info.queue
            if queue is None:
                if info.temporary:
                    return []
                queue = self._create_anycast_queue(info)
            return [queue]
        return list(info.subscriptions.values())

    def when_room(self, queues: list[Queue], callback: Callable[[], None]) -> None:
        """Call ``callback`` (soon) once the first of ``queues`` without room for more credit
        has some again (see :meth:`Queue.credit_room`)."""
        for queue in queues:
            room = queue.credit_room()
            if room is not None and room <= 0:
                self._room_waiters.setdefault(queue, []).append(callback)
                queue.want_room()
                return
        asyncio.get_running_loop().call_soon(callback)

    def publish(
        self,
        info: AddressInfo,
        data: bytes,
        *,
        view: MessageView | None = None,
        honour_expiry: bool = True,
        credited: bool = True,
        held: list[Entry] | None = None,
    ) -> bool:
        """Put one encoded message into the queues of ``info``.

        Returns ``True`` when it was written to a durable store: the producer's
        delivery may be settled only once ``store.commit()`` resolves.  With
        ``held``, the entries are made and written to the store but not queued:
        they go into ``held`` for :meth:`enqueue_held` (a transaction's sends, seen
        by consumers only once the commit is on disk).  Raises
        :class:`~petrel.errors.DecodeError` for a message whose sections cannot
        be read, and an ``amqp:resource-limit-exceeded`` error when a queue is
        full under the ``reject`` policy, or under the ``block`` policy for a
        message whose producer was not given credit against the queue's limit
        (``credited`` false: the anonymous relay).
        """
        queues = self.targets(info)
        if not queues:
            if info.temporary:
                raise AmqpError(
                    f"the dynamic node {info.name!r} has gone",
                    condition=Condition.RESOURCE_DELETED,
                )
            return False  # a topic nobody subscribes to
        if view is None:
            view = MessageView(data)
        header = view.header
        if header is None:
            durable, priority, ttl, count = False, 4, None, 0
        else:
            durable = header.durable
            priority = header.priority
            ttl = header.ttl
            count = header.delivery_count
        now_ms = -1  # read from the clock only when a time to live needs it
        expiry = None
        if ttl and honour_expiry:
            now_ms = self.now_ms()
            expiry = now_ms + ttl
        # Only the two properties routing needs are read, not the whole section.
        absolute = view.absolute_expiry_time if honour_expiry else None
        if absolute:
            expiry = int(absolute) if expiry is None else min(expiry, int(absolute))
        group_id = view.group_id
        store = self.store
        stored = False
        size = len(data)
        lookup: Lookup | None = None
        chosen: list[Queue] = []
        for queue in queues:
            selector = queue.filter
            if selector is not None:
                try:
                    if lookup is None:
                        lookup = selector_lookup(view, priority, count)
                    if not selector.matches(lookup):
                        continue
                except DecodeError:
                    continue
            if not queue.has_room(size) and (
                not credited or queue.settings.full_policy == "reject"
            ):
                # Checked for every queue first: a message goes into all of them or none.
                raise AmqpError(
                    f"queue {queue.name!r} is full", condition=Condition.RESOURCE_LIMIT_EXCEEDED
                )
            chosen.append(queue)
        for queue in chosen:
            entry_expiry = expiry
            if entry_expiry is None and queue.default_ttl_ms:
                if now_ms < 0:
                    now_ms = self.now_ms()
                entry_expiry = now_ms + queue.default_ttl_ms
            entry = Entry(
                queue.next_seq(),
                data,
                view,
                priority=priority,
                expiry=entry_expiry,
                durable=durable,
                delivery_count=count,
                group_id=group_id,
            )
            if durable and store.durable:
                store.add(
                    StoredMessage(
                        queue.name, entry.seq, entry.priority, entry_expiry, count, data, size
                    )
                )
                entry.stored = True
                stored = True
            if held is None:
                self._enqueue(queue, entry)
            else:
                entry.queue = queue
                held.append(entry)
        return stored

    def _enqueue(self, queue: Queue, entry: Entry) -> None:
        queue.enqueue(entry)
        if queue.resident > queue.memory_limit:
            self.paging.page_out(queue, entry)
        self.mark_dirty(queue)

    def enqueue_held(self, entries: list[Entry]) -> None:
        """Queue the entries :meth:`publish` held, in order; those of a queue deleted
        meanwhile are dropped, with their rows."""
        queues = self.queues
        for entry in entries:
            queue = entry.queue
            assert queue is not None, "publish sets a held entry's queue"
            if queues.get(queue.name) is queue:
                self._enqueue(queue, entry)
            elif entry.stored:
                self.store.remove(queue.name, entry.seq)

    # --- dispatch -------------------------------------------------------------------------------

    def now_ms(self) -> int:
        """The broker's clock, in ms since the epoch (expiry is absolute time)."""
        return int(self.clock() * 1000)

    def mark_dirty(self, queue: Queue) -> None:
        """Dispatch ``queue`` at the end of this loop turn."""
        self._dirty.add(queue)
        if self._dispatch_handle is None:
            self._dispatch_handle = asyncio.get_running_loop().call_soon(self._dispatch_dirty)

    def _dispatch_dirty(self) -> None:
        self._dispatch_handle = None
        dirty = self._dirty
        self._dirty = set()
        now_ms = self.now_ms()
        for queue in dirty:
            queue.dispatch(now_ms)

    @staticmethod
    def payload(entry: Entry) -> bytes:
        """The bytes to send for ``entry``: its header re-encoded only when it is out of date
        (``header_count`` is not the delivery count; -1 after a release or a recovery, when
        the message may have been acquired before and so is not sent as first-acquirer)."""
        data = entry.data
        assert data is not None, "a paged entry is loaded before it is sent"
        if entry.delivery_count != entry.header_count:
            view = entry.view if entry.view is not None else MessageView(data)
            entry.data = data = view.with_header(
                delivery_count=entry.delivery_count, first_acquirer=False
            )
            entry.view = None
            entry.header_count = entry.delivery_count
        return data

    @staticmethod
    def view_of(entry: Entry) -> MessageView:
        """The lazy view of ``entry``'s message (made on first use after recovery)."""
        if entry.view is None:
            assert entry.data is not None, "a paged entry is loaded before it is read"
            entry.view = MessageView(entry.data)
        return entry.view

    async def _expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now_ms = self.now_ms()
            for queue in list(self.queues.values()):
                next_expiry = queue.next_expiry()
                if next_expiry is not None and next_expiry <= now_ms:
                    queue.expire(now_ms)

    # --- QueueHooks -----------------------------------------------------------------------------

    def entry_removed(self, queue: Queue, entry: Entry) -> None:
        if entry.stored or entry.spilled:
            if entry.data is None and entry in self._forwarding:
                return  # removed from the store once its body is loaded and forwarded
            self.store.remove(queue.name, entry.seq)
            entry.stored = entry.spilled = False

    def delivery_count_changed(self, queue: Queue, entry: Entry) -> None:
        if entry.stored:
            self.store.set_delivery_count(queue.name, entry.seq, entry.delivery_count)
        self.mark_dirty(queue)

    def dead_letter(self, queue: Queue, entry: Entry, condition: str, description: str) -> None:
        self.dead_lettered_total += 1
        queue.dead_lettered_total += 1
        address = queue.settings.dead_letter_address
        if not address:
            log.info(
                "dropped message %d of queue %r (%s: %s; no dead-letter address)",
                entry.seq,
                queue.name,
                condition,
                description,
            )
            return
        self._forward(
            queue,
            entry,
            address,
            {
                DEAD_LETTER_REASON: Symbol(condition),
                DEAD_LETTER_DESCRIPTION: description,
                ORIGINAL_QUEUE: queue.name,
            },
        )

    def expired(self, queue: Queue, entry: Entry) -> None:
        self.expired_total += 1
        queue.expired_total += 1
        address = queue.settings.expiry_address
        if not address:
            return
        if entry.data is None:  # paged: load it, then forward it
            self._forwarding.add(entry)
            self._spawn(self._forward_paged(queue, entry, address))
            return
        self._forward(queue, entry, address, {ORIGINAL_QUEUE: queue.name}, clear_ttl=True)

    async def _forward_paged(self, queue: Queue, entry: Entry, address: str) -> None:
        try:
            found = await self.store.load_data(queue.name, [entry.seq])
            data = found.get(entry.seq)
            if data is not None:
                entry.data = data
                self._forward(queue, entry, address, {ORIGINAL_QUEUE: queue.name}, clear_ttl=True)
        finally:
            self._forwarding.discard(entry)
            entry.data = None
            self.entry_removed(queue, entry)

    def page_in(self, queue: Queue) -> None:
        queue.loading = True
        self._spawn(self.paging.page_in(queue))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forward(
        self,
        queue: Queue,
        entry: Entry,
        address: str,
        annotations: dict[Any, Any],
        *,
        clear_ttl: bool = False,
    ) -> None:
        if address == queue.name:
            log.warning("queue %r dead-letters to itself; dropping message", queue.name)
            return
        try:
            view = self.view_of(entry)
            # The annotations the message came with are kept as they are encoded: one that
            # does not decode here is still the consumer's business, and must not cost
            # the message.
            changes: dict[str, Any] = {
                "delivery_count": entry.delivery_count,
                "add_message_annotations": annotations,
            }
            if clear_ttl:
                changes["ttl"] = None
            data = view.with_header(**changes)
            target = self.resolve(address)
            self.publish(target, data, honour_expiry=not clear_ttl)
        except AmqpError as exc:
            log.warning(
                "could not move message %d of %r to %r: %s", entry.seq, queue.name, address, exc
            )

    def room_available(self, queue: Queue) -> None:
        waiters = self._room_waiters.pop(queue, None)
        if waiters:
            for callback in waiters:
                callback()


def _is_stored(info: AddressInfo, queue: Queue) -> bool:
    """Whether ``queue`` (of ``info``) has a record in the store: every queue but dynamic
    nodes and non-durable subscriptions."""
    return not info.temporary and (info.routing == ANYCAST or queue.durable_subscription)
