"""Client tests: a Proton broker subprocess per module, fresh queue names per test."""

from __future__ import annotations

import contextlib
import itertools
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.helpers.servers import HELPERS, free_port, run_ready_process

pytest.importorskip("proton")


@dataclass
class Peer:
    """A running Proton broker subprocess."""

    port: int
    proc: subprocess.Popen[str]

    @property
    def url(self) -> str:
        return f"amqp://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL the broker and wait for it to be gone."""
        self.proc.kill()
        self.proc.wait(timeout=10)


@contextlib.contextmanager
def proton_peer(
    *,
    port: int | None = None,
    prefetch: int | None = None,
    journal: str | None = None,
    tls: tuple[str, str] | None = None,
    idle: float | None = None,
) -> Iterator[Peer]:
    """Run ``tests/helpers/proton_broker.py`` with the client tests' options."""
    port = port or free_port()
    args = [sys.executable, str(HELPERS / "proton_broker.py"), str(port)]
    if prefetch is not None:
        args += ["--prefetch", str(prefetch)]
    if journal is not None:
        args += ["--journal", journal]
    if tls is not None:
        args += ["--tls", *tls]
    if idle is not None:
        args += ["--idle", str(idle)]
    with run_ready_process(args) as proc:
        yield Peer(port, proc)


@pytest.fixture(scope="module")
def peer() -> Iterator[Peer]:
    """One Proton broker for the whole module."""
    with proton_peer(prefetch=100) as running:
        yield running


@pytest.fixture(scope="module")
def url(peer: Peer) -> str:
    return peer.url


_counter = itertools.count(1)


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> str:
    """A queue name no other test uses."""
    base = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")
    return f"{base}-{next(_counter)}"
