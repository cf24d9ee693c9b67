"""A TLS listener's certificate replaced while the server runs.

New connections get the new certificate, open ones carry on; a broken new file
keeps the old context and logs one line; a changed file is noticed without a
signal; SIGHUP reloads and the handler it replaced comes back afterwards.  An
in-process broker (memory store) serves; Petrel's client and plain ``ssl``
sockets are its clients.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import petrel
from petrel.broker import Broker
from petrel.driver import TlsConfig
from petrel.server.config import BrokerSettings, ListenerSettings, TlsSettings
from petrel.server.lifecycle import capture_signals
from tests.helpers.certs import Authority, Pem


@dataclass
class Rotation:
    """Two CAs, a certificate from each, and the files the broker reads."""

    trust: str
    """Both CAs in one file: what clients trust."""
    first: Pem
    second: Pem
    cert: Path
    key: Path


@pytest.fixture
def rotation(tmp_path: Path) -> Rotation:
    ca1 = Authority(tmp_path, "ca1")
    ca2 = Authority(tmp_path, "ca2")
    first = ca1.issue("first", "localhost", "127.0.0.1", common_name="first")
    second = ca2.issue("second", "localhost", "127.0.0.1", common_name="second")
    trust = tmp_path / "trust.pem"
    trust.write_text(Path(ca1.cert).read_text() + Path(ca2.cert).read_text())
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    first.copy_to(cert, key)
    return Rotation(str(trust), first, second, cert, key)


async def _broker(rotation: Rotation, reload_interval: float = 0.0) -> Broker:
    tls = TlsSettings(
        cert_file=str(rotation.cert), key_file=str(rotation.key), reload_interval=reload_interval
    )
    listener = ListenerSettings(url="amqps://127.0.0.1:0", tls=tls)
    broker = Broker(BrokerSettings(store="memory", listeners=[listener]))
    await broker.start()
    return broker


@pytest.fixture
async def broker(rotation: Rotation) -> AsyncIterator[Broker]:
    broker = await _broker(rotation)
    yield broker
    await broker.stop(timeout=1.0)


async def served_name(broker: Broker, rotation: Rotation) -> str:
    """The common name of the certificate a new TLS connection to ``broker`` gets."""
    context = ssl.create_default_context(cafile=rotation.trust)
    _, writer = await asyncio.open_connection(
        "127.0.0.1", broker.bound[0][1], ssl=context, server_hostname="localhost"
    )
    try:
        certificate = writer.get_extra_info("peercert")
    finally:
        writer.close()
        await writer.wait_closed()
    return next(v for rdn in certificate["subject"] for k, v in rdn if k == "commonName")


async def round_trip(conn: petrel.Connection, address: str, body: str) -> None:
    sender = await conn.open_sender(address)
    await sender.send(petrel.Message(body))
    receiver = await conn.open_receiver(address)
    delivery = await receiver.receive(timeout=5)
    assert delivery.message.body == body
    await delivery.accept()
    await sender.close()
    await receiver.close()


async def test_new_connections_get_the_new_certificate_open_ones_carry_on(
    broker: Broker, rotation: Rotation
) -> None:
    url = f"amqps://localhost:{broker.bound[0][1]}"
    old = await petrel.connect(url, tls=TlsConfig(ca_file=rotation.trust))
    try:
        await round_trip(old, "before", "one")
        assert await served_name(broker, rotation) == "first"

        rotation.second.copy_to(rotation.cert, rotation.key)
        broker.reload()

        assert await served_name(broker, rotation) == "second"
        await round_trip(old, "after", "two")  # the connection made before is still good
        new = await petrel.connect(url, tls=TlsConfig(ca_file=rotation.trust))
        await round_trip(new, "new", "three")
        await new.close()
    finally:
        await old.close()


@pytest.mark.parametrize("damage", ["garbage key", "missing key", "mismatched key"])
async def test_a_broken_new_file_keeps_the_previous_certificate(
    broker: Broker, rotation: Rotation, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    if damage == "garbage key":
        rotation.key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n")
    elif damage == "missing key":
        rotation.key.unlink()
    else:  # the second certificate beside the first's key: a half-done rotation
        Path(rotation.cert).write_bytes(Path(rotation.second.cert).read_bytes())
    with caplog.at_level(logging.INFO, logger="petrel"):
        broker.reload()
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1, caplog.text
    message = errors[0].getMessage()
    assert "still using the previous ones" in message
    assert str(rotation.cert) in message and str(rotation.key) in message
    assert await served_name(broker, rotation) == "first"


async def test_changed_files_are_reloaded_without_a_signal(rotation: Rotation) -> None:
    broker = await _broker(rotation, reload_interval=0.05)
    try:
        assert await served_name(broker, rotation) == "first"
        # Half a rotation first (a new certificate, the old key): kept out, and tried
        # again once the key changes too.
        Path(rotation.cert).write_bytes(Path(rotation.second.cert).read_bytes())
        await asyncio.sleep(0.2)
        assert await served_name(broker, rotation) == "first"
        Path(rotation.key).write_bytes(Path(rotation.second.key).read_bytes())
        for _ in range(200):
            if await served_name(broker, rotation) == "second":
                break
            await asyncio.sleep(0.05)
        assert await served_name(broker, rotation) == "second"
    finally:
        await broker.stop(timeout=1.0)


async def test_sighup_reloads_and_the_previous_handler_comes_back() -> None:
    hangups: list[str] = []
    reloaded = asyncio.Event()

    def ours(signum: int, frame: object) -> None:
        hangups.append("ours")

    before = signal.signal(signal.SIGHUP, ours)
    try:
        stop = asyncio.Event()
        with capture_signals(stop, reloaded.set):
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.wait_for(reloaded.wait(), 10)
            assert not stop.is_set()
        assert signal.getsignal(signal.SIGHUP) is ours
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0)
        assert hangups == ["ours"]
    finally:
        signal.signal(signal.SIGHUP, before)
