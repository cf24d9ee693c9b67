"""Engine throughput: two engines in memory moving small messages, no sockets.

    python bench/engine.py [--messages 100000] [--size 100] [--profile petrel-unsettled]

Cases: pre-settled (at most once) and unsettled (the receiver accepts and
settles each delivery; the sender hears the outcome).  Each case runs for a
Petrel client/server pair and, when python-qpid-proton is installed, for a
Proton Transport pair driven the same way through its Python binding.  Prints
one JSON line per case.  The receiver grants credit in windows of ``--window``
deliveries and tops it up after each batch, like a prefetching consumer.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from petrel.engine import Connection, ConnectionConfig
from petrel.engine.events import DeliveryReceived, LinkAttachRequested
from petrel.spec import Accepted, SenderSettleMode, Source, Target


def petrel_case(messages: int, size: int, settled: bool, window: int) -> float:
    """Move ``messages`` through a Petrel pair; return the seconds it took."""
    client = Connection(ConnectionConfig(container_id="bench-client"))
    server = Connection(ConnectionConfig(container_id="bench-server"), server=True)
    client.handle_timer(0.0)
    server.handle_timer(0.0)

    def move() -> None:
        while True:
            data = client.data_to_send()
            if data:
                server.receive_data(data)
            serve()
            back = server.data_to_send()
            if back:
                client.receive_data(back)
            while client.next_event() is not None:
                pass
            if not data and not back:
                return

    receiver_holder = []
    accepted = Accepted()

    def serve() -> None:
        received = 0
        while (event := server.next_event()) is not None:
            if type(event) is DeliveryReceived:
                received += 1
                if not settled:
                    event.delivery.update(accepted, settled=True)
            elif type(event) is LinkAttachRequested:
                event.link.attach()
                receiver_holder.append(event.link)
                event.link.flow(window)
            elif not server._open_requested:
                server.open()
        if received:
            receiver_holder[0].add_credit(received)

    client.open()
    session = client.begin_session()
    mode = SenderSettleMode.SETTLED if settled else SenderSettleMode.UNSETTLED
    sender = session.attach_sender("bench", Source(), Target(address="q"), snd_settle_mode=mode)
    move()
    payload = b"x" * size
    send = sender.send
    start = time.perf_counter()
    sent = 0
    while sent < messages:
        for _ in range(min(sender.credit, messages - sent)):
            send(payload)
            sent += 1
        move()
    elapsed = time.perf_counter() - start
    assert not sender.session._unsettled_out
    return elapsed


def proton_case(messages: int, size: int, settled: bool, window: int) -> float:
    """The same exchange between two Proton engines, driven through Proton's Python API."""
    from proton import Collector, Delivery, Link, Transport
    from proton import Connection as PConnection
    from proton import Event as PE

    def endpoint(mode: int) -> tuple[PConnection, Collector, Transport]:
        conn = PConnection()
        collector = Collector()
        conn.collect(collector)
        transport = Transport(mode)
        transport.bind(conn)
        return conn, collector, transport

    cconn, ccoll, ctrans = endpoint(Transport.CLIENT)
    sconn, scoll, strans = endpoint(Transport.SERVER)
    cconn.container = "bench-client"
    sconn.container = "bench-server"

    def shuttle(src: Transport, dst: Transport) -> bool:
        pending = src.pending()
        if pending <= 0:
            return False
        data = src.peek(pending)
        src.pop(len(data))
        while data:
            n = min(dst.capacity(), len(data))
            dst.push(data[:n])
            data = data[n:]
        return True

    receivers = []

    def serve() -> None:
        received = 0
        while (event := scoll.peek()) is not None:
            kind = event.type
            if kind == PE.DELIVERY:
                d = event.delivery
                if d.readable and not d.partial:
                    link = d.link
                    link.recv(d.pending)
                    link.advance()
                    received += 1
                    if not settled:
                        d.update(Delivery.ACCEPTED)
                    d.settle()
            elif kind == PE.CONNECTION_REMOTE_OPEN:
                event.connection.open()
            elif kind == PE.SESSION_REMOTE_OPEN:
                event.session.open()
            elif kind == PE.LINK_REMOTE_OPEN:
                link = event.link
                link.target.copy(link.remote_target)
                link.open()
                link.flow(window)
                receivers.append(link)
            scoll.pop()
        if received:
            receivers[0].flow(received)

    def drain_client() -> None:
        while (event := ccoll.peek()) is not None:
            if event.type == PE.DELIVERY:
                d = event.delivery
                if d.remote_state == Delivery.ACCEPTED or d.settled:
                    d.settle()
            ccoll.pop()

    def move() -> None:
        while True:
            a = shuttle(ctrans, strans)
            serve()
            b = shuttle(strans, ctrans)
            drain_client()
            if not a and not b:
                return

    cconn.open()
    ssn = cconn.session()
    ssn.open()
    sender = ssn.sender("bench")
    sender.target.address = "q"
    sender.snd_settle_mode = Link.SND_SETTLED if settled else Link.SND_UNSETTLED
    sender.open()
    move()
    payload = b"x" * size
    start = time.perf_counter()
    sent = 0
    tag = 0
    while sent < messages:
        for _ in range(min(sender.credit, messages - sent)):
            d = sender.delivery(str(tag))
            tag += 1
            sender.send(payload)
            sender.advance()
            if settled:
                d.settle()
            sent += 1
        move()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--window", type=int, default=1000, help="receiver credit window")
    parser.add_argument("--profile", help="profile one case, e.g. petrel-unsettled")
    parser.add_argument("--no-proton", action="store_true", help="skip the Proton cases")
    args = parser.parse_args()

    impls: dict[str, Callable[[int, int, bool, int], float]] = {"petrel": petrel_case}
    if not args.no_proton:
        try:
            import proton  # noqa: F401
        except ImportError:
            pass
        else:
            impls["proton"] = proton_case

    for impl, run in impls.items():
        for settled in (True, False):
            name = f"{impl}-{'presettled' if settled else 'unsettled'}"
            if args.profile and args.profile != name:
                continue
            if args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
            seconds = run(args.messages, args.size, settled, args.window)
            if args.profile:
                profiler.disable()
                pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
            print(
                json.dumps(
                    {
                        "name": f"engine.{name}",
                        "impl": impl,
                        "settled": settled,
                        "messages": args.messages,
                        "size": args.size,
                        "seconds": round(seconds, 3),
                        "msgs_per_s": round(args.messages / seconds),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
