"""AMQP 1.0 encoders: one append-encoder per type, dispatched on ``type(value)``.

Every encoder has the shape ``encode_<type>(out: bytearray, value) -> None`` and
appends to ``out``; nothing builds intermediate byte strings beyond what
``struct`` returns.  Each picks the smallest legal constructor for its value.
Compound values (list, map, array) reserve a 32-bit header, write their
elements in place and shrink the header to its 8-bit form when it fits, so an
element is encoded exactly once.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import Any

from ..errors import EncodeError
from ..types import (
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

Encoder = Callable[[bytearray, Any], None]

_B_B = struct.Struct(">BB").pack
_B_b = struct.Struct(">Bb").pack
_B_H = struct.Struct(">BH").pack
_B_h = struct.Struct(">Bh").pack
_B_I = struct.Struct(">BI").pack
_B_i = struct.Struct(">Bi").pack
_B_Q = struct.Struct(">BQ").pack
_B_q = struct.Struct(">Bq").pack
_B_f = struct.Struct(">Bf").pack
_B_d = struct.Struct(">Bd").pack
_PACK_HDR32 = struct.Struct(">BII").pack_into
_PACK_I = struct.Struct(">I").pack

# Pre-built encodings of the small values that dominate real traffic.
_SMALLLONG = [bytes((0x55, i & 0xFF)) for i in range(-128, 128)]
_SMALLINT = [bytes((0x54, i & 0xFF)) for i in range(-128, 128)]
_SMALLULONG = [bytes((0x53, i)) for i in range(256)]
_SMALLUINT = [bytes((0x52, i)) for i in range(256)]
_SMALLULONG[0] = b"\x44"
_SMALLUINT[0] = b"\x43"

# Placeholder for a 32-bit compound header: constructor, size, count.
_HDR32 = bytes(9)


def encode_null(out: bytearray, value: None) -> None:
    out.append(0x40)


def encode_boolean(out: bytearray, value: bool) -> None:
    out.append(0x41 if value else 0x42)


def encode_ubyte(out: bytearray, value: int) -> None:
    out += _B_B(0x50, value)


def encode_ushort(out: bytearray, value: int) -> None:
    out += _B_H(0x60, value)


def encode_uint(out: bytearray, value: int) -> None:
    if 0 <= value < 256:
        out += _SMALLUINT[value]
    else:
        out += _B_I(0x70, value)


def encode_ulong(out: bytearray, value: int) -> None:
    if 0 <= value < 256:
        out += _SMALLULONG[value]
    else:
        out += _B_Q(0x80, value)


def encode_byte(out: bytearray, value: int) -> None:
    out += _B_b(0x51, value)


def encode_short(out: bytearray, value: int) -> None:
    out += _B_h(0x61, value)


def encode_int(out: bytearray, value: int) -> None:
    if -128 <= value < 128:
        out += _SMALLINT[value + 128]
    else:
        out += _B_i(0x71, value)


def encode_long(out: bytearray, value: int) -> None:
    if -128 <= value < 128:
        out += _SMALLLONG[value + 128]
    else:
        out += _B_q(0x81, value)


def encode_float(out: bytearray, value: float) -> None:
    out += _B_f(0x72, value)


def encode_double(out: bytearray, value: float) -> None:
    out += _B_d(0x82, value)


def encode_decimal32(out: bytearray, value: bytes) -> None:
    out.append(0x74)
    out += _check_width(value, 4)


def encode_decimal64(out: bytearray, value: bytes) -> None:
    out.append(0x84)
    out += _check_width(value, 8)


def encode_decimal128(out: bytearray, value: bytes) -> None:
    out.append(0x94)
    out += _check_width(value, 16)


def _check_width(value: bytes, width: int) -> bytes:
    if len(value) != width:
        raise EncodeError(f"a decimal{width * 8} needs {width} bytes, got {len(value)}")
    return value


def encode_char(out: bytearray, value: str) -> None:
    if len(value) != 1:
        raise EncodeError(f"a char holds one code point, got {len(value)}")
    code = ord(value)
    if 0xD800 <= code <= 0xDFFF:
        raise EncodeError(f"a char cannot be a lone surrogate (U+{code:04X})")
    out += _B_I(0x73, code)


def encode_timestamp(out: bytearray, value: int) -> None:
    out += _B_q(0x83, value)


def encode_uuid(out: bytearray, value: uuid.UUID) -> None:
    out.append(0x98)
    out += value.bytes


def encode_binary(out: bytearray, value: bytes | bytearray | memoryview) -> None:
    n = len(value)
    if n < 256:
        out.append(0xA0)
        out.append(n)
    else:
        out += _B_I(0xB0, n)
    out += value


def encode_string(out: bytearray, value: str) -> None:
    data = value.encode("utf-8")
    n = len(data)
    if n < 256:
        out.append(0xA1)
        out.append(n)
    else:
        out += _B_I(0xB1, n)
    out += data


def encode_symbol(out: bytearray, value: str) -> None:
    try:
        data = value.encode("ascii")
    except UnicodeEncodeError:
        raise EncodeError(f"a symbol must be ASCII: {value!r}") from None
    n = len(data)
    if n < 256:
        out.append(0xA3)
        out.append(n)
    else:
        out += _B_I(0xB3, n)
    out += data


def _finish_compound(out: bytearray, start: int, code8: int, code32: int, count: int) -> None:
    """Fill in the 9-byte header reserved at ``start``, shrinking it to 3 bytes if it fits."""
    body = len(out) - start - 9
    if body < 255 and count < 256:
        out[start : start + 9] = bytes((code8, body + 1, count))
    else:
        _PACK_HDR32(out, start, code32, body + 4, count)


def encode_list(out: bytearray, value: list[Any] | tuple[Any, ...]) -> None:
    if not value:
        out.append(0x45)
        return
    start = len(out)
    out += _HDR32
    for item in value:
        _encode_any(out, item)
    _finish_compound(out, start, 0xC0, 0xD0, len(value))


def encode_map(out: bytearray, value: dict[Any, Any]) -> None:
    start = len(out)
    out += _HDR32
    for key, item in value.items():
        _encode_any(out, key)
        _encode_any(out, item)
    _finish_compound(out, start, 0xC1, 0xD1, 2 * len(value))


def encode_described(out: bytearray, value: Described) -> None:
    out.append(0x00)
    _encode_any(out, value.descriptor)
    _encode_any(out, value.value)


def encode_descriptor(out: bytearray, descriptor: int | str) -> None:
    """Write ``0x00`` and a descriptor: a ulong code or a symbol name."""
    out.append(0x00)
    if isinstance(descriptor, str):
        encode_symbol(out, descriptor)
    else:
        encode_ulong(out, descriptor)


# --- arrays ---------------------------------------------------------------------------------
#
# An array writes one constructor and then the bare bodies of its elements.
# ``_ARRAY_WRITERS[element_type](out, items)`` appends that constructor and the
# bodies, choosing the smallest constructor that fits *every* element.


def _fixed_array(code: int, fmt: str) -> Callable[[bytearray, list[Any]], None]:
    def write(out: bytearray, items: list[Any]) -> None:
        out.append(code)
        out += struct.pack(f">{len(items)}{fmt}", *items)

    return write


def _sized_ints(
    code_full: int, fmt: str, code_small: int, small: range, code_zero: int | None
) -> Callable[[bytearray, list[Any]], None]:
    full = _fixed_array(code_full, fmt)
    small_fmt = "b" if small.start < 0 else "B"

    def write(out: bytearray, items: list[Any]) -> None:
        if code_zero is not None and not any(items):
            out.append(code_zero)
        elif all(i in small for i in items):
            out.append(code_small)
            out += struct.pack(f">{len(items)}{small_fmt}", *items)
        else:
            full(out, items)

    return write


def _write_null_array(out: bytearray, items: list[Any]) -> None:
    if any(i is not None for i in items):
        raise EncodeError("an array of null holds only None")
    out.append(0x40)


def _write_bool_array(out: bytearray, items: list[Any]) -> None:
    out.append(0x56)
    out += bytes(1 if i else 0 for i in items)


def _write_fixed_bytes(code: int, width: int) -> Callable[[bytearray, list[Any]], None]:
    def write(out: bytearray, items: list[Any]) -> None:
        out.append(code)
        for item in items:
            out += _check_width(item, width)

    return write


def _write_uuid_array(out: bytearray, items: list[Any]) -> None:
    out.append(0x98)
    for item in items:
        out += item.bytes


def _write_char_array(out: bytearray, items: list[Any]) -> None:
    out.append(0x73)
    for item in items:
        if len(item) != 1:
            raise EncodeError(f"a char holds one code point, got {len(item)}")
        out += _PACK_I(ord(item))


def _variable_array(
    code8: int, code32: int, to_bytes: Callable[[Any], bytes]
) -> Callable[[bytearray, list[Any]], None]:
    def write(out: bytearray, items: list[Any]) -> None:
        datas = [to_bytes(i) for i in items]
        if all(len(d) < 256 for d in datas):
            out.append(code8)
            for d in datas:
                out.append(len(d))
                out += d
        else:
            out.append(code32)
            for d in datas:
                out += _PACK_I(len(d))
                out += d

    return write


def _symbol_bytes(value: str) -> bytes:
    try:
        return value.encode("ascii")
    except UnicodeEncodeError:
        raise EncodeError(f"a symbol must be ASCII: {value!r}") from None


_PACK_BODY32 = struct.Struct(">II").pack_into
_BODY32 = bytes(8)


def _end_body32(out: bytearray, start: int, count: int) -> None:
    """Fill in the size and count reserved at ``start`` for an array element's body."""
    _PACK_BODY32(out, start, len(out) - start - 4, count)


