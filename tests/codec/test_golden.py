"""Golden byte vectors for every AMQP 1.0 encoding (``types.xml``), both ways.

``CANONICAL`` pins what the encoder writes (the smallest legal constructor)
and that the decoder reads it back to the same wrapper type.  ``WIDE`` holds
legal encodings the encoder never writes (a wide constructor for a small
value, list32 with one element, sym32, array32, ...) that the decoder must
accept all the same.  A test checks that together they cover every format
code the specification defines.
"""

from __future__ import annotations

import math
import struct
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from petrel import codec
from petrel.codec import decode, decode_from, encode, encode_into
from petrel.codec.constructors import NAMES
from petrel.errors import EncodeError
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

from .amqp_values import assert_same

#: The spec's type definitions, copied into the repository (tests/spec/amqp-1.0).
TYPES_XML = Path(__file__).parents[1] / "spec" / "amqp-1.0" / "types.xml"

U = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
NoneType = type(None)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def hexify(data: bytes) -> str:
    return data.hex(" ")


# (value, canonical encoding)
CANONICAL: list[tuple[str, Any, str]] = [
    # null, boolean
    ("null", None, "40"),
    ("true", True, "41"),
    ("false", False, "42"),
    # ubyte, ushort
    ("ubyte-0", UByte(0), "50 00"),
    ("ubyte-127", UByte(127), "50 7f"),
    ("ubyte-255", UByte(255), "50 ff"),
    ("ushort-0", UShort(0), "60 0000"),
    ("ushort-256", UShort(256), "60 0100"),
    ("ushort-max", UShort(65535), "60 ffff"),
    # uint: uint0, smalluint, uint
    ("uint-0", UInt(0), "43"),
    ("uint-1", UInt(1), "52 01"),
    ("uint-255", UInt(255), "52 ff"),
    ("uint-256", UInt(256), "70 00000100"),
    ("uint-max", UInt(2**32 - 1), "70 ffffffff"),
    # ulong: ulong0, smallulong, ulong
    ("ulong-0", ULong(0), "44"),
    ("ulong-1", ULong(1), "53 01"),
    ("ulong-255", ULong(255), "53 ff"),
    ("ulong-256", ULong(256), "80 0000000000000100"),
    ("ulong-2**32", ULong(2**32), "80 0000000100000000"),
    ("ulong-max", ULong(2**64 - 1), "80 ffffffffffffffff"),
    # byte, short
    ("byte-0", Byte(0), "51 00"),
    ("byte-min", Byte(-128), "51 80"),
    ("byte-max", Byte(127), "51 7f"),
    ("byte--1", Byte(-1), "51 ff"),
    ("short-0", Short(0), "61 0000"),
    ("short-min", Short(-32768), "61 8000"),
    ("short-max", Short(32767), "61 7fff"),
    ("short--1", Short(-1), "61 ffff"),
    # int: smallint, int
    ("int-0", Int(0), "54 00"),
    ("int--1", Int(-1), "54 ff"),
    ("int--128", Int(-128), "54 80"),
    ("int-127", Int(127), "54 7f"),
    ("int-128", Int(128), "71 00000080"),
    ("int--129", Int(-129), "71 ffffff7f"),
    ("int-255", Int(255), "71 000000ff"),
    ("int-max", Int(2**31 - 1), "71 7fffffff"),
    ("int-min", Int(-(2**31)), "71 80000000"),
    # long: smalllong, long (a plain int is a long and decodes as a plain int)
    ("long-0", 0, "55 00"),
    ("long--1", -1, "55 ff"),
    ("long--128", -128, "55 80"),
    ("long-127", 127, "55 7f"),
    ("long-128", 128, "81 0000000000000080"),
    ("long--129", -129, "81 ffffffffffffff7f"),
    ("long-2**32", 2**32, "81 0000000100000000"),
    ("long-max", 2**63 - 1, "81 7fffffffffffffff"),
    ("long-min", -(2**63), "81 8000000000000000"),
    # float, double
    ("float-0", Float(0.0), "72 00000000"),
    ("float--0", Float(-0.0), "72 80000000"),
    ("float-1.5", Float(1.5), "72 3fc00000"),
    ("float-max", Float(3.4028234663852886e38), "72 7f7fffff"),
    ("float-tiny", Float(1.401298464324817e-45), "72 00000001"),
    ("float-inf", Float(math.inf), "72 7f800000"),
    ("float--inf", Float(-math.inf), "72 ff800000"),
    ("float-nan", Float(math.nan), "72 7fc00000"),
    ("double-0", 0.0, "82 0000000000000000"),
    ("double--0", -0.0, "82 8000000000000000"),
    ("double-1.5", 1.5, "82 3ff8000000000000"),
    ("double-0.1", 0.1, "82 3fb999999999999a"),
    ("double-max", 1.7976931348623157e308, "82 7fefffffffffffff"),
    ("double-inf", math.inf, "82 7ff0000000000000"),
    ("double-nan", math.nan, "82 7ff8000000000000"),
    ("double-nan-payload", struct.unpack(">d", h("7ff8000000000123"))[0], "82 7ff8000000000123"),
    # decimal32/64/128: raw IEEE 754-2008 bits
    ("decimal32", Decimal32(h("22500001")), "74 22500001"),
    ("decimal64", Decimal64(h("2238000000000001")), "84 2238000000000001"),
    (
        "decimal128",
        Decimal128(h("22080000000000000000000000000001")),
        "94 22080000000000000000000000000001",
    ),
    # char: UTF-32BE
    ("char-a", Char("a"), "73 00000061"),
    ("char-nul", Char("\x00"), "73 00000000"),
    ("char-e-acute", Char("é"), "73 000000e9"),
    ("char-bmp-max", Char("\uffff"), "73 0000ffff"),
    ("char-emoji", Char("\U0001f600"), "73 0001f600"),
    ("char-max", Char("\U0010ffff"), "73 0010ffff"),
    # timestamp: ms64, always 8 bytes
    ("timestamp-0", Timestamp(0), "83 0000000000000000"),
    ("timestamp-1", Timestamp(1), "83 0000000000000001"),
    ("timestamp-2011", Timestamp(1311704463521), "83 0000013167adb8a1"),
    ("timestamp--1", Timestamp(-1), "83 ffffffffffffffff"),
    ("timestamp-max", Timestamp(2**63 - 1), "83 7fffffffffffffff"),
    # uuid
    ("uuid", U, "98 00112233445566778899aabbccddeeff"),
    ("uuid-nil", uuid.UUID(int=0), "98" + "00" * 16),
    # binary: vbin8, vbin32
    ("binary-empty", b"", "a0 00"),
    ("binary-2", b"\x00\xff", "a0 02 00ff"),
    ("binary-255", b"\xab" * 255, "a0 ff" + "ab" * 255),
    ("binary-256", b"\xab" * 256, "b0 00000100" + "ab" * 256),
    # string: str8-utf8, str32-utf8 (the size counts UTF-8 bytes, not characters)
    ("string-empty", "", "a1 00"),
    ("string-a", "a", "a1 01 61"),
    ("string-e-acute", "é", "a1 02 c3a9"),
    ("string-emoji", "\U0001f600", "a1 04 f09f9880"),
    ("string-nul", "\x00", "a1 01 00"),
    ("string-255", "x" * 255, "a1 ff" + "78" * 255),
    ("string-256", "x" * 256, "b1 00000100" + "78" * 256),
    ("string-128-e-acute", "é" * 128, "b1 00000100" + "c3a9" * 128),
    # symbol: sym8, sym32
    ("symbol-empty", Symbol(""), "a3 00"),
    ("symbol-amqp", Symbol("amqp:accepted:list"), "a3 12 616d71703a61636365707465643a6c697374"),
    ("symbol-255", Symbol("s" * 255), "a3 ff" + "73" * 255),
    ("symbol-256", Symbol("s" * 256), "b3 00000100" + "73" * 256),
    # list: list0, list8, list32
    ("list-empty", [], "45"),
    ("list-null", [None], "c0 02 01 40"),
    ("list-mixed", [1, "a", None], "c0 07 03 55 01 a1 01 61 40"),
    ("list-nested", [[], [[]]], "c0 06 02 45 c0 02 01 45"),
    ("tuple", (UInt(1), True), "c0 04 02 52 01 41"),
    # 254 body bytes is the most list8 holds (its size octet counts the count octet)
    ("list8-largest", [None] * 254, "c0 ff fe" + "40" * 254),
    ("list32-size", [None] * 255, "d0 00000103 000000ff" + "40" * 255),
    ("list32-count", [None] * 256, "d0 00000104 00000100" + "40" * 256),
    ("list32-body", [b"\x01" * 253], "d0 00000103 00000001 a0 fd" + "01" * 253),
    # map: map8, map32 (no map0)
    ("map-empty", {}, "c1 01 00"),
    ("map-1", {"a": 1}, "c1 06 02 a1 01 61 55 01"),
    (
        "map-symbol-keys",
        {Symbol("k"): UInt(0), Symbol("x"): None},
        "c1 09 04 a3 01 6b 43 a3 01 78 40",
    ),
    ("map-any-keys", {None: 1, 1: None}, "c1 07 04 40 55 01 55 01 40"),
    (
        "map32",
        {UInt(i): None for i in range(128)},
        "d1 00000183 00000100"
        + "".join(f"{'43' if i == 0 else f'52 {i:02x}'} 40" for i in range(128)),
    ),
    # described: ulong (smallulong/ulong0/ulong) and symbol (sym8/sym32) descriptors
    ("described-smallulong", Described(ULong(0x70), [None]), "00 53 70 c0 02 01 40"),
    ("described-ulong0", Described(ULong(0), None), "00 44 40"),
    (
        "described-ulong",
        Described(ULong(0x0000_0137_0000_0001), UInt(5)),
        "00 80 0000013700000001 52 05",
    ),
    (
        "described-symbol",
        Described(Symbol("amqp:open:list"), []),
        "00 a3 0e 616d71703a6f70656e3a6c697374 45",
    ),
    ("described-sym32", Described(Symbol("d" * 256), None), "00 b3 00000100" + "64" * 256 + "40"),
    (
        "described-nested",
        Described(ULong(1), Described(ULong(2), "x")),
        "00 53 01 00 53 02 a1 01 78",
    ),
    ("described-int-key", Described(1, Symbol("v")), "00 53 01 a3 01 76"),
    ("described-str-key", Described("k", False), "00 a3 01 6b 42"),
    ("described-in-list", [Described(ULong(0x24), [])], "c0 05 01 00 53 24 45"),
    # array: array8/array32 with every kind of element constructor
    ("array-empty-uint", Array(UInt, []), "e0 02 00 52"),
    ("array-empty-symbol", Array(Symbol, []), "e0 02 00 a3"),
    ("array-null", Array(NoneType, [None, None]), "e0 02 02 40"),
    ("array-bool", Array(bool, [True, False]), "e0 04 02 56 01 00"),
    ("array-true", Array(bool, [True, True, True]), "e0 02 03 41"),
    ("array-false", Array(bool, [False]), "e0 02 01 42"),
    ("array-ubyte", Array(UByte, [UByte(0), UByte(255)]), "e0 04 02 50 00 ff"),
    ("array-ushort", Array(UShort, [UShort(1)]), "e0 04 01 60 0001"),
    ("array-uint0", Array(UInt, [UInt(0), UInt(0)]), "e0 02 02 43"),
    ("array-smalluint", Array(UInt, [UInt(0), UInt(255)]), "e0 04 02 52 00 ff"),
    ("array-uint", Array(UInt, [UInt(1), UInt(256)]), "e0 0a 02 70 00000001 00000100"),
    ("array-ulong0", Array(ULong, [ULong(0)]), "e0 02 01 44"),
    ("array-smallulong", Array(ULong, [ULong(7)]), "e0 03 01 53 07"),
    ("array-ulong", Array(ULong, [ULong(256)]), "e0 0a 01 80 0000000000000100"),
    ("array-byte", Array(Byte, [Byte(-1)]), "e0 03 01 51 ff"),
    ("array-short", Array(Short, [Short(-2)]), "e0 04 01 61 fffe"),
    ("array-smallint", Array(Int, [Int(-128), Int(127)]), "e0 04 02 54 80 7f"),
    ("array-int", Array(Int, [Int(0), Int(128)]), "e0 0a 02 71 00000000 00000080"),
    ("array-smalllong", Array(int, [0, -1]), "e0 04 02 55 00 ff"),
    ("array-long", Array(int, [-129]), "e0 0a 01 81 ffffffffffffff7f"),
    ("array-float", Array(Float, [Float(1.5)]), "e0 06 01 72 3fc00000"),
    ("array-double", Array(float, [1.5]), "e0 0a 01 82 3ff8000000000000"),
    ("array-decimal32", Array(Decimal32, [Decimal32(h("22500001"))]), "e0 06 01 74 22500001"),
    ("array-decimal64", Array(Decimal64, [Decimal64(bytes(8))]), "e0 0a 01 84" + "00" * 8),
    ("array-decimal128", Array(Decimal128, [Decimal128(bytes(16))]), "e0 12 01 94" + "00" * 16),
    ("array-char", Array(Char, [Char("a"), Char("é")]), "e0 0a 02 73 00000061 000000e9"),
    ("array-timestamp", Array(Timestamp, [Timestamp(1)]), "e0 0a 01 83 0000000000000001"),
    ("array-uuid", Array(uuid.UUID, [U]), "e0 12 01 98 00112233445566778899aabbccddeeff"),
    ("array-vbin8", Array(bytes, [b"", b"\x01"]), "e0 05 02 a0 00 01 01"),
    (
        "array-vbin32",
        Array(bytes, [b"", b"\x01" * 256]),
        "f0 0000010d 00000002 b0 00000000 00000100" + "01" * 256,
    ),
    ("array-str8", Array(str, ["a", "é"]), "e0 07 02 a1 01 61 02 c3a9"),
    ("array-str32", Array(str, ["x" * 256]), "f0 00000109 00000001 b1 00000100" + "78" * 256),
    ("array-sym8", Array(Symbol, [Symbol("a"), Symbol("bc")]), "e0 07 02 a3 01 61 02 62 63"),
    (
        "array-sym32",
        Array(Symbol, [Symbol("s" * 256)]),
        "f0 00000109 00000001 b3 00000100" + "73" * 256,
    ),
    ("array-list0", Array(list, [[], []]), "e0 02 02 45"),
    ("array-list8", Array(list, [[1], [None]]), "e0 09 02 c0 03 01 55 01 02 01 40"),
    ("array-list8-with-empty", Array(list, [[], [None]]), "e0 07 02 c0 01 00 02 01 40"),
    (
        "array-list32",
        Array(list, [[None] * 255]),
        "f0 0000010c 00000001 d0 00000103 000000ff" + "40" * 255,
    ),
    ("array-empty-list", Array(list, []), "e0 02 00 c0"),
    ("array-map8", Array(dict, [{}, {"a": None}]), "e0 0a 02 c1 01 00 05 02 a1 01 61 40"),
    (
        "array-map32",
        Array(dict, [{None: b"\x00" * 256}]),
        "f0 00000113 00000001 d1 0000010a 00000002 40 b0 00000100" + "00" * 256,
    ),
    (
        "array-array8",
        Array(Array, [Array(UInt, [UInt(1)]), Array(Symbol, [Symbol("a")])]),
        "e0 0b 02 e0 03 01 52 01 04 01 a3 01 61",
    ),
    (
        "array-array32",
        Array(Array, [Array(str, ["x" * 256])]),
        "f0 00000112 00000001 f0 00000109 00000001 b1 00000100" + "78" * 256,
    ),
    (
        "array-array-array",
        Array(Array, [Array(Array, [Array(NoneType, [None])])]),
        "e0 08 01 e0 05 01 e0 02 01 40",
    ),
    (
        "array-of-described-array",
        Array(Array, [Array(int, [1], descriptor=ULong(9))]),
        "e0 09 01 e0 06 01 00 53 09 55 01",
    ),
    # arrays of a described type: the descriptor precedes the element constructor
    (
        "array-described-ulong",
        Array(Symbol, [Symbol("x")], descriptor=ULong(0x77)),
        "e0 07 01 00 53 77 a3 01 78",
    ),
    (
        "array-described-ulong-wide",
        Array(UInt, [UInt(300)], descriptor=ULong(2**40)),
        "e0 10 01 00 80 0000010000000000 70 0000012c",
    ),
    (
        "array-described-symbol",
        Array(int, [1], descriptor=Symbol("d")),
        "e0 07 01 00 a3 01 64 55 01",
    ),
    ("array-described-empty", Array(list, [], descriptor=Symbol("x")), "e0 06 00 00 a3 01 78 c0"),
    (
        "array-described-list",
        Array(list, [[UInt(1)], []], descriptor=ULong(0x70)),
        "e0 0b 02 00 53 70 c0 03 01 52 01 01 00",
    ),
    (
        "array-256-symbols",
        Array(Symbol, [Symbol("")] * 256),
        "f0 00000105 00000100 a3" + "00" * 256,
    ),
    ("array-of-arrays-in-list", [Array(bool, [])], "c0 05 01 e0 02 00 56"),
]

