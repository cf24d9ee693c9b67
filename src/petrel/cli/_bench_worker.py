"""One sender or receiver of ``petrel bench``, in its own process.

    python -m petrel.cli._bench_worker '{"role": "send", "client": "petrel", ...}'

The parent talks to it over two pipes.  The worker writes JSON lines to
stdout: ``{"event": "ready"}`` once its link is attached (or, listening, once
it listens), ``{"event": "progress", "n": N}`` about four times a second (N:
messages sent or received so far), and last ``{"event": "done", ...}`` with
its figures (a receiver's :class:`~petrel.cli._bench_stats.Tally`, a sender's
counts) and its own CPU seconds, or ``{"event": "error", "message": ...}``.
The parent writes ``go`` (senders: start sending) and ``stop`` (stop now) on
stdin.  Closing stdin counts as ``stop``.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._bench_stats import STAMP, Tally

#: Seconds between progress lines.
PROGRESS_INTERVAL = 0.25


@dataclass
class WorkerConfig:
    role: str  # "send" | "receive"
    client: str  # "petrel" | "proton"
    url: str
    address: str
    id: int = 0
    count: int | None = None  # per sender; None: until --duration is over or "stop"
    duration: float | None = None
    size: int = 100
    presettled: bool = False
    durable: bool = False
    listen: bool = False  # receiver: listen on url instead of connecting (peer to peer)
    credit: int = 1000


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Commands:
    """The parent's ``go``/``stop`` lines, read by a thread; ``on_change`` runs in that thread."""

    def __init__(self, on_change: Callable[[], None] = lambda: None) -> None:
        self.go = threading.Event()
        self.stop = threading.Event()
        self.on_change = on_change

    def start(self) -> None:
        threading.Thread(target=self._read, daemon=True, name="bench-commands").start()

    def _read(self) -> None:
        for line in sys.stdin:
            word = line.strip()
            if word == "go":
                self.go.set()
            elif word == "stop":
                self.stop.set()
            self.on_change()
        self.go.set()
        self.stop.set()
        self.on_change()


def body_for(config: WorkerConfig) -> tuple[bytes, Callable[[int], bytes]]:
    """The padding and a function seq -> body (stamp + padding)."""
    pad = bytes(max(0, config.size - STAMP.size))
    pack = STAMP.pack
    sender = config.id
    now = time.time_ns

    def make(seq: int) -> bytes:
        return pack(sender, seq, now()) + pad

    return pad, make


# --- Petrel ---------------------------------------------------------------------------------------


