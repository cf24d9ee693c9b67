"""rhea (Node.js) over WebSockets through ``petrel broker``, beside a plain-AMQP Proton
client.  rhea dials with the ``ws`` npm package (pinned in
tests/interop/rhea/package-lock.json, installed here with ``npm ci`` when missing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.servers import BrokerProcess, free_port, run_broker, wait_for_port

pytest.importorskip("proton")

from proton import Message

from tests.helpers.proton_client import connect, fetch, receiver, send_all, sender, settle
from tests.helpers.rhea import install_rhea, rhea

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module", autouse=True)
def rhea_installed() -> None:
    install_rhea("rhea", "ws")


@pytest.fixture(scope="module")
def broker() -> Iterator[tuple[BrokerProcess, str]]:
    port = free_port()
    with run_broker(args=["--http", f"http://127.0.0.1:{port}"]) as process:
        wait_for_port(port, process.proc)  # bound after the AMQP listener run_broker waits for
        yield process, f"ws://127.0.0.1:{port}"


def test_rhea_over_websocket_to_a_proton_client(broker: tuple[BrokerProcess, str]) -> None:
    process, ws = broker
    assert rhea("send", ws, "rhea.ws1", "20") == {"sent": 20, "accepted": 20, "rejected": 0}
    conn = connect(process.url)
    try:
        rx = receiver(conn, "rhea.ws1", credit=20)
        got = []
        for _ in range(20):
            message, delivery = fetch(conn, rx)
            got.append(message.body)
            settle(delivery)
    finally:
        conn.close()
    assert got == [f"m{i}" for i in range(20)]


def test_proton_client_to_rhea_over_websocket(broker: tuple[BrokerProcess, str]) -> None:
    process, ws = broker
    conn = connect(process.url)
    try:
        send_all(sender(conn, "rhea.ws2"), [Message(body=f"p{i}") for i in range(10)])
    finally:
        conn.close()
    assert rhea("receive", ws + "/amqp", "rhea.ws2", "10") == {
        "bodies": [f"p{i}" for i in range(10)]
    }


def test_rhea_request_response_over_websocket(broker: tuple[BrokerProcess, str]) -> None:
    """A dynamic reply queue and $management over the WebSocket: a request to the broker's
    management node with rhea's reply address gets its answer."""
    _, ws = broker
    report = rhea("request", ws, "$management", "ping")
    assert "body" in report, report