# Legal encodings the encoder does not write, and what they decode to.
WIDE: list[tuple[str, str, Any]] = [
    ("boolean-false", "56 00", False),
    ("boolean-true", "56 01", True),
    ("uint-0-as-uint", "70 00000000", UInt(0)),
    ("uint-5-as-uint", "70 00000005", UInt(5)),
    ("uint-0-as-smalluint", "52 00", UInt(0)),
    ("ulong-0-as-ulong", "80 0000000000000000", ULong(0)),
    ("ulong-5-as-ulong", "80 0000000000000005", ULong(5)),
    ("ulong-0-as-smallulong", "53 00", ULong(0)),
    ("int-1-as-int", "71 00000001", Int(1)),
    ("int--1-as-int", "71 ffffffff", Int(-1)),
    ("long-1-as-long", "81 0000000000000001", 1),
    ("long--128-as-long", "81 ffffffffffffff80", -128),
    ("vbin32-small", "b0 00000001 ff", b"\xff"),
    ("vbin32-empty", "b0 00000000", b""),
    ("str32-small", "b1 00000002 c3a9", "é"),
    ("str32-empty", "b1 00000000", ""),
    ("sym32-small", "b3 00000004 616d7170", Symbol("amqp")),
    ("sym32-empty", "b3 00000000", Symbol("")),
    ("list8-empty", "c0 01 00", []),
    ("list32-empty", "d0 00000004 00000000", []),
    ("list32-one", "d0 00000005 00000001 40", [None]),
    ("list32-nested", "d0 0000000e 00000001 d0 00000005 00000001 43", [[UInt(0)]]),
    ("map32-empty", "d1 00000004 00000000", {}),
    ("map32-one", "d1 00000008 00000002 a3 01 6b 41", {Symbol("k"): True}),
    ("array32-uint", "f0 00000007 00000002 52 01 02", Array(UInt, [UInt(1), UInt(2)])),
    ("array32-empty", "f0 00000005 00000000 70", Array(UInt, [])),
    ("array8-uint-wide", "e0 06 01 70 00000007", Array(UInt, [UInt(7)])),
    ("array8-ulong-wide", "e0 0a 01 80 0000000000000000", Array(ULong, [ULong(0)])),
    ("array8-smallulong-zero", "e0 03 01 53 00", Array(ULong, [ULong(0)])),
    ("array8-int-wide", "e0 06 01 71 ffffffff", Array(Int, [Int(-1)])),
    ("array8-long-wide", "e0 0a 01 81 0000000000000001", Array(int, [1])),
    ("array8-bool-wide", "e0 04 02 56 01 01", Array(bool, [True, True])),
    ("array8-true-empty", "e0 02 00 41", Array(bool, [])),
    ("array8-uint0-empty", "e0 02 00 43", Array(UInt, [])),
    ("array8-list0-empty", "e0 02 00 45", Array(list, [])),
    ("array8-vbin32", "e0 07 01 b0 00000001 ff", Array(bytes, [b"\xff"])),
    ("array8-str32", "e0 07 01 b1 00000001 61", Array(str, ["a"])),
    ("array8-sym32", "e0 07 01 b3 00000001 61", Array(Symbol, [Symbol("a")])),
    ("array8-list32", "e0 0b 01 d0 00000005 00000001 40", Array(list, [[None]])),
    ("array8-list8-empty", "e0 04 01 c0 01 00", Array(list, [[]])),
    ("array8-map32", "e0 0a 01 d1 00000004 00000000", Array(dict, [{}])),
    (
        "array8-array32",
        "e0 0c 01 f0 00000006 00000001 52 09",
        Array(Array, [Array(UInt, [UInt(9)])]),
    ),
    (
        "array32-described-sym32",
        "f0 00000011 00000001 00 b3 00000001 64 b1 00000001 61",
        Array(str, ["a"], descriptor=Symbol("d")),
    ),
    (
        "array32-described-ulong",
        "f0 00000013 00000001 00 80 0000000000000001 70 00000001",
        Array(UInt, [UInt(1)], descriptor=ULong(1)),
    ),
    ("described-ulong-wide", "00 80 0000000000000010 45", Described(ULong(16), [])),
    ("described-ulong0", "00 44 40", Described(ULong(0), None)),
    ("described-sym32", "00 b3 00000001 61 40", Described(Symbol("a"), None)),
    ("described-value-wide", "00 53 01 d0 00000004 00000000", Described(ULong(1), [])),
    (
        "list8-of-wide-values",
        "c0 0d 03 70 00000001 b3 00000000 56 00",
        [UInt(1), Symbol(""), False],
    ),
]


