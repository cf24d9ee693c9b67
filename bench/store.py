"""Message store benchmarks: write throughput with group commit, and recovery.

Prints one JSON line per case:

- ``write``: ``producers`` coroutines each add a message and await its commit,
  over and over (what a broker does for unsettled durable transfers), with
  group commit and with one transaction per message (``naive``). Reports
  messages/s, transactions, and commit latency p50/p99.
- ``loop_cost``: what the event loop pays per durable message, apart from the
  writes (which run on the store's thread): building the ``StoredMessage``,
  ``add``, a ``when_committed_each`` callback, and later the ``remove``, timed
  around the calls for ``--writes`` messages at a time, medians of 15 rounds,
  in µs per message. A broker's loop makes these calls for each durable
  message it takes and delivers.
- ``recover``: a database of ``--count`` messages (default 1,000,000) of
  ``--size`` bytes is read back in seq order, in a fresh process, keeping every
  :class:`StoredMessage` in a list as a broker would; with and without bodies.
  Reports seconds and peak RSS (``ru_maxrss``) before and after. Python's
  cyclic GC costs a good part of that time for a million new objects, so one
  case runs with the GC off during recovery, as a broker may choose to.

``--store postgresql`` runs the same cases on PostgreSQL: on ``--url`` if given
(each case in a schema of its own, dropped afterwards), else on a throwaway
cluster started for the run from Debian's server binaries, with ``fsync`` on
(see ``tests/helpers/postgres.py``). Its stores take the live lock, as a broker's
would, so the writes pay for the fencing read too.

Usage: ``python bench/store.py [--store sqlite|postgresql] [--url URL] [--count N]
[--size B] [--writes N] [--producers P] [--dir D]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from petrel.store import MessageStore, QueueRecord, SqliteStore, StoredMessage

ROOT = Path(__file__).resolve().parent.parent


def make_store(kind: str, where: str, **options: object) -> MessageStore:
    """A store on ``where``: an SQLite directory, or a PostgreSQL URL."""
    if kind == "sqlite":
        return SqliteStore(where, **options)  # type: ignore[arg-type]
    from petrel.store import PostgresStore

    return PostgresStore(where, **options)  # type: ignore[arg-type]


@contextmanager
def fresh(kind: str, where: str) -> Iterator[str]:
    """An empty database: ``where`` emptied (SQLite), or a new schema there (PostgreSQL)."""
    if kind == "sqlite":
        shutil.rmtree(where, ignore_errors=True)
        yield where
        return
    sys.path.insert(0, str(ROOT))
    from tests.helpers.postgres import fresh_schema

    with fresh_schema(where) as url:
        yield url


def server(url: str | None) -> AbstractContextManager[str]:
    """The PostgreSQL URL: ``url``, or a throwaway cluster's."""
    if url is not None:
        return nullcontext(url)
    sys.path.insert(0, str(ROOT))
    from tests.helpers.postgres import postgres_server

    return postgres_server(fsync=True)


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def write_case(
    kind: str, where: str, producers: int, total: int, size: int, group: bool
) -> None:
    store = make_store(kind, where, group_commit=group)
    await store.open()
    await store.acquire_live_lock()
    store.save_queue(QueueRecord("bench", "bench", "anycast"))
    await store.commit()
    body = b"x" * size
    latencies: list[float] = []
    per_producer = total // producers
    counter = iter(range(1, total + 1))

    async def producer() -> None:
        for _ in range(per_producer):
            seq = next(counter)
            start = time.perf_counter()
            store.add(StoredMessage("bench", seq, 4, None, 0, body, size))
            await store.commit()
            latencies.append(time.perf_counter() - start)

    transactions = store.transactions  # type: ignore[attr-defined]
    start = time.perf_counter()
    await asyncio.gather(*(producer() for _ in range(producers)))
    elapsed = time.perf_counter() - start
    transactions = store.transactions - transactions  # type: ignore[attr-defined]
    await store.close()
    done = per_producer * producers
    emit(
        name="write",
        store=kind,
        mode="group" if group else "naive",
        producers=producers,
        messages=done,
        size=size,
        msgs_per_s=round(done / elapsed),
        transactions=transactions,
        msgs_per_transaction=round(done / transactions, 1),
        p50_ms=round(percentile(latencies, 0.5) * 1e3, 3),
        p99_ms=round(percentile(latencies, 0.99) * 1e3, 3),
    )


