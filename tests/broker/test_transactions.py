"""Local transactions against ``petrel broker`` with Petrel's client: sends visible on commit
only, outcomes applied on commit and undone on rollback, several transactions at once,
abandoned and timed-out transactions, and the spec's transaction errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import petrel
from petrel import Message
from petrel.client import MessageRejected, TransactionError
from petrel.client.transaction import Transaction
from petrel.management.client import ManagementClient
from petrel.spec import (
    TXN_ID_FLOW_KEY,
    Attach,
    Begin,
    Detach,
    Flow,
    Open,
    Role,
    Source,
    Target,
    Transfer,
)
from petrel.spec.framing import AMQP_HEADER
from tests.client.test_petrel_broker import receive_all
from tests.helpers.frames import RawClient, frame
from tests.helpers.servers import BrokerProcess, run_broker

CONFIG = """
transaction_timeout = 1.0

[[queues]]
name = "tx-rejects"
dead_letter_address = "tx-rejects.dlq"

[[queues]]
name = "tx-full"
max_messages = 2
full_policy = "reject"
"""


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerProcess]:
    with run_broker(CONFIG) as process:
        yield process


@pytest.fixture
def queue(name: str) -> str:
    return name


async def depth(conn: petrel.Connection, queue: str) -> int:
    """How many messages ``queue`` holds, acquired ones included (management)."""
    entity = await ManagementClient(conn, timeout=10).read("petrel.queue", queue)
    return int(entity["depth"])


async def test_sends_are_visible_on_commit_only_in_order(broker: BrokerProcess, queue: str) -> None:
    async with await petrel.connect(broker.url) as conn:
        sender = await conn.open_sender(queue)
        receiver = await conn.open_receiver(queue)
        async with conn.transaction() as tx:
            for n in range(10):
                await tx.send(sender, n)
            assert await receive_all(receiver) == []
        assert await receive_all(receiver) == list(range(10))


async def test_rollback_drops_the_sends(broker: BrokerProcess, queue: str) -> None:
    async with await petrel.connect(broker.url) as conn:
        sender = await conn.open_sender(queue)
        tx = await conn.transaction().declare()
        await tx.send(sender, "dropped")
        await tx.rollback()
        with pytest.raises(RuntimeError, match="boom"):
            async with conn.transaction() as tx2:
                await tx2.send(sender, "dropped too")
                raise RuntimeError("boom")
        await sender.send("plain")
        receiver = await conn.open_receiver(queue)
        assert await receive_all(receiver) == ["plain"]


async def test_accept_applies_on_commit(broker: BrokerProcess, queue: str) -> None:
    async with await petrel.connect(broker.url) as conn:
        sender = await conn.open_sender(queue)
        for n in range(3):
            await sender.send(n)
        receiver = await conn.open_receiver(queue, credit=3)
        deliveries = [await receiver.receive(timeout=10) for _ in range(3)]
        async with conn.transaction() as tx:
            for delivery in deliveries:
                await tx.accept(delivery)
            assert not any(d.settled for d in deliveries)
        assert all(d.settled for d in deliveries)
        assert await depth(conn, queue) == 0
        await receiver.close()
        again = await conn.open_receiver(queue)
        assert await receive_all(again) == []


async def test_rollback_undoes_the_accepts(broker: BrokerProcess, queue: str) -> None:
    """After a rollback the deliveries are the consumer's again, unsettled; once it goes
    away they come back to the queue counted as a failed delivery."""
    async with await petrel.connect(broker.url) as conn:
        sender = await conn.open_sender(queue)
        for n in range(2):
            await sender.send(n)
        receiver = await conn.open_receiver(queue, credit=2)
        deliveries = [await receiver.receive(timeout=10) for _ in range(2)]
        tx = await conn.transaction().declare()
        for delivery in deliveries:
            await tx.accept(delivery)
        await tx.rollback()
        assert not any(d.settled for d in deliveries)
        assert await depth(conn, queue) == 2
        await deliveries[0].release()  # settled anew, outside any transaction
        await receiver.close()
        again = await conn.open_receiver(queue)
        first = await again.receive(timeout=10)
        second = await again.receive(timeout=10)
        assert [first.message.body, second.message.body] == [0, 1]
        assert first.message.delivery_count == 0  # released: not a failed attempt
        assert second.message.delivery_count == 1  # its consumer went away unsettled
        await first.accept()
        await second.accept()


async def test_reject_release_and_modify_apply_on_commit(broker: BrokerProcess, queue: str) -> None:
    async with await petrel.connect(broker.url) as conn:
        await (await conn.open_sender("tx-rejects")).send("bad")
        sender = await conn.open_sender(queue)
        await sender.send("again")
        await sender.send("later")
        rejects = await conn.open_receiver("tx-rejects", credit=1)
        bad = await rejects.receive(timeout=10)
        receiver = await conn.open_receiver(queue, credit=2)
        again = await receiver.receive(timeout=10)
        later = await receiver.receive(timeout=10)
        async with conn.transaction() as tx:
            await tx.reject(bad, "app:bad", "not for us")
            await tx.modify(again, delivery_failed=True)
            await tx.release(later)
        dlq = await conn.open_receiver("tx-rejects.dlq", credit=1)
        dead = await dlq.receive(timeout=10)
        assert dead.message.body == "bad"
        assert dead.message.message_annotations["x-opt-petrel-dead-letter-reason"] == "app:bad"
        await dead.accept()
        first = await receiver.receive(timeout=10)
        second = await receiver.receive(timeout=10)
        assert [first.message.body, second.message.body] == ["again", "later"]
        assert [first.message.delivery_count, second.message.delivery_count] == [1, 0]
        await first.accept()
        await second.accept()


async def test_several_transactions_at_once(broker: BrokerProcess, queue: str) -> None:
    async with await petrel.connect(broker.url) as conn:
        sender = await conn.open_sender(queue)
        first = await conn.transaction().declare()
        second = await conn.transaction().declare()
        assert first.id != second.id
        await first.send(sender, "first")
        await second.send(sender, "second")
        await second.rollback()
        await first.commit()
        receiver = await conn.open_receiver(queue)
        assert await receive_all(receiver) == ["first"]


async def test_a_closed_connection_rolls_back(broker: BrokerProcess, queue: str) -> None:
    async with await petrel.connect(broker.url) as conn:
        await (await conn.open_sender(queue)).send("kept")
    async with await petrel.connect(broker.url) as conn:
        sender = await conn.open_sender(queue)
        receiver = await conn.open_receiver(queue, credit=1)
        kept = await receiver.receive(timeout=10)
        tx = await conn.transaction().declare()
        await tx.accept(kept)
        await tx.send(sender, "never")
    async with await petrel.connect(broker.url) as conn:
        receiver = await conn.open_receiver(queue)
        assert await receive_all(receiver) == ["kept"]


async def test_discharge_of_an_unknown_id(broker: BrokerProcess) -> None:
    async with await petrel.connect(broker.url) as conn:
        tx = Transaction(conn)
        tx._controller = await conn._transaction_controller(None)
        tx._epoch = conn._epoch
        tx.id = b"\xff" * 8
        with pytest.raises(TransactionError) as refused:
            await tx.commit()
        assert refused.value.condition == "amqp:transaction:unknown-id"
        assert "ffffffffffffffff" in refused.value.description


async def test_a_send_in_a_discharged_transaction(broker: BrokerProcess, queue: str) -> None:
    async with await petrel.connect(broker.url) as conn:
        sender = await conn.open_sender(queue)
        tx = await conn.transaction().declare()
        await tx.commit()
        tx._done = False  # what a client that keeps the id would do: the broker refuses
        with pytest.raises(MessageRejected) as refused:
            await tx.send(sender, "late", wait=True)
        assert refused.value.condition == "amqp:transaction:unknown-id"
        await sender.send("plain")  # the link and connection carry on
        receiver = await conn.open_receiver(queue)
        assert await receive_all(receiver) == ["plain"]


async def test_a_refused_send_makes_the_commit_fail(broker: BrokerProcess) -> None:
    async with await petrel.connect(broker.url) as conn:
        relay = await conn.open_sender(None)
        tx = await conn.transaction().declare()
        await tx.send(relay, Message("ok", to="tx-relay-ok"))
        with pytest.raises(MessageRejected, match="no such address"):
            await tx.send(relay, Message("lost", to="dynamic.nowhere"), wait=True)
        with pytest.raises(TransactionError) as refused:
            await tx.commit()
        assert refused.value.condition == "amqp:transaction:rollback"
        assert "no such address" in refused.value.description
        receiver = await conn.open_receiver("tx-relay-ok")
        assert await receive_all(receiver) == []


async def test_a_refused_send_not_waited_for_makes_the_commit_fail(broker: BrokerProcess) -> None:
    """Sends are pipelined: a refusal is not raised by the send but by the commit, which
    waits for every send's answer and then finds the transaction rolled back."""
    async with await petrel.connect(broker.url) as conn:
        relay = await conn.open_sender(None)
        with pytest.raises(TransactionError) as refused:
            async with conn.transaction() as tx:
                await tx.send(relay, Message("ok", to="tx-relay-ok-2"))
                await tx.send(relay, Message("lost", to="dynamic.nowhere"))
                await tx.send(relay, Message("ok too", to="tx-relay-ok-2"))
        assert refused.value.condition == "amqp:transaction:rollback"
        assert "no such address" in refused.value.description
        receiver = await conn.open_receiver("tx-relay-ok-2")
        assert await receive_all(receiver) == []


