"""``petrel stat`` and ``petrel manage`` against a real broker subprocess, as people use them.

One broker for the module, with ``auto_create = false`` (a queue exists only
once management made it) and three listeners: anonymous on loopback (where
anonymous clients may manage), one that requires SASL PLAIN (an ``admin``
user, and a ``guest`` who is not one), and mutual TLS.  The tools run as
subprocesses; the setup a test needs (queues, messages, a client that stays
connected) is done in-process with the Python client, for speed.  Commands
that do not depend on each other run side by side.  One test drives the
tools' QUERY pager against a stand-in whose entities change between pages.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import petrel
from petrel.blocking import BlockingConnection
from petrel.management import BlockingManagementClient
from tests.helpers.servers import BrokerProcess, free_port, run_broker

PETREL = str(Path(sys.executable).with_name("petrel"))
ADMIN = ("admin", "admin-secret")
GUEST = ("guest", "guest-secret")


@dataclass
class Broker:
    process: BrokerProcess
    auth_url: str
    """A listener that refuses anonymous clients."""
    tls_url: str
    """A mutual-TLS listener."""
    tls: dict[str, str]

    @property
    def url(self) -> str:
        return self.process.url


@pytest.fixture(scope="module")
def broker(tls_files: dict[str, str]) -> Iterator[Broker]:
    port, auth_port, tls_port = free_port(), free_port(), free_port()
    config = f"""
auto_create = false

[[listeners]]
url = "amqp://127.0.0.1:{port}"

[[listeners]]
url = "amqp://127.0.0.1:{auth_port}"
allow_anonymous = false

[[listeners]]
url = "amqps://127.0.0.1:{tls_port}"
tls = {{ cert_file = "{tls_files["server_cert"]}", key_file = "{tls_files["server_key"]}", \
ca_file = "{tls_files["ca"]}", require_client_cert = true }}

[[users]]
name = "{ADMIN[0]}"
password = "{ADMIN[1]}"
admin = true

[[users]]
name = "{GUEST[0]}"
password = "{GUEST[1]}"
"""
    with run_broker(config, port=port) as process:
        yield Broker(
            process, f"amqp://127.0.0.1:{auth_port}", f"amqps://127.0.0.1:{tls_port}", tls_files
        )


@pytest.fixture(scope="module")
def client(broker: Broker) -> Iterator[BlockingConnection]:
    conn = petrel.blocking.connect(broker.url, reconnect=False)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture(scope="module")
def admin(client: BlockingConnection) -> BlockingManagementClient:
    return BlockingManagementClient(client)


# --- running the tools --------------------------------------------------------------------


def _env(columns: int) -> dict[str, str]:
    return dict(os.environ, COLUMNS=str(columns))


def petrel_cli(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PETREL, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_env(columns),
    )


def petrel_all(
    *commands: Sequence[str], columns: int = 80
) -> list[subprocess.CompletedProcess[str]]:
    """Run several commands side by side; their results in the same order."""
    procs = [
        subprocess.Popen(
            [PETREL, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(columns),
        )
        for command in commands
    ]
    results = []
    for command, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=60)
        results.append(subprocess.CompletedProcess([PETREL, *command], proc.returncode, out, err))
    return results


def output(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a successful command printed."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def error_line(result: subprocess.CompletedProcess[str], tool: str = "manage") -> str:
    """The one line a failed command wrote on stderr (exit status 1, nothing on stdout)."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"petrel {tool}: ")
    return lines[0]


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in rows}


def send(client: BlockingConnection, address: str, bodies: Sequence[Any], **props: Any) -> None:
    sender = client.open_sender(address)
    for body in bodies:
        sender.send(petrel.Message(body, application_properties=props or None))
    sender.close()


# --- petrel stat --------------------------------------------------------------------------


