"""Broker throughput: one producer and one consumer through a broker, driven by Proton's C examples.

    python bench/broker.py [--count N] [--runs R] [--peers petrel,proton-c] [--store memory]

Builds Qpid Proton's C ``send``/``receive`` examples and its C ``broker``
example (Debian's ``libqpid-proton11-dev-examples``; ``broker.c``'s teaching
credit window of 5 raised to 1000) into ``bench/.build``, starts each broker on
loopback, and moves ``--count`` small messages from ``send`` to ``receive``
through it (``send`` waits for every acknowledgement: unsettled, at least once).
Prints one JSON line per broker and run, then a summary line per broker with
the median msgs/s and Petrel's ratio to each peer.  The C clients skip SASL.

With ``--durable`` it measures durable messages instead, sent with the Petrel
client (the C ``send`` example sends non-durable ones): 100-byte and 10 KiB
messages, one and four producers each waiting for every acceptance
(``--window`` sends in flight, 1 by default), through the sqlite store and,
with ``--store-url`` or PostgreSQL's binaries installed (a throwaway cluster
with fsync on), the postgresql store.  It prints msgs/s and the p50/p99 latency
from send to acceptance (that is, to the commit): several producers share one
commit (group commit), so four go much faster than one.  Each case runs
``--runs`` times and a summary line gives the medians (``--sizes`` and
``--producers`` pick the cases).  ``broker_cpu_us_per_msg`` is the broker's CPU
(all its threads, user and system) per message, which moves less than msgs/s
when other work shares the machine; ``client_cpu_us_per_msg`` is the clients'.

With ``--client-processes`` every producer and the consumer is a process of its
own (this script, run again as a worker) instead of a coroutine in this one.
By default one Python process sends for four producers and receives for the
consumer: it needs about as much CPU per message as the broker, so the figure
measures the client as much as the broker.  The workers attach, then all start
at once; the rate is every message over the time until the last acceptance,
and their CPU is counted from the start (their start-up left out).

``--baseline-src DIR`` runs a second Petrel broker from another source tree
(``DIR`` first on its ``PYTHONPATH``: a copy of ``src/`` from before a change,
say) beside this tree's, and alternates the two run by run (each in turn
first), printing the median of the paired ratios of msgs/s and of broker CPU per
message (this tree's over the baseline's): the way to compare two versions on a
machine whose load changes while it runs.

Benchmarks are not tests: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BUILD = HERE / ".build"
EXAMPLES = Path("/usr/share/proton/examples/c")
PETREL = Path(sys.executable).parent / "petrel"


def build_c_examples() -> Path:
    """Compile send, receive and broker (WINDOW=1000) once; return the build directory."""
    BUILD.mkdir(exist_ok=True)
    if not (EXAMPLES / "send.c").exists():
        sys.exit(
            "Proton's C examples are missing: apt-get install libqpid-proton11-dev-examples "
            "libqpid-proton11-dev"
        )
    for name in ("send", "receive", "broker"):
        binary = BUILD / name
        if binary.exists():
            continue
        source = (EXAMPLES / f"{name}.c").read_text()
        if name == "broker":
            source = source.replace("const int WINDOW=5;", "const int WINDOW=1000;")
        src = BUILD / f"{name}.c"
        src.write_text(source)
        shutil.copy(EXAMPLES / "thread.h", BUILD / "thread.h")
        flags = subprocess.run(
            ["pkg-config", "--cflags", "--libs", "libqpid-proton"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        subprocess.run(["gcc", "-O2", "-o", str(binary), str(src), *flags, "-lpthread"], check=True)
    return BUILD


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@contextlib.contextmanager
def broker(
    kind: str, store: str, store_url: str | None = None, src: str | None = None
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        if kind == "petrel":
            args = [
                str(PETREL),
                "broker",
                "--listen",
                f"amqp://127.0.0.1:{port}",
                "--store",
                store,
                "--data-dir",
                data,
                "--log-level",
                "warning",
            ]
            if store_url:
                args += ["--store-url", store_url]
        elif kind == "proton-c":
            args = [str(BUILD / "broker"), "127.0.0.1", str(port)]
        else:
            raise SystemExit(f"unknown broker {kind}")
        env = None
        if src is not None:
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
            }
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            wait_port(port)
            yield port, proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def run_c_clients(port: int, address: str, count: int) -> float:
    """Seconds to move ``count`` messages from send to receive."""
    start = time.perf_counter()
    receiver = subprocess.Popen(
        [str(BUILD / "receive"), "127.0.0.1", str(port), address, str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    sender = subprocess.run(
        [str(BUILD / "send"), "127.0.0.1", str(port), address, str(count)],
        capture_output=True,
        check=False,
    )
    out, _ = receiver.communicate(timeout=600)
    elapsed = time.perf_counter() - start
    if sender.returncode or receiver.returncode or f"{count} messages received" not in out.decode():
        raise RuntimeError(f"clients failed: {sender.stdout!r} {out!r}")
    return elapsed


def _timer(latencies: list[float], sent: float) -> Callable[[asyncio.Future[None]], None]:
    """A done callback that records the time since ``sent`` in ``latencies``."""

    def done(_: asyncio.Future[None]) -> None:
        latencies.append(time.perf_counter() - sent)

    return done


def run_loop(main: Any) -> Any:
    """Run a client coroutine the way Petrel's own tools do: on uvloop when installed."""
    from petrel.driver.loop import run

    return run(main)


