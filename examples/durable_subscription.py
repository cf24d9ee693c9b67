"""A durable subscription: messages published while the subscriber is away wait for it.

    python examples/durable_subscription.py [URL]

A durable subscription is named by the receiver's link ``name`` together
with the connection's ``container_id``: reconnect with both and the
subscription, with what it collected, is still there.  ``detach()`` leaves
it; ``close()`` ends it.
"""

from __future__ import annotations

import asyncio
import os
import sys

import petrel

TOPIC = "examples.prices"
CONTAINER = "examples-durable-client"
SUBSCRIPTION = "price-watcher"


async def subscribe(url: str) -> petrel.Receiver:
    conn = await petrel.connect(url, container_id=CONTAINER)
    return await conn.open_receiver(TOPIC, name=SUBSCRIPTION, durable=True, capabilities=["topic"])


async def main(url: str) -> None:
    receiver = await subscribe(url)
    await receiver.detach()  # away for a while; the subscription stays
    await receiver.connection.close()

    async with (
        await petrel.connect(url) as publisher_conn,
        await publisher_conn.open_sender(TOPIC) as publisher,
    ):
        for price in (101.5, 102.25, 99.75):
            await publisher.send(petrel.Message({"symbol": "PTRL", "price": price}))
    print("published 3 prices while the subscriber was away")

    receiver = await subscribe(url)  # same container id and name: same subscription
    for _ in range(3):
        delivery = await receiver.receive(timeout=10)
        print("caught up:", delivery.message.body)
        await delivery.accept()
    await receiver.close()  # ends the subscription
    await receiver.connection.close()


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1] if len(sys.argv) > 1 else os.getenv("PETREL_URL", "amqp://localhost:5672"))
    )
