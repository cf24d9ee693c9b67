"""MemoryStore: keeps nothing, pages bodies out to a temporary file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from petrel.store import MemoryStore, StoreError

from .helpers import msg, pager_idle, queue


async def test_keeps_nothing(tmp_path: Path) -> None:
    store = MemoryStore(paging_dir=tmp_path)
    assert not store.durable
    await store.open()
    store.save_queue(queue("q"))
    store.add(msg("q", 1))
    store.set_delivery_count("q", 1, 2)
    store.move("q", 1, msg("dlq", 1))
    store.remove("dlq", 1)
    store.delete_queue("q")
    commit = store.commit()
    assert commit.done()
    await commit
    told: list[StoreError | None] = []
    store.when_committed(told.append)
    assert told == []
    await asyncio.sleep(0)
    assert told == [None]
    grouped: list[tuple[list[int], StoreError | None]] = []
    store.when_committed_each(lambda items, error: grouped.append((items, error)), 7)
    assert grouped == []
    await asyncio.sleep(0)
    assert grouped == [([7], None)]
    assert await store.load_queues() == []
    assert [m async for m in store.iter_messages("q")] == []
    assert await store.max_seq("q") is None
    assert await store.load_data("q", [1]) == {}
    assert store.backlog.ops == 0
    await store.close()
    assert list(tmp_path.iterdir()) == []  # never paged: never made a file


async def test_pages_bodies_out_to_a_temporary_file(tmp_path: Path) -> None:
    store = MemoryStore(paging_dir=tmp_path, max_backlog_bytes=3000)
    await store.open()
    for seq in range(1, 5):
        store.page_out(msg("q", seq, b"%d" % seq * 1000))
    store.page_out(msg("other", 1))
    assert store.backlog.nbytes == 4000 + len(b"other:1")
    assert store.backlog_full
    assert await store.load_data("q", [1, 2, 9]) == {1: b"1" * 1000, 2: b"2" * 1000}
    await pager_idle(store)
    assert store.backlog.nbytes == 0
    assert not store.backlog_full
    [paging_file] = tmp_path.iterdir()
    assert paging_file.name.startswith("petrel-paging-")
    assert await store.load_data("q", [1, 2, 9]) == {1: b"1" * 1000, 2: b"2" * 1000}
    store.remove("q", 1)
    store.move("q", 2, msg("dlq", 1))
    assert await store.load_data("q", [1, 2, 3]) == {3: b"3" * 1000}
    store.delete_queue("q")
    assert await store.load_data("q", [3, 4]) == {}
    assert await store.load_data("other", [1]) == {1: b"other:1"}
    await store.close()
    assert list(tmp_path.iterdir()) == []


async def test_closed_store_refuses_work(tmp_path: Path) -> None:
    store = MemoryStore(paging_dir=tmp_path)
    with pytest.raises(StoreError, match="not open"):
        store.commit()
    await store.open()
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        store.add(msg("q", 1))
    with pytest.raises(StoreError, match="opened once"):
        await store.open()
