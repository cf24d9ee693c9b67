"""Request/response: a service answers on a queue, a client calls it.

    python examples/request_response.py [URL]

``conn.serve()`` answers each request sent to the address with the handler's
result; ``conn.request()`` sends a request with a dynamic reply-to address
and waits for the matching response (by correlation id).
"""

from __future__ import annotations

import asyncio
import os
import sys

import petrel

SERVICE = "examples.upper"


async def to_upper(request: petrel.Message) -> petrel.Message:
    return petrel.Message(str(request.body).upper())


async def main(url: str) -> None:
    async with (
        await petrel.connect(url) as service_conn,
        await petrel.connect(url) as client,
        await service_conn.serve(SERVICE, to_upper),
    ):
        for word in ["hello", "amqp", "world"]:
            response = await client.request(SERVICE, word, timeout=10)
            print(f"{word} -> {response.body}")
        # Requests can run concurrently; each gets its own answer.
        answers = await asyncio.gather(*(client.request(SERVICE, w) for w in "abc"))
        print("concurrent:", [a.body for a in answers])


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1] if len(sys.argv) > 1 else os.getenv("PETREL_URL", "amqp://localhost:5672"))
    )
