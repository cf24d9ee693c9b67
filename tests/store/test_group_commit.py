"""Group commit: concurrent producers share transactions, and the loop never does the I/O."""

from __future__ import annotations

import asyncio
import itertools
import threading

from .helpers import StoreFactory, Trace, msg, seqs


async def test_concurrent_producers_share_transactions(store_factory: StoreFactory) -> None:
    trace = Trace()
    store = await store_factory.open(trace=trace)
    trace.clear()

    async def produce(seq: int) -> None:
        store.add(msg("q", seq))
        await store.commit()

    await asyncio.gather(*(produce(seq) for seq in range(1, 201)))
    # All 200 adds happen in one loop turn: one transaction (allow a little slack).
    assert store.transactions <= 3
    assert trace.count("BEGIN") == store.transactions
    assert trace.rows("INSERT INTO petrel_messages") == 200
    # Many rows to a statement (in one transaction, 128 + 32 + 32 + 8; at most 11 per
    # transaction of fewer than 256 rows), not one statement per row.
    assert trace.count("INSERT INTO petrel_messages") <= 11 * store.transactions < 40
    await store.close()
    contents = await store_factory.reopen(extra_queues=("q",))
    assert seqs(contents.messages["q"]) == list(range(1, 201))


async def test_writes_gather_while_a_transaction_is_in_flight(store_factory: StoreFactory) -> None:
    store = await store_factory.open()
    numbers = itertools.count(1)

    async def producer() -> None:
        for _ in range(20):
            store.add(msg("q", next(numbers)))
            await store.commit()

    await asyncio.gather(*(producer() for _ in range(50)))
    # 1000 messages, each awaited: the producers resume together after each commit
    # and fill the next batch together.
    assert store.transactions < 100
    await store.close()
    assert len((await store_factory.reopen(extra_queues=("q",))).messages["q"]) == 1000


async def test_without_group_commit_every_message_is_a_transaction(
    store_factory: StoreFactory,
) -> None:
    store = await store_factory.open(group_commit=False)

    async def produce(seq: int) -> None:
        store.add(msg("q", seq))
        await store.commit()

    await asyncio.gather(*(produce(seq) for seq in range(1, 51)))
    assert store.transactions == 50
    await store.close()


async def test_the_loop_thread_never_runs_sql(store_factory: StoreFactory) -> None:
    trace = Trace()
    store = await store_factory.open(trace=trace)
    loop_thread = threading.get_ident()
    resumed_on = set()

    async def produce(seq: int) -> None:
        store.add(msg("q", seq))
        store.page_out(msg("p", seq))
        await store.commit()
        resumed_on.add(threading.get_ident())

    for burst in range(5):
        await asyncio.gather(*(produce(burst * 100 + seq) for seq in range(100)))
        await store.load_data("q", [1, 2])
        _ = [m async for m in store.iter_messages("q")]
    await store.close()

    assert resumed_on == {loop_thread}
    threads = {ident for ident, _, _ in trace.calls}
    assert loop_thread not in threads
    # Every write to the database ran on one thread, the writer.
    writers = {
        (ident, name)
        for ident, name, sql in trace.calls
        if sql.startswith(("BEGIN", "INSERT INTO petrel_messages", "COMMIT"))
        and not name.startswith("petrel-pager")
    }
    assert len(writers) == 1
    assert next(iter(writers))[1].startswith("petrel-store-writer")
    readers = {name for _, name, sql in trace.calls if sql.startswith("SELECT seq")}
    assert readers
    assert all(name.startswith(("petrel-store-reader", "petrel-pager")) for name in readers)