@pytest.mark.parametrize(
    ("value", "encoded"), [c[1:] for c in CANONICAL], ids=[c[0] for c in CANONICAL]
)
def test_encoder_writes_the_smallest_constructor(value: Any, encoded: str) -> None:
    assert hexify(encode(value)) == hexify(h(encoded))


@pytest.mark.parametrize(
    ("value", "encoded"), [c[1:] for c in CANONICAL], ids=[c[0] for c in CANONICAL]
)
def test_decoder_reads_canonical_bytes_back(value: Any, encoded: str) -> None:
    expected = list(value) if isinstance(value, tuple) else value
    assert_same(decode(h(encoded)), expected)


@pytest.mark.parametrize(("encoded", "value"), [c[1:] for c in WIDE], ids=[c[0] for c in WIDE])
def test_decoder_accepts_wide_encodings(encoded: str, value: Any) -> None:
    assert_same(decode(h(encoded)), value)


@pytest.mark.parametrize(("encoded", "value"), [c[1:] for c in WIDE], ids=[c[0] for c in WIDE])
def test_wide_encodings_reencode_canonically(encoded: str, value: Any) -> None:
    data = h(encoded)
    assert encode(decode(data)) == encode(value)
    assert len(encode(value)) <= len(data)


def _spec_codes() -> dict[int, tuple[str | None, str | None]]:
    root = ET.parse(TYPES_XML).getroot()
    codes = {}
    for type_el in root.iter("{http://www.amqp.org/schema/amqp.xsd}type"):
        for enc in type_el.iter("{http://www.amqp.org/schema/amqp.xsd}encoding"):
            codes[int(enc.get("code", ""), 16)] = (enc.get("name"), type_el.get("name"))
    return codes


