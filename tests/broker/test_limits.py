"""The ``[limits]`` of a ``petrel broker`` process, each pushed past its edge by a client.

Every refusal names ``amqp:resource-limit-exceeded`` (or, for a message, its own
condition) on the one endpoint that went too far: the session, link or
connection next to it carries on, and so does a bystander on another connection.
Proton's Python client plays the clients; raw frames play the ones a client
library would not let misbehave (a silent peer, one that only sends heartbeats).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from proton import ConnectionException, Delivery, Endpoint, Handler, Link, Message, Session
from proton.utils import BlockingConnection, LinkDetached

from petrel.spec import Close, Open
from petrel.spec.framing import AMQP_HEADER
from tests.helpers.frames import RawClient, frame
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
    sync,
)
from tests.helpers.proton_client import (
    bystander as bystander_client,
)
from tests.helpers.servers import BrokerProcess, run_broker

pytestmark = pytest.mark.interop

SESSIONS = 3
LINKS = 3
MESSAGE_SIZE = 4096
RESOURCE_LIMIT = "amqp:resource-limit-exceeded"

TIGHT_CONFIG = f"""
[limits]
max_sessions_per_connection = {SESSIONS}
max_links_per_session = {LINKS}
max_message_size = {MESSAGE_SIZE}
"""

#: Seconds of silence after which the idle broker drops a client.
IDLE = 1.0
FRAME_SIZE = 4096

IDLE_CONFIG = f"""
[limits]
idle_timeout = {IDLE}
max_frame_size = {FRAME_SIZE}
"""


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerProcess]:
    """The tight broker: few sessions and links, small messages (the conftest fixtures'
    connections go here)."""
    with run_broker(TIGHT_CONFIG) as process:
        yield process


@pytest.fixture(scope="module")
def bystander(broker: BrokerProcess) -> Iterator[Callable[[], None]]:
    """A client connected all along; calling it checks that it still works."""
    with bystander_client(broker.url) as check:
        yield check


# --- raw Proton endpoints ---------------------------------------------------------------------
#
# BlockingConnection makes one session per connection, and raises from inside its event
# loop when the broker closes a link it handles.  These sessions and links are the Proton
# objects underneath, each with a handler that takes its events quietly: the tests look
# at their state instead.

_link_names = iter(range(1, 1_000_000))


def open_session(conn: BlockingConnection) -> Session:
    """Begin one more session on ``conn`` (the broker's answer is not awaited)."""
    session = conn.conn.session()
    session.handler = Handler()
    session.open()
    return session


def open_sender(session: Session, address: str) -> Link:
    """Attach a sending link to ``address`` on ``session`` (the answer is not awaited)."""
    link = session.sender(f"flood-{next(_link_names)}")
    link.handler = Handler()
    link.target.address = address
    link.open()
    return link


def answered(link: Link) -> bool:
    """Whether the broker accepted ``link`` (it answered with our target) or closed it.
    A refused link gets a null target first, then the detach."""
    if link.state & Endpoint.REMOTE_CLOSED:
        return True
    return bool(link.state & Endpoint.REMOTE_ACTIVE) and link.remote_target.address is not None


def accepted(endpoints: list[Any]) -> list[Any]:
    return [e for e in endpoints if not e.state & Endpoint.REMOTE_CLOSED]


def refusals(endpoints: list[Any]) -> list[str]:
    """The error conditions the broker closed ``endpoints`` with (one per refused endpoint)."""
    return [
        e.remote_condition.name if e.remote_condition else "no error"
        for e in endpoints
        if e.state & Endpoint.REMOTE_CLOSED
    ]


def attach_senders(
    conn: BlockingConnection, session: Session, address: str, count: int
) -> list[Link]:
    """Attach ``count`` senders to ``address`` at once; return them once each is answered."""
    links = [open_sender(session, address) for _ in range(count)]
    conn.wait(lambda: all(answered(link) for link in links), timeout=TIMEOUT)
    return links


def send_on(conn: BlockingConnection, link: Link, body: Any) -> None:
    """Send one message on a raw sending link and wait for the broker to accept it."""
    conn.wait(lambda: link.credit > 0, timeout=TIMEOUT)
    delivery = link.send(Message(body=body))
    conn.wait(lambda: bool(delivery.remote_state), timeout=TIMEOUT)
    assert delivery.remote_state == Delivery.ACCEPTED
    delivery.settle()


# --- sessions and links -----------------------------------------------------------------------


def test_links_per_session(
    conn: BlockingConnection, name: str, bystander: Callable[[], None]
) -> None:
    session = open_session(conn)
    conn.wait(lambda: bool(session.state & Endpoint.REMOTE_ACTIVE), timeout=TIMEOUT)
    first = attach_senders(conn, session, name, LINKS)
    assert refusals(first) == []
    # Past the limit, each extra link is refused on its own...
    for _ in range(2):
        extra = attach_senders(conn, session, name, 5)
        assert refusals(extra) == [RESOURCE_LIMIT] * 5
        for link in extra:
            link.close()  # answer the refusal: now the broker has seen these links end
        sync(conn)
    # ...and refused links never count: freeing one place makes room for exactly one.
    first[0].close()
    conn.wait(lambda: not first[0].state & Endpoint.REMOTE_ACTIVE, timeout=TIMEOUT)
    again = attach_senders(conn, session, name, 2)
    assert len(accepted(again)) == 1
    assert refusals(again) == [RESOURCE_LIMIT]
    # The session and the links it kept carry on.
    assert session.state & Endpoint.REMOTE_ACTIVE
    for index, link in enumerate([*first[1:], *accepted(again)]):
        send_on(conn, link, index)
    assert sorted(bodies(drain(conn, receiver(conn, name)))) == list(range(LINKS))
    bystander()


def test_sessions_per_connection(
    conn: BlockingConnection, name: str, bystander: Callable[[], None]
) -> None:
    tx = sender(conn, name)  # Proton's own session: the first
    sessions = [open_session(conn) for _ in range(8)]
    conn.wait(lambda: all(not s.state & Endpoint.REMOTE_UNINIT for s in sessions), timeout=TIMEOUT)
    sync(conn)  # one round trip: a refused session's begin and end have both arrived
    kept = accepted(sessions)
    assert len(kept) == SESSIONS - 1
    assert refusals(sessions) == [RESOURCE_LIMIT] * (8 - len(kept))
    # Answering the refusals frees nothing; ending a session makes room for exactly one more.
    for session in sessions:
        if session not in kept:
            session.close()
    kept[0].close()
    conn.wait(lambda: bool(kept[0].state & Endpoint.REMOTE_CLOSED), timeout=TIMEOUT)
    more = [open_session(conn) for _ in range(2)]
    conn.wait(lambda: all(not s.state & Endpoint.REMOTE_UNINIT for s in more), timeout=TIMEOUT)
    sync(conn)
    assert len(accepted(more)) == 1
    assert refusals(more) == [RESOURCE_LIMIT]
    # Every session kept still works.
    working = [*kept[1:], *accepted(more)]
    for index, session in enumerate(working):
        (link,) = attach_senders(conn, session, name, 1)
        send_on(conn, link, index)
    send(tx, len(working))
    assert sorted(bodies(drain(conn, receiver(conn, name)))) == list(range(len(working) + 1))
    bystander()


def test_a_flood_of_sessions_and_links(
    conn: BlockingConnection, name: str, bystander: Callable[[], None]
) -> None:
    """Far past both limits at once: every extra endpoint gets its own refusal, and the
    client's links in use keep working throughout."""
    rx = receiver(conn, name, credit=1000)
    tx = sender(conn, name)
    sessions = [open_session(conn) for _ in range(20)]
    conn.wait(lambda: all(not s.state & Endpoint.REMOTE_UNINIT for s in sessions), timeout=TIMEOUT)
    sync(conn)
    kept = accepted(sessions)
    assert len(kept) == SESSIONS - 1
    assert refusals(sessions) == [RESOURCE_LIMIT] * (20 - len(kept))
    send(tx, "between the floods")
    links = [attach_senders(conn, session, name, 30) for session in kept]
    for per_session in links:
        assert len(accepted(per_session)) == LINKS
        assert refusals(per_session) == [RESOURCE_LIMIT] * (30 - LINKS)
    # Proton's session holds rx and tx: one more fits there.
    extra = attach_senders(conn, tx.link.session, name, 10)
    assert len(accepted(extra)) == 1
    assert refusals(extra) == [RESOURCE_LIMIT] * 9
    bystander()
    # Only the refused endpoints closed: the connection, its sessions and kept links work.
    assert conn.conn.state & Endpoint.REMOTE_ACTIVE
    assert all(s.state & Endpoint.REMOTE_ACTIVE for s in kept)
    working = [link for per_session in links for link in accepted(per_session)]
    working += accepted(extra)
    for index, link in enumerate(working):
        send_on(conn, link, index)
    send(tx, "after the flood")
    expected = ["between the floods", *map(str, range(len(working))), "after the flood"]
    got = [fetch(conn, rx) for _ in expected]
    for _, delivery in got:
        settle(delivery)
    assert sorted(str(m.body) for m, _ in got) == sorted(expected)
    bystander()


# --- messages -------------------------------------------------------------------------------


def test_max_message_size(
    conn: BlockingConnection, name: str, bystander: Callable[[], None]
) -> None:
    tx = sender(conn, name)
    assert tx.link.remote_max_message_size == MESSAGE_SIZE
    send(tx, b"x" * (MESSAGE_SIZE - 100))  # with its sections, just under the limit
    with pytest.raises(LinkDetached) as caught:
        send(tx, b"x" * MESSAGE_SIZE)
    assert caught.value.condition == "amqp:link:message-size-exceeded"
    bystander()
    # The connection carries on; only the message that fitted was queued.
    send(sender(conn, name), b"small")
    assert [len(body) for body in bodies(drain(conn, receiver(conn, name)))] == [
        MESSAGE_SIZE - 100,
        5,
    ]


# --- connections ------------------------------------------------------------------------------


#: Two connections, and time enough to open that only the broker's refusal ends one.
FEW_CONNECTIONS = """
[limits]
max_connections = 2
sasl_timeout = 60.0
"""


def test_max_connections() -> None:
    with run_broker(FEW_CONNECTIONS) as broker:
        first = connect(broker.url)
        second = connect(broker.url)
        try:
            assert _refusal(broker.url) == RESOURCE_LIMIT
            # The two it took still work.
            for conn in (first, second):
                send(sender(conn, "both"), "hello")
            got = drain(first, receiver(first, "both"))
            assert bodies(got) == ["hello", "hello"]
            for _, delivery in got:
                settle(delivery)
            # A connection that ends frees its place (once the broker has seen it go).
            first.close()
            third = _connect_when_room(broker.url)
            send(sender(third, "both"), "third")
            assert bodies(drain(second, receiver(second, "both"))) == ["third"]
            third.close()
        finally:
            for conn in (first, second):
                with contextlib.suppress(Exception):
                    conn.close()


def test_a_flood_of_connections() -> None:
    """Past the limit a client is told why once it has opened; past twice the limit the
    broker hangs up at once."""
    with run_broker(FEW_CONNECTIONS) as broker:
        held = [connect(broker.url) for _ in range(2)]
        told = [raw_amqp(broker.port, f"over-{n}")[0] for n in (1, 2)]
        try:
            for client in told:
                close = client.expect(Close)
                assert close.error is not None
                assert str(close.error.condition) == RESOURCE_LIMIT
            # Those two have not answered: they still count, and the next one is dropped
            # before it hears so much as a protocol header.
            with socket.create_connection(("127.0.0.1", broker.port), timeout=TIMEOUT) as sock:
                sock.sendall(AMQP_HEADER)
                with contextlib.suppress(ConnectionResetError):
                    assert sock.recv(1024) == b""
            for conn in held:
                sync(conn)
        finally:
            for client in told:
                client.close()
            for conn in held:
                conn.close()


def _refusal(url: str) -> str | None:
    """The condition the broker closes a new connection with (None: it kept it)."""
    try:
        conn = connect(url)
        try:
            sync(conn)
        finally:
            with contextlib.suppress(Exception):
                conn.close()
    except ConnectionException as exc:
        return getattr(exc, "condition", None) or str(exc)
    return None


def _connect_when_room(url: str) -> BlockingConnection:
    deadline = time.monotonic() + TIMEOUT
    while (refused := _refusal(url)) is not None:
        assert refused == RESOURCE_LIMIT
        assert time.monotonic() < deadline, "the broker never took a new connection"
        time.sleep(0.05)
    return connect(url)


# --- idle timeout and frame size (raw frames) -------------------------------------------------


def raw_amqp(port: int, container_id: str) -> tuple[RawClient, Open]:
    """A client that speaks AMQP by hand (no SASL, which a loopback listener allows),
    opened; the broker's open."""
    client = RawClient(port, timeout=TIMEOUT)
    client.send(AMQP_HEADER, frame(Open(container_id=container_id)))
    return client, client.expect(Open)


@pytest.fixture(scope="module")
def idle_broker() -> Iterator[BrokerProcess]:
    with run_broker(IDLE_CONFIG) as process:
        yield process


@pytest.fixture
def raw(idle_broker: BrokerProcess) -> Iterator[Callable[[str], tuple[RawClient, Open]]]:
    clients: list[RawClient] = []

    def open_raw(container_id: str) -> tuple[RawClient, Open]:
        client, opened = raw_amqp(idle_broker.port, container_id)
        clients.append(client)
        return client, opened

    yield open_raw
    for client in clients:
        client.close()


def test_a_silent_client_is_dropped(raw: Callable[[str], tuple[RawClient, Open]]) -> None:
    client, opened = raw("silent")
    assert opened.idle_time_out == IDLE * 1000
    # Nothing more from us: within two idle periods (the broker notices silence at its
    # timer ticks), it closes with the reason and hangs up.
    close = client.expect(Close)
    assert close.error is not None
    assert str(close.error.condition) == RESOURCE_LIMIT
    client.wait_closed()


def test_heartbeats_keep_a_client(raw: Callable[[str], tuple[RawClient, Open]]) -> None:
    client, opened = raw("heartbeats")
    assert opened.idle_time_out == IDLE * 1000
    # Empty frames only, ten per idle period, for four idle periods.
    until = time.monotonic() + 4 * IDLE
    while time.monotonic() < until:
        client.send(frame(None))
        client.read_for(IDLE / 10)
        assert not client.eof and not client.performatives(Close), client.frames
    # Still open: our close is answered with a plain close.
    client.send(frame(Close()))
    assert client.expect(Close).error is None


def test_max_frame_size(raw: Callable[[str], tuple[RawClient, Open]]) -> None:
    client, opened = raw("big frames")
    assert opened.max_frame_size == FRAME_SIZE
    oversize = frame(None, payload=b"\x00" * (FRAME_SIZE + 1 - 8))
    assert len(oversize) == FRAME_SIZE + 1
    client.send(oversize)
    close = client.expect(Close)
    assert close.error is not None
    assert str(close.error.condition) == "amqp:connection:framing-error"
    client.wait_closed()
