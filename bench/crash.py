"""Crash harness: durable messages through a broker that is killed with SIGKILL again and again.

    python bench/crash.py [--rounds 20] [--producers 2] [--consumers 2] [--count 2000]
                          [--store sqlite|postgresql --store-url URL] [--seed 1]
                          [--transactions N]

Producers send durable messages at least once (each send waits for the
broker's acceptance; the client resends what was unsettled when the
connection dropped) while consumers receive and accept.  Meanwhile the broker
is killed with SIGKILL at random moments ``--rounds`` times and restarted on
the same port and data directory.  At the end every message whose send was
accepted must have been received at least once.  Duplicates (possible only
for deliveries in flight at a crash) are counted and reported.

With ``--transactions N`` the work is transactional instead: each producer
commits transactions of N durable messages (a failed or unanswered one is
given up, and the next has new message ids), and each consumer accepts what it
receives in transactions of up to N, committed, while the broker is killed the
same way (a commit is cut by a kill now and then).  The checks then are
transactional: every transaction's messages were received all or not at all,
those of a transaction whose commit was answered all of them (``lost`` counts
those missing, ``partial_sends`` the transactions seen in part); and of the
messages accepted in one consumer transaction (those whose sending transaction
is known to be committed), either all came back afterwards or none did, and
none did if the accepting commit was answered (``partial_accepts``,
``accepts_undone``).

Prints one JSON line and exits 1 if any accepted message was lost (or a
transactional check failed), or if the run
did not finish within ``--timeout`` (then ``timed_out`` is true and ``lost``
counts what had not arrived yet).  SIGTERM or Ctrl-C stops it with its brokers,
printing nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import petrel

PETREL = str(Path(sys.executable).with_name("petrel"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BrokerProcess:
    """The broker under test: started, killed and restarted on one port and data directory."""

    def __init__(
        self, port: int, data_dir: str, store: str, log: Path, store_url: str | None = None
    ) -> None:
        self.store_url = store_url
        self.port = port
        self.data_dir = data_dir
        self.store = store
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    async def start(self, *, wait_listening: bool = True) -> None:
        """Start the broker; wait until it listens unless it is to wait as a backup."""
        args = [PETREL, "broker", "--listen", f"amqp://127.0.0.1:{self.port}"]
        args += ["--store", self.store, "--data-dir", self.data_dir, "--log-level", "warning"]
        if self.store_url:
            args += ["--store-url", self.store_url]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        self.starts += 1
        if not wait_listening:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}; see {self.log}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        raise TimeoutError("the broker did not start")

    async def listening(self) -> bool:
        """Whether this broker accepts connections (the live one of a pair does)."""
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


RECONNECT = petrel.Reconnect(initial_delay=0.02, max_delay=0.3, max_attempts=None)


async def produce(
    url: str | list[str], index: int, count: int, accepted: set[str], window: int
) -> None:
    conn = await petrel.connect(url, reconnect=RECONNECT, container_id=f"producer-{index}")
    try:
        sender = await conn.open_sender("crash")
        in_flight: dict[str, asyncio.Future[None]] = {}
        seq = 0
        while seq < count or in_flight:
            while seq < count and len(in_flight) < window:
                message_id = f"{index}-{seq}"
                message = petrel.Message(message_id, message_id=message_id, durable=True)
                in_flight[message_id] = await sender.send(message, wait=False, timeout=None)
                seq += 1
            done, _ = await asyncio.wait(in_flight.values(), return_when=asyncio.FIRST_COMPLETED)
            for message_id, future in list(in_flight.items()):
                if future in done:
                    del in_flight[message_id]
                    if future.exception() is None:
                        accepted.add(message_id)
                    else:
                        # Refused (released, say): send it again.
                        message = petrel.Message(message_id, message_id=message_id, durable=True)
                        in_flight[message_id] = await sender.send(message, wait=False, timeout=None)
    finally:
        await conn.close()


async def consume(
    url: str | list[str], index: int, received: dict[str, int], idle: asyncio.Event, delay: float
) -> None:
    conn = await petrel.connect(url, reconnect=RECONNECT, container_id=f"consumer-{index}")
    try:
        receiver = await conn.open_receiver("crash", credit=200)
        while True:
            try:
                delivery = await receiver.receive(timeout=1.0)
            except petrel.Timeout:
                idle.set()
                continue
            idle.clear()
            body = delivery.message.body
            received[body] = received.get(body, 0) + 1
            if delay:
                await asyncio.sleep(delay)  # work on it a while: crashes catch some in hand
            with contextlib.suppress(petrel.ClientError):
                await delivery.accept()
    finally:
        await conn.close()


class Ledger:
    """What the transactional clients did and saw, for the checks at the end."""

    def __init__(self) -> None:
        #: Every producer transaction tried: its message ids, by key.
        self.attempts: dict[str, list[str]] = {}
        #: The keys of those whose commit was answered (committed for sure).
        self.committed: set[str] = set()
        #: Committed per producer (each stops at ``--count``).
        self.committed_by: dict[int, int] = {}
        #: Each receive of each message id: the value of ``clock`` then.
        self.receives: dict[str, list[int]] = {}
        self.clock = 0
        #: Consumer transactions: (clock when the commit began, the ids accepted in it).
        self.accepts_committed: list[tuple[int, list[str]]] = []
        self.accepts_unknown: list[tuple[int, list[str]]] = []

    def received(self, message_id: str) -> None:
        self.clock += 1
        self.receives.setdefault(message_id, []).append(self.clock)

    def not_consumed(self) -> set[str]:
        """Messages of committed transactions not yet accepted in a consumer transaction
        (committed, or cut by a kill: that one may have taken effect)."""
        accepted = {i for _, ids in self.accepts_committed + self.accepts_unknown for i in ids}
        return {i for k in self.committed for i in self.attempts[k]} - accepted

    @staticmethod
    def key_of(message_id: str) -> str:
        return message_id.rsplit("-", 1)[0]

    def check(self) -> dict[str, Any]:
        """The transactional checks (see the module docstring)."""
        lost: list[str] = []
        partial_sends: list[str] = []
        for key, ids in self.attempts.items():
            seen = sum(1 for i in ids if i in self.receives)
            if 0 < seen < len(ids):
                partial_sends.append(key)
            if key in self.committed:
                lost += [i for i in ids if i not in self.receives]
        partial_accepts: list[list[str]] = []
        accepts_undone: list[str] = []
        for start, ids, answered in [(s, i, True) for s, i in self.accepts_committed] + [
            (s, i, False) for s, i in self.accepts_unknown
        ]:
            # Only messages surely on disk before the accept count: a message of a sending
            # transaction cut by a kill may have been delivered and then lost with it.
            sure = [i for i in ids if self.key_of(i) in self.committed]
            back = [i for i in sure if any(c > start for c in self.receives[i])]
            if answered:
                accepts_undone += back
            elif 0 < len(back) < len(sure):
                partial_accepts.append(ids)
        return {
            "transactions": len(self.attempts),
            "transactions_committed": len(self.committed),
            "accept_transactions": len(self.accepts_committed),
            "accept_transactions_cut": len(self.accepts_unknown),
            "lost": len(lost),
            "lost_sample": sorted(lost)[:10],
            "partial_sends": len(partial_sends),
            "partial_sends_sample": partial_sends[:5],
            "partial_accepts": len(partial_accepts),
            "partial_accepts_sample": partial_accepts[:3],
            "accepts_undone": len(accepts_undone),
            "accepts_undone_sample": accepts_undone[:10],
        }


async def produce_in_transactions(
    url: str | list[str], index: int, count: int, batch: int, ledger: Ledger
) -> None:
    """Commit ``count`` transactions of ``batch`` messages; one that fails or whose
    answer is lost with the connection is given up (the next has new ids)."""
    conn = await petrel.connect(url, reconnect=RECONNECT, container_id=f"producer-{index}")
    try:
        sender = await conn.open_sender("crash")
        attempt = 0
        while ledger.committed_by.get(index, 0) < count:
            key = f"{index}-{attempt}"
            attempt += 1
            ids = ledger.attempts[key] = [f"{key}-{n}" for n in range(batch)]
            try:
                async with conn.transaction(timeout=10) as tx:
                    for message_id in ids:
                        message = petrel.Message(message_id, message_id=message_id, durable=True)
                        await tx.send(sender, message)
            except petrel.ClientError:
                await asyncio.sleep(0.02)  # a kill: the connection comes back
                continue
            ledger.committed.add(key)
            ledger.committed_by[index] = ledger.committed_by.get(index, 0) + 1
    finally:
        await conn.close()


async def consume_in_transactions(
    url: str | list[str], index: int, batch: int, ledger: Ledger, idle: asyncio.Event
) -> None:
    """Receive, and accept in transactions of up to ``batch`` deliveries, committed."""
    conn = await petrel.connect(url, reconnect=RECONNECT, container_id=f"consumer-{index}")
    try:
        receiver = await conn.open_receiver("crash", credit=max(200, 4 * batch))
        while True:
            held: list[petrel.Delivery] = []
            while len(held) < batch:
                try:
                    delivery = await receiver.receive(timeout=0.2 if held else 1.0)
                except petrel.Timeout:
                    if held:
                        break
                    idle.set()
                    continue
                idle.clear()
                ledger.received(delivery.message.body)
                held.append(delivery)
            start = ledger.clock
            ids = [d.message.body for d in held]
            try:
                async with conn.transaction(timeout=10) as tx:
                    for delivery in held:
                        await tx.accept(delivery)
            except petrel.ClientError:
                # Rolled back, or in doubt (the kill came before the answer).
                ledger.accepts_unknown.append((start, ids))
                for delivery in held:  # rolled back, not lost: give them back
                    with contextlib.suppress(petrel.ClientError):
                        await delivery.release()
                await asyncio.sleep(0.02)
                continue
            ledger.accepts_committed.append((start, ids))
    finally:
        await conn.close()


async def run_transactions(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--transactions`` run (see the module docstring)."""
    rng = random.Random(args.seed)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="petrel-crash-tx-") as data_dir:
        log = Path(data_dir) / "broker.log"
        broker = BrokerProcess(
            port, os.path.join(data_dir, "store"), args.store, log, args.store_url
        )
        await broker.start()
        url = f"amqp://127.0.0.1:{port}"
        ledger = Ledger()
        idle = [asyncio.Event() for _ in range(args.consumers)]
        started = time.monotonic()
        batch = args.transactions
        per_producer = max(1, args.count // batch)
        producers = [
            asyncio.create_task(produce_in_transactions(url, i, per_producer, batch, ledger))
            for i in range(args.producers)
        ]
        consumers = [
            asyncio.create_task(consume_in_transactions(url, i, batch, ledger, idle[i]))
            for i in range(args.consumers)
        ]
        kills = 0
        timed_out = False
        try:
            for _ in range(args.rounds):
                await asyncio.sleep(rng.uniform(args.min_interval, args.max_interval))
                broker.kill()
                kills += 1
                await asyncio.sleep(rng.uniform(0.0, 0.2))
                await broker.start()
            deadline = time.monotonic() + args.timeout
            _, unfinished = await asyncio.wait(producers, timeout=args.timeout)
            timed_out = bool(unfinished)
            while not timed_out:
                if not ledger.not_consumed() and all(e.is_set() for e in idle):
                    break
                timed_out = time.monotonic() >= deadline
                await asyncio.sleep(0.2)
        finally:
            for task in producers + consumers:
                task.cancel()
            await asyncio.gather(*producers, *consumers, return_exceptions=True)
            broker.stop()
        return {
            "case": "crash-transactions",
            "store": args.store,
            "batch": batch,
            "kills": kills,
            "broker_starts": broker.starts,
            "producers": args.producers,
            "consumers": args.consumers,
            **ledger.check(),
            "not_consumed": len(ledger.not_consumed()),
            "not_consumed_sample": sorted(ledger.not_consumed())[:10],
            "timed_out": timed_out,
            "seconds": round(time.monotonic() - started, 1),
        }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="petrel-crash-") as data_dir:
        log = Path(data_dir) / "broker.log"
        store_dir = os.path.join(data_dir, "store")
        broker = BrokerProcess(port, store_dir, args.store, log, args.store_url)
        await broker.start()
        brokers = [broker]
        if args.failover:
            # A backup on the same database: it takes over when the live one dies.
            backup_dir = os.path.join(data_dir, "backup")
            backup = BrokerProcess(free_port(), backup_dir, args.store, log, args.store_url)
            await backup.start(wait_listening=False)
            brokers.append(backup)
        url: str | list[str] = [f"amqp://127.0.0.1:{b.port}" for b in brokers]
        accepted: set[str] = set()
        received: dict[str, int] = {}
        idle = [asyncio.Event() for _ in range(args.consumers)]
        started = time.monotonic()
        producers = [
            asyncio.create_task(produce(url, i, args.count, accepted, args.window))
            for i in range(args.producers)
        ]
        consumers = [
            asyncio.create_task(consume(url, i, received, idle[i], args.consumer_delay))
            for i in range(args.consumers)
        ]
        kills = 0
        timed_out = False
        try:
            for _ in range(args.rounds):
                await asyncio.sleep(rng.uniform(args.min_interval, args.max_interval))
                if args.failover:
                    # Kill whichever is live; it comes back as the new backup.
                    live = [b for b in brokers if await b.listening()]
                    victim = live[0] if live else brokers[0]
                    victim.kill()
                    kills += 1
                    await asyncio.sleep(rng.uniform(0.0, 0.2))
                    await victim.start(wait_listening=False)
                    continue
                broker.kill()
                kills += 1
                await asyncio.sleep(rng.uniform(0.0, 0.2))
                await broker.start()
            # One deadline for the rest: the producers finishing, then the consumers draining.
            deadline = time.monotonic() + args.timeout
            _, unfinished = await asyncio.wait(producers, timeout=args.timeout)
            timed_out = bool(unfinished)
            while not timed_out:
                if accepted <= received.keys() and all(e.is_set() for e in idle):
                    break
                timed_out = time.monotonic() >= deadline
                await asyncio.sleep(0.2)
        finally:
            for task in producers + consumers:
                task.cancel()
            await asyncio.gather(*producers, *consumers, return_exceptions=True)
            for each in brokers:
                each.stop()
        lost = sorted(accepted - received.keys())
        return {
            "case": "crash",
            "store": args.store,
            "kills": kills,
            "failover": args.failover,
            "broker_starts": sum(b.starts for b in brokers),
            "producers": args.producers,
            "consumers": args.consumers,
            "sent_accepted": len(accepted),
            "received_unique": len(received),
            "duplicates": sum(n - 1 for n in received.values()),
            "lost": len(lost),
            "timed_out": timed_out,
            "lost_sample": lost[:10],
            "seconds": round(time.monotonic() - started, 1),
        }


