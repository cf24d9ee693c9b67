"""A producer to be killed: the crash test's subprocess.

    python tests/store/crash_writer.py sqlite DIR FIRST_SEQ
    python tests/store/crash_writer.py postgresql URL FIRST_SEQ

Opens the store (SQLite in DIR, or PostgreSQL at URL, taking the live lock) and,
with several concurrent producers, adds messages to queue ``crash`` numbered
from FIRST_SEQ. After a message's commit future has resolved it prints
``A <seq>``; every third acknowledged message is then removed (a consumer
accepted it) and, once that commit resolved, printed as ``R <seq>``. Runs until
killed. The body of a message is ``body(seq)``.
"""

from __future__ import annotations

import asyncio
import itertools
import sys

from petrel.store import MessageStore, QueueRecord, SqliteStore, StoredMessage

PRODUCERS = 8


def body(seq: int) -> bytes:
    return seq.to_bytes(8, "big") * (1 + seq % 40)


def make_store(kind: str, where: str) -> MessageStore:
    if kind == "sqlite":
        return SqliteStore(where)
    from petrel.store import PostgresStore

    return PostgresStore(where)


async def main(kind: str, where: str, first: int) -> None:
    store = make_store(kind, where)
    await store.open()
    await store.acquire_live_lock(poll_interval=0.05)
    store.save_queue(QueueRecord("crash", "crash", "anycast"))
    await store.commit()
    numbers = itertools.count(first)
    out = sys.stdout

    async def producer() -> None:
        while True:
            seq = next(numbers)
            data = body(seq)
            store.add(StoredMessage("crash", seq, seq % 10, None, 0, data, len(data)))
            await store.commit()
            out.write(f"A {seq}\n")
            out.flush()
            if seq % 3 == 0:
                store.remove("crash", seq)
                await store.commit()
                out.write(f"R {seq}\n")
                out.flush()

    await asyncio.gather(*(producer() for _ in range(PRODUCERS)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
