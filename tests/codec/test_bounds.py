"""Bad input: every malformed encoding raises exactly ``DecodeError``, saying what and where.

The decoder reads bytes a peer controls, so besides rejecting them it must
never raise anything else, never recurse without bound and never allocate much
more than it was given.  The limits in :mod:`petrel.codec.limits` are pinned
here; changing one is a protocol-visible decision.
"""

from __future__ import annotations

import struct
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest

from petrel.codec import (
    MAX_NESTING_DEPTH,
    MAX_ZERO_WIDTH_COUNT,
    decode,
    decode_from,
    encode,
)
from petrel.codec import _scalars as decoder_module  # the symbol cache lives there
from petrel.codec.constructors import NAMES
from petrel.errors import DecodeError
from petrel.types import (
    Array,
    Char,
    Decimal32,
    Decimal128,
    Described,
    Float,
    Int,
    Symbol,
    Timestamp,
    UByte,
    UInt,
    ULong,
)

from .amqp_values import assert_same


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def rejects(data: bytes, match: str | None, offset: int | None = None) -> DecodeError:
    """Decoding ``data`` raises exactly DecodeError, matching ``match``, at ``offset``."""
    with pytest.raises(DecodeError, match=match) as info:
        decode(data)
    error = info.value
    assert type(error) is DecodeError
    assert error.offset is not None
    assert f"(at offset {error.offset})" in str(error)
    if offset is not None:
        assert error.offset == offset, str(error)
    assert error.condition == "amqp:decode-error"
    return error


@contextmanager
def peak_allocation(limit: int) -> Iterator[None]:
    """Fail if the block allocates more than ``limit`` bytes at its peak."""
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit, f"peak allocation {peak} bytes"


def test_limits_are_pinned() -> None:
    assert MAX_NESTING_DEPTH == 64
    assert MAX_ZERO_WIDTH_COUNT == 65536
    assert decoder_module._SYMBOL_CACHE_MAX == 4096
    assert decoder_module._SYMBOL_CACHE_MAX_LEN == 64


# --- truncation and trailing bytes ------------------------------------------------------------

RICH = [
    None,
    True,
    UInt(7),
    UInt(70000),
    ULong(2**40),
    Int(-5),
    Int(-500),
    2**40,
    Float(1.5),
    2.5,
    Decimal32(b"\x01\x02\x03\x04"),
    Decimal128(bytes(range(16))),
    Char("\U0001f600"),
    Timestamp(1_700_000_000_000),
    uuid.UUID(int=1),
    b"bin",
    b"x" * 300,
    "str",
    "é" * 200,
    Symbol("sym"),
    Symbol("s" * 300),
    [],
    [None, [UInt(1)]],
    {Symbol("k"): "v", 1: [2, 3]},
    {i: None for i in range(200)},
    Described(ULong(0x70), [UInt(1), None]),
    Described(Symbol("amqp:x"), {}),
    Array(UInt, [UInt(1), UInt(300)]),
    Array(Symbol, [Symbol("a")], descriptor=ULong(9)),
    Array(list, [[1], []]),
    Array(dict, [{None: None}]),
    Array(Array, [Array(bool, [True, False])]),
    Array(str, ["x" * 300]),
]
RICH_VALUE = [*RICH, {Symbol("nested"): Described(Symbol("d"), RICH)}]
RICH_BYTES = encode(RICH_VALUE)


def test_rich_value_is_rich() -> None:
    assert len(RICH_BYTES) > 2000
    assert_same(decode(RICH_BYTES), RICH_VALUE)


def test_every_prefix_of_a_rich_value_is_rejected() -> None:
    for n in range(len(RICH_BYTES)):
        with pytest.raises(DecodeError) as info:
            decode(RICH_BYTES[:n])
        assert type(info.value) is DecodeError
        assert info.value.offset is not None
        assert 0 <= info.value.offset <= n


def short_id(value: Any) -> str:
    return type(value).__name__


@pytest.mark.parametrize("value", RICH, ids=short_id)
def test_every_prefix_of_each_value_is_rejected(value: Any) -> None:
    data = encode(value)
    for n in range(len(data)):
        rejects(data[:n], None)


