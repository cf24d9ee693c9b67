"""Waypoints: an address that passes through queues on brokers behind the network.

Routers and brokers in one process (the broker's memory store), Petrel's client on the
routers; a broker restart runs ``petrel broker`` as a subprocess with its SQLite store.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import petrel
from petrel.broker import Broker
from petrel.management import ManagementClient
from petrel.router import Router, RouterSettings, waypoints
from petrel.router.config import load_router_settings
from petrel.router.routing import RoutingCore
from petrel.server.config import BrokerSettings, ConfigError
from tests.helpers.proton_native import PACKAGES, build_examples
from tests.helpers.servers import free_port, run_broker, wait_for_port
from tests.router.test_forwarding import FAST, TIMEOUT, Net

WAYPOINT = [{"prefix": "orders", "waypoint": True}]


@contextlib.asynccontextmanager
async def brokers(count: int) -> AsyncIterator[list[Broker]]:
    started = []
    try:
        for _ in range(count):
            port = free_port()
            broker = Broker(
                BrokerSettings(store="memory", listeners=[{"url": f"amqp://127.0.0.1:{port}"}])
            )
            await broker.start()
            started.append(broker)
        yield started
    finally:
        for broker in started:
            await broker.stop(timeout=1.0)


def broker_url(broker: Broker) -> str:
    host, port = broker.bound[0]
    return f"amqp://{host}:{port}"


@contextlib.asynccontextmanager
async def a_and_b(
    a: dict[str, Any], b: dict[str, Any], ready: Callable[[RoutingCore], bool], what: str
) -> AsyncIterator[Net]:
    """Router A (a client listener and an inter-router one) and router B (a client
    listener, dialling A), with the settings ``a`` and ``b`` added; yielded once
    ``ready`` holds for B's routing core (``what`` names it for a timeout)."""
    inter = free_port()
    net = Net()
    net.ports = {"A": free_port(), "B": free_port()}
    settings: dict[str, dict[str, Any]] = {
        "A": {
            "router": {"id": "A"},
            "listeners": [
                {"url": net.url("A")},
                {"url": f"amqp://127.0.0.1:{inter}", "role": "inter-router"},
            ],
            **a,
        },
        "B": {
            "router": {"id": "B"},
            "listeners": [{"url": net.url("B")}],
            "connectors": [{"url": f"amqp://127.0.0.1:{inter}"}],
            **b,
        },
    }
    net.routers = {
        name: Router(RouterSettings.model_validate(s), timers=FAST) for name, s in settings.items()
    }
    try:
        for router in net.routers.values():
            await router.start()
        core = net.routers["B"].network.core
        assert core is not None
        await net.until(lambda: ready(core), what)
        yield net
    finally:
        for router in net.routers.values():
            await router.stop(timeout=1.0)


@contextlib.asynccontextmanager
async def two_routers(broker_urls: list[str], address: str = "orders") -> AsyncIterator[Net]:
    """Router A with the brokers behind it (an in and an out autolink each), router B
    dialling A; both know ``orders`` is a waypoint."""
    connectors: list[dict[str, Any]] = [
        {"name": f"broker{n}", "url": url, "role": "route-container"}
        for n, url in enumerate(broker_urls)
    ]
    autolinks = [
        {"address": address, "connector": f"broker{n}", "direction": direction}
        for n in range(len(broker_urls))
        for direction in ("in", "out")
    ]
    async with a_and_b(
        {"connectors": connectors, "addresses": WAYPOINT, "autolinks": autolinks},
        {"addresses": WAYPOINT},
        # B learns that A has the waypoint's phase 0 (the brokers' queues).
        lambda core: core.routers_for("_phase/0/orders") == {"A"},
        "phase 0 at A",
    ) as net:
        yield net


def depth(broker: Broker, queue: str = "orders") -> int:
    found = broker.core.queues.get(queue)
    return found.depth if found is not None else 0


async def test_messages_rest_in_the_broker_until_a_receiver_comes() -> None:
    async with (
        brokers(1) as (broker,),
        two_routers([broker_url(broker)]) as net,
        await petrel.connect(net.url("B")) as client,
    ):
        sender = await client.open_sender("orders")
        for i in range(10):  # settled once the broker has each one
            await asyncio.wait_for(sender.send(petrel.Message(body=i)), TIMEOUT)
        assert depth(broker) == 10
        receiver = await client.open_receiver("orders", credit=20)
        bodies = []
        for _ in range(10):
            delivery = await asyncio.wait_for(receiver.receive(), TIMEOUT)
            bodies.append(delivery.message.body)
            await delivery.accept()
        assert bodies == list(range(10))
        await net.until(lambda: depth(broker) == 0, "the broker's queue drained")


