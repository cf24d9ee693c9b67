"""Broker tests: a ``petrel broker`` subprocess per module, Proton as its client."""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Callable, Iterator

import pytest

from tests.helpers.servers import BrokerProcess, run_broker

pytest.importorskip("proton")

from proton.utils import BlockingConnection

from tests.helpers.proton_client import connect

#: What the module brokers declare; each test uses its own queues.
BROKER_CONFIG = """
[[addresses]]
name = "news"
routing = "multicast"

[[queues]]
name = "rejects"
dead_letter_address = "rejects.dlq"

[[queues]]
name = "attempts"
max_delivery_attempts = 3
dead_letter_address = "attempts.dlq"

[[queues]]
name = "expiring"
expiry_address = "expiring.expired"

[[queues]]
name = "short-lived"
default_ttl = 0.2

[[queues]]
name = "throttled"
max_messages = 10

[[queues]]
name = "small-block"
max_messages = 2

[[queues]]
name = "byte-limited"
max_bytes = 10000

[[queues]]
name = "full-rejects"
max_messages = 3
full_policy = "reject"
"""


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerProcess]:
    """A broker for the whole module (memory store, auto-create on)."""
    with run_broker(BROKER_CONFIG) as process:
        yield process


_counter = itertools.count(1)


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A queue or address name no other test uses."""
    base = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")
    return f"{base}-{next(_counter)}"


@pytest.fixture
def connections(broker: BrokerProcess) -> Iterator[Callable[..., BlockingConnection]]:
    """Open connections to the module broker (``connect(**kwargs)``); all closed afterwards."""
    opened: list[BlockingConnection] = []

    def open_connection(**kwargs: object) -> BlockingConnection:
        conn = connect(broker.url, **kwargs)
        opened.append(conn)
        return conn

    yield open_connection
    for conn in opened:
        with contextlib.suppress(Exception):
            conn.close()


@pytest.fixture
def conn(connections: Callable[..., BlockingConnection]) -> BlockingConnection:
    """One connection to the module broker."""
    return connections()
