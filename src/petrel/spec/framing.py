"""AMQP 1.0 framing (part 2.3): protocol headers and the 8-byte frame header.

A frame is ``SIZE(4) DOFF(1) TYPE(1) CHANNEL(2)`` followed by an extended
header (``DOFF * 4 - 8`` bytes, unused by AMQP 1.0 and skipped) and the body.
An AMQP frame's body is one performative and, for a transfer, the payload
bytes after it; a SASL frame's body is one SASL frame type.  A frame with no
body is a heartbeat.
"""

from __future__ import annotations

import struct
from typing import Final

__all__ = [
    "AMQP_HEADER",
    "FRAME_HEADER",
    "FRAME_TYPE_AMQP",
    "FRAME_TYPE_SASL",
    "HEARTBEAT",
    "MIN_MAX_FRAME_SIZE",
    "SASL_HEADER",
    "TLS_HEADER",
    "ProtocolHeader",
    "pack_frame_header",
    "parse_protocol_header",
]

#: ``AMQP`` + protocol id 0 (plain AMQP) + version 1.0.0.
AMQP_HEADER: Final = b"AMQP\x00\x01\x00\x00"
#: ``AMQP`` + protocol id 2 (TLS) + version 1.0.0.
TLS_HEADER: Final = b"AMQP\x02\x01\x00\x00"
#: ``AMQP`` + protocol id 3 (SASL) + version 1.0.0.
SASL_HEADER: Final = b"AMQP\x03\x01\x00\x00"

PROTOCOL_ID_AMQP: Final = 0
PROTOCOL_ID_TLS: Final = 2
PROTOCOL_ID_SASL: Final = 3

FRAME_TYPE_AMQP: Final = 0x00
FRAME_TYPE_SASL: Final = 0x01

#: Every peer must accept frames of at least this size (``MIN-MAX-FRAME-SIZE``).
MIN_MAX_FRAME_SIZE: Final = 512

#: ``size, doff, type, channel``.
FRAME_HEADER: Final = struct.Struct(">IBBH")

#: An empty AMQP frame on channel 0: the idle-timeout heartbeat.
HEARTBEAT: Final = FRAME_HEADER.pack(8, 2, FRAME_TYPE_AMQP, 0)


def pack_frame_header(size: int, frame_type: int, channel: int) -> bytes:
    """The 8-byte header of a frame of ``size`` bytes in all (header included)."""
    return FRAME_HEADER.pack(size, 2, frame_type, channel)


class ProtocolHeader:
    """A parsed 8-byte protocol header."""

    __slots__ = ("major", "minor", "protocol_id", "revision")

    def __init__(self, protocol_id: int, major: int, minor: int, revision: int) -> None:
        self.protocol_id = protocol_id
        self.major = major
        self.minor = minor
        self.revision = revision

    @property
    def is_supported_version(self) -> bool:
        """Whether this is AMQP 1.0.0, the only version Petrel speaks."""
        return (self.major, self.minor, self.revision) == (1, 0, 0)

    def __repr__(self) -> str:
        return (
            f"ProtocolHeader(id={self.protocol_id}, "
            f"version={self.major}.{self.minor}.{self.revision})"
        )


def parse_protocol_header(data: bytes) -> ProtocolHeader | None:
    """Parse an 8-byte protocol header; ``None`` if it does not start with ``AMQP``."""
    if len(data) < 8 or data[:4] != b"AMQP":
        return None
    return ProtocolHeader(data[4], data[5], data[6], data[7])
