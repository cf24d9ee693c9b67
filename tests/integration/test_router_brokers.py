"""Brokers behind a network of two ``petrel router`` processes, A and B.

A dials the broker (a ``route-container`` connector): it keeps the autolinks
of the waypoint address ``orders`` and serves the link routes ``lr.``; B
dials A and knows ``orders`` is a waypoint and ``lr.`` link-routed.  Proton's
clients on B send to and receive from the broker's queue without knowing it
is there; the broker killed (SIGKILL) mid-stream and restarted on its data
loses nothing; a selector works through the link route, and with the broker
gone an attach to a link-routed address is refused.  Proton's C example
broker serves as a waypoint too, for Proton's C++ example clients.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from proton import Message
from proton.reactor import Selector
from proton.utils import LinkDetached

import tests.helpers.traffic
from tests.helpers.proton_client import (
    connect,
    drain,
    fetch,
    flush,
    receiver,
    send_all,
    sender,
    settle,
)
from tests.helpers.proton_native import PACKAGES, build_examples
from tests.helpers.routers import PETREL, RouterNetwork, router_network_configs, wait_until
from tests.helpers.servers import BrokerProcess, free_port, run_broker, wait_for_port
from tests.helpers.traffic import Traffic

#: B knows the waypoint and the link routes (no connector: they are served elsewhere).
CONFIG_B = """
[[addresses]]
prefix = "orders"
waypoint = true

[[link_routes]]
prefix = "lr."
direction = "in"

[[link_routes]]
prefix = "lr."
direction = "out"
"""


def config_a(broker_port: int) -> str:
    """A dials the broker: the waypoint's autolinks and the link routes go there."""
    return f"""
[[connectors]]
name = "broker1"
url = "amqp://127.0.0.1:{broker_port}"
role = "route-container"

[[autolinks]]
address = "orders"
connector = "broker1"
direction = "out"

[[autolinks]]
address = "orders"
connector = "broker1"
direction = "in"

[[link_routes]]
prefix = "lr."
direction = "in"
connector = "broker1"

[[link_routes]]
prefix = "lr."
direction = "out"
connector = "broker1"
{CONFIG_B}"""


class Broker:
    """A ``petrel broker`` (SQLite store) on a fixed port and data directory, to kill and
    start again."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self._stack = contextlib.ExitStack()
        self.process: BrokerProcess | None = None

    @property
    def url(self) -> str:
        return f"amqp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = self._stack.enter_context(
            run_broker(port=self.port, store="sqlite", data_dir=self.data_dir)
        )

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.proc.wait(timeout=10)

    def stop(self) -> None:
        self._stack.close()

    def log(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in self.logs())

    def logs(self) -> list[Path]:
        return sorted(self.data_dir.glob("broker-*.log"))


@contextlib.contextmanager
def behind(tmp_path: Path) -> Iterator[tuple[Broker, RouterNetwork]]:
    """The broker, A dialling it, B dialling A; returns once A's autolinks are attached."""
    broker = Broker(tmp_path / "broker")
    broker.start()
    try:
        configs = {"A": config_a(broker.port), "B": CONFIG_B}
        with router_network_configs({"B-A": 1}, configs, log_dir=tmp_path / "routers") as net:
            wait_until(
                lambda: "orders" in (queues(broker.url) or {}),
                what="the orders queue on the broker (A's autolinks)",
                status=net.logs,
            )
            yield broker, net
    finally:
        broker.stop()


def stat(url: str, *args: str) -> Any:
    result = subprocess.run(
        [str(PETREL), "stat", *args, "--json", "--url", url, "--timeout", "5"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return json.loads(result.stdout) if result.returncode == 0 else None


def queues(url: str) -> dict[str, dict[str, Any]] | None:
    """The broker's queues by name (``petrel stat -q``); ``None`` if it does not answer."""
    rows = stat(url, "-q")
    return None if rows is None else {str(row["name"]): row for row in rows}


def depth(url: str, queue: str) -> int | None:
    rows = queues(url) or {}
    row = rows.get(queue)
    if row is None:
        return None
    for key in ("depth", "messages", "message_count"):
        if key in row:
            return int(row[key])
    raise AssertionError(f"no depth in {row}")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Broker, RouterNetwork]]:
    """A broker and the two routers for the tests that leave the broker running."""
    with behind(tmp_path_factory.mktemp("behind")) as both:
        yield both


