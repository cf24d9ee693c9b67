"""A toy AMQP 1.0 broker: one thread, ``selectors``, in-memory queues, Petrel's sans-IO engine.

    python examples/engine/selectors_server.py [--host HOST] [--port PORT]
        [--window N] [--max-depth N]

It prints ``listening on HOST:PORT`` once it accepts connections (``--port
0``, the default, picks a free port) and serves until interrupted.  Any AMQP
1.0 client can use it: a link that sends to an address puts messages on the
queue of that name (made on first use), a link that receives from an address
takes them off, each message to one consumer.

What it shows is a server driver: many engine connections on one selector,
one read and one write path per socket, one timer for all, and events of one
connection acting on others (a message from a producer goes out to a
consumer elsewhere).  It is small but careful where AMQP asks for care:

- Credit.  A producer gets credit ``--window`` at a time, and only while its
  queue has room: queued messages, messages out with consumers and credit
  already granted never add up to more than ``--max-depth``.  A consumer gets
  messages only within the credit it granted, and a drain is answered by
  giving back the credit there is nothing to use for.
- Settlement.  A producer's unsettled message is accepted and settled once it
  is queued.  A message sent unsettled to a consumer stays counted until the
  consumer's outcome: accepted or rejected, it is gone; released or modified,
  it goes back to the head of its queue.  (Settled without an outcome counts
  as accepted.)  A consumer link whose ``snd-settle-mode`` is ``settled`` gets
  its messages pre-settled: at most once.
- Peers that vanish.  A socket that closes or fails, bytes that are not AMQP
  and protocol errors end that one connection; whatever its consumers held
  unsettled goes back to the queues for the next consumer.

Not in this toy: persistence, TLS, authentication beyond SASL ANONYMOUS (or
none), anonymous-relay senders and dynamic nodes (refused with
``amqp:not-implemented``), message expiry, priorities.  Only the standard
library and Petrel's sans-IO layers (``petrel.engine``, ``petrel.spec``,
``petrel.errors``) are used.
"""

from __future__ import annotations

import argparse
import selectors
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from petrel.engine import (
    Connection,
    ConnectionClosed,
    ConnectionConfig,
    Delivery,
    DeliveryReceived,
    DeliveryUpdated,
    Event,
    Link,
    LinkAttachRequested,
    LinkDetached,
    LinkFlowed,
    LinkState,
    SaslConfig,
    SessionEnded,
)
from petrel.errors import AmqpError, Condition
from petrel.spec import Accepted, Error, Modified, Rejected, Released

#: Outcomes that end a delivery (``Received`` and transactional states do not).
FINAL = (Accepted, Rejected, Released, Modified)


@dataclass
class Queue:
    """One address: its messages, the links that fill it and the links that empty it."""

    name: str
    messages: deque[bytes] = field(default_factory=deque)
    producers: list[Link] = field(default_factory=list)  # our receiving links
    consumers: list[Link] = field(default_factory=list)  # our sending links
    unsettled: dict[Delivery, bytes] = field(default_factory=dict)  # out, no outcome yet
    turn: int = 0  # round robin among consumers


@dataclass
class Peer:
    """One accepted socket and the engine connection on it."""

    sock: socket.socket
    engine: Connection
    name: str
    out: bytearray = field(default_factory=bytearray)  # taken from the engine, not yet written


def describe(error: Error | None) -> str:
    """An AMQP ``error`` as one readable line."""
    if error is None:
        return "no error"
    return f"{error.condition}: {error.description or '(no description)'}"


