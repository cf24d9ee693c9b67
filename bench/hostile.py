"""What hostile clients cost everyone else: a bystander's throughput with and without attacks.

    python bench/hostile.py [--runs 3] [--seconds 3] [--attacks slowloris,half-open,...]

Starts ``petrel broker`` (sqlite store, short limits so attackers are cut and come back
during a run) and measures a bystander: one Petrel client sending durable messages to a
queue and receiving them back (one round trip at a time), for ``--seconds``.  Each attack
runs in a process of its own while the bystander is measured:

- ``slowloris``: 50 connections writing the SASL header then one byte a second;
- ``half-open``: 200 connections that send nothing;
- ``silent``: 50 connections that open, then go silent (the idle timeout, 10 s, cuts them);
- ``non-reader``: 4 consumers with credit for a deep queue that read nothing;
- ``churn``: 4 clients attaching and detaching links as fast as they can, reading nothing;
- ``flood``: connections opened and dropped as fast as one process can.

Every attacker reconnects when it is cut.  Prints one JSON line per attack and run
(``msgs_per_s``), then one per attack with the median and its ``ratio`` to the median
without attack.  Benchmarks are not tests: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the repository's tests (their helpers start the broker)

from tests.helpers.frames import frame, sasl_frame  # noqa: E402
from tests.helpers.servers import run_broker  # noqa: E402

import petrel  # noqa: E402
from petrel import spec  # noqa: E402
from petrel.spec.framing import AMQP_HEADER, HEARTBEAT, SASL_HEADER  # noqa: E402
from petrel.types import Symbol  # noqa: E402

CONFIG = """
[limits]
sasl_timeout = 2.0
idle_timeout = 10.0
write_stall_timeout = 2.0

[[queues]]
name = "bystander"

