"""What a queue's bookkeeping costs: work per message stays flat as the queue grows, and
memory follows what the queue holds (in process, no broker)."""

from __future__ import annotations

from typing import Any

import pytest

from petrel.broker.queues import Entry, Queue
from petrel.server.config import QueueSettings


class Hooks:
    def entry_removed(self, queue: Queue, entry: Entry) -> None:
        pass

    def delivery_count_changed(self, queue: Queue, entry: Entry) -> None:
        pass

    def dead_letter(self, queue: Queue, entry: Entry, condition: str, description: str) -> None:
        pass

    def expired(self, queue: Queue, entry: Entry) -> None:
        pass

    def room_available(self, queue: Queue) -> None:
        pass

    def page_in(self, queue: Queue) -> None:
        pass


class Browser:
    """A browsing consumer that counts how many entries it was asked about."""

    id = 1
    browse = True

    def __init__(self) -> None:
        self.credit = 0
        self.browse_cursor = 0
        self.looked_at = 0
        self.got: list[int] = []

    def accepts(self, entry: Entry) -> bool:
        self.looked_at += 1
        return True

    def deliver(self, entry: Entry) -> None:
        self.credit -= 1
        self.got.append(entry.seq)


class CountedEntry(Entry):
    """An entry that counts how often its ``seq`` is read: a measure of the queue's work."""

    __slots__ = ("_seq",)
    reads = 0

    @property  # type: ignore[override]
    def seq(self) -> int:
        CountedEntry.reads += 1
        return self._seq

    @seq.setter
    def seq(self, value: int) -> None:
        self._seq = value


def _queue(count: int, kind: type[Entry] = Entry, **entry_fields: Any) -> Queue:
    queue = Queue("q", QueueSettings(name="q"), Hooks())
    for _ in range(count):
        queue.enqueue(kind(queue.next_seq(), b"m", None, **entry_fields))
    return queue


@pytest.mark.pure_python
def test_browsing_a_deep_queue_a_little_at_a_time_looks_at_each_message_once() -> None:
    queue = _queue(20_000, CountedEntry)
    browser = Browser()
    queue.add_consumer(browser)
    CountedEntry.reads = 0
    while len(browser.got) < 20_000:
        browser.credit = 10
        queue.dispatch(0)
    assert browser.got == list(range(1, 20_001))
    assert browser.looked_at == 20_000
    # Each credit window starts where the last stopped, not at the head of the queue.
    assert CountedEntry.reads < 20 * 20_000


def test_a_browser_skips_what_was_taken_meanwhile() -> None:
    queue = _queue(10)
    browser = Browser()
    queue.add_consumer(browser)
    browser.credit = 3
    queue.dispatch(0)
    for entry in list(queue.entries())[3:6]:
        queue.remove(entry)
    browser.credit = 10
    queue.dispatch(0)
    assert browser.got == [1, 2, 3, 7, 8, 9, 10]


def test_messages_consumed_before_their_expiry_do_not_stay_in_memory() -> None:
    queue = _queue(10_000, expiry=2**62)
    for entry in list(queue.entries()):
        queue.remove(entry)
    assert queue.depth == 0
    assert len(queue._expiring) <= 64 + 2  # the heap is what holds them


# --- message groups -------------------------------------------------------------------


class _Consumer:
    browse = False
    browse_cursor = 0

    def __init__(self, consumer_id: int) -> None:
        self.id = consumer_id
        self.credit = 0
        self.got: list[int] = []

    def accepts(self, entry: Entry) -> bool:
        return True

    def deliver(self, entry: Entry) -> None:
        self.credit -= 1
        self.got.append(entry.seq)


class _CountedEntry(Entry):
    """An entry that counts how often its ``group_id`` is read: a measure of the queue's work."""

    __slots__ = ("_group_id",)
    reads = 0

    @property
    def group_id(self) -> str | None:
        _CountedEntry.reads += 1
        return self._group_id

    @group_id.setter
    def group_id(self, value: str | None) -> None:
        self._group_id = value


@pytest.mark.pure_python
def test_messages_waiting_for_a_busy_owner_are_not_looked_at_again_and_again() -> None:
    queue = Queue("q", QueueSettings(name="q"), Hooks())
    owner, other = _Consumer(1), _Consumer(2)
    queue.add_consumer(owner)
    queue.add_consumer(other)

    def add(group: str | None) -> int:
        seq = queue.next_seq()
        queue.enqueue(_CountedEntry(seq, b"m", None, group_id=group))
        return seq

    owner.credit = 1
    first = add("A")
    queue.dispatch(0)
    assert owner.got == [first]  # the group is the owner's, and its credit is spent
    count = 2000
    waiting, plain = [], []
    _CountedEntry.reads = 0
    for _ in range(count):
        # Each message of the group stays ahead of the next plain one, for its owner.
        waiting.append(add("A"))
        plain.append(add(None))
        other.credit = 1
        queue.dispatch(0)
    assert other.got == plain
    # Work per message stays flat however many of the group's messages wait.
    assert _CountedEntry.reads < 20 * count
    owner.credit = count
    queue.dispatch(0)
    assert owner.got == [first, *waiting]
