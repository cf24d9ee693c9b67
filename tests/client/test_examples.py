"""The runnable examples in ``examples/``, each against a fresh ``petrel broker``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.servers import BrokerProcess, run_broker

EXAMPLES = Path(__file__).parents[2] / "examples"

#: Example -> lines its output must contain.
EXPECTED = {
    "hello_world.py": ["Hello, world!"],
    "work_queue.py": ["sent 30 jobs", "all 30 jobs done"],
    "pub_sub.py": [
        "subscriber-0 got: petrel 1.0 released",
        "subscriber-1 got: brokers in Python",
    ],
    "request_response.py": ["hello -> HELLO", "concurrent: ['A', 'B', 'C']"],
    "durable_subscription.py": [
        "published 3 prices while the subscriber was away",
        "caught up: {'symbol': 'PTRL', 'price': 99.75}",
    ],
    "selector.py": [
        "\"region = 'eu' AND amount > 100\" matched: order 2",
        "left for everyone else: ['order 0', 'order 1', 'order 3']",
    ],
    "blocking_api.py": [
        "received: thread 1 message 2",
        "21 doubled is 42",
        "after the commit: debit",
    ],
}


def test_every_example_is_tested() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(EXPECTED)


@pytest.fixture
def broker() -> Iterator[BrokerProcess]:
    with run_broker() as process:
        yield process


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example(name: str, broker: BrokerProcess) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), broker.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for line in EXPECTED[name]:
        assert line in result.stdout, f"{line!r} not in:\n{result.stdout}"
