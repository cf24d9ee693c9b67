"""The durable stores (SQLite, PostgreSQL): what is written is what is recovered.

Every test runs on each kind through ``store_factory``: a fresh SQLite directory,
or a fresh schema on a real PostgreSQL server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from petrel.store import QueueRecord, StoredMessage, StoreError

from .helpers import StoreFactory, Trace, msg, pager_idle, queue, seqs


async def test_queues_and_messages_round_trip(store_factory: StoreFactory) -> None:
    store = await store_factory.open()
    store.save_queue(queue("orders", max_messages=10, dlq="dead"))
    store.save_queue(
        QueueRecord("news/sub1", "news", "multicast", durable_subscription=True, settings={})
    )
    # Added out of order, with every field set: recovered in seq order, as stored.
    for seq in (5, 1, 3, 2, 4):
        store.add(msg("orders", seq, priority=seq, expiry=1_700_000_000_000 + seq))
    store.add(msg("news/sub1", 7, b"\x00\xff" * 1000, delivery_count=3))
    store.add(msg("news/sub1", 2**62, b"", priority=9, expiry=2**62))  # extremes
    await store.commit()
    await store.close()

    contents = await store_factory.reopen()
    assert contents.queues == {
        "orders": QueueRecord(
            "orders", "addr/orders", "anycast", False, {"max_messages": 10, "dlq": "dead"}
        ),
        "news/sub1": QueueRecord("news/sub1", "news", "multicast", True, {}),
    }
    assert contents.messages["orders"] == [
        msg("orders", seq, priority=seq, expiry=1_700_000_000_000 + seq) for seq in range(1, 6)
    ]
    assert contents.messages["news/sub1"] == [
        msg("news/sub1", 7, b"\x00\xff" * 1000, delivery_count=3),
        msg("news/sub1", 2**62, b"", priority=9, expiry=2**62),
    ]


async def test_changes_are_recovered(store_factory: StoreFactory) -> None:
    store = await store_factory.open()
    for name in ("a", "b", "dlq", "gone"):
        store.save_queue(queue(name))
    for seq in range(1, 6):
        store.add(msg("a", seq))
        store.add(msg("gone", seq))
    await store.commit()

    store.remove("a", 2)
    store.set_delivery_count("a", 3, 2)
    store.move("a", 4, msg("dlq", 1, b"dead-lettered", delivery_count=5))
    store.delete_queue("gone")
    store.save_queue(queue("b", max_bytes=100))  # replaced
    await store.commit()
    await store.close()

    contents = await store_factory.reopen(extra_queues=("gone",))
    assert sorted(contents.queues) == ["a", "b", "dlq"]
    assert contents.queues["b"].settings == {"max_bytes": 100}
    assert contents.messages["a"] == [msg("a", 1), msg("a", 3, delivery_count=2), msg("a", 5)]
    assert contents.messages["dlq"] == [msg("dlq", 1, b"dead-lettered", delivery_count=5)]
    assert contents.messages["gone"] == []


async def test_close_writes_what_is_pending(store_factory: StoreFactory) -> None:
    store = await store_factory.open()
    store.save_queue(queue("q"))
    store.add(msg("q", 1))
    await store.close()  # no commit awaited
    assert (await store_factory.reopen()).messages["q"] == [msg("q", 1)]


async def test_add_and_remove_in_one_batch_never_reach_the_disk(
    store_factory: StoreFactory,
) -> None:
    trace = Trace()
    store = await store_factory.open(trace=trace)
    store.save_queue(queue("q"))
    await store.commit()
    trace.clear()

    for seq in range(1, 11):
        store.add(msg("q", seq))
    for seq in range(1, 11):
        store.remove("q", seq)
    await store.commit()
    # Nothing was left to write: not even a transaction.
    assert [sql for _, thread, sql in trace.calls if "writer" in thread] == []

    for seq in range(11, 21):
        store.add(msg("q", seq))
    for seq in range(11, 16):
        store.remove("q", seq)
    store.set_delivery_count("q", 20, 9)  # folded into the insert
    await store.commit()
    assert trace.count("BEGIN") == 1
    assert trace.rows("INSERT INTO petrel_messages") == 5
    assert trace.count("DELETE") == 0
    assert trace.count("UPDATE") == 0
    await store.close()
    contents = await store_factory.reopen()
    assert seqs(contents.messages["q"]) == [16, 17, 18, 19, 20]
    assert contents.messages["q"][-1].delivery_count == 9


async def test_big_batches_write_every_row_in_few_statements(
    store_factory: StoreFactory,
) -> None:
    """Rows go many to a statement: every size of multi-row insert and of delete list
    is used here, with a remainder, over two queues, and nothing is lost or left."""
    trace = Trace()
    store = await store_factory.open(trace=trace)
    store.save_queue(queue("a"))
    store.save_queue(queue("b"))
    await store.commit()
    trace.clear()
    for seq in range(1, 1201):
        store.add(msg("a", seq, priority=seq % 10, expiry=seq if seq % 2 else None))
    for seq in range(1, 4):  # 1203 rows in all: 9 * 128 + 32 + 2 * 8 + 2 + 1
        store.add(msg("b", seq))
    await store.commit()
    assert trace.rows("INSERT INTO petrel_messages") == 1203
    assert trace.count("INSERT INTO petrel_messages") <= 20
    trace.clear()
    # 800 of a's (one IN list of 500, and 300 padded to 500), 2 of b's, in one batch.
    removed = [seq for seq in range(1, 1201) if seq % 3]
    for seq in removed:
        store.remove("a", seq)
    store.remove("b", 1)
    store.remove("b", 3)
    await store.commit()
    assert trace.count("DELETE FROM petrel_messages") <= 3
    await store.close()
    contents = await store_factory.reopen()
    kept = contents.messages["a"]
    assert seqs(kept) == [seq for seq in range(1, 1201) if seq % 3 == 0]
    assert all(m.priority == m.seq % 10 for m in kept)
    assert all(m.expiry == (m.seq if m.seq % 2 else None) for m in kept)
    assert all(m.data == f"a:{m.seq}".encode() for m in kept)
    assert seqs(contents.messages["b"]) == [2]


async def test_move_is_one_transaction(store_factory: StoreFactory) -> None:
    trace = Trace()
    store = await store_factory.open(trace=trace)
    store.add(msg("q", 1))
    await store.commit()
    trace.clear()
    store.move("q", 1, msg("dlq", 1))
    await store.commit()
    written = [sql.split()[0] for _, thread, sql in trace.calls if "writer" in thread]
    # (PostgreSQL reads its fencing row first: see test_postgresql.)
    assert [word for word in written if word != "SELECT"] == ["BEGIN", "DELETE", "INSERT", "COMMIT"]
    await store.close()


async def test_delete_and_recreate_a_queue_in_one_batch(store_factory: StoreFactory) -> None:
    store = await store_factory.open()
    store.save_queue(queue("q", version=1))
    store.add(msg("q", 1, b"old"))
    store.add(msg("q", 2, b"old"))
    await store.commit()
    store.add(msg("q", 3, b"old, pending"))
    store.delete_queue("q")
    store.save_queue(queue("q", version=2))
    store.add(msg("q", 1, b"new"))  # numbering starts afresh in the new queue
    await store.commit()
    await store.close()
    contents = await store_factory.reopen()
    assert contents.queues["q"].settings == {"version": 2}
    assert contents.messages["q"] == [msg("q", 1, b"new")]


async def test_iter_messages_in_batches_and_without_data(store_factory: StoreFactory) -> None:
    store = await store_factory.open()
    store.save_queue(queue("q"))
    store.save_queue(queue("other"))
    for seq in range(1, 51):
        store.add(msg("q", seq * 10, b"x" * seq))
        store.add(msg("other", seq))
    await store.close()

    store = store_factory.new()
    await store.open()  # reading needs no live lock
    messages = [m async for m in store.iter_messages("q", batch=7)]
    assert seqs(messages) == [seq * 10 for seq in range(1, 51)]
    bare = [m async for m in store.iter_messages("q", with_data=False, batch=50)]
    assert [(m.data, m.size) for m in bare] == [(None, seq) for seq in range(1, 51)]
    assert await store.load_data("q", [10, 20, 25, 500]) == {10: b"x", 20: b"xx", 500: b"x" * 50}
    assert await store.load_data("q", list(range(10, 501, 10)) * 30) == {
        seq * 10: b"x" * seq for seq in range(1, 51)
    }  # long lists are chunked (SQLite) or one array (PostgreSQL)
    assert await store.max_seq("q") == 500
    assert await store.max_seq("nothing") is None
    with pytest.raises(ValueError, match="batch"):
        [m async for m in store.iter_messages("q", batch=0)]
    # Leaving early is fine.
    async for message in store.iter_messages("q", batch=3):
        assert message.seq == 10
        break
    await store.close()


async def test_load_data_sees_pending_in_flight_and_committed_writes(
    store_factory: StoreFactory,
) -> None:
    store = await store_factory.open()
    store.add(msg("q", 1))
    assert await store.load_data("q", [1]) == {1: b"q:1"}  # pending or being written
    await store.commit()
    assert await store.load_data("q", [1]) == {1: b"q:1"}  # on disk
    # A write made while another is in flight.
    store.add(msg("q", 2))
    await asyncio.sleep(0)
    store.add(msg("q", 3))
    assert await store.load_data("q", [1, 2, 3, 4]) == {1: b"q:1", 2: b"q:2", 3: b"q:3"}
    await store.close()


async def test_page_out_keeps_bodies_until_removed_and_not_after_restart(
    store_factory: StoreFactory,
) -> None:
    trace = Trace()
    store = await store_factory.open(trace=trace)
    trace.clear()
    store.save_queue(queue("q"))
    store.add(msg("q", 1))  # durable
    for seq in range(2, 6):  # not durable, paged out
        store.page_out(msg("q", seq, b"paged %d" % seq))
    store.page_out(msg("q", 6))
    store.remove("q", 6)  # cancelled before it was written
    assert await store.load_data("q", range(1, 7)) == {
        1: b"q:1",
        **{seq: b"paged %d" % seq for seq in range(2, 6)},
    }
    await store.commit()
    await pager_idle(store)
    assert await store.load_data("q", [3, 4]) == {3: b"paged 3", 4: b"paged 4"}
    store.remove("q", 3)
    store.set_delivery_count("q", 4, 2)  # ignored: not durable
    store.delete_queue("q")
    assert await store.load_data("q", [2, 3, 4, 5]) == {}
    await store.close()
    # Paging never touched the durable database (its thread writes elsewhere).
    durable_writes = [
        sql for _, thread, sql in trace.calls if "writer" in thread and "petrel_messages" in sql
    ]
    assert len(durable_writes) == 2  # the insert of q:1, the delete of queue q

    store = await store_factory.open()
    store.save_queue(queue("q"))
    store.page_out(msg("q", 9))
    await store.close()
    contents = await store_factory.reopen()
    assert contents.messages["q"] == []


async def test_backlog_is_what_is_not_yet_written(store_factory: StoreFactory) -> None:
    store = await store_factory.open(max_backlog_ops=1000, max_backlog_bytes=10_000)
    assert store.backlog.ops == store.backlog.nbytes == 0
    assert not store.backlog_full
    for seq in range(1, 12):
        store.add(msg("q", seq, b"x" * 1000))
    assert store.backlog.ops == 11
    assert store.backlog.nbytes == 11_000
    assert store.backlog_full
    await store.commit()
    assert store.backlog.ops == store.backlog.nbytes == 0
    assert not store.backlog_full
    await store.close()


async def test_each_commit_is_its_own_future(store_factory: StoreFactory) -> None:
    store = await store_factory.open()
    store.add(msg("q", 1))
    first, second = store.commit(), store.commit()
    assert first is not second
    first.cancel()
    await second
    # With nothing pending, commit is already done.
    assert store.commit().done()
    await store.close()


async def test_when_committed_calls_back_once_the_batch_is_written(
    store_factory: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    store = await store_factory.open()
    told: list[tuple[str, StoreError | None]] = []

    def record(name: str) -> Callable[[StoreError | None], None]:
        def callback(error: StoreError | None) -> None:
            told.append((name, error))

        return callback

    def broken(error: StoreError | None) -> None:
        raise RuntimeError("a broken callback")

    store.add(msg("q", 1))
    store.when_committed(record("first"))
    store.when_committed(broken)
    store.add(msg("q", 2))
    store.when_committed(record("second"))
    assert told == []  # never from inside the call
    await store.commit()
    assert told == [("first", None), ("second", None)]  # in order, past the broken one
    assert "a commit callback of the message store failed" in caplog.text

    # Nothing pending, nothing in flight: still later, never inside the call.
    store.when_committed(record("idle"))
    assert told[-1][0] == "second"
    await asyncio.sleep(0)
    assert told[-1] == ("idle", None)

    # Added and removed in one batch: nothing to write, the callback waits for the
    # batch in flight (if any) and is told all the same.
    store.add(msg("q", 3))
    await asyncio.sleep(0)  # q:3's batch is in flight
    store.add(msg("q", 4))
    store.when_committed(record("cancelled"))
    store.remove("q", 4)
    await store.commit()
    await asyncio.sleep(0)
    assert told[-1] == ("cancelled", None)
    await store.close()
    assert seqs((await store_factory.reopen(extra_queues=("q",))).messages["q"]) == [1, 2, 3]


async def test_when_committed_each_groups_a_batch_per_callback(
    store_factory: StoreFactory,
) -> None:
    """One call per batch and callback, with that batch's items in order: what the
    broker's producer links use instead of a closure per durable delivery."""
    store = await store_factory.open()
    told: list[tuple[str, list[int], StoreError | None]] = []

    class Link:
        def __init__(self, name: str) -> None:
            self.name = name

        def committed(self, items: list[int], error: StoreError | None) -> None:
            told.append((self.name, items, error))

    a, b = Link("a"), Link("b")
    for seq in (1, 2, 3):
        store.add(msg("q", seq))
        # A new bound method each time: equal ones are one group.
        store.when_committed_each((a if seq != 2 else b).committed, seq)
    assert told == []  # never from inside the call
    await asyncio.sleep(0)  # the batch of 1-3 is in flight
    store.add(msg("q", 4))
    store.when_committed_each(a.committed, 4)  # the next batch: a group of its own
    await store.commit()
    await asyncio.sleep(0)
    assert told == [("a", [1, 3], None), ("b", [2], None), ("a", [4], None)]

    # Added and removed in one batch, nothing in flight: told all the same, later.
    told.clear()
    store.add(msg("q", 5))
    store.when_committed_each(a.committed, 5)
    store.remove("q", 5)
    assert told == []
    await store.commit()
    for _ in range(2):  # the empty batch is flushed at the end of a turn, told the next
        await asyncio.sleep(0)
    assert told == [("a", [5], None)]
    # Nothing pending: later, never inside the call.
    store.when_committed_each(b.committed, 6)
    assert told == [("a", [5], None)]
    await asyncio.sleep(0)
    assert told[-1] == ("b", [6], None)
    await store.close()