async def _send_windowed(
    sender: Any, body: bytes, count: int, window: int, latencies: list[float]
) -> None:
    """Send ``count`` durable messages with at most ``window`` awaiting their outcome,
    noting each one's latency."""
    import petrel

    pending: set[asyncio.Future[None]] = set()
    for _ in range(count):
        if len(pending) >= window:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        sent = time.perf_counter()
        future = await sender.send(petrel.Message(body, durable=True), wait=False)
        future.add_done_callback(_timer(latencies, sent))
        pending.add(future)
    await asyncio.gather(*pending)


async def _durable_case(
    port: int, size: int, producers: int, count: int, window: int
) -> dict[str, Any]:
    """``producers`` Petrel clients send ``count`` durable messages each (``window`` in
    flight) while one consumer takes them; rate and send-to-acceptance latency."""
    import petrel

    url = f"amqp://127.0.0.1:{port}"
    address = f"durable-{size}-{producers}-{time.monotonic_ns()}"
    latencies: list[float] = []
    total = producers * count

    async def produce(index: int) -> None:
        async with await petrel.connect(url) as conn:
            sender = await conn.open_sender(address)
            await _send_windowed(sender, b"x" * size, count, window, latencies)

    async def consume() -> None:
        async with await petrel.connect(url) as conn:
            receiver = await conn.open_receiver(address, credit=500)
            for _ in range(total):
                delivery = await receiver.receive(timeout=120)
                await delivery.accept()

    consumer = asyncio.create_task(consume())
    start = time.perf_counter()
    await asyncio.gather(*(produce(i) for i in range(producers)))
    sent_s = time.perf_counter() - start
    await consumer
    latencies.sort()
    return {
        "msgs_per_s": round(total / sent_s),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    }


async def _durable_worker(spec: dict[str, Any]) -> None:
    """One producer or the consumer of a ``--client-processes`` case: attach, print
    ``ready``, wait for a line on stdin, run, print a JSON line with what it measured."""
    import petrel

    url, address, count = spec["url"], spec["address"], spec["count"]
    loop = asyncio.get_running_loop()

    async def go() -> float:
        """Wait for the word; this process's CPU seconds so far."""
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        return time.process_time()

    async with await petrel.connect(url) as conn:
        if spec["role"] == "consumer":
            receiver = await conn.open_receiver(address, credit=500)
            cpu = await go()
            for _ in range(count):
                delivery = await receiver.receive(timeout=120)
                await delivery.accept()
            report = {"done": time.monotonic(), "cpu": time.process_time() - cpu}
            print(json.dumps(report), flush=True)
            return
        sender = await conn.open_sender(address)
        latencies: list[float] = []
        cpu = await go()
        await _send_windowed(sender, b"x" * spec["size"], count, spec["window"], latencies)
        report = {"done": time.monotonic(), "cpu": time.process_time() - cpu}
        print(json.dumps({**report, "latencies": latencies}), flush=True)


