"""The AMQP 1.0 type system: encode Python values to AMQP bytes and back.

>>> from petrel import codec, UInt, Symbol
>>> codec.encode(UInt(5))
b'R\\x05'
>>> codec.decode(b"\\xa3\\x03foo")
Symbol('foo')

``encode``/``decode`` work on one value; ``encode_into`` appends to a
``bytearray`` and ``decode_from`` reads one value at an offset of a stream and
returns the offset after it.  See :mod:`petrel.types` for how Python values
map onto AMQP types.

The per-message path reads and writes encodings in place instead:
``skip_value``, ``descriptor_at``, ``compound_at``, ``text_at``,
``list_field``, ``read_fields`` and ``read_simple_list`` find and read values
without decoding the rest, and ``write_transfer_head`` (with ``write_transfer_head_with_state``
and ``write_transfer_continuation``) writes a transfer performative.
"""

from __future__ import annotations

from ._decode import DECODERS, decode, decode_from
from ._encode import (
    ENCODE_FAILURES,
    ENCODERS,
    ENCODERS_BY_NAME,
    encode,
    encode_array,
    encode_descriptor,
    encode_into,
    encode_list,
    encode_map,
    encode_value,
    register_encoder,
)
from ._scalars import DecodeContext, Registry
from ._wire import (
    FIELD_BINARY,
    FIELD_BOOLEAN,
    FIELD_DESCRIBED,
    FIELD_NULL,
    FIELD_SIMPLE,
    FIELD_UINT,
    MAX_TAG_LENGTH,
    NOT_READ,
    compound_at,
    descriptor_at,
    list_field,
    read_fields,
    read_simple_list,
    skip_value,
    text_at,
    write_transfer_continuation,
    write_transfer_head,
    write_transfer_head_with_state,
)
from .limits import MAX_NESTING_DEPTH, MAX_ZERO_WIDTH_COUNT

__all__ = [
    "DECODERS",
    "ENCODERS",
    "ENCODERS_BY_NAME",
    "ENCODE_FAILURES",
    "FIELD_BINARY",
    "FIELD_BOOLEAN",
    "FIELD_DESCRIBED",
    "FIELD_NULL",
    "FIELD_SIMPLE",
    "FIELD_UINT",
    "MAX_NESTING_DEPTH",
    "MAX_TAG_LENGTH",
    "MAX_ZERO_WIDTH_COUNT",
    "NOT_READ",
    "DecodeContext",
    "Registry",
    "compound_at",
    "decode",
    "decode_from",
    "descriptor_at",
    "encode",
    "encode_array",
    "encode_descriptor",
    "encode_into",
    "encode_list",
    "encode_map",
    "encode_value",
    "list_field",
    "read_fields",
    "read_simple_list",
    "register_encoder",
    "skip_value",
    "text_at",
    "write_transfer_continuation",
    "write_transfer_head",
    "write_transfer_head_with_state",
]
