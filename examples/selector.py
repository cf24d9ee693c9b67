"""Selectors: a receiver that takes only the messages matching a condition.

    python examples/selector.py [URL]

The selector (JMS syntax, sent as an ``apache.org:selector-filter:string``
filter) is evaluated by the broker against application properties and
header fields; non-matching messages stay for other receivers.
"""

from __future__ import annotations

import asyncio
import os
import sys

import petrel

QUEUE = "examples.orders"


async def main(url: str) -> None:
    async with await petrel.connect(url) as conn:
        async with await conn.open_sender(QUEUE) as sender:
            for n, (region, amount) in enumerate([("eu", 10), ("us", 250), ("eu", 900), ("ap", 5)]):
                await sender.send(
                    petrel.Message(
                        f"order {n}", application_properties={"region": region, "amount": amount}
                    )
                )
        big_eu = "region = 'eu' AND amount > 100"
        async with await conn.open_receiver(QUEUE, selector=big_eu) as receiver:
            delivery = await receiver.receive(timeout=10)
            print(f"{big_eu!r} matched: {delivery.message.body}")
            await delivery.accept()
        # The others are still in the queue.
        async with await conn.open_receiver(QUEUE, auto_accept=True) as rest:
            others = [(await rest.receive(timeout=10)).message.body for _ in range(3)]
            print("left for everyone else:", others)


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1] if len(sys.argv) > 1 else os.getenv("PETREL_URL", "amqp://localhost:5672"))
    )
