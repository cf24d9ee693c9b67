"""``petrel bench``: throughput and latency of senders and receivers through a peer.

In the spirit of Qpid's Quiver: every sender and receiver is its own process
(``python -m petrel.cli._bench_worker``), so one's GIL is not the other's.
Receivers start first; once every link is attached the senders go.  Each
message carries its sender, sequence number and send time; the receivers
keep a latency histogram and a bitmap per sender, which the parent merges to
check that every message arrived exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import socket
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

from ._bench_stats import account, merge_histograms, percentiles
from ._bench_worker import WorkerConfig
from ._common import fail

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


class BenchError(Exception):
    """A worker failed or the run could not finish."""


@dataclass
class Options:
    url: str | None
    address: str
    count: int | None
    duration: float | None
    size: int
    senders: int
    receivers: int
    presettled: bool
    durable: bool
    client: str
    peer_to_peer: bool
    timeout: float
    progress: bool


@dataclass
class Worker:
    """One worker process and what it said."""

    name: str
    proc: asyncio.subprocess.Process
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    progress: int = 0
    done: dict[str, Any] | None = None
    error: str | None = None
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            kind = line.get("event")
            if kind == "progress":
                self.progress = int(line["n"])
            elif kind == "ready":
                self.ready.set()
            elif kind == "done":
                self.done = line
            elif kind == "error":
                self.error = str(line["message"])
        await self.proc.wait()
        if self.done is None and self.error is None:
            assert self.proc.stderr is not None
            tail = (await self.proc.stderr.read()).decode(errors="replace").strip()
            last = tail.splitlines()[-1] if tail else ""
            self.error = f"exited with {self.proc.returncode}" + (f": {last}" if last else "")
        self.ready.set()
        self.finished.set()

    def tell(self, word: str) -> None:
        stdin = self.proc.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.write(word.encode() + b"\n")

    def check(self) -> None:
        if self.error is not None:
            raise BenchError(f"{self.name}: {self.error}")


@click.command()
@click.option(
    "--url",
    help="The peer to connect to [default: amqp://127.0.0.1:5672]; with --peer-to-peer, "
    "where the (first) receiver listens [default: a free port on 127.0.0.1].",
)
@click.option("--address", help="The queue or topic [default: a fresh bench-XXXXXXXX].")
@click.option("--count", type=click.IntRange(min=1), help="Messages in all [default: 100000].")
@click.option(
    "--duration", type=click.FloatRange(min=0, min_open=True), help="Or: seconds to send."
)
@click.option(
    "--size", default=100, show_default=True, type=click.IntRange(min=20), help="Body bytes."
)
@click.option("--senders", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--receivers", default=1, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--settle",
    type=click.Choice(["presettled", "unsettled"]),
    default="unsettled",
    show_default=True,
    help="presettled: at most once; unsettled: at least once (every message acknowledged).",
)
@click.option("--durable", is_flag=True, help="Send durable messages.")
@click.option(
    "--client",
    type=click.Choice(["petrel", "proton"]),
    default="petrel",
    show_default=True,
    help="Petrel's client, or Qpid Proton's C-backed Python client (python-qpid-proton).",
)
@click.option(
    "--peer-to-peer", is_flag=True, help="No broker: the receivers listen, the senders connect."
)
@click.option(
    "--timeout",
    default=10.0,
    show_default=True,
    help="Seconds without progress before the run gives up.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw throughput over time and the latency distribution into this PNG (matplotlib).",
)
def bench(
    url: str | None,
    address: str | None,
    count: int | None,
    duration: float | None,
    size: int,
    senders: int,
    receivers: int,
    settle: str,
    durable: bool,
    client: str,
    peer_to_peer: bool,
    timeout: float,
    as_json: bool,
    plot: Path | None,
) -> None:
    """Measure message throughput and latency through an AMQP peer (or peer to peer)."""
    if count is not None and duration is not None:
        fail("bench", BenchError("give --count or --duration, not both"))
    if plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            fail("bench", BenchError("--plot needs matplotlib: pip install 'petrel[plot]'"))
    options = Options(
        url=url,
        address=address or f"bench-{uuid.uuid4().hex[:8]}",
        count=count if count is not None or duration is not None else 100_000,
        duration=duration,
        size=size,
        senders=senders,
        receivers=receivers,
        presettled=settle == "presettled",
        durable=durable,
        client=client,
        peer_to_peer=peer_to_peer,
        timeout=timeout,
        progress=sys.stderr.isatty(),
    )
    try:
        result = asyncio.run(run_bench(options))
    except (BenchError, OSError, TimeoutError) as exc:
        fail("bench", exc)
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(format_report(result))
    if plot is not None:
        draw(result, plot)
    if result["errors"] or (not options.presettled and (result["missing"] or result["unexpected"])):
        sys.exit(1)


# --- running --------------------------------------------------------------------------------------


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def receiver_urls(options: Options) -> list[str]:
    """Where each receiver connects, or (peer to peer) listens."""
    if not options.peer_to_peer:
        return [options.url or "amqp://127.0.0.1:5672"] * options.receivers
    if options.url is None:
        return [f"amqp://127.0.0.1:{_free_port('127.0.0.1')}" for _ in range(options.receivers)]
    parts = urlsplit(options.url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 5672
    return [
        urlunsplit((parts.scheme, f"{host}:{port + i}", parts.path, "", ""))
        for i in range(options.receivers)
    ]


async def _spawn(name: str, config: WorkerConfig) -> Worker:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "petrel.cli._bench_worker",
        json.dumps(asdict(config)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=1 << 26,  # a receiver's last line carries its bitmaps
    )
    worker = Worker(name, proc)
    worker.reader = asyncio.create_task(worker.read())
    return worker


async def _all_ready(workers: list[Worker], timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            for worker in workers:
                await worker.ready.wait()
                worker.check()
    except TimeoutError:
        late = [w.name for w in workers if not w.ready.is_set()]
        raise BenchError(f"{', '.join(late)} not ready after {timeout} s") from None


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def run_bench(options: Options) -> dict[str, Any]:
    credit = max(10, min(1000, (64 << 20) // options.size))
    base = WorkerConfig(
        role="receive",
        client=options.client,
        url="",
        address=options.address,
        size=options.size,
        presettled=options.presettled,
        durable=options.durable,
        credit=credit,
    )
    urls = receiver_urls(options)
    counts: list[int | None] = (
        [None] * options.senders
        if options.count is None
        else list(_split(options.count, options.senders))
    )
    workers: list[Worker] = []
    try:
        receivers = [
            await _spawn(
                f"receiver {i}",
                replace(base, url=urls[i], id=i, listen=options.peer_to_peer),
            )
            for i in range(options.receivers)
        ]
        workers += receivers
        await _all_ready(receivers, max(30.0, options.timeout))
        senders = [
            await _spawn(
                f"sender {i}",
                replace(
                    base,
                    role="send",
                    url=urls[i % len(urls)],
                    id=i,
                    count=counts[i],
                    duration=options.duration,
                ),
            )
            for i in range(options.senders)
        ]
        workers += senders
        await _all_ready(senders, max(30.0, options.timeout))
        for sender in senders:
            sender.tell("go")
        timeline = await _watch(options, senders, receivers)
        for receiver in receivers:
            receiver.tell("stop")
        async with asyncio.timeout(max(30.0, options.timeout)):
            await asyncio.gather(*(w.finished.wait() for w in workers))
        for worker in workers:
            worker.check()
    finally:
        await _stop_all(workers)
    return summarize(options, senders, receivers, timeline)


async def _watch(
    options: Options, senders: list[Worker], receivers: list[Worker]
) -> list[tuple[float, int]]:
    """Show progress until the receivers have everything the senders sent (or it stalls)."""
    start = time.monotonic()
    timeline: list[tuple[float, int]] = [(0.0, 0)]
    last_change = start
    last_total = -1
    while True:
        await asyncio.sleep(0.25)
        now = time.monotonic()
        for worker in (*senders, *receivers):
            worker.check()
        sent = sum(w.progress for w in senders)
        received = sum(w.progress for w in receivers)
        timeline.append((now - start, received))
        if options.progress:
            rate = (received - timeline[-2][1]) / 0.25 if len(timeline) > 1 else 0.0
            sys.stderr.write(
                f"\r{now - start:7.1f} s  sent {sent:>10,}  received {received:>10,}"
                f"  {rate:>10,.0f} msgs/s "
            )
            sys.stderr.flush()
        if sent + received != last_total:
            last_total = sent + received
            last_change = now
        if all(w.finished.is_set() for w in senders):
            total_sent = sum(int(w.done["sent"]) for w in senders if w.done)
            if received >= total_sent:
                break
        if now - last_change > options.timeout:
            break  # stalled: the accounting will say what is missing
    if options.progress:
        sys.stderr.write("\n")
    return timeline


async def _stop_all(workers: list[Worker]) -> None:
    for worker in workers:
        worker.tell("stop")
    for worker in workers:
        if worker.proc.stdin is not None:
            worker.proc.stdin.close()
    for worker in workers:
        try:
            await asyncio.wait_for(worker.proc.wait(), 10)
        except TimeoutError:
            worker.proc.kill()
            await worker.proc.wait()
        if worker.reader is not None:
            await asyncio.gather(worker.reader, return_exceptions=True)


def summarize(
    options: Options,
    senders: list[Worker],
    receivers: list[Worker],
    timeline: list[tuple[float, int]],
) -> dict[str, Any]:
    sent_done = [w.done or {} for w in senders]
    got = [w.done or {} for w in receivers]
    accounting = account({i: int(d.get("sent", 0)) for i, d in enumerate(sent_done)}, got)
    histogram = merge_histograms(d.get("histogram", {}) for d in got)
    max_us = max((int(d.get("max_us", 0)) for d in got), default=0)
    starts = [int(d["start_ns"]) for d in sent_done if d.get("start_ns")]
    ends = [int(d["last_ns"]) for d in got if d.get("last_ns")]
    elapsed = (max(ends) - min(starts)) / 1e9 if starts and ends else math.nan
    received_bytes = sum(int(d.get("bytes", 0)) for d in got)
    points = percentiles(histogram, PERCENTILES, max_us)
    latency = {f"p{p:g}": round(v / 1000, 3) for p, v in points.items()}
    latency["max"] = round(max_us / 1000, 3)
    rate = accounting.received / elapsed if elapsed > 0 else math.nan
    sender_cpu = sum(float(d.get("cpu_s", 0.0)) for d in sent_done)
    receiver_cpu = sum(float(d.get("cpu_s", 0.0)) for d in got)
    return {
        "client": options.client,
        "url": None if options.peer_to_peer else (options.url or "amqp://127.0.0.1:5672"),
        "peer_to_peer": options.peer_to_peer,
        "address": options.address,
        "settle": "presettled" if options.presettled else "unsettled",
        "durable": options.durable,
        "size": options.size,
        "senders": options.senders,
        "receivers": options.receivers,
        "sent": accounting.sent,
        "received": accounting.received,
        "unique": accounting.unique,
        "duplicates": accounting.duplicates,
        "missing": accounting.missing,
        "unexpected": accounting.unexpected,
        "exactly_once": accounting.exactly_once,
        "rejected": sum(int(d.get("failed", 0)) for d in sent_done),
        "errors": [str(e) for d in got for e in d.get("errors", [])],
        "duration_s": round(elapsed, 3),
        "msgs_per_s": round(rate, 1),
        "mb_per_s": round(received_bytes / elapsed / 1e6, 3) if elapsed > 0 else math.nan,
        "latency_ms": latency,
        "cpu_s": {
            "senders": round(sender_cpu, 3),
            "receivers": round(receiver_cpu, 3),
            "total": round(sender_cpu + receiver_cpu, 3),
        },
        "timeline": [[round(t, 3), n] for t, n in timeline],
        "histogram_us": {str(k): v for k, v in sorted(histogram.items())},
    }


# --- reporting ------------------------------------------------------------------------------------


def format_report(result: dict[str, Any]) -> str:
    where = "peer to peer" if result["peer_to_peer"] else result["url"]
    latency = result["latency_ms"]
    cpu = result["cpu_s"]
    if result["exactly_once"]:
        check = "every message arrived exactly once"
    else:
        check = (
            f"NOT exactly once: {result['missing']} missing, {result['duplicates']} duplicates,"
            f" {result['unexpected']} unexpected"
        )
    lines = [
        f"petrel bench: {result['client']} client, {where}, address {result['address']}",
        f"  {result['senders']} sender(s), {result['receivers']} receiver(s),"
        f" {result['size']} bytes, {result['settle']}" + (", durable" if result["durable"] else ""),
        f"  messages    sent {result['sent']:,}, received {result['received']:,}"
        f" in {result['duration_s']:.3f} s",
        f"  throughput  {result['msgs_per_s']:,.0f} msgs/s, {result['mb_per_s']:,.2f} MB/s",
        "  latency ms  "
        + "  ".join(f"{k} {v:,.3f}" for k, v in latency.items() if not math.isnan(v)),
        f"  cpu s       senders {cpu['senders']:.2f}, receivers {cpu['receivers']:.2f},"
        f" total {cpu['total']:.2f}",
        f"  check       {check}",
    ]
    lines += [f"  error       {error}" for error in result["errors"]]
    if result["rejected"]:
        lines.append(f"  outcomes    {result['rejected']} not accepted (rejected or released)")
    return "\n".join(lines)


def draw(result: dict[str, Any], path: Path) -> None:
    """Throughput over time and the latency distribution (a CDF on a log scale), one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ._bench_stats import bucket_value

    timeline = result["timeline"]
    times = [t for t, _ in timeline[1:]]
    rates = [
        (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
        for (t0, n0), (t1, n1) in itertools.pairwise(timeline)
    ]
    histogram = sorted((int(k), v) for k, v in result["histogram_us"].items())
    total = sum(v for _, v in histogram) or 1
    xs: list[float] = []
    ys: list[float] = []
    running = 0
    for key, count in histogram:
        running += count
        xs.append(bucket_value(key) / 1000)
        ys.append(running / total)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7))
    top.plot(times, rates, marker=".")
    top.set_xlabel("seconds")
    top.set_ylabel("msgs/s received")
    top.set_title(
        f"petrel bench: {result['client']}, {result['size']} B, {result['settle']},"
        f" {result['senders']}x{result['receivers']}"
    )
    bottom.step(xs, ys, where="post")
    bottom.set_xscale("log")
    bottom.set_xlabel("latency, ms (log)")
    bottom.set_ylabel("fraction of messages")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
