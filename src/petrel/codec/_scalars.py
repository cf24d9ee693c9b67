"""What every AMQP decoder shares, and the decoders of the values that hold no other value.

:class:`DecodeContext` and the :data:`Decoder` signature are described in
:mod:`._decode`, which dispatches on the constructor byte and decodes the
compound values (lists, maps, arrays, described values) from these.  Here: the
fixed-width values (null, booleans, numbers, char, timestamp, uuid, decimals)
and the variable-width ones (binary, string, symbol).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

from ..errors import DecodeError
from ..types import Char, Int, Symbol, Timestamp, UInt, ULong
from .limits import MAX_ZERO_WIDTH_COUNT

#: What turns a described value into a Python object: descriptor (code or symbol) ->
#: a function of the described value (``petrel.spec.REGISTRY`` is one).
Registry = Mapping[Any, Callable[[Any], Any]]


class DecodeContext:
    """What one top-level decode carries down to every decoder.

    ``registry`` maps descriptors to factories (or is ``None``);
    ``zero_width_left`` is how many more zero-width array elements this decode
    may still produce (see :mod:`.limits`).  The budget is per decode, not per
    array, so a list of many small arrays of nulls cannot multiply it.
    """

    __slots__ = ("registry", "zero_width_left")

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry
        self.zero_width_left = MAX_ZERO_WIDTH_COUNT


Decoder = Callable[[bytes, int, DecodeContext, int], tuple[Any, int]]

_u8: Final = struct.Struct(">B").unpack_from
_i8: Final = struct.Struct(">b").unpack_from
_u16: Final = struct.Struct(">H").unpack_from
_i16: Final = struct.Struct(">h").unpack_from
_u32: Final = struct.Struct(">I").unpack_from
_i32: Final = struct.Struct(">i").unpack_from
_u64: Final = struct.Struct(">Q").unpack_from
_i64: Final = struct.Struct(">q").unpack_from
_f32: Final = struct.Struct(">f").unpack_from
_f64: Final = struct.Struct(">d").unpack_from
_u8u8: Final = struct.Struct(">BB").unpack_from
_u32u32: Final = struct.Struct(">II").unpack_from

# Decoded symbols are few and repeat endlessly (capabilities, annotation keys,
# outcome descriptors), so the decoder keeps the Symbol objects it made.  The
# cache stops growing at a fixed size so a hostile peer cannot fill memory.
# Only short symbols are kept, so the cache stays small (at most 4096 x 64 bytes).
_SYMBOL_CACHE: Final[dict[bytes, Symbol]] = {}
_SYMBOL_CACHE_MAX: Final = 4096
_SYMBOL_CACHE_MAX_LEN: Final = 64

_UINT_SMALL: Final = [UInt(i) for i in range(256)]
_ULONG_SMALL: Final = [ULong(i) for i in range(256)]
_INT_SMALL: Final = [Int(i) for i in range(-128, 128)]


def _truncated(off: int, what: str) -> DecodeError:
    return DecodeError(f"truncated {what}: the data ends before the value does", offset=off)


# --- fixed width ------------------------------------------------------------------------------


def decode_null(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    return None, off


def decode_true(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    return True, off


def decode_false(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    return False, off


def decode_uint0(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    return _UINT_SMALL[0], off


def decode_ulong0(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    return _ULONG_SMALL[0], off


def decode_list0(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    return [], off


def decode_boolean(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        b = buf[off]
    except IndexError:
        raise _truncated(off, "boolean") from None
    if b > 1:
        raise DecodeError(f"a boolean byte must be 0 or 1, got 0x{b:02x}", offset=off)
    return b == 1, off + 1


def _fixed(
    unpack: Callable[[bytes, int], tuple[Any, ...]],
    wrap: Callable[[Any], Any],
    width: int,
    name: str,
) -> Decoder:
    def decode(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
        try:
            return wrap(unpack(buf, off)[0]), off + width
        except struct.error:
            raise _truncated(off, name) from None

    decode.__name__ = f"decode_{name}"
    return decode


def decode_smalluint(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        return _UINT_SMALL[buf[off]], off + 1
    except IndexError:
        raise _truncated(off, "smalluint") from None


def decode_smallulong(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        return _ULONG_SMALL[buf[off]], off + 1
    except IndexError:
        raise _truncated(off, "smallulong") from None


def decode_smallint(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        return _INT_SMALL[_i8(buf, off)[0] + 128], off + 1
    except struct.error:
        raise _truncated(off, "smallint") from None


def decode_smalllong(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        return _i8(buf, off)[0], off + 1
    except struct.error:
        raise _truncated(off, "smalllong") from None


def decode_char(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        code = _u32(buf, off)[0]
    except struct.error:
        raise _truncated(off, "char") from None
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise DecodeError(f"char 0x{code:x} is not a Unicode scalar value", offset=off)
    return Char(chr(code)), off + 4


def decode_double(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        return _f64(buf, off)[0], off + 8
    except struct.error:
        raise _truncated(off, "double") from None


def decode_long(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        return _i64(buf, off)[0], off + 8
    except struct.error:
        raise _truncated(off, "long") from None


def decode_uint(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        return UInt(_u32(buf, off)[0]), off + 4
    except struct.error:
        raise _truncated(off, "uint") from None


def decode_ulong(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        return ULong(_u64(buf, off)[0]), off + 8
    except struct.error:
        raise _truncated(off, "ulong") from None


def decode_timestamp(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        return Timestamp(_i64(buf, off)[0]), off + 8
    except struct.error:
        raise _truncated(off, "timestamp") from None


def _raw(width: int, wrap: Callable[[bytes], Any], name: str) -> Decoder:
    def decode(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
        end = off + width
        if end > len(buf):
            raise _truncated(off, name)
        return wrap(buf[off:end]), end

    decode.__name__ = f"decode_{name}"
    return decode


def _uuid(data: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=data)


# --- variable width ---------------------------------------------------------------------------


def decode_vbin8(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        n = buf[off]
    except IndexError:
        raise _truncated(off, "vbin8 size") from None
    off += 1
    end = off + n
    if end > len(buf):
        raise DecodeError(f"vbin8 says {n} bytes but only {len(buf) - off} remain", offset=off - 1)
    return buf[off:end], end


def decode_vbin32(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        n = _u32(buf, off)[0]
    except struct.error:
        raise _truncated(off, "vbin32 size") from None
    off += 4
    end = off + n
    if end > len(buf):
        raise DecodeError(f"vbin32 says {n} bytes but only {len(buf) - off} remain", offset=off - 4)
    return buf[off:end], end


def _text(buf: bytes, off: int, end: int, name: str) -> str:
    try:
        return buf[off:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"{name} is not valid UTF-8: {exc.reason}", offset=off + exc.start
        ) from None


def decode_str8(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        n = buf[off]
    except IndexError:
        raise _truncated(off, "str8 size") from None
    off += 1
    end = off + n
    if end > len(buf):
        raise DecodeError(f"str8 says {n} bytes but only {len(buf) - off} remain", offset=off - 1)
    return _text(buf, off, end, "str8-utf8"), end


def decode_str32(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        n = _u32(buf, off)[0]
    except struct.error:
        raise _truncated(off, "str32 size") from None
    off += 4
    end = off + n
    if end > len(buf):
        raise DecodeError(f"str32 says {n} bytes but only {len(buf) - off} remain", offset=off - 4)
    return _text(buf, off, end, "str32-utf8"), end


def _symbol(buf: bytes, off: int, end: int) -> Symbol:
    raw = buf[off:end]
    sym = _SYMBOL_CACHE.get(raw)
    if sym is None:
        if not raw.isascii():
            bad = next(i for i, b in enumerate(raw) if b > 0x7F)
            raise DecodeError(f"symbol byte 0x{raw[bad]:02x} is not ASCII", offset=off + bad)
        sym = Symbol(raw.decode("ascii"))
        if end - off <= _SYMBOL_CACHE_MAX_LEN and len(_SYMBOL_CACHE) < _SYMBOL_CACHE_MAX:
            _SYMBOL_CACHE[raw] = sym
    return sym


def decode_sym8(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        n = buf[off]
    except IndexError:
        raise _truncated(off, "sym8 size") from None
    off += 1
    end = off + n
    if end > len(buf):
        raise DecodeError(f"sym8 says {n} bytes but only {len(buf) - off} remain", offset=off - 1)
    return _symbol(buf, off, end), end


def decode_sym32(buf: bytes, off: int, ctx: DecodeContext, depth: int) -> tuple[Any, int]:
    try:
        n = _u32(buf, off)[0]
    except struct.error:
        raise _truncated(off, "sym32 size") from None
    off += 4
    end = off + n
    if end > len(buf):
        raise DecodeError(f"sym32 says {n} bytes but only {len(buf) - off} remain", offset=off - 4)
    return _symbol(buf, off, end), end