async def test_no_room_rolls_the_whole_transaction_back(broker: BrokerProcess) -> None:
    async with await petrel.connect(broker.url) as conn:
        sender = await conn.open_sender("tx-full")
        tx = await conn.transaction().declare()
        for n in range(3):
            await tx.send(sender, n)
        with pytest.raises(TransactionError, match="no room") as refused:
            await tx.commit()
        assert refused.value.condition == "amqp:transaction:rollback"
        async with conn.transaction() as tx:
            await tx.send(sender, "fits")
        receiver = await conn.open_receiver("tx-full")
        assert await receive_all(receiver) == ["fits"]


async def test_an_idle_transaction_times_out(broker: BrokerProcess, queue: str) -> None:
    """The module's broker rolls back a transaction idle for 1 s; its id is then refused
    with amqp:transaction:timeout."""
    async with await petrel.connect(broker.url) as conn:
        sender = await conn.open_sender(queue)
        tx = await conn.transaction().declare()
        await tx.send(sender, "too late")
        await asyncio.sleep(1.5)
        with pytest.raises(TransactionError) as refused:
            await tx.commit()
        assert refused.value.condition == "amqp:transaction:timeout"
        receiver = await conn.open_receiver(queue)
        assert await receive_all(receiver) == []


async def test_the_blocking_api(broker: BrokerProcess, queue: str) -> None:
    def work() -> list[Any]:
        with petrel.blocking.connect(broker.url) as conn:
            sender = conn.open_sender(queue)
            with conn.transaction() as tx:
                tx.send(sender, "one")
                tx.send(sender, "two")
            with pytest.raises(RuntimeError), conn.transaction() as tx:
                tx.send(sender, "rolled back")
                raise RuntimeError("undo")
            receiver = conn.open_receiver(queue, credit=2)
            first = receiver.receive(timeout=10)
            second = receiver.receive(timeout=10)
            with conn.transaction() as tx:
                tx.accept(first)
                tx.accept(second)
            return [first.message.body, second.message.body]

    assert await asyncio.to_thread(work) == ["one", "two"]
    async with await petrel.connect(broker.url) as conn:
        receiver = await conn.open_receiver(queue)
        assert await receive_all(receiver) == []


