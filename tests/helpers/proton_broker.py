"""A small in-memory AMQP broker written with Qpid Proton's Python API, run as a subprocess.

Tests use it as a reference peer: a real, independent AMQP 1.0 implementation
that Petrel's driver and client must interoperate with.  It keeps one FIFO
queue per address, hands each message to one consumer within its credit,
accepts unsettled transfers once queued, requeues what a consumer releases or
leaves unsettled, supports dynamic sources (temporary reply queues) and
anonymous-relay senders (``to`` on each message).

    python tests/helpers/proton_broker.py PORT [--tls CERT KEY] [--idle SECONDS]
        [--prefetch N] [--journal FILE]

It prints ``READY`` once it listens and runs until killed.

Options and special addresses, for the client tests:

- ``--prefetch N``: the credit window each producer link gets (default 10),
  topped up by one for every message received.
- ``--journal FILE``: every queued message is appended to ``FILE`` before it
  is accepted, every acknowledged one is marked gone, and the queues are
  rebuilt from it at start: a broker killed and restarted on the same journal
  loses nothing it accepted.
- ``missing.*``: attaching to it fails with ``amqp:not-found``;
  ``forbidden.*`` with ``amqp:unauthorized-access``.
- ``reject.*``, ``release.*``, ``modify.*``: every message sent there is
  rejected (``amqp:precondition-failed``), released, or modified
  (delivery-failed, undeliverable-here) instead of queued.
- ``stingy.*``: a producer link gets 10 credits once and never more.
- ``echo``: every message sent there is answered on its ``reply-to`` with the
  same body and application properties, ``correlation-id`` = its ``message-id``.
- ``$stats``: a receiver on it gets one message whose body is a map of queue
  name to depth.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import sys
import uuid
from typing import Any

from proton import Condition, Delivery, Message, SSLDomain
from proton.handlers import MessagingHandler
from proton.reactor import Container


class Journal:
    """An append-only file of queued (``A``) and acknowledged (``D``) messages."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.ids = itertools.count(1)
        self.file: Any = None

    def load(self) -> list[tuple[int, str, bytes]]:
        """The messages still queued, in order: ``(id, queue, encoded message)``."""
        live: dict[int, tuple[str, bytes]] = {}
        top = 0
        if os.path.exists(self.path):
            with open(self.path) as f:
                for line in f:
                    parts = line.split()
                    if not parts or not line.endswith("\n"):
                        continue  # a torn last line: the message was never accepted
                    top = max(top, int(parts[1]))
                    if parts[0] == "A":
                        live[int(parts[1])] = (parts[2], bytes.fromhex(parts[3]))
                    else:
                        live.pop(int(parts[1]), None)
        self.ids = itertools.count(top + 1)
        self.file = open(self.path, "a")  # noqa: SIM115
        return [(k, q, data) for k, (q, data) in sorted(live.items())]

    def add(self, queue: str, message: Message) -> int:
        key = next(self.ids)
        self.file.write(f"A {key} {queue} {message.encode().hex()}\n")
        self.file.flush()
        return key

    def remove(self, key: int) -> None:
        self.file.write(f"D {key}\n")
        self.file.flush()


class Queue:
    def __init__(self, name: str) -> None:
        self.name = name
        self.messages: collections.deque[tuple[Message, int | None]] = collections.deque()
        self.consumers: list[Any] = []
        self.next_consumer = 0

    def dispatch(self) -> None:
        while self.messages and self.consumers:
            ready = [c for c in self.consumers if c.credit > 0]
            if not ready:
                return
            consumer = ready[self.next_consumer % len(ready)]
            self.next_consumer += 1
            message, key = self.messages.popleft()
            delivery = consumer.send(message)
            delivery.petrel_queue = self  # so a release can requeue it
            delivery.petrel_message = (message, key)
            if consumer.snd_settle_mode == 1:  # pre-settled consumer: gone now
                delivery.settle()
                consumer.petrel_broker.acknowledged(key)
            else:
                consumer.petrel_outstanding[delivery] = (message, key)