def _write_list_array(out: bytearray, items: list[Any]) -> None:
    out.append(0xD0)
    for item in items:
        start = len(out)
        out += _BODY32
        for element in item:
            _encode_any(out, element)
        _end_body32(out, start, len(item))


def _write_map_array(out: bytearray, items: list[Any]) -> None:
    out.append(0xD1)
    for item in items:
        start = len(out)
        out += _BODY32
        for key, element in item.items():
            _encode_any(out, key)
            _encode_any(out, element)
        _end_body32(out, start, 2 * len(item))


def _write_array_array(out: bytearray, items: list[Any]) -> None:
    out.append(0xF0)
    for item in items:
        if not isinstance(item, Array):
            raise EncodeError(f"an array of arrays holds Array values, got {type(item).__name__}")
        start = len(out)
        out += _BODY32
        _write_array_elements(out, item)
        _end_body32(out, start, len(item.items))


_ARRAY_WRITERS: dict[type, Callable[[bytearray, list[Any]], None]] = {
    type(None): _write_null_array,
    bool: _write_bool_array,
    UByte: _fixed_array(0x50, "B"),
    UShort: _fixed_array(0x60, "H"),
    UInt: _sized_ints(0x70, "I", 0x52, range(256), 0x43),
    ULong: _sized_ints(0x80, "Q", 0x53, range(256), 0x44),
    Byte: _fixed_array(0x51, "b"),
    Short: _fixed_array(0x61, "h"),
    Int: _sized_ints(0x71, "i", 0x54, range(-128, 128), None),
    Long: _sized_ints(0x81, "q", 0x55, range(-128, 128), None),
    int: _sized_ints(0x81, "q", 0x55, range(-128, 128), None),
    Float: _fixed_array(0x72, "f"),
    float: _fixed_array(0x82, "d"),
    Decimal32: _write_fixed_bytes(0x74, 4),
    Decimal64: _write_fixed_bytes(0x84, 8),
    Decimal128: _write_fixed_bytes(0x94, 16),
    Char: _write_char_array,
    Timestamp: _fixed_array(0x83, "q"),
    uuid.UUID: _write_uuid_array,
    bytes: _variable_array(0xA0, 0xB0, bytes),
    str: _variable_array(0xA1, 0xB1, lambda s: s.encode("utf-8")),
    Symbol: _variable_array(0xA3, 0xB3, _symbol_bytes),
    list: _write_list_array,
    dict: _write_map_array,
    Array: _write_array_array,
}


