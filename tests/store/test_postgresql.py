"""PostgresStore: what only the shared store does — connecting, its schema in a shared
database, and the live lock of a live/backup pair — on a real PostgreSQL server.

What both durable stores do is tested on each in ``test_durable``, ``test_group_commit``,
``test_model`` and ``test_crash``. No test here fails on a duration: timeouts only
guard against hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from petrel.store import QueueRecord, StoreError
from tests.helpers.postgres import fresh_schema
from tests.helpers.servers import free_port

from .helpers import msg, queue, read_back

psycopg = pytest.importorskip("psycopg")
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402

from petrel.store.postgresql import LIVE_LOCK_CLASS, PostgresStore  # noqa: E402

HOLDER = Path(__file__).with_name("lock_holder.py")
#: Hang guards, not expectations.
HANG = 60.0


@pytest.fixture
def url(postgres_url: str) -> Iterator[str]:
    with fresh_schema(postgres_url) as schema_url:
        yield schema_url


def sql(url: str, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run one statement on a connection of its own; its rows (if any)."""
    with psycopg.connect(url, autocommit=True) as con:
        cursor = con.execute(statement, params or None)
        return cursor.fetchall() if cursor.description else []


def terminate(url: str, pid: int) -> None:
    """End a backend, as an administrator (or a network fault) would."""
    assert sql(url, "SELECT pg_terminate_backend(%s)", (pid,)) == [(True,)]


def lock_pid(store: PostgresStore) -> int:
    assert store._lock_con is not None
    return store._lock_con.con.info.backend_pid


async def live_store(url: str, **options: object) -> PostgresStore:
    store = PostgresStore(url, **options)  # type: ignore[arg-type]
    await store.open()
    await store.acquire_live_lock(poll_interval=0.05)
    return store


