"""Message groups (``properties.group-id``) as Proton consumers see them.

A group belongs to one consumer of its queue at a time: every message of
the group goes to that consumer, in order, and the group moves (with the
messages its owner left unsettled, first) only when the owner goes away.

Where several consumers compete, the groups are interleaved so that plain
round robin would split each of them: a broker that ignored ``group-id``
fails.  The last test runs a queue in process, to measure what holding a
group for a busy owner costs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pytest
from proton import Delivery, Message
from proton.reactor import Selector
from proton.utils import BlockingConnection, BlockingReceiver

from tests.helpers.proton_client import (
    bodies,
    connect,
    drain,
    fetch,
    flush,
    receiver,
    send_all,
    sender,
    settle,
    sync,
    wait_for,
)
from tests.helpers.servers import run_broker

pytestmark = pytest.mark.interop


def messages(pattern: str, first: int = 1, **fields: object) -> list[Message]:
    """Messages for a pattern like ``"A B u A"``: an upper-case word is a group id, ``u`` an
    ungrouped message.  Bodies number each group's messages from ``first``: ``A1 B1 u1 A2``."""
    counters: dict[str, itertools.count[int]] = {}
    made = []
    for word in pattern.split():
        number = next(counters.setdefault(word, itertools.count(first)))
        body = f"{word}{number}"
        made.append(Message(body=body, group_id=None if word == "u" else word, **fields))
    return made


def put(conn: BlockingConnection, address: str, batch: Iterable[Message]) -> None:
    """Send ``batch`` to ``address`` and wait until the broker has queued all of it."""
    tx = sender(conn, address)
    send_all(tx, batch)
    tx.close()


def group_of(body: object) -> str | None:
    """``A`` for ``A3``; None for an ungrouped ``u3``."""
    text = str(body)
    return None if text.startswith("u") else text.rstrip("0123456789")


def of_group(got: Sequence[str], group: str | None) -> list[str]:
    """What ``got`` holds of ``group`` (None: the ungrouped messages), in order."""
    return [body for body in got if group_of(body) == group]


def owners(got: Sequence[Sequence[str]], group: str) -> list[int]:
    """Which consumers (by index in ``got``) were given messages of ``group``."""
    return [i for i, seen in enumerate(got) if of_group(seen, group)]


def split_by_round_robin(batch: Sequence[Message], consumers: int) -> set[str]:
    """The groups of ``batch`` that round robin over ``consumers`` would split."""
    seen: dict[str, set[int]] = {}
    for position, message in enumerate(batch):
        if message.group_id is not None:
            seen.setdefault(message.group_id, set()).add(position % consumers)
    return {group for group, where in seen.items() if len(where) > 1}


def take(conn: BlockingConnection, consumers: Sequence[BlockingReceiver]) -> list[list[str]]:
    """Drain each consumer and accept what it got; the bodies each one got."""
    got = []
    for rx in consumers:
        pairs = drain(conn, rx)
        for _, delivery in pairs:
            settle(delivery)
        got.append(bodies(pairs))
    flush(conn)
    return got


def incoming(rx: BlockingReceiver) -> list[tuple[Message, Delivery]]:
    """What ``rx`` received and the test has not fetched yet."""
    assert rx.fetcher is not None
    return list(rx.fetcher.incoming)


def cut(conn: BlockingConnection) -> None:
    """Drop the connection's socket without an AMQP close: the broker sees the TCP
    connection end and nothing else."""
    assert conn.conn is not None and conn.conn.transport is not None
    transport = conn.conn.transport
    transport.close_tail()
    transport.close_head()
    flush(conn)


# --- ownership --------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [2, 3])
def test_interleaved_groups_each_stick_to_one_consumer(
    conn: BlockingConnection, name: str, count: int
) -> None:
    # Five messages a round, so each group's messages fall on every position modulo 2 and 3.
    batch = messages("A B C u u " * 4)
    assert split_by_round_robin(batch, count) == {"A", "B", "C"}
    consumers = [receiver(conn, name, credit=len(batch)) for _ in range(count)]
    put(conn, name, batch)
    got = take(conn, consumers)
    assert sorted(itertools.chain(*got)) == sorted(str(m.body) for m in batch)
    for group in "ABC":
        (owner,) = owners(got, group)
        assert of_group(got[owner], group) == [f"{group}{n}" for n in range(1, 5)]
    # Ungrouped messages are shared out as before.
    assert all(of_group(seen, None) for seen in got), got


