"""Authentication: SASL PLAIN against the configured users, anonymous clients refused where
the listener says so, and a bare AMQP header (no SASL) served on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from proton import ConnectionException
from proton.utils import BlockingConnection

from petrel.spec.framing import AMQP_HEADER, SASL_HEADER
from tests.helpers.proton_client import bodies, connect, drain, receiver, send, sender
from tests.helpers.servers import BrokerProcess, free_port, run_broker

pytestmark = pytest.mark.interop


@dataclass
class Listeners:
    broker: BrokerProcess
    secure: str
    """Authenticated clients only."""
    open: str
    """Loopback, anonymous allowed (the default there)."""


@pytest.fixture(scope="module")
def listeners() -> Iterator[Listeners]:
    secure, open_ = free_port(), free_port()
    config = f"""
[[users]]
name = "alice"
password = "wonderland"

[[users]]
name = "bob"
password = "builder"

[[listeners]]
url = "amqp://127.0.0.1:{secure}"
allow_anonymous = false

[[listeners]]
url = "amqp://127.0.0.1:{open_}"
"""
    with run_broker(config, port=secure) as broker:
        yield Listeners(broker, f"amqp://127.0.0.1:{secure}", f"amqp://127.0.0.1:{open_}")


def _round_trip(conn: BlockingConnection, address: str) -> None:
    try:
        send(sender(conn, address), "hello")
        assert bodies(drain(conn, receiver(conn, address))) == ["hello"]
    finally:
        conn.close()


def test_plain_with_a_good_password(listeners: Listeners, name: str) -> None:
    conn = connect(listeners.secure, user="alice", password="wonderland", allowed_mechs="PLAIN")
    assert conn.conn.transport.sasl().mech == "PLAIN"
    _round_trip(conn, name)


@pytest.mark.parametrize(
    ("user", "password"), [("alice", "wrong"), ("alice", ""), ("mallory", "wonderland")]
)
def test_plain_with_a_bad_password(
    listeners: Listeners, name: str, user: str, password: str
) -> None:
    with pytest.raises(ConnectionException) as caught:
        connect(listeners.secure, user=user, password=password, allowed_mechs="PLAIN")
    assert "amqp:unauthorized-access" in str(caught.value)
    # Others are not affected.
    _round_trip(connect(listeners.secure, user="bob", password="builder"), name)


def test_anonymous_refused_where_not_allowed(listeners: Listeners) -> None:
    with pytest.raises(ConnectionException):
        connect(listeners.secure, allowed_mechs="ANONYMOUS")


def test_no_sasl_refused_where_anonymous_is_not_allowed(listeners: Listeners) -> None:
    with pytest.raises(ConnectionException):
        conn = connect(listeners.secure, sasl_enabled=False)
        # Should the open go through, the connection must not be usable.
        sender(conn, "sneaky")


def test_a_bare_amqp_header_gets_the_sasl_header_where_sasl_is_required(
    listeners: Listeners,
) -> None:
    port = int(listeners.secure.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(AMQP_HEADER)
        answer = b""
        while chunk := sock.recv(1024):
            answer += chunk
    assert answer == SASL_HEADER


def test_anonymous_served_on_loopback(listeners: Listeners, name: str) -> None:
    _round_trip(connect(listeners.open, allowed_mechs="ANONYMOUS"), name)


def test_a_bare_amqp_header_served_on_loopback(listeners: Listeners, name: str) -> None:
    _round_trip(connect(listeners.open, sasl_enabled=False), name)


def test_plain_also_works_where_anonymous_is_allowed(listeners: Listeners, name: str) -> None:
    conn = connect(listeners.open, user="bob", password="builder", container_id=name)
    assert conn.conn.transport.sasl().mech == "PLAIN"
    _round_trip(conn, name)
    # The broker says whom it let in, and how.
    assert f"container {name!r}, user 'bob' (PLAIN) opened" in listeners.broker.log()
    # The password is checked there too: a broker that fell back to ANONYMOUS would let
    # this one in.
    with pytest.raises(ConnectionException) as caught:
        connect(listeners.open, user="bob", password="wrong", allowed_mechs="PLAIN")
    assert "amqp:unauthorized-access" in str(caught.value)
