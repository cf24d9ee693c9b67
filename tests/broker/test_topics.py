"""Topics (multicast addresses) as a Proton client sees them: fan-out, durable and shared
subscriptions."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from proton import Message
from proton.reactor import DurableSubscription, Selector
from proton.utils import BlockingConnection, BlockingReceiver, LinkDetached

from tests.helpers.proton_client import (
    Capabilities,
    bodies,
    drain,
    fetch,
    receiver,
    send_all,
    sender,
    settle,
)

pytestmark = pytest.mark.interop

TOPIC = Capabilities("topic")

Connect = Callable[..., BlockingConnection]


def publish(conn: BlockingConnection, address: str, *items: object, topic: bool = True) -> None:
    tx = sender(conn, address, options=TOPIC if topic else None)
    send_all(tx, [Message(body=item) for item in items])
    tx.close()


def test_every_subscriber_gets_every_message(conn: BlockingConnection, name: str) -> None:
    subscribers = [receiver(conn, name, credit=10, options=TOPIC) for _ in range(3)]
    publish(conn, name, *range(5))
    for rx in subscribers:
        assert bodies(fetch(conn, rx) for _ in range(5)) == [0, 1, 2, 3, 4]
    for rx in subscribers:
        assert drain(conn, rx) == []


def test_an_address_declared_multicast_needs_no_capability(conn: BlockingConnection) -> None:
    early = [receiver(conn, "news", credit=10) for _ in range(2)]
    publish(conn, "news", "first", "second", topic=False)
    late = receiver(conn, "news", credit=10)
    publish(conn, "news", "third", topic=False)
    for rx in early:
        assert bodies(fetch(conn, rx) for _ in range(3)) == ["first", "second", "third"]
    # A subscription starts when it is made.
    assert bodies(drain(conn, late)) == ["third"]


def test_a_topic_nobody_listens_to_takes_messages(conn: BlockingConnection, name: str) -> None:
    receiver(conn, name, options=TOPIC).close()  # the topic exists, nobody subscribes now
    publish(conn, name, "into the void")
    rx = receiver(conn, name, options=TOPIC)
    assert drain(conn, rx) == []


def test_a_subscriber_that_leaves_loses_its_subscription(
    conn: BlockingConnection, name: str
) -> None:
    rx = receiver(conn, name, credit=1, options=TOPIC, name="volatile")
    publish(conn, name, "one")
    assert fetch(conn, rx)[0].body == "one"
    rx.close()
    publish(conn, name, "while away")
    rx = receiver(conn, name, options=TOPIC, name="volatile")
    assert drain(conn, rx) == []


def test_subscribers_with_selectors(conn: BlockingConnection, name: str) -> None:
    reds = receiver(conn, name, credit=10, options=[TOPIC, Selector("color = 'red'")])
    everything = receiver(conn, name, credit=10, options=TOPIC)
    tx = sender(conn, name, options=TOPIC)
    send_all(
        tx,
        [Message(body=i, properties={"color": "red" if i % 2 else "blue"}) for i in range(6)],
    )
    assert bodies(drain(conn, reds)) == [1, 3, 5]
    assert bodies(drain(conn, everything)) == [0, 1, 2, 3, 4, 5]


# --- durable subscriptions ----------------------------------------------------------------------


def test_durable_subscription_keeps_messages_while_the_subscriber_is_away(
    connections: Connect, name: str
) -> None:
    container_id = f"durable-{uuid.uuid4()}"
    options = [DurableSubscription(), TOPIC]
    publisher = connections()

    first = connections(container_id=container_id)
    rx = receiver(first, name, credit=10, name="my-subscription", options=options)
    publish(publisher, name, "before")
    message, delivery = fetch(first, rx)
    assert message.body == "before"
    settle(delivery)
    first.close()  # gone without detaching: the subscription stays

    publish(publisher, name, "while away 1", "while away 2")

    second = connections(container_id=container_id)
    rx = receiver(second, name, name="my-subscription", options=options)
    assert bodies(drain(second, rx)) == ["while away 1", "while away 2"]
    rx.close()  # detach with closed=true: unsubscribe

    publish(publisher, name, "after unsubscribing")
    third = connections(container_id=container_id)
    rx = receiver(third, name, name="my-subscription", options=options)
    assert drain(third, rx) == []


def test_durable_subscription_returns_unsettled_messages(connections: Connect, name: str) -> None:
    container_id = f"durable-{uuid.uuid4()}"
    options = [DurableSubscription(), TOPIC]
    first = connections(container_id=container_id)
    rx = receiver(first, name, credit=10, name="sub", options=options)
    publish(connections(), name, "a", "b")
    fetch(first, rx)
    fetch(first, rx)
    first.close()  # neither settled
    second = connections(container_id=container_id)
    rx = receiver(second, name, name="sub", options=options)
    assert bodies(drain(second, rx)) == ["a", "b"]


def test_durable_subscriptions_are_per_container(connections: Connect, name: str) -> None:
    options = [DurableSubscription(), TOPIC]
    mine = connections(container_id=f"c1-{uuid.uuid4()}")
    theirs = connections(container_id=f"c2-{uuid.uuid4()}")
    rx_mine = receiver(mine, name, credit=10, name="sub", options=options)
    rx_theirs = receiver(theirs, name, credit=10, name="sub", options=options)
    publish(connections(), name, "x")
    assert bodies(drain(mine, rx_mine)) == ["x"]
    assert bodies(drain(theirs, rx_theirs)) == ["x"]


# --- shared subscriptions -----------------------------------------------------------------------


def test_global_shared_subscription_splits_the_messages(connections: Connect, name: str) -> None:
    shared = Capabilities("topic", "shared", "global")
    members = []
    for _ in range(2):
        conn = connections(container_id=f"member-{uuid.uuid4()}")
        members.append((conn, receiver(conn, name, credit=10, name="workers", options=shared)))
    watcher_conn = connections()
    watcher = receiver(watcher_conn, name, credit=20, options=TOPIC)
    publish(watcher_conn, name, *range(10))

    got = [bodies(drain(conn, rx)) for conn, rx in members]
    assert sorted(got[0] + got[1]) == list(range(10))
    assert got[0] and got[1]  # both members took a share
    assert all(part == sorted(part) for part in got)
    # A separate subscription still sees everything.
    assert bodies(drain(watcher_conn, watcher)) == list(range(10))


def test_shared_subscription_is_per_container_without_global(
    connections: Connect, name: str
) -> None:
    shared = Capabilities("topic", "shared")
    container_id = f"app-{uuid.uuid4()}"
    same = [connections(container_id=container_id) for _ in range(2)]
    other = connections(container_id=f"other-{uuid.uuid4()}")
    # Qpid JMS names the second link of a shared subscription "<name>|2".
    rx_a = receiver(same[0], name, credit=10, name="orders", options=shared)
    rx_b = receiver(same[1], name, credit=10, name="orders|2", options=shared)
    rx_other = receiver(other, name, credit=10, name="orders", options=shared)
    publish(other, name, *range(6))
    got_a, got_b = bodies(drain(same[0], rx_a)), bodies(drain(same[1], rx_b))
    assert sorted(got_a + got_b) == list(range(6))
    assert got_a and got_b
    assert bodies(drain(other, rx_other)) == list(range(6))


def test_non_durable_shared_subscription_ends_with_its_last_member(
    connections: Connect, name: str
) -> None:
    shared = Capabilities("topic", "shared", "global")
    publisher = connections()
    first, second = connections(), connections()
    rx1 = receiver(first, name, name="s|global-volatile1", options=shared)
    rx2 = receiver(second, name, name="s|global-volatile2", options=shared)
    rx1.close()
    publish(publisher, name, "kept for the remaining member")
    assert bodies(drain(second, rx2)) == ["kept for the remaining member"]
    rx2.close()
    publish(publisher, name, "nobody subscribes")
    rx = receiver(first, name, name="s|global-volatile1", options=shared)
    assert drain(first, rx) == []


def test_durable_shared_subscription_outlives_its_members(connections: Connect, name: str) -> None:
    shared = [Capabilities("topic", "shared", "global"), DurableSubscription()]
    member = connections()
    rx = receiver(member, name, name="audit|global", options=shared)
    member.close()
    publish(connections(), name, "kept")
    member = connections()
    rx = receiver(member, name, name="audit|global2", options=shared)
    assert bodies(drain(member, rx)) == ["kept"]


def test_a_durable_subscription_with_a_new_selector_is_a_new_subscription(
    connections: Connect, name: str
) -> None:
    container_id = f"selective-{uuid.uuid4()}"
    publisher = connections()

    def subscribe(selector: str) -> tuple[BlockingConnection, BlockingReceiver]:
        conn = connections(container_id=container_id)
        options = [DurableSubscription(), TOPIC, Selector(selector)]
        return conn, receiver(conn, name, name="picky", options=options)

    conn, rx = subscribe("k = 1")
    conn.close()
    tx = sender(publisher, name, options=TOPIC)
    send_all(tx, [Message(body="a", properties={"k": 1}), Message(body="b", properties={"k": 2})])

    conn, rx = subscribe("k = 1")
    got = drain(conn, rx)
    assert bodies(got) == ["a"]  # "b" never entered the subscription
    for _, delivery in got:
        settle(delivery)
    conn.close()
    send_all(tx, [Message(body="c", properties={"k": 2})])

    conn, rx = subscribe("k = 2")  # replaces the old subscription: it starts empty
    assert drain(conn, rx) == []
    send_all(tx, [Message(body="d", properties={"k": 2})])
    assert bodies(drain(conn, rx)) == ["d"]


def test_a_shared_subscription_refuses_a_member_with_another_selector(
    connections: Connect, name: str
) -> None:
    shared = Capabilities("topic", "shared", "global")
    first, second = connections(), connections()
    receiver(first, name, name="club", options=[shared, Selector("k = 1")])
    with pytest.raises(LinkDetached) as caught:
        receiver(second, name, name="club", options=[shared, Selector("k = 2")])
    assert caught.value.condition == "amqp:precondition-failed"
