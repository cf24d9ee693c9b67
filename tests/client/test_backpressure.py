"""Backpressure: a Proton broker grants 10 credits and no more; sends wait, nothing piles up."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import pytest

import petrel
from petrel import Message
from petrel.client import Timeout

pytestmark = pytest.mark.interop


async def test_send_waits_for_credit_and_memory_stays_bounded(url: str, queue: str) -> None:
    address = f"stingy.{queue}"
    body = b"x" * 10_000
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender(address)
        sent = 0

        async def produce() -> None:
            nonlocal sent
            for _ in range(100_000):
                await sender.send(Message(body))
                sent += 1

        producers = [asyncio.create_task(produce()) for _ in range(20)]
        while sent < 10:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert sent == 10  # the peer's 10 credits, and not one more
        assert sender.credit == 0
        assert len(sender._waiters) == 20  # every producer waits for credit
        assert sender.unsettled == 0
        protocol = conn._protocol
        assert protocol is not None
        session = protocol.engine.sessions[0]
        assert not session.outgoing.waiting  # no transfer queued inside the engine
        assert protocol.engine.data_to_send() == b""  # nor bytes waiting to be written
        assert protocol.transport is not None
        assert protocol.transport.get_write_buffer_size() == 0

        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(20):
                await asyncio.sleep(0.01)
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert after - before < 64_000  # waiting costs nothing per message
        assert sent == 10

        for task in producers:
            task.cancel()
        await asyncio.gather(*producers, return_exceptions=True)
        assert not sender._waiters
        assert sender._reserved == 0


async def test_a_send_waiting_for_credit_times_out(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender(f"stingy.{queue}")
        for i in range(10):
            await sender.send(Message(i), timeout=5)
        with pytest.raises(Timeout, match="credit"):
            await sender.send("eleventh", timeout=0.1)
        with pytest.raises(Timeout):
            await sender.send("twelfth", wait=False, timeout=0.1)
        assert not sender._waiters


async def test_many_pipelined_sends_are_paced_by_credit(url: str, queue: str) -> None:
    # With only a 10-credit window at a time, thousands of pipelined sends still all go.
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender(queue)
        futures = [await sender.send(Message(i), wait=False) for i in range(2_000)]
        await asyncio.gather(*futures)
        receiver = await conn.open_receiver(queue, credit=500, auto_accept=True)
        got = [(await receiver.receive(timeout=10)).message.body for _ in range(2_000)]
        assert got == list(range(2_000))