def test_queue_counts_follow_what_was_sent_and_received(
    broker: Broker, admin: BlockingManagementClient, client: BlockingConnection
) -> None:
    admin.create("petrel.queue", "t.counts")
    sent = petrel_cli("send", "t.counts", "--url", broker.url, "--count", "5")
    assert sent.returncode == 0, sent.stderr
    before = by_name(output(petrel_cli("stat", "-q", "--json", "--url", broker.url)))
    assert (before["t.counts"]["depth"], before["t.counts"]["enqueued"]) == (5, 5)
    got = petrel_cli("receive", "t.counts", "--url", broker.url, "--count", "2")
    assert got.stdout.split() == ["hello", "hello"]

    queues, general, as_csv = petrel_all(
        ("stat", "-q", "--json", "--url", broker.url),
        ("stat", "-g", "--json", "--url", broker.url),
        ("stat", "-q", "--csv", "--url", broker.url),
    )
    row = by_name(output(queues))["t.counts"]
    assert (row["depth"], row["enqueued"], row["acknowledged"]) == (3, 5, 2)
    assert (row["unacknowledged"], row["consumers"]) == (0, 0)
    # Every attribute, configuration too.
    assert row["max_delivery_attempts"] == 10 and row["full_policy"] == "block"
    broker_entity = output(general)
    assert broker_entity["version"] == petrel.__version__
    assert broker_entity["enqueued"] >= 5 and broker_entity["acknowledged"] >= 2
    assert broker_entity["store"] == "memory" and broker_entity["uptime"] > 0
    # CSV: the same rows and attributes, every value as text.
    assert as_csv.returncode == 0, as_csv.stderr
    records = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert set(records[0]) == set(row)
    counts = {r["name"]: r for r in records}["t.counts"]
    assert (counts["depth"], counts["enqueued"], counts["durable"]) == ("3", "5", "true")
    assert counts["max_messages"] == ""  # null


def test_connections_and_links_of_a_connected_client(
    broker: Broker, admin: BlockingManagementClient
) -> None:
    admin.create("petrel.queue", "t.watch")
    watcher = petrel.blocking.connect(broker.url, reconnect=False, container_id="stat-watcher")
    try:
        watcher.open_receiver("t.watch", credit=7)
        watcher.open_sender("t.watch")
        connections, links = petrel_all(
            ("stat", "-c", "--json", "--url", broker.url),
            ("stat", "-l", "--json", "--url", broker.url),
        )
        (conn,) = [c for c in output(connections) if c["container"] == "stat-watcher"]
        assert (conn["links"], conn["tls"]) == (2, False) and conn["sessions"] >= 1
        assert conn["sasl"] == "ANONYMOUS" and conn["user"] is None
        assert conn["host"].startswith("127.0.0.1:")
        assert time.time() - 60 < conn["opened"] <= time.time()
        mine = sorted(
            (link for link in output(links) if link["connection"] == conn["identity"]),
            key=lambda link: link["direction"],
        )
        assert [(link["direction"], link["address"]) for link in mine] == [
            ("in", "t.watch"),
            ("out", "t.watch"),
        ]
        assert mine[1]["credit"] == 7  # what the receiver granted, held by the broker
    finally:
        watcher.close()
    after = output(petrel_cli("stat", "-c", "--json", "--url", broker.url))
    assert "stat-watcher" not in [c["container"] for c in after]


def test_tables_fit_80_columns(broker: Broker, admin: BlockingManagementClient) -> None:
    long_name = "t.a-queue-whose-name-is-much-longer-than-any-table-column-could-show"
    admin.create("petrel.queue", long_name)
    sections = ["-g", "-c", "-l", "-a", "-q"]
    results = petrel_all(*[("stat", flag, "--url", broker.url) for flag in sections])
    headers = {"-g": "uptime", "-c": "container", "-l": "credit", "-a": "routing", "-q": "depth"}
    for flag, result in zip(sections, results, strict=True):
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines, flag
        assert max(len(line) for line in lines) <= 80, (flag, result.stdout)
        assert headers[flag] in result.stdout, (flag, result.stdout)
    queues = results[-1].stdout
    assert long_name[:12] in queues and long_name not in queues and "…" in queues
    # No section flag: the broker in general.
    plain = petrel_cli("stat", "--url", broker.url)
    assert plain.stdout.splitlines()[0].strip() == "Broker"


