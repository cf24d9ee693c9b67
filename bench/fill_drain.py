"""The broker's own cost per message, taking messages in and giving them out, per build.

    python bench/fill_drain.py [--count 200000] [--runs 3] [--builds compiled,pure]

Starts ``petrel broker --store memory`` once per build and run (interleaved:
compiled, pure, compiled, ...), fills a queue with ``--count`` 100-byte
unsettled messages from Proton's C ``send`` example, then drains it with the C
``receive`` example, one after the other, so each phase's broker CPU (user +
system, from ``/proc``) is the broker's alone.  ``pure`` runs the broker with
``PETREL_PURE_PYTHON=1``; ``compiled`` without (the same as ``pure`` when
nothing is compiled: ``make accel``).  Prints one JSON line per run and a
median line per build: msgs/s and broker CPU µs per message for each phase.

Benchmarks are not tests: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from broker import PETREL, build_c_examples, free_port, wait_port

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    """User + system seconds of process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def run_once(build: str, count: int, bin_dir: Path) -> dict[str, Any]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PETREL_PURE_PYTHON"}
    if build == "pure":
        env["PETREL_PURE_PYTHON"] = "1"
    listen = f"amqp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(PETREL), "broker", "--listen", listen, "--store", "memory", "--no-http"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_port(port)
        address = f"fill-drain-{time.monotonic_ns()}"
        result: dict[str, Any] = {"build": build, "count": count}
        for phase, example in (("fill", "send"), ("drain", "receive")):
            command = [str(bin_dir / example), "127.0.0.1", str(port), address, str(count)]
            before = _cpu(proc.pid)
            start = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, check=True, timeout=600)
            elapsed = time.perf_counter() - start
            used = _cpu(proc.pid) - before
            result[phase] = {
                "msgs_per_s": round(count / elapsed),
                "cpu_us_per_msg": round(used * 1e6 / count, 2),
            }
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--builds", default="compiled,pure")
    args = parser.parse_args()
    bin_dir = build_c_examples()
    builds = args.builds.split(",")
    results: dict[str, list[dict[str, Any]]] = {b: [] for b in builds}
    for _ in range(args.runs):
        for build in builds:
            row = run_once(build, args.count, bin_dir)
            print(json.dumps(row), flush=True)
            results[build].append(row)
    for build, rows in results.items():
        summary: dict[str, Any] = {"build": build, "median_of": len(rows)}
        for phase in ("fill", "drain"):
            summary[phase] = {
                key: statistics.median(r[phase][key] for r in rows)
                for key in ("msgs_per_s", "cpu_us_per_msg")
            }
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
