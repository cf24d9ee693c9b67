"""Attacks on a running broker: slowloris, half-open and silent clients, clients that never
read, and floods of connections.

Each attack runs while a bystander (a Petrel client in its own thread) keeps sending
and receiving durable messages, and is checked the same way: the attacker is cut, with
a clear error where the protocol lets the broker send one and a log line; the
bystander's traffic completes in order with nothing lost; the durable messages stored
before the first attack are all there after the last (a sqlite store).

The limits are :class:`petrel.server.LimitSettings` (``sasl_timeout``,
``idle_timeout``, ``max_pending_per_host``, ``max_connections``,
``write_stall_timeout``, ``max_write_backlog``).  Times here are small limits and
generous deadlines: nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

import petrel
from petrel import spec
from petrel.broker import Broker
from petrel.driver import AmqpProtocol, connect
from petrel.engine import ConnectionConfig
from petrel.errors import Condition
from petrel.server import BrokerSettings, LimitSettings, ListenerSettings
from petrel.spec import Begin, Close, Flow, Open, SaslCode, SaslInit, SaslOutcome
from petrel.spec.framing import AMQP_HEADER, SASL_HEADER
from petrel.types import Symbol
from tests.helpers.frames import RawClient, frame, sasl_frame
from tests.helpers.servers import BrokerProcess, run_broker

#: Deadlines only: how long a wait may take before the test gives up.
DEADLINE = 60.0
RESOURCE_LIMIT = Condition.RESOURCE_LIMIT_EXCEEDED

LIMITS = """
[limits]
sasl_timeout = 2.0
idle_timeout = 2.0
write_stall_timeout = 2.0
link_rate = 100.0

[[queues]]
name = "kept"

[[queues]]
name = "bystander"