def _write_array_elements(out: bytearray, value: Array) -> None:
    """Write an array's element constructor (with descriptor) and element bodies."""
    writer = _ARRAY_WRITERS.get(value.element_type)
    if writer is None:
        raise EncodeError(f"no AMQP array element type for {value.element_type!r}")
    if value.descriptor is not None:
        encode_descriptor(out, value.descriptor)
    writer(out, value.items)


def encode_array(out: bytearray, value: Array) -> None:
    start = len(out)
    out += _HDR32
    _write_array_elements(out, value)
    _finish_compound(out, start, 0xE0, 0xF0, len(value.items))


# --- dispatch -------------------------------------------------------------------------------

ENCODERS: dict[type, Encoder] = {
    type(None): encode_null,
    bool: encode_boolean,
    int: encode_long,
    float: encode_double,
    str: encode_string,
    bytes: encode_binary,
    bytearray: encode_binary,
    memoryview: encode_binary,
    uuid.UUID: encode_uuid,
    list: encode_list,
    tuple: encode_list,
    dict: encode_map,
    UByte: encode_ubyte,
    UShort: encode_ushort,
    UInt: encode_uint,
    ULong: encode_ulong,
    Byte: encode_byte,
    Short: encode_short,
    Int: encode_int,
    Long: encode_long,
    Float: encode_float,
    Decimal32: encode_decimal32,
    Decimal64: encode_decimal64,
    Decimal128: encode_decimal128,
    Char: encode_char,
    Timestamp: encode_timestamp,
    Symbol: encode_symbol,
    Described: encode_described,
    Array: encode_array,
}


