"""``petrel send`` and ``petrel receive`` against a broker subprocess, as people use them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.servers import BrokerProcess, free_port, run_broker

PETREL = str(Path(sys.executable).with_name("petrel"))


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerProcess]:
    with run_broker() as process:
        yield process


def petrel(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PETREL, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_send_then_receive_with_properties(broker: BrokerProcess) -> None:
    sent = petrel(
        "send", "cli.q1", "--url", broker.url, "--count", "3", "--body", "hi",
        "--property", "color=red", "--property", "n=5", "--property", "ok=true",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == "sent 3 messages to cli.q1"
    got = petrel("receive", "cli.q1", "--url", broker.url, "--count", "3", "--json")
    assert got.returncode == 0, got.stderr
    records = [json.loads(line) for line in got.stdout.splitlines()]
    assert [r["body"] for r in records] == ["hi", "hi", "hi"]
    assert records[0]["properties"] == {"color": "red", "n": 5, "ok": True}
    # They were accepted: nothing is left.
    empty = petrel("receive", "cli.q1", "--url", broker.url, "--timeout", "0.5")
    assert (empty.returncode, empty.stdout) == (3, "")
    assert empty.stderr.strip() == "petrel receive: no message arrived from cli.q1 in 0.5 s"


def test_selector_and_browse(broker: BrokerProcess) -> None:
    for color in ("red", "blue", "red"):
        result = petrel(
            "send", "cli.q2", "--url", broker.url, "--body", color, "--property", f"color={color}"
        )
        assert result.returncode == 0, result.stderr
    browsed = petrel("receive", "cli.q2", "--url", broker.url, "--browse", "--timeout", "0.5")
    assert browsed.stdout.split() == ["red", "blue", "red"]
    blue = petrel(
        "receive", "cli.q2", "--url", broker.url, "--selector", "color = 'blue'",
        "--timeout", "0.5",
    )  # fmt: skip
    assert blue.stdout.split() == ["blue"]
    rest = petrel("receive", "cli.q2", "--url", broker.url, "--count", "2")
    assert rest.stdout.split() == ["red", "red"]


def test_file_body_and_durable(broker: BrokerProcess, tmp_path: Path) -> None:
    payload = tmp_path / "payload.txt"
    payload.write_bytes(b"from a file")
    result = petrel("send", "cli.q3", "--url", broker.url, "--file", str(payload), "--durable")
    assert result.returncode == 0, result.stderr
    got = petrel("receive", "cli.q3", "--url", broker.url, "--count", "1", "--json")
    record = json.loads(got.stdout)
    assert record["body"] == "from a file"
    assert record["durable"] is True


def test_bad_selector_is_one_clear_line(broker: BrokerProcess) -> None:
    result = petrel("receive", "cli.q4", "--url", broker.url, "--selector", "color =")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "amqp:invalid-field" in lines[0] and "selector" in lines[0]


def test_unreachable_broker_is_one_clear_line() -> None:
    port = free_port()
    result = petrel("send", "x", "--url", f"amqp://127.0.0.1:{port}", "--timeout", "5")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0]


def test_receive_count_not_reached_exits_nonzero(broker: BrokerProcess) -> None:
    result = petrel("receive", "cli.empty", "--url", broker.url, "--count", "2", "--timeout", "0.3")
    assert result.returncode == 3
    assert "only 0 of 2 messages" in result.stderr
    assert petrel("send", "cli.empty", "--url", broker.url).returncode == 0
    result = petrel("receive", "cli.empty", "--url", broker.url, "--count", "2", "--timeout", "0.3")
    assert (result.returncode, result.stdout.split()) == (3, ["hello"])
    assert "only 1 of 2 messages" in result.stderr


def test_bad_property_syntax() -> None:
    result = petrel("send", "x", "--property", "novalue")
    assert result.returncode == 2
    assert "expected key=value" in result.stderr
