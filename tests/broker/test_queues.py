"""Queues as a Proton client sees them: competing consumers, every outcome, redelivery,
dead letters, TTL, priority, browsing and selectors."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from proton import Message
from proton.reactor import AtMostOnce, Copy, Selector
from proton.utils import BlockingConnection, LinkDetached

from tests.helpers.proton_client import (
    bodies,
    drain,
    fetch,
    flush,
    receiver,
    send_all,
    sender,
    settle,
)

pytestmark = pytest.mark.interop

DEAD_LETTER_REASON = "x-opt-petrel-dead-letter-reason"
DEAD_LETTER_DESCRIPTION = "x-opt-petrel-dead-letter-description"
ORIGINAL_QUEUE = "x-opt-petrel-original-queue"


def put(conn: BlockingConnection, address: str, *messages: Any, **fields: Any) -> None:
    """Send ``messages`` (bodies, or ``Message`` objects) to ``address`` and wait for them."""
    tx = sender(conn, address)
    send_all(tx, [m if isinstance(m, Message) else Message(body=m, **fields) for m in messages])
    tx.close()


# --- competing consumers ----------------------------------------------------------------------


def test_competing_consumers_take_turns(conn: BlockingConnection, name: str) -> None:
    a = receiver(conn, name, credit=5)
    b = receiver(conn, name, credit=5)
    put(conn, name, *range(10))
    got_a = [fetch(conn, a)[0].body for _ in range(5)]
    got_b = [fetch(conn, b)[0].body for _ in range(5)]
    assert {tuple(got_a), tuple(got_b)} == {(0, 2, 4, 6, 8), (1, 3, 5, 7, 9)}
    assert drain(conn, a) == []
    assert drain(conn, b) == []


def test_each_consumer_gets_no_more_than_its_credit(conn: BlockingConnection, name: str) -> None:
    a = receiver(conn, name, credit=2)
    b = receiver(conn, name, credit=6)
    put(conn, name, *range(10))
    got_a = [fetch(conn, a)[0].body for _ in range(2)]
    got_b = [fetch(conn, b)[0].body for _ in range(6)]
    assert sorted(got_a + got_b) == list(range(8))
    assert got_a == sorted(got_a) and got_b == sorted(got_b)
    # What nobody had credit for waited in the queue.
    assert bodies(drain(conn, a)) == [8, 9]
    assert drain(conn, b) == []


def test_a_consumer_without_credit_gets_nothing(conn: BlockingConnection, name: str) -> None:
    idle = receiver(conn, name, credit=0)
    put(conn, name, "waiting")
    busy = receiver(conn, name, credit=1)
    message, delivery = fetch(conn, busy)
    assert message.body == "waiting"
    settle(delivery)
    assert drain(conn, idle) == []


# --- outcomes -----------------------------------------------------------------------------------


def test_accepted_message_is_gone(conn: BlockingConnection, name: str) -> None:
    put(conn, name, "once")
    rx = receiver(conn, name, credit=1)
    message, delivery = fetch(conn, rx)
    assert message.body == "once"
    settle(delivery, "accept")
    rx.close()
    again = receiver(conn, name)
    assert drain(conn, again) == []


def test_rejected_messages_go_to_the_dead_letter_address(conn: BlockingConnection) -> None:
    put(conn, "rejects", "plain", properties={"kind": "plain"})
    put(conn, "rejects", "explained", properties={"kind": "explained"})
    rx = receiver(conn, "rejects", credit=2)
    (_, plain), (_, explained) = fetch(conn, rx), fetch(conn, rx)
    settle(plain, "reject")
    settle(explained, "reject", condition=("app:no-such-product", "product 42 is not sold"))
    flush(conn)
    dlq = receiver(conn, "rejects.dlq", credit=2)
    first, _ = fetch(conn, dlq)
    second, _ = fetch(conn, dlq)
    assert (first.body, second.body) == ("plain", "explained")
    assert first.properties == {"kind": "plain"}
    assert first.annotations[DEAD_LETTER_REASON] == "amqp:rejected"
    assert first.annotations[ORIGINAL_QUEUE] == "rejects"
    assert second.annotations[DEAD_LETTER_REASON] == "app:no-such-product"
    assert second.annotations[DEAD_LETTER_DESCRIPTION] == "product 42 is not sold"
    assert drain(conn, rx) == []


def test_rejected_without_dead_letter_address_is_dropped(
    conn: BlockingConnection, name: str
) -> None:
    put(conn, name, "bad")
    rx = receiver(conn, name, credit=1)
    settle(fetch(conn, rx)[1], "reject")
    assert drain(conn, rx) == []


def test_released_messages_come_back_in_order(conn: BlockingConnection, name: str) -> None:
    put(conn, name, *(f"m{i}" for i in range(5)))
    rx = receiver(conn, name, credit=3)
    d0, d1, d2 = (fetch(conn, rx)[1] for _ in range(3))
    settle(d2, "release")
    settle(d1, "accept")
    settle(d0, "release")
    again = drain(conn, rx)
    assert bodies(again) == ["m0", "m2", "m3", "m4"]
    # Released is not a failed delivery attempt.
    assert [m.delivery_count for m, _ in again] == [0, 0, 0, 0]


def test_modified_delivery_failed_raises_the_delivery_count(
    conn: BlockingConnection, name: str
) -> None:
    put(conn, name, "flaky")
    rx = receiver(conn, name, credit=1)
    counts = []
    for _ in range(3):
        message, delivery = fetch(conn, rx)
        counts.append(message.delivery_count)
        settle(delivery, "modify", failed=True)
        rx.link.flow(1)
    message, delivery = fetch(conn, rx)
    counts.append(message.delivery_count)
    # Modified without delivery-failed does not count as an attempt.
    settle(delivery, "modify", failed=False)
    rx.link.flow(1)
    message, delivery = fetch(conn, rx)
    counts.append(message.delivery_count)
    assert counts == [0, 1, 2, 3, 3]
    assert message.body == "flaky"
    settle(delivery)


def test_undeliverable_here_is_not_offered_to_that_consumer_again(
    connections: Callable[..., BlockingConnection], name: str
) -> None:
    conn = connections()
    picky = receiver(conn, name, credit=5)
    put(conn, name, "not for picky")
    message, delivery = fetch(conn, picky)
    settle(delivery, "modify", undeliverable=True)
    assert drain(conn, picky) == []
    other_conn = connections()
    other = receiver(other_conn, name, credit=1)
    message, delivery = fetch(other_conn, other)
    assert message.body == "not for picky"
    assert message.delivery_count == 0
    settle(delivery, "release")
    flush(other_conn)
    # Back in the queue, still not for picky.
    assert drain(conn, picky) == []
    assert bodies(drain(other_conn, other)) == ["not for picky"]


def test_max_delivery_attempts_dead_letters(conn: BlockingConnection) -> None:
    put(conn, "attempts", "poison", properties={"id": 7})
    rx = receiver(conn, "attempts", credit=1)
    for attempt in range(3):
        message, delivery = fetch(conn, rx)
        assert message.delivery_count == attempt
        settle(delivery, "modify", failed=True)
        rx.link.flow(1)
    dlq = receiver(conn, "attempts.dlq", credit=1)
    message, _ = fetch(conn, dlq)
    assert message.body == "poison"
    assert message.properties == {"id": 7}
    assert message.annotations[DEAD_LETTER_REASON] == "petrel:delivery-attempts-exceeded"
    assert message.annotations[ORIGINAL_QUEUE] == "attempts"
    assert message.delivery_count == 3
    assert drain(conn, rx) == []


@pytest.mark.parametrize("how", ["close the connection", "detach the link"])
def test_a_consumer_that_goes_away_returns_its_unsettled_messages(
    connections: Callable[..., BlockingConnection], name: str, how: str
) -> None:
    conn = connections()
    put(conn, name, *(f"m{i}" for i in range(4)))
    leaving_conn = connections()
    leaving = receiver(leaving_conn, name, credit=3)
    deliveries = [fetch(leaving_conn, leaving)[1] for _ in range(3)]
    settle(deliveries[1], "accept")
    if how == "close the connection":
        leaving_conn.close()
    else:
        leaving.close()
    rx = receiver(conn, name)
    again = drain(conn, rx)
    assert bodies(again) == ["m0", "m2", "m3"]
    # m0 and m2 were with a consumer that vanished: that counts as an attempt.
    assert [m.delivery_count for m, _ in again] == [1, 1, 0]


# --- time to live -------------------------------------------------------------------------------


def test_expired_messages_are_never_delivered(conn: BlockingConnection, name: str) -> None:
    waiting = receiver(conn, name, credit=0)  # attached, but no credit until they expire
    put(
        conn,
        name,
        Message(body="ttl", ttl=0.1),
        Message(body="absolute", expiry_time=time.time() + 0.1),
        Message(body="keeps"),
        Message(body="long ttl", ttl=60),
    )
    time.sleep(0.25)
    assert bodies(drain(conn, waiting)) == ["keeps", "long ttl"]


def test_queue_default_ttl(conn: BlockingConnection) -> None:
    put(conn, "short-lived", "brief")
    time.sleep(0.35)
    assert drain(conn, receiver(conn, "short-lived")) == []


def test_expired_messages_go_to_the_expiry_address(conn: BlockingConnection) -> None:
    expired = receiver(conn, "expiring.expired", credit=1)
    put(conn, "expiring", Message(body="stale", ttl=0.1, properties={"n": 1}))
    message, delivery = fetch(conn, expired)
    assert message.body == "stale"
    assert message.properties == {"n": 1}
    assert message.annotations[ORIGINAL_QUEUE] == "expiring"
    assert not message.ttl  # it does not expire again
    settle(delivery)
    assert drain(conn, receiver(conn, "expiring")) == []


# --- priority and browsing ----------------------------------------------------------------------


def test_higher_priority_first(conn: BlockingConnection, name: str) -> None:
    order = [(1, "p1"), (9, "p9a"), (5, "p5"), (0, "p0"), (9, "p9b"), (4, "p4")]
    put(conn, name, *(Message(body=body, priority=p) for p, body in order))
    assert bodies(drain(conn, receiver(conn, name))) == ["p9a", "p9b", "p5", "p4", "p1", "p0"]


def test_browsing_leaves_messages_in_the_queue(conn: BlockingConnection, name: str) -> None:
    put(conn, name, "a", "b", "c")
    browser = receiver(conn, name, credit=10, options=Copy())
    seen = [fetch(conn, browser) for _ in range(3)]
    assert bodies(seen) == ["a", "b", "c"]
    for _, delivery in seen:
        settle(delivery)  # accepting a browsed copy takes nothing away
    put(conn, name, "d")
    assert fetch(conn, browser)[0].body == "d"
    assert bodies(drain(conn, receiver(conn, name))) == ["a", "b", "c", "d"]
    assert drain(conn, browser) == []


# --- selectors ----------------------------------------------------------------------------------

#: Messages for the selector table: (id, header and properties fields, application properties).
SELECTOR_MESSAGES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("red-3", {"priority": 7, "subject": "order"}, {"color": "red", "weight": 3}),
    ("red-12", {"durable": True, "correlation_id": "abc"}, {"color": "red", "weight": 12}),
    ("blue-5", {"id": "m-blue", "group_id": "g1"}, {"color": "blue", "weight": 5.5}),
    ("green-8", {"priority": 1}, {"color": "green", "weight": 8, "urgent": True}),
    ("none-1", {"subject": "refund"}, {"weight": 1}),
    ("black-0", {}, {"color": "black", "weight": 0, "urgent": False}),
]

SELECTOR_TABLE: list[tuple[str, list[str]]] = [
    ("color = 'red'", ["red-3", "red-12"]),
    ("color <> 'red'", ["blue-5", "green-8", "black-0"]),
    ("weight > 5", ["red-12", "blue-5", "green-8"]),
    ("weight BETWEEN 3 AND 8", ["red-3", "blue-5", "green-8"]),
    ("color IN ('red', 'green') AND weight <= 10", ["red-3", "green-8"]),
    ("color LIKE 'bl%'", ["blue-5", "black-0"]),
    ("color LIKE '_r%'", ["green-8"]),
    ("color IS NULL", ["none-1"]),
    ("NOT (color = 'red')", ["blue-5", "green-8", "black-0"]),
    ("urgent", ["green-8"]),
    ("urgent = FALSE OR weight * 2 = 11", ["blue-5", "black-0"]),
    ("JMSPriority > 6", ["red-3"]),
    ("JMSType = 'order'", ["red-3"]),
    ("JMSDeliveryMode = 'PERSISTENT'", ["red-12"]),
    ("JMSCorrelationID = 'abc'", ["red-12"]),
    ("JMSMessageID = 'ID:AMQP_NO_PREFIX:m-blue'", ["blue-5"]),
    ("JMSXGroupID = 'g1'", ["blue-5"]),
    ("JMSRedelivered = FALSE AND weight < 2", ["none-1", "black-0"]),
    ("nothing = 1", []),
    ("", [m[0] for m in SELECTOR_MESSAGES]),
]


def _selector_message(key: str, fields: dict[str, Any], props: dict[str, Any]) -> Message:
    return Message(body=key, properties=props, **fields)


def _in_queue_order(keys: list[str]) -> list[str]:
    """``keys`` as the queue hands them out: higher priority first, then in arrival order."""
    priority = {key: fields.get("priority", 4) for key, fields, _ in SELECTOR_MESSAGES}
    return sorted(keys, key=lambda k: -priority[k])


@pytest.mark.parametrize(("selector", "expected"), SELECTOR_TABLE)
def test_selector_table(
    conn: BlockingConnection, name: str, selector: str, expected: list[str]
) -> None:
    put(conn, name, *(_selector_message(*m) for m in SELECTOR_MESSAGES))
    selective = receiver(conn, name, options=Selector(selector))
    assert bodies(drain(conn, selective)) == _in_queue_order(expected)
    # What did not match is still in the queue, in order, for everyone else.
    rest = [m[0] for m in SELECTOR_MESSAGES if m[0] not in expected]
    assert bodies(drain(conn, receiver(conn, name))) == _in_queue_order(rest)


def test_consumers_with_selectors_split_a_queue(conn: BlockingConnection, name: str) -> None:
    reds = receiver(conn, name, credit=10, options=Selector("color = 'red'"))
    blues = receiver(conn, name, credit=10, options=Selector("color = 'blue'"))
    put(
        conn,
        name,
        *(Message(body=i, properties={"color": "red" if i % 3 else "blue"}) for i in range(9)),
    )
    assert bodies(fetch(conn, reds) for _ in range(6)) == [1, 2, 4, 5, 7, 8]
    assert bodies(fetch(conn, blues) for _ in range(3)) == [0, 3, 6]


def test_selector_is_echoed_in_the_attach(conn: BlockingConnection, name: str) -> None:
    rx = receiver(conn, name, options=Selector("a = 1"))
    remote_filter = rx.link.remote_source.filter
    remote_filter.rewind()
    remote_filter.next()
    (key, value), *_ = remote_filter.get_object().items()
    assert key == "selector"
    assert value.descriptor == "apache.org:selector-filter:string"
    assert value.value == "a = 1"


def test_bad_selector_refuses_the_link(conn: BlockingConnection, name: str) -> None:
    with pytest.raises(LinkDetached) as caught:
        receiver(conn, name, options=Selector("color = "))
    assert caught.value.condition == "amqp:invalid-field"
    # The connection carries on.
    put(conn, name, "still fine")
    assert bodies(drain(conn, receiver(conn, name))) == ["still fine"]


# --- settlement modes (message groups: test_groups.py) ----------------------------------------


def test_at_most_once_both_ways(conn: BlockingConnection, name: str) -> None:
    tx = sender(conn, name, options=AtMostOnce())
    for i in range(3):
        tx.send(Message(body=i))  # pre-settled: nothing to wait for
    rx = receiver(conn, name, credit=10, options=AtMostOnce())
    got = [fetch(conn, rx) for _ in range(3)]
    assert bodies(got) == [0, 1, 2]
    assert all(delivery.settled for _, delivery in got)
    rx.close()  # nothing was unsettled: nothing comes back
    assert drain(conn, receiver(conn, name)) == []
