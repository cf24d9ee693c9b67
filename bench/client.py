"""Client benchmark: Petrel's asyncio client against Qpid Proton's Python client, in one run.

Both clients do the same thing through the same Proton peer (a lean
store-and-forward relay built on Proton's reactor, in a subprocess): one
connection sends N messages with a 100-byte body to a queue while a second
connection receives them from it.  Each message carries its send time
(``time.perf_counter()``, an application property), so the receiver measures
each message's end-to-end latency.

Cases:

- ``presettled``: at-most-once on both links (no outcomes, nothing to accept).
- ``unsettled``: at-least-once: the sender gets an outcome for every message
  (many in flight, as credit allows), the receiver accepts each one.

- ``latency``: at-least-once with one message in flight at a time (the next
  is sent once the previous one has arrived), N/10 messages: the latency of
  a message through the peer when nothing queues.

``--peer c-broker`` runs the same cases through Proton's C ``broker`` example
instead (built as ``bench/broker.py`` builds it, from Debian's
``libqpid-proton11-dev-examples``); that broker always delivers pre-settled,
so there "unsettled" applies to the sending side only.

Prints one JSON line per case and client::

    {"case": "unsettled", "impl": "petrel", "msgs_per_s": 21000.0, "p50_ms": 9.1, ...}

``msgs_per_s`` is N divided by the time from the first send to the last
receipt (and, unsettled, the last outcome); ``p50_ms``/``p99_ms`` are latency
percentiles.  ``--count`` sets N, ``--repeat`` runs each case several times
and keeps the best; ``--quick`` is a smoke test; ``--impl``/``--case`` select.
``--profile FILE`` writes a cProfile of the Petrel runs.  Run it with
``python bench/client.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import socket
import subprocess
import sys
import time
from collections import defaultdict, deque
from typing import Any

BODY = bytes(range(100))
ADDRESS = "bench"
WINDOW = 1000  # the relay's credit to producers; the consumers' prefetch


# --- the Proton relay (run as a subprocess: ``client.py --relay PORT``) -------------------------


def run_relay(port: int) -> None:
    """A store-and-forward relay on Proton's engine, pumped by hand.

    Proton's reactor dispatches several Python events per message, which makes
    a reactor-based relay the bottleneck of this benchmark.  This one drives
    ``proton.Connection``/``proton.Transport`` itself, without events: after
    each read it takes the deliveries waiting on each receiving link and
    forwards them, so all AMQP processing stays in Proton's C engine and the
    Python per message is a few calls.  Messages are queued as raw bytes per
    address and never decoded.
    """
    import selectors

    from proton import Connection, Delivery, Endpoint, Link, Transport

    queues: dict[str, deque[bytes]] = defaultdict(deque)
    consumers: dict[str, list[Any]] = defaultdict(list)
    tags = [0]
    local_uninit = Endpoint.LOCAL_UNINIT
    active_closed = Endpoint.LOCAL_ACTIVE | Endpoint.REMOTE_CLOSED

    def dispatch(address: str) -> None:
        queue = queues[address]
        for link in consumers[address]:
            if not queue:
                return
            presettled = link.snd_settle_mode == Link.SND_SETTLED
            while queue and link.credit > 0:
                tags[0] += 1
                delivery = link.delivery(b"%d" % tags[0])
                link.send(queue.popleft())
                link.advance()
                if presettled:
                    delivery.settle()
                else:
                    link.petrel_unsettled.append(delivery)

    class Peer:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock
            self.conn = Connection()
            self.transport = Transport(Transport.SERVER)
            self.transport.sasl().allowed_mechs("ANONYMOUS PLAIN")
            self.transport.bind(self.conn)
            self.addresses: dict[Any, str] = {}
            self.unsettled: dict[Any, deque[Any]] = {}

        def process(self) -> None:
            conn: Any = self.conn
            if conn.state & local_uninit:
                conn.open()
            session = conn.session_head(local_uninit)
            while session:
                session.open()
                session = session.next(local_uninit)
            link = conn.link_head(local_uninit)
            while link:
                link.source.copy(link.remote_source)
                link.target.copy(link.remote_target)
                if link.is_sender:
                    link.snd_settle_mode = link.remote_snd_settle_mode
                    address = link.remote_source.address
                    consumers[address].append(link)
                    link.petrel_unsettled = self.unsettled[link] = deque()
                else:
                    address = link.remote_target.address
                    link.flow(WINDOW)
                self.addresses[link] = address
                link.open()
                link = link.next(local_uninit)
            touched = set()
            for link, address in self.addresses.items():
                if link.is_receiver:
                    delivery = link.current
                    got = False
                    while delivery is not None and delivery.readable and not delivery.partial:
                        data = link.recv(delivery.pending)
                        link.advance()
                        if not delivery.settled:
                            delivery.update(Delivery.ACCEPTED)
                        delivery.settle()
                        queues[address].append(data)
                        got = True
                        delivery = link.current
                    if got:
                        touched.add(address)
                        if link.credit < WINDOW // 2:
                            link.flow(WINDOW - link.credit)
                else:
                    # Settle, in order, what the consumer has settled or decided.
                    sent = self.unsettled.get(link)
                    while sent and (sent[0].remote_state or sent[0].settled):
                        sent.popleft().settle()
            for address in self.addresses.values():
                if queues[address]:
                    touched.add(address)
            for address in touched:
                dispatch(address)
            link = conn.link_head(active_closed)
            while link:
                self.forget(link)
                link.close()
                link = link.next(active_closed)
            if conn.state & Endpoint.REMOTE_CLOSED and conn.state & Endpoint.LOCAL_ACTIVE:
                conn.close()

        def forget(self, link: Any) -> None:
            self.unsettled.pop(link, None)
            address = self.addresses.pop(link, None)
            if link.is_sender and address is not None and link in consumers[address]:
                consumers[address].remove(link)

        def drop(self) -> None:
            for link in list(self.addresses):
                self.forget(link)

        def read(self) -> bool:
            try:
                data = self.sock.recv(262144)
            except ConnectionError:
                data = b""
            transport: Any = self.transport
            if not data:
                transport.close_tail()
                return False
            view = memoryview(data)
            while view:
                room = transport.capacity()
                if room < 0:
                    return False
                transport.push(bytes(view[:room]))
                view = view[room:]
            self.process()
            return True

        def write(self) -> bool:
            transport: Any = self.transport
            while True:
                pending = transport.pending()
                if pending < 0:
                    return False
                if pending == 0:
                    return True
                try:
                    sent = self.sock.send(transport.peek(pending))
                except BlockingIOError:
                    return True
                except ConnectionError:
                    return False
                transport.pop(sent)

    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(64)
    server.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ, None)
    peers: dict[socket.socket, Peer] = {}
    print("READY", flush=True)
    read_only = selectors.EVENT_READ
    read_write = selectors.EVENT_READ | selectors.EVENT_WRITE

    def gone(peer: Peer) -> None:
        peer.drop()
        selector.unregister(peer.sock)
        peer.sock.close()
        del peers[peer.sock]

    while True:
        for key, events in selector.select(timeout=1.0):
            if key.data is None:
                sock, _address = server.accept()
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                peers[sock] = Peer(sock)
                selector.register(sock, read_only, read_only)
                continue
            peer = peers[key.fileobj]  # type: ignore[index]
            if events & selectors.EVENT_READ and not peer.read():
                peer.write()
                gone(peer)
        # Dispositions and flow from one connection may free up another: write all,
        # and watch for room in the sockets that could not take everything.
        for peer in list(peers.values()):
            if peer.addresses:
                peer.process()
            if not peer.write():
                gone(peer)
                continue
            wanted = read_write if peer.transport.pending() > 0 else read_only
            if selector.get_key(peer.sock).data != wanted:
                selector.modify(peer.sock, wanted, wanted)


class RelayProcess:
    """The peer in a subprocess: the relay above, or Proton's C ``broker`` example."""

    def __init__(self, kind: str = "relay") -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"amqp://127.0.0.1:{self.port}"
        if kind == "c-broker":
            # Built by bench/broker.py from Debian's libqpid-proton11-dev-examples.
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            from broker import build_c_examples, wait_port

            binary = build_c_examples() / "broker"
            self.proc = subprocess.Popen(
                [str(binary), "127.0.0.1", str(self.port)],
                stdout=subprocess.DEVNULL,
                text=True,
            )
            wait_port(self.port)
            return
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--relay", str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "READY":
            raise RuntimeError("the Proton relay did not start")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# --- Petrel ---------------------------------------------------------------------------------------


