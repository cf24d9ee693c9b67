"""AMQP 1.0 decoders: a 256-entry table indexed by the constructor byte.

``DECODERS[code](buf, offset, ctx, depth) -> (value, offset)`` decodes the
body of a value whose constructor byte ``code`` has already been read; the
offset it is given points just past that byte.  ``ctx`` is the
:class:`DecodeContext` of one top-level decode (the registry and the budget of
zero-width array elements) and ``depth`` the nesting depth of the value.
``buf`` is always ``bytes`` (the public functions convert other buffers once),
read with precompiled ``struct.Struct.unpack_from`` at an offset: nothing is
re-sliced until a leaf value (a string, a binary) is taken out.

``registry`` maps descriptors (``ULong`` codes and ``Symbol`` names) to
factories that turn a described value into a richer object; the spec layer
uses it to decode frames straight into performatives.  Without a registry, or
for a descriptor it does not know, a described value decodes as
:class:`~petrel.types.Described`.

Every bound is checked before anything is allocated; see :mod:`.limits`.
All failures raise :class:`~petrel.errors.DecodeError` naming the offset.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import Any, Final

from ..errors import DecodeError
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
    Short,
    Symbol,
    Timestamp,
    UByte,
    UInt,
    ULong,
    UShort,
)
from ._scalars import (
    _UINT_SMALL,
    _ULONG_SMALL,
    DecodeContext,
    Decoder,
    Registry,
    _f32,
    _fixed,
    _i8,
    _i16,
    _i32,
    _raw,
    _truncated,
    _u8,
    _u8u8,
    _u16,
    _u32u32,
    _uuid,
    decode_boolean,
    decode_char,
    decode_double,
    decode_false,
    decode_list0,
    decode_long,
    decode_null,
    decode_smallint,
    decode_smalllong,
    decode_smalluint,
    decode_smallulong,
    decode_str8,
    decode_str32,
    decode_sym8,
    decode_sym32,
    decode_timestamp,
    decode_true,
    decode_uint,
    decode_uint0,
    decode_ulong,
    decode_ulong0,
    decode_vbin8,
    decode_vbin32,
)
from .constructors import NAMES
from .limits import MAX_NESTING_DEPTH, MAX_ZERO_WIDTH_COUNT

# --- dispatch ---------------------------------------------------------------------------------


def decode_item(buf: bytes, pos: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    """Decode the value whose constructor byte is at ``pos`` (which must be inside ``buf``).

    What ``DECODERS[buf[pos]](buf, pos + 1, ctx, depth)`` does, with the constructors
    that fill frames and messages (described values, strings, symbols, binaries, small
    and fixed-width numbers, lists and maps) called by name: compiled, such a call
    passes its result back without building a tuple, and needs no lookup.
    """
    code = buf[pos]
    pos += 1
    if code < 0x80:
        if code == 0x00:
            return decode_described(buf, pos, ctx, depth)
        if code == 0x53:
            return decode_smallulong(buf, pos, ctx, depth)
        if code == 0x52:
            return decode_smalluint(buf, pos, ctx, depth)
        if code == 0x40:
            return None, pos
        if code == 0x43:
            return _UINT_SMALL[0], pos
        if code == 0x41:
            return True, pos
        if code == 0x42:
            return False, pos
        if code == 0x44:
            return _ULONG_SMALL[0], pos
        if code == 0x45:
            return [], pos
        if code == 0x70:
            return decode_uint(buf, pos, ctx, depth)
        if code == 0x54:
            return decode_smallint(buf, pos, ctx, depth)
        if code == 0x55:
            return decode_smalllong(buf, pos, ctx, depth)
        if code == 0x56:
            return decode_boolean(buf, pos, ctx, depth)
    elif code >= 0xA0:
        if code == 0xA1:
            return decode_str8(buf, pos, ctx, depth)
        if code == 0xA3:
            return decode_sym8(buf, pos, ctx, depth)
        if code == 0xA0:
            return decode_vbin8(buf, pos, ctx, depth)
        if code == 0xC0:
            return _decode_list(buf, pos, ctx, depth, False)
        if code == 0xC1:
            return _decode_map(buf, pos, ctx, depth, False)
        if code == 0xB0:
            return decode_vbin32(buf, pos, ctx, depth)
        if code == 0xB1:
            return decode_str32(buf, pos, ctx, depth)
        if code == 0xD0:
            return _decode_list(buf, pos, ctx, depth, True)
        if code == 0xD1:
            return _decode_map(buf, pos, ctx, depth, True)
    else:
        if code == 0x82:
            return decode_double(buf, pos, ctx, depth)
        if code == 0x81:
            return decode_long(buf, pos, ctx, depth)
        if code == 0x83:
            return decode_timestamp(buf, pos, ctx, depth)
        if code == 0x80:
            return decode_ulong(buf, pos, ctx, depth)
    return DECODERS[code](buf, pos, ctx, depth)


# --- compound ---------------------------------------------------------------------------------


def _misfit(name: str, count: int, pos: int, end: int) -> DecodeError:
    """The error for elements that do not match their container's declared size."""
    if pos > end:
        return DecodeError(f"{name} elements run past its declared size", offset=end)
    if pos == end:
        return DecodeError(f"{name} ends before its {count} elements do", offset=pos)
    return DecodeError(f"{name} elements do not fill its declared size", offset=pos)


