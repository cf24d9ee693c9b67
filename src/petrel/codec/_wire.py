"""The wire format on the per-message path: reading and writing encodings in place.

:func:`~petrel.codec.decode` builds Python values and
:func:`~petrel.codec.encode_into` writes them.  A broker or a router handling a
message needs much less than that: where a value ends, which descriptor a
described value carries, one field of a list, the entries of a map, and the
leading fields of each transfer frame.  The functions here do that work on the
buffer itself, building no value that was not asked for.

Together with the decoder and the encoder this is the only code that knows
constructor bytes: the engine's transfer fast path and the message view's
section scan go through these functions, so an accelerated codec replaces one
module (see :mod:`petrel.codec._backend`).

Everything reads from a ``bytes``-like buffer and an offset and returns the
offset after what it read.  Malformed input raises
:class:`~petrel.errors.DecodeError` naming the offset, except where a function
says it answers "not in a form read here" (then the caller takes the generic
decoder, which stays the one judge of malformed input).
"""

from __future__ import annotations

import struct
from typing import Any, Final

from ..errors import DecodeError
from ..types import UInt
from ._decode import decode_from
from ._encode import encode_into
from .constructors import NAMES as _CONSTRUCTOR_NAMES

__all__ = [
    "FIELD_BINARY",
    "FIELD_BOOLEAN",
    "FIELD_DESCRIBED",
    "FIELD_NULL",
    "FIELD_SIMPLE",
    "FIELD_UINT",
    "NOT_READ",
    "compound_at",
    "descriptor_at",
    "list_field",
    "read_fields",
    "read_simple_list",
    "skip_value",
    "text_at",
    "write_transfer_continuation",
    "write_transfer_head",
    "write_transfer_head_with_state",
]

_u32: Final = struct.Struct(">I").unpack_from
_u32u32: Final = struct.Struct(">II").unpack_from
_u64: Final = struct.Struct(">Q").unpack_from


class _NotRead:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_READ"


#: What :func:`list_field`, :func:`read_fields` and :func:`read_simple_list` answer for an
#: encoding they do not read (the caller then decodes the generic way).
NOT_READ: Final[Any] = _NotRead()

# --- skipping values ------------------------------------------------------------------------------
#
# The width of a value follows from its constructor's category (part 1, the
# high nibble of the format code): fixed 0/1/2/4/8/16 bytes, variable with a
# 1- or 4-byte size, compound or array with a 1- or 4-byte size.  Only the
# constructors the spec defines are accepted, as the decoder does.

_FIXED: Final = {0x4: 0, 0x5: 1, 0x6: 2, 0x7: 4, 0x8: 8, 0x9: 16}
# category -> (bytes of the size field, smallest legal size)
_SIZED: Final = {0xA: (1, 0), 0xB: (4, 0), 0xC: (1, 1), 0xD: (4, 4), 0xE: (1, 2), 0xF: (4, 5)}


def _widths() -> list[tuple[int, int, int] | None]:
    """Constructor -> (bytes of the size field, fixed width, smallest legal size)."""
    widths: list[tuple[int, int, int] | None] = [None] * 256
    for code in _CONSTRUCTOR_NAMES:
        category = code >> 4
        if code == 0x00:
            continue
        if category in _FIXED:
            widths[code] = (0, _FIXED[category], 0)
        else:
            size_bytes, least = _SIZED[category]
            widths[code] = (size_bytes, 0, least)
    return widths


_WIDTH: Final = _widths()
_DESCRIPTOR_CODES: Final = frozenset((0x80, 0x53, 0x44, 0xA3, 0xB3))


def _bad_descriptor(code: int, offset: int) -> DecodeError:
    return DecodeError(
        "a descriptor must be a ulong or a symbol, got "
        + _CONSTRUCTOR_NAMES.get(code, f"0x{code:02x}"),
        offset=offset,
    )