def _durable_case_processes(
    port: int, size: int, producers: int, count: int, window: int
) -> dict[str, Any]:
    """:func:`_durable_case` with every client in a process of its own."""
    address = f"durable-{size}-{producers}-{time.monotonic_ns()}"
    base = {"url": f"amqp://127.0.0.1:{port}", "address": address, "size": size}
    specs = [{**base, "role": "consumer", "count": producers * count}]
    specs += [{**base, "role": "producer", "count": count, "window": window}] * producers
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, "--durable-worker", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for spec in specs
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            if worker.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a worker failed to attach (exit {worker.wait()})")
        start = time.monotonic()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        reports = []
        for worker in workers:
            assert worker.stdout is not None
            reports.append(json.loads(worker.stdout.readline()))
            if worker.wait(600):
                raise RuntimeError(f"a worker failed (exit {worker.returncode})")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    sent_s = max(report["done"] for report in reports[1:]) - start
    latencies = sorted(t for report in reports[1:] for t in report["latencies"])
    return {
        "msgs_per_s": round(producers * count / sent_s),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        # From the start word to the end (a worker's start-up is left out).
        "client_cpu_us_per_msg": round(
            sum(report["cpu"] for report in reports) / (producers * count) * 1e6, 1
        ),
    }


@contextlib.contextmanager
def _postgres(url: str | None) -> Iterator[str | None]:
    """``url``, else a throwaway cluster with fsync on (None without PostgreSQL binaries)."""
    if url:
        yield url
        return
    sys.path.insert(0, str(HERE.parent))
    from tests.helpers.postgres import fresh_schema, postgres_server

    try:
        with postgres_server(fsync=True) as server, fresh_schema(server) as schema:
            yield schema
    except LookupError as exc:
        print(json.dumps({"skipped": "postgresql", "why": str(exc)}), flush=True)
        yield None