def test_constructor_table_matches_the_spec() -> None:
    spec = _spec_codes()
    assert len(spec) == 39
    for code, (encoding, type_name) in spec.items():
        assert NAMES[code] in (encoding, type_name)
    assert set(NAMES) == set(spec) | {0x00}


def test_golden_vectors_cover_every_format_code() -> None:
    """Every format code appears as a value constructor and as an array element constructor."""

    def constructors(data: bytes) -> set[int]:
        return {data[0]} | _inner_codes(data)

    seen: set[int] = set()
    for _, _, encoded in CANONICAL:
        seen |= constructors(h(encoded))
    for _, encoded, _ in WIDE:
        seen |= constructors(h(encoded))
    assert set(_spec_codes()) - seen == set()
    element_codes = {code for code, _, _ in ARRAY_ELEMENTS}
    assert set(_spec_codes()) - element_codes == set()


def _inner_codes(data: bytes) -> set[int]:
    """Constructor bytes inside a value (good enough for the vectors above: walks by decoding)."""
    seen: set[int] = set()

    def walk(off: int) -> int:
        code = data[off]
        seen.add(code)
        if code == 0x00:
            return walk(walk(off + 1))
        _, end = decode_from(data, off)
        if code in (0xC0, 0xC1, 0xD0, 0xD1):
            pos = off + (3 if code < 0xD0 else 9)
            while pos < end:
                pos = walk(pos)
        if code in (0xE0, 0xF0):
            pos = off + (3 if code == 0xE0 else 9)
            if data[pos] == 0x00:
                pos = walk(pos + 1)
            seen.add(data[pos])
        return end

    walk(0)
    return seen