def skip_value(data: bytes, offset: int = 0) -> int:
    """The offset just past the one encoded value at ``offset``, without decoding it.

    Reads only the constructor and the size field (and a described value's
    descriptor); the contents of strings, binaries, lists, maps and arrays
    are not looked at.  Raises :class:`~petrel.errors.DecodeError` for an
    unknown constructor or a value that runs past the end of ``data``.
    """
    try:
        code = data[offset]
        if code == 0x00:
            desc_code = data[offset + 1]
            if desc_code not in _DESCRIPTOR_CODES:
                raise _bad_descriptor(desc_code, offset + 1)
            offset = skip_value(data, offset + 1)
            code = data[offset]
            if code == 0x00:
                raise DecodeError("a described value cannot itself be described", offset=offset)
        width = _WIDTH[code]
        if width is None:
            raise DecodeError(f"unknown constructor 0x{code:02x}", offset=offset)
        size_bytes, fixed, least = width
        if size_bytes == 0:
            end = offset + 1 + fixed
        elif size_bytes == 1:
            size = data[offset + 1]
            end = offset + 2 + size
        else:
            size = _u32(data, offset + 1)[0]
            end = offset + 5 + size
    except (IndexError, struct.error):
        raise DecodeError("truncated value: the data ends before it does", offset=offset) from None
    if size_bytes and size < least:
        raise DecodeError(f"{_CONSTRUCTOR_NAMES[code]} size {size} is too small", offset=offset)
    if end > len(data):
        raise DecodeError(
            f"{_CONSTRUCTOR_NAMES[code]} runs {end - len(data)} bytes past the end of the data",
            offset=offset,
        )
    return end


# --- described values, compounds, text -----------------------------------------------------------


def descriptor_at(data: bytes, offset: int) -> tuple[int | bytes, int]:
    """The descriptor of the described value at ``offset`` and the offset of its value.

    The descriptor comes back as an ``int`` (a numeric descriptor) or as the
    symbol's ``bytes`` (a symbolic one); nothing else is decoded.  Raises
    :class:`~petrel.errors.DecodeError` when ``offset`` holds no described
    value or the descriptor is cut short.
    """
    if data[offset] != 0x00:
        raise DecodeError("expected a described value", offset=offset)
    try:
        desc = data[offset + 1]
        if desc == 0x53:
            return data[offset + 2], offset + 3
        if desc == 0x80:
            return _u64(data, offset + 2)[0], offset + 10
        if desc == 0xA3:
            value_at = offset + 3 + data[offset + 2]
            key = data[offset + 3 : value_at]
        elif desc == 0xB3:
            value_at = offset + 6 + _u32(data, offset + 2)[0]
            key = data[offset + 6 : value_at]
        elif desc == 0x44:
            return 0, offset + 2
        else:
            raise _bad_descriptor(desc, offset + 1)
    except (IndexError, struct.error):
        raise DecodeError("truncated descriptor", offset=offset) from None
    if value_at > len(data):
        raise DecodeError("truncated descriptor", offset=offset)
    return bytes(key), value_at


def compound_at(data: bytes, offset: int) -> tuple[int, int]:
    """The item count of the list or map encoded at ``offset`` and the offset of its
    first item (a map's count is keys plus values).

    Raises :class:`~petrel.errors.DecodeError` when ``offset`` holds no list or
    map or its head is cut short; the items themselves are not checked.
    """
    try:
        code = data[offset]
        if code == 0xC0 or code == 0xC1:
            return data[offset + 2], offset + 3
        if code == 0xD0 or code == 0xD1:
            return _u32(data, offset + 5)[0], offset + 9
        if code == 0x45:
            return 0, offset + 1
    except (IndexError, struct.error):
        raise DecodeError("truncated list or map", offset=offset) from None
    raise DecodeError(f"expected a list or a map, got 0x{code:02x}", offset=offset)


def text_at(data: bytes, offset: int, end: int) -> bytes | None:
    """The UTF-8 bytes of the string or symbol encoded from ``offset`` to ``end`` (as
    :func:`skip_value` found it), or ``None`` when the value is neither."""
    code = data[offset]
    if code == 0xA1 or code == 0xA3:
        return data[offset + 2 : end]
    if code == 0xB1 or code == 0xB3:
        return data[offset + 5 : end]
    return None


def list_field(data: bytes, offset: int, index: int) -> Any:
    """Field ``index`` of the list encoded at ``offset`` (``None`` past its end), decoding
    only that field; :data:`NOT_READ` when the list or the field does not decode."""
    code = data[offset]
    if code == 0x45:
        return None
    try:
        if code == 0xC0:
            count = data[offset + 2]
            pos = offset + 3
        elif code == 0xD0:
            count = _u32(data, offset + 5)[0]
            pos = offset + 9
        else:
            return NOT_READ
        if index >= count:
            return None
        for _ in range(index):
            pos = skip_value(data, pos)
        return decode_from(data, pos)[0]
    except (DecodeError, IndexError, struct.error):
        return NOT_READ


# --- the fields of a performative ---------------------------------------------------------------

