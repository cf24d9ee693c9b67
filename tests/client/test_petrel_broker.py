"""Features the Proton test broker lacks, against ``petrel broker``: selectors, browsing,
topics, durable and shared subscriptions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import petrel
from petrel import Message
from petrel.client import InvalidField, ResourceLimitExceeded, Timeout
from tests.helpers.servers import BrokerProcess, run_broker


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerProcess]:
    with run_broker() as process:
        yield process


async def receive_all(receiver: petrel.Receiver, timeout: float = 0.3) -> list[Any]:
    """Every body that arrives until nothing comes for ``timeout`` seconds (accepting each)."""
    bodies: list[Any] = []
    while True:
        try:
            delivery = await receiver.receive(timeout=timeout)
        except Timeout:
            return bodies
        bodies.append(delivery.message.body)
        await delivery.accept()


async def test_selector(broker: BrokerProcess, queue: str) -> None:
    async with await petrel.connect(broker.url) as conn:
        sender = await conn.open_sender(queue)
        for n, color in enumerate(["red", "blue", "red", "green"]):
            await sender.send(Message(n, application_properties={"color": color, "n": n}))
        reds = await conn.open_receiver(queue, selector="color = 'red'")
        assert await receive_all(reds) == [0, 2]
        await reds.close()
        rest = await conn.open_receiver(queue, selector="n > 1 OR color = 'blue'")
        assert await receive_all(rest) == [1, 3]
        with pytest.raises(InvalidField, match="selector"):
            await conn.open_receiver(queue, selector="color = = 'x'")


async def test_browse_leaves_the_messages(broker: BrokerProcess, queue: str) -> None:
    async with await petrel.connect(broker.url) as conn:
        sender = await conn.open_sender(queue)
        for n in range(3):
            await sender.send(n)
        browser = await conn.open_receiver(queue, browse=True)
        assert await receive_all(browser) == [0, 1, 2]
        await browser.close()
        consumer = await conn.open_receiver(queue)
        assert await receive_all(consumer) == [0, 1, 2]


async def test_publish_subscribe(broker: BrokerProcess, queue: str) -> None:
    topic = f"topic-{queue}"
    async with await petrel.connect(broker.url) as conn:
        one = await conn.open_receiver(topic, capabilities=["topic"])
        two = await conn.open_receiver(topic, capabilities=["topic"])
        publisher = await conn.open_sender(topic)
        await publisher.send("to everyone")
        assert await receive_all(one) == ["to everyone"]
        assert await receive_all(two) == ["to everyone"]


async def test_durable_subscription_survives_detach_and_reconnect(
    broker: BrokerProcess, queue: str
) -> None:
    topic = f"topic-{queue}"
    async with await petrel.connect(broker.url, container_id="durable-client") as conn:
        sub = await conn.open_receiver(topic, capabilities=["topic"], durable=True, name="sub")
        publisher = await conn.open_sender(topic)
        await publisher.send("first")
        assert await receive_all(sub) == ["first"]
        await sub.detach()  # keep the subscription
        await publisher.send("while away")
    async with await petrel.connect(broker.url, container_id="durable-client") as conn:
        async with await conn.open_receiver(
            topic, capabilities=["topic"], durable=True, name="sub"
        ) as sub:
            assert await receive_all(sub) == ["while away"]
        # Leaving the `async with` detached it: it is still there.
        sub = await conn.open_receiver(topic, capabilities=["topic"], durable=True, name="sub")
        await sub.close()  # this ends it
        await (await conn.open_sender(topic)).send("nobody hears this")
        sub = await conn.open_receiver(topic, capabilities=["topic"], durable=True, name="sub")
        assert await receive_all(sub) == []


async def test_shared_subscription(broker: BrokerProcess, queue: str) -> None:
    topic = f"topic-{queue}"
    async with (
        await petrel.connect(broker.url, container_id="shared-app") as a,
        await petrel.connect(broker.url, container_id="shared-app") as b,
    ):
        first = await a.open_receiver(topic, capabilities=["topic"], shared=True, name="workers")
        second = await b.open_receiver(topic, capabilities=["topic"], shared=True, name="workers")
        publisher = await a.open_sender(topic)
        for n in range(6):
            await publisher.send(n)
        got_first, got_second = await asyncio.gather(receive_all(first), receive_all(second))
        assert sorted([*got_first, *got_second]) == list(range(6))
        assert got_first and got_second  # shared, not copied


async def test_global_shared_subscription(broker: BrokerProcess, queue: str) -> None:
    topic = f"topic-{queue}"
    async with (
        await petrel.connect(broker.url) as a,
        await petrel.connect(broker.url) as b,
    ):
        options = {"capabilities": ["topic"], "shared": "global", "name": "everyone"}
        first = await a.open_receiver(topic, **options)  # type: ignore[arg-type]
        second = await b.open_receiver(topic, **options)  # type: ignore[arg-type]
        publisher = await a.open_sender(topic)
        for n in range(4):
            await publisher.send(n)
        got = await asyncio.gather(receive_all(first), receive_all(second))
        assert sorted([*got[0], *got[1]]) == list(range(4))


async def test_request_response_through_the_petrel_broker(
    broker: BrokerProcess, queue: str
) -> None:
    async with (
        await petrel.connect(broker.url) as conn,
        await conn.serve(queue, lambda m: m.body.upper()),
    ):
        assert (await conn.request(queue, "shout", timeout=10)).body == "SHOUT"


async def test_a_refused_open_says_why() -> None:
    # The broker answers a connection over its limit with open and close together: the
    # client reports the broker's error, not that the connection closed as it opened.
    config = "[limits]\nmax_connections = 1\n"
    with run_broker(config) as busy:
        for _ in range(100):  # once the broker has seen run_broker's probe go
            try:
                first = await petrel.connect(busy.url, reconnect=False)
                break
            except ResourceLimitExceeded:
                await asyncio.sleep(0.05)
        async with first:
            with pytest.raises(ResourceLimitExceeded, match="at most 1 connections"):
                await petrel.connect(busy.url, reconnect=False)
            await (await first.open_sender("still.fine")).send("ok")  # undisturbed
