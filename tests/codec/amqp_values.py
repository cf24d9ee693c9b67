"""Shared helpers for the codec tests: strict equality, value strategies, an independent encoder.

- :func:`same` compares decoded values by AMQP type as well as by value
  (``UInt(1) == ULong(1)`` in Python, but not here), and floats by bit pattern.
- ``values()`` and friends are hypothesis strategies for every AMQP type,
  nested in lists, maps, arrays and described values.
- :func:`any_encoding` is a second, deliberately naive encoder that can write
  *any* legal encoding of a value (wide or narrow, picked by the caller), so
  the decoder can be checked against encodings Petrel's encoder never makes.
"""

from __future__ import annotations

import math
import struct
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import strategies as st

from petrel.codec import MAX_ZERO_WIDTH_COUNT
from petrel.types import (
    Array,
    Byte,
    Char,
    Decimal32,
    Decimal64,
    Decimal128,
    Described,
    Float,
    Int,
    Long,
    Short,
    Symbol,
    Timestamp,
    UByte,
    UInt,
    ULong,
    UShort,
)

NoneType = type(None)

# --- strict equality --------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """True if ``a`` and ``b`` are the same AMQP value: same types all the way down.

    Floats compare by bit pattern, so NaN equals the same NaN and -0.0 differs
    from 0.0.  Maps compare in order (AMQP maps are ordered on the wire).
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, Float):
        return struct.pack(">f", a) == struct.pack(">f", b)
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if isinstance(a, Described):
        return same(a.descriptor, b.descriptor) and same(a.value, b.value)
    if isinstance(a, Array):
        return (
            a.element_type is b.element_type
            and same(a.descriptor, b.descriptor)
            and same(a.items, b.items)
        )
    return bool(a == b)


def assert_same(actual: Any, expected: Any) -> None:
    assert same(actual, expected), f"{actual!r} is not the same AMQP value as {expected!r}"


# --- strategies -------------------------------------------------------------------------------

U64 = 2**64 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1

ascii_text = st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=300)

# Float: any binary32 value, but NaN only as the quiet NaN (CPython's float
# <-> binary32 conversion quiets signalling NaNs, so their bits cannot survive).
floats32 = st.floats(width=32, allow_nan=False).map(Float) | st.just(Float(math.nan))

SCALARS: dict[type, st.SearchStrategy[Any]] = {
    NoneType: st.none(),
    bool: st.booleans(),
    UByte: st.integers(0, 255).map(UByte),
    UShort: st.integers(0, 2**16 - 1).map(UShort),
    UInt: st.integers(0, 2**32 - 1).map(UInt) | st.integers(0, 300).map(UInt),
    ULong: st.integers(0, U64).map(ULong) | st.integers(0, 300).map(ULong),
    Byte: st.integers(-128, 127).map(Byte),
    Short: st.integers(-(2**15), 2**15 - 1).map(Short),
    Int: st.integers(-(2**31), 2**31 - 1).map(Int) | st.integers(-200, 200).map(Int),
    int: st.integers(I64_MIN, I64_MAX) | st.integers(-200, 200),
    Float: floats32,
    float: st.floats(),
    Decimal32: st.binary(min_size=4, max_size=4).map(Decimal32),
    Decimal64: st.binary(min_size=8, max_size=8).map(Decimal64),
    Decimal128: st.binary(min_size=16, max_size=16).map(Decimal128),
    Char: st.characters(exclude_categories=["Cs"]).map(Char),
    Timestamp: st.integers(I64_MIN, I64_MAX).map(Timestamp),
    uuid.UUID: st.uuids(),
    bytes: st.binary(max_size=300),
    str: st.text(max_size=300),
    Symbol: ascii_text.map(Symbol),
}

scalars = st.one_of(*SCALARS.values())
descriptors = (
    st.integers(0, U64).map(ULong) | st.integers(0, 300).map(ULong) | ascii_text.map(Symbol)
)


def scalar_arrays(max_size: int = 6) -> st.SearchStrategy[Array]:
    """Arrays of every scalar element type, some of them described."""

    def build(element_type: type) -> st.SearchStrategy[Array]:
        items = st.lists(SCALARS[element_type], max_size=max_size)
        return st.builds(Array, st.just(element_type), items, st.none() | descriptors)

    return st.sampled_from(list(SCALARS)).flatmap(build)


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = scalars | st.builds(Described, descriptors, scalars)
    lists = st.lists(children, max_size=5)
    maps = st.dictionaries(keys, children, max_size=5)
    inner_arrays = scalar_arrays(4)
    return st.one_of(
        lists,
        maps,
        st.builds(Described, descriptors, children),
        scalar_arrays(),
        st.builds(Array, st.just(list), st.lists(lists, max_size=3), st.none() | descriptors),
        st.builds(Array, st.just(dict), st.lists(maps, max_size=3), st.none() | descriptors),
        st.builds(Array, st.just(Array), st.lists(inner_arrays, max_size=3)),
        st.builds(
            Array,
            st.just(Array),
            st.lists(st.builds(Array, st.just(Array), st.lists(inner_arrays, max_size=2))),
        ),
    )


