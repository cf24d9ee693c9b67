"""The typed AMQP wrappers in :mod:`petrel.types`: they behave like their Python base types."""

from __future__ import annotations

import datetime as dt
import math
import pickle
import uuid
from typing import Any

import pytest

from petrel import types
from petrel.codec import decode, encode
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

INT_WRAPPERS = [UByte, UShort, UInt, ULong, Byte, Short, Int, Long, Timestamp]


def test_public_names() -> None:
    assert sorted(types.__all__) == sorted(
        [
            "Array",
            "Byte",
            "Char",
            "Decimal32",
            "Decimal64",
            "Decimal128",
            "Described",
            "Float",
            "Int",
            "Long",
            "Short",
            "Symbol",
            "Timestamp",
            "UByte",
            "UInt",
            "ULong",
            "UShort",
        ]
    )


@pytest.mark.parametrize("cls", INT_WRAPPERS, ids=lambda c: c.__name__)
def test_int_wrappers_are_ints(cls: type[int]) -> None:
    value = cls(5)
    assert isinstance(value, int)
    assert value == 5
    assert hash(value) == hash(5)
    assert value + 1 == 6
    assert type(value + 1) is int  # arithmetic gives plain ints; the wrapper marks a wire type
    assert repr(value) == f"{cls.__name__}(5)"
    assert str(value) == "5"
    assert {value: "x"}[5] == "x"
    assert pickle.loads(pickle.dumps(value)) == value
    assert type(pickle.loads(pickle.dumps(value))) is cls
    assert not hasattr(value, "__dict__")


@pytest.mark.parametrize("cls", INT_WRAPPERS, ids=lambda c: c.__name__)
def test_int_wrappers_are_not_range_checked_until_encoded(cls: type[int]) -> None:
    huge = cls(2**70)
    assert huge == 2**70
    with pytest.raises(ValueError):  # EncodeError is a ValueError
        encode(huge)


def test_float_is_binary32() -> None:
    value = Float(1.5)
    assert isinstance(value, float)
    assert value == 1.5
    assert repr(value) == "Float(1.5)"
    assert repr(Float(math.inf)) == "Float(inf)"
    assert str(value) == f"{value}" == "1.5"
    assert type(decode(encode(Float(0.1)))) is Float
    # a double that binary32 cannot hold is rounded on the wire
    assert decode(encode(Float(0.1))) == Float(0.10000000149011612)
    assert decode(encode(0.1)) == 0.1
    assert not hasattr(value, "__dict__")


def test_symbol_and_char_are_strs() -> None:
    sym = Symbol("amqp:accepted:list")
    assert isinstance(sym, str)
    assert sym == "amqp:accepted:list"
    assert hash(sym) == hash("amqp:accepted:list")
    assert repr(sym) == "Symbol('amqp:accepted:list')"
    assert sym.startswith("amqp:")
    char = Char("é")
    assert isinstance(char, str)
    assert repr(char) == "Char('é')"
    assert not hasattr(sym, "__dict__")
    assert not hasattr(char, "__dict__")


def test_symbol_and_string_differ_on_the_wire_only() -> None:
    assert Symbol("a") == "a"
    assert encode(Symbol("a")) != encode("a")
    assert type(decode(encode(Symbol("a")))) is Symbol
    assert type(decode(encode("a"))) is str


@pytest.mark.parametrize(
    ("cls", "width"), [(Decimal32, 4), (Decimal64, 8), (Decimal128, 16)], ids=["32", "64", "128"]
)
def test_decimals_are_raw_bits(cls: Any, width: int) -> None:
    raw = bytes(range(1, width + 1))
    value = cls(raw)
    assert isinstance(value, bytes)
    assert value == raw
    assert cls(bytearray(raw)) == raw
    assert cls(int.from_bytes(raw, "big")) == raw
    assert cls(0) == bytes(width)
    assert cls(2 ** (8 * width) - 1) == b"\xff" * width
    assert repr(value) == f"{cls.__name__}(0x{raw.hex()})"
    assert width == cls.WIDTH
    for bad in (raw[:-1], raw + b"\x00", b""):
        with pytest.raises(ValueError, match=f"exactly {width} bytes"):
            cls(bad)
    for bad_int in (-1, 2 ** (8 * width)):
        with pytest.raises(ValueError, match=f"fit {width} unsigned bytes"):
            cls(bad_int)
    assert type(decode(encode(value))) is cls