[[queues]]
name = "flood"
"""
#: Durable messages stored before the first attack; all must be there after the last.
KEPT = 25


class Bystander:
    """A Petrel client in a thread of its own, sending a durable message and receiving it
    back, over and over, until stopped.  ``rounds`` counts the round trips done."""

    def __init__(self, url: str, address: str = "bystander") -> None:
        self.url = url
        self.address = address
        self.rounds = 0
        self.received: list[int] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bystander", daemon=True)

    def __enter__(self) -> Bystander:
        self._thread.start()
        assert self._ready.wait(DEADLINE), f"the bystander did not start: {self.error!r}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)
        assert not self._thread.is_alive(), "the bystander did not stop"
        if self.error is not None:
            raise AssertionError(f"the bystander failed: {self.error!r}") from self.error
        # Every message it sent came back, once, in order.
        assert self.received == list(range(1, self.rounds + 1))

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by __exit__
            self.error = exc
            self._ready.set()

    async def _main(self) -> None:
        async with await petrel.connect(self.url, reconnect=False) as conn:
            sender = await conn.open_sender(self.address)
            receiver = await conn.open_receiver(self.address)
            self._ready.set()
            while not self._stop.is_set():
                n = self.rounds + 1
                await sender.send(petrel.Message(n, durable=True), timeout=DEADLINE)
                delivery = await receiver.receive(timeout=DEADLINE)
                self.received.append(delivery.message.body)
                await delivery.accept()
                self.rounds = n

    def progresses(self, rounds: int = 5) -> None:
        """Wait until it has done ``rounds`` more round trips."""
        target = self.rounds + rounds
        deadline = time.monotonic() + DEADLINE
        while self.rounds < target:
            assert self.error is None, f"the bystander failed: {self.error!r}"
            assert time.monotonic() < deadline, "the bystander made no progress"
            time.sleep(0.01)


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.02)


def _log_lines(broker: BrokerProcess, pattern: str) -> list[str]:
    return [line for line in broker.log().splitlines() if re.search(pattern, line)]


# --- against a broker process ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerProcess]:
    with run_broker(LIMITS, store="sqlite") as process:
        yield process


@pytest.fixture(scope="module")
def kept(broker: BrokerProcess) -> list[str]:
    bodies = [f"kept-{i}" for i in range(KEPT)]

    async def store() -> None:
        async with await petrel.connect(broker.url, reconnect=False) as conn:
            sender = await conn.open_sender("kept")
            for body in bodies:
                await sender.send(petrel.Message(body, durable=True))

    asyncio.run(store())
    return bodies


@pytest.fixture
def bystander(broker: BrokerProcess, kept: list[str]) -> Iterator[Bystander]:
    with Bystander(broker.url) as client:
        client.progresses()
        yield client
        client.progresses()


def _sasl_outcome(client: RawClient) -> SaslOutcome:
    return client.expect(SaslOutcome)


def _churn(port: int, seconds: float) -> int:
    """Attach and detach a link as fast as the broker takes it, reading its answers, for
    ``seconds``; the bytes of answers it got."""
    pair = frame(
        spec.Attach(
            name="churn",
            handle=0,
            role=spec.Role.SENDER,
            source=spec.Source(),
            target=spec.Target(address="churn"),
        )
    ) + frame(spec.Detach(handle=0, closed=True))
    hello = (
        AMQP_HEADER
        + frame(Open(container_id="churner"))
        + frame(Begin(next_outgoing_id=0, incoming_window=1000, outgoing_window=1000))
    )
    sock = socket.create_connection(("127.0.0.1", port))
    received = 0

    def send() -> None:
        with contextlib.suppress(OSError):
            sock.sendall(hello)
            while True:
                sock.sendall(pair * 50)

    def read() -> None:
        nonlocal received
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                received += len(chunk)

    threads = [threading.Thread(target=f, daemon=True) for f in (send, read)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    answered = received
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    for thread in threads:
        thread.join(DEADLINE)
    return answered // len(pair)  # about the pairs answered: an answer is as big as its request


def test_a_client_churning_links_is_slowed_and_others_go_on(
    broker: BrokerProcess, bystander: Bystander
) -> None:
    """Two clients attach and detach links as fast as they can, reading the answers: the
    broker takes at most ``link_rate`` (100 here) a second from each, plus a burst and the
    rest of one read, and the bystander keeps going.  Without the limit each gets
    thousands a second."""
    seconds = 3.0
    answered: list[int] = []
    churners = [
        threading.Thread(target=lambda: answered.append(_churn(broker.port, seconds)))
        for _ in range(2)
    ]
    for churner in churners:
        churner.start()
    bystander.progresses(10)
    for churner in churners:
        churner.join(DEADLINE)
    # rate x time + a burst of as many + one 32 KiB read's worth (~400), counted roughly.
    assert len(answered) == 2 and all(n < 2 * (100 * seconds + 100 + 400) for n in answered), (
        answered
    )


def test_slowloris_in_the_protocol_header(broker: BrokerProcess, bystander: Bystander) -> None:
    """Three bytes of a header, then one byte a second: hung up on at the open deadline,
    without a byte (there is no protocol yet to say anything in)."""
    with RawClient(broker.port, timeout=DEADLINE) as client:
        client.send(b"A")
        for byte in b"MQP\x03\x01\x00":  # seven bytes in all: never a whole header
            client.read_for(1.0)
            if client.eof:
                break
            with contextlib.suppress(OSError):
                client.send(bytes([byte]))
        client.wait_closed()
        assert client.headers == [] and client.frames == []
    assert _log_lines(broker, r"no open within 2 s")


def test_slowloris_in_sasl(broker: BrokerProcess, bystander: Bystander) -> None:
    """The SASL header, then a sasl-init a byte a second: the broker gives up at the open
    deadline with the outcome ``sys-temp`` (part 5.3.3.6: try again later), then hangs up."""
    init = sasl_frame(SaslInit(mechanism=Symbol("ANONYMOUS"), initial_response=b"x"))
    with RawClient(broker.port, timeout=DEADLINE) as client:
        client.send(SASL_HEADER)
        for byte in init[:-1]:
            with contextlib.suppress(OSError):
                client.send(bytes([byte]))
            client.read_for(1.0)
            if client.eof or client.performatives(SaslOutcome):
                break
        outcome = _sasl_outcome(client)
        assert outcome.code == SaslCode.SYS_TEMP
        client.wait_closed()
    bystander.progresses()


def test_half_open_connections_are_dropped(broker: BrokerProcess, bystander: Bystander) -> None:
    """Connected, and nothing more: dropped at the open deadline."""
    clients = [RawClient(broker.port, timeout=DEADLINE) for _ in range(5)]
    try:
        for client in clients:
            client.wait_closed()
            assert client.headers == [] and client.frames == []
    finally:
        for client in clients:
            client.close()
    bystander.progresses()


def test_a_client_that_goes_silent_after_open(broker: BrokerProcess, bystander: Bystander) -> None:
    """Open, then silence: the idle timeout closes it with ``resource-limit-exceeded``."""
    with RawClient(broker.port, timeout=DEADLINE) as client:
        client.send(AMQP_HEADER, frame(Open(container_id="silent")))
        opened = client.expect(Open)
        assert opened.idle_time_out == 2000
        close = client.expect(Close)
        assert close.error is not None
        assert str(close.error.condition) == RESOURCE_LIMIT
        assert "idle" in (close.error.description or "")
        client.wait_closed()
    bystander.progresses()


def test_a_client_that_never_reads_is_cut(broker: BrokerProcess, bystander: Bystander) -> None:
    """A consumer with credit for everything that reads nothing (a tiny receive buffer):
    cut once the broker's write buffer has been full for ``write_stall_timeout``, with a
    log line; the messages it was sent and never settled go back to the queue."""
    count, size = 300, 32 * 1024  # more than the kernel's socket buffers hold

    async def fill() -> None:
        async with await petrel.connect(broker.url, reconnect=False) as conn:
            sender = await conn.open_sender("flood")
            pending = [
                await sender.send(petrel.Message(bytes([i % 256]) * size), wait=False)
                for i in range(count)
            ]
            await asyncio.gather(*pending)

    asyncio.run(fill())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", broker.port))
    window = 0x7FFFFFFF
    try:
        sock.sendall(
            AMQP_HEADER
            + frame(Open(container_id="greedy"))
            + frame(Begin(next_outgoing_id=0, incoming_window=window, outgoing_window=window))
            + frame(
                spec.Attach(
                    name="greedy",
                    handle=0,
                    role=spec.Role.RECEIVER,
                    source=spec.Source(address="flood"),
                    target=spec.Target(),
                )
            )
            + frame(
                Flow(
                    next_incoming_id=0,
                    incoming_window=window,
                    next_outgoing_id=0,
                    outgoing_window=window,
                    handle=0,
                    delivery_count=0,
                    link_credit=100_000,
                )
            )
        )
        # Cut as it stalls, or (if its idle timeout came first) as it leaves the close
        # the broker sent it unread.
        _until(
            lambda: bool(
                _log_lines(
                    broker, r"cutting .*(read nothing of the \d+ bytes|none of our last bytes)"
                )
            ),
            "the broker cutting the client that does not read",
        )
        bystander.progresses()
    finally:
        sock.close()

    async def drain() -> list[bytes]:
        got = []
        async with await petrel.connect(broker.url, reconnect=False) as conn:
            receiver = await conn.open_receiver("flood", credit=50)
            for _ in range(count):
                delivery = await receiver.receive(timeout=DEADLINE)
                got.append(delivery.message.body)
                await delivery.accept()
        return got

    got = Counter(body[:1] for body in asyncio.run(drain()))
    assert got == Counter(bytes([i % 256]) for i in range(count))


def test_nothing_stored_was_lost(broker: BrokerProcess, kept: list[str]) -> None:
    """After every attack: the durable messages stored before the first are all there."""

    async def take() -> list[Any]:
        async with await petrel.connect(broker.url, reconnect=False) as conn:
            receiver = await conn.open_receiver("kept", credit=KEPT)
            got = []
            for _ in range(KEPT):
                delivery = await receiver.receive(timeout=DEADLINE)
                got.append(delivery.message.body)
                await delivery.accept()
            with pytest.raises(TimeoutError):
                await receiver.receive(timeout=0.5)
            return got

    assert asyncio.run(take()) == kept


# --- floods of connections ------------------------------------------------------------------------

FLOOD = """
[limits]
sasl_timeout = 120.0
max_pending_per_host = 8
max_connections = 12

