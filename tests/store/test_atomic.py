"""``store.atomic()``: a broker transaction's writes go in one SQL transaction, on SQLite
and PostgreSQL, even with group commit off (where every other write is its own)."""

from __future__ import annotations

from .helpers import StoreFactory, Trace, msg, seqs


async def test_the_work_of_a_block_is_one_transaction(store_factory: StoreFactory) -> None:
    trace = Trace()
    store = await store_factory.open(group_commit=False, trace=trace)
    store.add(msg("q", 1))
    store.add(msg("q", 2))
    await store.commit()
    before = store.transactions
    trace.clear()
    with store.atomic():
        store.remove("q", 1)  # accepted in the transaction
        store.set_delivery_count("q", 2, 3)  # modified in it
        for seq in range(10, 20):  # sent in it
            store.add(msg("q", seq))
    await store.commit()
    assert store.transactions == before + 1
    assert trace.count("BEGIN") == 1
    await store.close()
    contents = await store_factory.reopen(extra_queues=("q",))
    assert seqs(contents.messages["q"]) == [2, *range(10, 20)]
    assert contents.messages["q"][0].delivery_count == 3


async def test_outside_a_block_each_write_is_its_own(store_factory: StoreFactory) -> None:
    """What the block prevents: without it (and without group commit) the same writes
    are many transactions, so a crash could leave some of them."""
    store = await store_factory.open(group_commit=False)
    before = store.transactions
    for seq in range(10, 20):
        store.add(msg("q", seq))
    await store.commit()
    assert store.transactions == before + 10
    await store.close()