def test_a_group_waits_for_its_owner_without_holding_up_other_messages(
    conn: BlockingConnection, name: str
) -> None:
    batch = messages("A A B u A B u A")
    owner = receiver(conn, name, credit=1)
    put(conn, name, batch[:1])
    assert fetch(conn, owner)[0].body == "A1"  # the group is the owner's; its credit is spent
    other = receiver(conn, name, credit=len(batch))
    put(conn, name, batch[1:])
    # The group's messages wait for their owner; the rest go past them.
    assert bodies(drain(conn, other)) == ["B1", "u1", "B2", "u2"]
    assert bodies(drain(conn, owner)) == ["A2", "A3", "A4"]


def test_an_owner_gets_what_was_queued_before_it_owned_the_group_first(
    conn: BlockingConnection, name: str
) -> None:
    owner = receiver(conn, name, credit=1)
    put(conn, name, messages("A A"))
    assert fetch(conn, owner)[0].body == "A1"  # A2 was queued before the group had an owner
    put(conn, name, messages("A", first=3))  # A3 after: it waits with its owner
    assert bodies(drain(conn, owner)) == ["A2", "A3"]


# --- the owner goes away ----------------------------------------------------------------------


def test_a_group_moves_when_its_consumer_detaches(conn: BlockingConnection, name: str) -> None:
    consumers = [receiver(conn, name, credit=20) for _ in range(3)]
    batch = messages("A u A u")
    assert split_by_round_robin(batch, 3) == {"A"}
    put(conn, name, batch)
    got = take(conn, consumers)
    (first,) = owners(got, "A")
    assert of_group(got[first], "A") == ["A1", "A2"]
    consumers.pop(first).close()
    for rx in consumers:
        rx.link.flow(20)
    later = messages("A A u A u A", first=3)
    assert split_by_round_robin(later, 2) == {"A"}
    put(conn, name, later)
    got = take(conn, consumers)
    (second,) = owners(got, "A")
    assert of_group(got[second], "A") == ["A3", "A4", "A5", "A6"]
    # It sticks there: still that consumer's while it stays attached.
    for rx in consumers:
        rx.link.flow(20)
    put(conn, name, messages("A u u A", first=7))
    got = take(conn, consumers)
    assert owners(got, "A") == [second]
    assert of_group(got[second], "A") == ["A7", "A8"]


def _detach(conn: BlockingConnection, rx: BlockingReceiver) -> None:
    rx.close()


def _cut(conn: BlockingConnection, rx: BlockingReceiver) -> None:
    cut(conn)


@pytest.mark.parametrize("leave", [_detach, _cut], ids=["detach the link", "drop the connection"])
def test_unsettled_messages_of_a_group_go_first_to_its_next_owner(
    connections: Callable[..., BlockingConnection],
    name: str,
    leave: Callable[[BlockingConnection, BlockingReceiver], None],
) -> None:
    conn = connections()
    leaving_conn = connections()
    leaving = receiver(leaving_conn, name, credit=4)
    put(conn, name, messages("A A A A A A A"))
    held = [fetch(leaving_conn, leaving) for _ in range(4)]
    assert bodies(held) == ["A1", "A2", "A3", "A4"]
    settle(held[1][1], "accept")
    settle(held[3][1], "accept")
    sync(leaving_conn)  # the broker has seen the outcomes before the connection drops
    # Two consumers with credit: round robin would share the group out between them.
    stayers = [receiver(conn, name, credit=20) for _ in range(2)]
    put(conn, name, messages("B u B u B u"))

    def arrived(group: str | None) -> list[str]:
        return [str(m.body) for rx in stayers for m, _ in incoming(rx) if group_of(m.body) == group]

    # The other messages flow; the rest of the group waits for its owner, out of credit.
    wait_for(conn, lambda: len(arrived("B") + arrived(None)) >= 6)
    assert arrived("A") == []
    leave(leaving_conn, leaving)
    wait_for(conn, lambda: len(arrived("A")) >= 5)
    got = [drain(conn, rx) for rx in stayers]
    (owner,) = owners([bodies(pairs) for pairs in got], "A")
    redelivered = [m for m, _ in got[owner] if group_of(m.body) == "A"]
    # What the old owner left unsettled comes back first, in order, then the rest of the group.
    assert [m.body for m in redelivered] == ["A1", "A3", "A5", "A6", "A7"]
    assert [m.delivery_count for m in redelivered] == [1, 1, 0, 0, 0]