def _compound_header(buf: bytes, off: int, wide: bool, name: str) -> tuple[int, int, int]:
    """Read size and count; return (count, offset of first element, end offset)."""
    try:
        if wide:
            size, count = _u32u32(buf, off)
            first = off + 8
            end = off + 4 + size
            if size < 4:
                raise DecodeError(f"{name} size {size} is too small for its count", offset=off)
        else:
            size, count = _u8u8(buf, off)
            first = off + 2
            end = off + 1 + size
            if size < 1:
                raise DecodeError(f"{name} size {size} is too small for its count", offset=off)
    except struct.error:
        raise _truncated(off, f"{name} header") from None
    if end > len(buf):
        raise DecodeError(
            f"{name} says {size} bytes but only {len(buf) - off - (4 if wide else 1)} remain",
            offset=off,
        )
    if count > end - first:
        raise DecodeError(f"{name} claims {count} elements in {end - first} bytes", offset=off)
    return count, first, end


def _decode_list(
    buf: bytes, off: int, ctx: DecodeContext, depth: int, wide: bool
) -> tuple[Any, int]:
    name = "list32" if wide else "list8"
    if depth >= MAX_NESTING_DEPTH:
        raise DecodeError(f"values nested deeper than {MAX_NESTING_DEPTH}", offset=off - 1)
    count, pos, end = _compound_header(buf, off, wide, name)
    items: list[Any] = []
    append = items.append
    depth += 1
    for _ in range(count):
        if pos >= end:
            raise _misfit(name, count, pos, end)
        value, pos = decode_item(buf, pos, ctx, depth)
        append(value)
    if pos != end:
        raise _misfit(name, count, pos, end)
    return items, end