class _AsyncCommands:
    """:class:`Commands` seen from the event loop as two asyncio events."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.go = asyncio.Event()
        self.stop = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(self._sync)

        self.commands = Commands(wake)
        self.commands.start()

    def _sync(self) -> None:
        if self.commands.go.is_set():
            self.go.set()
        if self.commands.stop.is_set():
            self.stop.set()


async def _report(progress: Callable[[], int]) -> None:
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL)
        emit(event="progress", n=progress())


async def petrel_send(config: WorkerConfig) -> None:
    import petrel

    commands = _AsyncCommands(asyncio.get_running_loop())
    conn = await petrel.connect(config.url, reconnect=False)
    sender = await conn.open_sender(config.address, at_most_once=config.presettled)
    emit(event="ready")
    await commands.go.wait()
    _, make = body_for(config)
    state = {"outcomes": 0, "failed": 0}
    all_settled = asyncio.Event()
    seq = 0
    sending = True

    def on_outcome(future: asyncio.Future[None]) -> None:
        if future.cancelled() or future.exception() is not None:
            state["failed"] += 1
        state["outcomes"] += 1
        if not sending and state["outcomes"] == seq:
            all_settled.set()

    reporter = asyncio.create_task(_report(lambda: seq))
    stop = commands.stop
    count = config.count
    deadline = None if config.duration is None else time.monotonic() + config.duration
    durable = config.durable
    start_ns = time.time_ns()
    try:
        while (count is None or seq < count) and not stop.is_set():
            if deadline is not None and not seq & 63 and time.monotonic() >= deadline:
                break
            message = petrel.Message(make(seq), durable=durable)
            if config.presettled:
                await sender.send(message)
            else:
                future = await sender.send(message, wait=False)
                future.add_done_callback(on_outcome)
            seq += 1
        sending = False
        if not config.presettled and state["outcomes"] < seq:
            await all_settled.wait()
        end_ns = time.time_ns()
    finally:
        reporter.cancel()
    await sender.close()
    await conn.close()
    emit(
        event="done",
        sent=seq,
        outcomes=state["outcomes"],
        failed=state["failed"],
        start_ns=start_ns,
        end_ns=end_ns,
        cpu_s=cpu_seconds(),
    )


async def petrel_receive(config: WorkerConfig) -> None:
    import petrel

    commands = _AsyncCommands(asyncio.get_running_loop())
    tally = Tally()
    errors: list[str] = []
    reporter = asyncio.create_task(_report(lambda: tally.received))
    try:
        if config.listen:
            await _petrel_listen(config, tally, commands.stop)
        else:
            conn = await petrel.connect(config.url, reconnect=False)
            receiver = await conn.open_receiver(
                config.address, credit=config.credit, at_most_once=config.presettled
            )
            emit(event="ready")
            consuming = asyncio.create_task(_consume(receiver, tally, config.presettled))
            stopping = asyncio.create_task(commands.stop.wait())
            await asyncio.wait((consuming, stopping), return_when=asyncio.FIRST_COMPLETED)
            if consuming.done() and consuming.exception() is not None:
                # The link failed: say so (the parent reports it), then wait for "stop".
                errors.append(f"receiver {config.id}: {consuming.exception()}")
            await stopping
            consuming.cancel()
            await asyncio.gather(consuming, return_exceptions=True)
            await conn.close()
    finally:
        reporter.cancel()
    emit(event="done", cpu_s=cpu_seconds(), errors=errors, **tally.to_json())


async def _consume(receiver: Any, tally: Tally, presettled: bool) -> None:
    record = tally.record
    now = time.time_ns
    async for delivery in receiver:
        record(delivery.message.body, now())
        if not presettled:
            delivery.settle()


async def _petrel_listen(config: WorkerConfig, tally: Tally, stop: asyncio.Event) -> None:
    """Peer to peer: accept the senders' connections ourselves, with no client above the engine."""
    import petrel
    from petrel.driver import AmqpProtocol, Listener
    from petrel.engine import (
        ConnectionConfig,
        ConnectionOpened,
        DeliveryReceived,
        LinkAttachRequested,
        SaslConfig,
    )
    from petrel.spec import Accepted

    credit = config.credit
    accepted = Accepted()
    decode = petrel.Message.decode
    record = tally.record
    now = time.time_ns

    class Sink:
        def handle_event(self, protocol: AmqpProtocol, event: Any) -> None:
            if isinstance(event, DeliveryReceived):
                record(decode(event.payload).body, now())
                if not event.settled:
                    event.delivery.update(accepted, settled=True)
                link = event.link
                if link.credit < credit // 2:
                    link.flow(credit)
            elif isinstance(event, ConnectionOpened):
                protocol.engine.open()
            elif isinstance(event, LinkAttachRequested):
                event.link.attach()
                if event.link.is_receiver:
                    event.link.flow(credit)

    def engine_config() -> ConnectionConfig:
        return ConnectionConfig(
            container_id=f"petrel-bench-receiver-{config.id}",
            sasl=SaslConfig(mechanisms=["ANONYMOUS"]),
        )

    async with Listener([config.url], engine_config, lambda protocol: Sink()):
        emit(event="ready")
        await stop.wait()


# --- Proton ---------------------------------------------------------------------------------------


