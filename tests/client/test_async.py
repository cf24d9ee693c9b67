"""The asyncio client against a Proton broker: senders, receivers, outcomes, errors."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import petrel
from petrel import Message
from petrel.client import (
    ConnectionClosed,
    ConnectionState,
    LinkClosed,
    MessageModified,
    MessageRejected,
    MessageReleased,
    NotFound,
    NotImplementedByPeer,
    Timeout,
    Unauthorized,
)

pytestmark = pytest.mark.interop


async def test_the_issue_example(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        async with await conn.open_sender(queue) as sender:
            await sender.send(petrel.Message(body={"id": 1}, durable=True))
        bodies = []
        async with await conn.open_receiver(queue, credit=100) as receiver:
            async for delivery in receiver:
                bodies.append(delivery.message.body)
                await delivery.accept()
                break
        assert bodies == [{"id": 1}]
    assert conn.state is ConnectionState.CLOSED


async def test_connection_facts(url: str) -> None:
    async with await petrel.connect(url, container_id="facts-test") as conn:
        assert conn.state is ConnectionState.OPEN
        assert conn.container_id == "facts-test"
        assert conn.url == url
        assert "ANONYMOUS-RELAY" in conn.offered_capabilities
        assert conn.remote_container_id is not None
        assert "facts-test" in repr(conn)
    assert conn.is_closed
    with pytest.raises(ConnectionClosed):
        await conn.open_sender("q")


async def test_every_message_field_survives_the_trip(url: str, queue: str) -> None:
    sent = Message(
        {"k": [1, "two", None]},
        durable=True,
        priority=7,
        ttl=60.0,
        message_id="id-1",
        subject="s",
        reply_to="r",
        correlation_id=42,
        content_type="application/json",
        creation_time=1_700_000_000.5,
        group_id="g",
        application_properties={"color": "red", "n": 3},
        message_annotations={"x-opt-test": "yes"},
    )
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender(queue)
        await sender.send(sent)
        receiver = await conn.open_receiver(queue)
        delivery = await receiver.receive(timeout=10)
        got = delivery.message
        await delivery.accept()
        assert delivery.settled
    assert got.body == sent.body
    for name in (
        "durable",
        "priority",
        "ttl",
        "message_id",
        "subject",
        "reply_to",
        "correlation_id",
        "creation_time",
        "group_id",
        "application_properties",
    ):
        assert getattr(got, name) == getattr(sent, name), name
    assert got.to == queue or got.to is None
    assert got.message_annotations == {"x-opt-test": "yes"}


async def test_plain_values_are_message_bodies(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender(queue)
        await sender.send("just a string")
        await sender.send(b"\x00bytes")
        receiver = await conn.open_receiver(queue, auto_accept=True)
        assert (await receiver.receive(timeout=10)).message.body == "just a string"
        assert (await receiver.receive(timeout=10)).message.body == b"\x00bytes"


async def test_many_sends_in_flight(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        async with await conn.open_sender(queue) as sender:
            futures = [await sender.send(Message(i), wait=False) for i in range(300)]
            assert all(isinstance(f, asyncio.Future) for f in futures)
            await asyncio.gather(*futures)
            assert sender.unsettled == 0
        receiver = await conn.open_receiver(queue, credit=50, auto_accept=True)
        bodies = [(await receiver.receive(timeout=10)).message.body for _ in range(300)]
    assert bodies == list(range(300))


async def test_concurrent_senders_share_credit_fairly(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender(queue)

        async def produce(tag: str) -> None:
            for i in range(60):
                await sender.send(Message(f"{tag}{i}"))

        await asyncio.gather(*(produce(t) for t in "abcd"))
        receiver = await conn.open_receiver(queue, auto_accept=True)
        got = [(await receiver.receive(timeout=10)).message.body for _ in range(240)]
    for tag in "abcd":
        assert [b for b in got if b.startswith(tag)] == [f"{tag}{i}" for i in range(60)]


async def test_at_most_once_sender_and_receiver(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender(queue, at_most_once=True)
        for i in range(20):
            await sender.send(Message(i))  # returns once written
        done = await sender.send(Message(20), wait=False)
        assert done.done()
        receiver = await conn.open_receiver(queue, at_most_once=True)
        got = []
        for _ in range(21):
            delivery = await receiver.receive(timeout=10)
            assert delivery.settled  # pre-settled: nothing to do
            await delivery.accept()  # does nothing
            got.append(delivery.message.body)
    assert got == list(range(21))


async def test_rejected_raises_with_the_peers_error(url: str) -> None:
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender("reject.me")
        with pytest.raises(MessageRejected) as info:
            await sender.send("bad")
        assert info.value.condition == "amqp:precondition-failed"
        assert "rejected" in info.value.description
        assert isinstance(info.value, petrel.ClientError)
        future = await sender.send("bad too", wait=False)
        with pytest.raises(MessageRejected):
            await future


async def test_released_raises_or_retries_by_policy(url: str) -> None:
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender("release.me")
        with pytest.raises(MessageReleased):
            await sender.send("no")
        retrying = await conn.open_sender("release.me", retry_released=3)
        with pytest.raises(MessageReleased):
            await retrying.send("no")  # released four times: the first send and three retries
        modified = await conn.open_sender("modify.me", retry_released=1)
        with pytest.raises(MessageModified) as info:
            await modified.send("no")
        assert info.value.outcome.undeliverable_here is True


async def test_attach_errors_are_mapped(url: str) -> None:
    async with await petrel.connect(url) as conn:
        with pytest.raises(NotFound) as info:
            await conn.open_receiver("missing.queue")
        assert info.value.condition == "amqp:not-found"
        assert "missing.queue" in info.value.description
        with pytest.raises(Unauthorized):
            await conn.open_sender("forbidden.queue")
        # The connection is still fine.
        sender = await conn.open_sender("fine-after-errors")
        await sender.send("ok")


async def test_anonymous_sender(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender(None)
        assert sender.address is None
        await sender.send(Message("routed", to=queue))
        with pytest.raises(ValueError, match="`to`"):
            await sender.send(Message("nowhere"))
        receiver = await conn.open_receiver(queue)
        assert (await receiver.receive(timeout=10)).message.body == "routed"


async def test_anonymous_sender_needs_the_capability(url: str) -> None:
    async with await petrel.connect(url) as conn:
        conn._offered = ()  # as if the peer had not offered ANONYMOUS-RELAY
        with pytest.raises(NotImplementedByPeer):
            await conn.open_sender(None)


async def test_receive_timeout_and_receive_nowait(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        receiver = await conn.open_receiver(queue)
        assert receiver.receive_nowait() is None
        with pytest.raises(Timeout):
            await receiver.receive(timeout=0.05)
        with pytest.raises(TimeoutError):  # Timeout is a TimeoutError
            await receiver.receive(timeout=0.01)
        assert not receiver._getters  # timed-out waits leave nothing behind
        sender = await conn.open_sender(queue)
        await sender.send("late")
        delivery = await receiver.receive(timeout=10)
        assert delivery.message.body == "late"


async def test_receive_cancelled_keeps_the_message(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        receiver = await conn.open_receiver(queue)
        task = asyncio.create_task(receiver.receive())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await (await conn.open_sender(queue)).send("kept")
        assert (await receiver.receive(timeout=10)).message.body == "kept"


async def test_credit_window_is_refilled_in_batches(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender(queue)
        for i in range(30):
            await sender.send(Message(i), wait=False)
        await sender.wait_settled(10)
        receiver = await conn.open_receiver(queue, credit=10)
        for _ in range(1000):
            if receiver.buffered == 10:
                break
            await asyncio.sleep(0.01)
        assert receiver.buffered == 10  # the window is full: the peer has no more credit
        assert receiver.credit == 0
        for _ in range(4):
            await (await receiver.receive()).accept()
        assert receiver.credit == 0  # less than half the window used: no refill yet
        await (await receiver.receive()).accept()
        assert receiver.credit == 5  # half used: refilled up to the window
        got = 5
        while got < 30:
            await (await receiver.receive(timeout=10)).accept()
            got += 1
        assert receiver.buffered == 0


async def test_manual_credit_and_drain(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender(queue)
        for i in range(5):
            await sender.send(Message(i))
        receiver = await conn.open_receiver(queue, credit=0)
        with pytest.raises(Timeout):
            await receiver.receive(timeout=0.1)
        receiver.add_credit(2)
        assert (await receiver.receive(timeout=10)).message.body == 0
        assert (await receiver.receive(timeout=10)).message.body == 1
        with pytest.raises(Timeout):
            await receiver.receive(timeout=0.1)
        receiver.add_credit(10)
        await receiver.drain(timeout=10)  # takes the three left, gives back the rest
        assert receiver.credit == 0
        assert receiver.buffered == 3
        assert [receiver.receive_nowait().message.body for _ in range(3)] == [2, 3, 4]  # type: ignore[union-attr]
        await receiver.drain(timeout=1)  # no credit: nothing to drain


async def test_accept_reject_release_modify(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender(queue)
        for body in ("a", "b", "c", "d"):
            await sender.send(body)
        receiver = await conn.open_receiver(queue, credit=1)
        first = await receiver.receive(timeout=10)
        await first.release()  # goes back to the head of the queue
        again = await receiver.receive(timeout=10)
        assert again.message.body == "a"
        await again.modify(delivery_failed=True, annotations={"x-opt-why": "test"})
        third = await receiver.receive(timeout=10)
        assert third.message.body == "a"
        await third.reject("amqp:precondition-failed", "no thanks", info={"why": "test"})
        await third.reject()  # a second settle does nothing
        b = await receiver.receive(timeout=10)
        assert b.message.body == "b"
        await b.release(delivered=True)
        b2 = await receiver.receive(timeout=10)
        assert b2.message.body == "b"
        await b2.accept()
        assert b2.settled
        assert "settled=True" in repr(b2)


async def test_auto_accept(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender(queue)
        await sender.send("x")
        receiver = await conn.open_receiver(queue, auto_accept=True)
        delivery = await receiver.receive(timeout=10)
        assert delivery.settled
        await receiver.close()
        # Accepted: closing the receiver does not give it back.
        receiver = await conn.open_receiver(queue)
        with pytest.raises(Timeout):
            await receiver.receive(timeout=0.2)


async def test_unsettled_deliveries_return_when_the_receiver_closes(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        await (await conn.open_sender(queue)).send("again")
        receiver = await conn.open_receiver(queue)
        assert (await receiver.receive(timeout=10)).message.body == "again"
        await receiver.close()
        receiver = await conn.open_receiver(queue)
        assert (await receiver.receive(timeout=10)).message.body == "again"


async def test_iteration_ends_when_the_receiver_is_closed(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        receiver = await conn.open_receiver(queue)
        got: list[Any] = []

        async def consume() -> None:
            async for delivery in receiver:
                got.append(delivery.message.body)
                await delivery.accept()

        task = asyncio.create_task(consume())
        await (await conn.open_sender(queue)).send("one")
        while not got:
            await asyncio.sleep(0.01)
        await receiver.close()
        await asyncio.wait_for(task, 5)
        assert got == ["one"]
        with pytest.raises(LinkClosed):
            await receiver.receive()
        await receiver.close()  # twice is fine


async def test_iteration_ends_when_the_connection_is_closed(url: str, queue: str) -> None:
    conn = await petrel.connect(url)
    receiver = await conn.open_receiver(queue)

    async def consume() -> int:
        n = 0
        async for _ in receiver:
            n += 1
        return n

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.02)
    await conn.close()
    assert await asyncio.wait_for(task, 5) == 0


async def test_close_fails_waiting_sends(url: str) -> None:
    conn = await petrel.connect(url)
    sender = await conn.open_sender("stingy.close-test")
    for i in range(10):
        await sender.send(Message(i), wait=False)
    blocked = asyncio.create_task(sender.send("no credit"))
    await asyncio.sleep(0.05)
    assert not blocked.done()
    await conn.close()
    with pytest.raises(ConnectionClosed):
        await blocked
    with pytest.raises(ConnectionClosed):
        await sender.send("after close")


async def test_dynamic_receiver(url: str) -> None:
    async with await petrel.connect(url) as conn:
        receiver = await conn.open_receiver(None, dynamic=True)
        assert receiver.address is not None
        assert receiver.address.startswith("tmp.")
        await (await conn.open_sender(receiver.address)).send("to the temporary queue")
        assert (await receiver.receive(timeout=10)).message.body == "to the temporary queue"
        with pytest.raises(ValueError):
            await conn.open_receiver("q", dynamic=True)


async def test_link_names_and_properties(url: str, queue: str) -> None:
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender(queue, name="my-sender", properties={"p": 1})
        assert sender.name == "my-sender"
        assert "my-sender" in repr(sender)
        receiver = await conn.open_receiver(queue, name="my-receiver")
        assert receiver.name == "my-receiver"
        assert sender.connection is conn
        with pytest.raises(ValueError, match="durable"):
            await conn.open_receiver(queue, durable=True)
        with pytest.raises(ValueError, match="credit"):
            await conn.open_receiver(queue, credit=-1)


async def test_state_changes_iterator_and_callback(url: str) -> None:
    seen: list[ConnectionState] = []
    conn = await petrel.connect(url, on_state_change=lambda change: seen.append(change.state))
    changes = conn.state_changes()
    await conn.close()
    got = [change.state async for change in changes]
    assert got == [ConnectionState.CLOSED]
    assert seen == [ConnectionState.OPEN, ConnectionState.CLOSED]
    assert await conn.wait_closed() is None
    # A watcher made after the end gets the final state.
    assert [c.state async for c in conn.state_changes()] == [ConnectionState.CLOSED]


async def test_log_lines_carry_the_connection_prefix(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="petrel.client")
    async with await petrel.connect(url, container_id="log-prefix-test") as conn:
        assert conn.state is ConnectionState.OPEN  # "connected to ..." was logged at DEBUG
    lines = [r.getMessage() for r in caplog.records if r.name == "petrel.client"]
    assert any(line.startswith("[log-prefix-test/c") for line in lines), lines