_SMALL_UINT: Final = [UInt(i) for i in range(256)]
_UINT_TYPE: Final = UInt  # a C static when compiled, not a dict lookup
_UINT0: Final = _SMALL_UINT[0]

# What :func:`read_fields` lets one item be, beside a null (always allowed):
#: A :func:`read_fields` kind: a boolean, a ``uint`` or a short binary.
FIELD_SIMPLE: Final = 0
#: A :func:`read_fields` kind: a ``uint``.
FIELD_UINT: Final = 1
#: A :func:`read_fields` kind: a boolean.
FIELD_BOOLEAN: Final = 2
#: A :func:`read_fields` kind: a binary of at most 255 bytes.
FIELD_BINARY: Final = 3
#: A :func:`read_fields` kind: an empty list described by a small ``ulong`` it was given.
FIELD_DESCRIBED: Final = 4
#: A :func:`read_fields` kind: nothing but a null.
FIELD_NULL: Final = 5


def read_fields(
    data: bytes,
    offset: int,
    end: int,
    kinds: bytes,
    defaults: list[Any],
    described: dict[int, Any] | None = None,
) -> tuple[list[Any], int] | Any:
    """Decode the list at ``offset`` when its items have the simple shapes that ``kinds``
    allows, one ``FIELD_*`` byte per item: the fields of a frequent performative.

    The items start as a copy of ``defaults`` (one per kind); each item given
    replaces its default, and a null or a missing item leaves it.  A
    :data:`FIELD_DESCRIBED` item is a value described by a small ``ulong`` whose
    value is an empty list (``00 53 code 45``, or a list8 of no items), such as
    the outcome ``accepted``: it becomes ``described[code]``, made by the caller.

    Returns the items and the offset after the list, or :data:`NOT_READ` for
    anything else (a wider constructor, an item of another kind, more items than
    kinds, a list running past ``end``), so the generic decoder judges it.
    """
    try:
        code = data[offset]
        if code == 0xC0:
            stop = offset + 2 + data[offset + 1]
            count = data[offset + 2]
            pos = offset + 3
        elif code == 0xD0:
            size, count = _u32u32(data, offset + 1)
            stop = offset + 5 + size
            pos = offset + 9
        else:
            return NOT_READ
        if count > len(kinds) or stop > end:
            return NOT_READ
        values = defaults.copy()
        for index in range(count):
            kind = kinds[index]
            code = data[pos]
            if code == 0x40:
                pos += 1
                continue
            if kind == FIELD_NULL:
                return NOT_READ
            if code == 0x52 or code == 0x43 or code == 0x70:
                if kind != FIELD_UINT and kind != FIELD_SIMPLE:
                    return NOT_READ
                if code == 0x52:
                    values[index] = _SMALL_UINT[data[pos + 1]]
                    pos += 2
                elif code == 0x43:
                    values[index] = _UINT0
                    pos += 1
                else:  # four bytes, big-endian: arithmetic is cheaper than a struct call
                    high = data[pos + 1] << 24 | data[pos + 2] << 16
                    values[index] = _UINT_TYPE(high | data[pos + 3] << 8 | data[pos + 4])
                    pos += 5
            elif code == 0x41 or code == 0x42:
                if kind != FIELD_BOOLEAN and kind != FIELD_SIMPLE:
                    return NOT_READ
                values[index] = code == 0x41
                pos += 1
            elif code == 0xA0:
                if kind != FIELD_BINARY and kind != FIELD_SIMPLE:
                    return NOT_READ
                n = data[pos + 1]
                values[index] = data[pos + 2 : pos + 2 + n]
                pos += 2 + n
            elif code == 0x00 and kind == FIELD_DESCRIBED and described is not None:
                if data[pos + 1] != 0x53:
                    return NOT_READ
                value = described.get(data[pos + 2])
                if value is None:
                    return NOT_READ
                if data[pos + 3] == 0x45:
                    pos += 4
                elif data[pos + 3] == 0xC0 and data[pos + 4] == 1 and data[pos + 5] == 0:
                    pos += 6
                else:
                    return NOT_READ
                values[index] = value
            else:
                return NOT_READ
        if pos != stop:
            return NOT_READ
        return values, stop
    except (IndexError, struct.error):
        return NOT_READ


def read_simple_list(data: bytes, offset: int, end: int, most: int) -> tuple[list[Any], int] | Any:
    """Decode the list at ``offset`` when it has at most ``most`` items, each a null, a
    boolean, a ``uint`` or a short binary.

    Returns the items (padded with ``None`` to ``most``) and the offset after
    the list, or :data:`NOT_READ` for anything else (a wider constructor, more
    items, a list running past ``end``), so the generic decoder judges it.
    """
    return read_fields(data, offset, end, bytes(most), [None] * most)