# Every constructor as the element constructor of an array: (code, element bodies, value).
ARRAY_ELEMENTS: list[tuple[int, str, Array]] = [
    (0x40, "", Array(NoneType, [None, None])),
    (0x56, "00 01", Array(bool, [False, True])),
    (0x41, "", Array(bool, [True, True])),
    (0x42, "", Array(bool, [False, False])),
    (0x50, "01 02", Array(UByte, [UByte(1), UByte(2)])),
    (0x60, "0001 0002", Array(UShort, [UShort(1), UShort(2)])),
    (0x70, "00000001 00000002", Array(UInt, [UInt(1), UInt(2)])),
    (0x52, "01 02", Array(UInt, [UInt(1), UInt(2)])),
    (0x43, "", Array(UInt, [UInt(0), UInt(0)])),
    (0x80, "0000000000000001 0000000000000002", Array(ULong, [ULong(1), ULong(2)])),
    (0x53, "01 02", Array(ULong, [ULong(1), ULong(2)])),
    (0x44, "", Array(ULong, [ULong(0), ULong(0)])),
    (0x51, "ff 01", Array(Byte, [Byte(-1), Byte(1)])),
    (0x61, "ffff 0001", Array(Short, [Short(-1), Short(1)])),
    (0x71, "ffffffff 00000001", Array(Int, [Int(-1), Int(1)])),
    (0x54, "ff 01", Array(Int, [Int(-1), Int(1)])),
    (0x81, "ffffffffffffffff 0000000000000001", Array(int, [-1, 1])),
    (0x55, "ff 01", Array(int, [-1, 1])),
    (0x72, "3fc00000 bfc00000", Array(Float, [Float(1.5), Float(-1.5)])),
    (0x82, "3ff8000000000000 bff8000000000000", Array(float, [1.5, -1.5])),
    (0x74, "00000001 00000002", Array(Decimal32, [Decimal32(1), Decimal32(2)])),
    (0x84, "0000000000000001 0000000000000002", Array(Decimal64, [Decimal64(1), Decimal64(2)])),
    (0x94, "00" * 15 + "01" + "00" * 15 + "02", Array(Decimal128, [Decimal128(1), Decimal128(2)])),
    (0x73, "00000061 0001f600", Array(Char, [Char("a"), Char("\U0001f600")])),
    (0x83, "0000000000000001 ffffffffffffffff", Array(Timestamp, [Timestamp(1), Timestamp(-1)])),
    (0x98, "00112233445566778899aabbccddeeff" * 2, Array(uuid.UUID, [U, U])),
    (0xA0, "01 61 00", Array(bytes, [b"a", b""])),
    (0xB0, "00000001 61 00000000", Array(bytes, [b"a", b""])),
    (0xA1, "01 61 00", Array(str, ["a", ""])),
    (0xB1, "00000001 61 00000000", Array(str, ["a", ""])),
    (0xA3, "01 61 00", Array(Symbol, [Symbol("a"), Symbol("")])),
    (0xB3, "00000001 61 00000000", Array(Symbol, [Symbol("a"), Symbol("")])),
    (0x45, "", Array(list, [[], []])),
    (0xC0, "01 00 02 01 40", Array(list, [[], [None]])),
    (0xD0, "00000004 00000000 00000005 00000001 40", Array(list, [[], [None]])),
    (0xC1, "01 00 03 02 40 40", Array(dict, [{}, {None: None}])),
    (0xD1, "00000004 00000000 00000006 00000002 40 40", Array(dict, [{}, {None: None}])),
    (0xE0, "02 00 40 03 01 52 01", Array(Array, [Array(NoneType, []), Array(UInt, [UInt(1)])])),
    (
        0xF0,
        "00000005 00000000 40 00000006 00000001 52 01",
        Array(Array, [Array(NoneType, []), Array(UInt, [UInt(1)])]),
    ),
]


