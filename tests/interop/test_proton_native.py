"""Qpid Proton's native C and C++ example clients against the Petrel broker.

The C ``send``/``receive`` examples skip SASL and speak bare AMQP; the C++
``simple_send``/``simple_recv`` ones negotiate SASL.  Both are the clients a
Proton user would start with, compiled from Debian's example package.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import petrel
from tests.helpers.proton_native import PACKAGES, build_examples
from tests.helpers.servers import BrokerProcess, run_broker

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def native() -> dict[str, Path]:
    built = build_examples()
    if built is None:
        pytest.skip(f"Proton's example sources or headers are missing (apt-get install {PACKAGES})")
    return built


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerProcess]:
    with run_broker() as process:
        yield process


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=60, check=False
    )


def test_c_send_and_receive_through_petrel(native: dict[str, Path], broker: BrokerProcess) -> None:
    port = str(broker.port)
    sent = run(native["send"], "127.0.0.1", port, "native.c", "1000")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "1000 messages sent and acknowledged" in sent.stdout
    got = run(native["receive"], "127.0.0.1", port, "native.c", "1000")
    assert got.returncode == 0, got.stdout + got.stderr
    assert "1000 messages received" in got.stdout


def test_cpp_clients_with_sasl_through_petrel(
    native: dict[str, Path], broker: BrokerProcess
) -> None:
    url = f"{broker.url}/native.cpp"
    sent = run(native["simple_send"], "-a", url, "-m", "20")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "all messages confirmed" in sent.stdout
    got = run(native["simple_recv"], "-a", url, "-m", "20")
    assert got.returncode == 0, got.stdout + got.stderr
    assert got.stdout.split() == [f'{{"sequence"={i}}}' for i in range(1, 21)]


async def test_c_sender_to_petrel_client(native: dict[str, Path], broker: BrokerProcess) -> None:
    sent = run(native["send"], "127.0.0.1", str(broker.port), "native.mixed", "10")
    assert sent.returncode == 0, sent.stdout
    async with await petrel.connect(broker.url, reconnect=False) as conn:
        receiver = await conn.open_receiver("native.mixed")
        bodies = []
        for _ in range(10):
            delivery = await receiver.receive(timeout=10)
            bodies.append(delivery.message.body)
            await delivery.accept()
    # send.c's messages carry a map body {"sequence": n}.
    assert bodies == [{"sequence": i} for i in range(1, 11)]
