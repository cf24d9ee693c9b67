"""AMQP 1.0 encoders: one append-encoder per type, dispatched on ``type(value)``.

Every encoder has the shape ``encode_<type>(out: bytearray, value) -> None`` and
appends to ``out``; nothing builds intermediate byte strings beyond what
``struct`` returns.  Each picks the smallest legal constructor for its value.
Compound values (list, map, array) write an 8-bit header, their elements in
place after it, and then fill in its size and count, widening it to the
32-bit form only when they do not fit; so an element is encoded exactly once.
"""

from __future__ import annotations

import itertools
import reprlib
import struct
import uuid
from collections.abc import Callable
from typing import Any, Final

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
from .limits import MAX_ZERO_WIDTH_COUNT

Encoder = Callable[[bytearray, Any], None]

_B_B: Final = struct.Struct(">BB").pack
_B_b: Final = struct.Struct(">Bb").pack
_B_H: Final = struct.Struct(">BH").pack
_B_h: Final = struct.Struct(">Bh").pack
_B_I: Final = struct.Struct(">BI").pack
_B_i: Final = struct.Struct(">Bi").pack
_B_Q: Final = struct.Struct(">BQ").pack
_B_q: Final = struct.Struct(">Bq").pack
_B_f: Final = struct.Struct(">Bf").pack
_B_d: Final = struct.Struct(">Bd").pack
_B_I_I: Final = struct.Struct(">BII").pack
_PACK_I: Final = struct.Struct(">I").pack

# Pre-built encodings of the small values that dominate real traffic.
_SMALLLONG: Final = [bytes((0x55, i & 0xFF)) for i in range(-128, 128)]
_SMALLINT: Final = [bytes((0x54, i & 0xFF)) for i in range(-128, 128)]
_SMALLULONG: Final = [bytes((0x53, i)) for i in range(256)]
_SMALLUINT: Final = [bytes((0x52, i)) for i in range(256)]
_SMALLULONG[0] = b"\x44"
_SMALLUINT[0] = b"\x43"

# The 8-bit compound headers (constructor, size, count), size and count filled in last.
_LIST8: Final = b"\xc0\x00\x00"
_MAP8: Final = b"\xc1\x00\x00"
_ARRAY8: Final = b"\xe0\x00\x00"


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
    out += _B_I(0x73, _char_code(value))


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


def encode_memoryview(out: bytearray, value: memoryview) -> None:
    # ``len`` of a memoryview counts items, not bytes; send its bytes.
    encode_binary(out, value.cast("B") if value.itemsize != 1 or value.ndim != 1 else value)


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


def _finish_compound(out: bytearray, start: int, code32: int, count: int) -> None:
    """Fill in the 8-bit header written at ``start``, or widen it to the 32-bit one
    (constructor ``code32``) when the body or the count does not fit."""
    body = len(out) - start - 3
    if body < 255 and count < 256:
        out[start + 1] = body + 1
        out[start + 2] = count
    else:
        out[start : start + 3] = _B_I_I(code32, body + 4, count)


def encode_list(out: bytearray, value: list[Any] | tuple[Any, ...]) -> None:
    """Append ``value`` as an AMQP list (``list0``, ``list8`` or ``list32``)."""
    if not value:
        out.append(0x45)
        return
    start = len(out)
    out += _LIST8
    for item in value:
        encode_value(out, item)
    _finish_compound(out, start, 0xD0, len(value))


def encode_map(out: bytearray, value: dict[Any, Any]) -> None:
    """Append ``value`` as an AMQP map (``map8`` or ``map32``), keys and values encoded
    by their Python types."""
    start = len(out)
    out += _MAP8
    for key, item in value.items():
        encode_value(out, key)
        encode_value(out, item)
    _finish_compound(out, start, 0xD1, 2 * len(value))


def encode_described(out: bytearray, value: Described) -> None:
    encode_descriptor(out, value.descriptor)
    encode_value(out, value.value)


def encode_descriptor(out: bytearray, descriptor: object) -> None:
    """Write ``0x00`` and a descriptor: a ulong code or a symbol name.

    The spec reserves every other descriptor type (part 1.5), and Petrel's
    decoder refuses them, so they are refused here too.  ``descriptor`` is
    typed ``object`` because this function is the check: a compiled build
    enforces annotations, and ``int | str`` would refuse a float before the
    precise error below could name it.
    """
    out.append(0x00)
    if isinstance(descriptor, str):
        encode_symbol(out, descriptor)
    elif isinstance(descriptor, int) and not isinstance(descriptor, bool):
        encode_ulong(out, descriptor)
    else:
        raise EncodeError(
            f"a descriptor must be a ulong or a symbol, got {type(descriptor).__name__}"
        )


