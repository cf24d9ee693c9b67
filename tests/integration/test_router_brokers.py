"""Brokers behind a network of two ``petrel router`` processes, A and B.

A dials the broker (a ``route-container`` connector): it keeps the autolinks
of the waypoint addresses ``orders`` and ``stream`` and serves the link routes
``lr.``; B dials A and knows those are waypoints and ``lr.`` link-routed.
Proton's clients on B send to and receive from the broker's queue without
knowing it is there; the broker killed (SIGKILL) mid-stream and restarted on
its data loses nothing; a selector works through the link route, and with the
broker gone an attach to a link-routed address is refused.  Proton's C
example broker serves as a waypoint too, for Proton's C++ example clients.

One broker and one pair of routers serve every test but the last: a test that
kills or stops the broker leaves it so, and the next one starts it again on
its data (the ``running`` fixture).
"""

from __future__ import annotations

import contextlib
import functools
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

import petrel
import petrel.blocking
import tests.helpers.traffic
from petrel.management import BlockingManagementClient, ManagementError
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
from tests.helpers.routers import RouterNetwork, router_network_configs, wait_until
from tests.helpers.servers import BrokerProcess, free_port, run_broker, wait_for_port
from tests.helpers.traffic import Traffic

#: The waypoint addresses: each a queue on the broker.  ``stream`` is the killed broker's
#: (what a kill leaves in flight cannot reach the other tests' queue).
WAYPOINTS = ("orders", "stream")

#: B knows the waypoints and the link routes (no connector: they are served elsewhere).
CONFIG_B = """
[[addresses]]
prefix = "orders"
waypoint = true

[[addresses]]
prefix = "stream"
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

[[autolinks]]
address = "stream"
connector = "broker1"
direction = "out"

[[autolinks]]
address = "stream"
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

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.proc.poll() is None

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


def autolinked(broker: Broker, net: RouterNetwork) -> None:
    """Wait until A's autolinks are attached: the broker has the waypoints' queues."""
    wait_until(
        lambda: set(WAYPOINTS) <= (queues(broker.url) or {}).keys(),
        what=f"the queues {WAYPOINTS} on the broker (A's autolinks)",
        status=net.logs,
    )


@contextlib.contextmanager
def behind(tmp_path: Path) -> Iterator[tuple[Broker, RouterNetwork]]:
    """The broker, A dialling it, B dialling A; returns once A's autolinks are attached."""
    broker = Broker(tmp_path / "broker")
    broker.start()
    try:
        configs = {"A": config_a(broker.port), "B": CONFIG_B}
        with router_network_configs({"B-A": 1}, configs, log_dir=tmp_path / "routers") as net:
            autolinked(broker, net)
            yield broker, net
    finally:
        broker.stop()


def queues(url: str) -> dict[str, dict[str, Any]] | None:
    """The broker's queues by name (a management QUERY of ``petrel.queue``, as ``petrel
    stat -q`` makes it); ``None`` if it does not answer."""
    try:
        with petrel.blocking.connect(url, reconnect=False, timeout=5) as conn:
            client = BlockingManagementClient(conn, timeout=5)
            rows = client.query_all("petrel.queue", ["name", "depth"]).as_dicts()
            return {str(row["name"]): row for row in rows}
    except (OSError, petrel.ClientError, ManagementError):
        return None


def depth(url: str, queue: str) -> int | None:
    row = (queues(url) or {}).get(queue)
    return None if row is None else int(row["depth"])


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Broker, RouterNetwork]]:
    """A broker and the two routers, for every test but the one with Proton's C broker."""
    with behind(tmp_path_factory.mktemp("behind")) as both:
        yield both


@pytest.fixture
def running(shared: tuple[Broker, RouterNetwork]) -> tuple[Broker, RouterNetwork]:
    """``shared`` with the broker running (again, if a test before killed or stopped it)
    and A's autolinks attached to it."""
    broker, net = shared
    if not broker.running:
        broker.start()
    autolinked(broker, net)
    assert not net.crashed(), net.logs()
    return shared


def test_a_waypoint_holds_messages_in_the_broker_until_a_receiver_comes(
    running: tuple[Broker, RouterNetwork],
) -> None:
    broker, net = running
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


@pytest.mark.slow
def test_a_broker_killed_mid_stream_and_restarted_loses_nothing(
    running: tuple[Broker, RouterNetwork], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Durable messages: accepted only once on disk, so a SIGKILL cannot lose them.
    monkeypatch.setattr(tests.helpers.traffic, "Message", functools.partial(Message, durable=True))
    broker, net = running
    traffic = Traffic("stream")
    try:
        first = traffic.add_receiver(net["A"].url, trace=False)
        traffic.start_sending(net["B"].url, rate=300)
        traffic.pump(lambda: len(traffic.arrivals) >= 150, what="streaming through the queue")
        # The receiver goes: what the sender goes on sending waits in the broker's queue
        # (accepted, on disk), so the kill lands on stored messages, not only on ones in
        # flight that the router would hand back.
        traffic.close_receiver(first)
        traffic.pump(
            lambda: (depth(broker.url, "stream") or 0) >= 100,
            timeout=30,
            what="messages waiting in the broker's queue",
        )
        broker.kill()
        before = len(traffic.arrivals)
        traffic.pump(timeout=0.3)
        broker.start()  # same port, same data: the router dials it again after 2 s
        traffic.add_receiver(net["A"].url, trace=False)
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


def test_a_selector_works_through_the_link_route(running: tuple[Broker, RouterNetwork]) -> None:
    broker, net = running
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


def test_a_link_routed_attach_with_the_broker_gone_is_refused(
    running: tuple[Broker, RouterNetwork],
) -> None:
    broker, net = running
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
    built = build_examples()
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
