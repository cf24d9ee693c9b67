"""Bad input gets its error, and only its sender notices: another client of the same broker
carries on.  The broker here creates nothing on demand and takes messages of at most 1 MiB."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest
from proton import Delivery, Message
from proton.reactor import Selector
from proton.utils import BlockingConnection, LinkDetached

from petrel.codec import encode
from petrel.spec import Attach, Begin, Close, Data, Flow, Open, Role, Source, Target, Transfer
from petrel.spec.framing import AMQP_HEADER, SASL_HEADER
from tests.helpers.frames import frame, parse
from tests.helpers.proton_client import (
    bodies,
    connect,
    drain,
    flush,
    receiver,
    send,
    sender,
    settle,
    wait_for,
)
from tests.helpers.proton_client import (
    bystander as bystander_client,
)
from tests.helpers.servers import BrokerProcess, run_broker

pytestmark = pytest.mark.interop

STRICT_CONFIG = """
auto_create = false

[limits]
max_message_size = 1048576

[[queues]]
name = "orders"

[[queues]]
name = "relayed"

[[queues]]
name = "sizes"

[[queues]]
name = "half-sent"

[[queues]]
name = "aborted"

[[queues]]
name = "bystander"
"""


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerProcess]:
    with run_broker(STRICT_CONFIG) as process:
        yield process


@pytest.fixture(scope="module")
def bystander(broker: BrokerProcess) -> Iterator[Callable[[], None]]:
    """A client connected all along; calling it checks that it still works."""
    with bystander_client(broker.url) as check:
        yield check


def test_receiving_from_an_unknown_address(
    conn: BlockingConnection, bystander: Callable[[], None]
) -> None:
    with pytest.raises(LinkDetached) as caught:
        receiver(conn, "no-such-queue")
    assert caught.value.condition == "amqp:not-found"
    bystander()
    # The connection that asked carries on too.
    assert drain(conn, receiver(conn, "orders")) == []


def test_sending_to_an_unknown_address(
    conn: BlockingConnection, bystander: Callable[[], None]
) -> None:
    with pytest.raises(LinkDetached) as caught:
        sender(conn, "no-such-queue")
    assert caught.value.condition == "amqp:not-found"
    bystander()


def test_anonymous_relay_to_an_unknown_address_is_rejected(
    conn: BlockingConnection, bystander: Callable[[], None]
) -> None:
    relay = sender(conn, None)
    delivery = relay.send(Message(body="lost", address="no-such-queue"), error_states=[])
    assert delivery.remote_state == Delivery.REJECTED
    assert delivery.remote.condition.name == "amqp:not-found"
    # The relay link carries on to addresses that exist.
    send(relay, "found", address="relayed")
    assert bodies(drain(conn, receiver(conn, "relayed"))) == ["found"]
    bystander()


def test_a_bad_selector(conn: BlockingConnection, bystander: Callable[[], None]) -> None:
    with pytest.raises(LinkDetached) as caught:
        receiver(conn, "orders", options=Selector("weight >>> 2"))
    assert caught.value.condition == "amqp:invalid-field"
    bystander()


def test_an_over_size_message(conn: BlockingConnection, bystander: Callable[[], None]) -> None:
    tx = sender(conn, "sizes")
    send(tx, b"x" * (1024 * 1024 - 1024))  # just under the limit
    with pytest.raises(LinkDetached) as caught:
        send(tx, b"x" * (1024 * 1024 + 1))
    assert caught.value.condition == "amqp:link:message-size-exceeded"
    bystander()
    assert len(drain(conn, receiver(conn, "sizes"))) == 1


def test_a_message_that_is_not_an_amqp_message(
    conn: BlockingConnection, bystander: Callable[[], None]
) -> None:
    tx = sender(conn, "orders")
    delivery = tx.link.delivery(tx.link.delivery_tag())
    tx.link.stream(b"\xff\x00 this is not an AMQP message")
    tx.link.advance()
    wait_for(conn, lambda: bool(delivery.remote_state))
    assert delivery.remote_state == Delivery.REJECTED
    assert delivery.remote.condition.name == "amqp:decode-error"
    delivery.settle()
    bystander()
    # The link carries on.
    send(tx, "well formed")
    got = drain(conn, receiver(conn, "orders"))
    assert bodies(got) == ["well formed"]
    settle(got[0][1])


def test_an_aborted_delivery(conn: BlockingConnection, bystander: Callable[[], None]) -> None:
    tx = sender(conn, "aborted")
    delivery = tx.link.delivery(tx.link.delivery_tag())
    tx.link.stream(b"\x00\x53\x75\xb0\x00\x10\x00\x00" + b"a" * 200_000)  # a data section
    flush(conn)  # part of it goes out
    delivery.abort()
    send(tx, "complete")
    got = drain(conn, receiver(conn, "aborted"))
    assert bodies(got) == ["complete"]
    settle(got[0][1])
    bystander()


def _exchange(broker: BrokerProcess, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw ``data``; return everything the broker writes until it closes the socket."""
    with socket.create_connection(("127.0.0.1", broker.port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk
    raise AssertionError(f"the broker did not close the socket; it sent {received!r}")


def _close_error(data: bytes) -> str:
    headers, frames = parse(data)
    assert headers == [AMQP_HEADER]
    closes = [body for _, body, _ in frames if isinstance(body, Close)]
    assert len(closes) == 1, frames
    assert closes[0].error is not None
    return str(closes[0].error.condition)


def test_not_amqp_at_all(broker: BrokerProcess, bystander: Callable[[], None]) -> None:
    answer = _exchange(broker, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    # The broker says which protocol it speaks, then hangs up.
    assert answer in (AMQP_HEADER, SASL_HEADER)
    bystander()


def test_garbage_frames(broker: BrokerProcess, bystander: Callable[[], None]) -> None:
    garbage = bytes(range(256)) * 4
    answer = _exchange(broker, AMQP_HEADER + frame(Open(container_id="raw")) + garbage)
    assert _close_error(answer) in ("amqp:connection:framing-error", "amqp:decode-error")
    bystander()


def test_an_undecodable_performative(broker: BrokerProcess, bystander: Callable[[], None]) -> None:
    body = b"\x00\x53\x10\xc0\xff\xff"  # an open whose list claims more bytes than there are
    bad = len(body) + 8
    answer = _exchange(broker, AMQP_HEADER + bad.to_bytes(4, "big") + b"\x02\x00\x00\x00" + body)
    assert _close_error(answer) in ("amqp:decode-error", "amqp:connection:framing-error")
    bystander()


def test_a_frame_size_beyond_the_limit(
    broker: BrokerProcess, bystander: Callable[[], None]
) -> None:
    answer = _exchange(broker, AMQP_HEADER + b"\xff\xff\xff\xf0\x02\x00\x00\x00" + b"\x00" * 64)
    assert _close_error(answer) == "amqp:connection:framing-error"
    bystander()


def test_a_client_that_vanishes_mid_message(
    broker: BrokerProcess, bystander: Callable[[], None]
) -> None:
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5.0) as sock:
        sock.sendall(
            AMQP_HEADER
            + frame(Open(container_id="vanishing"))
            + frame(Begin(next_outgoing_id=0, incoming_window=1000, outgoing_window=1000))
            + frame(
                Attach(
                    name="half",
                    handle=0,
                    role=Role.SENDER,
                    source=Source(),
                    target=Target(address="half-sent"),
                    initial_delivery_count=0,
                )
            )
        )
        received = b""
        while not any(isinstance(body, Flow) for _, body, _ in parse(received)[1]):
            received += sock.recv(65536)
        first_part = encode(Data(b"z" * 10_000))
        sock.sendall(
            frame(
                Transfer(handle=0, delivery_id=0, delivery_tag=b"t", more=True), payload=first_part
            )
        )
    bystander()
    check = connect(broker.url)
    try:
        # Nothing half-received was queued.
        assert drain(check, receiver(check, "half-sent")) == []
    finally:
        check.close()
