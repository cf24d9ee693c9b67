"""Two routers, A and B, as subprocesses: clients on one reach clients on the other.

A message sent on A to a receiver on B arrives and is accepted end to end;
a sender gets no credit while no receiver exists anywhere; the anonymous
relay routes by ``properties.to``; a dynamic receiver's address answers
from across the network (request/response, Proton's and Petrel's clients);
and each router's management is reachable through the other.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from proton import Delivery, Message
from proton.reactor import AtMostOnce
from proton.utils import (
    BlockingConnection,
    BlockingReceiver,
    BlockingSender,
    SendException,
    SyncRequestResponse,
)

import petrel
from petrel.management import BlockingManagementClient
from tests.helpers.proton_client import (
    Capabilities,
    connect,
    fetch,
    flush,
    receiver,
    send,
    sender,
    settle,
    sleep_processing,
    sync,
    wait_for,
)
from tests.helpers.routers import ANN_INGRESS, ANN_TRACE, CAP_TRACE, RouterNetwork, router_network

_addresses = itertools.count(1)


def pump(*conns: BlockingConnection, until: Callable[[], bool], timeout: float = 10.0) -> None:
    """Run several connections' events in turn until ``until()`` (Proton writes and reads
    only while a connection's container runs)."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s")
        for conn in conns:
            flush(conn)


def through(
    on_a: BlockingConnection,
    tx: BlockingSender,
    on_b: BlockingConnection,
    rx: BlockingReceiver,
    body: Any,
    **fields: Any,
) -> tuple[Message, int]:
    """Send one message on ``tx``, accept it on ``rx``: the message and the sender's outcome."""
    sent = tx.link.send(Message(body=body, **fields))
    pump(on_a, on_b, until=lambda: rx.fetcher.has_message)
    message, delivery = fetch(on_b, rx)
    settle(delivery)
    pump(on_a, on_b, until=lambda: sent.remote_state != 0)
    return message, sent.remote_state


def fresh(prefix: str = "net") -> str:
    return f"{prefix}.{next(_addresses)}"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterNetwork]:
    with router_network({"A-B": 1}, log_dir=tmp_path_factory.mktemp("routers")) as network:
        yield network


def test_both_routers_see_each_other(net: RouterNetwork) -> None:
    a, b = net.nodes("A"), net.nodes("B")
    assert a["B"]["reachable"] and a["B"]["next_hop"] == "B" and a["B"]["cost"] == 1
    assert b["A"]["reachable"] and b["A"]["next_hop"] == "A" and b["A"]["cost"] == 1
    assert "router A: neighbour B up (cost 1)" in net["A"].log()
    assert "router B: neighbour A up (cost 1)" in net["B"].log()


def test_message_from_a_is_accepted_by_a_receiver_on_b(net: RouterNetwork) -> None:
    address = fresh()
    on_b = connect(net["B"].url)
    on_a = connect(net["A"].url)
    try:
        rx = receiver(on_b, address, credit=10, options=Capabilities(CAP_TRACE))
        tx = sender(on_a, address)
        wait_for(on_a, lambda: tx.link.credit > 0)
        deliveries = [tx.link.send(Message(body=f"m{n}", properties={"n": n})) for n in range(5)]
        pump(on_a, on_b, until=lambda: rx.link.queued + len(rx.fetcher.incoming) >= 5)
        got = [fetch(on_b, rx) for _ in range(5)]
        # Until B's receiver settles, A's sender has no outcome: it is end to end.
        sleep_processing(on_a, 0.2)
        assert [d.remote_state for d in deliveries] == [0] * 5
        for _, delivery in got:
            settle(delivery)
        pump(on_a, on_b, until=lambda: all(d.remote_state for d in deliveries))
        assert [d.remote_state for d in deliveries] == [Delivery.ACCEPTED] * 5
        messages = [m for m, _ in got]
        assert [m.body for m in messages] == [f"m{n}" for n in range(5)]
        assert [m.properties["n"] for m in messages] == list(range(5))
        assert messages[0].annotations[ANN_TRACE] == ["A", "B"]
        assert messages[0].annotations[ANN_INGRESS] == "A"
    finally:
        on_a.close()
        on_b.close()


