"""Peers a router must refuse on its inter-router listener, while the rest of the network
keeps working: a router with an id already taken, a plain client, a router speaking a
newer protocol, and one that sends garbage on the control link.

Each is refused with the connection closed ``amqp:not-allowed`` and a log
line ``refusing ...``; afterwards A and B still see each other as before
and a message still goes from A to B.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from proton import Condition, Message, symbol
from proton.reactor import AtMostOnce
from proton.utils import BlockingConnection

from tests.helpers.proton_client import TIMEOUT
from tests.helpers.routers import RouterNetwork, router_network, run_router, wait_until
from tests.helpers.traffic import Traffic

CONTROL = "_petrel.router/control"
_addresses = itertools.count(1)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterNetwork]:
    with router_network({"A-B": 1}, log_dir=tmp_path_factory.mktemp("bad-peers")) as network:
        yield network


@pytest.fixture
def still_working(net: RouterNetwork) -> Iterator[None]:
    """After the test: the network is as it was, and a message goes from A to B."""
    yield
    assert not net.crashed(), net.logs()
    net.wait_converged()
    assert net.nodes("A")["B"]["next_hop"] == "B"
    assert net.nodes("B")["A"]["next_hop"] == "A"
    traffic = Traffic(f"after.{next(_addresses)}")
    try:
        traffic.add_receiver(net["B"].url)
        traffic.start_sending(net["A"].url, total=5)
        traffic.pump(lambda: traffic.all_accepted(), what="5 messages from A to B")
        assert sorted(traffic.received()) == list(range(5))
    finally:
        traffic.close()


def refusals(net: RouterNetwork, router: str) -> list[str]:
    return net[router].log_lines(f"router {router}: refusing")


def wait_refused(net: RouterNetwork, router: str, before: int, text: str) -> str:
    """Wait for a new ``refusing`` line on ``router`` containing ``text``; the line."""

    def found() -> str | None:
        new = refusals(net, router)[before:]
        return next((line for line in new if text in line), None)

    line: str = wait_until(
        found,
        what=f"{router} to log 'refusing ...{text}...'",
        status=lambda: "\n".join(net[router].log().splitlines()[-20:]),
    )
    return line


def closed_not_allowed(conn: BlockingConnection) -> bool:
    endpoint = conn.conn
    condition: Condition | None = endpoint.remote_condition
    return bool(
        endpoint.state & endpoint.REMOTE_CLOSED
        and condition is not None
        and condition.name == "amqp:not-allowed"
    )


def fake_router(url: str, properties: dict[Any, Any]) -> BlockingConnection:
    """A Proton connection that opens the way a router does (and nothing more)."""
    return BlockingConnection(url, timeout=TIMEOUT, properties=properties)


def attach_control_links(conn: BlockingConnection) -> Any:
    """Attach the control links as a dialling router does; the sender (or ``None`` when the
    router closed the connection meanwhile)."""
    try:
        tx = conn.create_sender(CONTROL, name="X>B:control", options=AtMostOnce())
        conn.create_receiver(CONTROL, name="X>B:control-back", credit=10)
    except Exception:  # refused while attaching: the close is checked by the caller
        return None
    return tx


def wait_closed(conn: BlockingConnection) -> None:
    endpoint = conn.conn
    # Proton raises ConnectionException once the peer closed: the state says how.
    with contextlib.suppress(Exception):
        conn.wait(lambda: bool(endpoint.state & endpoint.REMOTE_CLOSED), timeout=TIMEOUT)


@pytest.mark.usefixtures("still_working")
def test_router_with_its_neighbours_id(net: RouterNetwork, tmp_path: Any) -> None:
    """A second router called B dials B: B refuses it (duplicate id)."""
    before = refusals(net, "B")
    with run_router("B", connect=[(net["B"].inter_port, 1)], log_dir=tmp_path):
        line = wait_refused(net, "B", len(before), "duplicate router id")
        assert "'B'" in line
    assert net.nodes("A")["B"]["instance"] == net.nodes("B")["B"]["instance"]


@pytest.mark.usefixtures("still_working")
def test_second_router_with_an_id_already_connected(net: RouterNetwork, tmp_path: Any) -> None:
    """Another router called A dials B, which has a neighbour A already: refused."""
    before = refusals(net, "B")
    real_a = net.nodes("A")["A"]["instance"]
    with run_router("A", connect=[(net["B"].inter_port, 1)], log_dir=tmp_path) as impostor:
        line = wait_refused(net, "B", len(before), "already connected to")
        assert "refusing A" in line
        # The impostor's connection is closed under it (it dials again, to be refused again).
        wait_until(lambda: impostor.log_lines("connection to"), what="the impostor dropped")
    # B still knows the real A.
    assert net.nodes("B")["A"]["instance"] == real_a


@pytest.mark.usefixtures("still_working")
def test_a_refused_router_backs_off(net: RouterNetwork, tmp_path: Any) -> None:
    """A router refused again and again dials less and less often (0.1 s doubling to 5 s:
    at most about 6 dials in 3 s), instead of hammering its peer."""
    before = len(refusals(net, "B"))
    with run_router("B", connect=[(net["B"].inter_port, 1)], log_dir=tmp_path):
        wait_refused(net, "B", before, "duplicate router id")
        first = len(refusals(net, "B"))
        time.sleep(3)
        again = len(refusals(net, "B")) - first
    assert again <= 10, f"refused {again} times in 3 s:\n" + "\n".join(refusals(net, "B")[-5:])


def test_an_impostor_does_not_displace_the_real_neighbour(tmp_path: Path) -> None:
    """B dialled the real A; a second router called A dials B: B keeps the real one."""
    with router_network({"B-A": 1}, log_dir=tmp_path) as pair:
        real_a = pair.nodes("A")["A"]["instance"]
        before = len(refusals(pair, "B"))
        with run_router("A", connect=[(pair["B"].inter_port, 1)], log_dir=tmp_path / "x") as fake:
            wait_refused(pair, "B", before, "A")
            # One of the two As lost its connection to B: which?
            dropped = wait_until(
                lambda: (
                    ("impostor" if fake.log_lines("connection to") else None)
                    or ("real A" if pair["A"].log_lines("neighbour B lost") else None)
                ),
                what="one of the two As dropped",
            )
            assert dropped == "impostor", pair["B"].log_lines("refusing")[:3]
            assert pair.nodes("B")["A"]["instance"] == real_a
        pair.wait_converged()
        assert pair.nodes("B")["A"]["instance"] == real_a


@pytest.mark.usefixtures("still_working")
def test_plain_client_on_the_inter_router_listener(net: RouterNetwork) -> None:
    before = refusals(net, "B")
    try:
        conn = BlockingConnection(net["B"].inter_url, timeout=TIMEOUT)
    except Exception as exc:  # closed during the open: Proton says why
        assert "not-allowed" in str(exc)
    else:
        try:
            wait_closed(conn)
            assert closed_not_allowed(conn)
        finally:
            conn.close()
    wait_refused(net, "B", len(before), "not a Petrel router")


@pytest.mark.usefixtures("still_working")
def test_router_speaking_a_newer_protocol(net: RouterNetwork) -> None:
    before = refusals(net, "B")
    properties = {symbol("petrel:router-id"): "X", symbol("petrel:router-protocol"): 99}
    conn = fake_router(net["B"].inter_url, properties)
    try:
        attach_control_links(conn)
        wait_closed(conn)
        assert closed_not_allowed(conn)
    finally:
        conn.close()
    line = wait_refused(net, "B", len(before), "protocol version 99")
    assert "refusing X" in line
    assert "X" not in net.nodes("B")


@pytest.mark.usefixtures("still_working")
def test_garbage_on_the_control_link(net: RouterNetwork) -> None:
    before = refusals(net, "B")
    properties = {symbol("petrel:router-id"): "G", symbol("petrel:router-protocol"): 1}
    conn = fake_router(net["B"].inter_url, properties)
    try:
        tx = attach_control_links(conn)
        assert tx is not None, "B refused the control links of a well-formed open"
        tx.send(Message(body="this is not a map"))
        wait_closed(conn)
        assert closed_not_allowed(conn)
    finally:
        conn.close()
    line = wait_refused(net, "B", len(before), "control message")
    assert "refusing G" in line
    wait_until(
        lambda: not net.nodes("B").get("G", {}).get("reachable"), what="G gone from B's table"
    )
