"""rhea (Node.js) over WebSockets through ``petrel broker``, beside a plain-AMQP Proton
client.  rhea dials with the ``ws`` npm package (pinned in
tests/interop/rhea/package-lock.json, installed here with ``npm ci`` when missing)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.servers import BrokerProcess, free_port, run_broker, wait_for_port

pytest.importorskip("proton")

from proton import Message

from tests.helpers.proton_client import connect, fetch, receiver, send_all, sender, settle

RHEA = Path(__file__).parents[1] / "interop" / "rhea"
NODE = shutil.which("node")

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module", autouse=True)
def rhea_installed() -> None:
    if NODE is None:
        pytest.skip("Node.js is needed for the rhea tests (apt-get install nodejs npm)")
    if (RHEA / "node_modules" / "rhea").is_dir() and (RHEA / "node_modules" / "ws").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is needed to install rhea (apt-get install npm)")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=RHEA,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}{result.stderr}"


def rhea(*args: str, timeout: float = 30) -> dict[str, object]:
    assert NODE is not None
    result = subprocess.run(
        [NODE, str(RHEA / "peer.js"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.stdout, result.stderr
    report: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


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