[[queues]]
name = "bystander"
"""
#: The flood of connections that do not open, with its refusals summed up in the log after
#: 2 s instead of the default 10 (60 refusals take far less than a period).
FLOOD_SHORT_LOG_PERIOD = FLOOD.replace("[limits]\n", "[limits]\nrefusal_log_period = 2.0\n")


def _closed_without_a_byte(sock: socket.socket) -> bool:
    sock.settimeout(DEADLINE)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def _summed_up(broker: BrokerProcess, kind: str) -> int:
    """The refusals of ``kind`` the broker's log counted in summary lines."""
    return sum(int(found[1]) for found in re.finditer(rf"(\d+) more {kind}", broker.log()))


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(1024)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


@pytest.mark.slow
def test_a_flood_of_connections_that_do_not_open() -> None:
    """From one host, past ``max_pending_per_host`` connections still opening: each
    further one is dropped as it connects (before a byte), the log says so a bounded
    number of times, and the bystander, connected before, goes on."""
    with (
        run_broker(FLOOD_SHORT_LOG_PERIOD, store="sqlite") as broker,
        Bystander(broker.url) as bystander,
    ):
        bystander.progresses()
        pending = [socket.create_connection(("127.0.0.1", broker.port)) for _ in range(8)]
        flood = []
        try:
            flood += [socket.create_connection(("127.0.0.1", broker.port)) for _ in range(60)]
            bystander.progresses()
            for sock in flood:
                assert _closed_without_a_byte(sock)
            # The first eight wait for their open deadline, two minutes away.
            assert all(_still_open(sock) for sock in pending)
            lines = _log_lines(broker, r"refused a connection from 127\.0\.0\.1: 8 connections")
            assert 1 <= len(lines) <= 10
            # The ones left out of the log are counted in one line when its period ends:
            # with the lines logged one by one, all sixty.
            _until(
                lambda: len(lines) + _summed_up(broker, "connections refused") == len(flood),
                "the summary of the refusals left out of the log",
            )
        finally:
            for sock in pending + flood:
                sock.close()
        # Once they are gone, a new client is welcome.
        asyncio.run(_one_round_trip(broker.url))
        bystander.progresses()


