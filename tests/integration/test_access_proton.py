"""``[access]`` as Qpid Proton's Python client sees it, against a ``petrel broker`` and a
``petrel router`` in subprocesses with the same config: ``amqp:unauthorized-access`` at
attach and on the anonymous relay (the link staying up), per-user limits, and a virtual
host chosen by the open's hostname (Proton's ``virtual_host``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("proton")

from proton import ConnectionException, Delivery, Message
from proton.utils import BlockingConnection, LinkDetached

from tests.helpers.proton_client import (
    connect,
    fetch,
    receiver,
    sender,
    settle,
    sleep_processing,
    wait_for,
)
from tests.helpers.routers import run_router
from tests.helpers.servers import run_broker

pytestmark = pytest.mark.interop

CONFIG = """
[[users]]
name = "alice"
password = "pw"

[[users]]
name = "greedy"
password = "pw"

[[users]]
name = "tenant"
password = "pw"

[[access.rules]]
who = ["alice"]
addresses = ["jobs.#"]
rights = ["send", "receive", "create"]

[[access.rules]]
who = ["greedy"]
addresses = ["#"]
rights = ["send", "receive", "create"]

[[access.limits]]
who = ["greedy"]
max_connections_per_user = 2
max_message_size = 4096

[[access.vhosts]]
hostname = "t1"
admit = ["tenant"]
rules = [{ addresses = ["#"], rights = ["send", "receive", "create"] }]

[[access.vhosts]]
hostname = "t2"
admit = ["tenant"]
rules = [{ addresses = ["#"], rights = ["send", "receive", "create"] }]
"""


@pytest.fixture(scope="module", params=["broker", "router"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "broker":
        with run_broker(CONFIG) as broker:
            yield f"amqp://127.0.0.1:{broker.port}"
    else:
        with run_router("R", config=CONFIG) as router:
            yield router.url


def _connect(url: str, user: str, vhost: str | None = None) -> BlockingConnection:
    extra = {"virtual_host": vhost} if vhost else {}
    return connect(url, user=user, password="pw", allowed_mechs="PLAIN", **extra)


def _round_trip(conn: BlockingConnection, where: str, body: str, *, relay: bool = False) -> None:
    """A receiver on ``where``, then a message to it (by a sender attached there, or on
    the anonymous relay), received and accepted, its outcome back to the sender."""
    rx = receiver(conn, where, credit=10)
    tx = sender(conn, None if relay else where)
    delivery = tx.link.send(Message(body=body, address=where if relay else None))
    message, incoming = fetch(conn, rx)
    assert message.body == body
    settle(incoming, "accept")
    wait_for(conn, lambda: delivery.remote_state)
    assert delivery.remote_state == Delivery.ACCEPTED
    rx.close()
    tx.close()


def test_unauthorized_at_attach(url: str) -> None:
    conn = _connect(url, "alice")
    try:
        with pytest.raises(LinkDetached) as caught:
            sender(conn, "payroll")
        assert caught.value.condition == "amqp:unauthorized-access"
        assert "may not send 'payroll'" in str(caught.value)
        with pytest.raises(LinkDetached) as caught:
            receiver(conn, "payroll")
        assert caught.value.condition == "amqp:unauthorized-access"
        assert "may not receive 'payroll'" in str(caught.value)
        _round_trip(conn, "jobs.a", "still fine")  # the connection is undisturbed
    finally:
        conn.close()


def test_unauthorized_on_the_relay(url: str) -> None:
    conn = _connect(url, "alice")
    try:
        relay = sender(conn, None)
        refused = relay.link.send(Message(body="no", address="payroll"))
        wait_for(conn, lambda: refused.remote_state)
        assert refused.remote_state == Delivery.REJECTED
        condition = refused.remote.condition
        assert condition is not None and condition.name == "amqp:unauthorized-access"
        assert "may not send 'payroll'" in condition.description
        # The same link carries the next message, which is allowed.
        rx = receiver(conn, "jobs.b", credit=10)
        allowed = relay.link.send(Message(body="yes", address="jobs.b"))
        message, incoming = fetch(conn, rx)
        assert message.body == "yes"
        settle(incoming, "accept")
        wait_for(conn, lambda: allowed.remote_state)
        assert allowed.remote_state == Delivery.ACCEPTED
    finally:
        conn.close()


def test_limits(url: str) -> None:
    first, second = _connect(url, "greedy"), _connect(url, "greedy")
    try:
        with pytest.raises(ConnectionException) as caught:
            _connect(url, "greedy").close()
        assert "amqp:resource-limit-exceeded" in str(caught.value)
        rx = receiver(second, "sized", credit=10)  # a router gives credit only then
        tx = sender(first, "sized")
        with pytest.raises(LinkDetached) as detached:
            tx.send(Message(body=b"x" * 10_000))
        assert detached.value.condition == "amqp:link:message-size-exceeded"
        rx.close()
        _round_trip(second, "sized", "small enough")
    finally:
        first.close()
        second.close()
    _connect(url, "greedy").close()  # the count went down with them


def test_vhost_by_hostname(url: str) -> None:
    one = _connect(url, "tenant", "t1")
    two = _connect(url, "tenant", "t2")
    try:
        in_two = receiver(two, "orders", credit=10)
        _round_trip(one, "orders", "for t1")
        _round_trip(one, "orders", "for t1 by relay", relay=True)
        sleep_processing(two, 0.3)
        assert not in_two.fetcher.has_message  # t2's "orders" is another address
        in_two.close()
        _round_trip(two, "orders", "for t2")
    finally:
        one.close()
        two.close()
    with pytest.raises(ConnectionException) as caught:
        _connect(url, "alice", "t1")
    assert "amqp:unauthorized-access" in str(caught.value)