def test_a_thousand_queues_page_through(broker: Broker, client: BlockingConnection) -> None:
    names = [f"page.{i:04d}" for i in range(1000)]
    manage = BlockingManagementClient(client).client

    async def create_all() -> None:
        for start in range(0, len(names), 100):
            batch = names[start : start + 100]
            await asyncio.gather(*(manage.create("petrel.queue", n) for n in batch))

    client.run(create_all())
    stat_json, limited, table = petrel_all(
        ("stat", "-q", "--json", "--url", broker.url),
        ("stat", "-q", "--json", "--limit", "5", "--url", broker.url),
        ("stat", "-q", "--limit", "3", "--url", broker.url),
    )
    seen = [row["name"] for row in output(stat_json) if row["name"].startswith("page.")]
    assert seen == names  # every one, once, in name order
    assert len(output(limited)) == 5
    assert table.returncode == 0, table.stderr
    assert "the first 3 shown (--limit)" in table.stdout
    # Alone (no other tool's reply queue around): every row, then one page of them.
    query = ("manage", "query", "--type", "petrel.queue", "--attribute-names", "name,depth")
    rows = output(petrel_cli(*query, "--url", broker.url))
    assert [r["name"] for r in rows if r["name"].startswith("page.")] == names
    assert set(rows[0]) == {"name", "depth"}
    first = rows.index({"name": "page.0000", "depth": 0})
    offset = ("--offset", str(first + 995), "--count", "7")
    page = output(petrel_cli(*query, *offset, "--url", broker.url))
    assert page == rows[first + 995 : first + 1002]
    assert [r["name"] for r in page[:5]] == names[995:]


# --- petrel manage ------------------------------------------------------------------------


def test_create_read_update_delete_and_their_effect(
    broker: Broker, client: BlockingConnection
) -> None:
    created = output(
        petrel_cli(
            "manage", "create", "--type", "petrel.queue", "--name", "t.made",
            "max_messages=100", 'dead_letter_address="t.dead"', "--url", broker.url,
        )
    )  # fmt: skip
    assert (created["name"], created["type"], created["identity"]) == (
        "t.made",
        "petrel.queue",
        "queue/t.made",
    )
    assert (created["max_messages"], created["dead_letter_address"]) == (100, "t.dead")
    assert created["full_policy"] == "block"  # defaults filled in

    # The queue exists for clients now (auto_create is off).
    receiver = client.open_receiver("t.made", credit=1)
    send(client, "t.made", ["made"])
    delivery = receiver.receive(timeout=5)
    assert delivery.message.body == "made"
    delivery.accept()

    again, read, updated = petrel_all(
        ("manage", "create", "--type", "petrel.queue", "--name", "t.made", "--url", broker.url),
        ("manage", "read", "--type", "petrel.queue", "--name", "t.made", "--url", broker.url),
        ("manage", "update", "-t", "petrel.queue", "-i", "queue/t.made",
         "--body", '{"max_messages": 50}', "default_ttl=30", "--url", broker.url),
    )  # fmt: skip
    assert error_line(again).startswith("petrel manage: 409 Conflict: ")
    assert output(read)["acknowledged"] == 1
    assert (output(updated)["max_messages"], output(updated)["default_ttl"]) == (50, 30)

    receiver.close()
    deleted = petrel_cli(
        "manage", "delete", "--type", "petrel.queue", "--name", "t.made", "--url", broker.url
    )
    assert output(deleted) == {}
    with pytest.raises(petrel.NotFound):
        client.open_receiver("t.made")
    gone = petrel_cli("manage", "read", "-t", "petrel.queue", "-n", "t.made", "--url", broker.url)
    assert error_line(gone).startswith("petrel manage: 404 Not Found: ")


