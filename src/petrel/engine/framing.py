"""Frames: the header helpers and the quick reading of a transfer performative.

Every frame is appended to the connection's output ``bytearray`` in place: an
8-byte header placeholder, the performative, the payload, then the header is
filled in.  Nothing builds intermediate byte strings.  Transfers are the hot
path: their performative is written by the codec's
:func:`~petrel.codec.write_transfer_head` and read here through
:func:`~petrel.codec.read_simple_list`, which decodes the encodings every
implementation uses for its leading fields and hands anything else to the
generic decoder.
"""

from __future__ import annotations

from typing import Final

from ..codec import MAX_TAG_LENGTH, NOT_READ, read_simple_list
from ..spec import Transfer
from ..spec.framing import FRAME_HEADER

__all__ = [
    "HEADER_PLACEHOLDER",
    "MAX_TAG_LENGTH",
    "describe_header",
    "pack_header",
    "read_transfer",
]

#: Eight bytes reserved for a frame header, filled in by :func:`pack_header`.
HEADER_PLACEHOLDER: Final = bytes(8)

#: ``pack_header(out, offset, size, doff, type, channel)``.
pack_header = FRAME_HEADER.pack_into


def describe_header(data: bytes) -> str:
    """A protocol header for error messages: ``AMQP 0 1.0.0`` or the raw bytes."""
    if len(data) == 8 and data[:4] == b"AMQP":
        return f"AMQP protocol id {data[4]} version {data[5]}.{data[6]}.{data[7]}"
    return f"non-AMQP bytes {data!r}"


# --- reading transfers ---------------------------------------------------------------------------

_TRANSFER_DESCRIPTOR: Final = b"\x00\x53\x14"
# The six leading fields: handle, delivery-id, delivery-tag, message-format, settled, more.
_LEADING_FIELDS: Final = 6


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
    found = read_simple_list(buf, at + 3, end, _LEADING_FIELDS)
    if found is NOT_READ:
        return None
    values, stop = found
    # ``from_fields`` pads the fields after ``more`` from its own shared tails.
    return Transfer.from_fields(values), stop