@pytest.mark.parametrize(
    ("code", "bodies", "value"), ARRAY_ELEMENTS, ids=[NAMES[c] for c, _, _ in ARRAY_ELEMENTS]
)
@pytest.mark.parametrize("described", [False, True], ids=["plain", "described"])
def test_every_constructor_heads_an_array(
    code: int, bodies: str, value: Array, described: bool
) -> None:
    head = h("00 a3 01 64") if described else b""
    content = head + bytes((code,)) + h(bodies)
    count = len(value.items)
    expected = Array(value.element_type, value.items, Symbol("d") if described else None)
    array8 = bytes((0xE0, len(content) + 1, count)) + content
    array32 = b"\xf0" + struct.pack(">II", len(content) + 4, count) + content
    assert_same(decode(array8), expected)
    assert_same(decode(array32), expected)


# --- values that cannot be encoded ------------------------------------------------------------

UNENCODABLE: list[tuple[str, Any, str | None]] = [
    ("ubyte-256", UByte(256), "ubyte"),
    ("ubyte--1", UByte(-1), "ubyte"),
    ("ushort-65536", UShort(65536), "cannot encode"),
    ("ushort--1", UShort(-1), "cannot encode"),
    ("uint--1", UInt(-1), "cannot encode"),
    ("uint-2**32", UInt(2**32), "cannot encode"),
    ("ulong--1", ULong(-1), "cannot encode"),
    ("ulong-2**64", ULong(2**64), "cannot encode"),
    ("byte-128", Byte(128), "cannot encode"),
    ("byte--129", Byte(-129), "cannot encode"),
    ("short-32768", Short(32768), "cannot encode"),
    ("short--32769", Short(-32769), "cannot encode"),
    ("int-2**31", Int(2**31), "cannot encode"),
    ("int--2**31-1", Int(-(2**31) - 1), "cannot encode"),
    ("long-2**63", Long(2**63), "cannot encode"),
    ("long--2**63-1", Long(-(2**63) - 1), "cannot encode"),
    ("int-2**63", 2**63, "cannot encode"),
    ("int--2**63-1", -(2**63) - 1, "cannot encode"),
    ("timestamp-2**63", Timestamp(2**63), "cannot encode"),
    ("float-overflow", Float(1e39), "cannot encode"),
    ("symbol-non-ascii", Symbol("café"), "ASCII"),
    ("symbol-surrogate", Symbol("\udc80"), "ASCII"),
    ("string-lone-surrogate", "a\ud800b", "surrogate"),
    ("char-two", Char("ab"), "one code point"),
    ("char-empty", Char(""), "one code point"),
    ("char-lone-surrogate", Char("\ud800"), "surrogate"),
    ("char-low-surrogate", Char("\udfff"), "surrogate"),
    ("object", object(), "no AMQP encoding"),
    ("set", {1}, "no AMQP encoding"),
    ("complex", 1j, "no AMQP encoding"),
    ("described-float-descriptor", Described(1.5, None), "descriptor"),  # type: ignore[arg-type]
    ("described-bool-descriptor", Described(True, None), "descriptor"),
    ("described-bytes-descriptor", Described(b"x", None), "descriptor"),  # type: ignore[arg-type]
    ("described-negative-descriptor", Described(-1, None), "cannot encode"),
    ("described-bad-value", Described(ULong(1), UInt(-1)), "cannot encode"),
    ("list-bad-element", [1, 2, UByte(300)], "cannot encode"),
    ("map-bad-key", {Symbol("é"): 1}, "ASCII"),
    ("map-bad-value", {1: object()}, "no AMQP encoding"),
    ("array-bad-type", Array(object, []), "no AMQP array element type"),
    ("array-uint--1", Array(UInt, [UInt(1), UInt(-1)]), "cannot encode"),
    ("array-ubyte-256", Array(UByte, [256]), "cannot encode"),
    ("array-null-holds-1", Array(NoneType, [None, 1]), "only None"),
    ("array-binary-holds-int", Array(bytes, [5]), "holds bytes"),
    ("array-string-holds-bytes", Array(str, [b"x"]), "holds str"),
    ("array-symbol-non-ascii", Array(Symbol, ["é"]), "ASCII"),
    ("array-string-surrogate", Array(str, ["\ud800"]), "surrogate"),
    ("array-char-surrogate", Array(Char, [Char("a"), Char("\udc00")]), "surrogate"),
    ("array-char-two", Array(Char, ["ab"]), "one code point"),
    ("array-list-holds-dict", Array(list, [{}]), "holds lists"),
    ("array-map-holds-list", Array(dict, [[]]), "holds dicts"),
    ("array-array-holds-list", Array(Array, [[1]]), "holds Array"),
    ("array-uint-holds-float", Array(UInt, [1.0]), "cannot encode"),
    ("array-decimal-wrong-width", Array(Decimal32, [b"\x00"]), "4 bytes"),
    ("array-uuid-holds-str", Array(uuid.UUID, ["x"]), "cannot encode"),
    ("array-bad-descriptor", Array(UInt, [], descriptor=ULong(-1)), "cannot encode"),
    ("array-float-descriptor", Array(UInt, [], descriptor=1.5), "descriptor"),  # type: ignore[arg-type]
    ("nested-bad", [[{1: [Array(Symbol, ["ok", "ü"])]}]], "ASCII"),
]


