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

from typing import Any, Final

from ..codec import MAX_TAG_LENGTH, NOT_READ, read_simple_list
from ..spec import Transfer
from ..spec.framing import FRAME_HEADER
from ..types import UInt

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
pack_header: Final = FRAME_HEADER.pack_into


def describe_header(data: bytes) -> str:
    """A protocol header for error messages: ``AMQP 0 1.0.0`` or the raw bytes."""
    if len(data) == 8 and data[:4] == b"AMQP":
        return f"AMQP protocol id {data[4]} version {data[5]}.{data[6]}.{data[7]}"
    return f"non-AMQP bytes {data!r}"


# --- reading transfers ---------------------------------------------------------------------------

# The transfer's descriptor, a small ulong (part 2.7.5): 0x00 0x53 0x14.
_DESCRIPTOR_CODE: Final = 0x14
# The six leading fields: handle, delivery-id, delivery-tag, message-format, settled, more.
_LEADING_FIELDS: Final = 6
# The defaults of the fields after them: rcv-settle-mode, state, resume, aborted, batchable.
# (Final names compile to C statics; plain module names are a dict lookup per use.)
_RCV_SETTLE_MODE: Final = Transfer.FIELDS[6].default
_STATE: Final = Transfer.FIELDS[7].default
_RESUME: Final = Transfer.FIELDS[8].default
_ABORTED: Final = Transfer.FIELDS[9].default
_BATCHABLE: Final = Transfer.FIELDS[10].default
_MORE_DEFAULT: Final = Transfer.FIELDS[_LEADING_FIELDS - 1].default
_new_tuple: Final[Any] = tuple.__new__
_TRANSFER: Final = Transfer
_UINT: Final = UInt


def read_transfer(buf: bytes, at: int, end: int) -> tuple[Transfer, int] | None:
    """Decode the transfer performative at ``at`` the quick way, or ``None`` to say "use the
    generic decoder".

    Handles the encodings every implementation uses for the leading fields
    (``handle``, ``delivery-id``, ``delivery-tag``, ``message-format``,
    ``settled``, ``more``); anything unusual (a delivery state, wide
    constructors in odd places, fields beyond ``more``, a value of the wrong
    type) falls back, so the generic decoder stays the single judge of
    malformed input.  What it accepts is what ``Transfer.from_fields`` would
    accept, and it builds the same ``Transfer``.
    """
    if end - at < 3 or buf[at] != 0 or buf[at + 1] != 0x53 or buf[at + 2] != _DESCRIPTOR_CODE:
        return None
    found = read_simple_list(buf, at + 3, end, _LEADING_FIELDS)
    if found is NOT_READ:
        return None
    values, stop = found
    handle, delivery_id, tag, message_format, settled, more = values
    if (
        type(handle) is not _UINT
        or (delivery_id is not None and type(delivery_id) is not _UINT)
        or (tag is not None and type(tag) is not bytes)
        or (message_format is not None and type(message_format) is not _UINT)
        or (settled is not None and type(settled) is not bool)
        or (more is not None and type(more) is not bool)
    ):
        return None
    transfer: Transfer = _new_tuple(
        _TRANSFER,
        (
            handle,
            delivery_id,
            tag,
            message_format,
            settled,
            _MORE_DEFAULT if more is None else more,
            _RCV_SETTLE_MODE,
            _STATE,
            _RESUME,
            _ABORTED,
            _BATCHABLE,
        ),
    )
    return transfer, stop