def _durable_run(
    port: int, pid: int, size: int, producers: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One case on the broker ``pid`` listening on ``port``, with the broker's CPU and
    the clients' (all of them: this process, or the worker processes)."""
    total = producers * args.durable_count
    cpu_before = cpu_seconds(pid)
    if args.client_processes:
        result = _durable_case_processes(port, size, producers, args.durable_count, args.window)
    else:
        client_before = time.process_time()
        result = run_loop(_durable_case(port, size, producers, args.durable_count, args.window))
        client = time.process_time() - client_before
        result["client_cpu_us_per_msg"] = round(client / total * 1e6, 1)
    cpu = cpu_seconds(pid) - cpu_before
    return {**result, "broker_cpu_us_per_msg": round(cpu / total * 1e6, 1)}


def durable(args: argparse.Namespace) -> None:
    """The ``--durable`` runs (see the module docstring)."""
    stores = args.stores.split(",")
    cases = [
        (size, producers)
        for size in map(int, args.sizes.split(","))
        for producers in map(int, args.producers.split(","))
    ]
    builds = (
        {"petrel": None}
        if args.baseline_src is None
        else {"petrel": None, "baseline": args.baseline_src}
    )
    with contextlib.ExitStack() as stack:
        urls: dict[str, str | None] = {"sqlite": None}
        if "postgresql" in stores:
            urls["postgresql"] = stack.enter_context(_postgres(args.store_url))
        for store in stores:
            if store == "postgresql" and urls["postgresql"] is None:
                continue
            running: dict[str, tuple[int, int]] = {}
            with contextlib.ExitStack() as brokers:
                for build, src in builds.items():
                    if store == "postgresql" and build == "baseline":
                        continue  # one database: the two brokers would be a live/backup pair
                    port, proc = brokers.enter_context(
                        broker("petrel", store, urls.get(store), src)
                    )
                    asyncio.run(_durable_case(port, 100, 1, 200, args.window))  # warm up
                    running[build] = (port, proc.pid)
                rates: dict[tuple[str, int, int], list[float]] = {}
                cpus: dict[tuple[str, int, int], list[float]] = {}
                for run in range(args.runs):
                    for size, producers in cases:
                        # Alternate which build goes first, so neither always follows the other.
                        order = list(running) if run % 2 == 0 else list(reversed(running))
                        for build in order:
                            port, pid = running[build]
                            result = _durable_run(port, pid, size, producers, args)
                            case = {"store": store, "size": size, "producers": producers}
                            if len(running) > 1:
                                case["build"] = build
                            line = {**case, "run": run, "window": args.window, **result}
                            print(json.dumps(line), flush=True)
                            key = (build, size, producers)
                            rates.setdefault(key, []).append(result["msgs_per_s"])
                            cpus.setdefault(key, []).append(result["broker_cpu_us_per_msg"])
                for size, producers in cases:
                    summary: dict[str, Any] = {"store": store, "size": size, "producers": producers}
                    for build in running:
                        key = (build, size, producers)
                        summary[f"{build}_msgs_per_s"] = round(statistics.median(rates[key]))
                        summary[f"{build}_cpu_us_per_msg"] = round(statistics.median(cpus[key]), 1)
                    if len(running) > 1:
                        pairs = zip(
                            rates[("petrel", size, producers)],
                            rates[("baseline", size, producers)],
                            strict=True,
                        )
                        summary["ratio_to_baseline"] = round(
                            statistics.median(new / old for new, old in pairs), 2
                        )
                        cpu_pairs = zip(
                            cpus[("petrel", size, producers)],
                            cpus[("baseline", size, producers)],
                            strict=True,
                        )
                        summary["cpu_ratio_to_baseline"] = round(
                            statistics.median(new / old for new, old in cpu_pairs), 2
                        )
                    print(json.dumps({"summary": summary}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--durable", action="store_true", help="durable runs (Petrel client)")
    parser.add_argument("--stores", default="sqlite,postgresql", help="--durable: stores")
    parser.add_argument("--store-url", help="--durable: a PostgreSQL URL (else a throwaway one)")
    parser.add_argument("--durable-count", type=int, default=2000, help="per producer")
    parser.add_argument("--window", type=int, default=1, help="--durable: sends in flight")
    parser.add_argument(
        "--client-processes", action="store_true", help="--durable: a process per client"
    )
    parser.add_argument("--durable-worker", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="100,10240", help="--durable: body sizes")
    parser.add_argument("--producers", default="1,4", help="--durable: producer counts")
    parser.add_argument(
        "--baseline-src", help="--durable: also run a broker from this source tree, alternating"
    )
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peers", default="petrel,proton-c")
    parser.add_argument("--store", default="memory", choices=["memory", "sqlite"])
    args = parser.parse_args()
    if args.durable_worker:
        run_loop(_durable_worker(json.loads(args.durable_worker)))
        return
    if args.durable:
        durable(args)
        return
    build_c_examples()
    medians: dict[str, float] = {}
    for kind in args.peers.split(","):
        rates = []
        with broker(kind, args.store) as (port, proc):
            run_c_clients(port, "warmup", min(args.count, 10_000))
            for run in range(args.runs):
                cpu_before = cpu_seconds(proc.pid)
                elapsed = run_c_clients(port, f"bench{run}", args.count)
                cpu = cpu_seconds(proc.pid) - cpu_before
                rate = args.count / elapsed
                rates.append(rate)
                print(
                    json.dumps(
                        {
                            "broker": kind,
                            "case": "100B unsettled, C send/receive",
                            "run": run,
                            "msgs_per_s": round(rate),
                            "broker_cpu_s": round(cpu, 2),
                            "broker_cpu_us_per_msg": round(cpu / args.count * 1e6, 1),
                        }
                    ),
                    flush=True,
                )
        medians[kind] = statistics.median(rates)
    summary: dict[str, object] = {"summary": {k: round(v) for k, v in medians.items()}}
    if "petrel" in medians:
        summary["petrel_ratio"] = {
            k: round(medians["petrel"] / v, 2) for k, v in medians.items() if k != "petrel"
        }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
