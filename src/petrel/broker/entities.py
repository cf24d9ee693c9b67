"""The broker's entities for ``$management``: what ``petrel stat`` shows and ``petrel
manage`` changes.

Types (each documented attribute by attribute in ``docs/management.md``):
``petrel.broker`` (the broker itself), ``petrel.address``, ``petrel.queue``
(with PURGE, PEEK, MOVE and RETRY), ``petrel.subscription``, and the types
every server has (:mod:`petrel.server.entities`): listeners, connections,
links, users, connectors.  ``[[queues]]``, ``[[addresses]]`` and
``[[listeners]]`` entries of the config file are entities of the same types
with the same attribute names; a queue or address created here is kept in the
store and comes back after a restart, as an auto-created one does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..engine import Link
from ..errors import AmqpError, Condition
from ..management import (
    Attribute,
    BadRequest,
    Conflict,
    EntityNotFound,
    EntityType,
    Operation,
    OperationNotImplemented,
    OperationResult,
)
from ..message import Message, MessageView
from ..server.config import AddressSettings, ListenerSettings, QueueSettings
from ..server.entities import (
    CONNECTION,
    CONNECTOR,
    LINK,
    LISTENER,
    USER,
    UserEntities,
    describe_connection,
    describe_link,
)
from ..server.listening import Listeners
from .core import ANYCAST, DYNAMIC_PREFIX, ORIGINAL_QUEUE, AddressInfo, BrokerCore
from .lookup import selector_lookup
from .queues import AVAILABLE, Entry, Queue
from .selector import SelectorError, compile_selector

if TYPE_CHECKING:
    from ..server.connection import ServerState
    from .connection import BrokerConnection

__all__ = ["ADDRESS", "BROKER", "QUEUE", "SUBSCRIPTION", "TYPES", "BrokerProvider"]

#: Most messages PEEK returns, and MOVE or RETRY move, in one request.
MAX_BATCH = 10_000
#: Seconds a connection DELETE waits for the client's close before dropping its socket.
CLOSE_TIMEOUT = 5.0
#: How long a delivery stays unsettled before ``unsettled_10s`` counts it (ms).
UNSETTLED_AGE_MS = 10_000

_COUNTERS = [
    Attribute("depth", "integer", "Messages in the queue (those delivered and unsettled too)."),
    Attribute("available", "integer", "Messages ready for a consumer."),
    Attribute("unacknowledged", "integer", "Messages delivered and not settled yet."),
    Attribute("bytes", "integer", "Bytes of the messages in the queue."),
    Attribute("consumers", "integer", "Consumers and browsers attached."),
    Attribute("enqueued", "integer", "Messages that entered the queue since the start."),
    Attribute("acknowledged", "integer", "Messages consumers accepted since the start."),
    Attribute("expired", "integer", "Messages that expired in the queue since the start."),
    Attribute("dead_lettered", "integer", "Messages rejected or out of attempts since the start."),
    Attribute(
        "delivered", "integer", "Messages sent to consumers since the start (redeliveries too)."
    ),
    Attribute("rejected", "integer", "Messages consumers rejected since the start."),
    Attribute("released", "integer", "Messages consumers released since the start."),
    Attribute("modified", "integer", "Messages consumers settled as modified since the start."),
    Attribute(
        "credit_stalls",
        "integer",
        "Times a producer was left without credit because the queue was full.",
    ),
    Attribute("unsettled_10s", "integer", "Messages delivered over 10 s ago and not settled yet."),
]

BROKER = EntityType(
    "petrel.broker",
    "The broker itself (one entity, named by its container id).",
    [
        Attribute("version", "string", "Petrel's version."),
        Attribute("uptime", "float", "Seconds since the broker started."),
        Attribute("store", "string", "Where durable messages live: memory, sqlite, postgresql."),
        Attribute("connections", "integer", "Live connections."),
        Attribute("connections_total", "integer", "Connections accepted since the start."),
        Attribute("addresses", "integer", "Addresses."),
        Attribute("queues", "integer", "Queues and subscriptions (dynamic reply queues left out)."),
        Attribute("depth", "integer", "Messages in all queues."),
        Attribute(
            "enqueued",
            "integer",
            "Messages that entered a queue since the start (dynamic reply queues left out).",
        ),
        Attribute(
            "acknowledged", "integer", "Messages consumers accepted since the start (likewise)."
        ),
        Attribute("dead_lettered", "integer", "Messages dead-lettered since the start."),
        Attribute("expired", "integer", "Messages expired since the start."),
    ],
    allows=("READ",),
)

ADDRESS = EntityType.from_model(
    "petrel.address",
    AddressSettings,
    description="An address: anycast (one queue) or multicast (a topic and its subscriptions).",
    read_only=[
        Attribute("declared", "boolean", "Declared (config or management), not auto-created."),
        Attribute("queues", "integer", "Its queue (anycast) or subscriptions (multicast)."),
        Attribute("consumers", "integer", "Consumers of its queues."),
        Attribute("depth", "integer", "Messages in its queues."),
    ],
    create_only=["routing"],
    allows=("CREATE", "READ", "DELETE"),
)

_MOVE = Operation(
    "MOVE",
    "Move the queue's available messages to another address, in order.",
    arguments=[
        Attribute("to", "string", "The address to move them to (it must exist).", required=True),
        Attribute("selector", "string", "Only the messages this JMS selector matches."),
        Attribute("count", "integer", f"At most this many (and at most {MAX_BATCH})."),
    ],
    reply="{moved: N, left: messages not moved}",
)
_RETRY = Operation(
    "RETRY",
    "Send dead-lettered or expired messages back to the queue they came from "
    "(the x-opt-petrel-original-queue annotation).",
    arguments=[Attribute("count", "integer", f"At most this many (and at most {MAX_BATCH}).")],
    reply="{moved: N, left: messages without an original queue, or whose queue has gone}",
)
_PURGE = Operation(
    "PURGE",
    "Remove every message no consumer holds (delivered ones stay until settled).",
    reply="{purged: N}",
)
_PEEK = Operation(
    "PEEK",
    "The first messages waiting in the queue, without taking them.",
    arguments=[Attribute("count", "integer", "How many (default 10).")],
    reply="a list of maps: seq, priority, delivery_count, size, and the message's "
    "header fields, properties, application_properties, message_annotations and body",
)

QUEUE = EntityType.from_model(
    "petrel.queue",
    QueueSettings,
    description="A queue (anycast): each message goes to one consumer.",
    read_only=[Attribute("durable", "boolean", "Kept in the store across restarts."), *_COUNTERS],
    operations=[_PURGE, _PEEK, _MOVE, _RETRY],
    create_only=["routing", "address"],
)

SUBSCRIPTION = EntityType.from_model(
    "petrel.subscription",
    QueueSettings,
    description="A topic's subscription queue; the name is ADDRESS::CONTAINER:LINK "
    "(see docs/broker.md).  It is made by a receiver attaching to a multicast address.",
    read_only=[
        Attribute("durable", "boolean", "A durable subscription, kept across restarts."),
        Attribute("selector", "string", "The JMS selector applied as messages are routed."),
        *_COUNTERS,
    ],
    operations=[_PURGE, _PEEK],
    create_only=["routing", "address"],
    allows=("READ", "UPDATE", "DELETE"),
)

#: Every type the broker serves.
TYPES = [BROKER, LISTENER, CONNECTOR, ADDRESS, QUEUE, SUBSCRIPTION, CONNECTION, LINK, USER]


class BrokerProvider:
    """The broker's entities for the management agent (see the module docstring)."""

    def __init__(self, core: BrokerCore, state: ServerState, listeners: Listeners) -> None:
        self.core = core
        self.state = state
        self.listeners = listeners
        self.users = UserEntities(state.policy.users)

    # --- ManagementProvider -----------------------------------------------------------------

    async def query(self, entity_type: str) -> Iterable[dict[str, Any]]:
        return list(self._all(entity_type))

    async def read(
        self, entity_type: str, *, name: str | None = None, identity: str | None = None
    ) -> dict[str, Any] | None:
        if entity_type == USER.name:
            return self.users.read(name=name, identity=identity)
        key = "identity" if identity is not None else "name"
        wanted = identity if identity is not None else name
        if entity_type in (QUEUE.name, SUBSCRIPTION.name):  # by name, without a scan
            # Only an identity has the prefix: a queue may be called "queue/x" itself.
            queue_name = str(wanted).removeprefix("queue/") if key == "identity" else str(wanted)
            queue = self.core.queues.get(queue_name)
            if queue is None:
                return None
            entity = self._queue(queue)
            return entity if entity["type"] == entity_type and entity[key] == wanted else None
        if entity_type == ADDRESS.name:  # likewise
            address = str(wanted).removeprefix("address/") if key == "identity" else str(wanted)
            info = self.core.lookup(address)
            if info is None or info.temporary:
                return None
            entity = self._address(info)
            return entity if entity[key] == wanted else None
        return next((e for e in self._all(entity_type) if e[key] == wanted), None)

    async def create(
        self, entity_type: str, name: str, attributes: dict[str, Any]
    ) -> dict[str, Any]:
        if entity_type == USER.name:
            return await self.users.create(name, attributes)
        try:
            if entity_type == QUEUE.name:
                settings = QUEUE.to_model(name, attributes)
                assert isinstance(settings, QueueSettings)
                if settings.routing != ANYCAST:
                    raise BadRequest(
                        "a queue is anycast; create a topic as a petrel.address with "
                        "routing multicast"
                    )
                queue = self.core.create_queue(settings)
                await self.core.commit()
                return self._queue(queue)
            if entity_type == ADDRESS.name:
                address = ADDRESS.to_model(name, attributes)
                assert isinstance(address, AddressSettings)
                info = self.core.declare_address(address.name, address.routing)
                await self.core.commit()
                return self._address(info)
            if entity_type == LISTENER.name:
                # A listener is named by its URL.
                if attributes.get("url", name) != name:
                    raise BadRequest(f"a listener's name is its url, not {attributes['url']!r}")
                listener = LISTENER.to_model(None, {**attributes, "url": name})
                assert isinstance(listener, ListenerSettings)
                identity = await self.listeners.add(listener)
                return self._listener(identity, *self.listeners.listeners[identity])
        except AmqpError as exc:
            if exc.condition == Condition.PRECONDITION_FAILED:
                raise Conflict(exc.description) from None
            raise
        except OSError as exc:
            raise BadRequest(exc.strerror or str(exc)) from None
        raise OperationNotImplemented(f"CREATE is not supported for {entity_type}")

    async def update(
        self, entity_type: str, identity: str, attributes: dict[str, Any]
    ) -> dict[str, Any]:
        if entity_type == USER.name:
            return await self.users.update(identity, attributes)
        queue = self._find_queue(identity)
        if entity_type not in (QUEUE.name, SUBSCRIPTION.name):
            raise OperationNotImplemented(f"UPDATE is not supported for {entity_type}")
        changed = queue.settings.model_copy(update=attributes)
        settings = QueueSettings.model_validate(changed.model_dump())
        self.core.update_queue(queue, settings)
        await self.core.commit()
        return self._queue(queue)

    async def delete(self, entity_type: str, identity: str) -> None:
        if entity_type == USER.name:
            await self.users.delete(identity)
            return
        if entity_type in (QUEUE.name, SUBSCRIPTION.name):
            queue = self._find_queue(identity)
            info = self.core.address_of(queue)
            if entity_type == QUEUE.name and info is not None and info.routing == ANYCAST:
                self._remove_address(info)
            else:
                self._detach([queue])
                self.core.delete_queue(queue)
            await self.core.commit()
        elif entity_type == ADDRESS.name:
            info = self.core.lookup(identity.removeprefix("address/"))
            if info is None:
                raise EntityNotFound(f"no address {identity!r}")
            self._remove_address(info)
            await self.core.commit()
        elif entity_type == LISTENER.name:
            await self.listeners.remove(identity)
        elif entity_type == CONNECTION.name:
            conn = self._connection(identity)
            error = AmqpError("closed by management", condition=Condition.CONNECTION_FORCED)
            # The reply waits for the client's close (or drops the socket of a client that
            # does not answer within CLOSE_TIMEOUT): once DELETE has answered, it is gone.
            await conn.protocol.close(error, timeout=CLOSE_TIMEOUT)
        else:
            raise OperationNotImplemented(f"DELETE is not supported for {entity_type}")

    async def invoke(
        self,
        entity_type: str,
        identity: str | None,
        operation: str,
        arguments: dict[str, Any],
        body: Any,
    ) -> OperationResult:
        if identity is None:
            raise BadRequest(f"{operation} acts on one queue: give its name")
        queue = self._find_queue(identity)
        count = arguments.get("count")
        if count is not None and count < 0:
            raise BadRequest("count must not be negative")
        if operation == "PURGE":
            purged = queue.purge()
            await self.core.commit()
            return OperationResult(200, {"purged": purged})
        if operation == "PEEK":
            return OperationResult(200, await self._peek(queue, 10 if count is None else count))
        if operation == "MOVE":
            return OperationResult(200, await self._move(queue, arguments, count))
        if operation == "RETRY":
            return OperationResult(200, await self._retry(queue, count))
        raise OperationNotImplemented(f"{entity_type} has no operation {operation}")

    # --- entities ---------------------------------------------------------------------------

    def _all(self, entity_type: str) -> Iterable[dict[str, Any]]:
        core = self.core
        if entity_type == BROKER.name:
            yield self._broker()
        elif entity_type == LISTENER.name:
            for identity, (settings, listener) in self.listeners.listeners.items():
                yield self._listener(identity, settings, listener)
        elif entity_type == ADDRESS.name:
            for info in core.addresses.values():
                if not info.temporary:
                    yield self._address(info)
        elif entity_type in (QUEUE.name, SUBSCRIPTION.name):
            for queue in core.queues.values():
                if _dynamic(queue):
                    continue  # a reply queue: there as long as its link, and not managed
                entity = self._queue(queue)
                if entity["type"] == entity_type:
                    yield entity
        elif entity_type == CONNECTION.name:
            for conn in self.state.connections.values():
                yield describe_connection(conn)
        elif entity_type == LINK.name:
            for conn in self.state.connections.values():
                for link in list(conn.links):
                    yield describe_link(conn, link)
        elif entity_type == USER.name:
            yield from self.users.query()
        elif entity_type == CONNECTOR.name:
            return

    def _broker(self) -> dict[str, Any]:
        core = self.core
        queues = [q for q in core.queues.values() if not _dynamic(q)]
        return {
            "name": core.settings.container_id,
            "identity": "broker",
            "version": __version__,
            "uptime": round(time.time() - self.state.started, 3),
            "store": core.settings.store,
            "connections": len(self.state.connections),
            "connections_total": self.state.accepted_total,
            "addresses": sum(1 for info in core.addresses.values() if not info.temporary),
            "queues": len(queues),
            "depth": sum(q.depth for q in queues),
            "enqueued": core.retired_enqueued + sum(q.enqueued_total for q in queues),
            "acknowledged": core.retired_acknowledged + sum(q.acknowledged_total for q in queues),
            "dead_lettered": core.dead_lettered_total,
            "expired": core.expired_total,
        }

    def _listener(self, identity: str, settings: ListenerSettings, listener: Any) -> dict[str, Any]:
        bound = listener.bound
        return {
            "name": settings.url,
            "identity": identity,
            **settings.model_dump(),
            "port": bound[0][1] if bound else None,
            "connections": sum(
                1 for conn in self.state.connections.values() if conn.listener is settings
            ),
        }

    def _address(self, info: AddressInfo) -> dict[str, Any]:
        queues = [q for q in (info.queue, *info.subscriptions.values()) if q is not None]
        return {
            "name": info.name,
            "identity": f"address/{info.name}",
            "routing": info.routing,
            "declared": info.declared,
            "queues": len(queues),
            "consumers": sum(q.consumer_count for q in queues),
            "depth": sum(q.depth for q in queues),
        }

    def _queue(self, queue: Queue) -> dict[str, Any]:
        info = self.core.address_of(queue)
        anycast = info is None or info.routing == ANYCAST
        settings = queue.settings.model_dump()
        settings["name"] = queue.name
        settings["address"] = info.name if info is not None else settings.get("address")
        settings["routing"] = "anycast" if anycast else "multicast"
        entity = {
            **settings,
            "identity": f"queue/{queue.name}",
            "type": QUEUE.name if anycast else SUBSCRIPTION.name,
            "durable": (info is not None and not info.temporary)
            if anycast
            else queue.durable_subscription,
            "depth": queue.depth,
            "available": queue.available,
            "unacknowledged": queue.depth - queue.available,
            "bytes": queue.bytes,
            "consumers": queue.consumer_count,
            "enqueued": queue.enqueued_total,
            "acknowledged": queue.acknowledged_total,
            "expired": queue.expired_total,
            "dead_lettered": queue.dead_lettered_total,
            "delivered": queue.delivered_total,
            "rejected": queue.rejected_total,
            "released": queue.released_total,
            "modified": queue.modified_total,
            "credit_stalls": queue.credit_stalls_total,
            "unsettled_10s": self._unsettled_since(queue, self.core.now_ms() - UNSETTLED_AGE_MS),
        }
        if not anycast:
            entity["selector"] = queue.filter_text
        return entity

    @staticmethod
    def _unsettled_since(queue: Queue, cutoff_ms: int) -> int:
        """Messages of ``queue`` its consumers acquired before ``cutoff_ms`` and have not
        settled.  A consumer keeps its unsettled deliveries in the order it sent them,
        so only the old ones (and one more) are looked at."""
        count = 0
        for consumer in queue.consumers:
            unsettled = getattr(consumer, "unsettled", None)
            if not unsettled:
                continue
            for entry in unsettled.values():
                if entry.acquired_at >= cutoff_ms:
                    break
                count += 1
        return count

    # --- lookups ----------------------------------------------------------------------------

    def _find_queue(self, identity: str) -> Queue:
        queue = self.core.queues.get(identity.removeprefix("queue/"))
        if queue is None:
            raise EntityNotFound(f"no queue {identity!r}")
        return queue

    def _connection(self, identity: str) -> BrokerConnection:
        for conn in self.state.connections.values():
            if conn.id == identity:
                return conn  # type: ignore[return-value]
        raise EntityNotFound(f"no connection {identity!r}")

    def _remove_address(self, info: AddressInfo) -> None:
        """Delete ``info`` with its queues: their consumers and the address's producers are
        detached, and the queues' records leave the store."""
        queues = self.core.remove_address(info)
        self._detach(queues)
        # A producer link holds its address: left attached, its next message would bring the
        # queue back (auto-create or not), where no consumer could reach it.
        error = AmqpError(
            f"the address {info.name!r} was deleted by management",
            condition=Condition.RESOURCE_DELETED,
        )
        for conn in list(self.state.connections.values()):
            producers = [
                link
                for link, handler in conn.links.items()
                if getattr(handler, "info", None) is info and not link.is_sender
            ]
            for link in producers:
                link.detach(error)
            if producers:
                conn.protocol.flush()

    def _detach(self, queues: list[Queue]) -> None:
        """The queues were deleted: their consumers are detached with the reason."""
        error = AmqpError(
            "the queue was deleted by management", condition=Condition.RESOURCE_DELETED
        )
        for queue in queues:
            for consumer in queue.consumers:
                link: Link = consumer.link  # type: ignore[attr-defined]
                link.detach(error)
                consumer.connection.protocol.flush()  # type: ignore[attr-defined]

    # --- queue operations -------------------------------------------------------------------

    async def _available(self, queue: Queue, limit: int) -> list[tuple[Entry, bytes]]:
        """Up to ``limit`` available messages of ``queue`` in arrival order, with their
        bytes (paged bodies are read back from the store)."""
        entries = [e for e in queue.entries() if e.state == AVAILABLE][: min(limit, MAX_BATCH)]
        missing = [e.seq for e in entries if e.data is None]
        loaded = await self.core.store.load_data(queue.name, missing) if missing else {}
        found = []
        for entry in entries:
            data = entry.data if entry.data is not None else loaded.get(entry.seq)
            if data is not None and entry.state == AVAILABLE:
                found.append((entry, data))
        return found

    async def _peek(self, queue: Queue, count: int) -> list[dict[str, Any]]:
        peeked = []
        for entry, data in await self._available(queue, count):
            message = Message.decode(data)
            peeked.append(
                {
                    "seq": entry.seq,
                    "priority": entry.priority,
                    "delivery_count": entry.delivery_count,
                    "size": entry.size,
                    "durable": message.durable,
                    "message_id": message.message_id,
                    "correlation_id": message.correlation_id,
                    "subject": message.subject,
                    "to": message.to,
                    "group_id": message.group_id,
                    "content_type": message.content_type,
                    "application_properties": message.application_properties,
                    "message_annotations": message.message_annotations,
                    "body": message.body,
                }
            )
        return peeked

    async def _move(
        self, queue: Queue, arguments: dict[str, Any], count: int | None
    ) -> dict[str, Any]:
        target = self.core.lookup(arguments["to"])
        if target is None:
            raise EntityNotFound(f"no address {arguments['to']!r} to move to")
        selector = None
        if arguments.get("selector"):
            try:
                selector = compile_selector(arguments["selector"])
            except SelectorError as exc:
                raise BadRequest(f"bad selector: {exc}") from None
        moved = 0
        limit = MAX_BATCH if count is None else count
        for entry, data in await self._available(queue, queue.depth):
            if moved >= limit:
                break
            if selector is not None:
                view = MessageView(data)
                if not selector.matches(
                    selector_lookup(view, entry.priority, entry.delivery_count)
                ):
                    continue
            if not self._publish(target, data):
                break
            queue.remove(entry)
            moved += 1
        await self.core.commit()
        return {"moved": moved, "left": queue.available}

    async def _retry(self, queue: Queue, count: int | None) -> dict[str, Any]:
        moved = 0
        limit = MAX_BATCH if count is None else count
        for entry, data in await self._available(queue, queue.depth):
            if moved >= limit:
                break
            annotations = MessageView(data).message_annotations or {}
            original = self.core.queues.get(str(annotations.get(ORIGINAL_QUEUE, "")))
            info = self.core.address_of(original) if original is not None else None
            if info is None or not self._publish(info, data):
                continue
            queue.remove(entry)
            moved += 1
        await self.core.commit()
        return {"moved": moved, "left": queue.available}

    def _publish(self, info: AddressInfo, data: bytes) -> bool:
        """Put a moved message into ``info``'s queues; False when they have no room."""
        try:
            self.core.publish(info, data, credited=False)
        except AmqpError:
            return False
        return True


def _dynamic(queue: Queue) -> bool:
    """Whether ``queue`` is a dynamic node (a reply queue), which listings leave out."""
    return queue.address is not None and queue.address.startswith(DYNAMIC_PREFIX)