@pytest.mark.parametrize("value", RICH, ids=short_id)
def test_trailing_bytes_are_rejected(value: Any) -> None:
    data = encode(value)
    rejects(data + b"\x40", "1 bytes left over after the value", len(data))
    rejects(data + b"\x00\x00\x00", "3 bytes left over after the value", len(data))
    # the stream form reads one value and says where the next begins
    assert decode_from(data + b"\x40", 0)[1] == len(data)


def test_empty_input() -> None:
    rejects(b"", "no data where a value should start", 0)


@pytest.mark.parametrize("offset", [-1, -5, 3, 100])
def test_decode_from_outside_the_data(offset: int) -> None:
    with pytest.raises(DecodeError, match="no data where a value should start") as info:
        decode_from(b"\x40\x40\x40", offset)
    assert info.value.offset == offset


# --- unknown constructors ---------------------------------------------------------------------

UNKNOWN = sorted(set(range(256)) - set(NAMES))


def test_there_are_217_unknown_constructors() -> None:
    assert len(UNKNOWN) == 256 - 40


@pytest.mark.parametrize("code", UNKNOWN, ids=lambda c: f"0x{c:02x}")
def test_unknown_constructor(code: int) -> None:
    rejects(bytes((code,)), f"unknown constructor 0x{code:02x}", 0)
    rejects(bytes((code,)) + b"\x00" * 16, f"unknown constructor 0x{code:02x}", 0)
    rejects(h("c0 03 02 40") + bytes((code,)), f"unknown constructor 0x{code:02x}", 4)
    rejects(h("e0 03 01") + bytes((code, 0)), f"unknown element constructor 0x{code:02x}", 3)


# --- lying sizes and counts -------------------------------------------------------------------

