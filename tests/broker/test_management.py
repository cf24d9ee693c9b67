"""``$management`` in the broker, driven by Qpid Proton speaking the raw AMQP Management
protocol: no Petrel code on the client side (the broker's own declarations of its entity
types serve once as the expectation of what it serves).

Requests are messages to ``$management`` whose application-properties say what to do
(``operation``, ``type``, ``name``, ``identity``, ``entityType``, ``offset``,
``count``); replies carry ``statusCode`` and ``statusDescription``.  :class:`Manager`
is that protocol written out with Proton's parts: a sender to ``$management`` and a
receiver for the replies (a dynamic reply queue, or a link attached *from*
``$management``: the reply-link pattern).

What the tests prove: the counters match the traffic that made them; CREATE and DELETE
change what clients can attach to (auto-create is off); UPDATE takes effect at once; what
management creates survives a restart (SQLite, PostgreSQL); QUERY pages are stable and
complete; PEEK/PURGE/MOVE/RETRY do what they say; every error status; who may manage;
``$management`` is never a queue; connections and listeners are managed live.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import random
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from proton import ConnectionException, Delivery, Endpoint, Message
from proton.reactor import LinkOption
from proton.utils import BlockingConnection, ConnectionClosed, LinkDetached

from petrel.broker import entities
from tests.helpers.proton_client import (
    bodies,
    connect,
    drain,
    fetch,
    flush,
    receiver,
    send,
    send_all,
    sender,
    settle,
    sync,
    wait_for,
)
from tests.helpers.servers import BrokerProcess, free_port, run_broker

pytestmark = pytest.mark.interop

NODE = "$management"
NODE_TYPE = "org.amqp.management"
BROKER = "petrel.broker"
LISTENER = "petrel.listener"
ADDRESS = "petrel.address"
QUEUE = "petrel.queue"
SUBSCRIPTION = "petrel.subscription"
CONNECTION = "petrel.connection"
LINK = "petrel.link"
USER = "petrel.user"
#: What the broker serves (GET-TYPES must say exactly this).
TYPES = {
    BROKER,
    LISTENER,
    "petrel.connector",
    ADDRESS,
    QUEUE,
    SUBSCRIPTION,
    CONNECTION,
    LINK,
    USER,
}
ORIGINAL_QUEUE = "x-opt-petrel-original-queue"
COUNTERS = (
    "depth",
    "available",
    "unacknowledged",
    "enqueued",
    "acknowledged",
    "dead_lettered",
    "consumers",
)

ADMIN = ("boss", "boss-secret")
CLERK = ("clerk", "clerk-secret")

_names = itertools.count(1)


# --- the protocol, with Proton's parts ---------------------------------------------------


class ReplyTarget(LinkOption):
    """Give a receiver's target an address: the reply-to its replies are sent for."""

    def __init__(self, address: str) -> None:
        self.address = address

    def apply(self, link: Any) -> None:
        link.target.address = self.address


@dataclass
class Reply:
    status: int
    description: str
    body: Any
    properties: dict[str, Any]