# --- a message its group's owner will not take ------------------------------------------------


def test_a_message_its_group_owner_calls_undeliverable_goes_to_another_consumer(
    conn: BlockingConnection, name: str
) -> None:
    owner = receiver(conn, name, credit=1)
    put(conn, name, messages("A A A"))
    message, delivery = fetch(conn, owner)
    assert message.body == "A1"
    settle(delivery, "modify", undeliverable=True)
    flush(conn)
    other = receiver(conn, name, credit=10)
    # A1 will never go back to the owner, so it need not wait for it; the group stays put.
    assert bodies(drain(conn, other)) == ["A1"]
    assert bodies(drain(conn, owner)) == ["A2", "A3"]


def test_a_message_its_group_owner_does_not_select_goes_to_another_consumer(
    conn: BlockingConnection, name: str
) -> None:
    def colored(body: str, color: str) -> Message:
        return Message(body=body, group_id="A", properties={"color": color})

    owner = receiver(conn, name, credit=1, options=Selector("color = 'red'"))
    put(conn, name, [colored("A1", "red")])
    assert fetch(conn, owner)[0].body == "A1"
    other = receiver(conn, name, credit=10)
    put(conn, name, [colored("A2", "blue"), colored("A3", "red"), colored("A4", "blue")])
    assert bodies(drain(conn, other)) == ["A2", "A4"]
    assert bodies(drain(conn, owner)) == ["A3"]


def test_a_redelivered_message_is_not_marked_first_acquirer(
    connections: Callable[..., BlockingConnection], name: str
) -> None:
    """Part 3.2.1: first-acquirer true promises that no other link acquired the message.
    A plain release does not count as a delivery attempt, so the header must be rewritten
    for first-acquirer alone."""
    conn = connections()
    first = receiver(conn, name, credit=1)
    put(conn, name, messages("A A", first_acquirer=True))
    message, delivery = fetch(conn, first)
    assert (message.body, message.first_acquirer) == ("A1", True)
    delivery.update(Delivery.RELEASED)
    delivery.settle()
    flush(conn)  # the release first: Proton would write the flow ahead of it
    first.link.flow(1)
    message, _ = fetch(conn, first)
    assert (message.body, message.delivery_count, message.first_acquirer) == ("A1", 0, False)
    first.close()  # unsettled: it comes back once more, counted as an attempt
    again = drain(conn, receiver(conn, name))
    assert [(m.body, m.delivery_count, m.first_acquirer) for m, _ in again] == [
        ("A1", 1, False),
        ("A2", 0, True),
    ]


def test_durable_groups_stick_after_a_restart(tmp_path: Path) -> None:
    """The store keeps no group ids: recovered messages learn theirs when their bodies are
    read back, before any of them is dispatched."""
    batch = messages("A B u " * 4, durable=True)
    assert split_by_round_robin(batch, 2) == {"A", "B"}
    with run_broker(store="sqlite", data_dir=tmp_path) as broker:
        conn = connect(broker.url)
        put(conn, "kept-groups", batch)
        conn.close()
    with run_broker(store="sqlite", data_dir=tmp_path) as broker:
        conn = connect(broker.url)
        try:
            first = receiver(conn, "kept-groups", credit=1)
            message, delivery = fetch(conn, first)
            assert message.body == "A1"  # the first consumer owns group A now
            settle(delivery)
            (rest,) = take(conn, [receiver(conn, "kept-groups", credit=len(batch))])
            first.link.flow(len(batch))
            (owned,) = take(conn, [first])
        finally:
            conn.close()
    assert rest == ["B1", "u1", "B2", "u2", "B3", "u3", "B4", "u4"]
    assert owned == ["A2", "A3", "A4"]
