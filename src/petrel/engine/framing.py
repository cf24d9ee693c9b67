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
from typing import Final

from ..spec.framing import FRAME_HEADER

__all__ = [
    "HEADER_PLACEHOLDER",
    "MAX_TAG_LENGTH",
    "describe_header",
    "pack_header",
    "write_transfer_continuation",
    "write_transfer_head",
]

#: Eight bytes reserved for a frame header, filled in by :func:`pack_header`.
HEADER_PLACEHOLDER: Final = bytes(8)
#: ``delivery-tag`` is at most 32 bytes (part 2.8.7).
MAX_TAG_LENGTH: Final = 32

#: ``pack_header(out, offset, size, doff, type, channel)``.
pack_header = FRAME_HEADER.pack_into

_UINT: Final = [b"\x43"] + [bytes((0x52, i)) for i in range(1, 256)]
_PACK_UINT32 = struct.Struct(">BI").pack
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
