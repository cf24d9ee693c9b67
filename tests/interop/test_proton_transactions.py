"""Qpid Proton's transactions against ``petrel broker``: Proton's own transaction examples
run unchanged, and Proton's client for commit, abort, an abandoned transaction and an
unknown transaction id.

The examples are Debian's ``libqpid-proton11-dev-examples`` (as in
tests/interop/test_proton_servers.py): ``tx_send.py`` and ``tx_recv.py`` take
the broker's address with ``-a``; ``server_tx.py`` has ``localhost:5672``
written in its source, so it runs from a copy with only that address changed,
as tests/integration/test_router_clients.py does for ``helloworld.py``.  The
checks are those of Proton's ``test_examples.py`` (``test_tx_send_tx_recv``,
``test_client_server_tx``, ``test_sync_client_server_tx``).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("proton")

from proton import Message
from proton.handlers import MessagingHandler, TransactionHandler
from proton.reactor import Container

from tests.helpers.proton_client import connect, drain, receiver, send_all, sender
from tests.helpers.proton_native import EXAMPLES
from tests.helpers.servers import BrokerProcess, run_broker, stop_process

pytestmark = pytest.mark.interop

PYTHON_EXAMPLES = EXAMPLES / "python"
REQUESTS = [
    "Twas brillig, and the slithy toves",
    "Did gire and gymble in the wabe.",
    "All mimsy were the borogroves,",
    "And the mome raths outgrabe.",
]


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerProcess]:
    with run_broker() as process:
        yield process


def _example(name: str) -> Path:
    path = PYTHON_EXAMPLES / name
    if not path.exists():
        pytest.skip(f"Proton's Python examples are missing (apt-get install {name})")
    return path


def _run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _host_port(broker: BrokerProcess) -> str:
    return f"127.0.0.1:{broker.port}"


def test_tx_send_then_tx_recv(broker: BrokerProcess) -> None:
    """Proton's ``test_tx_send_tx_recv``: 100 messages sent in transactions of 10, then
    received and accepted in transactions of 10, in order."""
    address = f"{_host_port(broker)}/examples-tx"
    recv = subprocess.Popen(
        [sys.executable, str(_example("tx_recv.py")), "-a", address],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sent = _run([str(_example("tx_send.py")), "-a", address])
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.strip() == "all messages committed"
        out, err = recv.communicate(timeout=60)
    finally:
        stop_process(recv, timeout=5)
    assert recv.returncode == 0, err
    assert [line.strip() for line in out.splitlines()] == [
        str({"sequence": n}) for n in range(1, 101)
    ]
    # Everything was accepted in committed transactions: nothing is left.
    assert _bodies(broker, "examples-tx") == []


@pytest.mark.parametrize("client", ["client.py", "sync_client.py"])
def test_client_and_server_tx(broker: BrokerProcess, tmp_path: Path, client: str) -> None:
    """Proton's ``test_client_server_tx`` and ``test_sync_client_server_tx``: the server
    answers each request and accepts it in one transaction."""
    source = _example("server_tx.py").read_text()
    shipped = 'TxServer("localhost:5672", "examples")'
    assert shipped in source, "server_tx.py changed: no URL to redirect"
    script = tmp_path / "server_tx.py"
    script.write_text(source.replace(shipped, f'TxServer("{_host_port(broker)}", "examples")'))
    server = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        result = _run([str(_example(client)), "-a", f"{_host_port(broker)}/examples"])
        assert result.returncode == 0, result.stderr
        assert [line.strip() for line in result.stdout.splitlines()] == [
            f"{r} => {r.upper()}" for r in REQUESTS
        ]
    finally:
        stop_process(server, timeout=5)
        out, err = server.communicate()
    assert "Traceback" not in err, err
    assert out.count("Request processed successfully") == len(REQUESTS), out
    # Each request was accepted in its committed transaction.
    assert _bodies(broker, "examples") == []


class _Scenario(MessagingHandler, TransactionHandler):  # type: ignore[misc]
    """Declare a transaction, send ``count`` messages in it, then ``finish(self, txn)``."""

    def __init__(
        self, url: str, address: str, count: int, finish: Any, *, durable: bool = False
    ) -> None:
        super().__init__()
        self.url = url
        self.address = address
        self.count = count
        self.finish = finish
        self.durable = durable
        self.events: list[str] = []
        self.condition: Any = None

    def on_start(self, event: Any) -> None:
        self.conn = event.container.connect(self.url)
        self.sender = event.container.create_sender(self.conn, self.address)
        event.container.declare_transaction(self.conn, handler=self)

    def on_transaction_declared(self, event: Any) -> None:
        self.events.append("declared")
        for n in range(self.count):
            event.transaction.send(self.sender, Message(body=n, durable=self.durable))
        self.finish(self, event.transaction)

    def on_transaction_committed(self, event: Any) -> None:
        self.events.append("committed")
        self.conn.close()

    def on_transaction_aborted(self, event: Any) -> None:
        self.events.append("aborted")
        self.conn.close()

    def on_transaction_commit_failed(self, event: Any) -> None:
        self.events.append("commit failed")
        self.condition = event.delivery.remote.condition
        self.conn.close()


def _run_scenario(broker: BrokerProcess, address: str, count: int, finish: Any) -> _Scenario:
    handler = _Scenario(broker.url, address, count, finish)
    Container(handler).run()
    return handler


def _bodies(broker: BrokerProcess, address: str) -> list[Any]:
    """Every message waiting at ``address`` (accepted: taken away)."""
    conn = connect(broker.url)
    try:
        rx = receiver(conn, address)
        got = drain(conn, rx)
        for _, delivery in got:
            delivery.settle()
        return [message.body for message, _ in got]
    finally:
        conn.close()


def test_proton_commit_and_abort(broker: BrokerProcess) -> None:
    done = _run_scenario(broker, "proton-tx-commit", 3, lambda h, txn: txn.commit())
    assert done.events == ["declared", "committed"]
    assert _bodies(broker, "proton-tx-commit") == [0, 1, 2]
    done = _run_scenario(broker, "proton-tx-abort", 3, lambda h, txn: txn.abort())
    assert done.events == ["declared", "aborted"]
    assert _bodies(broker, "proton-tx-abort") == []


def test_proton_commit_is_seen_once_it_is_on_disk(postgres_url: str) -> None:
    """A commit's durable sends reach consumers when its SQL transaction is on disk, and
    the discharge is answered then, not before: while another session holds a lock on
    PostgreSQL's message table (so the broker's write waits), a consumer draining the
    queue gets nothing and Proton hears no outcome; once the lock goes, both happen.
    (Queued at once, the sends went to a consumer before the write; a crash then left
    it holding part of a transaction that never was, as ``bench/crash.py
    --transactions`` showed now and then.)"""
    import psycopg

    from tests.helpers.postgres import fresh_schema

    address = "proton-tx-on-disk"
    waiting = (
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'petrel_messages'::regclass"
    )
    with (
        fresh_schema(postgres_url) as url,
        run_broker(store="postgresql", args=["--store-url", url]) as broker,
    ):
        assert _bodies(broker, address) == []  # the queue and its record exist first
        handler = _Scenario(broker.url, address, 3, lambda h, txn: txn.commit(), durable=True)
        thread = threading.Thread(target=Container(handler).run, daemon=True)
        with psycopg.connect(url) as lock, psycopg.connect(url, autocommit=True) as watch:
            lock.execute("LOCK TABLE petrel_messages IN EXCLUSIVE MODE")
            thread.start()
            deadline = time.monotonic() + 30
            while watch.execute(waiting).fetchone() == (0,):  # the broker's write, blocked
                assert time.monotonic() < deadline, "the commit never reached the store"
                time.sleep(0.05)
            assert _bodies(broker, address) == []
            assert handler.events == ["declared"]
            lock.rollback()
        thread.join(timeout=30)
        assert handler.events == ["declared", "committed"]
        assert _bodies(broker, address) == [0, 1, 2]


def test_proton_discharge_of_an_unknown_id(broker: BrokerProcess) -> None:
    def bogus(handler: _Scenario, txn: Any) -> None:
        txn.id = b"no-such-txn"
        txn.commit()

    done = _run_scenario(broker, "proton-tx-unknown", 2, bogus)
    assert done.events == ["declared", "commit failed"]
    assert done.condition is not None
    assert done.condition.name == "amqp:transaction:unknown-id"
    assert "6e6f2d737563682d74786e" in done.condition.description  # the id, in hex
    assert _bodies(broker, "proton-tx-unknown") == []


class _Abandoner(MessagingHandler, TransactionHandler):  # type: ignore[misc]
    """Receive ``count`` messages from ``source``, declare a transaction, accept them in it
    and send ``count`` messages to ``target`` in it, then walk away: ``how`` is
    ``"link"`` (detach the coordinator link, then the receiver, then close) or
    ``"connection"`` (close the connection at once)."""

    def __init__(self, url: str, source: str, target: str, count: int, how: str) -> None:
        super().__init__(auto_accept=False)
        self.url = url
        self.source = source
        self.target = target
        self.count = count
        self.how = how
        self.deliveries: list[Any] = []
        self.events: list[str] = []

    def on_start(self, event: Any) -> None:
        self.conn = event.container.connect(self.url)
        self.receiver = event.container.create_receiver(self.conn, self.source)
        self.sender = event.container.create_sender(self.conn, self.target)

    def on_message(self, event: Any) -> None:
        self.deliveries.append(event.delivery)
        if len(self.deliveries) == self.count:
            event.container.declare_transaction(self.conn, handler=self)

    def on_transaction_declared(self, event: Any) -> None:
        self.events.append("declared")
        txn = event.transaction
        for n in range(self.count):
            txn.send(self.sender, Message(body=f"in-txn-{n}"))
        for delivery in self.deliveries:
            txn.accept(delivery)
        if self.how == "link":
            txn.txn_ctrl.close()
            self.receiver.close()
        self.conn.close()

    def on_transaction_committed(self, event: Any) -> None:
        self.events.append("committed")

    def on_transaction_aborted(self, event: Any) -> None:
        self.events.append("aborted")


@pytest.mark.parametrize("how", ["link", "connection"])
def test_proton_abandoned_transaction_rolls_back(broker: BrokerProcess, how: str) -> None:
    """A transaction left open when its coordinator link (or its whole connection) goes
    is rolled back: its sends never appear, and the messages accepted in it are given to
    the next consumer (delivered once already, so with delivery-count 1)."""
    source, target = f"proton-tx-abandoned-in-{how}", f"proton-tx-abandoned-out-{how}"
    conn = connect(broker.url)
    try:
        send_all(sender(conn, source), [Message(body=f"queued-{n}") for n in range(3)])
    finally:
        conn.close()
    done = _Abandoner(broker.url, source, target, 3, how)
    Container(done).run()
    assert done.events == ["declared"]
    assert "abandoned (its coordinator link went): rolled back" in broker.log()
    conn = connect(broker.url)
    try:
        rx = receiver(conn, source)
        got = drain(conn, rx)
        for _, delivery in got:
            delivery.settle()
    finally:
        conn.close()
    assert [message.body for message, _ in got] == ["queued-0", "queued-1", "queued-2"]
    assert [message.delivery_count for message, _ in got] == [1, 1, 1]
    assert _bodies(broker, target) == []