def test_a_flood_of_connections_that_open() -> None:
    """Past ``max_connections`` a client is told so with a close once it has opened; past
    twice the limit it is dropped as it connects, logged a bounded number of times."""
    with run_broker(FLOOD, store="sqlite") as broker, Bystander(broker.url) as bystander:
        bystander.progresses()
        clients: list[RawClient] = []
        outcomes: list[str] = []
        try:
            for n in range(40):
                client = RawClient(broker.port, timeout=DEADLINE)
                clients.append(client)
                with contextlib.suppress(OSError):  # a dropped one may be gone already
                    client.send(AMQP_HEADER, frame(Open(container_id=f"flood-{n}")))
                # Read until it is answered (an open) or hung up on.
                while not client.eof and not client.performatives(Open):
                    client.read_for(0.05)
                if client.eof:
                    outcomes.append("dropped")
                    continue
                client.read_for(0.1)
                closes = client.performatives(Close)
                outcomes.append(str(closes[0].error.condition) if closes else "open")
            bystander.progresses()
        finally:
            for client in clients:
                client.close()
        # The bystander holds one of the twelve places.
        assert outcomes[:11] == ["open"] * 11
        assert outcomes[11:23] == [RESOURCE_LIMIT] * 12
        assert set(outcomes[23:]) == {"dropped"}
        lines = _log_lines(broker, r"dropped a connection from .* twice max_connections = 12")
        assert 1 <= len(lines) <= 10
        bystander.progresses()


async def _one_round_trip(url: str) -> None:
    async with await petrel.connect(url, reconnect=False) as conn:
        sender = await conn.open_sender("welcome")
        await sender.send(petrel.Message("hi"))
        receiver = await conn.open_receiver("welcome")
        delivery = await receiver.receive(timeout=DEADLINE)
        await delivery.accept()


# --- what the broker buffers for a client that does not read (in-process) ------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def handle_event(self, protocol: AmqpProtocol, event: Any) -> None:
        self.events.append(event)