# --- arrays ---------------------------------------------------------------------------------
#
# An array writes one element constructor and then the bare bodies of its
# elements.  ``_ARRAY_WRITERS[element_type](out, items)`` appends that
# constructor and the bodies, choosing the smallest constructor that fits
# *every* element:
#
# - a zero-width constructor (true, false, uint0, ulong0, list0) when every
#   element is that one value, the array is not empty and it holds no more than
#   ``MAX_ZERO_WIDTH_COUNT`` elements (the most a decoder is bound to accept);
# - else the narrow form (smalluint, smallint, str8, sym8, vbin8, list8, map8,
#   array8) when every element fits it, which an empty array always does;
# - else the wide form.

ArrayWriter = Callable[[bytearray, list[Any]], None]

_PACK_BODY32: Final = struct.Struct(">II").pack_into
_UNPACK_BODY32: Final = struct.Struct(">II").unpack_from
_BODY32: Final = bytes(8)


def _fixed_array(code: int, fmt: str) -> ArrayWriter:
    def write(out: bytearray, items: list[Any]) -> None:
        out.append(code)
        out += struct.pack(f">{len(items)}{fmt}", *items)

    return write


def _all_zero(items: list[Any]) -> bool:
    return all(i == 0 and isinstance(i, int) for i in items)


def _sized_ints(
    code_full: int, fmt: str, code_small: int, small_fmt: str, code_zero: int | None
) -> ArrayWriter:
    pack_full = _fixed_array(code_full, fmt)

    def write(out: bytearray, items: list[Any]) -> None:
        n = len(items)
        if code_zero is not None and 0 < n <= MAX_ZERO_WIDTH_COUNT and _all_zero(items):
            out.append(code_zero)
            return
        try:
            body = struct.pack(f">{n}{small_fmt}", *items)
        except struct.error:
            pack_full(out, items)
        else:
            out.append(code_small)
            out += body

    return write


def _write_null_array(out: bytearray, items: list[Any]) -> None:
    if any(i is not None for i in items):
        raise EncodeError("an array of null holds only None")
    out.append(0x40)


def _write_bool_array(out: bytearray, items: list[Any]) -> None:
    if 0 < len(items) <= MAX_ZERO_WIDTH_COUNT:
        if all(items):
            out.append(0x41)
            return
        if not any(items):
            out.append(0x42)
            return
    out.append(0x56)
    out += bytes(1 if i else 0 for i in items)


def _write_fixed_bytes(code: int, width: int) -> ArrayWriter:
    def write(out: bytearray, items: list[Any]) -> None:
        out.append(code)
        for item in items:
            out += _check_width(item, width)

    return write


def _write_uuid_array(out: bytearray, items: list[Any]) -> None:
    out.append(0x98)
    for item in items:
        out += item.bytes


def _char_code(value: str) -> int:
    if len(value) != 1:
        raise EncodeError(f"a char holds one code point, got {len(value)}")
    code = ord(value)
    if 0xD800 <= code <= 0xDFFF:
        raise EncodeError(f"a char cannot be a lone surrogate (U+{code:04X})")
    return code


def _write_char_array(out: bytearray, items: list[Any]) -> None:
    out.append(0x73)
    out += struct.pack(f">{len(items)}I", *[_char_code(i) for i in items])


def _variable_array(code8: int, code32: int, to_bytes: Callable[[Any], bytes]) -> ArrayWriter:
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


def _binary_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, memoryview):
        return value.tobytes()
    raise EncodeError(f"an array of binary holds bytes, got {type(value).__name__}")


def _string_bytes(value: Any) -> bytes:
    if not isinstance(value, str):
        raise EncodeError(f"an array of string holds str, got {type(value).__name__}")
    return value.encode("utf-8")


def _symbol_bytes(value: Any) -> bytes:
    if not isinstance(value, str):
        raise EncodeError(f"an array of symbol holds str, got {type(value).__name__}")
    try:
        return value.encode("ascii")
    except UnicodeEncodeError:
        raise EncodeError(f"a symbol must be ASCII: {value!r}") from None


def _list_body(out: bytearray, item: Any) -> int:
    if not isinstance(item, list | tuple):
        raise EncodeError(f"an array of list holds lists, got {type(item).__name__}")
    for element in item:
        encode_value(out, element)
    return len(item)


def _map_body(out: bytearray, item: Any) -> int:
    if not isinstance(item, dict):
        raise EncodeError(f"an array of map holds dicts, got {type(item).__name__}")
    for key, element in item.items():
        encode_value(out, key)
        encode_value(out, element)
    return 2 * len(item)


