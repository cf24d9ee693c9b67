"""Petrel's request/response client against Qpid Proton's example servers.

Proton's ``server.py`` and ``server.cpp`` (Debian's
``libqpid-proton11-dev-examples``) answer each request on its ``reply-to``
with the body upper-cased and the request's ``correlation-id`` copied into the
reply, where Petrel's own responder puts the request's ``message-id``.  Both
run here as subprocesses against a ``petrel broker``; the client must match
their replies whichever convention a server follows.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import petrel
from petrel import Message
from tests.helpers.proton_native import EXAMPLES, PACKAGES, build_examples
from tests.helpers.servers import BrokerProcess, run_broker, stop_process

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerProcess]:
    with run_broker() as process:
        yield process


@pytest.fixture(scope="module")
def native() -> dict[str, Path]:
    built = build_examples()
    if built is None:
        pytest.skip(f"Proton's example sources or headers are missing (apt-get install {PACKAGES})")
    return built


def _server_py(broker: BrokerProcess, address: str) -> list[str]:
    script = EXAMPLES / "python" / "server.py"
    return [sys.executable, str(script), "-a", f"127.0.0.1:{broker.port}/{address}"]


def _server_cpp(broker: BrokerProcess, address: str, native: dict[str, Path]) -> list[str]:
    return [str(native["server"]), f"//127.0.0.1:{broker.port}", address]


@pytest.fixture(params=["server.py", "server.cpp"])
def proton_server(
    request: pytest.FixtureRequest, broker: BrokerProcess
) -> Iterator[tuple[str, str]]:
    """One of Proton's example servers, serving a fresh address through the broker;
    yields ``(url, address)``.  Requests sent before it attaches wait in the queue."""
    address = f"upper-{request.param.replace('.', '-')}"
    if request.param == "server.py":
        command = _server_py(broker, address)
    else:
        command = _server_cpp(broker, address, request.getfixturevalue("native"))
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield broker.url, address
    finally:
        stop_process(proc, timeout=5)
        assert proc.stderr is not None
        errors = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        assert "Traceback" not in errors and "error" not in errors.lower(), errors


async def test_request_to_a_proton_example_server(proton_server: tuple[str, str]) -> None:
    url, address = proton_server
    async with await petrel.connect(url) as conn:
        response = await conn.request(address, "hello", timeout=30)
        assert response.body == "HELLO"
        # Many at once: each reply goes to the request that asked for it.
        words = [f"word{i}" for i in range(20)]
        answers = await asyncio.gather(*(conn.request(address, w, timeout=30) for w in words))
        assert [a.body for a in answers] == [w.upper() for w in words]


async def test_a_given_correlation_id_comes_back(proton_server: tuple[str, str]) -> None:
    url, address = proton_server
    async with await petrel.connect(url) as conn:
        request = Message("mine", message_id="m-1", correlation_id="c-1")
        response = await conn.request(address, request, timeout=30)
        assert response.body == "MINE"
        assert response.correlation_id == "c-1"
        # Without a correlation-id of its own the request carries its message-id there.
        response = await conn.request(address, Message("x", message_id="m-2"), timeout=30)
        assert response.correlation_id == "m-2"