def test_decimal_types_are_distinct() -> None:
    assert encode(Decimal32(1))[0] == 0x74
    assert encode(Decimal64(1))[0] == 0x84
    assert encode(Decimal128(1))[0] == 0x94
    assert encode(b"\x00\x00\x00\x01")[0] == 0xA0


def test_timestamp_conversions() -> None:
    when = dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    stamp = Timestamp.from_datetime(when)
    assert stamp == 1704164645678
    assert type(stamp) is Timestamp
    assert stamp.to_datetime() == when
    assert Timestamp.from_datetime(when.replace(tzinfo=None)) == stamp  # naive is UTC
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert Timestamp.from_datetime(when.astimezone(plus_two)) == stamp
    assert Timestamp.from_seconds(1.5) == 1500
    assert type(Timestamp.from_seconds(0)) is Timestamp
    before_epoch = dt.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC)
    assert Timestamp(-1).to_datetime() == before_epoch
    assert Timestamp.from_datetime(before_epoch + dt.timedelta(microseconds=500)) == -1


def test_described() -> None:
    value = Described(0x70, [None])
    assert type(value.descriptor) is ULong  # plain ints become ulong descriptors
    assert type(Described("amqp:x", None).descriptor) is Symbol  # plain strs become symbols
    assert repr(value) == "Described(ULong(112), [None])"
    assert value == Described(ULong(0x70), [None])
    assert value != Described(ULong(0x70), [1])
    assert value != Described(ULong(0x71), [None])
    # a symbol and a ulong descriptor never match, even when Python would compare them
    assert Described(Symbol("1"), None) != Described(ULong(1), None)
    assert value != [None]
    assert (value == 5) is False
    assert not hasattr(value, "__dict__")


def test_described_is_hashable_even_over_lists() -> None:
    a = Described(ULong(1), [1, {"k": [2]}])
    b = Described(ULong(1), [1, {"k": [2]}])
    assert hash(a) == hash(b)
    assert {a: 1}[b] == 1
    assert decode(encode({a: "v"})) == {a: "v"}


def test_array() -> None:
    value = Array(Symbol, ["a", "b"])
    assert len(value) == 2
    assert list(value) == ["a", "b"]
    assert value[1] == "b"
    assert value.descriptor is None
    assert repr(value) == "Array(Symbol, ['a', 'b'])"
    described = Array(UInt, [1], descriptor=0x10)
    assert type(described.descriptor) is ULong
    assert repr(described) == "Array(UInt, [1], descriptor=ULong(16))"
    assert type(Array(UInt, [], descriptor="d").descriptor) is Symbol
    assert Array(UInt, iter([1, 2])).items == [1, 2]  # any iterable
    assert not hasattr(value, "__dict__")


def test_array_equality() -> None:
    assert Array(UInt, [1]) == Array(UInt, [1])
    assert Array(UInt, [1]) != Array(ULong, [1])
    assert Array(UInt, [1]) != Array(UInt, [2])
    assert Array(UInt, [1], descriptor=1) != Array(UInt, [1])
    assert Array(UInt, [1], descriptor=1) != Array(UInt, [1], descriptor="1")
    assert Array(UInt, [1], descriptor=1) == Array(UInt, [1], descriptor=ULong(1))
    assert Array(Long, [1]) == Array(int, [1])  # Long is the type a decoded long array reports
    assert Array(Long, [1]).element_type is int
    assert Array(UInt, [1]) != [1]
    assert hash(Array(UInt, [1])) == hash(Array(UInt, [1]))
    assert hash(Array(list, [[1, 2]])) == hash(Array(list, [[1, 2]]))
    assert hash(Array(dict, [{1: [2]}])) == hash(Array(dict, [{1: [2]}]))


def test_wrappers_decode_as_themselves() -> None:
    samples = [
        UByte(1),
        UShort(1),
        UInt(1),
        ULong(1),
        Byte(1),
        Short(1),
        Int(1),
        Float(1.0),
        Timestamp(1),
        Char("x"),
        Symbol("x"),
        Decimal32(1),
        Decimal64(1),
        Decimal128(1),
    ]
    for sample in samples:
        assert type(decode(encode(sample))) is type(sample)
    # the natural Python types decode as themselves; Long is simply a long
    for plain in (None, True, 1, 1.0, "x", b"x", uuid.UUID(int=1), [1], {1: 2}):
        assert type(decode(encode(plain))) is type(plain)
    assert type(decode(encode(Long(1)))) is int
