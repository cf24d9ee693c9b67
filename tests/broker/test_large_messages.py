"""Big messages through the broker: many frames in, many frames out, every byte intact.

Proton's client on both ends, with its own frame size (32 KiB), the smallest frame size
AMQP allows (512 bytes: a 5 MiB message is then over ten thousand frames), and two
producers whose big messages arrive at the broker interleaved.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable

from proton import Message
from proton.utils import BlockingConnection

from tests.helpers.proton_client import fetch, receiver, sender, settle

MIB = 1024 * 1024


def _send_and_fetch(
    connections: Callable[..., BlockingConnection],
    name: str,
    bodies: list[bytes],
    **producer: object,
) -> list[bytes]:
    """Send ``bodies`` on one connection, then fetch as many on another; their bodies."""
    tx_conn = connections(**producer)
    tx = sender(tx_conn, name)
    for body in bodies:
        tx.send(Message(body=body, inferred=True), timeout=60)
    rx_conn = connections()
    rx = receiver(rx_conn, name, credit=len(bodies))
    got = []
    for _ in bodies:
        message, delivery = fetch(rx_conn, rx, timeout=60)
        settle(delivery)
        got.append(bytes(message.body))
    return got


def test_a_5_mib_message_arrives_intact(
    connections: Callable[..., BlockingConnection], name: str
) -> None:
    body = os.urandom(5 * MIB)
    assert _send_and_fetch(connections, name, [body]) == [body]


def test_a_5_mib_message_in_512_byte_frames(
    connections: Callable[..., BlockingConnection], name: str
) -> None:
    """Over ten thousand transfers of one delivery: the broker takes the small pieces and
    sends the message on (in the consumer's frame size) unchanged."""
    body = os.urandom(5 * MIB + 3)
    assert _send_and_fetch(connections, name, [body], max_frame_size=512) == [body]


def test_big_messages_from_two_producers_at_once(
    connections: Callable[..., BlockingConnection], name: str
) -> None:
    """Two connections send 2 MiB messages at the same time, so their frames reach the
    broker in the same reads; each message comes out whole."""
    count = 4
    bodies = {who: [os.urandom(2 * MIB) for _ in range(count)] for who in ("a", "b")}
    errors: list[BaseException] = []

    def produce(who: str) -> None:
        try:
            conn = connections()
            tx = sender(conn, name)
            for body in bodies[who]:
                tx.send(Message(body=body, inferred=True), timeout=60)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(who,)) for who in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    rx_conn = connections()
    rx = receiver(rx_conn, name, credit=2 * count)
    got = set()
    for _ in range(2 * count):
        message, delivery = fetch(rx_conn, rx, timeout=60)
        settle(delivery)
        got.add(hashlib.sha256(bytes(message.body)).hexdigest())
    sent = {hashlib.sha256(b).hexdigest() for b in bodies["a"] + bodies["b"]}
    assert got == sent
