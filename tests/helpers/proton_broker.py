"""A small in-memory AMQP broker written with Qpid Proton's Python API, run as a subprocess.

Tests use it as a reference peer: a real, independent AMQP 1.0 implementation
that Petrel's driver and client must interoperate with.  It keeps one FIFO
queue per address, hands each message to one consumer within its credit,
accepts unsettled transfers once queued, requeues what a consumer releases or
leaves unsettled, supports dynamic sources (temporary reply queues) and
anonymous-relay senders (``to`` on each message).

    python tests/helpers/proton_broker.py PORT [--tls CERT KEY] [--idle SECONDS]

It prints ``READY`` once it listens and runs until killed.
"""

from __future__ import annotations

import argparse
import collections
import sys
import uuid

from proton import Endpoint, Message, SSLDomain
from proton.handlers import MessagingHandler
from proton.reactor import Container


class Queue:
    def __init__(self) -> None:
        self.messages: collections.deque[Message] = collections.deque()
        self.consumers: list = []
        self.next_consumer = 0

    def dispatch(self) -> None:
        while self.messages and self.consumers:
            ready = [c for c in self.consumers if c.credit > 0]
            if not ready:
                return
            consumer = ready[self.next_consumer % len(ready)]
            self.next_consumer += 1
            message = self.messages.popleft()
            delivery = consumer.send(message)
            delivery.petrel_queue = self  # so a release can requeue it
            delivery.petrel_message = message


class Broker(MessagingHandler):
    def __init__(self, url: str, ssl: tuple[str, str] | None, idle: float | None) -> None:
        super().__init__(auto_accept=False, auto_settle=False)
        self.url = url
        self.ssl = ssl
        self.idle = idle
        self.queues: dict[str, Queue] = {}

    def queue(self, address: str) -> Queue:
        if address not in self.queues:
            self.queues[address] = Queue()
        return self.queues[address]

    def on_start(self, event) -> None:  # type: ignore[no-untyped-def]
        if self.ssl:
            domain = SSLDomain(SSLDomain.MODE_SERVER)
            domain.set_credentials(self.ssl[0], self.ssl[1], None)
            event.container.ssl.server = domain
        if self.idle:
            event.container.container_id = "proton-broker"
        self.acceptor = event.container.listen(self.url)
        print("READY", flush=True)

    def on_connection_opening(self, event) -> None:  # type: ignore[no-untyped-def]
        if self.idle:
            event.transport.idle_timeout = self.idle
        # Offer anonymous relay like a real broker.
        event.connection.offered_capabilities = "ANONYMOUS-RELAY"

    def on_link_opening(self, event) -> None:  # type: ignore[no-untyped-def]
        link = event.link
        if link.is_sender:
            if link.remote_source.dynamic:
                address = f"tmp.{uuid.uuid4()}"
                link.source.address = address
            else:
                address = link.remote_source.address
                link.source.address = address
            link.target.copy(link.remote_target)
            self.queue(address).consumers.append(link)
        else:
            link.target.copy(link.remote_target)
            link.source.copy(link.remote_source)

    def _unsubscribe(self, link) -> None:  # type: ignore[no-untyped-def]
        if link.is_sender and link.source.address in self.queues:
            q = self.queues[link.source.address]
            if link in q.consumers:
                q.consumers.remove(link)

    def on_link_closing(self, event) -> None:  # type: ignore[no-untyped-def]
        self._unsubscribe(event.link)

    def on_disconnected(self, event) -> None:  # type: ignore[no-untyped-def]
        link = event.connection.link_head(Endpoint.REMOTE_ACTIVE) if event.connection else None
        while link:
            self._unsubscribe(link)
            link = link.next(Endpoint.REMOTE_ACTIVE)
        for q in self.queues.values():
            q.consumers = [c for c in q.consumers if c.connection is not event.connection]

    def on_sendable(self, event) -> None:  # type: ignore[no-untyped-def]
        address = event.link.source.address
        if address in self.queues:
            self.queues[address].dispatch()

    def on_message(self, event) -> None:  # type: ignore[no-untyped-def]
        message = event.message
        address = event.link.target.address or message.address
        if not address:
            self.reject(event.delivery)
            return
        self.queue(address).messages.append(message)
        if not event.delivery.settled:
            self.accept(event.delivery)
        self.queue(address).dispatch()

    def on_released(self, event) -> None:  # type: ignore[no-untyped-def]
        self._requeue(event.delivery)

    def on_modified(self, event) -> None:  # type: ignore[no-untyped-def]
        self._requeue(event.delivery)

    def on_settled(self, event) -> None:  # type: ignore[no-untyped-def]
        event.delivery.settle()

    def _requeue(self, delivery) -> None:  # type: ignore[no-untyped-def]
        queue = getattr(delivery, "petrel_queue", None)
        message = getattr(delivery, "petrel_message", None)
        if queue is not None and message is not None:
            queue.messages.appendleft(message)
            delivery.settle()
            queue.dispatch()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--idle", type=float)
    args = parser.parse_args()
    scheme = "amqps" if args.tls else "amqp"
    Container(Broker(f"{scheme}://127.0.0.1:{args.port}", args.tls, args.idle)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
