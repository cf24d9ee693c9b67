"""Petrel's sans-IO engine driven by trio: a client that sends and receives at the same time.

    python examples/engine/trio_driver.py [--host HOST] [--port PORT]
        [--address ADDRESS] [--count N] [--user USER --password PASSWORD]

It connects, authenticates with SASL ANONYMOUS (PLAIN when ``--user`` is
given) and then runs two tasks side by side on one connection: one sends N
messages to ADDRESS as fast as the peer's credit allows and waits until every
one is accepted, the other receives N messages from ADDRESS, accepting and
settling each.  It prints one line per message received and one when the
sending is done::

    received: message 0
    ...
    sent 3 messages, all accepted

What it shows: the engine needs nothing from asyncio.  :class:`TrioConnection`
is a whole driver in about fifty lines: one reader task feeds
``receive_data``, handles the events and wakes whoever waits; any task may
issue commands and then call :meth:`TrioConnection.flush`, the one place where
bytes are written (under a lock, so writes from two tasks never interleave);
the engine's timer becomes the reader's ``trio.move_on_at`` deadline, and
time is trio's own clock, passed to ``handle_timer``.

Only trio, the standard library and Petrel's sans-IO layers (``petrel.engine``,
``petrel.spec``, ``petrel.message``) are used.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections import deque
from collections.abc import Callable

import trio

from petrel.engine import (
    Connection,
    ConnectionClosed,
    ConnectionConfig,
    Delivery,
    DeliveryReceived,
    Event,
    Link,
    LinkDetached,
    SaslConfig,
)
from petrel.message import Message
from petrel.spec import Accepted, Error, Source, Target

#: The most credit the receiving task holds at a time.
WINDOW = 10


class PeerError(Exception):
    """The peer refused, failed or closed something this program needed."""


def describe(error: Error | None) -> str:
    """An AMQP ``error`` as one readable line."""
    if error is None:
        return "no error given"
    return f"{error.condition}: {error.description or '(no description)'}"


class TrioConnection:
    """An engine connection on a trio stream: one reader task, one flush point, one timer."""

    def __init__(self, stream: trio.abc.Stream, config: ConnectionConfig) -> None:
        self.stream = stream
        self.engine = Connection(config)
        self.engine.handle_timer(trio.current_time())  # trio's clock is the engine's clock
        self.inbox: deque[DeliveryReceived] = deque()
        self.error: PeerError | None = None
        self.closing = False
        self._send_lock = trio.Lock()
        self._changed = trio.Event()

    async def flush(self) -> None:
        """Write what the engine has to send: call it after commands, from any task."""
        async with self._send_lock:
            data = self.engine.data_to_send()
            if data:
                await self.stream.send_all(data)

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` is true; raise if the peer failed us first."""
        while not predicate():
            if self.error is not None:
                raise self.error
            await self._changed.wait()

    async def run(self) -> None:
        """The reader task: bytes in, events out, timers, until the connection is over."""
        engine = self.engine
        while not engine.finished:
            timer = engine.get_timer()
            data: bytes | bytearray | None = None
            with trio.move_on_at(math.inf if timer is None else timer):
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError as exc:
                    engine.connection_lost(str(exc.__cause__ or exc))
                else:
                    if not data:
                        engine.connection_lost("the peer closed the socket")
            if data:
                engine.receive_data(bytes(data))  # no copy: trio's sockets give bytes
            engine.handle_timer(trio.current_time())
            while (event := engine.next_event()) is not None:
                self.on_event(event)
            self._changed.set()  # wake every waiter; they check their own predicates
            self._changed = trio.Event()
            await self.flush()

    def on_event(self, event: Event) -> None:
        """Keep what the tasks wait for; most events leave their trace on engine objects."""
        match event:
            case DeliveryReceived():
                self.inbox.append(event)
            case LinkDetached(by_peer=True, link=link, error=error):
                self.error = PeerError(f"the peer detached link {link.name!r}: {describe(error)}")
            case ConnectionClosed(error=error):
                if error is not None or not self.closing:
                    self.error = PeerError(f"the connection closed: {describe(error)}")


