"""Transactions through the router network: a link route for ``$coordinator`` (as in
Dispatch) carries the coordinator link to the broker, and transactional transfers on
link-routed addresses keep their transaction; without one, or on a routed address, a
coordinator attach is refused with a clear error.

Router A has the broker behind it; router B dials A.  Clients attach on B.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

import petrel
from petrel.client import NotImplementedByPeer
from petrel.router import Router, RouterSettings
from tests.helpers.servers import free_port
from tests.router.test_forwarding import FAST, TIMEOUT, Net
from tests.router.test_waypoints import broker_url, brokers, depth

ROUTES = [
    {"prefix": "lr.", "direction": "in"},
    {"prefix": "lr.", "direction": "out"},
    {"prefix": "$coordinator", "direction": "out"},
]


@contextlib.asynccontextmanager
async def routed(broker_address: str, routes: list[dict[str, str]]) -> AsyncIterator[Net]:
    inter = free_port()
    net = Net()
    net.ports = {"A": free_port(), "B": free_port()}
    a = RouterSettings.model_validate(
        {
            "router": {"id": "A"},
            "listeners": [
                {"url": net.url("A")},
                {"url": f"amqp://127.0.0.1:{inter}", "role": "inter-router"},
            ],
            "connectors": [{"name": "broker", "url": broker_address, "role": "route-container"}],
            "link_routes": [{**route, "connector": "broker"} for route in routes],
        }
    )
    b = RouterSettings.model_validate(
        {
            "router": {"id": "B"},
            "listeners": [{"url": net.url("B")}],
            "connectors": [{"url": f"amqp://127.0.0.1:{inter}"}],
            "link_routes": routes,
        }
    )
    net.routers = {"A": Router(a, timers=FAST), "B": Router(b, timers=FAST)}
    try:
        for router in net.routers.values():
            await router.start()
        core = net.routers["B"].network.core
        assert core is not None
        await net.until(lambda: core.routers_for("_lr/out/P:lr.") == {"A"}, "B learns the route")
        yield net
    finally:
        for router in net.routers.values():
            await router.stop(timeout=1.0)


async def test_a_transaction_reaches_the_broker_through_two_routers() -> None:
    async with (
        brokers(1) as (broker,),
        routed(broker_url(broker), ROUTES) as net,
        await petrel.connect(net.url("B")) as client,
    ):
        core = net.routers["B"].network.core
        assert core is not None
        await net.until(
            lambda: core.routers_for("_lr/out/P:$coordinator") == {"A"}, "the coordinator route"
        )
        sender = await client.open_sender("lr.tx")
        tx = await asyncio.wait_for(client.transaction().declare(), TIMEOUT)
        for n in range(5):
            await asyncio.wait_for(tx.send(sender, n), TIMEOUT)
        assert depth(broker, "lr.tx") == 0  # held by the broker's transaction
        await asyncio.wait_for(tx.commit(), TIMEOUT)
        assert depth(broker, "lr.tx") == 5
        receiver = await client.open_receiver("lr.tx", credit=5)
        deliveries = [await asyncio.wait_for(receiver.receive(), TIMEOUT) for _ in range(5)]
        assert [d.message.body for d in deliveries] == list(range(5))
        tx = await asyncio.wait_for(client.transaction().declare(), TIMEOUT)
        for delivery in deliveries:
            await tx.accept(delivery)
        await asyncio.wait_for(tx.rollback(), TIMEOUT)
        assert depth(broker, "lr.tx") == 5
        async with client.transaction() as tx:
            for delivery in deliveries:
                await tx.accept(delivery)
        assert depth(broker, "lr.tx") == 0


async def test_a_coordinator_without_its_link_route_is_refused() -> None:
    async with (
        brokers(1) as (broker,),
        routed(broker_url(broker), ROUTES[:2]) as net,
        await petrel.connect(net.url("B")) as client,
    ):
        with pytest.raises(NotImplementedByPeer, match=r"\$coordinator"):
            await asyncio.wait_for(client.transaction().declare(), TIMEOUT)
        # The connection carries on.
        sender = await client.open_sender("lr.after")
        await asyncio.wait_for(sender.send("fine"), TIMEOUT)
