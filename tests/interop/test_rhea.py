"""rhea (Node.js's AMQP 1.0 library) against Petrel: its clients on Petrel's broker, and
Petrel's client on a rhea broker.

rhea's version is pinned by ``tests/interop/rhea/package-lock.json``; the
first test here installs it (``npm ci``) when it is missing, so ``make test`` runs
these anywhere Node.js and npm are (a fresh machine has both).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import petrel
from tests.helpers.rhea import NODE, RHEA, install_rhea, rhea
from tests.helpers.servers import BrokerProcess, free_port, run_broker, run_ready_process

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module", autouse=True)
def rhea_installed() -> None:
    """Node.js must be there; rhea is installed from the lock file if it is not."""
    install_rhea()


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerProcess]:
    with run_broker() as process:
        yield process


def test_rhea_sender_and_receiver_through_petrel(broker: BrokerProcess) -> None:
    assert rhea("send", broker.url, "rhea.q1", "50") == {"sent": 50, "accepted": 50, "rejected": 0}
    report = rhea("receive", broker.url, "rhea.q1", "50")
    assert report["bodies"] == [f"m{i}" for i in range(50)]


def test_rhea_selector_through_petrel(broker: BrokerProcess) -> None:
    rhea("send", broker.url, "rhea.q2", "10")
    assert rhea("receive", broker.url, "rhea.q2", "2", "i >= 8") == {"bodies": ["m8", "m9"]}
    bad = rhea("receive", broker.url, "rhea.q2", "1", "i >=")
    assert bad["error"] == "amqp:invalid-field"
    assert "selector" in str(bad["description"])


async def test_rhea_to_petrel_client_and_back(broker: BrokerProcess) -> None:
    await asyncio.to_thread(rhea, "send", broker.url, "rhea.q3", "5")
    async with await petrel.connect(broker.url, reconnect=False) as conn:
        receiver = await conn.open_receiver("rhea.q3")
        got = []
        for _ in range(5):
            delivery = await receiver.receive(timeout=10)
            got.append((delivery.message.body, delivery.message.application_properties))
            await delivery.accept()
        assert got == [(f"m{i}", {"i": i}) for i in range(5)]
        sender = await conn.open_sender("rhea.q4")
        for i in range(3):
            await sender.send(petrel.Message(f"p{i}"))
    report = await asyncio.to_thread(rhea, "receive", broker.url, "rhea.q4", "3")
    assert report["bodies"] == ["p0", "p1", "p2"]


async def test_rhea_request_to_a_petrel_responder(broker: BrokerProcess) -> None:
    async with await petrel.connect(broker.url, reconnect=False) as conn:

        async def handle(request: petrel.Message) -> petrel.Message:
            return petrel.Message(str(request.body).upper())

        async with await conn.serve("rhea.service", handle):
            report = await asyncio.to_thread(rhea, "request", broker.url, "rhea.service", "ping")
    assert report == {"body": "PING", "correlation_id": "req-1"}


async def test_petrel_client_on_a_rhea_broker() -> None:
    assert NODE is not None
    port = free_port()
    with run_ready_process([NODE, str(RHEA / "peer.js"), "broker", str(port)]):
        url = f"amqp://127.0.0.1:{port}"
        async with await petrel.connect(url, reconnect=False) as conn:
            sender = await conn.open_sender("petrel.q")
            for i in range(20):
                await sender.send(petrel.Message({"n": i}, subject="s"))
            receiver = await conn.open_receiver("petrel.q", credit=5)
            bodies = []
            for _ in range(20):
                delivery = await receiver.receive(timeout=10)
                bodies.append(delivery.message.body)
                await delivery.accept()
            assert bodies == [{"n": i} for i in range(20)]
