"""Petrel's codec against Qpid Proton's (``proton.Data``) as an oracle, both ways.

- What Petrel encodes, Proton's ``Data.decode`` reads back to the same value.
- What Proton encodes (``Data.put_*`` and ``Data.put_object``), Petrel decodes
  to the same value.

Values cross the boundary through two small converters that walk Proton's
``Data`` tree node by node with the typed ``put_*``/``get_*`` calls, so every
AMQP type is checked exactly.
Proton's decimal32/64 are ints of the raw bits and decimal128 is 16 bytes;
Petrel keeps all three as raw big-endian bytes.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest

proton = pytest.importorskip("proton")

from hypothesis import HealthCheck, given, settings  # noqa: E402

from petrel.codec import decode, encode  # noqa: E402
from petrel.types import (  # noqa: E402
    Array,
    Byte,
    Char,
    Decimal32,
    Decimal64,
    Decimal128,
    Described,
    Float,
    Int,
    Short,
    Symbol,
    Timestamp,
    UByte,
    UInt,
    ULong,
    UShort,
)

from ..codec.amqp_values import SCALARS, assert_same, scalar_arrays, values  # noqa: E402

pytestmark = pytest.mark.interop

Data = proton.Data
NoneType = type(None)

# Petrel type -> (Proton type code, Data.put_* for one value)
_PUT: dict[type, tuple[int, Any]] = {
    NoneType: (Data.NULL, lambda d, v: d.put_null()),
    bool: (Data.BOOL, lambda d, v: d.put_bool(v)),
    UByte: (Data.UBYTE, lambda d, v: d.put_ubyte(int(v))),
    UShort: (Data.USHORT, lambda d, v: d.put_ushort(int(v))),
    UInt: (Data.UINT, lambda d, v: d.put_uint(int(v))),
    ULong: (Data.ULONG, lambda d, v: d.put_ulong(int(v))),
    Byte: (Data.BYTE, lambda d, v: d.put_byte(int(v))),
    Short: (Data.SHORT, lambda d, v: d.put_short(int(v))),
    Int: (Data.INT, lambda d, v: d.put_int(int(v))),
    int: (Data.LONG, lambda d, v: d.put_long(v)),
    Float: (Data.FLOAT, lambda d, v: d.put_float(float(v))),
    float: (Data.DOUBLE, lambda d, v: d.put_double(v)),
    Decimal32: (Data.DECIMAL32, lambda d, v: d.put_decimal32(int.from_bytes(v, "big"))),
    Decimal64: (Data.DECIMAL64, lambda d, v: d.put_decimal64(int.from_bytes(v, "big"))),
    Decimal128: (Data.DECIMAL128, lambda d, v: d.put_decimal128(proton.decimal128(bytes(v)))),
    Char: (Data.CHAR, lambda d, v: d.put_char(str(v))),
    Timestamp: (Data.TIMESTAMP, lambda d, v: d.put_timestamp(int(v))),
    uuid.UUID: (Data.UUID, lambda d, v: d.put_uuid(v)),
    bytes: (Data.BINARY, lambda d, v: d.put_binary(v)),
    str: (Data.STRING, lambda d, v: d.put_string(v)),
    Symbol: (Data.SYMBOL, lambda d, v: d.put_symbol(str(v))),
}
_COMPOUND_CODES = {list: Data.LIST, dict: Data.MAP, Array: Data.ARRAY}
_TYPE_OF_CODE = {code: t for t, (code, _) in _PUT.items()} | {
    code: t for t, code in _COMPOUND_CODES.items()
}


def put(data: Any, value: Any) -> None:
    """Put one Petrel value into a Proton ``Data`` with the matching ``put_*`` calls."""
    t = type(value)
    if t in _PUT:
        _PUT[t][1](data, value)
    elif t is list:
        data.put_list()
        data.enter()
        for item in value:
            put(data, item)
        data.exit()
    elif t is dict:
        data.put_map()
        data.enter()
        for key, item in value.items():
            put(data, key)
            put(data, item)
        data.exit()
    elif t is Described:
        data.put_described()
        data.enter()
        put(data, value.descriptor)
        put(data, value.value)
        data.exit()
    elif t is Array:
        code = _COMPOUND_CODES.get(value.element_type) or _PUT[value.element_type][0]
        data.put_array(value.descriptor is not None, code)
        data.enter()
        if value.descriptor is not None:
            put(data, value.descriptor)
        for item in value.items:
            put(data, item)
        data.exit()
    else:
        raise TypeError(f"no Proton mapping for {t!r}")


def get(data: Any) -> Any:
    """The Petrel value of the Proton ``Data`` node under the cursor."""
    t = data.type()
    if t == Data.NULL:
        return None
    if t == Data.BOOL:
        return bool(data.get_bool())
    if t == Data.UBYTE:
        return UByte(data.get_ubyte())
    if t == Data.USHORT:
        return UShort(data.get_ushort())
    if t == Data.UINT:
        return UInt(data.get_uint())
    if t == Data.ULONG:
        return ULong(data.get_ulong())
    if t == Data.BYTE:
        return Byte(data.get_byte())
    if t == Data.SHORT:
        return Short(data.get_short())
    if t == Data.INT:
        return Int(data.get_int())
    if t == Data.LONG:
        return int(data.get_long())
    if t == Data.FLOAT:
        return Float(data.get_float())
    if t == Data.DOUBLE:
        return float(data.get_double())
    if t == Data.DECIMAL32:
        return Decimal32(int(data.get_decimal32()))
    if t == Data.DECIMAL64:
        return Decimal64(int(data.get_decimal64()))
    if t == Data.DECIMAL128:
        return Decimal128(bytes(data.get_decimal128()))
    if t == Data.CHAR:
        return Char(str(data.get_char()))
    if t == Data.TIMESTAMP:
        return Timestamp(int(data.get_timestamp()))
    if t == Data.UUID:
        return data.get_uuid()
    if t == Data.BINARY:
        return bytes(data.get_binary())
    if t == Data.STRING:
        return str(data.get_string())
    if t == Data.SYMBOL:
        return Symbol(str(data.get_symbol()))
    if t == Data.LIST:
        return _children(data)
    if t == Data.MAP:
        flat = _children(data)
        return dict(zip(flat[::2], flat[1::2], strict=True))
    if t == Data.DESCRIBED:
        descriptor, value = _children(data)
        return Described(descriptor, value)
    if t == Data.ARRAY:
        _, described, element_code = data.get_array()
        children = _children(data)
        descriptor = children.pop(0) if described else None
        return Array(_TYPE_OF_CODE[element_code], children, descriptor)
    raise AssertionError(f"unexpected Proton type {t}")


def _children(data: Any) -> list[Any]:
    data.enter()
    items = []
    while data.next():
        items.append(get(data))
    data.exit()
    return items


def proton_decode(encoded: bytes) -> Any:
    data = Data()
    assert data.decode(encoded) == len(encoded)
    data.rewind()
    assert data.next()
    return get(data)


def proton_encode(value: Any) -> bytes:
    data = Data()
    put(data, value)
    return bytes(data.encode())


def to_proton_object(value: Any) -> Any:
    """The Proton Python object for a Petrel value, for ``Data.put_object``."""
    simple = {
        UByte: proton.ubyte,
        UShort: proton.ushort,
        UInt: proton.uint,
        ULong: proton.ulong,
        Byte: proton.byte,
        Short: proton.short,
        Int: proton.int32,
        Float: proton.float32,
        Char: proton.char,
        Timestamp: proton.timestamp,
        Symbol: proton.symbol,
    }
    t = type(value)
    if t in simple:
        return simple[t](value)
    if t in (Decimal32, Decimal64):
        return (proton.decimal32 if t is Decimal32 else proton.decimal64)(
            int.from_bytes(value, "big")
        )
    if t is Decimal128:
        return proton.decimal128(bytes(value))
    if t is list:
        return [to_proton_object(v) for v in value]
    if t is dict:
        return {to_proton_object(k): to_proton_object(v) for k, v in value.items()}
    if t is Described:
        return proton.Described(to_proton_object(value.descriptor), to_proton_object(value.value))
    if t is Array:
        code = _COMPOUND_CODES.get(value.element_type) or _PUT[value.element_type][0]
        descriptor = (
            proton.UNDESCRIBED if value.descriptor is None else to_proton_object(value.descriptor)
        )
        return proton.Array(descriptor, code, *(to_proton_object(v) for v in value.items))
    return value


# --- a wide, explicit set of values -----------------------------------------------------------

U = uuid.UUID("12345678-9abc-def0-1234-56789abcdef0")

SAMPLES: list[Any] = [
    None,
    True,
    False,
    *[UByte(v) for v in (0, 1, 127, 128, 255)],
    *[UShort(v) for v in (0, 255, 256, 65535)],
    *[UInt(v) for v in (0, 1, 255, 256, 65536, 2**32 - 1)],
    *[ULong(v) for v in (0, 1, 255, 256, 2**32, 2**63, 2**64 - 1)],
    *[Byte(v) for v in (-128, -1, 0, 127)],
    *[Short(v) for v in (-32768, -129, -1, 0, 128, 32767)],
    *[Int(v) for v in (-(2**31), -129, -128, -1, 0, 127, 128, 2**31 - 1)],
    *[-(2**63), -129, -128, -1, 0, 1, 127, 128, 2**32, 2**63 - 1],
    *[Float(v) for v in (0.0, -0.0, 1.5, -2.25, 3.4028234663852886e38, math.inf, -math.inf)],
    Float(1.401298464324817e-45),
    Float(math.nan),
    *[0.0, -0.0, 0.1, -1e300, 5e-324, 1.7976931348623157e308, math.inf, -math.inf, math.nan],
    Decimal32(bytes.fromhex("22500001")),
    Decimal32(b"\xff\xff\xff\xff"),
    Decimal64(bytes.fromhex("2238000000000001")),
    Decimal64(b"\x80" + bytes(7)),
    Decimal128(bytes(range(16))),
    Decimal128(b"\xff" * 16),
    *[Char(c) for c in ("a", "\x00", "é", "\u20ac", "\uffff", "\U0001f600", "\U0010ffff")],
    *[Timestamp(v) for v in (0, 1, -1, 1_700_000_000_000, 2**63 - 1, -(2**63))],
    U,
    uuid.UUID(int=0),
    uuid.UUID(int=2**128 - 1),
    b"",
    b"\x00\xff",
    b"b" * 255,
    b"b" * 256,
    bytes(range(256)) * 40,
    "",
    "ascii",
    "é",
    "naïve café 日本語 \U0001f600",
    "\x00",
    "s" * 255,
    "s" * 256,
    "é" * 128,
    "日本" * 5000,
    Symbol(""),
    Symbol("amqp:accepted:list"),
    Symbol("x" * 256),
    [],
    [None],
    [[], [[]], {}],
    list(range(-200, 200)),
    [Symbol(f"s{i}") for i in range(300)],
    {},
    {"k": "v"},
    {None: None, 1: [1], UInt(2): {"x": b"y"}},
    {f"key-{i}": i for i in range(500)},
    Described(ULong(0x70), [True, UInt(3)]),
    Described(ULong(0), None),
    Described(ULong(2**64 - 1), "max"),
    Described(Symbol("amqp:open:list"), ["container", "host"]),
    Described(Symbol("com.example:x"), {Symbol("k"): Timestamp(5)}),
    Described(Symbol("s" * 300), b"wide symbol descriptor"),
    Described(ULong(1), Described(ULong(2), "nested descriptors")),
    [Described(ULong(0x24), []), Described(ULong(0x25), [])],
    Array(NoneType, []),
    Array(NoneType, [None, None]),
    Array(bool, [True, False, True]),
    Array(bool, [True, True]),
    Array(bool, [False]),
    Array(UByte, [UByte(0), UByte(255)]),
    Array(UShort, [UShort(65535)]),
    Array(UInt, []),
    Array(UInt, [UInt(0), UInt(0), UInt(0)]),
    Array(UInt, [UInt(1), UInt(255)]),
    Array(UInt, [UInt(0), UInt(2**32 - 1)]),
    Array(ULong, [ULong(0)]),
    Array(ULong, [ULong(1), ULong(2**64 - 1)]),
    Array(Byte, [Byte(-128), Byte(127)]),
    Array(Short, [Short(-1)]),
    Array(Int, [Int(-128), Int(127)]),
    Array(Int, [Int(-(2**31)), Int(1)]),
    Array(int, [-1, 0, 1]),
    Array(int, [2**63 - 1]),
    Array(Float, [Float(1.5), Float(math.inf)]),
    Array(float, [0.1, -0.0]),
    Array(Decimal32, [Decimal32(1)]),
    Array(Decimal64, [Decimal64(1)]),
    Array(Decimal128, [Decimal128(1)]),
    Array(Char, [Char("a"), Char("\U0001f600")]),
    Array(Timestamp, [Timestamp(-1), Timestamp(1)]),
    Array(uuid.UUID, [U, uuid.UUID(int=1)]),
    Array(bytes, [b"", b"x" * 300]),
    Array(str, ["a", "é"]),
    Array(str, ["x" * 256]),
    Array(Symbol, [Symbol("amqp:accepted:list"), Symbol("amqp:rejected:list")]),
    Array(Symbol, [Symbol(f"cap-{i}") for i in range(300)]),
    Array(list, [[], []]),
    Array(list, [[1, "a"], [None]]),
    Array(list, [[None] * 300]),
    Array(dict, [{}, {Symbol("k"): 1}]),
    Array(dict, [{"x": b"y" * 300}]),
    Array(Array, [Array(UInt, [UInt(1)]), Array(UInt, [UInt(2)])]),
    Array(Array, [Array(Symbol, [Symbol("a")]), Array(int, [1, 2])]),
    Array(Array, [Array(Array, [Array(NoneType, [None])])]),
    Array(Array, [Array(str, ["x" * 300])]),
    Array(Array, [Array(int, [1], descriptor=ULong(9))]),
    Array(Symbol, [Symbol("x")], descriptor=ULong(0x77)),
    Array(UInt, [UInt(300)], descriptor=ULong(2**40)),
    Array(int, [1], descriptor=Symbol("d")),
    Array(list, [[UInt(1)], []], descriptor=ULong(0x70)),
    Array(str, [], descriptor=Symbol("empty")),
    Array(bool, [True], descriptor=Symbol("x" * 300)),
    [Array(UInt, []), Array(Symbol, [])],
    {Symbol("caps"): Array(Symbol, [Symbol("a")]), "nested": [[[[{"deep": [U]}]]]]},
]


def _id(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 50 else text[:47] + "..."


@pytest.mark.parametrize("value", SAMPLES, ids=_id)
def test_proton_reads_what_petrel_writes(value: Any) -> None:
    assert_same(proton_decode(encode(value)), value)


@pytest.mark.parametrize("value", SAMPLES, ids=_id)
def test_petrel_reads_what_proton_writes(value: Any) -> None:
    assert_same(decode(proton_encode(value)), value)


@pytest.mark.parametrize("value", SAMPLES, ids=_id)
def test_petrel_reads_proton_put_object(value: Any) -> None:
    data = Data()
    data.put_object(to_proton_object(value))
    assert_same(decode(bytes(data.encode())), value)


SCALAR_SAMPLES = [v for v in SAMPLES if not isinstance(v, list | dict | Array | Described)]


@pytest.mark.parametrize("value", SCALAR_SAMPLES, ids=_id)
def test_scalars_encode_byte_for_byte_like_proton(value: Any) -> None:
    """Both pick the smallest constructor for scalars, so the bytes agree exactly."""
    assert encode(value).hex(" ") == proton_encode(value).hex(" ")


def test_petrel_canonical_bytes_are_never_longer_than_protons() -> None:
    for value in SAMPLES:
        assert len(encode(value)) <= len(proton_encode(value)), value


# --- properties -------------------------------------------------------------------------------

INTEROP = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _has_nested_described(value: Any) -> bool:
    """True if a described value somewhere directly describes another described value."""
    if isinstance(value, Described):
        return isinstance(value.value, Described) or _has_nested_described(value.value)
    if isinstance(value, list):
        return any(_has_nested_described(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nested_described(k) or _has_nested_described(v) for k, v in value.items())
    if isinstance(value, Array):
        return any(_has_nested_described(v) for v in value.items)
    return False


@pytest.mark.slow
@INTEROP
@given(values())
def test_any_value_both_ways(value: Any) -> None:
    if not _has_nested_described(value):  # see test_proton_misreads_nested_described
        assert_same(proton_decode(encode(value)), value)
    assert_same(decode(proton_encode(value)), value)


@INTEROP
@given(scalar_arrays(max_size=30))
def test_any_array_both_ways(value: Any) -> None:
    assert_same(proton_decode(encode(value)), value)
    assert_same(decode(proton_encode(value)), value)


NESTED_DESCRIBED = [Described(ULong(0), Described(ULong(0), None)), None]


def test_petrel_reads_nested_described_values() -> None:
    """``00 44 00 44 40``: a described value whose value is described again (legal grammar)."""
    proton_bytes = proton_encode(NESTED_DESCRIBED)
    assert proton_bytes.hex(" ") == "d0 00 00 00 0a 00 00 00 02 00 44 00 44 40 40"
    assert_same(decode(proton_bytes), NESTED_DESCRIBED)
    assert encode(NESTED_DESCRIBED).hex(" ") == "c0 07 02 00 44 00 44 40 40"


@pytest.mark.xfail(
    reason="Proton 0.40's decoder loses the sibling after a described value that is itself "
    "described; it cannot read back its own encoding of this list",
    strict=True,
)
def test_proton_misreads_nested_described() -> None:
    data = Data()
    data.put_object(
        [proton.Described(proton.ulong(0), proton.Described(proton.ulong(0), None)), None]
    )
    assert_same(proton_decode(bytes(data.encode())), NESTED_DESCRIBED)


def test_every_scalar_type_is_mapped() -> None:
    assert set(SCALARS) == set(_PUT)