def test_a_waypoint_holds_messages_in_the_broker_until_a_receiver_comes(
    shared: tuple[Broker, RouterNetwork],
) -> None:
    broker, net = shared
    on_b = connect(net["B"].url)
    try:
        tx = sender(on_b, "orders")
        send_all(tx, [Message(body=n, durable=True) for n in range(20)])  # all accepted
        # No receiver anywhere: the in autolink gives the broker no credit, they wait.
        assert depth(broker.url, "orders") == 20
        rx = receiver(on_b, "orders", credit=50)
        got = []
        for _ in range(20):
            message, delivery = fetch(on_b, rx, timeout=20)
            settle(delivery)
            got.append(message.body)
        assert got == list(range(20))
        flush(on_b)  # the outcomes go to the broker
        wait_until(
            lambda: flush(on_b) or depth(broker.url, "orders") == 0,
            what="the queue emptied",
            status=lambda: str(queues(broker.url)),
        )
    finally:
        on_b.close()


def test_a_broker_killed_mid_stream_and_restarted_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Durable messages: accepted only once on disk, so a SIGKILL cannot lose them.
    monkeypatch.setattr(tests.helpers.traffic, "Message", functools.partial(Message, durable=True))
    with behind(tmp_path) as (broker, net):
        traffic = Traffic("orders")
        try:
            traffic.add_receiver(net["A"].url, trace=False)
            traffic.start_sending(net["B"].url, rate=300)
            traffic.pump(lambda: len(traffic.arrivals) >= 150, what="streaming through the queue")
            broker.kill()
            before = len(traffic.arrivals)
            traffic.pump(timeout=0.3)
            broker.start()  # same port, same data: the router dials it again after 2 s
            traffic.pump(
                lambda: len(traffic.arrivals) >= before + 300,
                timeout=30,
                what="streaming again after the restart",
            )
            traffic.stop_sending()
            traffic.pump(
                lambda: traffic.done and set(traffic.received()) == set(range(traffic.issued)),
                what="every message accepted and received",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{net.logs()}\n{broker.log()}") from None
        finally:
            traffic.close()
        assert traffic.all_accepted() and not traffic.unsettled and not traffic.rejected
        assert set(traffic.received()) == set(range(traffic.issued))
        assert not net.crashed()


def test_a_selector_works_through_the_link_route(shared: tuple[Broker, RouterNetwork]) -> None:
    broker, net = shared
    on_a, on_b = connect(net["A"].url), connect(net["B"].url)
    try:
        # Sent through the link route (A to the broker); the queue keeps them.
        tx = sender(on_a, "lr.picky")
        colours = ["red", "blue", "red", "green", "red", "blue"]
        send_all(tx, [Message(body=n, properties={"colour": c}) for n, c in enumerate(colours)])
        rx = receiver(on_b, "lr.picky", credit=10, options=Selector("colour = 'red'"))
        got = []
        for _ in range(3):
            message, delivery = fetch(on_b, rx)
            settle(delivery)
            got.append((message.body, message.properties["colour"]))
        assert got == [(0, "red"), (2, "red"), (4, "red")]
        assert drain(on_b, rx) == []  # the drain goes to the broker and back: none left
        assert depth(broker.url, "lr.picky") == 3  # the others stay
    finally:
        on_a.close()
        on_b.close()


def test_a_link_routed_attach_with_the_broker_gone_is_refused(tmp_path: Path) -> None:
    with behind(tmp_path) as (broker, net):
        broker.stop()
        refusals: list[str] = []

        def refused() -> bool:
            conn = connect(net["B"].url)
            try:
                receiver(conn, "lr.nobody")
            except LinkDetached as exc:
                refusals.append(str(exc))
                return True
            finally:
                conn.close()
            return False

        wait_until(refused, interval=0.2, what="B to refuse lr.nobody", status=net.logs)
        assert "amqp:not-found" in refusals[-1]


def test_protons_c_example_broker_as_a_waypoint(tmp_path: Path) -> None:
    built = build_examples(tmp_path / "native")
    assert built is not None, f"install {PACKAGES}"
    port = free_port()
    proc = subprocess.Popen(
        [str(built["broker"]), "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)  # type: ignore[arg-type]
        configs = {"A": config_a(port), "B": CONFIG_B}
        with router_network_configs({"B-A": 1}, configs, log_dir=tmp_path / "routers") as net:
            recv = subprocess.Popen(
                [str(built["simple_recv"]), "-a", f"{net['B'].url}/orders", "-m", "50"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                time.sleep(0.2)
                sent = subprocess.run(
                    [str(built["simple_send"]), "-a", f"{net['B'].url}/orders", "-m", "50"],
                    capture_output=True, text=True, timeout=30, check=False,
                )  # fmt: skip
                out, err = recv.communicate(timeout=30)
            finally:
                if recv.poll() is None:
                    recv.kill()
                    recv.communicate()
            assert sent.returncode == 0, sent.stderr + net.logs()
            assert "all messages confirmed" in sent.stdout
            assert recv.returncode == 0, err + net.logs()
            assert out.count("sequence") == 50  # simple_recv prints each message
    finally:
        proc.kill()
        proc.wait(timeout=10)