async def test_when_committed_each_is_told_of_a_failed_write(store_factory: StoreFactory) -> None:
    store = await store_factory.open()
    told: list[tuple[list[int], StoreError | None]] = []

    def committed(items: list[int], error: StoreError | None) -> None:
        told.append((items, error))

    store.add(msg("q", 1))
    await store.commit()
    store.add(msg("q", 1, b"again"))  # breaks the contract: the insert fails
    store.when_committed_each(committed, 1)
    store.when_committed_each(committed, 2)
    with pytest.raises(StoreError):
        await store.commit()
    assert [items for items, _ in told] == [[1, 2]]
    assert isinstance(told[0][1], StoreError)
    store.when_committed_each(committed, 3)  # the store has failed: told next turn
    await asyncio.sleep(0)
    assert told[-1][0] == [3] and isinstance(told[-1][1], StoreError)
    with pytest.raises(StoreError):
        await store.close()


async def test_when_committed_is_told_of_a_failed_write(store_factory: StoreFactory) -> None:
    store = await store_factory.open()
    told: list[StoreError | None] = []
    store.add(msg("q", 1))
    await store.commit()
    store.add(msg("q", 1, b"again"))  # breaks the contract: the insert fails
    store.when_committed(told.append)
    with pytest.raises(StoreError):
        await store.commit()
    assert len(told) == 1 and isinstance(told[0], StoreError)
    store.when_committed(told.append)  # the store has failed: told at once (next turn)
    await asyncio.sleep(0)
    assert len(told) == 2 and isinstance(told[1], StoreError)
    assert "has failed" in str(told[1])
    with pytest.raises(StoreError):
        await store.close()


