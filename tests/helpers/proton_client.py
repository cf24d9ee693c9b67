"""Proton as a broker's user: blocking connections with exact credit, drains and outcomes.

``proton.utils.BlockingConnection`` hides credit (``receive()`` grants one
when there is none) and settles in arrival order.  Broker tests need to say
exactly how much credit a consumer has and which delivery gets which
outcome, so these helpers work on the Proton objects underneath:

    conn = connect(broker.url)
    rx = receiver(conn, "orders", credit=3)
    message, delivery = fetch(conn, rx)
    settle(delivery, "modify", failed=True)
    rest = drain(conn, rx)               # everything the queue has for us now
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from proton import Condition, Data, Delivery, Message, symbol
from proton.reactor import LinkOption
from proton.utils import BlockingConnection, BlockingReceiver, BlockingSender, SendException

__all__ = [
    "Capabilities",
    "bodies",
    "connect",
    "drain",
    "fetch",
    "flush",
    "receiver",
    "send",
    "send_all",
    "sender",
    "settle",
    "sleep_processing",
    "sync",
    "wait_for",
]

_names = itertools.count(1)

#: How long a helper waits for the broker before the test fails.
TIMEOUT = 10.0


class Capabilities(LinkOption):
    """Set the capabilities of a receiver's source or a sender's target (``topic``, ...)."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def apply(self, link: Any) -> None:
        terminus = link.source if link.is_receiver else link.target
        data: Data = terminus.capabilities
        data.put_array(False, Data.SYMBOL)
        data.enter()
        for name in self.names:
            data.put_symbol(symbol(name))
        data.exit()


def connect(url: str, **kwargs: Any) -> BlockingConnection:
    """A blocking connection (kwargs go to ``Container.connect``: ``user``, ``container_id``...)."""
    return BlockingConnection(url, timeout=TIMEOUT, **kwargs)


def receiver(
    conn: BlockingConnection,
    address: str | None,
    *,
    credit: int = 0,
    name: str | None = None,
    options: LinkOption | list[LinkOption] | None = None,
    dynamic: bool = False,
) -> BlockingReceiver:
    """A receiver holding exactly ``credit`` (no prefetch window refilling it).

    Returns once the broker has seen the credit, so a message published on
    another connection right afterwards finds the consumer ready.  Proton
    names links ``<container-id>-<address>``, so two receivers from one
    address would clash; each gets a unique name unless ``name`` is given.
    """
    name = name or f"rx-{next(_names)}"
    rx = conn.create_receiver(address, name=name, options=options, dynamic=dynamic)
    if credit:
        rx.link.flow(credit)
        sync(conn)
    return rx


def sync(conn: BlockingConnection) -> None:
    """One round trip to the broker: everything sent before has been processed when it returns.

    (An anonymous-relay sender attached and closed: the broker answers frames in order.)
    """
    conn.create_sender(None, name=f"sync-{next(_names)}").close()


def sender(
    conn: BlockingConnection,
    address: str | None,
    *,
    name: str | None = None,
    options: LinkOption | list[LinkOption] | None = None,
) -> BlockingSender:
    """A sender with a unique link name (``address`` ``None``: anonymous relay)."""
    return conn.create_sender(address, name=name or f"tx-{next(_names)}", options=options)


def fetch(
    conn: BlockingConnection, rx: BlockingReceiver, timeout: float = TIMEOUT
) -> tuple[Message, Delivery]:
    """The next message and its (unsettled) delivery; grants no credit."""
    conn.wait(lambda: rx.fetcher.has_message, timeout=timeout, msg=f"a message on {rx.name}")
    message, delivery = rx.fetcher.incoming.popleft()
    return message, delivery


