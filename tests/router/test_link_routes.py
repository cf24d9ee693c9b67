"""Link routes: a client's links to matching addresses go through the network to a broker,
as links: the broker's selectors, drain and settlement work end to end.

Router A has the broker behind it (a route-container connector and two link routes);
router B dials A and only knows the addresses are link-routed.  Clients attach on B.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

import petrel
from petrel.broker import Broker
from petrel.client import ClientError, NotFound
from petrel.router.routing import RoutingCore
from petrel.server.config import BrokerSettings
from tests.helpers.servers import free_port
from tests.router.test_forwarding import TIMEOUT, Net
from tests.router.test_waypoints import a_and_b, broker_url, brokers, depth

ROUTES = [{"prefix": "lr.", "direction": "in"}, {"prefix": "lr.", "direction": "out"}]


def learnt_both_ways(core: RoutingCore) -> bool:
    return core.routers_for("_lr/in/P:lr.") == {"A"} and core.routers_for("_lr/out/P:lr.") == {"A"}


def reaches_a(core: RoutingCore) -> bool:
    return core.reachable() == {"A"}


@contextlib.asynccontextmanager
async def routed(
    broker_address: str, routes: list[dict[str, str]] = ROUTES, *, learned: bool = True
) -> AsyncIterator[Net]:
    """Router A with the broker at ``broker_address`` behind it (``routes`` on its
    connector), router B dialling A with the same ``routes`` and no connector: yielded
    once B has learnt A has ``lr.`` both ways, or (not ``learned``: no broker there)
    once B reaches A."""
    async with a_and_b(
        {
            "connectors": [{"name": "broker", "url": broker_address, "role": "route-container"}],
            "link_routes": [{**route, "connector": "broker"} for route in routes],
        },
        {"link_routes": routes},  # no connector: the broker is elsewhere
        *(
            (learnt_both_ways, "B learns the route both ways")
            if learned
            else (reaches_a, "B reaches A")
        ),
    ) as net:
        yield net


async def test_messages_go_straight_into_the_brokers_queue_and_back() -> None:
    async with (
        brokers(1) as (broker,),
        routed(broker_url(broker)) as net,
        await petrel.connect(net.url("B")) as client,
    ):
        sender = await client.open_sender("lr.orders")
        for i in range(10):  # settled by the broker itself
            await asyncio.wait_for(sender.send(petrel.Message(body=i)), TIMEOUT)
        assert depth(broker, "lr.orders") == 10
        receiver = await client.open_receiver("lr.orders", credit=20)
        bodies = []
        for _ in range(10):
            delivery = await asyncio.wait_for(receiver.receive(), TIMEOUT)
            bodies.append(delivery.message.body)
            await delivery.accept()
        assert bodies == list(range(10))
        await net.until(lambda: depth(broker, "lr.orders") == 0, "accepted at the broker")


async def test_the_brokers_selector_and_drain_work_through_two_routers() -> None:
    async with (
        brokers(1) as (broker,),
        routed(broker_url(broker)) as net,
        await petrel.connect(net.url("B")) as client,
    ):
        sender = await client.open_sender("lr.picky")
        for i in range(10):
            colour = "red" if i % 2 else "blue"
            message = petrel.Message(body=i, application_properties={"colour": colour})
            await asyncio.wait_for(sender.send(message), TIMEOUT)
        receiver = await client.open_receiver(
            "lr.picky", credit=0, selector="colour = 'red'", auto_accept=True
        )
        receiver.add_credit(100)
        await asyncio.wait_for(receiver.drain(), TIMEOUT)  # the broker's drain, end to end
        got = []
        while receiver.buffered:
            got.append((await receiver.receive(timeout=1)).message.body)
        assert got == [1, 3, 5, 7, 9]


async def test_an_attach_with_no_broker_behind_the_route_is_refused_not_found() -> None:
    port = free_port()  # nothing listens there: the route is configured, its broker absent
    async with routed(f"amqp://127.0.0.1:{port}", learned=False) as net:
        async with await petrel.connect(net.url("B")) as client:
            with pytest.raises(NotFound, match=r"no broker serves lr\.orders"):
                await client.open_sender("lr.orders", timeout=5)
        async with await petrel.connect(net.url("A")) as client:
            with pytest.raises(NotFound):
                await client.open_receiver("lr.orders", timeout=5)


async def test_a_link_whose_broker_goes_away_is_detached_with_a_clear_error() -> None:
    port = free_port()
    broker = Broker(BrokerSettings(store="memory", listeners=[{"url": f"amqp://127.0.0.1:{port}"}]))
    await broker.start()
    stopped = False
    try:
        async with (
            routed(f"amqp://127.0.0.1:{port}") as net,
            await petrel.connect(net.url("B")) as client,
        ):
            receiver = await client.open_receiver("lr.gone", credit=10)
            await broker.stop(timeout=1.0)
            stopped = True
            with pytest.raises(ClientError) as caught:
                await asyncio.wait_for(receiver.receive(), TIMEOUT)
            assert "broker" in str(caught.value) or "forced" in str(caught.value)
    finally:
        if not stopped:
            await broker.stop(timeout=1.0)


async def test_a_receiver_that_detaches_with_deliveries_unsettled_leaves_none_in_the_routers() -> (
    None
):
    # The client takes five messages through the link route without settling them and
    # detaches: the routers let go of both hops' deliveries (the broker gets them back),
    # so their sessions keep nothing for links that are gone.
    async with (
        brokers(1) as (broker,),
        routed(broker_url(broker)) as net,
        await petrel.connect(net.url("B")) as client,
    ):
        sender = await client.open_sender("lr.held")
        for i in range(5):
            await asyncio.wait_for(sender.send(petrel.Message(body=i)), TIMEOUT)
        receiver = await client.open_receiver("lr.held", credit=5, auto_accept=False)
        for _ in range(5):
            await asyncio.wait_for(receiver.receive(), TIMEOUT)
        await receiver.close()

        def unsettled(router_id: str) -> int:
            count = 0
            for conn in list(net.routers[router_id].connections.values()):
                for session in conn.engine.sessions:
                    count += len(session._unsettled_in) + len(session.outgoing.unsettled)
            return count

        await net.until(lambda: unsettled("A") == 0 and unsettled("B") == 0, "nothing kept")
        await net.until(lambda: depth(broker, "lr.held") == 5, "the broker has them back")


class _Overshooter:
    """A broker played with hand-made frames (no real peer overshoots on demand; RabbitMQ
    did once in CI): it serves one queue and, at each flow, sends two transfers more than
    the credit the router gave it."""

    def __init__(self) -> None:
        self.sent = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from petrel import spec
        from petrel.message import Message
        from petrel.spec.framing import AMQP_HEADER, SASL_HEADER
        from tests.helpers.frames import frame, parse, sasl_frame

        buffer = b""

        async def frames() -> AsyncIterator[Any]:
            nonlocal buffer
            while True:
                while len(buffer) >= 8 and buffer.startswith(b"AMQP"):
                    yield buffer[:8]
                    buffer = buffer[8:]
                if len(buffer) >= 4:
                    size = int.from_bytes(buffer[:4], "big")
                    if len(buffer) >= size:
                        _, parsed = parse(buffer[:size])
                        buffer = buffer[size:]
                        yield parsed[0][1]
                        continue
                chunk = await reader.read(65536)
                if not chunk:
                    return
                buffer += chunk

        try:
            async for item in frames():
                if item == SASL_HEADER:
                    writer.write(SASL_HEADER)
                    writer.write(
                        sasl_frame(spec.SaslMechanisms(sasl_server_mechanisms=["ANONYMOUS"]))
                    )
                elif isinstance(item, spec.SaslInit):
                    writer.write(sasl_frame(spec.SaslOutcome(code=spec.SaslCode.OK)))
                elif item == AMQP_HEADER:
                    writer.write(AMQP_HEADER + frame(spec.Open(container_id="overshooter")))
                elif isinstance(item, spec.Begin):
                    writer.write(
                        frame(
                            spec.Begin(
                                remote_channel=0,
                                next_outgoing_id=0,
                                incoming_window=10_000,
                                outgoing_window=10_000,
                            )
                        )
                    )
                elif isinstance(item, spec.Attach):
                    writer.write(
                        frame(
                            spec.Attach(
                                name=item.name,
                                handle=0,
                                role=spec.Role.SENDER,
                                source=item.source,
                                target=item.target,
                                initial_delivery_count=0,
                            )
                        )
                    )
                elif isinstance(item, spec.Flow) and item.link_credit:
                    count = item.delivery_count or 0
                    beyond = count + item.link_credit + 2
                    while self.sent < beyond:
                        body = Message(body=self.sent).encode()
                        transfer = spec.Transfer(
                            handle=0,
                            delivery_id=self.sent,
                            delivery_tag=self.sent.to_bytes(4, "big"),
                            message_format=0,
                        )
                        writer.write(frame(transfer, payload=body))
                        self.sent += 1
                elif isinstance(item, spec.Close):
                    writer.write(frame(spec.Close()))
                    break
                await writer.drain()
        finally:
            writer.close()


async def test_a_broker_sending_beyond_its_credit_does_not_break_the_link_route() -> None:
    # The router tolerates the extra transfers (as its engine does) and holds them for the
    # client's next credit: every message arrives, once each, and the link stays up.
    overshooter = _Overshooter()
    server = await asyncio.start_server(overshooter.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with (
            routed(f"amqp://127.0.0.1:{port}") as net,
            await petrel.connect(net.url("B")) as client,
        ):
            receiver = await client.open_receiver("lr.over", credit=3, auto_accept=True)
            bodies = [(await receiver.receive(TIMEOUT)).message.body for _ in range(12)]
            assert bodies == list(range(12))
            assert overshooter.sent > 12  # it did overshoot
    finally:
        server.close()
        await server.wait_closed()
