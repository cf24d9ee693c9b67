"""``/metrics`` of ``petrel broker`` (a subprocess, ``--http``), parsed with Prometheus's
parser and checked against what a Proton client did; who may read it."""

from __future__ import annotations

import base64
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.helpers.servers import BrokerProcess, free_port, run_broker, wait_for_port
from tests.http.conftest import Samples, parse_metrics, value

pytest.importorskip("proton")

from tests.helpers.proton_client import (
    connect,
    fetch,
    flush,
    receiver,
    send_all,
    sender,
    settle,
    sync,
)

CONFIG = """
[[queues]]
name = "metered"
dead_letter_address = "metered.dlq"

[[queues]]
name = "tiny"
max_messages = 2

[[users]]
name = "admin"
password = "admin-secret"
admin = true

[[users]]
name = "plain"
password = "plain-secret"
"""


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerProcess]:
    port, http = free_port(), free_port()
    # A listener on every interface, so that a client from another address can be tried.
    config = (
        CONFIG
        + f"""
[[listeners]]
url = "amqp://127.0.0.1:{port}"

[[listeners]]
url = "http://0.0.0.0:{http}"
role = "http"
"""
    )
    with run_broker(config, port=port, store="sqlite") as process:
        wait_for_port(http, process.proc)  # bound after the AMQP listener run_broker waits for
        yield process


def http_url(broker: BrokerProcess, host: str = "127.0.0.1") -> str:
    config = (broker.data_dir / f"broker-{broker.port}.toml").read_text()
    port = int(config.split('url = "http://0.0.0.0:')[1].split('"')[0])
    return f"http://{host}:{port}"


def get(url: str, user: str | None = None, password: str = "") -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def scrape(broker: BrokerProcess) -> Samples:
    status, text, headers = get(http_url(broker) + "/metrics")
    assert status == 200, text
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse_metrics(text)


def test_queue_and_address_counters_follow_the_traffic(broker: BrokerProcess) -> None:
    conn = connect(broker.url)
    try:
        from proton import Message

        send_all(sender(conn, "metered"), [Message(body=f"m{i}") for i in range(10)])
        rx = receiver(conn, "metered", credit=8)
        deliveries = [fetch(conn, rx)[1] for _ in range(8)]
        outcomes = ["accept"] * 4 + ["reject"] * 2 + ["release", "modify"]
        for delivery, outcome in zip(deliveries, outcomes, strict=True):
            settle(delivery, outcome, failed=outcome == "modify")
        flush(conn)
        sync(conn)
        samples = scrape(broker)
    finally:
        conn.close()
    labels = {"queue": "metered", "address": "metered", "kind": "queue"}
    expected = {
        "petrel_queue_messages_in_total": 10,
        "petrel_queue_messages_out_total": 8,
        "petrel_queue_messages_acknowledged_total": 4,
        "petrel_queue_messages_rejected_total": 2,
        "petrel_queue_messages_released_total": 1,
        "petrel_queue_messages_modified_total": 1,
        "petrel_queue_messages_dead_lettered_total": 2,
        "petrel_queue_messages_expired_total": 0,
        "petrel_queue_depth_messages": 4,  # 10 - 4 accepted - 2 rejected
        "petrel_queue_consumers": 1,
        "petrel_queue_unsettled_deliveries": 0,
        "petrel_queue_unsettled_deliveries_over_10s": 0,
    }
    got = {name: value(samples, name, **labels) for name in expected}
    assert got == expected
    assert value(samples, "petrel_queue_depth_bytes", **labels) > 0
    # The address sums its queue; the dead letters went to their own address.
    assert (
        value(samples, "petrel_address_messages_in_total", address="metered", routing="anycast")
        == 10
    )
    assert (
        value(samples, "petrel_address_depth_messages", address="metered.dlq", routing="anycast")
        == 2
    )
    # The store wrote the durable queues' changes in batches, and says how fast.
    assert value(samples, "petrel_store_commit_seconds_count") >= 1
    assert value(samples, "petrel_store_commit_batch_operations_sum") >= 1
    assert value(samples, "petrel_store_commit_seconds_bucket", le="+Inf") == value(
        samples, "petrel_store_commit_seconds_count"
    )
    assert value(samples, "petrel_server_info", kind="broker", id="petrel", version=_version()) == 1


def _version() -> str:
    import petrel

    return petrel.__version__


def test_a_full_queue_counts_credit_stalls(broker: BrokerProcess) -> None:
    conn = connect(broker.url)
    try:
        from proton import Message

        send_all(sender(conn, "tiny"), [Message(body="a"), Message(body="b")])
        tx = sender(conn, "tiny")  # the queue is full: this producer gets no credit
        sync(conn)
        assert tx.link.credit == 0
        samples = scrape(broker)
    finally:
        conn.close()
    labels = {"queue": "tiny", "address": "tiny", "kind": "queue"}
    assert value(samples, "petrel_queue_credit_stalls_total", **labels) >= 1
    assert value(samples, "petrel_queue_depth_messages", **labels) == 2


def test_connection_series_are_off_by_default(broker: BrokerProcess) -> None:
    conn = connect(broker.url)
    try:
        samples = scrape(broker)
    finally:
        conn.close()
    assert value(samples, "petrel_connections") >= 1
    assert not [
        name for name, _ in samples if name.startswith(("petrel_connection_", "petrel_link_"))
    ]


def test_metrics_on_loopback_need_no_credentials_but_check_those_given(
    broker: BrokerProcess,
) -> None:
    url = http_url(broker) + "/metrics"
    assert get(url)[0] == 200
    assert get(url, "admin", "admin-secret")[0] == 200
    status, text, headers = get(url, "admin", "wrong")
    assert (status, text) == (401, "wrong user name or password\n")
    assert headers["WWW-Authenticate"].startswith("Basic")
    assert get(url, "plain", "plain-secret")[:2] == (
        403,
        "user 'plain' may not manage this server\n",
    )


def _outside_address() -> str:
    """An address of this machine that is not loopback (where its default route leaves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        address = str(probe.getsockname()[0])
    assert not address.startswith("127."), "this machine needs a non-loopback IPv4 address"
    return address


def test_metrics_from_elsewhere_need_a_manager(broker: BrokerProcess) -> None:
    url = http_url(broker, _outside_address()) + "/metrics"
    status, text, headers = get(url)
    assert status == 401
    assert "credentials of a user who may manage" in text
    assert headers["WWW-Authenticate"] == 'Basic realm="petrel", charset="UTF-8"'
    assert get(url, "plain", "plain-secret")[0] == 403
    status, text, _ = get(url, "admin", "admin-secret")
    assert status == 200
    assert (
        value(
            parse_metrics(text),
            "petrel_server_info",
            kind="broker",
            id="petrel",
            version=_version(),
        )
        == 1
    )