class Broker:
    """The queues, and the reaction to every engine event of every connection."""

    def __init__(self, window: int, max_depth: int) -> None:
        self.window = window
        self.max_depth = max_depth
        self.queues: dict[str, Queue] = {}
        self.links: dict[Link, Queue] = {}

    def queue(self, name: str) -> Queue:
        """The queue called ``name``, made on first use."""
        if name not in self.queues:
            self.queues[name] = Queue(name)
        return self.queues[name]

    def on_event(self, event: Event) -> None:
        """React to one event of any connection."""
        match event:
            case LinkAttachRequested(link=link):
                self.attach(link)
            case DeliveryReceived(link=link, delivery=delivery, payload=payload):
                queue = self.links[link]
                queue.messages.append(payload)
                if not event.settled:
                    delivery.update(Accepted(), settled=True)  # queued: the producer may forget it
                self.dispatch(queue)
            case LinkFlowed(link=link) if link.is_sender and link in self.links:
                self.dispatch(self.links[link])  # new credit from a consumer, or a drain
            case DeliveryUpdated(delivery=delivery, state=state, settled=settled):
                self.outcome(delivery, state, settled)
            case LinkDetached(link=link):
                self.forget(lambda known: known is link)
            case SessionEnded(session=session):
                self.forget(lambda known: known.session is session)
        # ConnectionClosed names no connection: Server.turn() forgets that connection's links.

    def attach(self, link: Link) -> None:
        """Answer a peer's attach: a sender fills a queue, a receiver empties one."""
        terminus = link.remote_target if link.is_receiver else link.remote_source
        address = getattr(terminus, "address", None)
        if not address:
            link.detach(
                AmqpError(
                    "this toy broker needs an address: no anonymous relay, no dynamic nodes",
                    condition=Condition.NOT_IMPLEMENTED,
                )
            )
            return
        link.attach()  # our terminus echoes the peer's
        queue = self.queue(str(address))
        self.links[link] = queue
        if link.is_receiver:
            queue.producers.append(link)
            self.grant(queue)
        else:
            queue.consumers.append(link)
            self.dispatch(queue)

    def dispatch(self, queue: Queue) -> None:
        """Send queued messages to consumers with credit, then answer drains and refill."""
        while queue.messages:
            ready = [c for c in queue.consumers if c.credit > 0 and c.state is LinkState.ATTACHED]
            if not ready:
                break
            link = ready[queue.turn % len(ready)]
            queue.turn += 1
            payload = queue.messages.popleft()
            delivery = link.send(payload)  # pre-settled only on a snd-settle-mode=settled link
            if not delivery.settled:
                queue.unsettled[delivery] = payload
        for link in queue.consumers:
            if link.drain and link.credit > 0:
                link.drained()  # nothing more to send: give the credit back
        self.grant(queue)

    def grant(self, queue: Queue) -> None:
        """Top up producers' credit, never past the queue's room."""
        granted = sum(p.credit for p in queue.producers)
        room = self.max_depth - len(queue.messages) - len(queue.unsettled) - granted
        for link in queue.producers:
            if link.state is not LinkState.ATTACHED or link.credit >= self.window // 2 + 1:
                continue
            more = min(self.window - link.credit, room)
            if more > 0:
                link.flow(link.credit + more)
                room -= more

    def outcome(self, delivery: Delivery, state: object, settled: bool) -> None:
        """A consumer's disposition for a message we sent it."""
        queue = self.links.get(delivery.link)
        if queue is None or delivery not in queue.unsettled:
            return  # already given back (its link went away first), or not ours
        if not settled and not isinstance(state, FINAL):
            return  # Received, or another state on the way to an outcome
        payload = queue.unsettled.pop(delivery)
        if isinstance(state, (Released, Modified)):
            queue.messages.appendleft(payload)
        if not delivery.settled:
            delivery.settle()
        self.dispatch(queue)

    def forget(self, gone: Callable[[Link], bool]) -> None:
        """Links that are over: stop using them; their unsettled messages go back."""
        for link in [link for link in self.links if gone(link)]:
            queue = self.links.pop(link)
            if link in queue.producers:
                queue.producers.remove(link)
            if link in queue.consumers:
                queue.consumers.remove(link)
            back = [d for d in queue.unsettled if d.link is link]
            for delivery in reversed(back):  # oldest first at the head, in order
                queue.messages.appendleft(queue.unsettled.pop(delivery))
            self.dispatch(queue)

    def forget_connection(self, engine: Connection) -> None:
        """A connection is over: forget every link it had."""
        self.forget(lambda link: link.session.connection is engine)


