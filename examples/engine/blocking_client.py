"""A blocking AMQP 1.0 client on a plain socket, driven by Petrel's sans-IO engine.

    python examples/engine/blocking_client.py [--host HOST] [--port PORT]
        [--address ADDRESS] [--count N] [--user USER --password PASSWORD] [--drain]

It connects, authenticates with SASL ANONYMOUS (PLAIN when ``--user`` is
given), sends N messages to ADDRESS and waits until the peer has settled every
one of them as accepted, then receives N messages from the same address,
accepting and settling each, and prints what happened::

    sent 3 messages, all accepted
    received: message 0
    received: message 1
    received: message 2

With ``--drain`` it then asks the peer, with a drain, for whatever else the
address holds and prints ``drained: K more`` (this needs a peer that answers
drains, as Petrel's broker does; Proton's C example broker does not).

What it shows: the whole engine contract with no event loop.  One method,
:meth:`Client.pump`, is the driver: it writes what the engine has to send,
waits on the socket no longer than the engine's timer allows, feeds what
arrived to ``receive_data``, lets time pass with ``handle_timer`` and hands
every event to :meth:`Client.on_event`.  The rest of the program is commands
on the engine's objects (``begin_session``, ``attach_sender``, ``send``,
``flow``, ``update``) and waiting for the state they lead to.

Only the standard library and Petrel's sans-IO layers (``petrel.engine``,
``petrel.spec``, ``petrel.message``) are used.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Callable

from petrel.engine import (
    Connection,
    ConnectionClosed,
    ConnectionConfig,
    Delivery,
    DeliveryReceived,
    Event,
    LinkDetached,
    LinkFlowed,
    SaslCompleted,
    SaslConfig,
)
from petrel.message import Message
from petrel.spec import Accepted, Error, SaslCode, Source, Target

#: The most credit the receiver holds at a time: the peer sends at most this many ahead.
WINDOW = 10


class PeerError(Exception):
    """The peer refused, failed or closed something this program needed."""


def describe(error: Error | None) -> str:
    """An AMQP ``error`` as one readable line."""
    if error is None:
        return "no error given"
    return f"{error.condition}: {error.description or '(no description)'}"


class Client:
    """One engine connection over one blocking socket."""

    def __init__(self, sock: socket.socket, config: ConnectionConfig, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout  # the longest pump() waits for what it waits for
        self.engine = Connection(config)  # a client: server=False
        self.engine.handle_timer(time.monotonic())  # the engine's clock starts now
        self.inbox: deque[DeliveryReceived] = deque()
        self.drained = False
        self.closing = False

    def flush(self) -> None:
        """Write everything the engine has to send (one ``sendall`` per flush)."""
        data = self.engine.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, until: Callable[[], bool]) -> None:
        """Move bytes and events until ``until()`` is true; the one driver loop."""
        engine = self.engine
        timeout = self.timeout
        deadline = time.monotonic() + timeout
        while True:
            self.flush()
            if until():
                return
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"nothing more from the peer for {timeout:g} s")
            timer = engine.get_timer()  # when heartbeats or the idle check are due
            wait = deadline - now if timer is None else min(deadline, timer) - now
            if wait > 0:
                self.sock.settimeout(wait)
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    pass  # the timer is due: handle_timer below
                except OSError as exc:
                    engine.connection_lost(str(exc))
                else:
                    if data:
                        engine.receive_data(data)
                    else:
                        engine.connection_lost("the peer closed the socket")
            engine.handle_timer(time.monotonic())
            while (event := engine.next_event()) is not None:
                self.on_event(event)

    def on_event(self, event: Event) -> None:
        """React to one engine event; most leave their trace on the engine's objects."""
        match event:
            case SaslCompleted(code=SaslCode.OK, mechanism=mechanism, identity=identity):
                print(f"authenticated with {mechanism} as {identity}", file=sys.stderr)
            case DeliveryReceived():
                self.inbox.append(event)
            case LinkFlowed(drained=True):
                self.drained = True
            case LinkDetached(by_peer=True, link=link, error=error):
                raise PeerError(f"the peer detached link {link.name!r}: {describe(error)}")
            case ConnectionClosed(error=error):
                if error is not None or not self.closing:
                    raise PeerError(f"the connection closed: {describe(error)}")


def run(args: argparse.Namespace) -> None:
    """Send ``args.count`` messages to ``args.address``, then receive as many back."""
    if args.user:
        sasl = SaslConfig(mechanisms=("PLAIN",), username=args.user, password=args.password)
    else:
        sasl = SaslConfig(mechanisms=("ANONYMOUS",))
    config = ConnectionConfig(
        container_id=f"blocking-client-{os.getpid()}", hostname=args.host, sasl=sasl
    )
    with socket.create_connection((args.host, args.port), timeout=10) as sock:
        client = Client(sock, config, args.timeout)
        conn = client.engine
        # Commands may run ahead of the peer: open, begin and attach go out together
        # (after the SASL exchange, which the engine runs by itself).
        conn.open()
        session = conn.begin_session()
        sender = session.attach_sender("example-sender", target=Target(address=args.address))
        receiver = session.attach_receiver("example-receiver", source=Source(address=args.address))

        # Send: one delivery per credit the peer grants; each stays unsettled until the
        # peer settles it with its outcome.
        sent: list[Delivery] = []
        for i in range(args.count):
            client.pump(lambda: sender.credit > 0)
            payload = Message(f"message {i}", message_id=i).encode()
            sent.append(sender.send(payload))
        client.pump(lambda: all(delivery.remote_settled for delivery in sent))
        refused = [d.remote_state for d in sent if not isinstance(d.remote_state, Accepted)]
        if refused:
            raise PeerError(f"{len(refused)} messages were not accepted: {refused[0]!r}")
        for delivery in sent:
            delivery.settle()  # the peer settled first: nothing goes on the wire
        print(f"sent {len(sent)} messages, all accepted")

        # Receive: hold at most WINDOW credit, never more than the messages still wanted,
        # and top it up once half is used.  Each message is accepted and settled.
        received = 0
        receiver.flow(min(WINDOW, args.count))
        while received < args.count:
            client.pump(lambda: bool(client.inbox))
            event = client.inbox.popleft()
            print(f"received: {Message.decode(event.payload).body}")
            event.delivery.update(Accepted(), settled=True)
            received += 1
            wanted = min(WINDOW, args.count - received)
            if receiver.credit < wanted // 2 + 1:
                receiver.flow(wanted)

        if args.drain:
            # Drain: the peer sends what it has within the credit, then gives the rest
            # of the credit back; LinkFlowed(drained=True) says it is done.
            extra = 0
            receiver.flow(WINDOW, drain=True)
            while not client.drained or client.inbox:
                client.pump(lambda: client.drained or bool(client.inbox))
                while client.inbox:
                    event = client.inbox.popleft()
                    print(f"received: {Message.decode(event.payload).body}")
                    event.delivery.update(Accepted(), settled=True)
                    extra += 1
            print(f"drained: {extra} more")

        # Close, and wait for the peer's close before the socket goes.
        client.closing = True
        conn.close()
        client.pump(lambda: conn.finished)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5672)
    parser.add_argument("--address", default="examples")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--user", help="authenticate with SASL PLAIN as this user")
    parser.add_argument("--password", default="")
    parser.add_argument("--timeout", type=float, default=30.0, help="longest wait (seconds)")
    parser.add_argument("--drain", action="store_true", help="drain the address at the end")
    args = parser.parse_args(argv)
    try:
        run(args)
    except (PeerError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