class Broker(MessagingHandler):  # type: ignore[misc]
    def __init__(
        self,
        url: str,
        ssl: tuple[str, str] | None,
        idle: float | None,
        prefetch: int,
        journal: Journal | None,
    ) -> None:
        super().__init__(prefetch=0, auto_accept=False, auto_settle=False)
        self.url = url
        self.ssl = ssl
        self.idle = idle
        self.prefetch = prefetch
        self.journal = journal
        self.queues: dict[str, Queue] = {}
        if journal is not None:
            for key, name, data in journal.load():
                message = Message()
                message.decode(data)
                self.queue(name).messages.append((message, key))

    def queue(self, address: str) -> Queue:
        if address not in self.queues:
            self.queues[address] = Queue(address)
        return self.queues[address]

    def acknowledged(self, key: int | None) -> None:
        if key is not None and self.journal is not None:
            self.journal.remove(key)

    def on_start(self, event: Any) -> None:
        if self.ssl:
            domain = SSLDomain(SSLDomain.MODE_SERVER)
            domain.set_credentials(self.ssl[0], self.ssl[1], None)
            event.container.ssl.server = domain
        if self.idle:
            event.container.container_id = "proton-broker"
        self.acceptor = event.container.listen(self.url)
        print("READY", flush=True)

    def on_connection_opening(self, event: Any) -> None:
        if self.idle:
            event.transport.idle_timeout = self.idle
        # Offer anonymous relay like a real broker.
        event.connection.offered_capabilities = "ANONYMOUS-RELAY"

    def on_link_remote_open(self, event: Any) -> None:
        # Runs before Proton's own endpoint handler, which would open the link.
        link = event.link
        terminus = link.remote_source if link.is_sender else link.remote_target
        address = terminus.address or ""
        for prefix, condition in (
            ("missing.", "amqp:not-found"),
            ("forbidden.", "amqp:unauthorized-access"),
        ):
            if address.startswith(prefix):
                link.condition = Condition(condition, f"test broker refuses {address}")
                link.open()
                link.close()
                return

    def on_link_opening(self, event: Any) -> None:
        link = event.link
        terminus = link.remote_source if link.is_sender else link.remote_target
        address = terminus.address or ""
        if link.is_sender:
            if link.remote_source.dynamic:
                address = f"tmp.{uuid.uuid4()}"
                link.source.address = address
            else:
                link.source.copy(link.remote_source)
            link.target.copy(link.remote_target)
            link.snd_settle_mode = link.remote_snd_settle_mode
            link.petrel_broker = self
            link.petrel_outstanding = {}
            if address == "$stats":
                link.petrel_stats = True
                return
            self.queue(address).consumers.append(link)
        else:
            link.target.copy(link.remote_target)
            link.source.copy(link.remote_source)
            link.flow(self.prefetch if not address.startswith("stingy.") else 10)

    def _unsubscribe(self, link: Any) -> None:
        if link.is_sender and link.source.address in self.queues:
            q = self.queues[link.source.address]
            if link in q.consumers:
                q.consumers.remove(link)
            # What the consumer had not settled goes back to the head of the queue.
            outstanding = getattr(link, "petrel_outstanding", {})
            for delivery, entry in reversed(list(outstanding.items())):
                if not delivery.remote_state:
                    q.messages.appendleft(entry)
            outstanding.clear()
            q.dispatch()

    def on_link_closing(self, event: Any) -> None:
        self._unsubscribe(event.link)

    def on_disconnected(self, event: Any) -> None:
        link = event.connection.link_head(0) if event.connection else None
        while link:
            self._unsubscribe(link)
            link = link.next(0)
        for q in self.queues.values():
            q.consumers = [c for c in q.consumers if c.connection is not event.connection]

    def on_sendable(self, event: Any) -> None:
        link = event.link
        if getattr(link, "petrel_stats", False):
            link.petrel_stats = False
            body = {name: len(q.messages) for name, q in self.queues.items()}
            link.send(Message(body=body))
            return
        address = link.source.address
        if address in self.queues:
            self.queues[address].dispatch()

    def on_link_flow(self, event: Any) -> None:
        link = event.link
        if link.is_sender and link.drain_mode:
            # Send what we have within the credit, then give the rest back.
            address = link.source.address
            if address in self.queues:
                self.queues[address].dispatch()
            link.drained()

    def on_message(self, event: Any) -> None:
        message = event.message
        link = event.link
        delivery = event.delivery
        address = link.target.address or message.address
        if not address.startswith("stingy."):
            link.flow(1)
        if not address:
            self._settle(delivery, Delivery.REJECTED, "amqp:precondition-failed", "no address")
            return
        if address.startswith("reject."):
            self._settle(delivery, Delivery.REJECTED, "amqp:precondition-failed", "rejected")
            return
        if address.startswith("release."):
            self._settle(delivery, Delivery.RELEASED)
            return
        if address.startswith("modify."):
            delivery.local.failed = True
            delivery.local.undeliverable = True
            self._settle(delivery, Delivery.MODIFIED)
            return
        if address == "echo":
            reply = Message(
                body=message.body,
                address=message.reply_to,
                correlation_id=message.id,
                properties=message.properties,
            )
            if message.reply_to:
                self.queue(message.reply_to).messages.append((reply, None))
                self.queue(message.reply_to).dispatch()
            self._settle(delivery, Delivery.ACCEPTED)
            return
        key = self.journal.add(address, message) if self.journal is not None else None
        self.queue(address).messages.append((message, key))
        if not delivery.settled:
            self._settle(delivery, Delivery.ACCEPTED)
        self.queue(address).dispatch()

    @staticmethod
    def _settle(
        delivery: Any, outcome: int, condition: str | None = None, text: str | None = None
    ) -> None:
        if delivery.settled:
            return
        if condition:
            delivery.local.condition = Condition(condition, f"test broker: {text}")
        delivery.update(outcome)
        delivery.settle()

    def on_accepted(self, event: Any) -> None:
        entry = getattr(event.delivery, "petrel_message", None)
        if entry is not None:
            self.acknowledged(entry[1])
        self._forget(event.delivery)
        event.delivery.settle()

    @staticmethod
    def _forget(delivery: Any) -> None:
        outstanding = getattr(delivery.link, "petrel_outstanding", None)
        if outstanding is not None:
            outstanding.pop(delivery, None)

    def on_rejected(self, event: Any) -> None:
        self.on_accepted(event)

    def on_released(self, event: Any) -> None:
        self._requeue(event.delivery)

    def on_modified(self, event: Any) -> None:
        self._requeue(event.delivery)

    def on_settled(self, event: Any) -> None:
        event.delivery.settle()

    def _requeue(self, delivery: Any) -> None:
        self._forget(delivery)
        queue = getattr(delivery, "petrel_queue", None)
        entry = getattr(delivery, "petrel_message", None)
        if queue is not None and entry is not None:
            queue.messages.appendleft(entry)
            delivery.settle()
            queue.dispatch()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--idle", type=float)
    parser.add_argument("--prefetch", type=int, default=10)
    parser.add_argument("--journal")
    args = parser.parse_args()
    scheme = "amqps" if args.tls else "amqp"
    journal = Journal(args.journal) if args.journal else None
    broker = Broker(
        f"{scheme}://127.0.0.1:{args.port}", args.tls, args.idle, args.prefetch, journal
    )
    Container(broker).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