class Server:
    """The selector loop: accept, read, feed engines, handle events, write, tick timers."""

    def __init__(self, listener: socket.socket, broker: Broker) -> None:
        self.listener = listener
        self.broker = broker
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, None)
        self.peers: dict[socket.socket, Peer] = {}

    def serve_forever(self) -> None:
        while True:
            now = time.monotonic()
            timers = [t for p in self.peers.values() if (t := p.engine.get_timer()) is not None]
            timeout = max(0.0, min(timers) - now) if timers else None
            for key, mask in self.selector.select(timeout):
                if key.data is None:
                    self.accept()
                    continue
                peer: Peer = key.data
                if mask & selectors.EVENT_READ:
                    self.read(peer)
                if mask & selectors.EVENT_WRITE:
                    self.write(peer)
            now = time.monotonic()
            for peer in list(self.peers.values()):
                peer.engine.handle_timer(now)  # heartbeats, and the idle check
            self.turn()

    def accept(self) -> None:
        try:
            sock, address = self.listener.accept()
        except BlockingIOError:
            return  # the client gave up before we got to it
        sock.setblocking(False)
        config = ConnectionConfig(
            container_id="selectors-server",
            sasl=SaslConfig(mechanisms=("ANONYMOUS",)),
            idle_timeout=60.0,  # a peer silent this long is gone
        )
        engine = Connection(config, server=True)
        engine.handle_timer(time.monotonic())
        engine.open()  # a server's open goes out once the client's header is answered
        peer = Peer(sock, engine, f"{address[0]}:{address[1]}")
        self.peers[sock] = peer
        self.selector.register(sock, selectors.EVENT_READ, peer)

    def read(self, peer: Peer) -> None:
        try:
            data = peer.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            peer.engine.connection_lost(str(exc))
            return
        if data:
            peer.engine.receive_data(data)
        else:
            peer.engine.connection_lost("the peer closed the socket")

    def turn(self) -> None:
        """Handle every connection's events, then write what all of them produced.

        Events of one connection act on others (a producer's message goes to a
        consumer elsewhere), so all events are handled before anything is written.
        """
        busy = True
        while busy:
            busy = False
            for peer in list(self.peers.values()):
                while (event := peer.engine.next_event()) is not None:
                    busy = True
                    self.broker.on_event(event)
                    if isinstance(event, ConnectionClosed):
                        self.broker.forget_connection(peer.engine)
                        if event.error is not None:
                            print(f"{peer.name}: closed: {describe(event.error)}", file=sys.stderr)
        for peer in list(self.peers.values()):
            peer.out += peer.engine.data_to_send()
            self.write(peer)

    def write(self, peer: Peer) -> None:
        if peer.out:
            try:
                sent = peer.sock.send(peer.out)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                peer.out.clear()
                peer.engine.connection_lost(str(exc))
                sent = 0
            del peer.out[:sent]
        if peer.engine.finished and not peer.out:
            self.drop(peer)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if peer.out else 0)
        self.selector.modify(peer.sock, events, peer)

    def drop(self, peer: Peer) -> None:
        self.selector.unregister(peer.sock)
        del self.peers[peer.sock]
        peer.sock.close()

    def close(self) -> None:
        for peer in list(self.peers.values()):
            self.drop(peer)
        self.selector.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--window", type=int, default=10, help="credit per producer link")
    parser.add_argument("--max-depth", type=int, default=1000, help="messages per queue")
    args = parser.parse_args(argv)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    listener = socket.create_server((args.host, args.port))
    listener.setblocking(False)
    server = Server(listener, Broker(args.window, args.max_depth))
    host, port = listener.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