async def send_messages(conn: TrioConnection, sender: Link, count: int) -> None:
    """Send ``count`` messages, a burst per grant of credit, and wait for their outcomes."""
    sent: list[Delivery] = []
    while len(sent) < count:
        await conn.wait_for(lambda: sender.credit > 0)
        while sender.credit > 0 and len(sent) < count:
            payload = Message(f"message {len(sent)}", message_id=len(sent)).encode()
            sent.append(sender.send(payload))
        await conn.flush()  # the whole burst in one write
    await conn.wait_for(lambda: all(delivery.remote_settled for delivery in sent))
    refused = [d.remote_state for d in sent if not isinstance(d.remote_state, Accepted)]
    if refused:
        raise PeerError(f"{len(refused)} messages were not accepted: {refused[0]!r}")
    for delivery in sent:
        delivery.settle()  # the peer settled first: nothing goes on the wire
    print(f"sent {count} messages, all accepted")


async def receive_messages(conn: TrioConnection, receiver: Link, count: int) -> None:
    """Receive ``count`` messages with at most ``WINDOW`` credit out; accept each."""
    received = 0
    receiver.flow(min(WINDOW, count))
    await conn.flush()
    while received < count:
        await conn.wait_for(lambda: bool(conn.inbox))
        while conn.inbox:
            event = conn.inbox.popleft()
            print(f"received: {Message.decode(event.payload).body}")
            event.delivery.update(Accepted(), settled=True)
            received += 1
        wanted = min(WINDOW, count - received)
        if wanted and receiver.credit < wanted // 2 + 1:
            receiver.flow(wanted)
        await conn.flush()  # the dispositions (coalesced into ranges) and the flow


async def run(args: argparse.Namespace) -> None:
    """Everything, within ``args.timeout`` seconds."""
    if args.user:
        sasl = SaslConfig(mechanisms=("PLAIN",), username=args.user, password=args.password)
    else:
        sasl = SaslConfig(mechanisms=("ANONYMOUS",))
    config = ConnectionConfig(
        container_id=f"trio-client-{os.getpid()}", hostname=args.host, sasl=sasl
    )
    with trio.fail_after(args.timeout):
        await converse(args, config)


async def converse(args: argparse.Namespace, config: ConnectionConfig) -> None:
    """Connect, send and receive at once, close."""
    stream = await trio.open_tcp_stream(args.host, args.port)
    async with stream:
        conn = TrioConnection(stream, config)
        engine = conn.engine
        engine.open()
        session = engine.begin_session()
        receiver = session.attach_receiver("trio-receiver", source=Source(address=args.address))
        sender = session.attach_sender("trio-sender", target=Target(address=args.address))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.run)
            await conn.flush()
            async with trio.open_nursery() as work:
                work.start_soon(send_messages, conn, sender, args.count)
                work.start_soon(receive_messages, conn, receiver, args.count)
            conn.closing = True
            engine.close()
            await conn.flush()
            await conn.wait_for(lambda: engine.finished)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5672)
    parser.add_argument("--address", default="examples")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--user", help="authenticate with SASL PLAIN as this user")
    parser.add_argument("--password", default="")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up after (seconds)")
    args = parser.parse_args(argv)
    failures: list[BaseException] = []
    try:
        trio.run(run, args)
    except* (PeerError, OSError) as group:  # trio's nurseries raise exception groups
        failures = leaves(group)
    except* trio.TooSlowError:
        failures = [TimeoutError(f"not done after {args.timeout:g} s")]
    for exc in dict.fromkeys(failures):  # both tasks may raise the same error
        print(f"error: {exc}", file=sys.stderr)
    return 1 if failures else 0


def leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """The exceptions in a (possibly nested) exception group."""
    found: list[BaseException] = []
    for exc in group.exceptions:
        found += leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return found


if __name__ == "__main__":
    sys.exit(main())
