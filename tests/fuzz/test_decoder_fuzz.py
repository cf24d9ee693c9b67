"""Decoder fuzzing: mutated valid encodings and random bytes never break the decoder.

For every input the decoder either raises exactly ``DecodeError`` or returns a
value that re-encodes and decodes to itself.  Nothing else may escape
(``IndexError``, ``struct.error``, ``RecursionError``, ``MemoryError``, ...),
and every input is decided quickly.

The mutation run is deterministic (fixed seed, fixed count), so a failure
reproduces; the hypothesis tests add shrinking for random byte strings.
"""

from __future__ import annotations

import random
import struct
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from petrel.codec import decode, decode_from, encode
from petrel.codec.constructors import NAMES
from petrel.errors import DecodeError
from petrel.types import (
    Array,
    Char,
    Decimal64,
    Described,
    Float,
    Int,
    Symbol,
    Timestamp,
    UByte,
    UInt,
    ULong,
)

from ..codec.amqp_values import assert_same
from ..codec.test_golden import CANONICAL, WIDE, h

SEED = 0x5EED_AE01
MUTANTS = 20_000

# A frame-like value touching most of the type system.
_FRAME = Described(
    ULong(0x14),
    [
        UInt(1),
        UInt(7),
        b"tag-1",
        UInt(0),
        True,
        None,
        None,
        Described(ULong(0x24), []),
        [Symbol("x-opt"), Array(Symbol, [Symbol("a"), Symbol("b")])],
        {
            Symbol("x-opt-jms-dest"): UByte(1),
            Symbol("x-ts"): Timestamp(1_700_000_000_000),
            "props": {"k": [1, 2.5, Float(1.5), Char("é"), uuid.UUID(int=5)]},
            Symbol("d"): Decimal64(b"\x22\x38\x00\x00\x00\x00\x00\x01"),
        },
        Array(list, [[Int(-1), "x" * 40], []], descriptor=Symbol("rows")),
        Array(Array, [Array(UInt, [UInt(1), UInt(70000)]), Array(bool, [True, False])]),
        "é" * 300,
    ],
)

CORPUS: list[bytes] = sorted(
    {h(c[2]) for c in CANONICAL}
    | {h(w[1]) for w in WIDE}
    | {encode(_FRAME), encode([_FRAME, _FRAME]), encode({Symbol("k"): _FRAME})}
    | {encode(Array(Symbol, [Symbol(f"s{i}") for i in range(40)]))}
)

# Bytes that make interesting lies in sizes, counts and constructors.
_BYTES = [0x00, 0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF, *sorted(NAMES)]
_U32 = [0, 1, 2, 4, 5, 0xFF, 0x100, 65536, 65537]
_U32 += [0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF]


def _mutate(data: bytes, rnd: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        choice = rnd.randrange(9)
        n = len(buf)
        pos = rnd.randrange(n) if n else 0
        if choice == 0 and n:  # flip a bit
            buf[pos] ^= 1 << rnd.randrange(8)
        elif choice == 1 and n:  # a random byte
            buf[pos] = rnd.randrange(256)
        elif choice == 2 and n:  # an interesting byte
            buf[pos] = rnd.choice(_BYTES)
        elif choice == 3:  # truncate
            del buf[rnd.randrange(n + 1) :]
        elif choice == 4:  # insert random bytes
            buf[pos:pos] = rnd.randbytes(rnd.randint(1, 8))
        elif choice == 5 and n:  # delete a run
            del buf[pos : pos + rnd.randint(1, 8)]
        elif choice == 6 and n:  # duplicate a run
            end = min(n, pos + rnd.randint(1, 32))
            buf[pos:pos] = buf[pos:end]
        elif choice == 7 and n >= 4:  # an interesting 32-bit size or count
            pos = rnd.randrange(n - 3)
            buf[pos : pos + 4] = struct.pack(">I", rnd.choice(_U32))
        else:  # splice in part of another corpus entry
            other = rnd.choice(CORPUS)
            start = rnd.randrange(len(other))
            buf[pos:pos] = other[start : start + rnd.randint(1, 64)]
    return bytes(buf)


def _check(data: bytes) -> bool:
    """Decode ``data``; return whether it decoded.  Fail on anything but DecodeError."""
    try:
        value = decode(data)
    except DecodeError as exc:
        assert type(exc) is DecodeError
        assert exc.offset is not None
        return False
    # Whatever the decoder accepts, the encoder can write and the decoder reads back.
    again = decode(encode(value))
    assert_same(again, value)
    assert encode(again) == encode(value)
    return True


def _check_stream(data: bytes, offset: int) -> None:
    try:
        _, end = decode_from(data, offset)
    except DecodeError:
        return
    assert offset < end <= len(data)


def test_corpus_is_valid() -> None:
    assert len(CORPUS) > 200
    for data in CORPUS:
        assert _check(data)


def test_mutated_encodings() -> None:
    rnd = random.Random(SEED)
    decoded = 0
    # No clock here (tests never fail on a duration): a decode that hangs is caught by the
    # suite's per-test timeout, and bench/fuzz.py's watchdog reports the input.
    for _ in range(MUTANTS):
        data = _mutate(rnd.choice(CORPUS), rnd)
        decoded += _check(data)
        if data:
            _check_stream(data, rnd.randrange(len(data)))
    # the mutations should neither all fail nor all pass
    assert 0.02 * MUTANTS < decoded < 0.9 * MUTANTS


def test_every_truncation_and_extension_of_the_frame() -> None:
    data = encode(_FRAME)
    for n in range(len(data)):
        assert not _check(data[:n])
    for extra in (b"\x00", b"\x40", b"\xff" * 9):
        assert not _check(data + extra)


def test_every_single_byte_change_of_a_small_value() -> None:
    data = encode([Symbol("a"), {UInt(1): Array(Int, [Int(2)])}, Described(ULong(3), b"x")])
    for pos in range(len(data)):
        for byte in range(256):
            _check(data[:pos] + bytes((byte,)) + data[pos + 1 :])


FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ
@given(st.binary(max_size=256))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@FUZZ
@given(st.lists(st.sampled_from(_BYTES) | st.integers(0, 255), max_size=64).map(bytes))
def test_random_constructor_soup(data: bytes) -> None:
    _check(data)


@FUZZ
@given(st.sampled_from(CORPUS), st.data())
def test_hypothesis_mutations(data: bytes, draw: Any) -> None:
    rnd = draw.draw(st.randoms(use_true_random=False))
    _check(_mutate(data, rnd))
