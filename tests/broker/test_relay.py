"""Request/response over dynamic reply queues, and the anonymous relay."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from proton import Delivery, Message
from proton.reactor import LinkOption
from proton.utils import BlockingConnection, LinkDetached, SyncRequestResponse

from tests.helpers.proton_client import (
    TIMEOUT,
    bodies,
    connect,
    drain,
    fetch,
    receiver,
    send,
    sender,
    settle,
)
from tests.helpers.servers import BrokerProcess

pytestmark = pytest.mark.interop

Connect = Callable[..., BlockingConnection]


class DynamicTarget(LinkOption):
    """Ask the broker for a dynamic node as the sender's target."""

    def apply(self, link: object) -> None:
        link.target.dynamic = True  # type: ignore[attr-defined]


def test_request_response_with_a_dynamic_reply_queue(connections: Connect, name: str) -> None:
    client, service = connections(), connections()
    replies = receiver(client, None, credit=1, dynamic=True)
    reply_to = replies.link.remote_source.address
    assert reply_to

    requests = receiver(service, name, credit=1)
    send(sender(client, name), "ping", reply_to=reply_to, correlation_id="req-1")

    request, delivery = fetch(service, requests)
    assert request.reply_to == reply_to
    relay = sender(service, None)
    send(
        relay, request.body.upper(), address=request.reply_to, correlation_id=request.correlation_id
    )
    settle(delivery)

    reply, _ = fetch(client, replies)
    assert (reply.body, reply.correlation_id) == ("PING", "req-1")


def test_a_dynamic_queue_goes_with_its_link(connections: Connect) -> None:
    client, service = connections(), connections()
    replies = receiver(client, None, dynamic=True)
    reply_to = replies.link.remote_source.address
    replies.close()
    relay = sender(service, None)
    delivery = relay.send(Message(body="too late", address=reply_to), error_states=[])
    assert delivery.remote_state == Delivery.REJECTED
    assert delivery.remote.condition.name == "amqp:not-found"


def test_a_dynamic_queue_goes_with_its_link_even_if_another_link_reads_it(
    connections: Connect,
) -> None:
    owner, other = connections(), connections()
    replies = receiver(owner, None, dynamic=True)
    address = replies.link.remote_source.address
    receiver(owner, address)  # another reader does not keep the node alive
    replies.close()
    relay = sender(other, None)
    delivery = relay.send(Message(body="late", address=address), error_states=[])
    assert delivery.remote.condition.name == "amqp:not-found"


def test_a_sender_to_a_dynamic_queue_that_has_gone(connections: Connect) -> None:
    client, service = connections(), connections()
    replies = receiver(client, None, dynamic=True)
    reply_to = replies.link.remote_source.address
    to_client = sender(service, reply_to)
    send(to_client, "while it lasts")
    replies.close()
    delivery = to_client.send(Message(body="too late"), error_states=[])
    assert delivery.remote_state == Delivery.REJECTED
    assert delivery.remote.condition.name == "amqp:resource-deleted"
    # Nothing brought the queue back.
    relay = sender(service, None)
    delivery = relay.send(Message(body="too late", address=reply_to), error_states=[])
    assert delivery.remote.condition.name == "amqp:not-found"


def test_a_dynamic_target(conn: BlockingConnection) -> None:
    tx = conn.create_sender(None, name="dynamic-target", options=DynamicTarget())
    address = tx.link.remote_target.address
    assert address
    send(tx, "to my own node")
    assert bodies(drain(conn, receiver(conn, address))) == ["to my own node"]
    tx.close()
    # The node went with the link that asked for it.
    with pytest.raises(LinkDetached) as caught:
        receiver(conn, address)
    assert caught.value.condition == "amqp:not-found"


def test_dynamic_queues_are_private(connections: Connect) -> None:
    a, b = connections(), connections()
    rx_a = receiver(a, None, dynamic=True, credit=1)
    mine = rx_a.link.remote_source.address
    assert mine != receiver(b, None, dynamic=True).link.remote_source.address
    # Another connection may send to it (it is a reply address) but not take from it.
    with pytest.raises(LinkDetached) as caught:
        receiver(b, mine)
    assert caught.value.condition == "amqp:resource-locked"
    send(sender(b, mine), "for a")
    assert fetch(a, rx_a)[0].body == "for a"
    # Its own connection may (rx_a has used its credit).
    send(sender(b, mine), "for a again")
    assert bodies(drain(a, receiver(a, mine))) == ["for a again"]


def _serve(url: str, address: str, count: int, ready: threading.Event) -> None:
    conn = connect(url)
    try:
        requests = receiver(conn, address, credit=count)
        relay = sender(conn, None)
        ready.set()
        for _ in range(count):
            request, delivery = fetch(conn, requests)
            send(
                relay,
                f"re: {request.body}",
                address=request.reply_to,
                correlation_id=request.correlation_id,
            )
            settle(delivery)
    finally:
        conn.close()


def test_proton_sync_request_response(
    broker: BrokerProcess, conn: BlockingConnection, name: str
) -> None:
    ready = threading.Event()
    service = threading.Thread(target=_serve, args=(broker.url, name, 3, ready), daemon=True)
    service.start()
    assert ready.wait(TIMEOUT)
    client = SyncRequestResponse(conn, name)
    answers = [client.call(Message(body=f"q{i}")).body for i in range(3)]
    assert answers == ["re: q0", "re: q1", "re: q2"]
    service.join(TIMEOUT)
    assert not service.is_alive()


# --- anonymous relay ----------------------------------------------------------------------------


def test_anonymous_relay_routes_each_message_by_its_to(conn: BlockingConnection, name: str) -> None:
    relay = sender(conn, None)
    for i in range(4):
        send(relay, i, address=f"{name}-{i % 2}")
    assert bodies(drain(conn, receiver(conn, f"{name}-0"))) == [0, 2]
    assert bodies(drain(conn, receiver(conn, f"{name}-1"))) == [1, 3]


def test_anonymous_relay_to_a_topic(conn: BlockingConnection) -> None:
    subscribers = [receiver(conn, "news", credit=1) for _ in range(2)]
    send(sender(conn, None), "extra", address="news")
    for rx in subscribers:
        assert fetch(conn, rx)[0].body == "extra"


def test_anonymous_relay_needs_a_to(conn: BlockingConnection) -> None:
    relay = sender(conn, None)
    delivery = relay.send(Message(body="nowhere"), error_states=[])
    assert delivery.remote_state == Delivery.REJECTED
    # The link carries on.
    send(relay, "somewhere", address="relay-after-reject")
