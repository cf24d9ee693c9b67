"""What ``petrel bench``'s workers measure and how the parent adds it up.

Every message body starts with :data:`STAMP`: the sender's id, the message's
sequence number (0, 1, 2, ... per sender) and the send time
(``time.time_ns()``), padded to the requested size.  A receiver keeps, in
bounded memory, a :class:`Tally`: a latency histogram (log buckets, about 3 %
wide) and one bitmap per sender (bit ``seq`` set when message ``seq``
arrived), which is how the parent proves every message arrived exactly once.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: sender id (uint32), sequence number (uint64), send time in ns since the epoch (int64).
STAMP = struct.Struct("<IQq")

#: Latencies below this many microseconds get a bucket each; above, 32 buckets per octave.
_EXACT = 64


def bucket(micros: int) -> int:
    """The histogram bucket of a latency in microseconds (negative clock skew counts as 0)."""
    if micros < _EXACT:
        return micros if micros > 0 else 0
    shift = micros.bit_length() - 6
    return _EXACT + (shift - 1) * 32 + ((micros >> shift) - 32)


def bucket_value(index: int) -> float:
    """The middle of bucket ``index``, in microseconds."""
    if index < _EXACT:
        return float(index)
    shift = (index - _EXACT) // 32 + 1
    top = (index - _EXACT) % 32 + 32
    return (top << shift) + (1 << shift) / 2


@dataclass
class Tally:
    """One receiver's record: counts, latency histogram, per-sender bitmaps."""

    received: int = 0
    duplicates: int = 0
    received_bytes: int = 0
    max_us: int = 0
    first_ns: int = 0
    last_ns: int = 0
    histogram: dict[int, int] = field(default_factory=dict)
    seen: dict[int, bytearray] = field(default_factory=dict)

    def record(self, body: bytes | bytearray | memoryview, now_ns: int) -> None:
        """Count one message whose body is ``body``, received at ``now_ns``."""
        sender, seq, sent_ns = STAMP.unpack_from(body)
        bits = self.seen.get(sender)
        if bits is None:
            bits = self.seen[sender] = bytearray(1024)
        index = seq >> 3
        if index >= len(bits):
            bits.extend(bytes(max(index + 1 - len(bits), len(bits))))
        mask = 1 << (seq & 7)
        if bits[index] & mask:
            self.duplicates += 1
        else:
            bits[index] |= mask
        micros = (now_ns - sent_ns) // 1000
        if micros > self.max_us:
            self.max_us = micros
        key = bucket(micros)
        histogram = self.histogram
        histogram[key] = histogram.get(key, 0) + 1
        self.received += 1
        self.received_bytes += len(body)
        if not self.first_ns:
            self.first_ns = now_ns
        self.last_ns = now_ns

    def to_json(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "duplicates": self.duplicates,
            "bytes": self.received_bytes,
            "max_us": self.max_us,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "histogram": {str(k): v for k, v in self.histogram.items()},
            "seen": {
                str(k): base64.b64encode(bytes(v).rstrip(b"\0")).decode()
                for k, v in self.seen.items()
            },
        }


@dataclass
class Accounting:
    """Exactly-once across all receivers: who sent what, what arrived how often."""

    sent: int
    received: int
    unique: int
    duplicates: int
    missing: int
    unexpected: int

    @property
    def exactly_once(self) -> bool:
        return self.duplicates == 0 and self.missing == 0 and self.unexpected == 0


def account(sent: Mapping[int, int], tallies: Iterable[Mapping[str, Any]]) -> Accounting:
    """Merge the receivers' bitmaps (``Tally.to_json``) against ``sent`` (sender id -> count).

    A message seen by two receivers, or twice by one, is a duplicate; a
    sequence number a sender never sent is unexpected.
    """
    merged: dict[int, int] = {}
    duplicates = 0
    received = 0
    for tally in tallies:
        duplicates += int(tally["duplicates"])
        received += int(tally["received"])
        for key, text in tally["seen"].items():
            bits = int.from_bytes(base64.b64decode(text), "little")
            before = merged.get(int(key), 0)
            duplicates += (before & bits).bit_count()
            merged[int(key)] = before | bits
    unique = missing = unexpected = 0
    for sender in set(sent) | set(merged):
        bits = merged.get(sender, 0)
        count = sent.get(sender, 0)
        in_range = bits & ((1 << count) - 1)
        got = in_range.bit_count()
        unique += got
        missing += count - got
        unexpected += (bits >> count).bit_count()
    return Accounting(
        sent=sum(sent.values()),
        received=received,
        unique=unique,
        duplicates=duplicates,
        missing=missing,
        unexpected=unexpected,
    )


def merge_histograms(histograms: Iterable[Mapping[str, int]]) -> dict[int, int]:
    total: dict[int, int] = {}
    for histogram in histograms:
        for key, count in histogram.items():
            total[int(key)] = total.get(int(key), 0) + int(count)
    return total


def percentiles(
    histogram: Mapping[int, int], points: Iterable[float], max_us: int
) -> dict[float, float]:
    """Latency percentiles (``points`` in 0..100) in microseconds; never above ``max_us``."""
    total = sum(histogram.values())
    keys = sorted(histogram)
    result: dict[float, float] = {}
    for point in points:
        if not total:
            result[point] = math.nan
            continue
        rank = max(1, math.ceil(total * point / 100))
        running = 0
        for key in keys:
            running += histogram[key]
            if running >= rank:
                result[point] = min(bucket_value(key), float(max_us))
                break
    return result
