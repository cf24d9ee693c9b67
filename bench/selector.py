"""JMS selector micro-benchmarks: evaluation per message and compilation per consumer.

Prints one JSON line per case::

    {"case": "eval typical, dict.get", "evals_per_s": 4000000.0, "ns_per_eval": 250, ...}
    {"case": "compile typical", "compiles_per_s": 9000.0, "us_per_compile": 111.1, ...}

Evaluation cases run ``Selector.matches`` against one message's properties, through a
plain ``dict.get`` or a :func:`make_lookup` built once (``prebuilt``) or per message
(``+make_lookup``, what a broker pays for its first consumer).  Compilation cases
bypass the selector cache; ``compile cached`` is a cache hit; ``parser build`` is the
one-off cost of lark's LALR tables, paid at the first compile.

Each figure is the median of several timed runs (``time.perf_counter``).
``--quick`` runs each case briefly (a smoke test); ``--case`` picks cases by
substring.  Run with ``python bench/selector.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from petrel.broker import selector as selector_module
from petrel.broker.selector import compile_selector, make_lookup
from petrel.types import Symbol, UInt

TYPICAL = "color = 'red' AND weight > 2.5"
COMPLEX = (
    "(region = 'eu-west' OR region = 'us-east') AND NOT express "
    "AND amount * 1.2 > 100 AND note IS NULL AND JMSPriority BETWEEN 4 AND 9"
)
PROPS: dict[str, Any] = {
    "color": "red",
    "weight": 3,
    "region": "eu-west",
    "customer": "c-000123",
    "amount": 149.95,
    "express": False,
    "trace": "4bf92f3577b34da6",
    "note": None,
}
WRAPPED: dict[str, Any] = {"color": Symbol("red"), "weight": UInt(3)}
HEADER = {"durable": True, "priority": 7, "message_id": "ID:1", "delivery_count": 0}


def _eval(text: str, props: dict[str, Any], how: str = "dict") -> Callable[[], Any]:
    matches = compile_selector(text).matches
    if how == "per-message":
        return lambda: matches(make_lookup(props, **HEADER))
    lookup = props.get if how == "dict" else make_lookup(props, **HEADER)
    return lambda: matches(lookup)


def _compile(text: str) -> Callable[[], Any]:
    uncached = selector_module._compile.__wrapped__
    return lambda: uncached(text)


ORS = " OR ".join(f"customer = 'c-{i:06d}'" for i in range(20))

CASES: list[tuple[str, str, Callable[[], Callable[[], Any]]]] = [
    ("eval typical, dict.get", "eval", lambda: _eval(TYPICAL, PROPS)),
    ("eval typical, make_lookup prebuilt", "eval", lambda: _eval(TYPICAL, PROPS, "prebuilt")),
    ("eval typical, +make_lookup", "eval", lambda: _eval(TYPICAL, PROPS, "per-message")),
    ("eval typical, no match", "eval", lambda: _eval(TYPICAL, {**PROPS, "color": "blue"})),
    ("eval typical, properties missing", "eval", lambda: _eval(TYPICAL, {})),
    ("eval typical, wrapped types", "eval", lambda: _eval(TYPICAL, WRAPPED)),
    (
        "eval JMS headers",
        "eval",
        lambda: _eval("JMSPriority > 4 AND JMSDeliveryMode = 'PERSISTENT'", PROPS, "prebuilt"),
    ),
    (
        "eval IN, 5 strings",
        "eval",
        lambda: _eval("region IN ('eu-west', 'eu-north', 'us-east', 'us-west', 'ap')", PROPS),
    ),
    ("eval LIKE prefix", "eval", lambda: _eval("customer LIKE 'c-0001%'", PROPS)),
    ("eval LIKE general", "eval", lambda: _eval("trace LIKE '%f2_35%a6'", PROPS)),
    ("eval BETWEEN", "eval", lambda: _eval("amount BETWEEN 100 AND 200", PROPS)),
    ("eval complex", "eval", lambda: _eval(COMPLEX, PROPS, "prebuilt")),
    ("eval 20 ORs, no match", "eval", lambda: _eval(ORS, PROPS)),
    ("compile typical", "compile", lambda: _compile(TYPICAL)),
    ("compile complex", "compile", lambda: _compile(COMPLEX)),
    ("compile 20 ORs", "compile", lambda: _compile(ORS)),
    ("compile cached", "compile", lambda: lambda: compile_selector(TYPICAL)),
]


def calibrate(op: Callable[[], Any], seconds: float) -> int:
    count = 1
    while True:
        start = time.perf_counter()
        for _ in range(count):
            op()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / 4:
            return max(1, int(count * seconds / elapsed))
        count *= 4


def timed_run(op: Callable[[], Any], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        op()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="brief runs (smoke test)")
    parser.add_argument("--case", default="", help="run the cases whose name contains this")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    runs, run_seconds = (3, 0.05) if args.quick else (args.runs, 0.3)

    start = time.perf_counter()
    selector_module._parser()  # the one-off LALR table build, before any case
    build_ms = (time.perf_counter() - start) * 1e3
    if args.case in "parser build":
        print(json.dumps({"case": "parser build", "ms": round(build_ms, 1)}), flush=True)

    for name, kind, make in CASES:
        if args.case not in name:
            continue
        op = make()
        count = calibrate(op, run_seconds)
        rate = statistics.median(timed_run(op, count) for _ in range(runs))
        if kind == "eval":
            line = {"case": name, "evals_per_s": round(rate, 1), "ns_per_eval": round(1e9 / rate)}
        else:
            line = {
                "case": name,
                "compiles_per_s": round(rate, 1),
                "us_per_compile": round(1e6 / rate, 1),
            }
        print(json.dumps({**line, "runs": runs}), flush=True)


if __name__ == "__main__":
    main()