def test_queue_operations(
    broker: Broker, admin: BlockingManagementClient, client: BlockingConnection
) -> None:
    for name in ("t.ops", "t.blue", "t.dlq"):
        admin.create("petrel.queue", name)
    admin.create("petrel.queue", "t.src", dead_letter_address="t.dlq")
    for color in ("red", "blue", "red", "blue"):
        send(client, "t.ops", [color], color=color)
    send(client, "t.src", ["doomed"])
    receiver = client.open_receiver("t.src", credit=1)
    receiver.receive(timeout=5).reject()  # to t.dlq, remembering where it came from
    receiver.close()

    url = ("--url", broker.url)
    peeked, called = petrel_all(
        ("manage", "peek", "t.ops", "--count", "3", *url),
        ("manage", "call", "peek", "--type", "petrel.queue", "--name", "t.ops", "count=1", *url),
    )
    assert [m["body"] for m in output(peeked)] == ["red", "blue", "red"]
    assert output(peeked)[1]["application_properties"] == {"color": "blue"}
    assert [m["body"] for m in output(called)] == ["red"]
    moved, retried = petrel_all(
        ("manage", "move", "t.ops", "--to", "t.blue", "--selector", "color = 'blue'", *url),
        ("manage", "retry", "t.dlq", *url),
    )
    assert output(moved) == {"moved": 2, "left": 2}
    assert output(retried) == {"moved": 1, "left": 0}

    purged = petrel_cli("manage", "purge", "t.ops", *url)
    assert output(purged) == {"purged": 2}
    depth = {
        name: row["depth"]
        for name, row in by_name(output(petrel_cli("stat", "-q", "--json", *url))).items()
        if name in ("t.ops", "t.blue", "t.src", "t.dlq")
    }
    assert depth == {"t.ops": 0, "t.blue": 2, "t.src": 1, "t.dlq": 0}


def test_node_operations(broker: Broker) -> None:
    url = ("--url", broker.url)
    types, attributes, operations, nodes = petrel_all(
        ("manage", "get-types", *url),
        ("manage", "get-attributes", "--type", "petrel.queue", *url),
        ("manage", "get-operations", "--type", "petrel.queue", *url),
        ("manage", "get-mgmt-nodes", "--pretty", *url),
    )
    assert {"petrel.broker", "petrel.queue", "petrel.connection", "petrel.link"} <= set(
        output(types)
    )
    assert {"name", "depth", "max_messages"} <= set(output(attributes)["petrel.queue"])
    ops = output(operations)["petrel.queue"]
    assert ops["MOVE"] == ["to", "selector", "count"]
    assert {"PURGE", "PEEK", "RETRY", "CREATE"} <= set(ops)
    assert output(nodes) == [] and nodes.stdout == "[]\n"


# --- errors -------------------------------------------------------------------------------


def test_management_errors_are_one_line_with_the_status(broker: Broker) -> None:
    url = ("--url", broker.url)
    unknown_type, no_name, unknown_op, bad_value, unknown_user = petrel_all(
        ("manage", "read", "--type", "petrel.nope", "--name", "x", *url),
        ("manage", "create", "--type", "petrel.queue", *url),
        ("manage", "call", "FROBNICATE", "--type", "petrel.queue", "--name", "t.counts", *url),
        ("manage", "create", "-t", "petrel.queue", "-n", "t.bad", "max_messages=lots", *url),
        ("stat", "-q", "--url", broker.url.replace("amqp://", "amqp://nobody:x@")),
    )
    assert error_line(unknown_type) == (
        "petrel manage: 404 Not Found: unknown entity type 'petrel.nope'"
    )
    assert error_line(no_name) == "petrel manage: 400 Bad Request: CREATE needs a name"
    assert error_line(unknown_op).startswith("petrel manage: 501 Not Implemented: ")
    assert "max_messages" in error_line(bad_value) and " 400 " in error_line(bad_value)
    assert "amqp:unauthorized-access" in error_line(unknown_user, "stat")