async def test_a_sharded_waypoint_spreads_messages_and_receivers_drain_every_shard() -> None:
    async with (
        brokers(2) as shards,
        two_routers([broker_url(b) for b in shards]) as net,
        await petrel.connect(net.url("B")) as client,
    ):
        sender = await client.open_sender("orders")
        await asyncio.wait_for(
            asyncio.gather(*(sender.send(petrel.Message(body=i)) for i in range(40))),
            TIMEOUT,
        )
        depths = [depth(b) for b in shards]
        assert sum(depths) == 40
        assert all(d > 0 for d in depths), depths  # balanced over both brokers
        receiver = await client.open_receiver("orders", credit=50, auto_accept=True)
        got = sorted(
            [(await asyncio.wait_for(receiver.receive(), TIMEOUT)).message.body for _ in range(40)]
        )
        assert got == list(range(40))
        await net.until(lambda: [depth(b) for b in shards] == [0, 0], "both shards drained")


async def test_a_receiver_gets_what_senders_send_through_the_broker_not_around_it() -> None:
    async with (
        brokers(1) as (broker,),
        two_routers([broker_url(broker)]) as net,
        await petrel.connect(net.url("A")) as client_a,
        await petrel.connect(net.url("B")) as client_b,
    ):
        receiver = await client_a.open_receiver("orders", credit=10, auto_accept=True)
        sender = await client_b.open_sender("orders")
        sent = asyncio.ensure_future(sender.send(petrel.Message(body="via the broker")))
        got = await asyncio.wait_for(receiver.receive(), TIMEOUT)
        assert got.message.body == "via the broker"
        await asyncio.wait_for(sent, TIMEOUT)
        enqueued = broker.core.queues["orders"].stats()["enqueued"]
        assert enqueued == 1  # it went into the queue on its way