@pytest.fixture
async def inproc() -> AsyncIterator[Broker]:
    settings = BrokerSettings(
        store="memory",
        listeners=[ListenerSettings(url="amqp://127.0.0.1:0")],
        # No link_rate: the churning client below must be read as fast as it sends, to
        # show the backlog limit (link_rate has its own test above).
        limits=LimitSettings(write_stall_timeout=1.0, max_write_backlog=256 * 1024, link_rate=0),
    )
    server = Broker(settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(timeout=1.0)


def _buffered(protocol: AmqpProtocol) -> int:
    """What the broker holds for one client: the socket's write buffer and the engine's
    output not yet written."""
    assert protocol.transport is not None
    return protocol.transport.get_write_buffer_size() + protocol.engine.pending_output


async def _until_async(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        await asyncio.sleep(0.01)


async def test_credit_for_a_whole_queue_does_not_copy_it_into_the_buffer(
    inproc: Broker,
) -> None:
    """The queue is full before a consumer with credit for all of it attaches and reads
    nothing: the broker writes about a high-water mark's worth, not the queue."""
    url = f"amqp://127.0.0.1:{inproc.bound[0][1]}"
    count, size = 1000, 32 * 1024  # 32 MiB, more than the kernel's socket buffers hold
    async with await petrel.connect(url, reconnect=False) as conn:
        sender = await conn.open_sender("deep")
        pending = [await sender.send(petrel.Message(b"x" * size), wait=False) for _ in range(count)]
        await asyncio.gather(*pending)
    recorder = Recorder()
    greedy = await connect(url, ConnectionConfig(), recorder)
    greedy.pause_reading()  # from here on it reads nothing
    link = greedy.engine.begin_session().attach_receiver(
        "greedy", source=spec.Source(address="deep")
    )
    link.flow(100_000)
    greedy.flush()
    await _until_async(
        lambda: any(c.consumers and c.consumers[0].delivered for c in inproc.connections.values()),
        "the first delivery",
    )
    server_side = next(p for p, c in inproc.connections.items() if c.consumers)
    for _ in range(50):  # loop turns enough for the broker to have written all it would
        await asyncio.sleep(0.01)
    queue = inproc.core.queues["deep"]
    assert _buffered(server_side) < 2 * 1024 * 1024, _buffered(server_side)
    assert queue.available > count // 2
    # Then it is cut (write_stall_timeout), and what it was sent goes back to the queue.
    await _until_async(lambda: server_side not in inproc.connections, "the cut")
    await _until_async(lambda: queue.available == count, "the messages back in the queue")
    greedy.abort_if_open()


async def test_a_client_that_sends_but_never_reads_is_not_read_either(
    inproc: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """Attaching and detaching a link, over and over, makes the broker answer each frame
    (the answers as big as the requests); a client that never reads them gets at most
    ``max_write_backlog`` queued past the high-water mark before the broker stops reading
    it, and is cut after ``write_stall_timeout``."""
    caplog.set_level(logging.INFO, logger="petrel")
    port = inproc.bound[0][1]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    window = 1000
    churn = frame(
        spec.Attach(
            name="churn",
            handle=0,
            role=spec.Role.SENDER,
            source=spec.Source(),
            target=spec.Target(address="churn"),
        )
    ) + frame(spec.Detach(handle=0, closed=True))
    hello = (
        AMQP_HEADER
        + frame(Open(container_id="chatty"))
        + frame(Begin(next_outgoing_id=0, incoming_window=window, outgoing_window=window))
    )
    await loop.sock_sendall(sock, hello)
    await _until_async(lambda: bool(inproc.connections), "the connection")
    server_side = next(iter(inproc.connections))
    burst = churn * 1000
    sent = 0
    largest = 0
    try:
        # Send until the broker stops reading (our sends no longer complete) or it cuts us.
        while server_side in inproc.connections:
            try:
                await asyncio.wait_for(loop.sock_sendall(sock, burst), 2.0)
            except TimeoutError:
                break
            except OSError:
                break
            sent += len(burst)
            if server_side.transport is not None:
                largest = max(largest, _buffered(server_side))
        if server_side.transport is not None:
            largest = max(largest, _buffered(server_side))
        # The answers it never read: the high-water mark, the backlog allowed past it, and
        # the answers to what was read before each check (asyncio reads up to 256 KiB at
        # once; an answer is about as big as its request): under 1.5 MiB, where without
        # the backlog limit it grows as long as the client sends.
        assert largest < 1536 * 1024, (largest, sent)
        assert any("not reading from" in r.getMessage() for r in caplog.records)
        await _until_async(lambda: server_side not in inproc.connections, "the cut")
        assert any("read nothing of the" in r.getMessage() for r in caplog.records)
    finally:
        sock.close()