# --- writing transfer frames ---------------------------------------------------------------------
#
# A transfer (descriptor 0x14, part 2.7.5) is written with all six leading fields, so a
# frame's length does not depend on ``more``, which is patched in once the payload is placed.

#: ``delivery-tag`` is at most 32 bytes (part 2.8.7).
MAX_TAG_LENGTH: Final = 32

_UINT: Final = [b"\x43"] + [bytes((0x52, i)) for i in range(1, 256)]
_PACK_UINT32: Final = struct.Struct(">BI").pack
_PACK_SIZE: Final = struct.Struct(">I").pack_into
# descriptor 0x14 (transfer) as a smallulong, then a list8 with six fields.
_TRANSFER_LIST8: Final = b"\x00\x53\x14\xc0\x00\x06"
_VBIN8: Final = [bytes((0xA0, n)) for n in range(MAX_TAG_LENGTH + 1)]
# message-format 0 (uint0), settled, more=false.
_FORMAT0_SETTLED: Final = b"\x43\x41\x42"
_FORMAT0_UNSETTLED: Final = b"\x43\x42\x42"
_SETTLED_MORE: Final = b"\x41\x42"
_UNSETTLED_MORE: Final = b"\x42\x42"


def write_transfer_head(
    out: bytearray,
    handle: int,
    delivery_id: int,
    tag: bytes,
    message_format: int,
    settled: bool,
) -> int:
    """Append the performative of a delivery's first transfer; return the offset of its
    ``more`` byte (``false`` as written: ``0x41`` there says ``true``).

    Fields: handle, delivery-id, delivery-tag, message-format, settled, more.
    The tag is at most 32 bytes, so the list always fits a ``list8``.
    """
    size_at = len(out) + 4
    out += _TRANSFER_LIST8
    out += _UINT[handle] if handle < 256 else _PACK_UINT32(0x70, handle)
    out += _UINT[delivery_id] if delivery_id < 256 else _PACK_UINT32(0x70, delivery_id)
    out += _VBIN8[len(tag)]
    out += tag
    if message_format == 0:
        out += _FORMAT0_SETTLED if settled else _FORMAT0_UNSETTLED
    else:
        out += _UINT[message_format] if message_format < 256 else _PACK_UINT32(0x70, message_format)
        out += _SETTLED_MORE if settled else _UNSETTLED_MORE
    out[size_at] = len(out) - size_at - 1
    return len(out) - 1


def write_transfer_head_with_state(
    out: bytearray,
    handle: int,
    delivery_id: int,
    tag: bytes,
    message_format: int,
    settled: bool,
    state: Any,
) -> int:
    """:func:`write_transfer_head` with a delivery ``state`` on the first transfer (a
    transactional send carries its ``transactional-state`` there); the offset of ``more``.

    Rare, so written in a ``list32`` with eight fields: the six leading ones as above,
    ``rcv-settle-mode`` null, then the state through the encoder.
    """
    start = len(out)
    out += b"\x00\x53\x14\xd0\x00\x00\x00\x00\x00\x00\x00\x08"
    out += _UINT[handle] if handle < 256 else _PACK_UINT32(0x70, handle)
    out += _UINT[delivery_id] if delivery_id < 256 else _PACK_UINT32(0x70, delivery_id)
    out += _VBIN8[len(tag)]
    out += tag
    out += _UINT[message_format] if message_format < 256 else _PACK_UINT32(0x70, message_format)
    out += b"\x41" if settled else b"\x42"
    more_at = len(out)
    out += b"\x42\x40"
    encode_into(out, state)
    # The list's size counts the bytes after the size field: count and fields.
    _PACK_SIZE(out, start + 4, len(out) - start - 8)
    return more_at


def write_transfer_continuation(out: bytearray, handle: int, delivery_id: int) -> int:
    """Append a continuation transfer (handle, delivery-id, more); return the ``more`` offset."""
    size_at = len(out) + 4
    out += _TRANSFER_LIST8
    out += _UINT[handle] if handle < 256 else _PACK_UINT32(0x70, handle)
    out += _UINT[delivery_id] if delivery_id < 256 else _PACK_UINT32(0x70, delivery_id)
    out += b"\x40\x40\x40\x42"
    out[size_at] = len(out) - size_at - 1
    return len(out) - 1
