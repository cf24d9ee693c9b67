"""What tracing costs the broker: throughput with ``[tracing]`` off, on, and (optionally)
with a tree of the code from before the tracing hooks.

    python bench/tracing.py [--count N] [--runs R] [--before SRC]

Starts ``petrel broker`` (memory store) as a subprocess in each configuration, in
turn and interleaved run by run, so drift on a shared machine spreads evenly:

- ``before``: with ``--before SRC``, the package found under ``SRC`` (a copy of
  ``src/`` without the hooks), to show that ``off`` costs nothing;
- ``off``: this tree, ``[tracing]`` not set;
- ``on``: this tree, ``[tracing] enabled = true``, an OpenTelemetry SDK tracer
  provider with a batch span processor whose exporter drops the spans.

Two workloads: ``untraced``, Proton's C ``send``/``receive`` examples (built as
in ``bench/broker.py``; their messages carry no ``traceparent``, so the broker
only looks for one), and ``traced``, Petrel's client sending messages that carry
a ``traceparent`` (the sending process has no tracer provider: the client's own
spans are no-ops and the property goes as given), so that with ``on`` the broker
makes three spans per message.  Prints one JSON line per run and a summary line
per case with the median msgs/s.

Benchmarks are not tests: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from broker import build_c_examples, free_port, run_c_clients, wait_port

ROOT = Path(__file__).resolve().parent.parent
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

# Runs the broker with an SDK tracer provider installed (exporter: drop everything).
BROKER = """
import sys
if sys.argv[1] == "sdk":
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)
from petrel.cli.main import cli
cli(sys.argv[2:])
"""


@contextlib.contextmanager
def broker(case: str, before: str | None) -> Iterator[int]:
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = before if case == "before" else str(ROOT / "src")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "broker.toml"
        config.write_text("[tracing]\nenabled = true\n" if case == "on" else "")
        args = [
            sys.executable,
            "-c",
            BROKER,
            "sdk" if case == "on" else "plain",
            "broker",
            "--config",
            str(config),
            "--listen",
            f"amqp://127.0.0.1:{port}",
            "--no-http",
            "--store",
            "memory",
            "--log-level",
            "warning",
        ]
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, cwd=tmp)
        try:
            wait_port(port)
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def petrel_clients(port: int, address: str, count: int) -> float:
    """Seconds for Petrel's client to move ``count`` traced messages (1000 in flight)."""
    import petrel

    url = f"amqp://127.0.0.1:{port}"
    message = petrel.Message(b"x" * 32, application_properties={"traceparent": TRACEPARENT})

    async def consume() -> None:
        async with await petrel.connect(url) as conn:
            receiver = await conn.open_receiver(address, credit=1000)
            for _ in range(count):
                delivery = await receiver.receive(timeout=120)
                delivery.settle()

    async with await petrel.connect(url) as conn:
        sender = await conn.open_sender(address)
        start = time.perf_counter()
        consumer = asyncio.create_task(consume())
        pending: list[asyncio.Future[None]] = []
        for _ in range(count):
            pending.append(await sender.send(message, wait=False))
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
        await consumer
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", help="a src/ tree from before the tracing hooks")
    parser.add_argument("--workloads", default="untraced,traced")
    args = parser.parse_args()
    build_c_examples()
    cases = ["before", "off", "on"] if args.before else ["off", "on"]
    workloads = args.workloads.split(",")
    results: dict[tuple[str, str], list[float]] = {}
    for run in range(args.runs):
        for workload in workloads:
            for case in cases:
                if workload == "traced" and case == "before":
                    continue
                with broker(case, args.before) as port:
                    address = f"bench-{run}-{case}"
                    if workload == "untraced":
                        seconds = run_c_clients(port, address, args.count)
                    else:
                        seconds = asyncio.run(petrel_clients(port, address, args.count))
                rate = args.count / seconds
                results.setdefault((workload, case), []).append(rate)
                line = {"workload": workload, "case": case, "run": run, "msgs_per_s": round(rate)}
                print(json.dumps(line), flush=True)
    for (workload, case), rates in results.items():
        summary = {
            "workload": workload,
            "case": case,
            "median_msgs_per_s": round(statistics.median(rates)),
            "min": round(min(rates)),
            "max": round(max(rates)),
        }
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