async def petrel_ping(url: str, count: int, address: str) -> dict[str, Any]:
    """One message in flight at a time: each is sent once the previous one arrived."""
    import petrel
    from petrel import Message

    producer = await petrel.connect(url, reconnect=False)
    consumer = await petrel.connect(url, reconnect=False)
    receiver = await consumer.open_receiver(address, credit=10)
    sender = await producer.open_sender(address)
    latencies: list[float] = []
    clock = time.perf_counter
    start = clock()
    for _ in range(count):
        sent_at = clock()
        outcome = await sender.send(
            Message(BODY, application_properties={"t": sent_at}), wait=False
        )
        delivery = await receiver.receive()
        latencies.append(clock() - sent_at)
        delivery.settle()
        await outcome
    elapsed = clock() - start
    await producer.close()
    await consumer.close()
    return _result(count, elapsed, latencies)


async def petrel_run(url: str, count: int, presettled: bool, address: str) -> dict[str, Any]:
    import petrel
    from petrel import Message

    producer = await petrel.connect(url, reconnect=False)
    consumer = await petrel.connect(url, reconnect=False)
    receiver = await consumer.open_receiver(address, credit=WINDOW, at_most_once=presettled)
    sender = await producer.open_sender(address, at_most_once=presettled)
    latencies: list[float] = []
    clock = time.perf_counter

    async def consume() -> None:
        receive = receiver.receive
        record = latencies.append
        for _ in range(count):
            delivery = await receive()
            record(clock() - delivery.message.application_properties["t"])  # type: ignore[index]
            if not presettled:
                delivery.settle()  # accept

    async def produce() -> None:
        send = sender.send
        futures = []
        for _ in range(count):
            message = Message(BODY, application_properties={"t": clock()})
            if presettled:
                await send(message)
            else:
                futures.append(await send(message, wait=False))
        if futures:
            # Every outcome, checked without asyncio.gather: gathering N futures that are
            # mostly done already schedules a callback (a Handle) for each, which cost
            # this benchmark up to a sixth of its time at 300,000 messages.
            await sender.wait_settled()
            for future in futures:
                future.result()  # raises if the message was not accepted

    start = clock()
    consuming = asyncio.create_task(consume())
    await produce()
    await consuming
    elapsed = clock() - start
    await producer.close()
    await consumer.close()
    return _result(count, elapsed, latencies)


