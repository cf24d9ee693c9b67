"""One ``petrel router`` process on its own: its lifecycle, and the links a router refuses.

A router alone is already a message router: a sender and a receiver on it
exchange messages with outcomes end to end.  It says it is ready, stops on
SIGTERM with exit status 0, reports an address in use in one line (exit 3),
and refuses with a clear error what it cannot do: a receiver on another
router's topological address, a transaction coordinator, a dynamic target,
a client link on an inter-router listener.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from proton import Delivery, Message
from proton.utils import ConnectionClosed, LinkDetached, SyncRequestResponse

from tests.helpers.proton_client import connect, fetch, receiver, sender, settle, wait_for
from tests.helpers.routers import RouterProcess, run_router
from tests.helpers.servers import free_port


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterProcess]:
    with run_router("solo", log_dir=tmp_path_factory.mktemp("solo")) as process:
        yield process


def test_ready_line_names_both_listeners(router: RouterProcess) -> None:
    ready = router.log_lines("petrel router ready on")
    assert len(ready) == 1
    assert f"127.0.0.1:{router.port}" in ready[0]
    assert f"127.0.0.1:{router.inter_port}" in ready[0]
    assert "router solo started" in router.log()


def test_one_router_routes_between_its_own_clients(router: RouterProcess) -> None:
    conn = connect(router.url)
    try:
        rx = receiver(conn, "solo.q", credit=5)
        tx = sender(conn, "solo.q")
        wait_for(conn, lambda: tx.link.credit > 0)
        sent = [tx.link.send(Message(body=n)) for n in range(3)]
        got = [fetch(conn, rx) for _ in range(3)]
        assert [m.body for m, _ in got] == [0, 1, 2]
        settle(got[0][1])
        settle(got[1][1], "release")
        settle(got[2][1], "reject", condition=("app:no", "no"))
        wait_for(conn, lambda: all(d.remote_state for d in sent))
        states = [d.remote_state for d in sent]
        assert states == [Delivery.ACCEPTED, Delivery.RELEASED, Delivery.REJECTED]
    finally:
        conn.close()


def test_its_management_answers_for_itself(router: RouterProcess) -> None:
    conn = connect(router.url)
    try:
        client = SyncRequestResponse(conn, "$management")
        request = Message(
            properties={"operation": "READ", "type": "petrel.router", "name": "solo"}, body={}
        )
        response = client.call(request)
        assert response.properties["statusCode"] == 200
        assert response.body["id"] == "solo"
        assert response.body["neighbours"] == 0
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("what", "attach"),
    [
        ("a receiver on a topological address", lambda c: receiver(c, "_topo/0/solo/x")),
        (
            "a transaction coordinator",
            lambda c: c.create_sender(None, options=_Coordinator()),
        ),
        ("a dynamic target", lambda c: c.create_sender(None, options=_DynamicTarget())),
    ],
)
def test_links_a_router_refuses(router: RouterProcess, what: str, attach: object) -> None:
    conn = connect(router.url)
    try:
        with pytest.raises(LinkDetached) as refused:
            attach(conn)  # type: ignore[operator]
        assert refused.value.condition is not None, what
        # The connection survives the refusal.
        tx = sender(conn, "solo.after")
        assert tx.link.state & tx.link.REMOTE_ACTIVE
    finally:
        conn.close()


class _Coordinator:
    """A sender whose target is a transaction coordinator."""

    def apply(self, link: object) -> None:
        link.target.type = link.target.COORDINATOR  # type: ignore[attr-defined]

    def test(self, link: object) -> bool:
        return True


class _DynamicTarget:
    def apply(self, link: object) -> None:
        link.target.dynamic = True  # type: ignore[attr-defined]
        link.target.address = None  # type: ignore[attr-defined]

    def test(self, link: object) -> bool:
        return True


def test_an_address_in_use_is_one_line_and_exit_3(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        process = RouterProcess("busy", port, free_port(), tmp_path / "busy.log")
        process.spawn()
        assert process.proc is not None
        assert process.proc.wait(timeout=30) == 3
    lines = [line for line in process.log().splitlines() if line.startswith("petrel router:")]
    assert len(lines) == 1, process.log()
    assert f"127.0.0.1:{port}" in lines[0] or "in use" in lines[0], lines


def test_sigterm_closes_clients_and_stops_cleanly(tmp_path: Path) -> None:
    with run_router("short", log_dir=tmp_path) as process:
        conn = connect(process.url)
        rx = receiver(conn, "waiting", credit=1)
        assert process.proc is not None
        process.proc.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as caught:
            fetch(conn, rx)
        assert caught.value.condition == "amqp:connection:forced"
        conn.close()  # answers the router's close
        assert process.proc.wait(timeout=20) == 0
        process.killed = True
    assert "stopping on SIGTERM" in process.log()
    assert "router short stopped" in process.log()
