"""The broker process: shutdown on SIGTERM, clear one-line failures, environment variables,
and durable messages across a crash with the SQLite store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from proton import Message
from proton.reactor import DurableSubscription, Selector
from proton.utils import ConnectionClosed, LinkDetached

from tests.helpers.proton_client import (
    Capabilities,
    bodies,
    connect,
    drain,
    fetch,
    receiver,
    send,
    send_all,
    sender,
    settle,
)
from tests.helpers.servers import free_port, run_broker, stop_process, wait_for_port

pytestmark = pytest.mark.interop

PETREL = str(Path(sys.executable).with_name("petrel"))


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PETREL, "broker", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ, **(env or {})),
        check=False,
    )


def test_sigterm_closes_clients_with_connection_forced(tmp_path: Path) -> None:
    with run_broker(data_dir=tmp_path) as broker:
        conn = connect(broker.url)
        rx = receiver(conn, "waiting", credit=1)
        broker.proc.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as caught:
            fetch(conn, rx)
        assert caught.value.condition == "amqp:connection:forced"
        conn.close()  # answers the broker's close
        assert broker.proc.wait(timeout=10) == 0
    assert "stopping on SIGTERM" in broker.log()


def test_sigterm_with_no_clients(tmp_path: Path) -> None:
    with run_broker(data_dir=tmp_path) as broker:
        assert stop_process(broker.proc) == 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("listeners = [", "not valid TOML"),
        ("no_such_setting = 1\n", "no_such_setting: unknown setting"),
        ('store = "papyrus"\n', "store:"),
        ("[[queues]]\nname = 'q'\nmax_messages = -5\n", "queues.0.max_messages"),
        ('[[listeners]]\nurl = "http://127.0.0.1:1"\n', "amqp://"),
    ],
)
def test_a_bad_config_file_is_one_clear_line(tmp_path: Path, content: str, expected: str) -> None:
    config = tmp_path / "broker.toml"
    config.write_text(content)
    result = _run(["--config", str(config), "--data-dir", str(tmp_path)])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("petrel broker: ")
    assert str(config) in lines[0]
    assert expected in lines[0]


def test_a_missing_config_file(tmp_path: Path) -> None:
    result = _run(["--config", str(tmp_path / "nowhere.toml"), "--data-dir", str(tmp_path)])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"petrel broker: {tmp_path / 'nowhere.toml'}: no such config file"
    ]


def test_an_address_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run(
            [
                "--listen",
                f"amqp://127.0.0.1:{port}",
                "--store",
                "memory",
                "--data-dir",
                str(tmp_path),
            ]
        )
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("petrel broker: ")
    assert str(port) in lines[0]
    assert "in use" in lines[0]


def test_environment_variables(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    env = {
        "PETREL_BROKER_LISTEN": " ".join(f"amqp://127.0.0.1:{p}" for p in ports),
        "PETREL_BROKER_STORE": "memory",
        "PETREL_BROKER_DATA_DIR": str(tmp_path),
        "PETREL_BROKER_AUTO_CREATE": "false",
    }
    proc = subprocess.Popen(
        [PETREL, "broker"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, **env),
    )
    try:
        for port in ports:
            wait_for_port(port, proc)
        conn = connect(f"amqp://127.0.0.1:{ports[1]}")
        try:
            with pytest.raises(LinkDetached) as caught:
                receiver(conn, "not-created")
            assert caught.value.condition == "amqp:not-found"
        finally:
            conn.close()
    finally:
        assert stop_process(proc) == 0


# --- durability with SQLite ---------------------------------------------------------------------


def test_durable_messages_survive_kill_9(tmp_path: Path) -> None:
    port = free_port()
    with run_broker(port=port, store="sqlite", data_dir=tmp_path) as broker:
        conn = connect(broker.url)
        tx = sender(conn, "orders")
        send_all(
            tx,
            [
                Message(body="durable 1", durable=True),
                Message(body="transient 1"),
                Message(body="durable 2", durable=True, priority=7),
                Message(body="transient 2", durable=False),
                Message(body="durable 3", durable=True, properties={"k": "v"}),
                Message(body="durable consumed", durable=True),
                Message(body="durable retried", durable=True),
            ],
        )
        rx = receiver(conn, "orders", credit=7)
        taken = {m.body: d for m, d in (fetch(conn, rx) for _ in range(7))}
        settle(taken["durable consumed"], "accept")
        settle(taken["durable retried"], "modify", failed=True)
        rx.close()  # the rest go back, unsettled
        # The store writes batches in order, so once this durable send is accepted the
        # removal and the count above are on disk too (they were in an earlier batch).
        send_all(tx, [Message(body="sync", durable=True)])
        conn.close()
        broker.proc.kill()
        broker.proc.wait()

    with run_broker(port=port, store="sqlite", data_dir=tmp_path) as broker:
        conn = connect(broker.url)
        got = drain(conn, receiver(conn, "orders"))
        assert bodies(got) == ["durable 2", "durable 1", "durable 3", "durable retried", "sync"]
        assert got[2][0].properties == {"k": "v"}
        # Each failed once: three were with a consumer that left, one was modified (failed)
        # and so was not with the consumer any more when it left.
        assert [m.delivery_count for m, _ in got] == [1, 1, 1, 1, 0]
        for _, delivery in got:
            settle(delivery)
        conn.close()


def test_durable_subscription_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    options = [DurableSubscription(), Capabilities("topic"), Selector("kind = 'tick'")]
    with run_broker(port=port, store="sqlite", data_dir=tmp_path) as broker:
        subscriber = connect(broker.url, container_id="keeper")
        receiver(subscriber, "prices", name="ticks", options=options)
        subscriber.close()
        publisher = connect(broker.url)
        tx = sender(publisher, "prices", options=Capabilities("topic"))
        send(tx, "durable tick", durable=True, properties={"kind": "tick"})
        send(tx, "durable tock", durable=True, properties={"kind": "tock"})
        send(tx, "transient tick", properties={"kind": "tick"})
        publisher.close()
        broker.proc.kill()
        broker.proc.wait()

    with run_broker(port=port, store="sqlite", data_dir=tmp_path) as broker:
        subscriber = connect(broker.url, container_id="keeper")
        rx = receiver(subscriber, "prices", name="ticks", options=options)
        assert bodies(drain(subscriber, rx)) == ["durable tick"]
        # The subscription kept its selector too.
        publisher = connect(broker.url)
        tx = sender(publisher, "prices", options=Capabilities("topic"))
        send(tx, "another tock", properties={"kind": "tock"})
        send(tx, "another tick", properties={"kind": "tick"})
        publisher.close()
        assert bodies(drain(subscriber, rx)) == ["another tick"]
        subscriber.close()


def test_a_multicast_queue_entry_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    config.write_text('[[queues]]\nname = "prices"\nrouting = "multicast"\n')
    result = subprocess.run(
        [PETREL, "broker", "--config", str(config), "--store", "memory"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "declare a topic in [[addresses]]" in lines[0]


def test_a_store_that_cannot_write_rejects_the_durable_sends_and_stops(
    postgres_url: str,
) -> None:
    """Durable messages whose batch the store fails to write are rejected with
    ``amqp:internal-error`` naming the store's error, never accepted, and the broker
    stops with a clear line: a store that cannot write must not take more."""
    import psycopg
    from proton import Delivery

    from tests.helpers.postgres import fresh_schema

    with (
        fresh_schema(postgres_url) as url,
        run_broker(store="postgresql", args=["--store-url", url]) as broker,
    ):
        conn = connect(broker.url)
        tx = sender(conn, "cannot-write")
        send_all(tx, [Message(body="written", durable=True)])
        with psycopg.connect(url, autocommit=True) as db:  # every new row now fails
            db.execute("ALTER TABLE petrel_messages ADD CONSTRAINT refuse CHECK (false) NOT VALID")
        deliveries = [tx.link.send(Message(body=f"m{n}", durable=True)) for n in range(3)]
        # The broker stops (closing the connection, connection-forced) right after it
        # sends the outcomes: they are in before the close.
        with pytest.raises(ConnectionClosed, match="shutting down"):
            tx.connection.wait(lambda: False, msg="the close")
        assert [d.remote_state for d in deliveries] == [Delivery.REJECTED] * 3
        condition = deliveries[0].remote.condition
        assert condition.name == "amqp:internal-error"
        assert "the store could not write the message" in condition.description
        assert broker.proc.wait(timeout=30) != 0
        assert "the store failed" in broker.log()
