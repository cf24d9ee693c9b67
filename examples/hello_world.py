"""Hello world: send one message to a queue and receive it back.

    python examples/hello_world.py [URL]

URL defaults to $PETREL_URL, then amqp://localhost:5672 (start a broker with
``petrel broker --store memory``).
"""

from __future__ import annotations

import asyncio
import os
import sys

import petrel


async def main(url: str) -> None:
    async with await petrel.connect(url) as conn:
        async with await conn.open_sender("examples.hello") as sender:
            # Returns once the broker has accepted the message.
            await sender.send(petrel.Message("Hello, world!"))
        async with await conn.open_receiver("examples.hello") as receiver:
            delivery = await receiver.receive(timeout=10)
            print(delivery.message.body)
            await delivery.accept()


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1] if len(sys.argv) > 1 else os.getenv("PETREL_URL", "amqp://localhost:5672"))
    )