def proton_send(config: WorkerConfig) -> None:
    from proton import Message
    from proton.handlers import MessagingHandler
    from proton.reactor import AtMostOnce, Container

    commands = Commands()
    _, make = body_for(config)
    count = config.count

    class Send(MessagingHandler):
        def __init__(self) -> None:
            super().__init__(auto_settle=True)
            self.sent = 0
            self.outcomes = 0
            self.failed = 0
            self.going = False
            self.finished = False
            self.deadline: float | None = None
            self.start_ns = 0
            self.end_ns = 0

        def on_start(self, event: Any) -> None:
            self.container = event.container
            self.conn = event.container.connect(config.url)
            options = AtMostOnce() if config.presettled else None
            self.sender = event.container.create_sender(self.conn, config.address, options=options)
            self.timer = event.container.schedule(PROGRESS_INTERVAL, self)

        def on_link_opened(self, event: Any) -> None:
            emit(event="ready")

        def on_timer_task(self, event: Any) -> None:
            if self.finished:
                return
            if self.going:
                emit(event="progress", n=self.sent)
            elif commands.go.is_set():
                self.going = True
                self.start_ns = time.time_ns()
                if config.duration is not None:
                    self.deadline = time.monotonic() + config.duration
                self.pump()
            if commands.stop.is_set() or (
                self.deadline is not None and time.monotonic() >= self.deadline
            ):
                self.deadline = 0.0
                self.maybe_done()
            if not self.finished:
                self.timer = self.container.schedule(PROGRESS_INTERVAL, self)

        def on_sendable(self, event: Any) -> None:
            self.pump()

        def pump(self) -> None:
            if not self.going or self.finished:
                return
            sender = self.sender
            durable = config.durable
            while sender.credit and (count is None or self.sent < count):
                if self.deadline is not None and (
                    self.deadline == 0.0 or time.monotonic() >= self.deadline
                ):
                    break
                sender.send(Message(body=make(self.sent), durable=durable, inferred=True))
                self.sent += 1
            self.maybe_done()

        def on_accepted(self, event: Any) -> None:
            self.outcomes += 1
            self.maybe_done()

        def on_rejected(self, event: Any) -> None:
            self.outcomes += 1
            self.failed += 1
            self.maybe_done()

        def on_released(self, event: Any) -> None:
            self.on_rejected(event)

        def maybe_done(self) -> None:
            limit_hit = (count is not None and self.sent >= count) or self.deadline == 0.0
            if self.finished or not limit_hit:
                return
            if not config.presettled and self.outcomes < self.sent:
                return
            self.finished = True
            self.end_ns = time.time_ns()
            self.timer.cancel()
            self.conn.close()

    handler = Send()
    commands.start()
    Container(handler).run()
    emit(
        event="done",
        sent=handler.sent,
        outcomes=handler.outcomes,
        failed=handler.failed,
        start_ns=handler.start_ns,
        end_ns=handler.end_ns,
        cpu_s=cpu_seconds(),
    )


def proton_receive(config: WorkerConfig) -> None:
    from proton.handlers import MessagingHandler
    from proton.reactor import AtMostOnce, Container

    commands = Commands()
    tally = Tally()
    record = tally.record
    now = time.time_ns

    class Receive(MessagingHandler):
        def __init__(self) -> None:
            super().__init__(prefetch=config.credit, auto_accept=not config.presettled)
            self.connections: list[Any] = []
            self.acceptor: Any = None

        def on_start(self, event: Any) -> None:
            self.container = event.container
            if config.listen:
                self.acceptor = event.container.listen(config.url)
                emit(event="ready")
            else:
                conn = event.container.connect(config.url)
                self.connections.append(conn)
                options = AtMostOnce() if config.presettled else None
                event.container.create_receiver(conn, config.address, options=options)
            event.container.schedule(PROGRESS_INTERVAL, self)

        def on_connection_opened(self, event: Any) -> None:
            if config.listen:
                self.connections.append(event.connection)

        def on_link_opened(self, event: Any) -> None:
            if not config.listen:
                emit(event="ready")

        def on_message(self, event: Any) -> None:
            record(event.message.body, now())

        def on_timer_task(self, event: Any) -> None:
            emit(event="progress", n=tally.received)
            if not commands.stop.is_set():
                self.container.schedule(PROGRESS_INTERVAL, self)
                return
            if self.acceptor is not None:
                self.acceptor.close()
            for conn in self.connections:
                conn.close()
            self.container.stop()

    commands.start()
    Container(Receive()).run()
    emit(event="done", cpu_s=cpu_seconds(), **tally.to_json())


# --- entry point ----------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    config = WorkerConfig(**json.loads(argv[1]))
    try:
        if config.client == "proton":
            (proton_send if config.role == "send" else proton_receive)(config)
        else:
            from petrel.driver import run

            job = petrel_send if config.role == "send" else petrel_receive
            run(job(config))
    except Exception as exc:  # one line to the parent, whatever went wrong
        emit(event="error", message=f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