# --- Proton ---------------------------------------------------------------------------------------


def proton_run(
    url: str, count: int, presettled: bool, address: str, ping: bool = False
) -> dict[str, Any]:
    from proton import Message
    from proton.handlers import MessagingHandler
    from proton.reactor import AtMostOnce, Container

    clock = time.perf_counter
    latencies: list[float] = []

    class Bench(MessagingHandler):
        def __init__(self) -> None:
            super().__init__(prefetch=WINDOW, auto_accept=True, auto_settle=True)
            self.sent = 0
            self.received = 0
            self.outcomes = 0
            self.start = 0.0
            self.end = 0.0

        def on_start(self, event: Any) -> None:
            container = event.container
            options = AtMostOnce() if presettled else None
            self.consumer = container.connect(url)
            self.producer = container.connect(url)
            container.create_receiver(self.consumer, address, options=options)
            self.sender = container.create_sender(self.producer, address, options=options)
            self.start = clock()

        def on_sendable(self, event: Any) -> None:
            sender = self.sender
            while sender.credit and self.sent < count:
                if ping and self.sent > self.received:
                    return  # one in flight at a time
                sender.send(Message(body=BODY, properties={"t": clock()}))
                self.sent += 1

        def on_message(self, event: Any) -> None:
            latencies.append(clock() - event.message.properties["t"])
            self.received += 1
            self._maybe_done()
            if ping:
                self.on_sendable(event)

        def on_accepted(self, event: Any) -> None:
            self.outcomes += 1
            self._maybe_done()

        def _maybe_done(self) -> None:
            if self.received == count and (presettled or self.outcomes == count):
                self.end = clock()
                self.consumer.close()
                self.producer.close()

    bench = Bench()
    Container(bench).run()
    return _result(count, bench.end - bench.start, latencies)


# --- reporting ------------------------------------------------------------------------------------


def _result(count: int, elapsed: float, latencies: list[float]) -> dict[str, Any]:
    latencies.sort()
    return {
        "msgs_per_s": round(count / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
        "count": count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--relay", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--impl", choices=["petrel", "proton"], action="append")
    parser.add_argument("--case", choices=["presettled", "unsettled", "latency"], action="append")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the Petrel runs into FILE")
    parser.add_argument("--no-uvloop", action="store_true", help="asyncio's own event loop")
    parser.add_argument(
        "--peer",
        choices=["relay", "c-broker"],
        default="relay",
        help="the Proton relay (default), or the C broker example (built as bench/broker.py does)",
    )
    args = parser.parse_args()
    if args.relay:
        run_relay(args.relay)
        return
    count = 500 if args.quick else args.count
    repeat = 1 if args.quick else args.repeat
    impls = args.impl or ["petrel", "proton"]
    cases = args.case or ["presettled", "unsettled", "latency"]

    from petrel.driver import run, uvloop_available

    use_uvloop = uvloop_available() and not args.no_uvloop
    relay = RelayProcess(args.peer)
    profiler = cProfile.Profile() if args.profile else None
    try:
        for case in cases:
            presettled = case == "presettled"
            ping = case == "latency"
            n_messages = max(1, count // 10) if ping else count
            for impl in impls:
                best: dict[str, Any] | None = None
                for n in range(repeat):
                    address = f"{ADDRESS}-{impl}-{case}-{n}"
                    if impl == "petrel":
                        if profiler is not None:
                            profiler.enable()
                        job = (
                            petrel_ping(relay.url, n_messages, address)
                            if ping
                            else petrel_run(relay.url, n_messages, presettled, address)
                        )
                        result = run(job, use_uvloop=use_uvloop)
                        if profiler is not None:
                            profiler.disable()
                    else:
                        result = proton_run(relay.url, n_messages, presettled, address, ping)
                    if best is None or result["msgs_per_s"] > best["msgs_per_s"]:
                        best = result
                assert best is not None
                line = {"case": case, "impl": impl, "peer": args.peer, **best}
                if impl == "petrel":
                    line["loop"] = "uvloop" if use_uvloop else "asyncio"
                print(json.dumps(line), flush=True)
    finally:
        relay.stop()
    if profiler is not None:
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