async def test_a_failed_write_fails_the_store(store_factory: StoreFactory) -> None:
    store = await store_factory.open()
    store.add(msg("q", 1))
    await store.commit()
    store.add(msg("q", 1, b"again"))  # breaks the contract: the insert fails
    with pytest.raises(StoreError, match=r"(?i)unique"):
        await store.commit()
    store.add(msg("q", 2))
    with pytest.raises(StoreError, match="has failed"):
        await store.commit()
    with pytest.raises(StoreError):
        await store.close()
    assert (await store_factory.reopen(extra_queues=("q",))).messages["q"] == [msg("q", 1)]


async def test_misuse_is_refused(store_factory: StoreFactory) -> None:
    store = store_factory.new()
    with pytest.raises(StoreError, match="not open"):
        store.add(msg("q", 1))
    with pytest.raises(StoreError, match="not open"):
        await store.acquire_live_lock()
    await store.open()
    await store.acquire_live_lock()
    await store.acquire_live_lock()  # already held: at once
    with pytest.raises(ValueError, match="data"):
        store.add(StoredMessage("q", 1, 4, None, 0, None, 10))
    with pytest.raises(ValueError, match="twice"):
        store.add(msg("q", 2))
        store.add(msg("q", 2))
    with pytest.raises(ValueError, match="settings"):
        store.save_queue(queue("q", policy=object()))
    with pytest.raises(ValueError, match="routing"):
        store.save_queue(QueueRecord("q", "q", "broadcast"))
    with pytest.raises(StoreError, match="opened once"):
        await store.open()
    await store.close()
    await store.close()
    for call in (lambda: store.remove("q", 1), store.commit, lambda: store.page_out(msg("q", 3))):
        with pytest.raises(StoreError, match="closed"):
            call()
    with pytest.raises(StoreError, match="closed"):
        await store.load_queues()