@pytest.mark.slow
async def test_autolinks_come_back_after_the_broker_restarts(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "broker"
    with run_broker(port=port, store="sqlite", data_dir=data) as first:
        async with two_routers([first.url]) as net, await petrel.connect(net.url("B")) as client:
            sender = await client.open_sender("orders")
            for i in range(5):
                await asyncio.wait_for(sender.send(petrel.Message(body=i, durable=True)), TIMEOUT)
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(timeout=10)
            # No broker: no destination for the waypoint, so the network takes the
            # sender's credit back, and a send waits for the broker to come back.
            core = net.routers["B"].network.core
            assert core is not None
            await net.until(lambda: not core.routers_for("_phase/0/orders"), "no phase 0")
            await asyncio.sleep(0.2)
            waiting = asyncio.ensure_future(sender.send(petrel.Message(body=5, durable=True)))
            await asyncio.sleep(0.5)
            assert not waiting.done()
            with run_broker(port=port, store="sqlite", data_dir=data):
                await asyncio.wait_for(waiting, 20)  # reattached (2 s), then accepted
                receiver = await client.open_receiver("orders", credit=10)
                bodies = []
                for _ in range(6):
                    delivery = await asyncio.wait_for(receiver.receive(), TIMEOUT)
                    bodies.append(delivery.message.body)
                    await delivery.accept()
                assert sorted(bodies) == list(range(6))


def test_an_autolink_needs_a_route_container_connector_and_a_waypoint(tmp_path: Path) -> None:
    base = '[router]\nid = "A"\n'
    bad = {
        "no connector named": '[[addresses]]\nprefix = "q"\nwaypoint = true\n'
        '[[autolinks]]\naddress = "q"\nconnector = "x"\ndirection = "in"\n',
        "inter-router": '[[connectors]]\nname = "x"\nurl = "amqp://h:1"\n'
        '[[addresses]]\nprefix = "q"\nwaypoint = true\n'
        '[[autolinks]]\naddress = "q"\nconnector = "x"\ndirection = "in"\n',
        "not a waypoint": '[[connectors]]\nname = "x"\nurl = "amqp://h:1"\n'
        'role = "route-container"\n'
        '[[autolinks]]\naddress = "q"\nconnector = "x"\ndirection = "out"\n',
    }
    for why, text in bad.items():
        path = tmp_path / "r.toml"
        path.write_text(base + text)
        with pytest.raises(ConfigError, match=why):
            load_router_settings(path)


async def test_proton_c_broker_behind_a_router() -> None:
    built = build_examples()
    assert built is not None, f"install {PACKAGES}"
    port = free_port()
    proc = subprocess.Popen(
        [str(built["broker"]), "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        async with (
            two_routers([f"amqp://127.0.0.1:{port}"]) as net,
            await petrel.connect(net.url("B")) as client,
        ):
            sender = await client.open_sender("orders")
            for i in range(20):  # accepted by Proton's broker, through A
                await asyncio.wait_for(sender.send(petrel.Message(body=i)), TIMEOUT)
            receiver = await client.open_receiver("orders", credit=50, auto_accept=True)
            got = [
                (await asyncio.wait_for(receiver.receive(), TIMEOUT)).message.body
                for _ in range(20)
            ]
            assert got == list(range(20))
    finally:
        proc.kill()
        proc.wait(timeout=10)


async def test_an_autolink_the_broker_refuses_is_attached_again_once_its_queue_exists(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The broker creates no queue on attach: until "orders" is made, it refuses both
    # autolinks; the router attaches them again (here every 0.2 s) until it takes them.
    monkeypatch.setattr(waypoints, "RETRY_FIRST", 0.2)
    monkeypatch.setattr(waypoints, "RETRY_NEXT", 0.2)
    caplog.set_level("WARNING", logger="petrel.router")
    port = free_port()
    broker = Broker(
        BrokerSettings(
            store="memory", auto_create=False, listeners=[{"url": f"amqp://127.0.0.1:{port}"}]
        )
    )
    await broker.start()
    try:
        inter = free_port()
        net = Net()
        net.ports = {"A": free_port()}
        settings = RouterSettings.model_validate(
            {
                "router": {"id": "A"},
                "listeners": [
                    {"url": net.url("A")},
                    {"url": f"amqp://127.0.0.1:{inter}", "role": "inter-router"},
                ],
                "connectors": [{"name": "b", "url": broker_url(broker), "role": "route-container"}],
                "addresses": WAYPOINT,
                "autolinks": [
                    {"address": "orders", "connector": "b", "direction": d} for d in ("in", "out")
                ],
            }
        )
        router = Router(settings, timers=FAST)
        await router.start()
        try:
            refused = "detached autolink orders (amqp:not-found"
            await net.until(
                lambda: sum(refused in m for m in caplog.messages) >= 4, "refused, twice each"
            )
            async with await petrel.connect(broker_url(broker)) as admin:
                await ManagementClient(admin).create("petrel.queue", "orders")
            table = router.network.table
            await net.until(
                lambda: bool(
                    table.entries.get("_phase/0/orders", None)
                    and table.entries["_phase/0/orders"].consumers
                ),
                "the out autolink taken",
            )
            async with await petrel.connect(net.url("A")) as client:
                receiver = await client.open_receiver("orders", credit=10, auto_accept=True)
                sender = await client.open_sender("orders")
                for i in range(5):
                    await asyncio.wait_for(sender.send(petrel.Message(body=i)), TIMEOUT)
                bodies = [(await receiver.receive(TIMEOUT)).message.body for _ in range(5)]
                assert sorted(bodies) == list(range(5))
        finally:
            await router.stop(timeout=1.0)
    finally:
        await broker.stop(timeout=1.0)


async def test_an_autolink_retry_due_after_its_connection_is_lost_does_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The broker refuses the autolink, so a retry is scheduled; the broker is killed
    # before it is due (no close: the socket just goes).  The retry belongs to a
    # connection that is over: it must not begin a session there (the engine refuses,
    # and asyncio would log the exception), and the next connection attaches afresh.
    monkeypatch.setattr(waypoints, "RETRY_FIRST", 0.5)
    monkeypatch.setattr(waypoints, "RETRY_NEXT", 0.5)
    caplog.set_level("WARNING")
    with run_broker("auto_create = false\n") as broker:
        net = Net()
        net.ports = {"A": free_port()}
        settings = RouterSettings.model_validate(
            {
                "router": {"id": "A"},
                "listeners": [{"url": net.url("A")}],
                "connectors": [{"name": "b", "url": broker.url, "role": "route-container"}],
                "addresses": WAYPOINT,
                "autolinks": [{"address": "orders", "connector": "b", "direction": "in"}],
            }
        )
        router = Router(settings, timers=FAST)
        await router.start()
        try:
            refused = "detached autolink orders (amqp:not-found"
            await net.until(lambda: any(refused in m for m in caplog.messages), "refused once")
            broker.proc.send_signal(signal.SIGKILL)
            broker.proc.wait(timeout=10)
            await asyncio.sleep(1.2)  # past the retry that was due on the lost connection
            failures = [r for r in caplog.records if r.levelname == "ERROR"]
            assert not failures, [r.getMessage() for r in failures]
        finally:
            await router.stop(timeout=1.0)
