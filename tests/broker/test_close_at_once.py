"""Outcomes across a detach: a producer that closes its sender right after sending still
hears the broker's accept, and a consumer that closes its receiver is told the broker let
its deliveries go.

Deliveries belong to the session (part 2.7.6: a disposition "MAY refer to deliveries on
links that are no longer attached"); Proton keeps one until it is settled, and its C++
example ``ssl_client_cert`` sends, closes its sender at once, then waits for the accept.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from proton import Message
from proton.handlers import MessagingHandler
from proton.reactor import Container
from proton.utils import BlockingConnection

from tests.helpers.proton_client import bodies, drain, fetch, receiver, wait_for
from tests.helpers.servers import run_broker

pytestmark = pytest.mark.interop


class _Timer:
    def __init__(self, action: Callable[[], None]) -> None:
        self.action = action

    def on_timer_task(self, event: Any) -> None:
        self.action()


class SendAndCloseAtOnce(MessagingHandler):  # type: ignore[misc]
    """``ssl_client_cert``'s pattern: on_sendable send one message and close the sender in
    the same breath; on_accepted close the connection."""

    def __init__(self, url: str, address: str, count: int, durable: bool) -> None:
        super().__init__()
        self.url, self.address, self.count, self.durable = url, address, count, durable
        self.sent = False
        self.outcomes: list[str] = []
        self.errors: list[str] = []

    def on_start(self, event: Any) -> None:
        self.conn = event.container.connect(self.url, reconnect=False)
        event.container.create_sender(self.conn, self.address)
        self.timer = event.container.schedule(15, _Timer(self._give_up))

    def _give_up(self) -> None:
        self.errors.append(f"no outcome in 15 s ({len(self.outcomes)} of {self.count})")
        self.conn.close()

    def on_sendable(self, event: Any) -> None:
        if self.sent:
            return
        self.sent = True
        for i in range(self.count):
            event.sender.send(Message(body=i, durable=self.durable))
        event.sender.close()

    def _outcome(self, what: str) -> None:
        self.outcomes.append(what)
        if len(self.outcomes) == self.count:
            self.timer.cancel()
            self.conn.close()

    def on_accepted(self, event: Any) -> None:
        self._outcome("accepted")

    def on_rejected(self, event: Any) -> None:
        self._outcome("rejected")

    def on_released(self, event: Any) -> None:
        self._outcome("released")


def _send_and_close(url: str, address: str, count: int, durable: bool) -> SendAndCloseAtOnce:
    handler = SendAndCloseAtOnce(url, address, count, durable)
    Container(handler).run()
    assert handler.errors == []
    return handler


@pytest.mark.parametrize("count", [1, 5])
def test_send_then_close_at_once_gets_the_accept(
    broker: Any, conn: BlockingConnection, name: str, count: int
) -> None:
    handler = _send_and_close(broker.url, name, count, durable=False)
    assert handler.outcomes == ["accepted"] * count
    assert bodies(drain(conn, receiver(conn, name))) == list(range(count))


def test_a_durable_message_accepted_once_stored(tmp_path: Path) -> None:
    """On a disk store the accept comes after the commit, by when the link is long gone."""
    with run_broker(store="sqlite", data_dir=tmp_path) as broker:
        handler = _send_and_close(broker.url, "stored", 3, durable=True)
        assert handler.outcomes == ["accepted"] * 3
    with run_broker(store="sqlite", data_dir=tmp_path) as broker:
        conn = BlockingConnection(broker.url, timeout=10)
        try:
            assert bodies(drain(conn, receiver(conn, "stored"))) == [0, 1, 2]
        finally:
            conn.close()


def test_a_closed_consumers_deliveries_are_settled_and_queued_again(
    conn: BlockingConnection, connections: Callable[..., BlockingConnection], name: str
) -> None:
    """The broker puts what a closing consumer held back on the queue and settles those
    deliveries, so neither side keeps them for the rest of the session."""
    producer = connections()
    tx = producer.create_sender(name)
    tx.send(Message(body="held"))
    rx = receiver(conn, name, credit=1)
    _, delivery = fetch(conn, rx)
    assert not delivery.settled  # Proton: settled by the peer
    rx.close()
    wait_for(conn, lambda: delivery.settled)
    again = receiver(conn, name, credit=1)
    message, _ = fetch(conn, again)
    assert message.body == "held"
