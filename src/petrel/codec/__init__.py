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
"""

from __future__ import annotations

from ._decode import DECODERS, DecodeContext, Registry, decode, decode_from
from ._encode import (
    ENCODERS,
    encode,
    encode_descriptor,
    encode_into,
    register_encoder,
)
from .limits import MAX_NESTING_DEPTH, MAX_ZERO_WIDTH_COUNT

__all__ = [
    "DECODERS",
    "ENCODERS",
    "MAX_NESTING_DEPTH",
    "MAX_ZERO_WIDTH_COUNT",
    "DecodeContext",
    "Registry",
    "decode",
    "decode_from",
    "encode",
    "encode_descriptor",
    "encode_into",
    "register_encoder",
]