def test_outcomes_travel_back_end_to_end(net: RouterNetwork) -> None:
    """The sender on A learns exactly the outcome the receiver on B chose."""
    address = fresh()
    on_b = connect(net["B"].url)
    on_a = connect(net["A"].url)
    try:
        rx = receiver(on_b, address, credit=10)
        tx = sender(on_a, address)
        wait_for(on_a, lambda: tx.link.credit > 0)
        first = tx.link.send(Message(body="reject me"))
        pump(on_a, on_b, until=lambda: rx.fetcher.has_message)
        _, delivery = fetch(on_b, rx)
        settle(delivery, "reject", condition=("app:bad", "no thanks"))
        pump(on_a, on_b, until=lambda: first.remote_state != 0)
        assert first.remote_state == Delivery.REJECTED
        assert first.remote.condition is not None
        assert first.remote.condition.name == "app:bad"
        second = tx.link.send(Message(body="accept me"))
        pump(on_a, on_b, until=lambda: rx.fetcher.has_message)
        message, delivery = fetch(on_b, rx)
        assert message.body == "accept me"
        settle(delivery)
        pump(on_a, on_b, until=lambda: second.remote_state != 0)
        assert second.remote_state == Delivery.ACCEPTED
    finally:
        on_a.close()
        on_b.close()


def test_receivers_without_the_trace_capability_get_no_router_annotations(
    net: RouterNetwork,
) -> None:
    address = fresh()
    on_b = connect(net["B"].url)
    on_a = connect(net["A"].url)
    try:
        rx = receiver(on_b, address, credit=1)
        tx = sender(on_a, address)
        wait_for(on_a, lambda: tx.link.credit > 0)
        tx.link.send(Message(body="plain", annotations={"x-opt-app": "kept"}))
        pump(on_a, on_b, until=lambda: rx.fetcher.has_message)
        message, delivery = fetch(on_b, rx)
        settle(delivery)
        assert message.annotations == {"x-opt-app": "kept"}
    finally:
        on_a.close()
        on_b.close()


def test_no_credit_until_a_receiver_exists_somewhere(net: RouterNetwork) -> None:
    address = fresh()
    on_a = connect(net["A"].url)
    on_b = connect(net["B"].url)
    try:
        tx = sender(on_a, address)
        sync(on_a)
        sleep_processing(on_a, 0.5)
        assert tx.link.credit == 0
        rx = receiver(on_b, address, credit=1)
        wait_for(on_a, lambda: tx.link.credit > 0)
        message, state = through(on_a, tx, on_b, rx, "now it can go")
        assert message.body == "now it can go"
        assert state == Delivery.ACCEPTED
        # The receiver goes away: the sender's credit is taken back.
        rx.close()
        wait_for(on_a, lambda: tx.link.credit == 0)
    finally:
        on_a.close()
        on_b.close()


def test_anonymous_relay_routes_by_to(net: RouterNetwork) -> None:
    address = fresh()
    on_a = connect(net["A"].url)
    on_b = connect(net["B"].url)
    try:
        assert "ANONYMOUS-RELAY" in {str(c) for c in on_a.conn.remote_offered_capabilities or ()}
        rx = receiver(on_b, address, credit=2)
        net.wait_for_address("A", address, ["B"])
        relay = sender(on_a, None)
        message, state = through(on_a, relay, on_b, rx, "relayed", address=address)
        assert message.body == "relayed"
        assert message.address == address
        assert state == Delivery.ACCEPTED
        # Nowhere to go: the relay does not accept it.
        with pytest.raises(SendException) as failed:
            send(relay, "lost", address=fresh("nobody"))
        assert failed.value.state in (Delivery.RELEASED, Delivery.REJECTED, Delivery.MODIFIED)
    finally:
        on_a.close()
        on_b.close()