async def loop_cost(kind: str, where: str, batch: int, size: int, rounds: int = 15) -> None:
    store = make_store(kind, where)
    await store.open()
    await store.acquire_live_lock()
    body = b"x" * size
    told = [0]

    def committed(items: list[object], error: object) -> None:
        told[0] += len(items)

    parts: dict[str, list[float]] = {"message": [], "add": [], "callback": [], "remove": []}
    seq = 0
    clock = time.perf_counter
    for _ in range(rounds):
        seqs = range(seq, seq + batch)
        seq += batch
        t0 = clock()
        messages = [StoredMessage("bench", n, 4, None, 0, body, size) for n in seqs]
        t1 = clock()
        for message in messages:
            store.add(message)
        t2 = clock()
        for n in seqs:
            store.when_committed_each(committed, n)
        t3 = clock()
        await store.commit()
        t4 = clock()
        for n in seqs:
            store.remove("bench", n)
        t5 = clock()
        await store.commit()
        for part, spent in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t5 - t4), strict=True):
            parts[part].append(spent / batch * 1e6)
    await store.close()
    assert told[0] == rounds * batch, "every callback was told"
    medians = {f"{part}_us": round(percentile(values, 0.5), 3) for part, values in parts.items()}
    emit(
        name="loop_cost",
        store=kind,
        messages=batch,
        rounds=rounds,
        size=size,
        **medians,
        total_us=round(sum(medians.values()), 3),
    )


async def populate(kind: str, where: str, count: int, size: int) -> None:
    store = make_store(kind, where)
    await store.open()
    await store.acquire_live_lock()
    store.save_queue(QueueRecord("bench", "bench", "anycast"))
    body = b"y" * size
    start = time.perf_counter()
    for seq in range(1, count + 1):
        store.add(StoredMessage("bench", seq, seq % 10, None, 0, body, size))
        if seq % 20_000 == 0:
            await store.commit()
    await store.commit()
    elapsed = time.perf_counter() - start
    await store.close()
    if isinstance(store, SqliteStore):
        db_mb = store.path.stat().st_size / 2**20
    else:
        import psycopg

        with psycopg.connect(where) as con:
            row = con.execute("SELECT pg_total_relation_size('petrel_messages')").fetchone()
        db_mb = row[0] / 2**20 if row else 0
    emit(
        name="populate",
        store=kind,
        messages=count,
        size=size,
        seconds=round(elapsed, 2),
        msgs_per_s=round(count / elapsed),
        db_mb=round(db_mb, 1),
    )


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def recover(kind: str, where: str, with_data: bool, gc_off: bool) -> None:
    if kind == "postgresql":
        import psycopg  # noqa: F401 - its import is not what recovery costs

    rss_before = rss_mb()
    if gc_off:
        gc.disable()  # what a broker may do while it rebuilds its queues
    start = time.perf_counter()
    store = make_store(kind, where)
    await store.open()
    kept: dict[str, list[StoredMessage]] = {}
    for queue in await store.load_queues():
        messages = kept[queue.name] = []
        messages.extend([m async for m in store.iter_messages(queue.name, with_data=with_data)])
        await store.max_seq(queue.name)
    elapsed = time.perf_counter() - start
    if gc_off:
        gc.freeze()  # recovered messages live long: keep them out of later collections
        gc.enable()
    rss_after = rss_mb()
    await store.close()
    count = sum(map(len, kept.values()))
    emit(
        name="recover",
        store=kind,
        with_data=with_data,
        gc="off" if gc_off else "on",
        messages=count,
        seconds=round(elapsed, 2),
        msgs_per_s=round(count / elapsed),
        rss_before_mb=round(rss_before, 1),
        rss_peak_mb=round(rss_after, 1),
        bytes_per_message=round((rss_after - rss_before) * 2**20 / max(count, 1)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--url", help="PostgreSQL URL (default: start a throwaway cluster)")
    parser.add_argument("--count", type=int, default=1_000_000, help="messages to recover")
    parser.add_argument("--size", type=int, default=100, help="message size in bytes")
    parser.add_argument("--writes", type=int, default=5_000, help="messages per write case")
    parser.add_argument("--producers", type=int, default=100, help="concurrent producers")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    parser.add_argument("--recover-only", help=argparse.SUPPRESS)
    parser.add_argument("--no-data", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-gc", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    kind = args.store

    if args.recover_only is not None:  # the child process of a recover case
        asyncio.run(recover(kind, args.recover_only, not args.no_data, args.no_gc))
        return

    root = Path(tempfile.mkdtemp(prefix="petrel-bench-store-", dir=args.dir))
    try:
        with server(args.url) if kind == "postgresql" else nullcontext(str(root)) as base:

            def place(name: str) -> AbstractContextManager[str]:
                return fresh(kind, str(root / name) if kind == "sqlite" else base)

            for producers in (1, args.producers):
                for group in (False, True):
                    writes = args.writes if producers > 1 or group else args.writes // 5
                    with place("write") as where:
                        asyncio.run(write_case(kind, where, producers, writes, args.size, group))
            with place("loop") as where:
                asyncio.run(loop_cost(kind, where, args.writes, args.size))
            with place("recover") as where:
                asyncio.run(populate(kind, where, args.count, args.size))
                for flags in ([], ["--no-gc"], ["--no-data"]):
                    command = [sys.executable, __file__, "--store", kind, "--recover-only", where]
                    subprocess.run([*command, *flags], check=True, env=os.environ)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