def _array_body(out: bytearray, item: Any) -> int:
    if not isinstance(item, Array):
        raise EncodeError(f"an array of arrays holds Array values, got {type(item).__name__}")
    _write_array_elements(out, item)
    return len(item.items)


def _compound_array(
    code0: int | None, code8: int, code32: int, write_body: Callable[[bytearray, Any], int]
) -> ArrayWriter:
    """An array of lists, maps or arrays: each element a size, a count and its contents.

    Every element is written in the 32-bit form first, then, if all of them
    fit, the run is rewritten once in the 8-bit form (or dropped for list0).
    """

    def write(out: bytearray, items: list[Any]) -> None:
        ctor_at = len(out)
        out.append(code32)
        starts: list[int] = []
        narrow = True
        empty = True
        for item in items:
            start = len(out)
            starts.append(start)
            out += _BODY32
            count = write_body(out, item)
            size = len(out) - start - 4
            _PACK_BODY32(out, start, size, count)
            # 8-bit form: size octet = count octet + contents, at most 255.
            if size - 4 > 254 or count > 255:
                narrow = False
            if count:
                empty = False
        if code0 is not None and empty and 0 < len(items) <= MAX_ZERO_WIDTH_COUNT:
            out[ctor_at] = code0
            del out[ctor_at + 1 :]
        elif narrow:
            out[ctor_at] = code8
            if starts:
                starts.append(len(out))
                narrowed = bytearray()
                for start, end in itertools.pairwise(starts):
                    size, count = _UNPACK_BODY32(out, start)
                    narrowed.append(size - 3)
                    narrowed.append(count)
                    narrowed += out[start + 8 : end]
                out[ctor_at + 1 :] = narrowed

    return write


_ARRAY_WRITERS: Final[dict[type, ArrayWriter]] = {
    type(None): _write_null_array,
    bool: _write_bool_array,
    UByte: _fixed_array(0x50, "B"),
    UShort: _fixed_array(0x60, "H"),
    UInt: _sized_ints(0x70, "I", 0x52, "B", 0x43),
    ULong: _sized_ints(0x80, "Q", 0x53, "B", 0x44),
    Byte: _fixed_array(0x51, "b"),
    Short: _fixed_array(0x61, "h"),
    Int: _sized_ints(0x71, "i", 0x54, "b", None),
    int: _sized_ints(0x81, "q", 0x55, "b", None),
    Float: _fixed_array(0x72, "f"),
    float: _fixed_array(0x82, "d"),
    Decimal32: _write_fixed_bytes(0x74, 4),
    Decimal64: _write_fixed_bytes(0x84, 8),
    Decimal128: _write_fixed_bytes(0x94, 16),
    Char: _write_char_array,
    Timestamp: _fixed_array(0x83, "q"),
    uuid.UUID: _write_uuid_array,
    bytes: _variable_array(0xA0, 0xB0, _binary_bytes),
    str: _variable_array(0xA1, 0xB1, _string_bytes),
    Symbol: _variable_array(0xA3, 0xB3, _symbol_bytes),
    list: _compound_array(0x45, 0xC0, 0xD0, _list_body),
    dict: _compound_array(None, 0xC1, 0xD1, _map_body),
    Array: _compound_array(None, 0xE0, 0xF0, _array_body),
}
_ARRAY_WRITERS[Long] = _ARRAY_WRITERS[int]


def _write_array_elements(out: bytearray, value: Array) -> None:
    """Write an array's element constructor (with descriptor) and element bodies."""
    writer = _ARRAY_WRITERS.get(value.element_type)
    if writer is None:
        raise EncodeError(f"no AMQP array element type for {value.element_type!r}")
    if value.descriptor is not None:
        encode_descriptor(out, value.descriptor)
    writer(out, value.items)


def encode_array(out: bytearray, value: Array) -> None:
    """Append ``value`` as an AMQP array of its element type (``array8`` or ``array32``)."""
    start = len(out)
    out += _ARRAY8
    _write_array_elements(out, value)
    _finish_compound(out, start, 0xF0, len(value.items))


# --- dispatch -------------------------------------------------------------------------------

