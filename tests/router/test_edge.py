"""Edge routers: sites that join the network through an interior router's client listener.

Interior routers I1 and I2 (connected to each other), edges E1 and E2 in one process,
Petrel's client on the edges; a standby uplink takes over when the active one's router
stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

import petrel
from petrel.client import NotFound
from petrel.management import ManagementClient
from petrel.router import Router, RouterSettings
from tests.helpers.servers import free_port
from tests.router.test_forwarding import FAST, TIMEOUT, Net


@contextlib.asynccontextmanager
async def edges(
    uplinks: dict[str, list[str]], *, start: list[str] | None = None
) -> AsyncIterator[Net]:
    """Interiors I1 and I2 (I2 dials I1); each edge listed dials the interiors named, in
    that order (the first is its active uplink); the routers start in the order ``start``
    (by default I1, I2, then the edges)."""
    inter = free_port()
    net = Net()
    for name in ("I1", "I2", *uplinks):
        net.ports[name] = free_port()
    settings: dict[str, dict[str, Any]] = {
        "I1": {
            "router": {"id": "I1"},
            "listeners": [
                {"url": net.url("I1")},
                {"url": f"amqp://127.0.0.1:{inter}", "role": "inter-router"},
            ],
        },
        "I2": {
            "router": {"id": "I2"},
            "listeners": [{"url": net.url("I2")}],
            "connectors": [{"url": f"amqp://127.0.0.1:{inter}"}],
        },
    }
    for edge, interiors in uplinks.items():
        settings[edge] = {
            "router": {"id": edge, "mode": "edge"},
            "listeners": [{"url": net.url(edge)}],
            "connectors": [{"url": net.url(i), "role": "edge"} for i in interiors],
        }
    net.routers = {
        name: Router(RouterSettings.model_validate(s), timers=FAST) for name, s in settings.items()
    }
    try:
        for name in start or list(net.routers):
            await net.routers[name].start()
            await asyncio.sleep(0.05 if start else 0)
        core = net.routers["I1"].network.core
        assert core is not None
        await net.until(lambda: core.reachable() == {"I2"}, "the interiors see each other")
        for edge, interiors in uplinks.items():
            ups = net.routers[edge].network.uplinks
            assert ups is not None
            count = len(interiors)
            await net.until(lambda u=ups, n=count: len(u.open) == n, f"{edge} uplinks")
        yield net
    finally:
        for router in net.routers.values():
            await router.stop(timeout=1.0)


async def test_the_first_listed_uplink_is_active_even_when_another_opened_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="petrel.router")
    # E1 lists I1 first, but I1 starts last: I2's uplink opens first, then stands by.
    async with edges({"E1": ["I1", "I2"]}, start=["I2", "E1", "I1"]) as net:
        ups = net.routers["E1"].network.uplinks
        assert ups is not None and ups.active is not None
        assert ups.active.listener.url == net.url("I1")
        standing = f"edge E1: uplink {net.url('I2')} standing by"
        assert standing in caplog.messages, caplog.messages


async def test_edge_to_interior_to_edge_both_ways() -> None:
    async with (
        edges({"E1": ["I1"], "E2": ["I2"]}) as net,
        await petrel.connect(net.url("E1")) as one,
        await petrel.connect(net.url("E2")) as two,
    ):
        for sender_client, receiver_client, address in ((one, two, "east"), (two, one, "west")):
            receiver = await receiver_client.open_receiver(address, credit=10, auto_accept=True)
            sender = await sender_client.open_sender(address)
            # credit only once the interiors know the receiver (through the other edge)
            sent = asyncio.gather(*(sender.send(petrel.Message(body=i)) for i in range(5)))
            got = [
                (await asyncio.wait_for(receiver.receive(), TIMEOUT)).message.body for _ in range(5)
            ]
            assert got == list(range(5))
            await asyncio.wait_for(sent, TIMEOUT)


async def test_request_response_between_edges() -> None:
    async with (
        edges({"E1": ["I1"], "E2": ["I2"]}) as net,
        await petrel.connect(net.url("E1")) as client,
        await petrel.connect(net.url("E2")) as service,
    ):
        requests = await service.open_receiver("svc", credit=5)

        async def serve() -> None:
            delivery = await requests.receive()
            await delivery.accept()
            replies = await service.open_sender(None)
            request = delivery.message
            await replies.send(
                petrel.Message(
                    body=f"re: {request.body}",
                    to=request.reply_to,
                    correlation_id=request.message_id,
                )
            )

        server = asyncio.ensure_future(serve())
        core = net.routers["I1"].network.core
        assert core is not None
        await net.until(lambda: core.routers_for("svc") == {"I2"}, "I1 knows svc")
        reply = await asyncio.wait_for(client.request("svc", petrel.Message(body="hi")), TIMEOUT)
        assert reply.body == "re: hi"
        await server


async def test_petrel_stat_through_an_edge_reaches_the_network() -> None:
    async with edges({"E1": ["I1"]}) as net, await petrel.connect(net.url("E1")) as client:
        mine = (await ManagementClient(client).query("petrel.router")).as_dicts()
        assert [(r["id"], r["mode"]) for r in mine] == [("E1", "edge")]
        theirs = ManagementClient(client, address="_topo/0/I2/$management")
        nodes = {n["id"] for n in (await theirs.query("petrel.router.node")).as_dicts()}
        assert nodes == {"I1", "I2"}  # the edge is no node of the network


async def test_the_standby_uplink_takes_over_while_streaming() -> None:
    async with (
        edges({"E1": ["I1", "I2"], "E2": ["I2"]}) as net,
        await petrel.connect(net.url("E1")) as producer,
        await petrel.connect(net.url("E2")) as consumer,
    ):
        receiver = await consumer.open_receiver("stream", credit=50, auto_accept=True)
        sender = await producer.open_sender("stream", retry_released=20)
        core = net.routers["I1"].network.core
        assert core is not None
        await net.until(lambda: core.routers_for("stream") == {"I2"}, "I1 knows stream")
        received: list[int] = []

        async def consume() -> None:
            while True:
                received.append((await receiver.receive()).message.body)

        consuming = asyncio.ensure_future(consume())
        sends = []
        for i in range(200):
            sends.append(asyncio.ensure_future(sender.send(petrel.Message(body=i))))
            if i == 80:
                await net.routers["I1"].stop(timeout=0.5)  # E1's active uplink goes
            await asyncio.sleep(0.002)
        await asyncio.wait_for(asyncio.gather(*sends), 30)  # every one accepted, at last
        await net.until(lambda: set(received) >= set(range(200)), "all 200 arrived")
        consuming.cancel()
        duplicates = len(received) - len(set(received))
        assert set(received) == set(range(200)), duplicates
        uplinks = net.routers["E1"].network.uplinks
        assert uplinks is not None and uplinks.failovers >= 1


async def test_an_edge_without_an_uplink_refuses_links_clearly() -> None:
    port, dead = free_port(), free_port()
    settings = RouterSettings.model_validate(
        {
            "router": {"id": "E", "mode": "edge"},
            "listeners": [{"url": f"amqp://127.0.0.1:{port}"}],
            "connectors": [{"url": f"amqp://127.0.0.1:{dead}", "role": "edge"}],
        }
    )
    edge = Router(settings, timers=FAST)
    await edge.start()
    try:
        async with await petrel.connect(f"amqp://127.0.0.1:{port}") as client:
            with pytest.raises(NotFound, match="no uplink"):
                await client.open_sender("anything", timeout=5)
    finally:
        await edge.stop(timeout=1.0)


def test_the_command_line_makes_an_edge_router() -> None:
    from petrel.cli.router import router_settings
    from petrel.server import ConfigError

    settings = router_settings(
        router_id="E",
        mode="edge",
        connect_uplink=["amqp://127.0.0.1:5672", "127.0.0.1:6672"],
    )
    assert settings.router.mode == "edge"
    assert [(c.url, c.role) for c in settings.connectors] == [
        ("amqp://127.0.0.1:5672", "edge"),
        ("amqp://127.0.0.1:6672", "edge"),
    ]
    with pytest.raises(ConfigError, match="needs an uplink"):
        router_settings(router_id="E", mode="edge")
    with pytest.raises(ConfigError, match="edge router's uplink"):
        router_settings(router_id="I", connect_uplink=["amqp://127.0.0.1:5672"])
    with pytest.raises(ConfigError, match="no inter-router listeners"):
        router_settings(
            router_id="E",
            mode="edge",
            connect_uplink=["amqp://127.0.0.1:5672"],
            inter_router_listen=["amqp://127.0.0.1:5673"],
        )