@contextlib.asynccontextmanager
async def holder(url: str, lapse_timeout: float = 5.0) -> AsyncIterator[asyncio.subprocess.Process]:
    """A live broker's store in a subprocess (``lock_holder.py``), once it is live."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HOLDER),
        url,
        str(lapse_timeout),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), HANG)
        if not line.startswith(b"LIVE"):
            err = await asyncio.wait_for(process.stderr.read(), HANG)
            pytest.fail(f"the holder did not become live: {line!r} {err.decode()}")
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(process.communicate(), HANG)


async def waiting(task: asyncio.Task[None], seconds: float) -> bool:
    """True if ``task`` is still waiting after ``seconds``."""
    await asyncio.wait({task}, timeout=seconds)
    return not task.done()


# -- connecting and opening ----------------------------------------------------------


async def test_unreachable_server_is_a_clear_error_without_the_password() -> None:
    url = f"postgresql://petrel:s3cret@127.0.0.1:{free_port()}/petrel"
    with pytest.raises(StoreError, match="cannot connect") as raised:
        await PostgresStore(url, connect_timeout=5).open()
    assert "127.0.0.1" in str(raised.value)
    assert "s3cret" not in str(raised.value)


async def test_authentication_failure_is_a_clear_error(url: str) -> None:
    bad = make_conninfo(url, user="petrel_no_such_role", password="s3cret")
    with pytest.raises(StoreError, match="authentication failed") as raised:
        await PostgresStore(bad).open()
    assert "s3cret" not in str(raised.value)


async def test_missing_database_is_a_clear_error(url: str) -> None:
    with pytest.raises(StoreError, match="no such database"):
        await PostgresStore(make_conninfo(url, dbname="petrel_no_such_db")).open()


async def test_garbage_url() -> None:
    with pytest.raises(StoreError, match="not a PostgreSQL connection URL"):
        PostgresStore("postgresql://host/db?no_such_option=1")


async def test_newer_schema_is_refused_and_left_alone(url: str) -> None:
    store = await live_store(url)
    store.add(msg("q", 1))
    await store.close()
    sql(url, "UPDATE petrel_schema SET version = version + 1")
    with pytest.raises(StoreError, match="newer Petrel"):
        await PostgresStore(url).open()
    assert sql(url, "SELECT seq, data FROM petrel_messages") == [(1, b"q:1")]


async def test_foreign_petrel_tables_are_refused(url: str) -> None:
    sql(url, "CREATE TABLE petrel_messages (id INTEGER)")
    with pytest.raises(StoreError, match="not a Petrel store"):
        await PostgresStore(url).open()
    assert sql(url, "SELECT count(*) FROM petrel_messages") == [(0,)]


async def test_missing_tables_are_refused(url: str) -> None:
    store = PostgresStore(url)
    await store.open()
    await store.close()
    sql(url, "DROP TABLE petrel_live")
    with pytest.raises(StoreError, match="unknown schema"):
        await PostgresStore(url).open()


async def test_shares_the_database_with_other_tables(url: str) -> None:
    sql(url, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)")
    store = await live_store(url)
    store.add(msg("q", 1))
    await store.close()
    assert sql(url, "SELECT count(*) FROM accounts") == [(0,)]


async def test_a_search_path_without_a_schema_is_refused(url: str) -> None:
    nowhere = make_conninfo(url, options="-csearch_path=petrel_no_such_schema")
    with pytest.raises(StoreError, match="no schema"):
        await PostgresStore(nowhere).open()


async def test_stores_opening_together_create_the_tables_once(url: str) -> None:
    stores = [PostgresStore(url) for _ in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    for store in stores:
        await store.close()
    assert sql(url, "SELECT version FROM petrel_schema") == [(1,)]


async def test_synchronous_commit_is_forced_on(url: str) -> None:
    options = f"{conninfo_to_dict(url)['options']} -csynchronous_commit=off"
    store = await live_store(make_conninfo(url, options=options))
    assert store._wcon is not None
    assert store._wcon.execute("SHOW synchronous_commit").fetchone() == ("on",)
    await store.close()


async def test_the_reader_reconnects(url: str) -> None:
    store = await live_store(url)
    store.save_queue(queue("q"))
    await store.commit()
    assert store._rcon is not None
    terminate(url, store._rcon.con.info.backend_pid)
    assert [record.name for record in await store.load_queues()] == ["q"]
    await store.close()


def test_psycopg_is_imported_only_for_postgres_store() -> None:
    code = (
        "import sys, petrel.store; assert 'psycopg' not in sys.modules;"
        "petrel.store.PostgresStore; assert 'psycopg' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=HANG)


# -- the live lock -------------------------------------------------------------------


async def test_writes_need_the_live_lock(url: str) -> None:
    store = PostgresStore(url)
    await store.open()
    assert not store.is_live
    with pytest.raises(StoreError, match="not live"):
        store.add(msg("q", 1))
    with pytest.raises(StoreError, match="not live"):
        store.save_queue(queue("q"))
    assert await store.load_queues() == []  # reading needs no lock
    await store.acquire_live_lock()
    assert store.is_live
    assert store.epoch == 1
    rows = sql(url, "SELECT classid, objid FROM pg_locks WHERE locktype = 'advisory' AND granted")
    assert (LIVE_LOCK_CLASS, store._lock_key & 0xFFFFFFFF) in rows
    await store.close()


async def test_backup_takes_over_when_the_live_process_is_killed(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "petrel.store")
    backup = PostgresStore(url)
    await backup.open()
    async with holder(url) as live:
        task = asyncio.create_task(backup.acquire_live_lock(poll_interval=0.1))
        assert await waiting(task, 1.0)
        assert f"pid {live.pid}" in caplog.text  # who holds it is logged
        with pytest.raises(StoreError, match="not live"):
            backup.add(msg("q", 1))
        live.send_signal(signal.SIGKILL)
        await asyncio.wait_for(task, HANG)
    assert backup.is_live
    assert backup.epoch == 2
    # It sees what the first live broker committed, and writes on.
    contents = await backup.load_queues()
    assert [record.name for record in contents] == ["held"]
    assert [m.data async for m in backup.iter_messages("held")] == [b"from the first live"]
    backup.add(msg("held", 2))
    await backup.commit()
    await backup.close()


async def test_a_frozen_live_process_loses_the_lock(url: str) -> None:
    backup = PostgresStore(url)
    await backup.open()
    async with holder(url, lapse_timeout=2.0) as live:
        task = asyncio.create_task(backup.acquire_live_lock(poll_interval=0.1))
        # Stopped: its kernel still answers keepalives, but it no longer pings.
        live.send_signal(signal.SIGSTOP)
        await asyncio.wait_for(task, HANG)
    assert backup.is_live
    await backup.close()


async def test_a_live_store_notices_that_it_lost_the_lock(url: str) -> None:
    reasons: list[StoreError] = []
    store = await live_store(url, lapse_timeout=2.0, on_lost_lock=reasons.append)
    store.add(msg("q", 1))
    await store.commit()
    terminate(url, lock_pid(store))
    await asyncio.wait_for(store.lost_lock.wait(), HANG)
    assert not store.is_live
    assert len(reasons) == 1
    assert "lost the live lock" in str(reasons[0])
    store.add(msg("q", 2))
    with pytest.raises(StoreError, match="lost the live lock"):
        await store.commit()
    with pytest.raises(StoreError, match="lost the live lock"):
        await store.acquire_live_lock()
    with pytest.raises(StoreError):
        await store.close()
    contents = await read_back(PostgresStore(url), extra_queues=("q",))
    assert [m.seq for m in contents.messages["q"]] == [1]


async def test_the_old_live_store_cannot_commit_after_a_takeover(url: str) -> None:
    # Pinging rarely, the old live store has not noticed yet that its lock is gone.
    old = await live_store(url, lapse_timeout=60.0)
    old.save_queue(queue("q"))
    await old.commit()
    terminate(url, lock_pid(old))
    new = await live_store(url)
    assert new.epoch == 2
    old.add(msg("q", 1, b"split brain"))
    with pytest.raises(StoreError, match="another store took over"):
        await old.commit()
    await asyncio.wait_for(old.lost_lock.wait(), HANG)
    with pytest.raises(StoreError):
        await old.close()
    new.add(msg("q", 1, b"the new live"))
    await new.commit()
    assert [m.data async for m in new.iter_messages("q")] == [b"the new live"]
    await new.close()


async def test_the_takeover_waits_for_the_old_writers_transaction(url: str) -> None:
    old = await live_store(url)
    terminate(url, lock_pid(old))
    # The old live store's writer is inside a transaction that has read the fence.
    assert old._wcon is not None
    old._wcon.execute("BEGIN")
    old._wcon.execute("SELECT epoch FROM petrel_live WHERE id = 1 FOR SHARE")
    new = PostgresStore(url)
    await new.open()
    task = asyncio.create_task(new.acquire_live_lock(poll_interval=0.05))
    assert await waiting(task, 0.5)
    old._wcon.execute("COMMIT")
    await asyncio.wait_for(task, HANG)
    assert new.epoch == 2
    await new.close()
    await old.close()  # it wrote nothing that failed


async def test_a_waiting_backup_survives_losing_its_connection(url: str) -> None:
    live = await live_store(url)
    backup = PostgresStore(url)
    await backup.open()
    task = asyncio.create_task(backup.acquire_live_lock(poll_interval=0.05))
    assert await waiting(task, 0.3)
    terminate(url, lock_pid(backup))
    assert await waiting(task, 0.3)
    await live.close()
    await asyncio.wait_for(task, HANG)
    assert backup.is_live
    await backup.close()


async def test_closing_or_cancelling_a_waiting_backup(url: str) -> None:
    live = await live_store(url)
    closed = PostgresStore(url)
    await closed.open()
    task = asyncio.create_task(closed.acquire_live_lock(poll_interval=0.05))
    assert await waiting(task, 0.2)
    await closed.close()
    with pytest.raises(StoreError, match="closed while waiting"):
        await asyncio.wait_for(task, HANG)

    cancelled = PostgresStore(url)
    await cancelled.open()
    task = asyncio.create_task(cancelled.acquire_live_lock(poll_interval=0.05))
    assert await waiting(task, 0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Neither left a lock behind: the next backup takes over from the live store.
    await live.close()
    after = await asyncio.wait_for(live_store(url), HANG)
    await after.close()
    await cancelled.close()


async def test_queues_survive_a_failover(url: str) -> None:
    first = await live_store(url)
    first.save_queue(QueueRecord("orders", "orders", "anycast", settings={"max": 5}))
    first.add(msg("orders", 1))
    await first.commit()
    backup = PostgresStore(url)
    await backup.open()
    task = asyncio.create_task(backup.acquire_live_lock(poll_interval=0.05))
    await first.close()
    await asyncio.wait_for(task, HANG)
    assert [q.settings for q in await backup.load_queues()] == [{"max": 5}]
    assert await backup.max_seq("orders") == 1
    await backup.close()