@pytest.mark.parametrize(
    ("value", "message"), [c[1:] for c in UNENCODABLE], ids=[c[0] for c in UNENCODABLE]
)
def test_unencodable_values_raise_and_leave_the_buffer_alone(
    value: Any, message: str | None
) -> None:
    out = bytearray(b"prefix")
    with pytest.raises(EncodeError, match=message) as info:
        encode_into(out, value)
    assert type(info.value) is EncodeError
    assert out == b"prefix"
    with pytest.raises(EncodeError):
        encode(value)


def test_self_referencing_list_raises_encode_error() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    out = bytearray(b"x")
    with pytest.raises(EncodeError, match="nested too deeply"):
        encode_into(out, loop)
    assert out == b"x"


def test_error_message_for_huge_value_is_short() -> None:
    with pytest.raises(EncodeError) as info:
        encode([UInt(-1)] + [b"x" * 10_000] * 1000)
    assert len(str(info.value)) < 300


def test_encode_into_appends() -> None:
    out = bytearray(b"\x01")
    encode_into(out, UInt(1))
    encode_into(out, Symbol("a"))
    assert out == h("01 52 01 a3 01 61")


def test_binary_like_values_encode_as_binary() -> None:
    assert encode(bytearray(b"ab")) == h("a0 02 6162")
    assert encode(memoryview(b"ab")) == h("a0 02 6162")
    wide_items = memoryview(struct.pack(">2I", 1, 2)).cast("I")
    assert len(wide_items) == 2
    assert encode(wide_items) == h("a0 08") + wide_items.tobytes()
    assert encode(Array(bytes, [bytearray(b"a"), memoryview(b"b")])) == h("e0 06 02 a0 01 61 01 62")


