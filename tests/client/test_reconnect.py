"""Reconnect and failover: Proton brokers killed and restarted under a running client.

The brokers keep a journal (written before they accept a message), so a
broker that is killed and restarted loses nothing it accepted; whatever the
client was told was accepted must then be found on a broker afterwards.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import pytest

import petrel
from petrel import Message
from petrel.client import ConnectionLost, ConnectionState, Reconnect, StateChange
from tests.helpers.servers import free_port

from .conftest import proton_peer

pytestmark = pytest.mark.interop

FAST = Reconnect(initial_delay=0.02, max_delay=0.2, max_attempts=200)


async def drain_queue(url: str, queue: str, expect: int, timeout: float = 10.0) -> list[Any]:
    """Everything in ``queue``: receive until ``expect`` distinct bodies have arrived."""
    bodies: list[Any] = []
    async with await petrel.connect(url, reconnect=False) as conn:
        receiver = await conn.open_receiver(queue, credit=200)
        deadline = asyncio.get_running_loop().time() + timeout
        while len(set(bodies)) < expect and asyncio.get_running_loop().time() < deadline:
            try:
                delivery = await receiver.receive(timeout=0.5)
            except petrel.Timeout:
                continue
            bodies.append(delivery.message.body)
            await delivery.accept()
    return bodies


async def test_at_least_once_sends_survive_a_broker_restart(tmp_path: Path) -> None:
    journal = str(tmp_path / "journal")
    port = free_port()
    url = f"amqp://127.0.0.1:{port}"
    count = 400
    states: list[StateChange] = []
    accepted: list[int] = []
    with proton_peer(port=port, journal=journal, prefetch=50) as peer:
        conn = await petrel.connect(url, reconnect=FAST, on_state_change=states.append)
        sender = await conn.open_sender("restart-q")

        def record(future: asyncio.Future[None], i: int) -> None:
            if future.exception() is None:
                accepted.append(i)

        async def produce() -> None:
            window: list[asyncio.Future[None]] = []
            for i in range(count):
                future = await sender.send(Message(i, durable=True), wait=False)
                future.add_done_callback(functools.partial(record, i=i))
                window.append(future)
                if len(window) >= 20:
                    await window.pop(0)
            await asyncio.gather(*window)

        producer = asyncio.create_task(produce())
        while len(accepted) < count // 3:
            await asyncio.sleep(0.005)
        peer.kill()
        killed_at = len(accepted)
        for _ in range(1000):
            if conn.state is ConnectionState.RECONNECTING:
                break
            await asyncio.sleep(0.01)
        assert conn.state is ConnectionState.RECONNECTING
        assert not producer.done()
    with proton_peer(port=port, journal=journal, prefetch=50):
        await asyncio.wait_for(producer, 30)
        assert sorted(accepted) == list(range(count))
        assert killed_at < count
        await conn.close()
        bodies = await drain_queue(url, "restart-q", count)
    assert set(bodies) == set(range(count))  # none lost (duplicates allowed)
    kinds = [s.state for s in states]
    assert kinds[0] is ConnectionState.OPEN
    assert ConnectionState.RECONNECTING in kinds
    assert kinds[kinds.index(ConnectionState.RECONNECTING) :].count(ConnectionState.OPEN) == 1
    assert kinds[-1] is ConnectionState.CLOSED
    lost = next(s for s in states if s.state is ConnectionState.RECONNECTING)
    assert isinstance(lost.error, ConnectionLost)


async def test_a_receiver_carries_on_after_a_restart(tmp_path: Path) -> None:
    journal = str(tmp_path / "journal")
    port = free_port()
    url = f"amqp://127.0.0.1:{port}"
    with proton_peer(port=port, journal=journal) as peer:
        async with await petrel.connect(url) as producer_conn:
            sender = await producer_conn.open_sender("consume-q")
            for i in range(50):
                await sender.send(Message(i), wait=False)
            await sender.wait_settled(10)
        conn = await petrel.connect(url, reconnect=FAST)
        receiver = await conn.open_receiver("consume-q", credit=10)
        got: list[int] = []
        for _ in range(20):
            delivery = await receiver.receive(timeout=10)
            got.append(delivery.message.body)
            await delivery.accept()
        await asyncio.sleep(0.05)  # let the accepts reach the broker
        peer.kill()
    with proton_peer(port=port, journal=journal):
        while len(set(got)) < 50:
            delivery = await receiver.receive(timeout=10)
            got.append(delivery.message.body)
            await delivery.accept()
        assert set(got) == set(range(50))
        assert got[:20] == list(range(20))
        await conn.close()


async def test_failover_moves_to_the_next_url(tmp_path: Path) -> None:
    first_port, second_port = free_port(), free_port()
    first = f"amqp://127.0.0.1:{first_port}"
    second = f"amqp://127.0.0.1:{second_port}"
    first_journal = str(tmp_path / "first")
    states: list[StateChange] = []
    count = 200
    with proton_peer(port=second_port) as _:
        with proton_peer(port=first_port, journal=first_journal) as peer_one:
            conn = await petrel.connect(
                [first, second], reconnect=FAST, on_state_change=states.append
            )
            assert conn.url == first
            sender = await conn.open_sender("failover-q")
            for i in range(count // 2):
                await sender.send(Message(i))
            peer_one.kill()
        # The rest goes to the second broker, without the application noticing.
        for i in range(count // 2, count):
            await sender.send(Message(i))
        assert conn.url == second
        await conn.close()
        on_second = await drain_queue(second, "failover-q", count // 2)
    with proton_peer(port=first_port, journal=first_journal):
        on_first = await drain_queue(first, "failover-q", count // 2)
    assert set(on_first) | set(on_second) == set(range(count))
    assert set(range(count // 2, count)) <= set(on_second)
    opened = [s.url for s in states if s.state is ConnectionState.OPEN]
    assert opened == [first, second]


async def test_giving_up_fails_what_waits() -> None:
    port = free_port()
    url = f"amqp://127.0.0.1:{port}"
    policy = Reconnect(initial_delay=0.01, max_delay=0.02, max_attempts=3)
    with proton_peer(port=port) as peer:
        conn = await petrel.connect(url, reconnect=policy)
        sender = await conn.open_sender("stingy.give-up")
        for i in range(10):
            await sender.send(Message(i), wait=False)
        waiting = asyncio.create_task(sender.send("no credit"))
        receiver = await conn.open_receiver("give-up-q")
        receiving = asyncio.create_task(receiver.receive())
        await asyncio.sleep(0.05)
        peer.kill()
    error = await asyncio.wait_for(conn.wait_closed(), 10)
    assert isinstance(error, ConnectionLost)
    assert "gave up reconnecting after 3 attempts" in str(error)
    with pytest.raises(ConnectionLost):
        await waiting
    with pytest.raises(ConnectionLost):
        await receiving
    assert conn.state is ConnectionState.CLOSED
    await conn.close()  # does nothing more


async def test_without_reconnect_the_loss_is_final() -> None:
    port = free_port()
    with proton_peer(port=port) as peer:
        conn = await petrel.connect(f"amqp://127.0.0.1:{port}", reconnect=False)
        receiver = await conn.open_receiver("no-reconnect-q")
        receiving = asyncio.create_task(receiver.receive())
        await asyncio.sleep(0.02)
        peer.kill()
        with pytest.raises(ConnectionLost):
            await asyncio.wait_for(receiving, 10)
    assert isinstance(await conn.wait_closed(), ConnectionLost)


async def test_requests_in_flight_fail_when_the_connection_is_lost(tmp_path: Path) -> None:
    port = free_port()
    url = f"amqp://127.0.0.1:{port}"
    with proton_peer(port=port) as peer:
        conn = await petrel.connect(url, reconnect=FAST)
        assert (await conn.request("echo", "before", timeout=10)).body == "before"
        waiting = asyncio.create_task(conn.request("nobody-answers", "x", timeout=30))
        await asyncio.sleep(0.05)
        peer.kill()
        with pytest.raises(ConnectionLost, match="waiting for a response"):
            await asyncio.wait_for(waiting, 10)
    with proton_peer(port=port):
        # A new dynamic reply queue on the new connection: requests work again.
        assert (await conn.request("echo", "after", timeout=10)).body == "after"
        await conn.close()


async def test_links_opened_while_reconnecting_attach_once_connected() -> None:
    port = free_port()
    url = f"amqp://127.0.0.1:{port}"
    with proton_peer(port=port) as peer:
        conn = await petrel.connect(url, reconnect=FAST)
        peer.kill()
        while conn.state is not ConnectionState.RECONNECTING:
            await asyncio.sleep(0.005)
        opening = asyncio.create_task(conn.open_sender("late-q", timeout=20))
        await asyncio.sleep(0.1)
        assert not opening.done()
    with proton_peer(port=port):
        sender = await asyncio.wait_for(opening, 20)
        await sender.send("after the restart")
        async with await petrel.connect(url) as other:
            receiver = await other.open_receiver("late-q")
            assert (await receiver.receive(timeout=10)).message.body == "after the restart"
        await conn.close()


async def test_state_changes_iterator_sees_the_reconnect() -> None:
    port = free_port()
    url = f"amqp://127.0.0.1:{port}"
    with proton_peer(port=port) as peer:
        conn = await petrel.connect(url, reconnect=FAST)
        changes = conn.state_changes()
        peer.kill()
        first = await asyncio.wait_for(changes.__anext__(), 10)
        assert first.state is ConnectionState.RECONNECTING
    with proton_peer(port=port):
        states = []
        async for change in changes:
            states.append(change.state)
            if change.state is ConnectionState.OPEN:
                break
        assert states[-1] is ConnectionState.OPEN
        assert all(s is ConnectionState.RECONNECTING for s in states[:-1])
        changes.close()
        await conn.close()