def values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Any AMQP value: scalars, and lists, maps, arrays and described values of anything."""
    return st.recursive(scalars, _extend, max_leaves=max_leaves)


# --- an independent encoder for any legal encoding --------------------------------------------

Pick = Callable[[Sequence[tuple[int, list[bytes]]]], tuple[int, list[bytes]]]

_FIXED: dict[type, tuple[int, str]] = {
    UByte: (0x50, ">B"),
    UShort: (0x60, ">H"),
    Byte: (0x51, ">b"),
    Short: (0x61, ">h"),
    Float: (0x72, ">f"),
    float: (0x82, ">d"),
    Timestamp: (0x83, ">q"),
}
_RAW: dict[type, int] = {Decimal32: 0x74, Decimal64: 0x84, Decimal128: 0x94}
# type: (wide code, wide format, small code, small range, zero code)
_SIZED: dict[type, tuple[int, str, int, range, int | None]] = {
    UInt: (0x70, ">I", 0x52, range(256), 0x43),
    ULong: (0x80, ">Q", 0x53, range(256), 0x44),
    Int: (0x71, ">i", 0x54, range(-128, 128), None),
    int: (0x81, ">q", 0x55, range(-128, 128), None),
}
_VARIABLE: dict[type, tuple[int, int, Callable[[Any], bytes]]] = {
    bytes: (0xA0, 0xB0, bytes),
    str: (0xA1, 0xB1, lambda s: s.encode("utf-8")),
    Symbol: (0xA3, 0xB3, lambda s: s.encode("ascii")),
}
_COMPOUND: dict[type, tuple[int | None, int, int]] = {
    list: (0x45, 0xC0, 0xD0),
    dict: (None, 0xC1, 0xD1),
    Array: (None, 0xE0, 0xF0),
}


def wide(options: Sequence[tuple[int, list[bytes]]]) -> tuple[int, list[bytes]]:
    """A ``pick`` that always takes the widest legal encoding."""
    return options[0]


def narrowest(options: Sequence[tuple[int, list[bytes]]]) -> tuple[int, list[bytes]]:
    """A ``pick`` that always takes the narrowest legal encoding."""
    return options[-1]


def any_encoding(value: Any, pick: Pick) -> bytes:
    """A legal AMQP encoding of ``value``; ``pick`` chooses among the legal constructors.

    ``pick`` gets the options widest first, each a constructor and the element
    bodies that go with it.
    """
    if isinstance(value, Described):
        return b"\x00" + any_encoding(value.descriptor, pick) + any_encoding(value.value, pick)
    return _elements(type(value), [value], pick)


def _elements(element_type: type, items: list[Any], pick: Pick) -> bytes:
    """A constructor and the bodies of ``items``, all of ``element_type``."""
    code, bodies = pick(_options(element_type, items, pick))
    return bytes((code,)) + b"".join(bodies)


def _options(t: type, items: list[Any], pick: Pick) -> list[tuple[int, list[bytes]]]:
    if t is Long:
        t = int
    if t is tuple:
        t = list
    zero_ok = 0 < len(items) <= MAX_ZERO_WIDTH_COUNT
    if t is NoneType:
        return [(0x40, [])]
    if t is bool:
        options = [(0x56, [b"\x01" if i else b"\x00" for i in items])]
        if zero_ok and all(items):
            options.append((0x41, []))
        if zero_ok and not any(items):
            options.append((0x42, []))
        return options
    if t in _FIXED:
        code, fmt = _FIXED[t]
        return [(code, [struct.pack(fmt, i) for i in items])]
    if t in _RAW:
        return [(_RAW[t], [bytes(i) for i in items])]
    if t is Char:
        return [(0x73, [struct.pack(">I", ord(i)) for i in items])]
    if t is uuid.UUID:
        return [(0x98, [i.bytes for i in items])]
    if t in _SIZED:
        code, fmt, small_code, small, zero_code = _SIZED[t]
        options = [(code, [struct.pack(fmt, i) for i in items])]
        if all(i in small for i in items):
            small_fmt = ">b" if small.start < 0 else ">B"
            options.append((small_code, [struct.pack(small_fmt, i) for i in items]))
        if zero_code is not None and zero_ok and all(i == 0 for i in items):
            options.append((zero_code, []))
        return options
    if t in _VARIABLE:
        code8, code32, to_bytes = _VARIABLE[t]
        datas = [to_bytes(i) for i in items]
        options = [(code32, [struct.pack(">I", len(d)) + d for d in datas])]
        if all(len(d) < 256 for d in datas):
            options.append((code8, [bytes((len(d),)) + d for d in datas]))
        return options
    if t in _COMPOUND:
        code0, code8, code32 = _COMPOUND[t]
        contents = [_contents(t, i, pick) for i in items]
        options = [(code32, [struct.pack(">II", len(c) + 4, n) + c for n, c in contents])]
        if all(len(c) < 255 and n < 256 for n, c in contents):
            options.append((code8, [bytes((len(c) + 1, n)) + c for n, c in contents]))
        if code0 is not None and zero_ok and all(n == 0 for n, _ in contents):
            options.append((code0, []))
        return options
    raise TypeError(f"no AMQP encoding for {t!r}")


def _contents(t: type, item: Any, pick: Pick) -> tuple[int, bytes]:
    """The element count and the bytes after the count of a list, map or array."""
    if t is list:
        return len(item), b"".join(any_encoding(i, pick) for i in item)
    if t is dict:
        return 2 * len(item), b"".join(
            any_encoding(k, pick) + any_encoding(v, pick) for k, v in item.items()
        )
    head = b"" if item.descriptor is None else b"\x00" + any_encoding(item.descriptor, pick)
    return len(item.items), head + _elements(item.element_type, item.items, pick)
