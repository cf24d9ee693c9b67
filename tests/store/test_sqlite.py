"""SqliteStore: what only the SQLite store does (its files and its file lock).

What both durable stores do is tested on each in ``test_durable``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from petrel.store import SqliteStore, StoreError

from .helpers import msg, pager_idle, queue, reopen


async def test_one_store_per_database(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    await store.open()
    with pytest.raises(StoreError, match="in use"):
        await SqliteStore(tmp_path).open()
    await store.acquire_live_lock()  # nothing to wait for: the file lock is ours
    await store.close()
    again = SqliteStore(tmp_path)
    await again.open()
    await again.close()


async def test_paging_file_lives_next_to_the_database_until_close(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    await store.open()
    store.save_queue(queue("q"))
    store.page_out(msg("q", 1))
    await pager_idle(store)
    paging_file = store.path.with_name("petrel-paging.db")
    assert paging_file.exists()
    await store.close()
    assert not paging_file.exists()
    assert (await reopen(tmp_path)).messages["q"] == []


async def test_path_is_a_directory_or_a_file(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "a" / "b")
    await store.open()
    await store.close()
    assert store.path == tmp_path / "a" / "b" / "petrel.db"
    assert store.path.is_file()

    store = SqliteStore(tmp_path / "broker.sqlite")
    await store.open()
    store.page_out(msg("q", 1))
    await pager_idle(store)
    assert (tmp_path / "broker-paging.sqlite").exists()
    await store.close()
    assert store.path == tmp_path / "broker.sqlite"
    assert store.path.is_file()
    assert not (tmp_path / "broker-paging.sqlite").exists()