#: The encoder of each Python type (exact type first; see :func:`register_encoder`).
ENCODERS: Final[dict[type, Encoder]] = {
    type(None): encode_null,
    bool: encode_boolean,
    int: encode_long,
    float: encode_double,
    str: encode_string,
    bytes: encode_binary,
    bytearray: encode_binary,
    memoryview: encode_memoryview,
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


#: The encoder of each primitive AMQP type, by the spec's type name (``"uint"``, ``"symbol"``,
#: ...): the encoders composite types use for their fields.
ENCODERS_BY_NAME: Final[dict[str, Encoder]] = {
    "null": encode_null,
    "boolean": encode_boolean,
    "ubyte": encode_ubyte,
    "ushort": encode_ushort,
    "uint": encode_uint,
    "ulong": encode_ulong,
    "byte": encode_byte,
    "short": encode_short,
    "int": encode_int,
    "long": encode_long,
    "float": encode_float,
    "double": encode_double,
    "decimal32": encode_decimal32,
    "decimal64": encode_decimal64,
    "decimal128": encode_decimal128,
    "char": encode_char,
    "timestamp": encode_timestamp,
    "uuid": encode_uuid,
    "binary": encode_binary,
    "string": encode_string,
    "symbol": encode_symbol,
    "list": encode_list,
    "map": encode_map,
}


#: The types :func:`encode_value` encodes without the table, the ones that fill
#: messages and frames: their encoding is fixed, :func:`register_encoder` refuses them.
_FIXED_TYPES: Final[frozenset[type]] = frozenset(
    (str, int, bytes, type(None), bool, float, Symbol, ULong, UInt)
)


def register_encoder(cls: type, encoder: Encoder) -> None:
    """Teach the codec to encode instances of ``cls`` (the spec layer uses this)."""
    if cls in _FIXED_TYPES:
        raise ValueError(f"the AMQP encoding of {cls.__name__} is fixed")
    ENCODERS[cls] = encoder


def _lookup_encoder(cls: type) -> Encoder:
    """Find the encoder of a subclass (an ``IntEnum``, a ``Symbol`` subclass, ...)."""
    for base in cls.__mro__[1:]:
        encoder = ENCODERS.get(base)
        if encoder is not None:
            ENCODERS[cls] = encoder
            return encoder
    raise EncodeError(f"no AMQP encoding for values of type {cls.__module__}.{cls.__qualname__}")


def encode_value(out: bytearray, value: Any) -> None:
    """Append the encoding of ``value`` to ``out`` with no clean-up on failure: the inner
    call of :func:`encode_into`, for encoders that nest values and handle errors once
    at the top."""
    # The common scalar types by name (compiled, a direct call), the rest through the table.
    kind = type(value)
    if kind is str:
        encode_string(out, value)
        return
    if kind is int:
        encode_long(out, value)
        return
    if kind is bytes:
        encode_binary(out, value)
        return
    if value is None:
        out.append(0x40)
        return
    if kind is bool:
        out.append(0x41 if value else 0x42)
        return
    if kind is float:
        encode_double(out, value)
        return
    if kind is Symbol:
        encode_symbol(out, value)
        return
    if kind is ULong:
        encode_ulong(out, value)
        return
    if kind is UInt:
        encode_uint(out, value)
        return
    # Compound values go through the table: a call through it, unlike a direct one,
    # counts towards Python's recursion limit, so a list that holds itself raises
    # RecursionError (reported as an EncodeError) instead of overflowing the C stack.
    encoder = ENCODERS.get(kind)
    if encoder is None:
        encoder = _lookup_encoder(type(value))
    encoder(out, value)


#: What the encoders raise for a value that does not fit its type (a struct range, a
#: string that is not ASCII, a wrong type): callers report these as an ``EncodeError``.
ENCODE_FAILURES: Final[tuple[type[Exception], ...]] = (
    struct.error,
    OverflowError,
    UnicodeEncodeError,
    TypeError,
    AttributeError,
    ValueError,
    IndexError,
)


def encode_into(out: bytearray, value: Any) -> None:
    """Append the AMQP encoding of ``value`` to ``out``.

    Raises :class:`~petrel.errors.EncodeError` when the value has no AMQP
    encoding or does not fit its type (a ``UInt`` of -1, a non-ASCII symbol).
    """
    start = len(out)
    try:
        encode_value(out, value)
    except EncodeError:
        del out[start:]
        raise
    except RecursionError:
        del out[start:]
        raise EncodeError(f"cannot encode {_short_repr(value)}: nested too deeply") from None
    except ENCODE_FAILURES as exc:
        del out[start:]
        raise EncodeError(f"cannot encode {_short_repr(value)}: {exc}") from None


def encode(value: Any) -> bytes:
    """The AMQP encoding of one value, as bytes."""
    out = bytearray()
    encode_into(out, value)
    return bytes(out)


_REPR: Final = reprlib.Repr()  # keyword arguments only from Python 3.12
_REPR.maxlevel = 3
_REPR.maxstring = 60
_REPR.maxother = 60


def _short_repr(value: Any) -> str:
    """A bounded repr for error messages (values may be huge or self-referencing)."""
    try:
        text = _REPR.repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."