def test_proton_request_to_a_petrel_responder_on_the_other_router(net: RouterNetwork) -> None:
    """A dynamic reply address on A (``_topo/0/A/temp.N``) is routable from B."""
    address = fresh("service")
    with petrel.blocking.connect(net["B"].url, reconnect=False) as responder_conn:
        responder = responder_conn.serve(address, lambda request: str(request.body).upper())
        try:
            net.wait_for_address("A", address, ["B"])
            on_a = connect(net["A"].url)
            try:
                client = SyncRequestResponse(on_a, address)
                assert client.reply_to.startswith("_topo/0/A/temp.")
                for word in ("twas", "brillig"):
                    response = client.call(Message(body=word))
                    assert response.body == word.upper()
            finally:
                on_a.close()
        finally:
            responder.close()


def test_petrel_request_across_routers(net: RouterNetwork) -> None:
    address = fresh("service")
    with (
        petrel.blocking.connect(net["A"].url, reconnect=False) as on_a,
        petrel.blocking.connect(net["B"].url, reconnect=False) as on_b,
    ):
        responder = on_a.serve(address, lambda request: {"echo": request.body})
        try:
            net.wait_for_address("B", address, ["A"])
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                answers = list(
                    pool.map(lambda n: on_b.request(address, n, timeout=10).body, range(4))
                )
            assert answers == [{"echo": n} for n in range(4)]
        finally:
            responder.close()


def test_large_message_crosses_routers_intact(net: RouterNetwork) -> None:
    """A 1 MiB message spans many frames on every hop (max frame 64 KiB)."""
    address = fresh()
    body = bytes(range(256)) * 4096
    on_a = connect(net["A"].url)
    on_b = connect(net["B"].url)
    try:
        rx = receiver(on_b, address, credit=1)
        tx = sender(on_a, address)
        wait_for(on_a, lambda: tx.link.credit > 0)
        message, state = through(on_a, tx, on_b, rx, body, subject="big")
        assert message.body == body
        assert message.subject == "big"
        assert state == Delivery.ACCEPTED
    finally:
        on_a.close()
        on_b.close()


def test_presettled_messages_cross_routers(net: RouterNetwork) -> None:
    address = fresh()
    on_a = connect(net["A"].url)
    on_b = connect(net["B"].url)
    try:
        rx = receiver(on_b, address, credit=20)
        tx = sender(on_a, address, options=AtMostOnce())
        wait_for(on_a, lambda: tx.link.credit > 0)
        for n in range(10):
            tx.link.send(Message(body=n))
        pump(on_a, on_b, until=lambda: len(rx.fetcher.incoming) >= 10)
        got = [fetch(on_b, rx) for _ in range(10)]
        assert [m.body for m, _ in got] == list(range(10))
        assert all(d.settled for _, d in got)  # they arrive settled (by the sender)
    finally:
        on_a.close()
        on_b.close()


def test_petrel_client_send_and_receive_across_routers(net: RouterNetwork) -> None:
    address = fresh()
    with (
        petrel.blocking.connect(net["A"].url, reconnect=False) as on_a,
        petrel.blocking.connect(net["B"].url, reconnect=False) as on_b,
    ):
        rx = on_b.open_receiver(address)
        net.wait_for_address("A", address, ["B"])
        tx = on_a.open_sender(address)
        outcomes = [tx.send(petrel.Message(body=n), wait=False) for n in range(10)]
        got = []
        for _ in range(10):
            delivery = rx.receive(timeout=10)
            got.append(delivery.message.body)
            delivery.accept()
        assert got == list(range(10))
        for outcome in outcomes:
            outcome.result(timeout=10)  # accepted (an exception otherwise)


def test_management_of_either_router_through_the_other(net: RouterNetwork) -> None:
    with petrel.blocking.connect(net["A"].url, reconnect=False) as on_a:
        remote = BlockingManagementClient(on_a, address="_topo/0/B/$management")
        router = remote.query("petrel.router", ["id", "neighbours"]).as_dicts()
        assert [(r["id"], r["neighbours"]) for r in router] == [("B", 1)]
        nodes = {n["id"]: n for n in remote.query("petrel.router.node").as_dicts()}
        assert nodes["A"]["next_hop"] == "A"
        assert nodes["B"]["cost"] == 0
        local = BlockingManagementClient(on_a)
        assert [r["id"] for r in local.query("petrel.router", ["id"]).as_dicts()] == ["A"]