def test_authentication_and_permission(broker: Broker, admin: BlockingManagementClient) -> None:
    admin.create("petrel.queue", "t.auth")
    guest = ("--user", GUEST[0], "--password", GUEST[1])
    admin_login = ("--user", ADMIN[0], "--password", ADMIN[1])
    plain = ("--sasl-mechanisms", "PLAIN", *admin_login)
    auth_host = broker.auth_url.removeprefix("amqp://")
    refused, forbidden, allowed, in_url, anonymous, sent = petrel_all(
        ("stat", "--url", broker.auth_url, "--user", GUEST[0], "--password", "wrong"),
        ("manage", "query", "--type", "petrel.queue", "--url", broker.auth_url, *guest),
        ("stat", "-q", "--json", "--url", broker.auth_url, *plain),
        ("stat", "-g", "--json", "--url", f"amqp://{ADMIN[0]}:{ADMIN[1]}@{auth_host}"),
        ("stat", "--url", broker.auth_url),
        ("send", "t.auth", "--url", broker.auth_url, *admin_login),
    )
    assert "amqp:unauthorized-access" in error_line(refused, "stat")
    assert error_line(forbidden).startswith("petrel manage: 403 Forbidden: ")
    assert "t.auth" in by_name(output(allowed))
    assert output(in_url)["connections"] >= 1
    assert error_line(anonymous, "stat")
    assert sent.returncode == 0, sent.stderr  # send takes the same connection options


def test_tls_options(broker: Broker) -> None:
    client_cert = ("--cert-file", broker.tls["client_cert"], "--key-file", broker.tls["client_key"])
    verified = petrel_cli(
        "stat", "-c", "--json", "--url", broker.tls_url, "--ca-file", broker.tls["ca"],
        *client_cert,
    )  # fmt: skip
    tls_connections = [c for c in output(verified) if c["listener"] == broker.tls_url]
    assert [c["tls"] for c in tls_connections] == [True]  # stat's own connection
    unverified, untrusted = petrel_all(
        ("stat", "-g", "--json", "--url", broker.tls_url, "--no-verify", *client_cert),
        ("stat", "-g", "--url", broker.tls_url, *client_cert),
    )
    assert output(unverified)["name"]
    assert "CERTIFICATE_VERIFY_FAILED" in error_line(untrusted, "stat")


def test_unreachable_broker_and_usage_errors(tmp_path: Path) -> None:
    port = free_port()
    url = f"amqp://127.0.0.1:{port}"
    stat, manage, two_sections, two_formats, bad_pair, bad_body, missing_to = petrel_all(
        ("stat", "--url", url, "--timeout", "5"),
        ("manage", "get-types", "--url", url, "--timeout", "5"),
        ("stat", "-q", "-c", "--url", url),
        ("stat", "--csv", "--json", "--url", url),
        ("manage", "create", "-t", "petrel.queue", "-n", "x", "novalue", "--url", url),
        ("manage", "update", "-t", "petrel.queue", "-n", "x", "--body", "{oops", "--url", url),
        ("manage", "move", "q", "--url", url),
    )
    assert f"127.0.0.1:{port}" in error_line(stat, "stat")
    assert f"127.0.0.1:{port}" in error_line(manage)
    for result, text in (
        (two_sections, "choose one of -g, -c, -l, -a and -q"),
        (two_formats, "choose one of --csv and --json"),
        (bad_pair, "expected ATTR=VALUE, got 'novalue'"),
        (bad_body, "--body: not JSON"),
        (missing_to, "Missing option '--to'"),
    ):
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert text in result.stderr
