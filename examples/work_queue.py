"""A work queue with competing consumers: each job goes to exactly one worker.

    python examples/work_queue.py [URL]

A producer sends 30 jobs; three workers share them.  Each worker takes one
job at a time (credit=1), so a slow worker does not hoard jobs, and accepts
a job only once it is done: a worker that dies mid-job leaves its job to
the others.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter

import petrel

QUEUE = "examples.jobs"
JOBS = 30


async def worker(conn: petrel.Connection, name: str, done: Counter[str], left: list[int]) -> None:
    async with await conn.open_receiver(QUEUE, credit=1) as receiver:
        while left[0] > 0:
            try:
                delivery = await receiver.receive(timeout=0.5)
            except petrel.Timeout:
                continue
            job = delivery.message.body
            await asyncio.sleep(0.001 * (job % 3))  # the work
            await delivery.accept()
            done[name] += 1
            left[0] -= 1


async def main(url: str) -> None:
    async with await petrel.connect(url) as conn:
        async with await conn.open_sender(QUEUE) as sender:
            # Many sends in flight at once; wait for all the outcomes together.
            outcomes = [await sender.send(petrel.Message(n), wait=False) for n in range(JOBS)]
            await asyncio.gather(*outcomes)
        print(f"sent {JOBS} jobs")
        done: Counter[str] = Counter()
        left = [JOBS]
        await asyncio.gather(*(worker(conn, f"worker-{i}", done, left) for i in range(3)))
        for name, count in sorted(done.items()):
            print(f"{name} did {count} jobs")
        print(f"all {sum(done.values())} jobs done")


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1] if len(sys.argv) > 1 else os.getenv("PETREL_URL", "amqp://localhost:5672"))
    )