class Manager:
    """AMQP Management over one Proton connection.

    Replies come to a dynamic receiver (its address is the reply-to), or, with
    ``reply_link``, to a receiver attached from ``$management`` whose target address is
    the reply-to (replies then never pass through a queue).  Requests may be pipelined:
    :meth:`send` returns the correlation-id, :meth:`wait` the reply to it.
    """

    def __init__(
        self, conn: BlockingConnection, *, reply_link: bool = False, window: int = 2000
    ) -> None:
        n = next(_names)
        self.conn = conn
        self.sender = conn.create_sender(NODE, name=f"mgmt-requests-{n}")
        if reply_link:
            self.reply_to = f"mgmt-replies-{n}"
            self.receiver = conn.create_receiver(
                NODE, credit=window, name=self.reply_to, options=ReplyTarget(self.reply_to)
            )
        else:
            self.receiver = conn.create_receiver(
                None, dynamic=True, credit=window, name=f"mgmt-replies-{n}"
            )
            self.reply_to = self.receiver.remote_source.address
        self._ids = itertools.count(1)
        self._replies: dict[str, Reply] = {}
        self._sent: collections.deque[Any] = collections.deque()

    def send(
        self,
        operation: str | None,
        entity_type: str | None = None,
        name: str | None = None,
        *,
        body: Any = None,
        reply_to: str | None = "",
        **properties: Any,
    ) -> str:
        """Send one request; its correlation-id.  ``reply_to=None``: none at all."""
        standard = (("operation", operation), ("type", entity_type), ("name", name))
        application: dict[str, Any] = {key: value for key, value in standard if value is not None}
        application.update(properties)
        correlation = f"req-{next(self._ids)}"
        message = Message(
            body=body,
            properties=application,
            correlation_id=correlation,
            reply_to=self.reply_to if reply_to == "" else reply_to,
        )
        self.last_delivery = self.sender.link.send(message)
        self._sent.append(self.last_delivery)
        return correlation

    def delivered(self) -> None:
        """Wait until the broker has taken the last request sent (it settles each)."""
        delivery = self.last_delivery
        self.conn.wait(lambda: bool(delivery.remote_state), timeout=10.0, msg="a request")

    def _collect(self) -> None:
        # Settle what the broker settled (Proton keeps every delivery until we do).
        sent = self._sent
        while sent and sent[0].remote_state:
            sent.popleft().settle()
        incoming = self.receiver.fetcher.incoming
        while incoming:
            message, delivery = incoming.popleft()
            if not delivery.settled:
                delivery.update(Delivery.ACCEPTED)
            delivery.settle()
            properties = dict(message.properties or {})
            self._replies[str(message.correlation_id)] = Reply(
                int(properties["statusCode"]),
                str(properties.get("statusDescription")),
                message.body,
                properties,
            )

    def wait(self, correlation: str, timeout: float = 10.0) -> Reply:
        def arrived() -> bool:
            self._collect()
            return correlation in self._replies

        self.conn.wait(arrived, timeout=timeout, msg=f"the reply to {correlation}")
        return self._replies.pop(correlation)

    def call(
        self,
        operation: str | None,
        entity_type: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> Reply:
        return self.wait(self.send(operation, entity_type, name, **kwargs))

    def query(self, entity_type: str, names: list[str] | None = None, **paging: Any) -> Reply:
        return self.call(
            "QUERY",
            NODE_TYPE,
            "self",
            entityType=entity_type,
            body={"attributeNames": names or []},
            **paging,
        )

    def rows(self, entity_type: str, names: list[str] | None = None) -> list[dict[str, Any]]:
        """Every entity of ``entity_type`` (one QUERY), as maps."""
        body = ok(self.query(entity_type, names))
        return [dict(zip(body["attributeNames"], row, strict=True)) for row in body["results"]]


def ok(reply: Reply, status: int = 200) -> Any:
    """The reply's body, once its status is ``status``."""
    assert reply.status == status, f"{reply.status} {reply.description}"
    assert reply.description
    return reply.body


def counters(entity: dict[str, Any]) -> dict[str, Any]:
    return {key: entity[key] for key in COUNTERS}


# --- brokers and clients -----------------------------------------------------------------


@dataclass
class Ports:
    open: int
    """Loopback, anonymous clients allowed (and, being local, allowed to manage)."""
    secure: int
    """Users only (allow_anonymous = false)."""


@pytest.fixture(scope="module")
def ports() -> Ports:
    return Ports(free_port(), free_port())


@pytest.fixture(scope="module")
def broker(ports: Ports) -> Iterator[BrokerProcess]:
    """The module's broker: memory store, auto-create off, an admin and a plain user."""
    # No idle limit: the module's manager connection is Proton's blocking client, which
    # answers heartbeats only while a test is inside one of its calls, so a slow test
    # between two uses (once, at load 14) let the default 60 s pass and closed it for
    # the rest of the file.  test_limits.py covers the idle limit itself.
    config = f"""
auto_create = false

[limits]
idle_timeout = 0

[[listeners]]
url = "amqp://127.0.0.1:{ports.open}"

[[listeners]]
url = "amqp://127.0.0.1:{ports.secure}"
allow_anonymous = false

[[users]]
name = "{ADMIN[0]}"
password = "{ADMIN[1]}"
admin = true

[[users]]
name = "{CLERK[0]}"
password = "{CLERK[1]}"
"""
    with run_broker(config, port=ports.open) as process:
        yield process


@pytest.fixture(scope="module")
def auto_broker() -> Iterator[BrokerProcess]:
    """A broker with auto-create on (its default) and nothing declared."""
    with run_broker() as process:
        yield process


@pytest.fixture
def clients(broker: BrokerProcess) -> Iterator[Callable[..., BlockingConnection]]:
    """Open Proton connections (``clients(url=None, **connect_kwargs)``); closed afterwards."""
    opened: list[BlockingConnection] = []

    def open_client(url: str | None = None, **kwargs: Any) -> BlockingConnection:
        conn = connect(url or broker.url, **kwargs)
        opened.append(conn)
        return conn

    yield open_client
    for conn in opened:
        with contextlib.suppress(Exception):
            conn.close()


@pytest.fixture(scope="module")
def manager(broker: BrokerProcess) -> Iterator[Manager]:
    """An anonymous loopback client of the module broker; replies to a dynamic queue."""
    conn = connect(broker.url, container_id="module-manager")
    yield Manager(conn)
    conn.close()


def create_queue(manager: Manager, name: str, **attributes: Any) -> dict[str, Any]:
    created: dict[str, Any] = ok(manager.call("CREATE", QUEUE, name, body=attributes), 201)
    return created


def put(conn: BlockingConnection, address: str, *messages: Any) -> None:
    """Send ``messages`` (bodies or ``Message`` objects) and wait until all are accepted."""
    tx = sender(conn, address)
    send_all(tx, [m if isinstance(m, Message) else Message(body=m) for m in messages])
    tx.close()


def detached(conn: BlockingConnection, link: Any) -> str | None:
    """Wait until the broker detaches ``link`` (a Proton link on ``conn``); its condition."""
    with pytest.raises(LinkDetached) as caught:
        wait_for(conn, lambda: bool(link.state & Endpoint.REMOTE_CLOSED))
    return caught.value.condition


# --- the types served --------------------------------------------------------------------


def test_the_node_serves_the_broker_types(manager: Manager) -> None:
    types = ok(manager.call("GET-TYPES", NODE_TYPE, "self"))
    assert set(types) == TYPES
    attributes = ok(manager.call("GET-ATTRIBUTES", NODE_TYPE, "self", entityType=QUEUE))
    assert attributes[QUEUE][:3] == ["name", "identity", "type"]
    assert {"max_messages", "dead_letter_address", "depth", "acknowledged"} <= set(
        attributes[QUEUE]
    )
    operations = ok(manager.call("GET-OPERATIONS", NODE_TYPE, "self", entityType=QUEUE))[QUEUE]
    assert operations == {
        "CREATE": [],
        "READ": [],
        "UPDATE": [],
        "DELETE": [],
        "PURGE": [],
        "PEEK": ["count"],
        "MOVE": ["to", "selector", "count"],
        "RETRY": ["count"],
    }
    links = ok(manager.call("GET-OPERATIONS", NODE_TYPE, "self", entityType=LINK))
    assert links == {LINK: {"READ": []}}
    assert ok(manager.call("GET-MGMT-NODES", NODE_TYPE, "self")) == []
    # What is served is what the broker declares, which docs/management.md documents
    # (tests/test_docs_management.py): the declarations are the expectation here.
    declared = {t.name: t for t in entities.TYPES}
    assert ok(manager.call("GET-ATTRIBUTES", NODE_TYPE, "self")) == {
        name: t.attribute_names for name, t in declared.items()
    }
    assert ok(manager.call("GET-OPERATIONS", NODE_TYPE, "self")) == {
        name: {
            **{operation: [] for operation in t.allows},
            **{operation.name: operation.argument_names for operation in t.operations},
        }
        for name, t in declared.items()
    }


# --- counters ----------------------------------------------------------------------------


def test_counters_match_the_traffic() -> None:
    # A broker of its own, whose totals count this test's messages only: replies on a
    # reply link pass through no queue.
    with run_broker("auto_create = false\n") as fresh, contextlib.ExitStack() as stack:

        def clients() -> BlockingConnection:
            return stack.enter_context(contextlib.closing(connect(fresh.url)))

        _counters_match_the_traffic(clients, "counted")


def _counters_match_the_traffic(clients: Callable[[], BlockingConnection], name: str) -> None:
    manager = Manager(clients(), reply_link=True)
    dlq = f"{name}.dlq"
    create_queue(manager, dlq)
    create_queue(manager, name, dead_letter_address=dlq)
    before = ok(manager.call("READ", BROKER, identity="broker"))
    assert {key: before[key] for key in ("depth", "enqueued", "acknowledged")} == {
        "depth": 0,
        "enqueued": 0,
        "acknowledged": 0,
    }

    conn = clients()
    put(conn, name, *range(10))
    rx = receiver(conn, name, credit=8)
    held = [fetch(conn, rx) for _ in range(8)]
    for _, delivery in held[:4]:
        settle(delivery, "accept")
    for _, delivery in held[4:6]:
        settle(delivery, "reject")
    flush(conn)
    sync(conn)  # the broker has seen the outcomes; two deliveries stay unsettled

    queue = ok(manager.call("READ", QUEUE, name))
    assert counters(queue) == {
        "depth": 4,  # 10 - 4 accepted - 2 rejected
        "available": 2,
        "unacknowledged": 2,
        "enqueued": 10,
        "acknowledged": 4,
        "dead_lettered": 2,
        "consumers": 1,
    }
    assert queue["bytes"] > 0
    assert queue["expired"] == 0
    assert counters(ok(manager.call("READ", QUEUE, dlq))) == {
        "depth": 2,
        "available": 2,
        "unacknowledged": 0,
        "enqueued": 2,
        "acknowledged": 0,
        "dead_lettered": 0,
        "consumers": 0,
    }
    after = ok(manager.call("READ", BROKER, identity="broker"))
    assert {key: after[key] for key in before if isinstance(before[key], int)} == {
        "connections": 2,  # the manager's and the traffic's
        "connections_total": before["connections_total"] + 1,
        "addresses": 2,
        "queues": 2,
        "depth": 6,  # 4 in the queue, 2 in its dead-letter queue
        "enqueued": 12,
        "acknowledged": 4,
        "dead_lettered": 2,
        "expired": 0,
    }
    assert after["name"] == "petrel"
    assert after["store"] == "memory"
    assert after["uptime"] >= before["uptime"]

    # The consumer goes: what it held is available again.
    rx.close()
    sync(conn)
    queue = ok(manager.call("READ", QUEUE, name))
    assert (queue["available"], queue["unacknowledged"], queue["consumers"]) == (4, 0, 0)


def test_connections_and_links_are_listed(
    broker: BrokerProcess,
    ports: Ports,
    manager: Manager,
    clients: Callable[..., BlockingConnection],
    name: str,
) -> None:
    create_queue(manager, name)
    boss = clients(
        f"amqp://127.0.0.1:{ports.secure}",
        user=ADMIN[0],
        password=ADMIN[1],
        allowed_mechs="PLAIN",
        container_id=f"{name}-boss",
    )
    sync(boss)
    anonymous = clients(container_id=f"{name}-anonymous")
    tx = sender(anonymous, name, name="the-sender")
    for body in range(3):
        send(tx, body)
    rx = receiver(anonymous, name, credit=2, name="the-receiver")
    for _ in range(2):
        fetch(anonymous, rx)

    connections = {row["container"]: row for row in manager.rows(CONNECTION)}
    admin_row = connections[f"{name}-boss"]
    assert (admin_row["user"], admin_row["sasl"]) == ("boss", "PLAIN")
    assert admin_row["listener"] == f"amqp://127.0.0.1:{ports.secure}"
    row = connections[f"{name}-anonymous"]
    assert (row["user"], row["sasl"]) == (None, "ANONYMOUS")
    assert row["listener"] == broker.url
    assert row["host"].startswith("127.0.0.1:")
    assert row["tls"] is False
    assert (row["sessions"], row["links"]) == (1, 2)
    assert ok(manager.call("READ", CONNECTION, identity=row["identity"]))["container"] == (
        f"{name}-anonymous"
    )

    links = {
        link["link_name"]: link
        for link in manager.rows(LINK)
        if link["connection"] == row["identity"]
    }
    assert set(links) == {"the-sender", "the-receiver"}
    incoming, outgoing = links["the-sender"], links["the-receiver"]
    assert (incoming["direction"], incoming["address"], incoming["delivered"]) == ("in", name, 3)
    assert (outgoing["direction"], outgoing["address"], outgoing["delivered"]) == ("out", name, 2)
    assert (outgoing["unsettled"], outgoing["credit"]) == (2, 0)
    # A dynamic receiver's link shows the address the broker gave it.
    replies = [link for link in manager.rows(LINK) if link["link_name"] == manager.receiver.name]
    assert [link["address"] for link in replies] == [manager.reply_to]

    # The users, without their passwords.
    users = {user["name"]: user for user in manager.rows(USER)}
    assert {name: user["admin"] for name, user in users.items()} == {"boss": True, "clerk": False}
    assert all("password" not in user for user in users.values())
    asked = manager.rows(USER, ["name", "password"])
    assert [user["password"] for user in asked] == [None, None]
    assert "password" not in ok(manager.call("READ", USER, "boss"))


# --- CREATE, UPDATE, DELETE --------------------------------------------------------------


def test_queues_come_and_go_with_create_and_delete(
    manager: Manager, clients: Callable[..., BlockingConnection], name: str
) -> None:
    conn = clients()
    with pytest.raises(LinkDetached) as caught:
        receiver(conn, name)
    assert caught.value.condition == "amqp:not-found"
    with pytest.raises(LinkDetached) as caught:
        sender(conn, name)
    assert caught.value.condition == "amqp:not-found"

    created = create_queue(manager, name, max_delivery_attempts=3)
    assert (created["name"], created["identity"], created["type"]) == (name, f"queue/{name}", QUEUE)
    assert (created["address"], created["routing"], created["max_delivery_attempts"]) == (
        name,
        "anycast",
        3,
    )
    assert created["full_policy"] == "block"  # a default, filled in
    assert ok(manager.call("READ", ADDRESS, name))["routing"] == "anycast"

    producer = clients()
    tx = sender(producer, name)
    send(tx, "one")
    send(tx, "two")
    consumer = clients()
    rx = receiver(consumer, name, credit=1)
    message, delivery = fetch(consumer, rx)
    assert message.body == "one"
    settle(delivery)

    ok(manager.call("DELETE", QUEUE, name), 204)
    assert detached(consumer, rx.link) == "amqp:resource-deleted"
    # Its producers go too: otherwise their next message would bring the queue back.
    assert detached(producer, tx.link) == "amqp:resource-deleted"
    with pytest.raises(LinkDetached) as caught:
        receiver(conn, name)
    assert caught.value.condition == "amqp:not-found"
    assert manager.call("READ", QUEUE, name).status == 404
    assert manager.call("READ", ADDRESS, name).status == 404


def test_dynamic_reply_queues_are_not_listed_and_totals_outlive_queues(
    manager: Manager, clients: Callable[..., BlockingConnection], name: str
) -> None:
    # The manager's own reply queue is a dynamic one: no listing shows it.
    assert manager.reply_to.startswith("dynamic.")
    assert manager.reply_to not in [row["name"] for row in manager.rows(QUEUE)]
    # Replies on a reply link pass through no queue: the totals count the traffic alone.
    quiet = Manager(clients(), reply_link=True)
    before = ok(quiet.call("READ", BROKER, identity="broker"))
    ok(quiet.call("CREATE", QUEUE, name, body={}), 201)
    conn = clients()
    put(conn, name, "counted")
    rx = receiver(conn, name, credit=1)
    settle(fetch(conn, rx)[1])
    sync(conn)
    rx.close()
    ok(quiet.call("DELETE", QUEUE, name), 204)
    after = ok(quiet.call("READ", BROKER, identity="broker"))
    # The deleted queue's message still counts.
    assert after["enqueued"] - before["enqueued"] == 1
    assert after["acknowledged"] - before["acknowledged"] == 1
    assert after["queues"] == before["queues"]


def test_addresses_come_and_go_with_create_and_delete(
    manager: Manager, clients: Callable[..., BlockingConnection], name: str
) -> None:
    anycast, multicast = f"{name}-queue", f"{name}-topic"
    created = ok(manager.call("CREATE", ADDRESS, anycast, body={"routing": "anycast"}), 201)
    assert (created["routing"], created["queues"], created["declared"]) == ("anycast", 1, True)
    assert ok(manager.call("READ", QUEUE, anycast))["address"] == anycast
    created = ok(manager.call("CREATE", ADDRESS, multicast, body={"routing": "multicast"}), 201)
    assert (created["routing"], created["queues"]) == ("multicast", 0)
    assert manager.call("READ", QUEUE, multicast).status == 404  # a topic has no queue

    conn = clients()
    put(conn, anycast, "queued")
    assert bodies(drain(conn, receiver(conn, anycast))) == ["queued"]
    subscribers = [clients() for _ in range(2)]
    receivers = [receiver(c, multicast, credit=5) for c in subscribers]
    put(conn, multicast, "news")
    for subscriber, rx in zip(subscribers, receivers, strict=True):
        message, delivery = fetch(subscriber, rx)
        assert message.body == "news"
        settle(delivery)
    topic = ok(manager.call("READ", ADDRESS, multicast))
    assert (topic["queues"], topic["consumers"]) == (2, 2)
    subscriptions = [s for s in manager.rows(SUBSCRIPTION) if s["address"] == multicast]
    assert len(subscriptions) == 2
    assert all(s["routing"] == "multicast" and s["enqueued"] == 1 for s in subscriptions)
    subscription = subscriptions[0]["name"]
    changed = ok(manager.call("UPDATE", SUBSCRIPTION, subscription, body={"max_messages": 7}))
    assert changed["max_messages"] == 7
    assert (
        manager.call("UPDATE", SUBSCRIPTION, subscription, body={"address": anycast}).status == 400
    )

    ok(manager.call("DELETE", ADDRESS, multicast), 204)
    for subscriber, rx in zip(subscribers, receivers, strict=True):
        assert detached(subscriber, rx.link) == "amqp:resource-deleted"
    with pytest.raises(LinkDetached) as caught:
        receiver(conn, multicast)
    assert caught.value.condition == "amqp:not-found"
    assert not [s for s in manager.rows(SUBSCRIPTION) if s["address"] == multicast]

    ok(manager.call("DELETE", ADDRESS, identity=f"address/{anycast}"), 204)
    assert manager.call("READ", QUEUE, anycast).status == 404
    with pytest.raises(LinkDetached):
        sender(conn, anycast)


def test_names_that_look_like_identities(manager: Manager, name: str) -> None:
    for entity_type, prefix in ((QUEUE, "queue/"), (ADDRESS, "address/")):
        odd = f"{prefix}{name}"
        ok(manager.call("CREATE", entity_type, odd), 201)
        found = ok(manager.call("READ", entity_type, odd))
        assert (found["name"], found["identity"]) == (odd, f"{prefix}{odd}")
        assert ok(manager.call("READ", entity_type, identity=f"{prefix}{odd}"))["name"] == odd
        ok(manager.call("DELETE", entity_type, odd), 204)


def test_update_of_max_messages_takes_effect(
    manager: Manager, clients: Callable[..., BlockingConnection], name: str
) -> None:
    create_queue(manager, name, full_policy="reject", max_messages=5)
    updated = ok(manager.call("UPDATE", QUEUE, name, body={"max_messages": 2}))
    assert (updated["max_messages"], updated["full_policy"]) == (2, "reject")
    assert ok(manager.call("READ", QUEUE, name))["max_messages"] == 2

    conn = clients()
    tx = sender(conn, name)
    send(tx, 1)
    send(tx, 2)
    delivery = tx.send(Message(body=3), error_states=[])
    assert delivery.remote_state == Delivery.REJECTED
    assert delivery.remote.condition.name == "amqp:resource-limit-exceeded"

    # null lifts the limit.
    lifted = ok(manager.call("UPDATE", QUEUE, name, body={"max_messages": None}))
    assert lifted["max_messages"] is None
    send(tx, 3)
    assert ok(manager.call("READ", QUEUE, name))["depth"] == 3
    # What CREATE alone may set, UPDATE may not.
    assert manager.call("UPDATE", QUEUE, name, body={"address": "elsewhere"}).status == 400


# --- what survives a restart -------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def store_args(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str]]]:
    """``(store, extra broker arguments)`` for each durable store."""
    if request.param == "sqlite":
        yield "sqlite", []
        return
    from tests.helpers.postgres import fresh_schema

    postgres_url = request.getfixturevalue("postgres_url")
    with fresh_schema(postgres_url) as url:
        yield "postgresql", ["--store-url", url]


def test_what_management_creates_survives_a_restart(
    store_args: tuple[str, list[str]], tmp_path: Path
) -> None:
    store, args = store_args
    settings = {
        "max_messages": 50,
        "full_policy": "reject",
        "dead_letter_address": "kept.dlq",
        "default_ttl": 3600.0,
    }
    config = "auto_create = false\n"
    with run_broker(config, store=store, data_dir=tmp_path, args=args) as broker:
        conn = connect(broker.url)
        manager = Manager(conn)
        create_queue(manager, "kept", **settings)
        ok(manager.call("UPDATE", QUEUE, "kept", body={"max_delivery_attempts": 4}), 200)
        create_queue(manager, "gone")
        ok(manager.call("DELETE", QUEUE, "gone"), 204)
        tx = sender(conn, "kept")
        send(tx, "first", durable=True)
        send(tx, "fleeting", durable=False)
        send(tx, "second", durable=True)
        conn.close()

    with run_broker(config, store=store, data_dir=tmp_path, args=args) as broker:
        conn = connect(broker.url)
        manager = Manager(conn)
        kept = ok(manager.call("READ", QUEUE, "kept"))
        assert {key: kept[key] for key in settings} == settings
        assert kept["max_delivery_attempts"] == 4
        assert (kept["durable"], kept["depth"]) == (True, 2)  # the non-durable one is gone
        assert manager.call("READ", QUEUE, "gone").status == 404
        assert bodies(drain(conn, receiver(conn, "kept"))) == ["first", "second"]
        with pytest.raises(LinkDetached):
            receiver(conn, "gone")
        conn.close()


def test_addresses_created_by_management_survive_a_restart(tmp_path: Path) -> None:
    config = "auto_create = false\n"

    def read(broker: BrokerProcess, name: str) -> Reply:
        conn = connect(broker.url)
        try:
            return Manager(conn).call("READ", ADDRESS, name)
        finally:
            conn.close()

    with run_broker(config, store="sqlite", data_dir=tmp_path) as broker:
        conn = connect(broker.url)
        manager = Manager(conn)
        ok(manager.call("CREATE", ADDRESS, "kept-topic", body={"routing": "multicast"}), 201)
        ok(manager.call("CREATE", ADDRESS, "kept-queue", body={"routing": "anycast"}), 201)
        ok(manager.call("CREATE", ADDRESS, "gone-topic", body={"routing": "multicast"}), 201)
        ok(manager.call("DELETE", ADDRESS, "gone-topic"), 204)
        conn.close()
    with run_broker(config, store="sqlite", data_dir=tmp_path) as broker:
        topic = ok(read(broker, "kept-topic"))
        assert (topic["routing"], topic["declared"]) == ("multicast", True)
        queue = ok(read(broker, "kept-queue"))
        assert (queue["routing"], queue["declared"]) == ("anycast", True)
        assert read(broker, "gone-topic").status == 404
        # A topic, not a queue: subscribers each get the message.
        conn = connect(broker.url)
        try:
            first, second = (
                receiver(conn, "kept-topic", credit=1),
                receiver(conn, "kept-topic", credit=1),
            )
            put(conn, "kept-topic", "to both")
            assert fetch(conn, first)[0].body == fetch(conn, second)[0].body == "to both"
        finally:
            conn.close()


# --- QUERY -------------------------------------------------------------------------------


def test_paging_through_a_thousand_queues(auto_broker: BrokerProcess) -> None:
    conn = connect(auto_broker.url)
    manager = Manager(conn, reply_link=True)
    names = [f"page-{i:04d}" for i in range(1000)]
    shuffled = random.Random(7).sample(names, len(names))  # made out of order
    pending = [manager.send("CREATE", QUEUE, n) for n in shuffled]
    assert {manager.wait(c).status for c in pending} == {201}

    everything = manager.query(QUEUE, ["name"])
    total = int(everything.properties["count"])
    assert len(ok(everything)["results"]) == total >= 1000

    def page(offset: int, count: int) -> list[str]:
        reply = manager.query(QUEUE, ["name", "depth"], offset=offset, count=count)
        body = ok(reply)
        assert body["attributeNames"] == ["name", "depth"]
        assert int(reply.properties["count"]) == len(body["results"])
        return [row[0] for row in body["results"]]

    pages = [page(offset, 250) for offset in range(0, total, 250)]
    assert all(len(p) == 250 for p in pages[:-1])
    seen = [n for p in pages for n in p]
    assert len(seen) == total
    assert len(set(seen)) == total  # each once
    assert seen == sorted(seen)  # by name, whatever the order they were made in
    assert [n for n in seen if n.startswith("page-")] == names
    assert page(250, 250) == pages[1]  # the same page twice
    assert page(total, 250) == []
    assert page(10, 0) == []
    # A count above the cap is no error: the reply holds what there is.
    assert page(0, 20_000) == seen
    conn.close()


def test_a_query_carries_at_most_ten_thousand_rows() -> None:
    # An anycast address comes with its queue: 5,001 of them are 10,002 rows of a QUERY
    # of every type.
    names = [f"crowd-{i:04d}" for i in range(5_001)]
    with run_broker() as crowded:
        conn = connect(crowded.url)
        manager = Manager(conn, reply_link=True)
        pending = [manager.send("CREATE", ADDRESS, n, body={"routing": "anycast"}) for n in names]
        assert {manager.wait(c, timeout=60).status for c in pending} == {201}

        def query(**paging: Any) -> tuple[list[tuple[str, str]], Reply]:
            reply = manager.call(
                "QUERY", NODE_TYPE, "self", body={"attributeNames": ["type", "name"]}, **paging
            )
            rows = [(row[0], row[1]) for row in ok(reply)["results"]]
            assert int(reply.properties["count"]) == len(rows)
            return rows, reply

        per_type = {t: [(t, r["name"]) for r in manager.rows(t, ["name"])] for t in TYPES}
        assert len(per_type[ADDRESS]) == len(per_type[QUEUE]) == len(names)
        expected = sorted(row for rows in per_type.values() for row in rows)
        assert len(expected) > 10_000

        # Everything, or more than the cap: the first 10,000, and a description that says so.
        for paging in ({}, {"count": 20_000}):
            rows, reply = query(**paging)
            assert rows == expected[:10_000]
            assert "at most 10000" in reply.description
        # Exactly the cap is not cut short; the rest is on the next page.
        rows, reply = query(count=10_000)
        assert (len(rows), reply.description) == (10_000, "OK")
        rows, reply = query(offset=10_000)
        assert (rows, reply.description) == (expected[10_000:], "OK")
        conn.close()


# --- queue operations --------------------------------------------------------------------


def test_peek_takes_nothing(
    manager: Manager, clients: Callable[..., BlockingConnection], name: str
) -> None:
    create_queue(manager, name)
    conn = clients()
    put(
        conn,
        name,
        Message(
            body={"n": 1},
            id="m-1",
            subject="first",
            properties={"colour": "red"},
            durable=True,
            priority=7,
        ),
        Message(body="two", id="m-2", correlation_id="c-2", properties={"colour": "blue"}),
        Message(body=b"\x00three"),
    )
    peeked = ok(manager.call("PEEK", QUEUE, name, count=2))
    assert len(peeked) == 2
    first, second = peeked
    assert first["body"] == {"n": 1}
    assert (first["message_id"], first["subject"]) == ("m-1", "first")
    assert first["application_properties"] == {"colour": "red"}
    assert (first["priority"], first["durable"], first["delivery_count"]) == (7, True, 0)
    assert first["size"] > 0
    assert (second["body"], second["correlation_id"]) == ("two", "c-2")
    assert first["seq"] < second["seq"]
    everything = ok(manager.call("PEEK", QUEUE, name))
    assert [m["body"] for m in everything] == [{"n": 1}, "two", b"\x00three"]
    assert ok(manager.call("READ", QUEUE, name))["depth"] == 3
    assert bodies(drain(conn, receiver(conn, name))) == [{"n": 1}, "two", b"\x00three"]


def test_purge_leaves_what_consumers_hold(
    manager: Manager, clients: Callable[..., BlockingConnection], name: str
) -> None:
    create_queue(manager, name)
    conn = clients()
    put(conn, name, *range(5))
    rx = receiver(conn, name, credit=2)
    held = [fetch(conn, rx) for _ in range(2)]
    assert ok(manager.call("PURGE", QUEUE, name)) == {"purged": 3}
    queue = ok(manager.call("READ", QUEUE, name))
    assert (queue["depth"], queue["available"], queue["unacknowledged"]) == (2, 0, 2)
    for _, delivery in held:
        settle(delivery, "release")
    flush(conn)
    sync(conn)
    assert ok(manager.call("READ", QUEUE, name))["available"] == 2
    assert ok(manager.call("PURGE", QUEUE, name)) == {"purged": 2}
    assert ok(manager.call("READ", QUEUE, name))["depth"] == 0


def test_move(manager: Manager, clients: Callable[..., BlockingConnection], name: str) -> None:
    source, target = f"{name}-from", f"{name}-to"
    create_queue(manager, source)
    create_queue(manager, target)
    conn = clients()
    colours = ["red", "blue"] * 3
    put(
        conn,
        source,
        *(Message(body=i, properties={"colour": c}) for i, c in enumerate(colours)),
    )

    moved = ok(manager.call("MOVE", QUEUE, source, to=target, selector="colour = 'red'"))
    assert moved == {"moved": 3, "left": 3}
    assert ok(manager.call("MOVE", QUEUE, source, to=target, count=2)) == {"moved": 2, "left": 1}
    assert ok(manager.call("READ", QUEUE, target))["depth"] == 5
    assert bodies(drain(conn, receiver(conn, target))) == [0, 2, 4, 1, 3]
    assert bodies(drain(conn, receiver(conn, source))) == [5]

    assert manager.call("MOVE", QUEUE, source, to=f"{name}-nowhere").status == 404
    assert manager.call("MOVE", QUEUE, source).status == 400  # "to" is required
    assert manager.call("MOVE", QUEUE, source, to=target, selector="colour ===").status == 400


def test_retry_sends_dead_letters_home(
    manager: Manager, clients: Callable[..., BlockingConnection], name: str
) -> None:
    dlq = f"{name}.dlq"
    create_queue(manager, dlq)
    create_queue(manager, name, dead_letter_address=dlq)
    conn = clients()
    put(conn, name, "a", "b", "c")
    rx = receiver(conn, name, credit=3)
    for _ in range(3):
        settle(fetch(conn, rx)[1], "reject")
    flush(conn)
    sync(conn)
    letters = ok(manager.call("PEEK", QUEUE, dlq))
    assert [m["body"] for m in letters] == ["a", "b", "c"]
    assert all(m["message_annotations"][ORIGINAL_QUEUE] == name for m in letters)
    rx.close()

    assert ok(manager.call("RETRY", QUEUE, dlq, count=1)) == {"moved": 1, "left": 2}
    assert ok(manager.call("RETRY", QUEUE, dlq)) == {"moved": 2, "left": 0}
    assert ok(manager.call("READ", QUEUE, name))["depth"] == 3
    assert bodies(drain(conn, receiver(conn, name))) == ["a", "b", "c"]


# --- errors ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def existing(manager: Manager) -> str:
    """A queue the error cases may name."""
    create_queue(manager, "errors-existing")
    return "errors-existing"


ERRORS = [
    pytest.param({"type": QUEUE, "name": "x"}, None, 400, id="no-operation"),
    pytest.param({"operation": "READ", "type": QUEUE}, None, 400, id="read-without-name"),
    pytest.param({"operation": "CREATE", "type": QUEUE}, {}, 400, id="create-without-name"),
    pytest.param({"operation": "READ", "type": QUEUE, "name": 5}, None, 400, id="name-not-string"),
    pytest.param(
        {"operation": "CREATE", "type": QUEUE, "name": "bad-type"},
        {"max_messages": "lots"},
        400,
        id="bad-attribute-type",
    ),
    pytest.param(
        {"operation": "CREATE", "type": QUEUE, "name": "bad-name"},
        {"colour": "red"},
        400,
        id="unknown-attribute",
    ),
    pytest.param(
        {"operation": "CREATE", "type": QUEUE, "name": "bad-value"},
        {"max_messages": 0},
        400,
        id="value-the-model-refuses",
    ),
    pytest.param(
        {"operation": "CREATE", "type": QUEUE, "name": "bad-read-only"},
        {"depth": 3},
        400,
        id="read-only-attribute",
    ),
    pytest.param(
        {"operation": "CREATE", "type": QUEUE, "name": "bad-body"}, "not a map", 400, id="bad-body"
    ),
    pytest.param(
        {"operation": "CREATE", "type": QUEUE, "name": "bad-routing"},
        {"routing": "multicast"},
        400,
        id="multicast-queue",
    ),
    pytest.param(
        {"operation": "CREATE", "type": LISTENER, "name": "http://127.0.0.1:1"},
        {},
        400,
        id="listener-not-amqp",
    ),
    pytest.param(
        {"operation": "CREATE", "type": LISTENER, "name": "amqp://127.0.0.1:1"},
        {"url": "amqp://127.0.0.1:2"},
        400,
        id="listener-url-not-its-name",
    ),
    pytest.param(
        {"operation": "QUERY", "type": NODE_TYPE, "entityType": QUEUE, "offset": -1},
        None,
        400,
        id="negative-offset",
    ),
    pytest.param(
        {"operation": "READ", "type": "petrel.nonsense", "name": "x"}, None, 404, id="unknown-type"
    ),
    pytest.param(
        {"operation": "QUERY", "type": NODE_TYPE, "entityType": "petrel.nonsense"},
        None,
        404,
        id="query-unknown-type",
    ),
    pytest.param(
        {"operation": "READ", "type": QUEUE, "name": "no-such-queue"},
        None,
        404,
        id="unknown-entity",
    ),
    pytest.param(
        {"operation": "PURGE", "type": QUEUE, "name": "no-such-queue"},
        None,
        404,
        id="purge-unknown-queue",
    ),
    pytest.param(
        {"operation": "CREATE", "type": QUEUE, "name": "errors-existing"},
        {},
        409,
        id="create-twice",
    ),
    pytest.param(
        {"operation": "CREATE", "type": ADDRESS, "name": "errors-existing"},
        {},
        409,
        id="address-of-an-existing-queue",
    ),
    pytest.param({"operation": "FROBNICATE", "type": QUEUE}, None, 501, id="unknown-operation"),
    pytest.param(
        {"operation": "UPDATE", "type": LINK, "name": "c1/l1"},
        {"credit": 5},
        501,
        id="update-a-link",
    ),
    pytest.param(
        {"operation": "PURGE", "type": ADDRESS, "name": "errors-existing"},
        None,
        501,
        id="purge-an-address",
    ),
    pytest.param(
        {"operation": "CREATE", "type": CONNECTION, "name": "c99"}, {}, 501, id="create-connection"
    ),
]


@pytest.mark.parametrize(("properties", "body", "status"), ERRORS)
def test_error_statuses(
    manager: Manager, existing: str, properties: dict[str, Any], body: Any, status: int
) -> None:
    properties = dict(properties)
    operation = properties.pop("operation", None)
    reply = manager.call(operation, body=body, **properties)
    assert reply.status == status, reply.description
    assert reply.description  # says what is wrong
    # Nothing was made by a failed CREATE.
    if operation == "CREATE" and isinstance(properties.get("name"), str) and status != 409:
        assert manager.call("READ", properties["type"], properties["name"]).status == 404
    ok(manager.call("READ", QUEUE, existing))  # and the node carries on


def test_only_admins_and_local_anonymous_clients_may_manage(
    ports: Ports, manager: Manager, clients: Callable[..., BlockingConnection], name: str
) -> None:
    secure = f"amqp://127.0.0.1:{ports.secure}"
    clerk = Manager(clients(secure, user=CLERK[0], password=CLERK[1], allowed_mechs="PLAIN"))
    for operation, entity_type, entity in (
        ("READ", BROKER, "petrel"),
        ("CREATE", QUEUE, name),
        ("QUERY", NODE_TYPE, "self"),
    ):
        reply = clerk.call(operation, entity_type, entity)
        assert reply.status == 403, reply.description
    assert manager.call("READ", QUEUE, name).status == 404  # the CREATE was not performed

    boss = Manager(clients(secure, user=ADMIN[0], password=ADMIN[1], allowed_mechs="PLAIN"))
    assert ok(boss.call("READ", BROKER, "petrel"))["name"] == "petrel"
    create_queue(boss, name)
    # The same admin on the anonymous-friendly listener, and an anonymous local client.
    boss_here = Manager(clients(user=ADMIN[0], password=ADMIN[1], allowed_mechs="PLAIN"))
    assert ok(boss_here.call("READ", QUEUE, name))["name"] == name
    assert ok(manager.call("READ", QUEUE, name))["name"] == name


def test_a_request_without_reply_to_is_not_performed(manager: Manager, name: str) -> None:
    manager.send("CREATE", QUEUE, name, body={}, reply_to=None)
    manager.delivered()
    assert manager.last_delivery.remote_state == Delivery.ACCEPTED
    ok(manager.call("GET-TYPES", NODE_TYPE, "self"))  # a round trip after it
    assert manager.call("READ", QUEUE, name).status == 404
    create_queue(manager, name)  # the node carries on


@pytest.mark.parametrize(
    "payload",
    [b"\xde\xad\xbe\xef", b"\xa1\x05hello"],
    ids=["garbage", "a-bare-string"],
)
def test_a_request_that_is_no_message_is_rejected(
    broker: BrokerProcess, clients: Callable[..., BlockingConnection], payload: bytes
) -> None:
    manager = Manager(clients())
    link = manager.sender.link
    delivery = link.delivery(link.delivery_tag())
    link.stream(payload)
    link.advance()
    wait_for(manager.conn, lambda: bool(delivery.remote_state))
    assert delivery.remote_state == Delivery.REJECTED
    assert delivery.remote.condition.name == "amqp:decode-error"
    # The same link carries on.
    assert set(ok(manager.call("GET-TYPES", NODE_TYPE, "self"))) == TYPES


# --- $management is a node, not a queue --------------------------------------------------


def test_management_is_never_a_queue(
    auto_broker: BrokerProcess, manager: Manager, name: str
) -> None:
    # The module's broker, after all the tests above.
    for entity_type in (QUEUE, ADDRESS, SUBSCRIPTION):
        assert manager.call("READ", entity_type, NODE).status == 404
        assert NODE not in {row["name"] for row in manager.rows(entity_type)}

    # A broker that creates queues on first use.
    conn = connect(auto_broker.url)
    # Replies to a link attached from $management, by its target address...
    local = Manager(conn, reply_link=True)
    assert set(ok(local.call("GET-TYPES", NODE_TYPE, "self"))) == TYPES
    # ... or by its name.
    by_name = f"{name}-by-link-name"
    replies = conn.create_receiver(NODE, credit=10, name=by_name)
    local.send("READ", BROKER, identity="broker", reply_to=by_name)
    reply, _ = fetch(conn, replies)
    assert reply.properties["statusCode"] == 200
    assert reply.body["identity"] == "broker"

    # Through the anonymous relay, replies to a dynamic queue.
    relay = sender(conn, None)
    dynamic = conn.create_receiver(None, dynamic=True, credit=10, name=f"{name}-dynamic")
    request = Message(
        address=NODE,
        reply_to=dynamic.remote_source.address,
        id="relayed-1",
        properties={"operation": "READ", "type": BROKER, "identity": "broker"},
    )
    assert relay.send(request).remote_state == Delivery.ACCEPTED
    reply, delivery = fetch(conn, dynamic)
    settle(delivery)
    assert reply.properties["statusCode"] == 200
    assert reply.correlation_id == "relayed-1"  # the message-id, as there was no correlation-id

    # A reply to an address that does not exist is dropped; nothing is created for it.
    nowhere = f"{name}-nowhere"
    local.send("READ", BROKER, identity="broker", reply_to=nowhere)
    ok(local.call("GET-TYPES", NODE_TYPE, "self"))
    # A plain sender and receiver on $management are the node's, not a queue's.
    plain = sender(conn, NODE)
    send(plain, "not a request: no reply-to")

    queues = {row["name"] for row in local.rows(QUEUE)}
    addresses = {row["name"] for row in local.rows(ADDRESS)}
    assert NODE not in queues | addresses
    assert nowhere not in queues | addresses
    conn.close()


def test_a_reply_link_serves_its_own_connection(
    broker: BrokerProcess, clients: Callable[..., BlockingConnection], name: str
) -> None:
    mine = Manager(clients(), reply_link=True)
    # Another client attaches a reply link with the same target address, afterwards.
    other = clients()
    thief = other.create_receiver(
        NODE, credit=10, name=f"{name}-thief", options=ReplyTarget(mine.reply_to)
    )
    sync(other)
    assert ok(mine.call("READ", BROKER, identity="broker"))["identity"] == "broker"
    assert drain(other, thief) == []


# --- connections and listeners -----------------------------------------------------------


def test_delete_closes_a_connection(
    manager: Manager, clients: Callable[..., BlockingConnection], name: str
) -> None:
    create_queue(manager, name)
    victim = clients(container_id=f"{name}-victim")
    sync(victim)
    bystander = clients(container_id=f"{name}-bystander")
    rows = {row["container"]: row["identity"] for row in manager.rows(CONNECTION)}
    identity = rows[f"{name}-victim"]

    deleting = manager.send("DELETE", CONNECTION, identity=identity)
    manager.delivered()
    with pytest.raises(ConnectionClosed) as caught:
        wait_for(victim, lambda: False)
    assert caught.value.condition == "amqp:connection:forced"
    victim.close()  # Proton answers the close (the exception cut its turn short)
    ok(manager.wait(deleting), 204)
    # The reply came once the connection was over.
    assert manager.call("READ", CONNECTION, identity=identity).status == 404
    assert f"{name}-bystander" in {row["container"] for row in manager.rows(CONNECTION)}
    put(bystander, name, "still here")
    assert bodies(drain(bystander, receiver(bystander, name))) == ["still here"]


def test_listeners_are_created_and_deleted_at_runtime(
    manager: Manager, clients: Callable[..., BlockingConnection], name: str
) -> None:
    create_queue(manager, name)
    port = free_port()
    url = f"amqp://127.0.0.1:{port}"
    created = ok(manager.call("CREATE", LISTENER, url), 201)
    assert (created["url"], created["port"]) == (url, port)
    identity = created["identity"]

    early = clients(url)
    put(early, name, "through the new listener")
    listed = {row["identity"]: row for row in manager.rows(LISTENER)}
    assert listed[identity]["connections"] == 1
    assert manager.call("CREATE", LISTENER, url).status == 409

    ok(manager.call("DELETE", LISTENER, identity=identity), 204)
    with pytest.raises(ConnectionException):
        connect(url).close()
    assert manager.call("READ", LISTENER, url).status == 404
    # A connection it accepted before carries on.
    assert bodies(drain(early, receiver(early, name))) == ["through the new listener"]

    # A port something else holds: a 400 naming the problem.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = f"amqp://127.0.0.1:{taken.getsockname()[1]}"
        reply = manager.call("CREATE", LISTENER, busy)
        assert reply.status == 400, reply.description