def drain(
    conn: BlockingConnection, rx: BlockingReceiver, limit: int = 1000, timeout: float = TIMEOUT
) -> list[tuple[Message, Delivery]]:
    """Everything the broker can give ``rx`` now (up to ``limit`` more), by a drain.

    Outcomes settled before are written first: Proton would otherwise put the
    drain's flow ahead of them, and the broker would drain before it saw them.
    """
    flush(conn)
    link = rx.link
    link.drain(limit)
    # The C engine finishes the drain before Proton has run on_message for every transfer.
    conn.wait(
        lambda: not link.draining() and link.queued == 0,
        timeout=timeout,
        msg=f"draining {rx.name}",
    )
    link.drain_mode = False
    got = []
    while rx.fetcher.has_message:
        got.append(rx.fetcher.incoming.popleft())
    return got


def settle(
    delivery: Delivery,
    outcome: str = "accept",
    *,
    failed: bool = False,
    undeliverable: bool = False,
    condition: tuple[str, str] | None = None,
) -> None:
    """Settle with ``accept``, ``reject`` (optionally with an error ``condition``),
    ``release`` or ``modify`` (``failed``/``undeliverable``).  Sent with the next flush."""
    if outcome == "accept":
        delivery.update(Delivery.ACCEPTED)
    elif outcome == "reject":
        if condition is not None:
            delivery.local.condition = Condition(*condition)
        delivery.update(Delivery.REJECTED)
    elif outcome == "release":
        delivery.update(Delivery.RELEASED)
    elif outcome == "modify":
        delivery.local.failed = failed
        delivery.local.undeliverable = undeliverable
        delivery.update(Delivery.MODIFIED)
    else:
        raise ValueError(outcome)
    delivery.settle()


def flush(conn: BlockingConnection) -> None:
    """Write what the connection has pending (dispositions, flows) now, without blocking."""
    container = conn.container
    saved = container.timeout
    container.timeout = 0.001  # process() would otherwise wait this long for input
    try:
        container.process()
    finally:
        container.timeout = saved


def send(tx: BlockingSender, body: Any = None, **fields: Any) -> Delivery:
    """Send one message and wait until the broker settles it (raises ``SendException``)."""
    return tx.send(Message(body=body, **fields))


def send_all(tx: BlockingSender, messages: Iterable[Message]) -> None:
    """Send several messages without waiting for each, then wait for all outcomes."""
    deliveries = [tx.link.send(m) for m in messages]
    tx.connection.wait(
        lambda: all(d.remote_state for d in deliveries), msg=f"outcomes on {tx.name}"
    )
    for d in deliveries:
        if d.remote_state != Delivery.ACCEPTED:
            raise SendException(d.remote_state)
        d.settle()


def bodies(pairs: Iterable[tuple[Message, Delivery]]) -> list[Any]:
    """The bodies of ``(message, delivery)`` pairs."""
    return [m.body for m, _ in pairs]


def wait_for(
    conn: BlockingConnection, condition: Callable[[], bool], timeout: float = TIMEOUT
) -> None:
    """Run the connection's events until ``condition()`` holds."""
    conn.wait(condition, timeout=timeout)


def sleep_processing(conn: BlockingConnection, seconds: float) -> None:
    """Keep the connection's events running for ``seconds`` (outcomes, flows, heartbeats)."""
    deadline = time.monotonic() + seconds
    container = conn.container
    saved = container.timeout
    container.timeout = 0.01  # process() waits at most this long for input
    try:
        while time.monotonic() < deadline:
            container.process()
    finally:
        container.timeout = saved


@contextlib.contextmanager
def bystander(url: str, address: str = "bystander") -> Iterator[Callable[[], None]]:
    """A client connected all along while hostile or greedy ones come and go: calling
    what this yields checks that it still sends and receives on ``address``."""
    conn = connect(url)
    tx = sender(conn, address)
    rx = receiver(conn, address, credit=1000)
    count = 0

    def still_working() -> None:
        nonlocal count
        count += 1
        send(tx, count)
        message, delivery = fetch(conn, rx)
        assert message.body == count
        settle(delivery)

    still_working()
    try:
        yield still_working
    finally:
        conn.close()
