"""Transactional throughput: messages sent in transactions of 1, 10 and 100, against the
same messages sent outside any transaction, through a ``petrel broker`` subprocess.

Prints one JSON line per case: ``name`` (``plain`` or ``tx-batch-N``), ``store``,
``messages``, ``msgs_per_s``, ``commits_per_s`` (transactions only) and
``ratio`` (msgs/s over the plain case's).  The plain case awaits each send's outcome
in windows of ``--window`` messages (what a careful producer does); a transaction sends
its batch and commits: ``tx-batch-N`` pipelines the sends (``tx.send`` returns once the
transfer is written; the commit waits for every answer, then discharges), and
``tx-batch-N-each-awaited`` waits for each send's answer (``wait=True``: one round trip
per message).

Usage: ``python bench/transactions.py [--store memory|sqlite] [--messages N] [--window W]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import petrel

PETREL = Path(sys.executable).with_name("petrel")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def plain(url: str, address: str, count: int, window: int) -> float:
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender(address)
        start = time.perf_counter()
        for base in range(0, count, window):
            futures = [
                await sender.send(n, wait=False) for n in range(base, min(base + window, count))
            ]
            await asyncio.gather(*futures)
        return time.perf_counter() - start


async def transactional(url: str, address: str, count: int, batch: int, wait: bool) -> float:
    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender(address)
        start = time.perf_counter()
        for base in range(0, count, batch):
            async with conn.transaction() as tx:
                for n in range(base, min(base + batch, count)):
                    await tx.send(sender, n, wait=wait)
        return time.perf_counter() - start


async def drain(url: str, address: str) -> None:
    async with await petrel.connect(url) as conn:
        receiver = await conn.open_receiver(address, credit=1000)
        while True:
            try:
                delivery = await receiver.receive(timeout=0.5)
            except petrel.Timeout:
                return
            await delivery.accept()


async def run(url: str, store: str, messages: int, window: int) -> None:
    baseline = None
    cases: list[tuple[str, int, bool]] = [("plain", 0, False)]
    for batch in (1, 10, 100):
        cases.append((f"tx-batch-{batch}", batch, False))
        cases.append((f"tx-batch-{batch}-each-awaited", batch, True))
    for name, batch, wait in cases:
        count = messages if batch != 1 else max(messages // 10, 100)
        address = f"bench-{name}"
        if batch:
            seconds = await transactional(url, address, count, batch, wait)
        else:
            seconds = await plain(url, address, count, window)
        rate = count / seconds
        if baseline is None:
            baseline = rate
        line = {"name": name, "store": store, "messages": count, "msgs_per_s": round(rate)}
        if batch:
            line["commits_per_s"] = round(count / batch / seconds, 1)
        line["ratio"] = round(rate / baseline, 3)
        print(json.dumps(line), flush=True)
        await drain(url, address)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("memory", "sqlite"), default="sqlite")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--window", type=int, default=100)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="petrel-bench-tx-") as data:
        command = [str(PETREL), "broker", "--store", args.store, "--data-dir", data]
        command += ["--listen", f"amqp://127.0.0.1:{port}"]
        log = open(Path(data) / "broker.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(command, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit("the broker did not start") from None
                    time.sleep(0.05)
            asyncio.run(run(f"amqp://127.0.0.1:{port}", args.store, args.messages, args.window))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()


if __name__ == "__main__":
    main()