BAD: list[tuple[str, str, str, int]] = [
    # (id, bytes, message, offset)
    ("boolean-2", "56 02", "boolean byte must be 0 or 1", 1),
    ("boolean-ff", "56 ff", "boolean byte must be 0 or 1", 1),
    ("char-beyond-unicode", "73 00110000", "not a Unicode scalar value", 1),
    ("char-surrogate", "73 0000d800", "not a Unicode scalar value", 1),
    ("char-ffffffff", "73 ffffffff", "not a Unicode scalar value", 1),
    ("vbin8-size-lies", "a0 05 01 02", "vbin8 says 5 bytes but only 2 remain", 1),
    ("vbin32-size-lies", "b0 00000005 01", "vbin32 says 5 bytes", 1),
    ("vbin32-max-size", "b0 ffffffff 01", "vbin32 says 4294967295 bytes", 1),
    ("str8-size-lies", "a1 02 61", "str8 says 2 bytes but only 1 remain", 1),
    ("str32-max-size", "b1 ffffffff 61", "str32 says 4294967295 bytes but only 1 remain", 1),
    ("sym8-size-lies", "a3 ff", "sym8 says 255 bytes but only 0 remain", 1),
    ("sym32-max-size", "b3 ffffffff", "sym32 says 4294967295 bytes", 1),
    ("list8-size-lies", "c0 05 01 40", "list8 says 5 bytes but only 2 remain", 1),
    ("list8-size-zero", "c0 00 00", "list8 size 0 is too small for its count", 1),
    ("list32-size-small", "d0 00000003 00000000", "list32 size 3 is too small", 1),
    ("list32-size-max", "d0 ffffffff 00000001 40", "list32 says 4294967295 bytes", 1),
    ("list8-count-lies", "c0 02 05 40", "list8 claims 5 elements in 1 bytes", 1),
    ("list32-count-2**31", "d0 00000005 80000000 40", "list32 claims 2147483648 elements", 1),
    ("list32-count-max", "d0 00000005 ffffffff 40", "list32 claims 4294967295 elements", 1),
    ("list8-count-short", "c0 03 01 40 40", "list8 elements do not fill its declared size", 4),
    (
        "list8-element-overruns",
        "c0 02 01 a1 05 6161616161",
        "list8 elements run past its declared size",
        4,
    ),
    ("list8-element-overruns-next", "c0 03 02 a1 01 61 40", "list8 elements run past", 5),
    ("list8-first-fills-it", "c0 03 02 a1 00 40", "list8 ends before its 2 elements do", 5),
    ("map8-size-lies", "c1 09 02 40 40", "map8 says 9 bytes", 1),
    ("map8-odd-count", "c1 02 01 40", "map8 has an odd element count 1", 1),
    ("map32-odd-count", "d1 00000007 00000003 40 40 40", "map32 has an odd element count 3", 1),
    ("map32-count-2**31", "d1 00000006 80000000 40 40", "map32 claims 2147483648 elements", 1),
    ("map8-key-list", "c1 03 02 45 40", "map8 key of type list cannot be a Python dict key", 3),
    ("map8-key-map", "c1 05 02 c1 01 00 40", "map8 key of type dict cannot be", 3),
    ("map8-value-missing", "c1 03 02 a1 00 40", "map8 ends before its 2 elements do", 5),
    ("map8-key-overruns", "c1 03 02 a1 02 61 61", "map8 elements run past", 5),
    ("map8-value-overruns", "c1 04 02 40 a1 02 61 61", "map8 elements run past", 6),
    ("array8-size-lies", "e0 09 01 52 01", "array8 size 9 does not fit the data", 1),
    ("array8-size-zero", "e0 00 00", "array8 size 0 does not fit the data", 1),
    ("array8-no-constructor", "e0 01 00", "array8 has no element constructor", 3),
    ("array32-size-max", "f0 ffffffff 00000001 52 01", "array32 size 4294967295", 1),
    ("array8-count-lies", "e0 03 05 52 01", "array8 claims 5 elements in 1 bytes", 1),
    ("array32-count-2**31", "f0 00000006 80000000 70 00", "array32 claims 2147483648 elements", 1),
    ("array8-too-few", "e0 04 01 52 01 02", "array8 elements do not fill its declared size", 5),
    (
        "array8-element-overruns",
        "e0 04 02 a1 01 61 05 616263",
        "array8 ends before its 2 elements do",
        6,
    ),
    (
        "array8-element-overruns-end",
        "e0 05 02 a1 01 61 03 6263 64 65",
        "array8 elements run past its declared size",
        7,
    ),
    ("array8-fixed-overruns", "e0 03 01 70 00000001", "array8 elements run past", 5),
    ("array8-zero-width-with-body", "e0 03 02 40 40", "array8 elements do not fill", 4),
    ("array8-descriptor-fills-it", "e0 04 01 00 53 01", "array8 has no element constructor", 6),
    (
        "array8-nested-descriptor",
        "e0 08 01 00 53 01 00 53 02 40",
        "array8 element descriptors cannot nest",
        6,
    ),
    ("array8-bad-element-bool", "e0 03 01 56 07", "boolean byte must be 0 or 1", 4),
    ("array8-bad-element-utf8", "e0 04 01 a1 01 ff", "str8-utf8 is not valid UTF-8", 5),
    ("array8-unknown-element", "e0 02 01 01", "array8 has an unknown element constructor 0x01", 3),
    ("array8-described-element", "e0 02 01 00", "truncated descriptor", 4),
    # invalid UTF-8 in strings, non-ASCII in symbols
    ("utf8-ff", "a1 01 ff", "str8-utf8 is not valid UTF-8: invalid start byte", 2),
    ("utf8-truncated", "a1 02 61 c3", "str8-utf8 is not valid UTF-8: unexpected end of data", 3),
    ("utf8-bad-continuation", "a1 02 c3 28", "not valid UTF-8: invalid continuation", 2),
    ("utf8-overlong-nul", "a1 02 c0 80", "str8-utf8 is not valid UTF-8", 2),
    ("utf8-surrogate", "a1 03 ed a0 80", "str8-utf8 is not valid UTF-8", 2),
    ("utf8-beyond-unicode", "a1 04 f4 90 80 80", "str8-utf8 is not valid UTF-8", 2),
    ("utf8-str32", "b1 00000003 61 62 fe", "str32-utf8 is not valid UTF-8", 7),
    ("symbol-high-byte", "a3 01 80", "symbol byte 0x80 is not ASCII", 2),
    ("symbol-utf8", "a3 03 61 c3 a9", "symbol byte 0xc3 is not ASCII", 3),
    ("sym32-high-byte", "b3 00000002 61 ff", "symbol byte 0xff is not ASCII", 6),
    # descriptors
    ("descriptor-string", "00 a1 01 61 40", "must be a ulong or a symbol, got str8-utf8", 1),
    ("descriptor-null", "00 40 40", "a descriptor must be a ulong or a symbol, got null", 1),
    ("descriptor-uint", "00 52 01 40", "descriptor must be a ulong or a symbol, got smalluint", 1),
    ("descriptor-long", "00 55 01 40", "descriptor must be a ulong or a symbol, got smalllong", 1),
    ("descriptor-list", "00 45 40", "descriptor must be a ulong or a symbol, got list0", 1),
    ("descriptor-described", "00 00 53 01 40 40", "got described", 1),
    ("descriptor-unknown", "00 01 40", "descriptor must be a ulong or a symbol, got 0x01", 1),
    ("descriptor-only", "00 53 01", "truncated described value", 3),
    ("descriptor-missing", "00", "truncated descriptor", 1),
    ("array-descriptor-string", "e0 06 01 00 a1 01 61 40", "got str8-utf8", 4),
    ("descriptor-non-ascii-symbol", "00 a3 01 ff 40", "symbol byte 0xff is not ASCII", 3),
    # truncated fixed-width values name the type
    ("truncated-uint", "70 0000", "truncated uint", 1),
    ("truncated-ulong", "80 00", "truncated ulong", 1),
    ("truncated-smallulong", "53", "truncated smallulong", 1),
    ("truncated-double", "82 00", "truncated double", 1),
    ("truncated-uuid", "98 00", "truncated uuid", 1),
    ("truncated-decimal128", "94" + "00" * 15, "truncated decimal128", 1),
    ("truncated-char", "73 00", "truncated char", 1),
    ("truncated-boolean", "56", "truncated boolean", 1),
    ("truncated-list32-header", "d0 000000", "truncated list32 header", 1),
    ("truncated-array8-header", "e0 01", "truncated array8 header", 1),
]


