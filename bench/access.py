"""What ``[access]`` costs per message on the anonymous relay.

Prints one JSON line per case::

    {"case": "relay check, cached", "ns_per_check": 180, ...}
    {"case": "broker relay, with access", "msgs_per_s": 21000, ...}

- ``relay check, cached``: :meth:`ConnectionAccess.relay` for an address the
  connection decided before (the common case: a few addresses, many messages).
- ``relay check, first time``: a decision not in the cache, against ``--rules``
  rules of three patterns each (what a new address costs once per connection).
- ``broker relay``: an in-process broker (memory store), Petrel's client sending
  ``--count`` messages through the anonymous relay to ``--addresses`` addresses,
  without and with ``[access]``; the difference per message is the whole cost
  as a client sees it.

Each micro figure is the median of several timed runs (``time.perf_counter``).
Run with ``python bench/access.py`` (``--quick`` for a smoke run).  Benchmarks
are not tests: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import petrel
from petrel.broker import Broker
from petrel.server import BrokerSettings
from petrel.server.access import Access, AccessSettings


def _rules(count: int) -> list[dict[str, Any]]:
    rules = [
        {
            "who": [f"user{n}", "@team"],
            "addresses": [f"app{n}.orders.#", f"app{n}.*.events", f"app{n}.audit"],
            "rights": ["send", "receive"],
        }
        for n in range(count)
    ]
    rules.append({"who": ["alice"], "addresses": ["orders.#"], "rights": ["send"]})
    return rules


def _timed(step: Callable[[], Any], calls: int, runs: int) -> float:
    """Median seconds per call."""
    results = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(calls):
            step()
        results.append((time.perf_counter() - start) / calls)
    return statistics.median(results)


def micro(rules: int, calls: int, runs: int) -> None:
    access = Access(
        AccessSettings.model_validate(
            {"rules": _rules(rules), "groups": [{"name": "team", "members": ["alice"]}]}
        )
    )
    conn = access.open("alice", "127.0.0.1", None)
    relay = conn.relay
    relay("orders.eu")
    cached = _timed(lambda: relay("orders.eu"), calls, runs)
    print(json.dumps({"case": "relay check, cached", "ns_per_check": round(cached * 1e9)}))
    counter = iter(range(10**9))

    def first_time() -> None:
        conn._cache.clear()  # every decision is a new one
        conn._relayed.clear()
        relay(f"app{next(counter) % rules}.orders.eu")

    miss = _timed(first_time, max(calls // 10, 1), runs)
    print(
        json.dumps(
            {
                "case": "relay check, first time",
                "rules": rules,
                "us_per_check": round(miss * 1e6, 2),
            }
        )
    )


async def _broker_relay(with_access: bool, count: int, addresses: int) -> float:
    settings: dict[str, Any] = {"store": "memory", "listeners": [{"url": "amqp://127.0.0.1:0"}]}
    if with_access:
        settings["access"] = {
            "rules": [
                {"who": ["$anonymous"], "addresses": ["bench.#"], "rights": ["send", "create"]}
            ]
        }
    broker = Broker(BrokerSettings.model_validate(settings))
    await broker.start()
    try:
        url = f"amqp://127.0.0.1:{broker.bound[0][1]}"
        async with await petrel.connect(url, reconnect=False) as conn:
            relay = await conn.open_sender(None)
            targets = [f"bench.q{n}" for n in range(addresses)]
            for target in targets:  # create the queues outside the timing
                await relay.send(petrel.Message(b"", to=target))
            messages = [petrel.Message(b"x" * 100, to=targets[n % addresses]) for n in range(count)]
            start = time.perf_counter()
            pending = [await relay.send(m, wait=False) for m in messages]
            await asyncio.gather(*pending)
            return time.perf_counter() - start
    finally:
        await broker.stop(timeout=1.0)


def end_to_end(count: int, addresses: int, runs: int) -> None:
    seconds: dict[bool, float] = {}
    for with_access in (False, True):
        times = [asyncio.run(_broker_relay(with_access, count, addresses)) for _ in range(runs)]
        seconds[with_access] = statistics.median(times)
        label = "with access" if with_access else "without access"
        print(
            json.dumps(
                {
                    "case": f"broker relay, {label}",
                    "messages": count,
                    "addresses": addresses,
                    "msgs_per_s": round(count / seconds[with_access]),
                    "us_per_msg": round(seconds[with_access] / count * 1e6, 2),
                }
            )
        )
    extra = (seconds[True] - seconds[False]) / count
    print(json.dumps({"case": "broker relay, access cost", "us_per_msg": round(extra * 1e6, 2)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--addresses", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.count, args.runs = 500, 1
    micro(args.rules, 200_000 if not args.quick else 2000, args.runs)
    end_to_end(args.count, args.addresses, args.runs)


if __name__ == "__main__":
    main()