[[queues]]
name = "deep"
"""
WINDOW = 0x7FFFFFFF


# --- attackers (each runs in its own process: `hostile.py attack NAME PORT`) ----------------------


async def _connection(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


async def _forever(port: int, attack: Callable[[int], Awaitable[None]], copies: int) -> None:
    async def one() -> None:
        while True:
            with contextlib.suppress(OSError):
                await attack(port)
            await asyncio.sleep(0.05)

    await asyncio.gather(*(one() for _ in range(copies)))


async def _wait_closed(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(OSError):
        while await loop.sock_recv(sock, 65536):
            pass


async def slowloris(port: int) -> None:
    sock = await _connection(port)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_sendall(sock, SASL_HEADER)
        for byte in sasl_frame(spec.SaslInit(mechanism=Symbol("ANONYMOUS"))):
            await loop.sock_sendall(sock, bytes([byte]))
            await asyncio.sleep(1.0)
    finally:
        sock.close()


async def half_open(port: int) -> None:
    sock = await _connection(port)
    try:
        await _wait_closed(sock)
    finally:
        sock.close()


async def silent(port: int) -> None:
    sock = await _connection(port)
    try:
        await asyncio.get_running_loop().sock_sendall(
            sock, AMQP_HEADER + frame(spec.Open(container_id="silent"))
        )
        await _wait_closed(sock)
    finally:
        sock.close()


def _hello(name: str) -> bytes:
    return (
        AMQP_HEADER
        + frame(spec.Open(container_id=name))
        + frame(spec.Begin(next_outgoing_id=0, incoming_window=WINDOW, outgoing_window=WINDOW))
    )


async def non_reader(port: int) -> None:
    sock = await _connection(port, rcvbuf=4096)
    attach = spec.Attach(
        name=f"greedy-{id(sock)}",
        handle=0,
        role=spec.Role.RECEIVER,
        source=spec.Source(address="deep"),
        target=spec.Target(),
    )
    flow = spec.Flow(
        next_incoming_id=0,
        incoming_window=WINDOW,
        next_outgoing_id=0,
        outgoing_window=WINDOW,
        handle=0,
        delivery_count=0,
        link_credit=100_000,
    )
    try:
        await asyncio.get_running_loop().sock_sendall(
            sock, _hello("greedy") + frame(attach) + frame(flow)
        )
        while True:  # never read; heartbeats until a send fails: cut
            await asyncio.sleep(0.5)
            await asyncio.get_running_loop().sock_sendall(sock, HEARTBEAT)
    finally:
        sock.close()


async def churn(port: int) -> None:
    sock = await _connection(port, rcvbuf=4096)
    loop = asyncio.get_running_loop()
    attach = spec.Attach(
        name="churn",
        handle=0,
        role=spec.Role.SENDER,
        source=spec.Source(),
        target=spec.Target(address="churn"),
    )
    burst = (frame(attach) + frame(spec.Detach(handle=0, closed=True))) * 200
    try:
        await loop.sock_sendall(sock, _hello("churn"))
        while True:
            await loop.sock_sendall(sock, burst)
    finally:
        sock.close()


async def flood(port: int) -> None:
    sock = await _connection(port)
    sock.close()


ATTACKS: dict[str, tuple[Callable[[int], Awaitable[None]], int]] = {
    "slowloris": (slowloris, 50),
    "half-open": (half_open, 200),
    "silent": (silent, 50),
    "non-reader": (non_reader, 4),
    "churn": (churn, 4),
    "flood": (flood, 8),
}


# --- the bystander -------------------------------------------------------------------------------


async def bystander(url: str, seconds: float, attack: Callable[[], None]) -> float:
    """Round trips per second: send a durable message, receive it, accept it.  It connects
    first, then ``attack()`` starts the attacker, which gets a head start."""
    async with await petrel.connect(url, reconnect=False) as conn:
        sender = await conn.open_sender("bystander")
        receiver = await conn.open_receiver("bystander")
        attack()
        await asyncio.sleep(2.5)  # the attack gets going (and past a first open deadline)
        done = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            await sender.send(petrel.Message(done, durable=True))
            delivery = await receiver.receive(timeout=30)
            assert delivery.message.body == done
            await delivery.accept()
            done += 1
        return done / elapsed


async def fill_deep(url: str, count: int = 300, size: int = 32 * 1024) -> None:
    async with await petrel.connect(url, reconnect=False) as conn:
        sender = await conn.open_sender("deep")
        pending = [await sender.send(petrel.Message(b"x" * size), wait=False) for _ in range(count)]
        await asyncio.gather(*pending)


def measure(attack: str | None, seconds: float) -> float:
    with run_broker(CONFIG, store="sqlite") as broker:
        asyncio.run(fill_deep(broker.url))
        attackers: list[subprocess.Popen[bytes]] = []

        def start() -> None:
            if attack is not None:
                attackers.append(
                    subprocess.Popen(
                        [sys.executable, __file__, "attack", attack, str(broker.port)],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )

        try:
            return asyncio.run(bystander(broker.url, seconds, start))
        except petrel.AmqpError as exc:  # the bystander was cut: report it, count it as 0
            print(json.dumps({"name": "hostile", "attack": attack, "error": str(exc)}))
            return 0.0
        finally:
            for attacker in attackers:
                attacker.kill()
                attacker.wait()


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "attack":
        run, copies = ATTACKS[sys.argv[2]]
        asyncio.run(_forever(int(sys.argv[3]), run, copies))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    args = parser.parse_args()
    cases: list[str | None] = [None, *args.attacks.split(",")]
    results: dict[str | None, list[float]] = {case: [] for case in cases}
    for run in range(args.runs):
        for case in cases:
            rate = measure(case, args.seconds)
            results[case].append(rate)
            line = {"name": "hostile", "attack": case or "none", "run": run}
            print(json.dumps({**line, "msgs_per_s": round(rate, 1)}), flush=True)
    baseline = statistics.median(results[None])
    for case in cases:
        median = statistics.median(results[case])
        summary = {
            "name": "hostile-summary",
            "attack": case or "none",
            "median_msgs_per_s": round(median, 1),
            "ratio": round(median / baseline, 3) if baseline else None,
            "runs": args.runs,
        }
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