def _refused_transactional_acquisition(port: int, queue: str) -> Detach:
    """Attach a receiver to ``queue`` on a raw connection and give it credit in a
    transaction (a ``txn-id`` in the flow's properties, part 4.4.3); the broker's
    answer.  The connection then still works: a plain sender on it is answered."""
    window = 2048
    with RawClient(port) as client:
        begin = Begin(next_outgoing_id=0, incoming_window=window, outgoing_window=window)
        client.send(AMQP_HEADER, frame(Open(container_id="raw-tx")), frame(begin))
        client.expect(Open)
        theirs = client.expect(Begin)
        attach = Attach(
            name="rx-in-txn", handle=0, role=Role.RECEIVER, source=Source(address=queue),
            target=Target(),
        )  # fmt: skip
        client.send(frame(attach))
        answer = client.expect(Attach)
        flow = Flow(
            next_incoming_id=theirs.next_outgoing_id,
            incoming_window=window,
            next_outgoing_id=0,
            outgoing_window=window,
            handle=0,
            delivery_count=0,
            link_credit=10,
            properties={TXN_ID_FLOW_KEY: b"\x00\x00\x00\x00\x00\x00\x00\x01"},
        )
        client.send(frame(flow))
        detach = client.expect(Detach)
        assert detach.handle == answer.handle
        assert client.performatives(Transfer) == []  # no message went out in the meantime
        client.send(frame(Detach(handle=0, closed=True)))
        other = Attach(
            name="tx-after", handle=1, role=Role.SENDER, source=Source(),
            target=Target(address=queue), initial_delivery_count=0,
        )  # fmt: skip
        client.send(frame(other))
        assert client.expect(Attach).name == "tx-after"
        return detach


async def test_transactional_acquisition_is_refused(broker: BrokerProcess, queue: str) -> None:
    """A receiver asking for messages in a transaction is told ``amqp:not-implemented`` (by a
    closing detach of that link, naming what is missing); its queue's messages stay there."""
    async with await petrel.connect(broker.url) as conn:
        sender = await conn.open_sender(queue)
        await sender.send("waiting")
        detach = await asyncio.to_thread(_refused_transactional_acquisition, broker.port, queue)
        assert detach.closed
        assert detach.error is not None
        assert detach.error.condition == "amqp:not-implemented"
        assert "transactional acquisition" in (detach.error.description or "")
        receiver = await conn.open_receiver(queue)
        assert await receive_all(receiver) == ["waiting"]
