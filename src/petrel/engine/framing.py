"""Writing frames: the generic path for any performative and a fast path for transfers.

Every frame is appended to the connection's output ``bytearray`` in place: an
8-byte header placeholder, the performative, the payload, then the header is
filled in.  Nothing builds intermediate byte strings.

Transfers are the hot path, so their performative is written here by hand
(tests check the bytes decode to the same ``Transfer`` the spec layer would
build).  All six leading fields are always written, so a frame's length does
not depend on ``more``, which is patched in once the payload is placed.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from ..codec import encode_into
from ..spec import Transfer
from ..spec.framing import FRAME_HEADER
from ..types import UInt

__all__ = [
    "HEADER_PLACEHOLDER",
    "MAX_TAG_LENGTH",
    "describe_header",
    "pack_header",
    "read_transfer",
    "write_transfer_continuation",
    "write_transfer_head",
    "write_transfer_head_with_state",
]

#: Eight bytes reserved for a frame header, filled in by :func:`pack_header`.
HEADER_PLACEHOLDER: Final = bytes(8)
#: ``delivery-tag`` is at most 32 bytes (part 2.8.7).
MAX_TAG_LENGTH: Final = 32

#: ``pack_header(out, offset, size, doff, type, channel)``.
pack_header = FRAME_HEADER.pack_into

_UINT: Final = [b"\x43"] + [bytes((0x52, i)) for i in range(1, 256)]
_PACK_UINT32 = struct.Struct(">BI").pack
_PACK_SIZE = struct.Struct(">I").pack_into
# descriptor 0x14 (transfer) as a smallulong, then a list8 with six fields.
_TRANSFER_LIST8: Final = b"\x00\x53\x14\xc0\x00\x06"
_FALSE: Final = 0x42
TRUE: Final = 0x41
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
    """Append the first transfer of a delivery; return the offset of its ``more`` byte.

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
    ``rcv-settle-mode`` null, then the state through the codec.
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


def describe_header(data: bytes) -> str:
    """A protocol header for error messages: ``AMQP 0 1.0.0`` or the raw bytes."""
    if len(data) == 8 and data[:4] == b"AMQP":
        return f"AMQP protocol id {data[4]} version {data[5]}.{data[6]}.{data[7]}"
    return f"non-AMQP bytes {data!r}"


# --- reading transfers ---------------------------------------------------------------------------

_TRANSFER_DESCRIPTOR: Final = b"\x00\x53\x14"
_u32 = struct.Struct(">I").unpack_from
_u32u32 = struct.Struct(">II").unpack_from
_SMALL_UINT: Final = [UInt(i) for i in range(256)]
_UINT0: Final = _SMALL_UINT[0]
_NOT_FAST: Final = object()


def _uint_at(buf: bytes, pos: int) -> tuple[Any, int]:
    code = buf[pos]
    if code == 0x52:
        return _SMALL_UINT[buf[pos + 1]], pos + 2
    if code == 0x43:
        return _UINT0, pos + 1
    if code == 0x70:
        return UInt(_u32(buf, pos + 1)[0]), pos + 5
    if code == 0x40:
        return None, pos + 1
    return _NOT_FAST, pos


def _bool_at(buf: bytes, pos: int) -> tuple[Any, int]:
    code = buf[pos]
    if code == 0x42:
        return False, pos + 1
    if code == 0x41:
        return True, pos + 1
    if code == 0x40:
        return None, pos + 1
    return _NOT_FAST, pos


def read_transfer(buf: bytes, at: int, end: int) -> tuple[Transfer, int] | None:
    """Decode the transfer performative at ``at`` the quick way, or ``None`` to say "use the
    generic decoder".

    Handles the encodings every implementation uses for the leading fields
    (``handle``, ``delivery-id``, ``delivery-tag``, ``message-format``,
    ``settled``, ``more``); anything unusual (a delivery state, wide
    constructors in odd places, fields beyond ``more``) falls back, so the
    generic decoder stays the single judge of malformed input.
    """
    if buf[at : at + 3] != _TRANSFER_DESCRIPTOR:
        return None
    try:
        pos = at + 3
        code = buf[pos]
        if code == 0xC0:
            size = buf[pos + 1]
            count = buf[pos + 2]
            stop = pos + 2 + size
            pos += 3
        elif code == 0xD0:
            size, count = _u32u32(buf, pos + 1)
            stop = pos + 5 + size
            pos += 9
        else:
            return None
        if count > 6 or stop > end:
            return None
        values: list[Any] = [None] * 11
        for index in range(count):
            if index == 2:  # delivery-tag
                code = buf[pos]
                if code == 0xA0:
                    n = buf[pos + 1]
                    values[2] = buf[pos + 2 : pos + 2 + n]
                    pos += 2 + n
                    continue
                if code == 0x40:
                    pos += 1
                    continue
                return None
            value, pos = (_bool_at if index >= 4 else _uint_at)(buf, pos)
            if value is _NOT_FAST:
                return None
            values[index] = value
        if pos != stop:
            return None
        return Transfer.from_fields(values), stop
    except (IndexError, struct.error):
        return None
