"""Paging: a queue over its memory limit keeps new bodies on disk and loads them back, in
order, for its consumers; the broker's memory stays bounded (and so does recovery's)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

import petrel
from tests.helpers.servers import BrokerProcess, run_broker

MIB = 1024 * 1024
CONFIG = """
[queue_defaults]
memory_limit_bytes = 1048576
"""
SIZE = 64 * 1024
COUNT = 800  # 50 MiB


def _body(index: int) -> bytes:
    seed = hashlib.sha256(str(index).encode()).digest()
    return (seed * (SIZE // len(seed) + 1))[:SIZE]


async def _send(url: str, count: int, *, durable: bool) -> None:
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender("paged")
        pending: list[asyncio.Future[None]] = []
        for index in range(count):
            message = petrel.Message(_body(index), message_id=str(index), durable=durable)
            pending.append(await sender.send(message, wait=False))
            if len(pending) >= 50:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)


async def _receive_all(url: str, count: int) -> None:
    async with await petrel.connect(url) as conn:
        receiver = await conn.open_receiver("paged", credit=100)
        for index in range(count):
            delivery = await receiver.receive(timeout=30)
            body = delivery.message.body
            assert delivery.message.message_id == str(index)
            assert hashlib.sha256(body).digest() == hashlib.sha256(_body(index)).digest()
            await delivery.accept()
        with pytest.raises(petrel.Timeout):
            await receiver.receive(timeout=0.2)


async def _warm_up(broker: BrokerProcess) -> int:
    """Run a little traffic through the broker, then its RSS (kB) as the baseline."""
    await _send(broker.url, 20, durable=False)
    await _receive_all(broker.url, 20)
    return broker.rss_kb()


@pytest.mark.slow
async def test_a_queue_over_its_memory_limit_pages_and_delivers_everything_in_order() -> None:
    with run_broker(CONFIG, store="memory") as broker:
        async with await petrel.connect(broker.url) as conn:  # the queue's first messages
            await conn.open_receiver("paged", credit=0)
        baseline = await _warm_up(broker)
        await _send(broker.url, COUNT, durable=False)
        grown_mib = (broker.rss_kb() - baseline) / 1024
        assert grown_mib < 40, f"the broker grew by {grown_mib:.0f} MiB for 50 MiB queued"
        await _receive_all(broker.url, COUNT)


@pytest.mark.slow
async def test_recovery_of_a_big_backlog_pages_too(tmp_path: object) -> None:
    with run_broker(CONFIG, store="sqlite") as broker:
        await _send(broker.url, COUNT // 2, durable=True)
        data_dir = broker.data_dir
        broker.proc.kill()
        broker.proc.wait()
        with run_broker(CONFIG, store="sqlite", data_dir=data_dir) as again:
            recovered_mib = again.rss_kb() / 1024
            await _receive_all(again.url, COUNT // 2)
        with run_broker(CONFIG, store="sqlite") as empty:
            empty_mib = empty.rss_kb() / 1024
    assert recovered_mib - empty_mib < 20, (recovered_mib, empty_mib)
