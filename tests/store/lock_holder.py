"""A live broker's store, to be killed or frozen: the live-lock tests' subprocess.

    python tests/store/lock_holder.py URL LAPSE_TIMEOUT

Opens a PostgresStore at URL, takes the live lock, commits message ``held:1``,
prints ``LIVE <pid>`` and then holds the lock (pinging it) until killed.
"""

from __future__ import annotations

import asyncio
import os
import sys

from petrel.store import PostgresStore, QueueRecord, StoredMessage


async def main(url: str, lapse_timeout: float) -> None:
    store = PostgresStore(url, lapse_timeout=lapse_timeout)
    await store.open()
    await store.acquire_live_lock(poll_interval=0.05)
    store.save_queue(QueueRecord("held", "held", "anycast"))
    store.add(StoredMessage("held", 1, 4, None, 0, b"from the first live", 19))
    await store.commit()
    print(f"LIVE {os.getpid()}", flush=True)
    await store.lost_lock.wait()
    print("LOST", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
