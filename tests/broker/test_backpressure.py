"""Socket-level backpressure and handshake deadlines, with the broker in-process.

A consumer that grants credit but stops reading its socket must not make the
broker copy the queue into its write buffer; a client that never finishes
its handshake is dropped after ``limits.sasl_timeout``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import petrel
from petrel import spec
from petrel.broker import Broker
from petrel.driver import AmqpProtocol, connect
from petrel.engine import ConnectionConfig
from petrel.engine import events as ev
from petrel.server import BrokerSettings, LimitSettings, ListenerSettings


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def handle_event(self, protocol: AmqpProtocol, event: Any) -> None:
        self.events.append(event)


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    settings = BrokerSettings(
        store="memory",
        listeners=[ListenerSettings(url="amqp://127.0.0.1:0")],
        limits=LimitSettings(sasl_timeout=0.5),
    )
    server = Broker(settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(timeout=1.0)


async def test_a_consumer_that_stops_reading_does_not_fill_the_brokers_buffers(
    broker: Broker,
) -> None:
    url = f"amqp://127.0.0.1:{broker.bound[0][1]}"
    recorder = Recorder()
    consumer = await connect(url, ConnectionConfig(), recorder)
    link = consumer.engine.begin_session().attach_receiver(
        "greedy", source=spec.Source(address="bp")
    )
    link.flow(100_000)
    consumer.flush()
    for _ in range(200):
        if any(isinstance(e, ev.LinkAttached) for e in recorder.events):
            break
        await asyncio.sleep(0.01)
    consumer.pause_reading()  # credit for 100,000 messages, but it reads nothing more

    size = 64 * 1024
    count = 400  # 25 MiB in all
    async with await petrel.connect(url, reconnect=False) as conn:
        sender = await conn.open_sender("bp")
        pending = [await sender.send(petrel.Message(b"x" * size), wait=False) for _ in range(count)]
        await asyncio.gather(*pending)

    queue = broker.core.queues["bp"]
    server_side = next(p for p, c in broker.connections.items() if c.consumers)
    assert server_side.transport is not None
    buffered = server_side.transport.get_write_buffer_size()
    # Most messages wait in the queue; what went to the socket is bounded by the
    # buffer's high-water mark plus one loop turn's dispatch, not by the credit.
    assert queue.available > count // 2
    assert buffered < 8 * 1024 * 1024
    assert not server_side.writable

    # Once the consumer reads again, everything flows.
    consumer.resume_reading()
    for _ in range(1000):
        got = sum(isinstance(e, ev.DeliveryReceived) for e in recorder.events)
        if got == count:
            break
        await asyncio.sleep(0.01)
    assert sum(isinstance(e, ev.DeliveryReceived) for e in recorder.events) == count
    await consumer.close()


async def test_a_client_that_never_opens_is_dropped(broker: Broker) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", broker.bound[0][1])
    writer.write(b"AMQP\x00\x01\x00\x00")  # the header, then silence
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)  # EOF once the deadline passes
    assert data.startswith(b"AMQP\x00\x01\x00\x00")
    writer.close()
    await writer.wait_closed()
    assert not broker.connections
