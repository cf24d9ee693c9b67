"""Codec micro-benchmarks: Petrel against Qpid Proton's C codec, in the same run.

Prints one JSON line per case and implementation::

    {"case": "transfer+message encode", "impl": "petrel", "ops_per_s": 123456.0, ...}

Cases:

- ``transfer+message encode``: a transfer performative and a 100-byte message
  (header, properties, data body) into one buffer.
- ``transfer+message decode``: the same bytes back into objects.
- ``app-properties encode`` / ``app-properties decode``: a message with ten
  application properties.
- ``64KiB header+properties read``: read the header and properties fields of
  a message with a 64 KiB body (Petrel's lazy ``MessageView`` against
  Proton's full decode).

Each figure is the median of several timed runs (``time.perf_counter``).
``--quick`` runs each case briefly (a smoke test); ``--case`` picks cases by
substring and ``--impl`` one implementation.  Run with ``python bench/codec.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from petrel import codec, spec
from petrel.message import Message, MessageView
from petrel.spec import Transfer

try:
    import proton
except ImportError:  # pragma: no cover - Proton is optional here
    proton = None

BODY_100 = bytes(range(100))
BODY_64K = bytes(65536)
APP_PROPS: dict[str, Any] = {
    "region": "eu-west",
    "customer": "c-000123",
    "priority_class": 3,
    "amount": 149.95,
    "express": True,
    "retries": 0,
    "source": "web",
    "trace": "4bf92f3577b34da6",
    "weight": 1200,
    "note": None,
}
MESSAGE_ID = "order-000001"
ADDRESS = "queue://orders"
TAG = b"\x00\x00\x00\x01"


# --- Petrel ---------------------------------------------------------------------------------------


def petrel_transfer_encode() -> Callable[[], Any]:
    def op() -> bytearray:
        out = bytearray()
        codec.encode_into(
            out,
            Transfer(handle=0, delivery_id=1, delivery_tag=TAG, message_format=0, settled=False),
        )
        Message(BODY_100, durable=True, message_id=MESSAGE_ID, to=ADDRESS).encode_into(out)
        return out

    return op


def petrel_transfer_decode() -> Callable[[], Any]:
    frame = bytes(petrel_transfer_encode()())

    def op() -> tuple[Any, Message]:
        transfer, offset = spec.decode_from(frame, 0)
        return transfer, Message.decode(frame[offset:])

    return op


def petrel_props_encode() -> Callable[[], Any]:
    def op() -> bytes:
        return Message("hello", message_id=MESSAGE_ID, application_properties=APP_PROPS).encode()

    return op


def petrel_props_decode() -> Callable[[], Any]:
    data = petrel_props_encode()()

    def op() -> Message:
        return Message.decode(data)

    return op


def petrel_lazy_read() -> Callable[[], Any]:
    data = Message(BODY_64K, durable=True, ttl=60000, message_id=MESSAGE_ID, to=ADDRESS).encode()

    def op() -> tuple[Any, ...]:
        view = MessageView(data)
        return (
            view.durable,
            view.priority,
            view.ttl,
            view.delivery_count,
            view.to,
            view.message_id,
        )

    return op


# --- Proton ---------------------------------------------------------------------------------------


def proton_transfer_encode() -> Callable[[], Any]:
    def op() -> bytes:
        data = proton.Data()
        data.put_described()
        data.enter()
        data.put_ulong(0x14)
        data.put_list()
        data.enter()
        data.put_uint(0)
        data.put_uint(1)
        data.put_binary(TAG)
        data.put_uint(0)
        data.put_bool(False)
        data.exit()
        data.exit()
        pm = proton.Message(body=BODY_100, inferred=True, durable=True, id=MESSAGE_ID)
        pm.address = ADDRESS
        return data.encode() + pm.encode()

    return op


def proton_transfer_decode() -> Callable[[], Any]:
    frame = proton_transfer_encode()()

    def op() -> tuple[Any, Any]:
        data = proton.Data()
        used = data.decode(frame)
        data.next()
        transfer = data.get_object()
        pm = proton.Message()
        pm.decode(frame[used:])
        return transfer, pm

    return op


def proton_props_encode() -> Callable[[], Any]:
    def op() -> bytes:
        pm = proton.Message(body="hello", id=MESSAGE_ID)
        pm.properties = dict(APP_PROPS)
        return pm.encode()  # type: ignore[no-any-return]

    return op


def proton_props_decode() -> Callable[[], Any]:
    data = proton_props_encode()()

    def op() -> Any:
        pm = proton.Message()
        pm.decode(data)
        return pm

    return op


def proton_lazy_read() -> Callable[[], Any]:
    pm = proton.Message(body=BODY_64K, inferred=True, durable=True, ttl=60.0, id=MESSAGE_ID)
    pm.address = ADDRESS
    data = pm.encode()

    def op() -> tuple[Any, ...]:
        msg = proton.Message()
        msg.decode(data)
        return (msg.durable, msg.priority, msg.ttl, msg.delivery_count, msg.address, msg.id)

    return op


CASES: list[tuple[str, Callable[[], Callable[[], Any]], Callable[[], Callable[[], Any]]]] = [
    ("transfer+message encode", petrel_transfer_encode, proton_transfer_encode),
    ("transfer+message decode", petrel_transfer_decode, proton_transfer_decode),
    ("app-properties encode", petrel_props_encode, proton_props_encode),
    ("app-properties decode", petrel_props_decode, proton_props_decode),
    ("64KiB header+properties read", petrel_lazy_read, proton_lazy_read),
]


def calibrate(op: Callable[[], Any], run_seconds: float) -> int:
    """How many calls of ``op`` take about ``run_seconds``."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            op()
        elapsed = time.perf_counter() - start
        if elapsed >= run_seconds / 4:
            return max(1, int(n * run_seconds / elapsed))
        n *= 2


def timed_run(op: Callable[[], Any], n: int) -> float:
    """Calls per second over one run of ``n`` calls."""
    start = time.perf_counter()
    for _ in range(n):
        op()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--case", default="", help="only cases whose name contains this")
    parser.add_argument("--impl", choices=("petrel", "proton"), help="only this implementation")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    runs, run_seconds = (3, 0.05) if args.quick else (args.runs, 0.4)
    for name, petrel_case, proton_case in CASES:
        if args.case not in name:
            continue
        impls = [("petrel", petrel_case)]
        if proton is not None:
            impls.append(("proton", proton_case))
        ops = {impl: make() for impl, make in impls if args.impl in (None, impl)}
        counts = {impl: calibrate(op, run_seconds) for impl, op in ops.items()}
        # Runs of the implementations alternate, so a busy machine slows both alike.
        rates: dict[str, list[float]] = {impl: [] for impl in ops}
        for _ in range(runs):
            for impl, op in ops.items():
                rates[impl].append(timed_run(op, counts[impl]))
        for impl in ops:
            rate = statistics.median(rates[impl])
            line = {
                "case": name,
                "impl": impl,
                "ops_per_s": round(rate, 1),
                "ns_per_op": round(1e9 / rate),
                "runs": runs,
            }
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
