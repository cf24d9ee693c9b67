"""Load and flow control: a 50 MB message, 500 connections at once, a slow consumer with a
fast producer, and a full queue under each policy."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from proton import Delivery, Message
from proton.handlers import MessagingHandler
from proton.reactor import Container
from proton.utils import BlockingConnection

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
    sleep_processing,
    sync,
    wait_for,
)
from tests.helpers.servers import BrokerProcess, run_broker

pytestmark = pytest.mark.interop


class _Timer:
    """A Proton timer task that calls ``action``."""

    def __init__(self, action: Callable[[], None]) -> None:
        self.action = action

    def on_timer_task(self, event: Any) -> None:
        self.action()


def test_a_50_mb_message(conn: BlockingConnection, name: str) -> None:
    body = os.urandom(1024) * (50 * 1024)
    tx = sender(conn, name)
    send(tx, body, properties={"size": len(body)})
    rx = receiver(conn, name, credit=1)
    message, delivery = fetch(conn, rx, timeout=60)
    assert message.properties == {"size": len(body)}
    assert message.body == body
    settle(delivery)
    assert drain(conn, rx) == []


class ManyConnections(MessagingHandler):  # type: ignore[misc]
    """Open ``count`` connections at once; each sends one message; close them all when every
    message is accepted."""

    def __init__(self, url: str, address: str, count: int) -> None:
        super().__init__()
        self.url, self.address, self.count = url, address, count
        self.connections: list[Any] = []
        self.sent: set[str] = set()
        self.open = 0
        self.most_open = 0
        self.accepted = 0
        self.errors: list[str] = []

    def on_start(self, event: Any) -> None:
        for i in range(self.count):
            conn = event.container.connect(self.url, reconnect=False)
            event.container.create_sender(conn, self.address, name=f"sender-{i}")
            self.connections.append(conn)
        self.timer = event.container.schedule(60, _Timer(self._give_up))

    def _give_up(self) -> None:
        self.errors.append(f"timed out with {self.accepted} of {self.count} accepted")
        self._close_all()

    def _close_all(self) -> None:
        self.timer.cancel()
        for conn in self.connections:
            conn.close()
        self.connections = []

    def on_connection_opened(self, event: Any) -> None:
        self.open += 1
        self.most_open = max(self.most_open, self.open)

    def on_sendable(self, event: Any) -> None:
        name = event.sender.name
        if name not in self.sent:
            self.sent.add(name)
            event.sender.send(Message(body=name))

    def on_accepted(self, event: Any) -> None:
        self.accepted += 1
        if self.accepted == self.count:
            self._close_all()

    def on_rejected(self, event: Any) -> None:
        self.errors.append(f"rejected on {event.link.name}")

    def on_transport_error(self, event: Any) -> None:
        self.errors.append(str(event.transport.condition))


def test_500_connections_at_once(
    broker: BrokerProcess, conn: BlockingConnection, name: str
) -> None:
    handler = ManyConnections(broker.url, name, 500)
    container = Container(handler)
    container.run()
    assert handler.errors == []
    assert handler.accepted == 500
    assert handler.most_open == 500
    got = bodies(drain(conn, receiver(conn, name)))
    assert sorted(got) == sorted(f"sender-{i}" for i in range(500))


class SlowConsumerFastProducer(MessagingHandler):  # type: ignore[misc]
    """A producer that sends whenever it has credit and a consumer that takes one message at a
    time, a little later, on the same queue.  Records what the producer could observe."""

    def __init__(self, broker: BrokerProcess, address: str, total: int, size: int) -> None:
        super().__init__(prefetch=0, auto_accept=False)
        self.broker = broker
        self.address = address
        self.total = total
        self.payload = b"x" * size
        self.sent = 0
        self.stored = 0  # accepted by the broker: in the queue until consumed
        self.consumed = 0  # accepted by us, the consumer
        self.most_credit = 0
        self.most_queued = 0
        self.order: list[int] = []
        self.rss_kb: list[int] = []
        self.errors: list[str] = []

    def on_start(self, event: Any) -> None:
        self.container = event.container
        conn = event.container.connect(self.broker.url, reconnect=False)
        self.conn = conn
        self.sender = event.container.create_sender(conn, self.address, name="fast")
        self.receiver = event.container.create_receiver(conn, self.address, name="slow")
        self.receiver.flow(1)
        self.rss_kb.append(self.broker.rss_kb())
        self.timer = event.container.schedule(60, _Timer(self._give_up))

    def _give_up(self) -> None:
        self.errors.append(f"timed out after {self.consumed} of {self.total}")
        self.conn.close()

    def on_sendable(self, event: Any) -> None:
        tx = event.sender
        self.most_credit = max(self.most_credit, tx.credit)
        while tx.credit > 0 and self.sent < self.total:
            tx.send(Message(body=self.payload, properties={"n": self.sent}))
            self.sent += 1

    def on_accepted(self, event: Any) -> None:
        self.stored += 1
        # What the broker holds is at least what it accepted minus what we settled.
        self.most_queued = max(self.most_queued, self.stored - self.consumed)

    def on_rejected(self, event: Any) -> None:
        self.errors.append("a message was rejected")

    def on_message(self, event: Any) -> None:
        self.order.append(event.message.properties["n"])
        delivery = event.delivery
        self.container.schedule(0.001, _Timer(lambda: self._consume(delivery)))

    def _consume(self, delivery: Delivery) -> None:
        self.accept(delivery)
        self.consumed += 1
        if self.consumed % 100 == 0:
            self.rss_kb.append(self.broker.rss_kb())
        if self.consumed == self.total:
            self.timer.cancel()
            self.conn.close()
        else:
            self.receiver.flow(1)

    def on_transport_error(self, event: Any) -> None:
        self.errors.append(str(event.transport.condition))


def test_a_fast_producer_is_throttled_by_a_full_queue(broker: BrokerProcess) -> None:
    limit = 10  # the broker's "throttled" queue holds at most 10 messages
    handler = SlowConsumerFastProducer(broker, "throttled", total=1000, size=64 * 1024)
    Container(handler).run()
    assert handler.errors == []
    assert handler.order == list(range(1000))
    # The producer never had credit for more than the queue could take ...
    assert 0 < handler.most_credit <= limit
    # ... so the queue never held more than its limit ...
    assert handler.most_queued <= limit
    # ... and 64 MB went through a broker whose memory stayed far below that.
    growth_mb = (max(handler.rss_kb) - handler.rss_kb[0]) / 1024
    assert growth_mb < 32, handler.rss_kb


def test_a_full_queue_with_the_reject_policy_rejects(conn: BlockingConnection) -> None:
    tx = sender(conn, "full-rejects")
    for i in range(3):
        send(tx, i)
    delivery = tx.send(Message(body="one too many"), error_states=[])
    assert delivery.remote_state == Delivery.REJECTED
    assert delivery.remote.condition.name == "amqp:resource-limit-exceeded"
    rx = receiver(conn, "full-rejects", credit=1)
    message, delivery = fetch(conn, rx)
    settle(delivery)
    flush(conn)
    send(tx, "fits again")
    assert bodies(drain(conn, rx)) == [1, 2, "fits again"]
    assert message.body == 0


def test_a_full_queue_with_the_block_policy(conn: BlockingConnection) -> None:
    tx = sender(conn, "small-block")
    send(tx, "one")
    send(tx, "two")
    sync(conn)
    assert tx.link.credit == 0  # no credit for what the queue could not take
    # A relay, which holds no credit for this queue, is refused rather than let past the limit.
    relay = sender(conn, None)
    delivery = relay.send(Message(body="three", address="small-block"), error_states=[])
    assert delivery.remote_state == Delivery.REJECTED
    assert delivery.remote.condition.name == "amqp:resource-limit-exceeded"
    rx = receiver(conn, "small-block", credit=1)
    settle(fetch(conn, rx)[1])
    wait_for(conn, lambda: tx.link.credit == 1)  # room for one more: credit for one more
    send(tx, "three")
    assert bodies(drain(conn, rx)) == ["two", "three"]


def test_a_queue_limited_in_bytes(conn: BlockingConnection) -> None:
    size, total, limit = 1000, 30, 10000
    tx = sender(conn, "byte-limited")
    deliveries = [tx.link.send(Message(body=b"b" * size)) for _ in range(total)]
    sleep_processing(conn, 0.3)
    accepted = sum(1 for d in deliveries if d.remote_state == Delivery.ACCEPTED)
    assert accepted > 0
    assert accepted * size <= limit
    # Taking messages out lets the rest in.
    rx = receiver(conn, "byte-limited")
    got = 0
    while got < total:
        batch = drain(conn, rx)
        for _, delivery in batch:
            settle(delivery)
        got += len(batch)
        sleep_processing(conn, 0.02)
    assert all(d.remote_state == Delivery.ACCEPTED for d in deliveries)


def test_consumed_messages_with_a_long_ttl_leave_memory(
    broker: BrokerProcess, conn: BlockingConnection, name: str
) -> None:
    payload = b"t" * (64 * 1024)
    tx = sender(conn, name)
    rx = receiver(conn, name, credit=1000)
    before = broker.rss_kb()
    for _ in range(10):  # 1000 messages, 64 MB, each consumed long before its hour is up
        send_all(tx, [Message(body=payload, ttl=3600) for _ in range(100)])
        for _ in range(100):
            settle(fetch(conn, rx)[1])
    growth_mb = (broker.rss_kb() - before) / 1024
    assert growth_mb < 32


def test_a_producer_blocked_by_a_subscription_that_goes_away(tmp_path: Path) -> None:
    config = """
[queue_defaults]
max_messages = 2

[[addresses]]
name = "ticker"
routing = "multicast"
"""
    with run_broker(config, data_dir=tmp_path) as broker:
        conn = connect(broker.url)
        slow = receiver(conn, "ticker")  # subscribes, takes nothing
        tx = sender(conn, "ticker")
        send(tx, 1)
        send(tx, 2)
        sync(conn)
        assert tx.link.credit == 0  # the subscription is full
        slow.close()  # and now gone: nothing holds the producer back
        wait_for(conn, lambda: tx.link.credit > 0)
        send(tx, 3)
        conn.close()
