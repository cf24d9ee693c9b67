"""A router's HTTP listener: AMQP over WebSockets into a router network, and its metrics
(per node, per address, convergence events) checked against the traffic sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import petrel
from petrel.router import Router, RouterSettings
from tests.helpers.routers import IN_PROCESS_TIMERS
from tests.helpers.servers import free_port
from tests.http.conftest import amqp_port, http_port, scrape, value

FAST = IN_PROCESS_TIMERS


async def until(check: object, what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def routers() -> AsyncIterator[dict[str, Router]]:
    """Routers A and B (B dials A), each with AMQP and HTTP listeners, converged."""
    inter = free_port()
    made = {
        "A": Router(
            RouterSettings.model_validate(
                {
                    "router": {"id": "A"},
                    "listeners": [
                        {"url": "amqp://127.0.0.1:0"},
                        {"url": f"amqp://127.0.0.1:{inter}", "role": "inter-router"},
                        {"url": "http://127.0.0.1:0", "role": "http"},
                    ],
                }
            ),
            timers=FAST,
        ),
        "B": Router(
            RouterSettings.model_validate(
                {
                    "router": {"id": "B"},
                    "listeners": [
                        {"url": "amqp://127.0.0.1:0"},
                        {"url": "http://127.0.0.1:0", "role": "http"},
                    ],
                    "connectors": [{"url": f"amqp://127.0.0.1:{inter}", "role": "inter-router"}],
                }
            ),
            timers=FAST,
        ),
    }
    try:
        for router in made.values():
            await router.start()
        for name, other in (("A", "B"), ("B", "A")):
            core = made[name].network.core
            assert core is not None
            await until(
                lambda core=core, other=other: other in core.reachable(), f"{name} sees {other}"
            )
        yield made
    finally:
        for router in made.values():
            await router.stop(timeout=1.0)


async def test_through_a_router_network_over_websockets(routers: dict[str, Router]) -> None:
    a, b = routers["A"], routers["B"]
    count = 7
    async with await petrel.connect(f"ws://127.0.0.1:{http_port(b)}", reconnect=False) as rx_conn:
        receiver = await rx_conn.open_receiver("rt.q")
        core = a.network.core
        assert core is not None
        await until(lambda: core.routers_for("rt.q") == frozenset({"B"}), "A knows rt.q on B")
        async with (
            await petrel.connect(f"ws://127.0.0.1:{http_port(a)}/amqp", reconnect=False) as tx_conn,
            await tx_conn.open_sender("rt.q") as sender,
        ):
            # A send returns once the receiver (on B) accepted: receive alongside.
            sends = [
                asyncio.ensure_future(sender.send(petrel.Message(f"m{i}"))) for i in range(count)
            ]
            bodies = []
            for _ in range(count):
                delivery = await receiver.receive(timeout=10)
                bodies.append(delivery.message.body)
                await delivery.accept()
            await asyncio.wait_for(asyncio.gather(*sends), 10)
            assert bodies == [f"m{i}" for i in range(count)]
            # A plain AMQP client on the same router sees the same network.
            async with (
                await petrel.connect(f"amqp://127.0.0.1:{amqp_port(a)}", reconnect=False) as tcp,
                await tcp.open_sender("rt.q") as tcp_sender,
            ):
                sent = asyncio.ensure_future(tcp_sender.send(petrel.Message("tcp")))
                delivery = await receiver.receive(timeout=10)
                assert delivery.message.body == "tcp"
                await delivery.accept()
                await asyncio.wait_for(sent, 10)
            # (A router keeps an address's counters while it has links for it: read them
            # while the sender is attached.)
            at_a = await scrape(http_port(a))
            at_b = await scrape(http_port(b))
    assert (
        value(
            at_a,
            "petrel_router_address_delivered_in_total",
            address="rt.q",
            distribution="balanced",
        )
        == count + 1
    )
    assert (
        value(
            at_b,
            "petrel_router_address_delivered_out_total",
            address="rt.q",
            distribution="balanced",
        )
        == count + 1
    )
    assert (
        value(
            at_b, "petrel_router_address_local_receivers", address="rt.q", distribution="balanced"
        )
        == 1
    )
    assert (
        value(at_a, "petrel_router_address_remote_routers", address="rt.q", distribution="balanced")
        == 1
    )
    assert value(at_a, "petrel_router_deliveries_in_total") >= count + 1
    assert value(at_b, "petrel_router_deliveries_out_total") >= count + 1
    assert value(at_a, "petrel_router_node_reachable", node="B") == 1
    assert value(at_a, "petrel_router_node_cost", node="B") == 1
    assert value(at_a, "petrel_router_nodes_reachable") == 1
    assert value(at_a, "petrel_router_neighbours") == 1
    assert value(at_a, "petrel_router_topology_changes_total") >= 1
    assert value(at_a, "petrel_server_info", kind="router", id="A", version=petrel.__version__) == 1