async def _interruptible(work: Any) -> dict[str, Any]:
    """Run ``work``; SIGTERM cancels it, so its ``finally`` stops the brokers it started."""
    task = asyncio.ensure_future(work)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    result: dict[str, Any] = await task
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--count", type=int, default=2000, help="messages per producer")
    parser.add_argument("--window", type=int, default=50, help="sends in flight per producer")
    parser.add_argument("--store", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--store-url", help="PostgreSQL URL for --store postgresql")
    parser.add_argument(
        "--failover",
        action="store_true",
        help="a live/backup pair on --store postgresql: kill the live one each round",
    )
    parser.add_argument("--min-interval", type=float, default=0.2)
    parser.add_argument("--max-interval", type=float, default=1.0)
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds, after the last kill, for the producers to finish and the consumers to "
        "drain; past it the figures so far are reported with timed_out: true (exit 1)",
    )
    parser.add_argument(
        "--consumer-delay", type=float, default=0.002, help="seconds before each accept"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--transactions",
        type=int,
        default=0,
        metavar="N",
        help="send and accept in transactions of N messages (--count messages per producer)",
    )
    args = parser.parse_args()
    if args.transactions and args.failover:
        parser.error("--transactions runs against one broker (no --failover)")
    if args.failover and args.store != "postgresql":
        parser.error("--failover needs --store postgresql --store-url URL")
    try:
        work = run_transactions(args) if args.transactions else run(args)
        result = asyncio.run(_interruptible(work))
    except (asyncio.CancelledError, KeyboardInterrupt):
        sys.exit(1)
    print(json.dumps(result), flush=True)
    failed = result["lost"] or result["timed_out"]
    failed = failed or result.get("partial_sends") or result.get("partial_accepts")
    sys.exit(1 if failed or result.get("accepts_undone") else 0)


if __name__ == "__main__":
    main()