def register_encoder(cls: type, encoder: Encoder) -> None:
    """Teach the codec to encode instances of ``cls`` (the spec layer uses this)."""
    ENCODERS[cls] = encoder


def _lookup_encoder(cls: type) -> Encoder:
    """Find the encoder of a subclass (an ``IntEnum``, a ``Symbol`` subclass, ...)."""
    for base in cls.__mro__[1:]:
        encoder = ENCODERS.get(base)
        if encoder is not None:
            ENCODERS[cls] = encoder
            return encoder
    raise EncodeError(f"no AMQP encoding for values of type {cls.__module__}.{cls.__qualname__}")


def _encode_any(out: bytearray, value: Any) -> None:
    encoder = ENCODERS.get(type(value))
    if encoder is None:
        encoder = _lookup_encoder(type(value))
    encoder(out, value)


def encode_into(out: bytearray, value: Any) -> None:
    """Append the AMQP encoding of ``value`` to ``out``.

    Raises :class:`~petrel.errors.EncodeError` when the value has no AMQP
    encoding or does not fit its type (a ``UInt`` of -1, a non-ASCII symbol).
    """
    start = len(out)
    try:
        _encode_any(out, value)
    except EncodeError:
        del out[start:]
        raise
    except (struct.error, OverflowError, UnicodeEncodeError, TypeError, AttributeError) as exc:
        del out[start:]
        raise EncodeError(f"cannot encode {_short_repr(value)}: {exc}") from None


def encode(value: Any) -> bytes:
    """The AMQP encoding of one value, as bytes."""
    out = bytearray()
    encode_into(out, value)
    return bytes(out)


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