@pytest.mark.parametrize(
    ("data", "message", "offset"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_malformed_input(data: str, message: str, offset: int) -> None:
    rejects(h(data), message, offset)


@pytest.mark.parametrize(
    ("data", "message", "offset"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_malformed_input_inside_a_list(data: str, message: str, offset: int) -> None:
    """The same bytes one level down report an offset into the whole buffer."""
    inner = h(data)
    outer = b"\xd0" + struct.pack(">II", len(inner) + 5, 2) + b"\x40" + inner
    rejects(outer, message, offset + 10)


@pytest.mark.parametrize(
    "data",
    [
        "b1 ffffffff 61",
        "b0 ffffffff",
        "d0 00000005 80000000 40",
        "d1 00000006 80000000 40 40",
        "f0 00000006 ffffffff 70 00",
        "f0 00000005 ffffffff 40",
        "f0 00000005 ffffffff 45",
        "c0 02 ff 40",
    ],
)
def test_lying_sizes_and_counts_allocate_nothing(data: str) -> None:
    with peak_allocation(64 * 1024), pytest.raises(DecodeError):
        decode(h(data))


# --- zero-width arrays ------------------------------------------------------------------------


def zero_width_array(code: int, count: int) -> bytes:
    return b"\xf0" + struct.pack(">II", 5, count) + bytes((code,))


@pytest.mark.parametrize(
    ("code", "element"),
    [(0x40, None), (0x41, True), (0x42, False), (0x43, UInt(0)), (0x44, ULong(0)), (0x45, [])],
    ids=lambda v: f"0x{v:02x}" if isinstance(v, int) and not isinstance(v, bool) else "",
)
def test_zero_width_arrays_up_to_the_limit(code: int, element: Any) -> None:
    value = decode(zero_width_array(code, MAX_ZERO_WIDTH_COUNT))
    assert len(value.items) == MAX_ZERO_WIDTH_COUNT
    assert_same(value.items[0], element)
    assert_same(value.items[-1], element)
    if code == 0x45:
        assert value.items[0] is not value.items[1]  # each list0 is a list of its own
    rejects(
        zero_width_array(code, MAX_ZERO_WIDTH_COUNT + 1),
        f"claims {MAX_ZERO_WIDTH_COUNT + 1} elements, over the limit of {MAX_ZERO_WIDTH_COUNT}",
        1,
    )
    rejects(zero_width_array(code, 2**32 - 1), "over the limit", 1)


def test_zero_width_limit_is_per_decode_not_per_array() -> None:
    """A list of many small arrays of nulls cannot multiply the limit."""
    half = MAX_ZERO_WIDTH_COUNT // 2
    two_halves = [zero_width_array(0x40, half), zero_width_array(0x43, half)]
    body = b"".join(two_halves)
    ok = b"\xd0" + struct.pack(">II", len(body) + 4, 2) + body
    assert [len(a) for a in decode(ok)] == [half, half]

    body += zero_width_array(0x41, 1)
    over = b"\xd0" + struct.pack(">II", len(body) + 4, 3) + body
    rejects(over, "over the limit", 9 + 2 * 10 + 1)

    # The budget starts afresh for each decode call.
    assert len(decode(zero_width_array(0x40, MAX_ZERO_WIDTH_COUNT))) == MAX_ZERO_WIDTH_COUNT
    stream = zero_width_array(0x40, MAX_ZERO_WIDTH_COUNT) * 2
    _, offset = decode_from(stream, 0)
    _, offset = decode_from(stream, offset)
    assert offset == len(stream)


def test_amplification_attack_is_cheap_to_refuse() -> None:
    """100,000 ten-byte arrays each claiming 65,536 nulls: refused without building them."""
    arrays = zero_width_array(0x40, MAX_ZERO_WIDTH_COUNT) * 100_000
    data = b"\xd0" + struct.pack(">II", len(arrays) + 4, 100_000) + arrays
    with peak_allocation(2 * 1024 * 1024), pytest.raises(DecodeError, match="over the limit"):
        decode(data)


def test_nested_zero_width_arrays_share_the_budget() -> None:
    inner = struct.pack(">II", 5, MAX_ZERO_WIDTH_COUNT) + b"\x40"  # an array32 body of nulls
    data = b"\xf0" + struct.pack(">II", 4 + 1 + 2 * len(inner), 2) + b"\xf0" + inner * 2
    rejects(data, "over the limit")


# --- nesting ----------------------------------------------------------------------------------


def nested(depth: int, wrap: Callable[[bytes], bytes], leaf: bytes = b"\x40") -> bytes:
    data = leaf
    for _ in range(depth):
        data = wrap(data)
    return data


def wrap_list(data: bytes) -> bytes:
    return b"\xd0" + struct.pack(">II", len(data) + 4, 1) + data


def wrap_map(data: bytes) -> bytes:
    return b"\xd1" + struct.pack(">II", len(data) + 5, 2) + b"\x40" + data


def wrap_described(data: bytes) -> bytes:
    return b"\x00\x53\x01" + data


WRAPPERS = {"list": wrap_list, "map": wrap_map, "described": wrap_described}


@pytest.mark.parametrize("kind", list(WRAPPERS))
def test_nesting_up_to_the_limit(kind: str) -> None:
    wrap = WRAPPERS[kind]
    decode(nested(MAX_NESTING_DEPTH, wrap))
    rejects(nested(MAX_NESTING_DEPTH + 1, wrap), f"values nested deeper than {MAX_NESTING_DEPTH}")


def test_nested_arrays_up_to_the_limit() -> None:
    # Array(Array, [Array(Array, [... Array(NoneType, [None])])]): the innermost array
    # is a plain array8 of one null; each level around it is an array32 of one array.
    def build(depth: int) -> bytes:
        data = h("e0 02 01 40")
        for _ in range(depth - 1):
            body = data[1:]  # the inner array's body (without its constructor)
            content = struct.pack(">I", 1) + bytes((data[0],)) + body
            data = b"\xf0" + struct.pack(">I", len(content)) + content
        return data

    value = decode(build(MAX_NESTING_DEPTH))
    for _ in range(MAX_NESTING_DEPTH - 1):
        value = value.items[0]
    assert value == Array(type(None), [None])
    rejects(build(MAX_NESTING_DEPTH + 1), f"nested deeper than {MAX_NESTING_DEPTH}")


def test_mixed_nesting_counts_every_level() -> None:
    def mixed(depth: int) -> bytes:
        data = b"\x40"
        wraps = [wrap_list, wrap_map, wrap_described]
        for i in range(depth):
            data = wraps[i % 3](data)
        return data

    decode(mixed(MAX_NESTING_DEPTH))
    rejects(mixed(MAX_NESTING_DEPTH + 1), "nested deeper than")


def test_deep_nesting_far_beyond_the_limit_is_cheap() -> None:
    """100,000 levels of list8 headers: refused at level 65, no RecursionError."""
    data = b"\xc0\x02\x01" * 100_000 + b"\x40"
    error = rejects(data, f"nested deeper than {MAX_NESTING_DEPTH}")
    assert error.offset == 3 * MAX_NESTING_DEPTH
    described = b"\x00\x53\x01" * 100_000 + b"\x40"
    rejects(described, "nested deeper than")


def test_encoded_nesting_limit_matches() -> None:
    value: Any = None
    for _ in range(MAX_NESTING_DEPTH):
        value = [value]
    assert_same(decode(encode(value)), value)
    with pytest.raises(DecodeError, match="nested deeper"):
        decode(encode([value]))


# --- registry factories -----------------------------------------------------------------------


def test_registry_factories_errors_become_decode_errors() -> None:
    def broken(value: Any) -> Any:
        raise ValueError("no good")

    def strict(value: Any) -> Any:
        raise DecodeError("field x is mandatory")

    def picky(value: Any) -> Any:
        return value[5]

    registry: dict[Any, Callable[[Any], Any]] = {
        ULong(1): broken,
        Symbol("s"): strict,
        ULong(2): picky,
        ULong(3): tuple,
    }
    data = h("c0 05 01 00 53 01 45")
    with pytest.raises(DecodeError, match=r"malformed described value ULong\(1\): no good") as info:
        decode(data, registry=registry)
    assert info.value.offset == 3
    with pytest.raises(DecodeError, match="field x is mandatory") as info:
        decode(h("00 a3 01 73 45"), registry=registry)
    assert info.value.offset == 0
    with pytest.raises(DecodeError, match="malformed described value ULong"):
        decode(h("00 53 02 45"), registry=registry)
    assert decode(h("00 53 03 c0 02 01 40"), registry=registry) == (None,)
    assert decode(h("00 53 04 45"), registry=registry) == Described(ULong(4), [])


# --- no large retained state ------------------------------------------------------------------


def test_symbol_cache_keeps_only_short_symbols() -> None:
    long_symbol = Symbol("L" * (decoder_module._SYMBOL_CACHE_MAX_LEN + 1))
    assert decode(encode(long_symbol)) == long_symbol
    assert long_symbol.encode() not in decoder_module._SYMBOL_CACHE
    short_symbol = Symbol("short-symbol-for-cache-test")
    assert decode(encode(short_symbol)) == short_symbol
    assert len(decoder_module._SYMBOL_CACHE) <= decoder_module._SYMBOL_CACHE_MAX


def test_many_distinct_symbols_do_not_grow_the_cache_without_bound() -> None:
    symbols = Array(
        Symbol, [Symbol(f"sym-{i}") for i in range(2 * decoder_module._SYMBOL_CACHE_MAX)]
    )
    assert decode(encode(symbols)) == symbols
    assert len(decoder_module._SYMBOL_CACHE) <= decoder_module._SYMBOL_CACHE_MAX


def test_decode_error_is_the_only_exception() -> None:
    """A spot check of every fixed-width constructor with every short body."""
    for code in NAMES:
        for n in range(18):
            data = bytes((code,)) + b"\xff" * n
            with suppress(DecodeError):
                decode(data)


def test_big_but_honest_values_decode() -> None:
    values = [
        b"\x00" * 100_000,
        "x" * 100_000,
        [UByte(1)] * 10_000,
        Array(Int, list(map(Int, range(10_000)))),
        {i: Float(1.0) for i in range(5_000)},
    ]
    for value in values:
        assert_same(decode(encode(value)), value)
