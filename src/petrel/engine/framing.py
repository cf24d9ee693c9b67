"""Frames: the header helpers and the quick reading of the frequent performatives.

Every frame is appended to the connection's output ``bytearray`` in place: an
8-byte header placeholder, the performative, the payload, then the header is
filled in.  Nothing builds intermediate byte strings.  Transfers are the hot
path: their performative is written by the codec's
:func:`~petrel.codec.write_transfer_head`.  Transfers, dispositions and flows
(one or more per message) are read here through
:func:`~petrel.codec.read_fields`, which decodes the encodings every
implementation uses for their fields and hands anything else to the generic
decoder.
"""

from __future__ import annotations

from typing import Any, Final

from ..codec import (
    FIELD_BINARY,
    FIELD_BOOLEAN,
    FIELD_DESCRIBED,
    FIELD_NULL,
    FIELD_UINT,
    MAX_TAG_LENGTH,
    NOT_READ,
    read_fields,
)
from ..spec import (
    Accepted,
    Composite,
    Disposition,
    Flow,
    Modified,
    Rejected,
    Released,
    Transfer,
)
from ..spec.framing import FRAME_HEADER

__all__ = [
    "HEADER_PLACEHOLDER",
    "MAX_TAG_LENGTH",
    "describe_header",
    "pack_header",
    "read_performative",
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


# --- reading the frequent performatives ----------------------------------------------------------

#: The kind of item the quick path reads for a field, by the primitive it is sent as;
#: :data:`~petrel.codec.FIELD_NULL` (no value may be given here) for the rest.
_KINDS: Final[dict[str | None, int]] = {
    "uint": FIELD_UINT,
    "boolean": FIELD_BOOLEAN,
    "binary": FIELD_BINARY,
}

#: The outcomes of no fields (``accepted``, an empty ``rejected`` ...), by descriptor code: what
#: the quick path puts in a delivery-state field for ``00 53 code 45``.  Made by each class's
#: own ``from_fields``, so they equal what the generic decoder makes.
_OUTCOMES: Final[dict[int, Any]] = {
    cls.DESCRIPTOR: cls.from_fields([]) for cls in (Accepted, Rejected, Released, Modified)
}


class _QuickRead:
    """How to read one performative the quick way, derived from its spec fields: its
    class, the kind of item each field may be, the defaults, and which fields are
    mandatory."""

    def __init__(self, cls: type[Composite]) -> None:
        fields = cls.FIELDS
        self.cls: Any = cls
        self.kinds = bytes(
            FIELD_DESCRIBED
            if f.requires == "delivery-state"
            else _KINDS.get(f.primitive, FIELD_NULL)
            for f in fields
        )
        self.defaults: list[Any] = [f.default for f in fields]
        self.mandatory: list[int] = [i for i, f in enumerate(fields) if f.mandatory]


def _quick_readers(*classes: type[Composite]) -> list[_QuickRead | None]:
    readers: list[_QuickRead | None] = [None] * (max(c.DESCRIPTOR for c in classes) + 1)
    for cls in classes:
        readers[cls.DESCRIPTOR] = _QuickRead(cls)
    return readers


_QUICK: Final = _quick_readers(Flow, Transfer, Disposition)
_new_tuple: Final[Any] = tuple.__new__


def read_performative(buf: bytes, at: int, end: int) -> tuple[Any, int] | None:
    """Decode the ``transfer``, ``disposition`` or ``flow`` at ``at`` the quick way, or
    ``None`` to say "use the generic decoder".

    Handles the encodings every implementation uses: a small-``ulong``
    descriptor, and fields that are each a null, a boolean, a ``uint``, a short
    binary or an outcome of no fields (``accepted``).  Anything else (a wider
    constructor, a state with fields, properties, a value of the wrong type, a
    mandatory field left out) falls back, so the generic decoder stays the single
    judge of malformed input.  What it accepts is what the class's
    ``from_fields`` would accept, and it builds the same performative.
    """
    if end - at < 3 or buf[at] != 0 or buf[at + 1] != 0x53:
        return None
    code = buf[at + 2]
    if code >= len(_QUICK):
        return None
    quick = _QUICK[code]
    if quick is None:
        return None
    found = read_fields(buf, at + 3, end, quick.kinds, quick.defaults, _OUTCOMES)
    if found is NOT_READ:
        return None
    values, stop = found
    for i in quick.mandatory:
        if values[i] is None:
            return None
    return _new_tuple(quick.cls, tuple(values)), stop