def decode_list8(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    return _decode_list(buf, off, ctx, depth, False)


def decode_list32(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    return _decode_list(buf, off, ctx, depth, True)


def _decode_map(
    buf: bytes, off: int, ctx: DecodeContext, depth: int, wide: bool
) -> tuple[Any, int]:
    name = "map32" if wide else "map8"
    if depth >= MAX_NESTING_DEPTH:
        raise DecodeError(f"values nested deeper than {MAX_NESTING_DEPTH}", offset=off - 1)
    count, pos, end = _compound_header(buf, off, wide, name)
    if count & 1:
        raise DecodeError(f"{name} has an odd element count {count}", offset=off)
    result: dict[Any, Any] = {}
    depth += 1
    for _ in range(count >> 1):
        if pos >= end:
            raise _misfit(name, count, pos, end)
        key_at = pos
        key, pos = decode_item(buf, pos, ctx, depth)
        if pos >= end:
            raise _misfit(name, count, pos, end)
        value, pos = decode_item(buf, pos, ctx, depth)
        try:
            result[key] = value
        except TypeError:
            raise DecodeError(
                f"{name} key of type {type(key).__name__} cannot be a Python dict key",
                offset=key_at,
            ) from None
    if pos != end:
        raise _misfit(name, count, pos, end)
    return result, end


def decode_map8(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    return _decode_map(buf, off, ctx, depth, False)


def decode_map32(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    return _decode_map(buf, off, ctx, depth, True)


def _read_descriptor(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        code = buf[off]
    except IndexError:
        raise _truncated(off, "descriptor") from None
    if code not in _DESCRIPTOR_CODES:
        raise DecodeError(
            f"a descriptor must be a ulong or a symbol, got {NAMES.get(code, f'0x{code:02x}')}",
            offset=off,
        )
    return decode_item(buf, off, ctx, depth)


def decode_described(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    if depth >= MAX_NESTING_DEPTH:
        raise DecodeError(f"values nested deeper than {MAX_NESTING_DEPTH}", offset=off - 1)
    descriptor, pos = _read_descriptor(buf, off, ctx, depth)
    if pos >= len(buf):
        raise _truncated(pos, "described value")
    # The value may itself be described (``constructor = %x00 descriptor
    # constructor``); the depth check above bounds such chains.
    value, pos = decode_item(buf, pos, ctx, depth + 1)
    registry = ctx.registry
    if registry is not None:
        factory = registry.get(descriptor)
        if factory is not None:
            try:
                return factory(value), pos
            except DecodeError as exc:
                if exc.offset is None:
                    raise DecodeError(exc.description, offset=off - 1) from None
                raise
            except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
                raise DecodeError(
                    f"malformed described value {descriptor!r}: {exc}", offset=off - 1
                ) from None
    return Described(descriptor, value), pos


# The constructors whose elements take no bytes, and the value each stands for
# (list0 makes a new list per element, below).
_ZERO_WIDTH: Final[dict[int, Any]] = {
    0x40: None,
    0x41: True,
    0x42: False,
    0x43: _UINT_SMALL[0],
    0x44: _ULONG_SMALL[0],
    0x45: None,
}


def _decode_array(
    buf: bytes, off: int, ctx: DecodeContext, depth: int, wide: bool
) -> tuple[Any, int]:
    name = "array32" if wide else "array8"
    if depth >= MAX_NESTING_DEPTH:
        raise DecodeError(f"values nested deeper than {MAX_NESTING_DEPTH}", offset=off - 1)
    try:
        if wide:
            size, count = _u32u32(buf, off)
            pos = off + 8
            end = off + 4 + size
        else:
            size, count = _u8u8(buf, off)
            pos = off + 2
            end = off + 1 + size
    except struct.error:
        raise _truncated(off, f"{name} header") from None
    if end > len(buf) or pos > end:
        raise DecodeError(f"{name} size {size} does not fit the data", offset=off)
    descriptor = None
    if pos >= end:
        raise DecodeError(f"{name} has no element constructor", offset=pos)
    code = buf[pos]
    if code == 0x00:
        descriptor, pos = _read_descriptor(buf, pos + 1, ctx, depth)
        if pos >= end:
            raise DecodeError(f"{name} has no element constructor", offset=pos)
        code = buf[pos]
        if code == 0x00:
            # Legal by the grammar, but an Array has one descriptor slot.
            raise DecodeError(f"{name} element descriptors cannot nest", offset=pos)
    element_type = _ELEMENT_TYPES.get(code)
    if element_type is None:
        raise DecodeError(f"{name} has an unknown element constructor 0x{code:02x}", offset=pos)
    pos += 1
    if code in _ZERO_WIDTH:
        if count > ctx.zero_width_left:
            raise DecodeError(
                f"{name} of {NAMES[code]} claims {count} elements, over the limit of "
                f"{MAX_ZERO_WIDTH_COUNT} zero-width elements per decoded value",
                offset=off,
            )
        if pos != end:
            raise _misfit(name, count, pos, end)
        ctx.zero_width_left -= count
        if code == 0x45:
            zeros: list[Any] = [[] for _ in range(count)]
        else:
            zeros = [_ZERO_WIDTH[code]] * count
        return Array(element_type, zeros, descriptor), end
    if count > end - pos:
        raise DecodeError(f"{name} claims {count} elements in {end - pos} bytes", offset=off)
    fixed = _FIXED_ARRAYS.get(code)
    if fixed is not None:
        # Fixed-width numbers: one struct call for the whole run.
        fmt, width, wrap = fixed
        stop = pos + count * width
        if stop != end:
            raise _misfit(name, count, stop, end)
        numbers = struct.unpack_from(f">{count}{fmt}", buf, pos)
        run = list(numbers) if wrap is None else list(map(wrap, numbers))
        return Array(element_type, run, descriptor), end
    body = DECODERS[code]
    items: list[Any] = []
    append = items.append
    depth += 1
    for _ in range(count):
        if pos >= end:
            raise _misfit(name, count, pos, end)
        value, pos = body(buf, pos, ctx, depth)
        append(value)
    if pos != end:
        raise _misfit(name, count, pos, end)
    return Array(element_type, items, descriptor), end


def decode_array8(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    return _decode_array(buf, off, ctx, depth, False)


def decode_array32(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    return _decode_array(buf, off, ctx, depth, True)


def _unknown(code: int) -> Decoder:
    def decode(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
        raise DecodeError(f"unknown constructor 0x{code:02x}", offset=off - 1)

    return decode


#: The decoder of each constructor byte (256 entries; an unknown one raises ``DecodeError``).
DECODERS: Final[list[Decoder]] = [_unknown(code) for code in range(256)]
DECODERS[0x00] = decode_described
DECODERS[0x40] = decode_null
DECODERS[0x41] = decode_true
DECODERS[0x42] = decode_false
DECODERS[0x56] = decode_boolean
DECODERS[0x50] = _fixed(_u8, UByte, 1, "ubyte")
DECODERS[0x60] = _fixed(_u16, UShort, 2, "ushort")
DECODERS[0x70] = decode_uint
DECODERS[0x52] = decode_smalluint
DECODERS[0x43] = decode_uint0
DECODERS[0x80] = decode_ulong
DECODERS[0x53] = decode_smallulong
DECODERS[0x44] = decode_ulong0
DECODERS[0x51] = _fixed(_i8, Byte, 1, "byte")
DECODERS[0x61] = _fixed(_i16, Short, 2, "short")
DECODERS[0x71] = _fixed(_i32, Int, 4, "int")
DECODERS[0x54] = decode_smallint
DECODERS[0x81] = decode_long
DECODERS[0x55] = decode_smalllong
DECODERS[0x72] = _fixed(_f32, Float, 4, "float")
DECODERS[0x82] = decode_double
DECODERS[0x74] = _raw(4, Decimal32, "decimal32")
DECODERS[0x84] = _raw(8, Decimal64, "decimal64")
DECODERS[0x94] = _raw(16, Decimal128, "decimal128")
DECODERS[0x73] = decode_char
DECODERS[0x83] = decode_timestamp
DECODERS[0x98] = _raw(16, _uuid, "uuid")
DECODERS[0xA0] = decode_vbin8
DECODERS[0xB0] = decode_vbin32
DECODERS[0xA1] = decode_str8
DECODERS[0xB1] = decode_str32
DECODERS[0xA3] = decode_sym8
DECODERS[0xB3] = decode_sym32
DECODERS[0x45] = decode_list0
DECODERS[0xC0] = decode_list8
DECODERS[0xD0] = decode_list32
DECODERS[0xC1] = decode_map8
DECODERS[0xD1] = decode_map32
DECODERS[0xE0] = decode_array8
DECODERS[0xF0] = decode_array32

# Array elements read in one struct call: format, width, wrapper.
_FIXED_ARRAYS: Final[dict[int, tuple[str, int, Callable[[Any], Any] | None]]] = {
    0x50: ("B", 1, UByte),
    0x60: ("H", 2, UShort),
    0x70: ("I", 4, UInt),
    0x52: ("B", 1, _UINT_SMALL.__getitem__),
    0x80: ("Q", 8, ULong),
    0x53: ("B", 1, _ULONG_SMALL.__getitem__),
    0x51: ("b", 1, Byte),
    0x61: ("h", 2, Short),
    0x71: ("i", 4, Int),
    0x54: ("b", 1, Int),
    0x81: ("q", 8, None),
    0x55: ("b", 1, None),
    0x72: ("f", 4, Float),
    0x82: ("d", 8, None),
    0x83: ("q", 8, Timestamp),
}

_DESCRIPTOR_CODES: Final = frozenset((0x80, 0x53, 0x44, 0xA3, 0xB3))

# The Python element type an array constructor stands for.
_ELEMENT_TYPES: Final[dict[int, type]] = {
    0x40: type(None),
    0x41: bool,
    0x42: bool,
    0x56: bool,
    0x50: UByte,
    0x60: UShort,
    0x70: UInt,
    0x52: UInt,
    0x43: UInt,
    0x80: ULong,
    0x53: ULong,
    0x44: ULong,
    0x51: Byte,
    0x61: Short,
    0x71: Int,
    0x54: Int,
    0x81: int,
    0x55: int,
    0x72: Float,
    0x82: float,
    0x74: Decimal32,
    0x84: Decimal64,
    0x94: Decimal128,
    0x73: Char,
    0x83: Timestamp,
    0x98: uuid.UUID,
    0xA0: bytes,
    0xB0: bytes,
    0xA1: str,
    0xB1: str,
    0xA3: Symbol,
    0xB3: Symbol,
    0x45: list,
    0xC0: list,
    0xD0: list,
    0xC1: dict,
    0xD1: dict,
    0xE0: Array,
    0xF0: Array,
}


def decode_from(
    data: bytes | bytearray | memoryview, offset: int = 0, *, registry: Registry | None = None
) -> tuple[Any, int]:
    """Decode one value starting at ``offset``; return it and the offset just past it.

    This is the stream form: call it again from the returned offset for the
    next value.  Raises :class:`~petrel.errors.DecodeError` when the bytes
    there are not one complete, valid AMQP value.
    """
    buf = data if type(data) is bytes else bytes(data)
    return _decode_from(buf, offset, registry)


def _decode_from(buf: bytes, offset: int, registry: Registry | None) -> tuple[Any, int]:
    if not 0 <= offset < len(buf):
        raise DecodeError("no data where a value should start", offset=offset)
    try:
        return decode_item(buf, offset, DecodeContext(registry), 0)
    except RecursionError:
        raise DecodeError("values nested too deeply", offset=offset) from None


def decode(data: bytes | bytearray | memoryview, *, registry: Registry | None = None) -> Any:
    """Decode exactly one AMQP value from ``data``.

    Raises :class:`~petrel.errors.DecodeError` if the data is not a valid value
    or if bytes remain after it.
    """
    buf = data if type(data) is bytes else bytes(data)
    value, end = _decode_from(buf, 0, registry)
    if end != len(buf):
        raise DecodeError(f"{len(buf) - end} bytes left over after the value", offset=end)
    return value
