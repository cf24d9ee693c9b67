"""A live/backup pair on one PostgreSQL database: the backup waits without listening, takes
over when the live broker is killed, and no accepted message is lost; a broker that loses
the live lock stops instead of running split-brain."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import petrel
from tests.helpers.postgres import fresh_schema
from tests.helpers.servers import free_port, stop_process

PETREL = str(Path(sys.executable).with_name("petrel"))
RECONNECT = petrel.Reconnect(max_attempts=None, max_delay=0.5, initial_delay=0.05)


class Node:
    """One ``petrel broker --store postgresql`` process of the pair."""

    def __init__(self, store_url: str, data_dir: Path) -> None:
        self.port = free_port()
        self.log_path = data_dir / f"broker-{self.port}.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        args = [PETREL, "broker", "--store", "postgresql", "--store-url", store_url]
        args += ["--data-dir", str(data_dir), "--listen", self.url]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=dict(os.environ)
            )

    @property
    def url(self) -> str:
        return f"amqp://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def listening(self) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def wait_listening(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not await self.listening():
            assert self.proc.poll() is None, f"broker exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"broker not listening:\n{self.log()}"
            await asyncio.sleep(0.05)

    async def wait_log(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert self.proc.poll() is None, f"broker exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"no {text!r} in the log:\n{self.log()}"
            await asyncio.sleep(0.05)


@contextlib.contextmanager
def pair_schema(postgres_url: str) -> Iterator[str]:
    with fresh_schema(postgres_url) as url:
        yield url


async def produce(urls: list[str], count: int, accepted: set[str]) -> None:
    conn = await petrel.connect(urls, reconnect=RECONNECT, container_id="failover-producer")
    try:
        sender = await conn.open_sender("failover")
        in_flight: dict[str, asyncio.Future[None]] = {}
        seq = 0
        while seq < count or in_flight:
            while seq < count and len(in_flight) < 20:
                body = f"m-{seq}"
                message = petrel.Message(body, message_id=body, durable=True)
                in_flight[body] = await sender.send(message, wait=False, timeout=None)
                seq += 1
            await asyncio.sleep(0.002)  # a steady trickle, so the kill lands mid-stream
            done, _ = await asyncio.wait(in_flight.values(), return_when=asyncio.FIRST_COMPLETED)
            for body, future in list(in_flight.items()):
                if future in done:
                    del in_flight[body]
                    if future.exception() is None:
                        accepted.add(body)
                    else:  # refused: at least once means sending it again
                        message = petrel.Message(body, message_id=body, durable=True)
                        in_flight[body] = await sender.send(message, wait=False, timeout=None)
    finally:
        await conn.close()


async def consume(urls: list[str], received: dict[str, int]) -> None:
    conn = await petrel.connect(urls, reconnect=RECONNECT, container_id="failover-consumer")
    try:
        receiver = await conn.open_receiver("failover", credit=100)
        while True:
            with contextlib.suppress(petrel.Timeout):
                delivery = await receiver.receive(timeout=1.0)
                body = delivery.message.body
                received[body] = received.get(body, 0) + 1
                with contextlib.suppress(petrel.ClientError):
                    await delivery.accept()
    finally:
        await conn.close()


@pytest.mark.slow
async def test_backup_takes_over_and_no_accepted_message_is_lost(
    postgres_url: str, tmp_path: Path
) -> None:
    with pair_schema(postgres_url) as store_url:
        live = Node(store_url, tmp_path / "a")
        backup: Node | None = None
        try:
            await live.wait_listening()
            backup = Node(store_url, tmp_path / "b")
            await backup.wait_log("waiting to become live")
            await asyncio.sleep(0.3)
            assert not await backup.listening(), "a backup must not listen"

            accepted: set[str] = set()
            received: dict[str, int] = {}
            urls = [live.url, backup.url]
            producer = asyncio.create_task(produce(urls, 1500, accepted))
            consumer = asyncio.create_task(consume(urls, received))
            try:
                deadline = time.monotonic() + 30
                while len(accepted) < 300 and not producer.done():
                    assert time.monotonic() < deadline, "no progress before the kill"
                    await asyncio.sleep(0.02)
                live.proc.send_signal(signal.SIGKILL)
                live.proc.wait()
                await backup.wait_listening(timeout=20)
                await backup.wait_log("live")
                await asyncio.wait_for(producer, 40)
                deadline = time.monotonic() + 30
                while not accepted <= received.keys():
                    assert time.monotonic() < deadline, (
                        f"{len(accepted - received.keys())} accepted messages never received"
                    )
                    await asyncio.sleep(0.1)
            finally:
                for task in (producer, consumer):
                    task.cancel()
                await asyncio.gather(producer, consumer, return_exceptions=True)
            assert len(accepted) == 1500
            assert accepted <= received.keys()
        finally:
            stop_process(live.proc)
            if backup is not None:
                assert stop_process(backup.proc) == 0, backup.log()


@pytest.mark.slow
async def test_a_broker_that_loses_the_live_lock_stops(postgres_url: str, tmp_path: Path) -> None:
    import psycopg

    with pair_schema(postgres_url) as store_url:
        node = Node(store_url, tmp_path / "a")
        try:
            await node.wait_listening()
            # Cut every connection the broker has to the database (as a failing network or
            # an administrator would): it can no longer know it is the only live broker.
            with psycopg.connect(postgres_url, autocommit=True) as con:
                con.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND application_name LIKE 'petrel %'"
                )
            code = await asyncio.to_thread(node.proc.wait, 30)
            assert code != 0
            errors = [line for line in node.log().splitlines() if "petrel broker:" in line]
            assert len(errors) == 1, node.log()
            assert "live lock" in errors[0], node.log()
        finally:
            stop_process(node.proc)
