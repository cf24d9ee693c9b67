"""Transactions through the router network: a link route for ``$coordinator`` (as in
Dispatch) carries the coordinator link to the broker, and transactional transfers on
link-routed addresses keep their transaction; without one, or on a routed address, a
coordinator attach is refused with a clear error.

Router A has the broker behind it; router B dials A.  Clients attach on B.
"""

from __future__ import annotations

import asyncio

import pytest

import petrel
from petrel.client import NotImplementedByPeer
from tests.router.test_forwarding import TIMEOUT
from tests.router.test_link_routes import routed
from tests.router.test_waypoints import broker_url, brokers, depth

ROUTES = [
    {"prefix": "lr.", "direction": "in"},
    {"prefix": "lr.", "direction": "out"},
    {"prefix": "$coordinator", "direction": "out"},
]


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
