"""What a queue's bookkeeping costs: work per message stays flat as the queue grows, and
memory follows what the queue holds (in process, no broker)."""

from __future__ import annotations

from typing import Any

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