FIXED_TYPES = [str, int, bytes, type(None), bool, float, Symbol, ULong, UInt]


@pytest.mark.parametrize("kind", FIXED_TYPES, ids=lambda k: k.__name__)
def test_the_encodings_of_the_common_types_cannot_be_replaced(kind: type) -> None:
    # encode_value writes these without looking in the table, so replacing one would
    # silently do nothing: it is refused instead.
    with pytest.raises(ValueError, match="fixed"):
        codec.register_encoder(kind, lambda out, value: None)


def test_long_wrapper_and_subclasses_encode_like_their_base() -> None:
    import enum

    class Code(enum.IntEnum):
        A = 300

    class Name(Symbol):
        __slots__ = ()

    assert encode(Long(5)) == encode(5) == h("55 05")
    assert encode(Code.A) == h("81 000000000000012c")
    assert encode(Name("n")) == h("a3 01 6e")
    assert encode(Array(Long, [1])) == encode(Array(int, [1]))
    assert Array(Long, [1]) == Array(int, [1])


def test_zero_width_array_constructors_stop_at_the_decoder_limit() -> None:
    from petrel.codec import MAX_ZERO_WIDTH_COUNT

    at_limit = encode(Array(UInt, [UInt(0)] * MAX_ZERO_WIDTH_COUNT))
    assert at_limit == b"\xf0" + struct.pack(">II", 5, MAX_ZERO_WIDTH_COUNT) + b"\x43"
    over = encode(Array(UInt, [UInt(0)] * (MAX_ZERO_WIDTH_COUNT + 1)))
    assert over[9] == 0x52
    assert decode(over) == Array(UInt, [0] * (MAX_ZERO_WIDTH_COUNT + 1))
    over_bools = encode(Array(bool, [True] * (MAX_ZERO_WIDTH_COUNT + 1)))
    assert over_bools[9] == 0x56
    over_lists = encode(Array(list, [[]] * (MAX_ZERO_WIDTH_COUNT + 1)))
    assert over_lists[9] == 0xC0
