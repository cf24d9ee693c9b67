"""Petrel against RabbitMQ 3.10 (Debian's ``rabbitmq-server``): Petrel's client on
RabbitMQ's AMQP 1.0 plugin, and RabbitMQ's shovel (an AMQP 1.0 client) on Petrel's
broker.  One private node serves the module (``tests/helpers/rabbitmq.py``).

What RabbitMQ 3.10.8 does, as these tests found it:

- ``/queue/NAME`` declares a non-durable classic queue on attach; a durable
  terminus declares it durable (and, in a virtual host whose default queue
  type is quorum, a quorum queue).  ``/amq/queue/NAME`` declares nothing: a
  receiver of a missing queue gets ``amqp:not-found``; a sender's messages to
  it are accepted and dropped, like any unroutable message.
- Outcomes: accepted, rejected (dead-lettered when the queue has a DLX,
  otherwise dropped) and released (requeued at the head; the redelivery
  has ``first-acquirer`` false and ``delivery-count`` still 0).  The
  ``modified`` outcome is not offered, and using it ends the session with
  ``amqp:invalid-field``.
- Drain: on a classic queue, a drain that leaves credit unused crashes the
  channel and the connection is closed with ``amqp:internal-error``
  (``function_clause`` in ``rabbit_classic_queue:handle_event``: RabbitMQ
  issue #7119, fixed by PR #7141 in later 3.10.x/3.11.x releases).  Quorum
  queues drain, though RabbitMQ sends its "drained" flow *before* the
  transfers that used the credit, with a delivery-count that leaves them
  out (Petrel's receiver waits for them).  Once a drain has given credit
  back, the link is out of step: RabbitMQ answers a second drain with too
  small a delivery-count (it never completes) and sends nothing for new
  credit.  So the drain tests use quorum queues and give credit back at most
  once per link.
- Credit: RabbitMQ takes each credit update as absolute and sends past the
  limit a receiver set; Petrel's client tolerates that (``engine/link.py``,
  ``_over_credit``), which the 5,000-message test exercises.
- The shovel (``src-protocol: amqp10``) does not forward the bare message: it
  keeps only the body, as a ``data`` section (an ``amqp-value`` body arrives
  as the bytes of its encoded section), and drops the header, properties and
  application properties.  Its destination link has a durable target.  And
  without user info in ``src-uri`` it connects with no SASL layer at all.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import petrel
import petrel.blocking
from tests.helpers.rabbitmq import RabbitMQNode, rabbitmq_node_or_skip
from tests.helpers.servers import free_port, run_broker

pytestmark = pytest.mark.interop

#: A virtual host whose queues are quorum queues (the only kind that drains in 3.10.8).
QUORUM_VHOST = "petrel-quorum"
#: Queues named ``reject.*`` dead-letter (through the default exchange) into this queue.
DEAD_LETTERS = "petrel-dead-letters"


@pytest.fixture(scope="module")
def rabbit() -> Iterator[RabbitMQNode]:
    with rabbitmq_node_or_skip() as node:
        node.ctl("add_vhost", QUORUM_VHOST, "--default-queue-type", "quorum")
        node.ctl("set_permissions", "-p", QUORUM_VHOST, "guest", ".*", ".*", ".*")
        policy = {"dead-letter-exchange": "", "dead-letter-routing-key": DEAD_LETTERS}
        node.ctl("set_policy", "dlx", r"^reject\.", json.dumps(policy), "--apply-to", "queues")
        yield node


@pytest.fixture
def queue(request: pytest.FixtureRequest) -> str:
    """A queue name no other test uses."""
    return f"{request.node.name.removeprefix('test_')}-{uuid.uuid4().hex[:8]}"


async def connect(rabbit: RabbitMQNode, **options: Any) -> petrel.Connection:
    return await petrel.connect(rabbit.url, reconnect=False, **options)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


# --- Petrel's client on RabbitMQ ------------------------------------------------------------------


async def test_send_and_receive_in_order(rabbit: RabbitMQNode, queue: str) -> None:
    address = rabbit.queue(queue)
    sent = [
        petrel.Message(
            f"text {i}" if i % 2 else f"bytes {i}".encode(),
            message_id=f"id-{i}",
            subject="order",
            application_properties={"n": i, "kind": "even" if i % 2 == 0 else "odd"},
        )
        for i in range(40)
    ]
    async with await connect(rabbit) as conn:
        async with await conn.open_sender(address) as sender:
            for message in sent:
                await sender.send(message, timeout=30)  # each one accepted
        async with await conn.open_receiver(address, credit=10) as receiver:
            got = []
            for _ in sent:
                delivery = await receiver.receive(timeout=30)
                got.append(delivery.message)
                await delivery.accept()
    assert [m.body for m in got] == [m.body for m in sent]
    assert [m.message_id for m in got] == [f"id-{i}" for i in range(40)]
    assert [m.application_properties for m in got] == [m.application_properties for m in sent]
    assert {m.subject for m in got} == {"order"}
    assert not any(m.durable for m in got)  # sent without durable: RabbitMQ says so too
    # The accepts reached RabbitMQ: nothing is left (a classic queue counts at once).
    wait_until(lambda: rabbit.queues().get(queue) == 0, f"{queue} to be empty")


async def test_5000_messages_in_flight(rabbit: RabbitMQNode, queue: str) -> None:
    # All sends in flight at once, and a receiver whose window (100) RabbitMQ overruns:
    # it takes each credit top-up as absolute (see engine/link.py, _over_credit).
    count = 5000
    address = rabbit.queue(queue)
    async with await connect(rabbit) as conn:
        receiver = await conn.open_receiver(address)
        sender = await conn.open_sender(address)
        outcomes = [await sender.send(petrel.Message(i), wait=False) for i in range(count)]
        bodies = []
        for _ in range(count):
            delivery = await receiver.receive(timeout=60)
            bodies.append(delivery.message.body)
            delivery.settle()
        results = await asyncio.wait_for(asyncio.gather(*outcomes), 60)
        assert receiver.is_open
    assert results == [None] * count  # every one accepted
    assert bodies == list(range(count))


async def test_a_5_mib_message(rabbit: RabbitMQNode, queue: str) -> None:
    body = os.urandom(5 * 1024 * 1024)
    address = rabbit.queue(queue)
    async with await connect(rabbit) as conn:
        sender = await conn.open_sender(address)
        await sender.send(petrel.Message(body, message_id="big"), timeout=60)
        receiver = await conn.open_receiver(address, credit=1)
        delivery = await receiver.receive(timeout=60)
        await delivery.accept()
    assert delivery.message.message_id == "big"
    assert len(delivery.message.body) == len(body)
    assert delivery.message.body == body


async def test_release_requeues_at_the_head(rabbit: RabbitMQNode, queue: str) -> None:
    address = rabbit.queue(queue)
    async with await connect(rabbit) as conn:
        sender = await conn.open_sender(address)
        for body in ("first", "second"):
            await sender.send(petrel.Message(body), timeout=30)
        # One credit at a time: the release reaches the queue before the next credit.
        receiver = await conn.open_receiver(address, credit=0)
        seen = []
        for settle in ("release", "release", "accept", "accept"):
            receiver.add_credit(1)
            delivery = await receiver.receive(timeout=30)
            message = delivery.message
            seen.append((message.body, message.first_acquirer, message.delivery_count))
            await getattr(delivery, settle)()
    # RabbitMQ marks a redelivery with first-acquirer false and, as the spec has it for
    # ``released``, does not count it as a failed delivery attempt.
    assert seen == [
        ("first", True, 0),
        ("first", False, 0),
        ("first", False, 0),
        ("second", True, 0),
    ]


async def test_reject_dead_letters(rabbit: RabbitMQNode) -> None:
    queue = f"reject.{uuid.uuid4().hex[:8]}"  # the policy gives reject.* a dead-letter queue
    async with await connect(rabbit) as conn:
        dead = await conn.open_receiver(rabbit.queue(DEAD_LETTERS), credit=10)  # declares it
        sender = await conn.open_sender(rabbit.queue(queue))
        for body in ("bad", "good"):
            await sender.send(petrel.Message(body), timeout=30)
        receiver = await conn.open_receiver(rabbit.queue(queue), credit=0)
        receiver.add_credit(1)
        bad = await receiver.receive(timeout=30)
        await bad.reject("amqp:precondition-failed", "not today")
        receiver.add_credit(1)
        good = await receiver.receive(timeout=30)
        await good.accept()
        dead_letter = await dead.receive(timeout=30)
        await dead_letter.accept()
    assert (bad.message.body, good.message.body) == ("bad", "good")
    # The rejected message, and only it, went to the dead-letter queue, not back.
    assert dead_letter.message.body == "bad"

    def both_empty() -> bool:
        counts = rabbit.queues()
        return counts.get(queue) == 0 and counts.get(DEAD_LETTERS) == 0

    wait_until(both_empty, f"{queue} and {DEAD_LETTERS} to be empty")


async def test_only_the_outcomes_rabbitmq_offers_are_sent(rabbit: RabbitMQNode, queue: str) -> None:
    # RabbitMQ 3.10 offers accepted, rejected and released only, and ends the session over
    # a ``modified``: the client keeps to what the source lists.
    address = rabbit.queue(queue)
    async with await connect(rabbit) as conn:
        sender = await conn.open_sender(address)
        await sender.send(petrel.Message("m"), timeout=30)
        receiver = await conn.open_receiver(address, credit=1)
        outcomes = receiver.remote_source.outcomes if receiver.remote_source else None
        assert outcomes is not None
        assert sorted(map(str, outcomes)) == [
            "amqp:accepted:list",
            "amqp:rejected:list",
            "amqp:released:list",
        ]
        delivery = await receiver.receive(timeout=30)
        with pytest.raises(petrel.NotImplementedByPeer, match="modified"):
            await delivery.modify(undeliverable_here=True)
        assert not delivery.settled
        # Counted as an attempt where it can be; released plainly here.
        await delivery.release(delivered=True)
        redelivered = await receiver.receive(timeout=30)
        await redelivered.accept()
        assert receiver.is_open and sender.is_open  # the session lives on
        await sender.send(petrel.Message("after"), timeout=30)
    assert redelivered.message.body == "m"
    assert redelivered.message.first_acquirer is False


async def test_drain_an_empty_queue(rabbit: RabbitMQNode, queue: str) -> None:
    async with await connect(rabbit, hostname=f"vhost:{QUORUM_VHOST}", container_id=queue) as conn:
        # A durable source makes RabbitMQ declare a durable queue: here a quorum queue.
        receiver = await conn.open_receiver(rabbit.queue(queue), name=queue, durable=True, credit=0)
        receiver.add_credit(5)
        assert receiver.credit == 5
        await receiver.drain(timeout=30)
        assert (receiver.credit, receiver.buffered) == (0, 0)
        await receiver.close()  # a durable receiver would only detach


async def test_drain_a_queue_with_messages(rabbit: RabbitMQNode, queue: str) -> None:
    async with await connect(rabbit, hostname=f"vhost:{QUORUM_VHOST}", container_id=queue) as conn:
        receiver = await conn.open_receiver(rabbit.queue(queue), name=queue, durable=True, credit=0)
        sender = await conn.open_sender(rabbit.existing_queue(queue))
        for i in range(3):
            await sender.send(petrel.Message(i), timeout=30)
        # More credit than messages: RabbitMQ sends the three and gives back two.
        receiver.add_credit(5)
        await receiver.drain(timeout=30)
        assert (receiver.credit, receiver.buffered) == (0, 3)
        bodies = []
        while (delivery := receiver.receive_nowait()) is not None:
            bodies.append(delivery.message.body)
            await delivery.accept()
        assert bodies == [0, 1, 2]
        await receiver.close()
        # Less credit than messages, on a new link: two come, two stay.
        for i in range(3, 7):
            await sender.send(petrel.Message(i), timeout=30)
        receiver = await conn.open_receiver(rabbit.existing_queue(queue), credit=0)
        receiver.add_credit(2)
        await receiver.drain(timeout=30)
        assert (receiver.credit, receiver.buffered) == (0, 2)
        receiver.add_credit(2)
        bodies = []
        for _ in range(4):
            delivery = await receiver.receive(timeout=30)
            bodies.append(delivery.message.body)
            await delivery.accept()
        assert bodies == [3, 4, 5, 6]


def test_blocking_api(rabbit: RabbitMQNode, queue: str) -> None:
    address = rabbit.queue(queue)
    with petrel.blocking.connect(rabbit.url, reconnect=False) as conn:
        sender = conn.open_sender(address)
        sender.send(petrel.Message("one"), timeout=30)
        futures = [sender.send(petrel.Message(body), wait=False) for body in ("two", "three")]
        assert [f.result(timeout=30) for f in futures] == [None, None]
        receiver = conn.open_receiver(address, credit=2)
        bodies = []
        for _ in range(3):
            delivery = receiver.receive(timeout=30)
            bodies.append(delivery.message.body)
            delivery.accept()
        receiver.close()
        sender.close()
    assert bodies == ["one", "two", "three"]
    wait_until(lambda: rabbit.queues().get(queue) == 0, f"{queue} to be empty")


# --- RabbitMQ's shovel on Petrel's broker ---------------------------------------------------------


def _open_sockets(port: int) -> int:
    """Established (or half-closed) TCP connections to 127.0.0.1:``port`` on the server side."""
    local = f"0100007F:{port:04X}"
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[3] in ("01", "08"):  # ESTABLISHED, CLOSE_WAIT
            count += 1
    return count


def test_a_shovel_moves_a_petrel_queue_into_rabbitmq(rabbit: RabbitMQNode, queue: str) -> None:
    count = 1000
    source = f"shovel.{queue}"
    bodies = [f"message {i}".encode() for i in range(count)]
    port = free_port()
    # Anonymous clients refused: the shovel must log in (SASL PLAIN).
    config = (
        f'[[listeners]]\nurl = "amqp://127.0.0.1:{port}"\nallow_anonymous = false\n\n'
        '[[users]]\nname = "shovel"\npassword = "shovel-secret"\n'
    )
    with run_broker(config, port=port) as broker:
        petrel_url = f"amqp://shovel:shovel-secret@127.0.0.1:{port}"
        with pytest.raises(petrel.Unauthorized):
            petrel.blocking.connect(broker.url, reconnect=False).close()
        with petrel.blocking.connect(petrel_url, reconnect=False) as conn:
            sender = conn.open_sender(source)
            futures = [sender.send(petrel.Message(body), wait=False) for body in bodies]
            assert [f.result(timeout=60) for f in futures] == [None] * count

        # The shovel logs in with SASL PLAIN, takes ``count`` messages (acknowledging
        # each on Petrel once RabbitMQ has accepted it) and then deletes itself.
        definition = {
            "src-protocol": "amqp10",
            "src-uri": petrel_url,
            "src-address": source,
            "src-delete-after": count,
            "dest-protocol": "amqp10",
            "dest-uri": rabbit.url,
            "dest-address": rabbit.queue(queue),
        }
        with petrel.blocking.connect(rabbit.url, reconnect=False) as conn:
            # The shovel's target is durable, so RabbitMQ declares a durable queue: so do we.
            receiver = conn.open_receiver(rabbit.queue(queue), name=queue, durable=True)
            rabbit.ctl("set_parameter", "shovel", queue, json.dumps(definition))
            got = []
            for _ in range(count):
                delivery = receiver.receive(timeout=60)
                got.append(delivery.message.body)
                delivery.accept()
            receiver.close()
        assert got == bodies

        # The shovel is gone and so is its connection to Petrel: nothing it held can still
        # come back.  Petrel's queue is empty (a drain on Petrel's broker is exact) ...
        wait_until(lambda: _open_sockets(broker.port) == 0, "the shovel to disconnect")
        with petrel.blocking.connect(petrel_url, reconnect=False) as conn:
            leftover = conn.open_receiver(source, credit=0)
            leftover.add_credit(10)
            leftover.drain(timeout=30)
            assert leftover.credit == 0
            with pytest.raises(petrel.Timeout):  # what a drain brought would be here now
                leftover.receive(timeout=0)
    # ... and RabbitMQ got each message once.
    wait_until(lambda: rabbit.queues().get(queue) == 0, f"{queue} to be empty")
    wait_until(lambda: queue not in rabbit.ctl("list_parameters"), "the shovel to delete itself")


# --- last, as it restarts the node ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)  # a stop and a start of the node, on a loaded machine
async def test_durable_messages_survive_a_restart(rabbit: RabbitMQNode, queue: str) -> None:
    async with await connect(rabbit, container_id=queue) as conn:
        # A durable source declares a durable (classic) queue; send to it as it exists.
        declaring = await conn.open_receiver(
            rabbit.queue(queue), name=queue, durable=True, credit=0
        )
        await declaring.detach()
        sender = await conn.open_sender(rabbit.existing_queue(queue))
        for i in range(6):
            await sender.send(petrel.Message(f"m{i}", durable=i % 2 == 0), timeout=30)
    wait_until(lambda: rabbit.queues().get(queue) == 6, f"6 messages in {queue}")

    rabbit.restart()

    async with await connect(rabbit) as conn:
        receiver = await conn.open_receiver(rabbit.existing_queue(queue), credit=0)
        receiver.add_credit(3)
        got = []
        for _ in range(3):
            delivery = await receiver.receive(timeout=30)
            got.append(delivery.message)
            await delivery.accept()
    # Only the durable messages were kept, and their header still says durable.
    assert [(m.body, m.durable) for m in got] == [("m0", True), ("m2", True), ("m4", True)]
    wait_until(lambda: rabbit.queues().get(queue) == 0, f"{queue} to be empty")


async def test_rabbitmq_behind_a_petrel_router_through_a_link_route(
    rabbit: RabbitMQNode, queue: str
) -> None:
    """A client of a Petrel router reaches RabbitMQ's queues through a link route: the
    router dials RabbitMQ (SASL PLAIN) and passes the client's links through."""
    from petrel.router import Router, RouterSettings
    from tests.helpers.servers import free_port

    port = free_port()
    settings = RouterSettings.model_validate(
        {
            "router": {"id": "R"},
            "listeners": [{"url": f"amqp://127.0.0.1:{port}"}],
            "connectors": [
                {
                    "name": "rabbit",
                    "url": f"amqp://127.0.0.1:{rabbit.port}",
                    "role": "route-container",
                    "username": "guest",
                    "password": "guest",
                }
            ],
            "link_routes": [
                {"prefix": "/queue/", "direction": "in", "connector": "rabbit"},
                {"prefix": "/queue/", "direction": "out", "connector": "rabbit"},
            ],
        }
    )
    router = Router(settings)
    await router.start()
    try:
        await until(lambda: bool(router.network.link_routes), "the router to reach RabbitMQ")
        address = rabbit.queue(queue)
        async with await petrel.connect(f"amqp://127.0.0.1:{port}", reconnect=False) as conn:
            async with await conn.open_sender(address) as sender:
                for i in range(20):
                    await sender.send(petrel.Message(body=i), timeout=30)  # RabbitMQ accepts
            await until(lambda: rabbit.queues().get(queue) == 20, f"{queue} to hold 20")
            async with await conn.open_receiver(address, credit=5) as receiver:
                got = []
                for _ in range(20):
                    delivery = await receiver.receive(timeout=30)
                    got.append(delivery.message.body)
                    await delivery.accept()
        assert got == list(range(20))
        await until(lambda: rabbit.queues().get(queue) == 0, f"{queue} to be empty")
    finally:
        await router.stop(timeout=1.0)


async def until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """``wait_until`` for tests whose event loop must keep running (a router in it)."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.2)
