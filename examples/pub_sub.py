"""Publish/subscribe: every subscriber gets its own copy of each message.

    python examples/pub_sub.py [URL]

Subscribers attach to a topic (an address with multicast routing; the
``topic`` capability asks the broker to create it so).  The publisher sends
to the same address without knowing who listens.
"""

from __future__ import annotations

import asyncio
import os
import sys

import petrel

TOPIC = "examples.news"


async def subscriber(conn: petrel.Connection, name: str, ready: asyncio.Event, count: int) -> None:
    async with await conn.open_receiver(TOPIC, capabilities=["topic"], auto_accept=True) as sub:
        ready.set()
        for _ in range(count):
            delivery = await sub.receive(timeout=10)
            print(f"{name} got: {delivery.message.body}")


async def main(url: str) -> None:
    headlines = ["petrel 1.0 released", "AMQP everywhere", "brokers in Python"]
    async with await petrel.connect(url) as conn:
        readies = [asyncio.Event() for _ in range(2)]
        subscribers = [
            asyncio.create_task(subscriber(conn, f"subscriber-{i}", readies[i], len(headlines)))
            for i in range(2)
        ]
        for ready in readies:
            await ready.wait()  # subscribe before publishing: a topic keeps nothing for later
        async with await conn.open_sender(TOPIC) as publisher:
            for headline in headlines:
                await publisher.send(petrel.Message(headline, subject="news"))
        await asyncio.gather(*subscribers)


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1] if len(sys.argv) > 1 else os.getenv("PETREL_URL", "amqp://localhost:5672"))
    )
