"""``petrel bench`` on small counts: it runs, and its exactly-once accounting adds up.

Benchmarks are not tests: nothing here looks at a rate or a latency.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from petrel.cli._bench_stats import STAMP, Tally, account, bucket, bucket_value, percentiles
from tests.helpers.servers import BrokerProcess, run_broker

PETREL = str(Path(sys.executable).with_name("petrel"))


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerProcess]:
    with run_broker() as process:
        yield process


def bench(*args: str, timeout: float = 60) -> dict[str, Any]:
    result = subprocess.run(
        [PETREL, "bench", "--json", "--timeout", "5", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def assert_exactly_once(result: dict[str, Any], count: int) -> None:
    assert result["sent"] == count
    assert result["received"] == count
    assert result["unique"] == count
    assert result["duplicates"] == 0
    assert result["missing"] == 0
    assert result["unexpected"] == 0
    assert result["exactly_once"] is True
    assert result["rejected"] == 0
    assert result["errors"] == []
    assert sum(result["histogram_us"].values()) == count
    latency = result["latency_ms"]
    assert 0 <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert result["cpu_s"]["senders"] > 0 and result["cpu_s"]["receivers"] > 0


@pytest.mark.parametrize("client", ["petrel", "proton"])
@pytest.mark.parametrize("settle", ["presettled", "unsettled"])
def test_through_the_broker(broker: BrokerProcess, client: str, settle: str) -> None:
    result = bench("--url", broker.url, "--count", "500", "--client", client, "--settle", settle)
    assert_exactly_once(result, 500)
    assert (result["client"], result["settle"], result["size"]) == (client, settle, 100)


def test_several_senders_and_receivers_durable_and_big(broker: BrokerProcess) -> None:
    result = bench(
        "--url", broker.url, "--count", "301", "--senders", "3", "--receivers", "2",
        "--size", "10240", "--durable",
    )  # fmt: skip
    assert_exactly_once(result, 301)
    assert result["mb_per_s"] > 0


@pytest.mark.parametrize("client", ["petrel", "proton"])
def test_peer_to_peer(client: str) -> None:
    result = bench("--peer-to-peer", "--count", "300", "--client", client)
    assert_exactly_once(result, 300)
    assert result["peer_to_peer"] is True and result["url"] is None


def test_duration_and_text_report(broker: BrokerProcess) -> None:
    result = subprocess.run(
        [PETREL, "bench", "--url", broker.url, "--duration", "0.5", "--settle", "presettled"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "every message arrived exactly once" in result.stdout
    assert "msgs/s" in result.stdout and "p99.9" in result.stdout


def test_plot_writes_a_png(broker: BrokerProcess, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "bench.png"
    bench("--url", broker.url, "--count", "200", "--plot", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_one_clear_line(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['matplotlib'] = None; sys.argv = ['petrel'] + sys.argv[1:];"
        "from petrel.cli.main import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "bench", "--plot", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "petrel bench: --plot needs matplotlib: pip install 'petrel[plot]'"
    ]


def test_nothing_listening_is_one_clear_line() -> None:
    result = subprocess.run(
        [PETREL, "bench", "--url", "amqp://127.0.0.1:1", "--count", "10"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("petrel bench: receiver 0:"), lines


# --- the accounting, without processes -----------------------------------------------------------


def body(sender: int, seq: int, sent_ns: int = 0) -> bytes:
    return STAMP.pack(sender, seq, sent_ns) + b"x" * 10


def test_accounting_counts_duplicates_missing_and_unexpected() -> None:
    one, two = Tally(), Tally()
    for seq in (0, 1, 2, 2):  # 2 twice at one receiver
        one.record(body(0, seq), 1000)
    for seq in (2, 4, 9000):  # 2 again at another; 3 never; 9000 never sent
        two.record(body(0, seq), 1000)
    two.record(body(1, 0), 1000)
    result = account({0: 5, 1: 1}, [one.to_json(), two.to_json()])
    assert (result.sent, result.received, result.unique) == (6, 8, 5)
    assert (result.duplicates, result.missing, result.unexpected) == (2, 1, 1)
    assert not result.exactly_once


def test_histogram_buckets_are_monotonic_and_within_four_percent() -> None:
    previous = -1
    for micros in [*range(0, 5000), *range(5000, 10**8, 997)]:
        index = bucket(micros)
        assert index >= previous
        previous = index
        assert abs(bucket_value(index) - micros) <= max(1.0, micros * 0.04)


def test_percentiles() -> None:
    tally = Tally()
    for micros in range(1, 1001):
        tally.record(body(0, micros, 0), micros * 1000)
    points = percentiles(tally.histogram, (50.0, 99.0, 100.0), tally.max_us)
    assert abs(points[50.0] - 500) <= 20
    assert abs(points[99.0] - 990) <= 40
    assert points[100.0] <= 1000
