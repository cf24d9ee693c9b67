"""What Message and MessageView share: section ranks, factories, scanning and skipping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal

from ..codec import (
    decode_from,
    descriptor_at,
    encode_descriptor,
    encode_map,
    encode_value,
    skip_value,
)
from ..errors import DecodeError
from ..spec import ALL_TYPES, REGISTRY, Restricted
from ..spec.messaging import (
    AmqpSequence,
    AmqpValue,
    ApplicationProperties,
    Data,
    DeliveryAnnotations,
    Footer,
    Header,
    MessageAnnotations,
    Properties,
)
from ..types import Symbol, ULong
from ._body import Sections

#: The section a body goes in: one ``amqp-value``, ``data`` sections or ``amqp-sequence``
#: sections (``Message(body_type=...)``).
BodyType = Literal["value", "data", "sequence"]

_BYTES_LIKE: Final = (bytes, bytearray, memoryview)


# Section order: the rank of each section type; body sections share one rank.
# (Final: compiled, each is a constant, not a module dict lookup per use.)
_HEADER: Final = 0
_DELIVERY_ANN: Final = 1
_MESSAGE_ANN: Final = 2
_PROPERTIES: Final = 3
_APP_PROPS: Final = 4
_BODY: Final = 5
_FOOTER: Final = 6

_RANK: Final[dict[Any, int]] = {
    Header: _HEADER,
    DeliveryAnnotations: _DELIVERY_ANN,
    MessageAnnotations: _MESSAGE_ANN,
    Properties: _PROPERTIES,
    ApplicationProperties: _APP_PROPS,
    Data: _BODY,
    AmqpSequence: _BODY,
    AmqpValue: _BODY,
    Footer: _FOOTER,
}
_RANK_NAMES: Final = (
    "header",
    "delivery-annotations",
    "message-annotations",
    "properties",
    "application-properties",
    "body",
    "footer",
)

# The usual encoding of a section starts ``00 53 <code>``; for those the
# decoders below read the descriptor themselves and build the section from its
# value directly, saving the codec's generic described-value path.
_FACTORY: Final[dict[int, Callable[[Any], Any]]] = {
    cls.DESCRIPTOR: REGISTRY[ULong(cls.DESCRIPTOR)] for cls in _RANK
}


def _section_at(buf: bytes, off: int, value_at: int, code: int) -> tuple[Any, int]:
    """Decode the section whose value starts at ``value_at`` (descriptor already read)."""
    value, nxt = decode_from(buf, value_at, registry=REGISTRY)
    return _make_section(code, value, off), nxt


def _make_section(code: int, value: Any, off: int) -> Any:
    """The section object of descriptor ``code`` around its decoded ``value`` (at ``off``)."""
    try:
        return _FACTORY[code](value)
    except DecodeError as exc:
        if exc.offset is None:
            raise DecodeError(exc.description, offset=off) from None
        raise


#: The sections that wrap one value (all but the header and the properties), by
#: descriptor code: the types their value may decode to, as the section class checks.
_WRAPS: Final[dict[int, frozenset[type] | None]] = {
    cls.DESCRIPTOR: cls.ACCEPTS for cls in _RANK if issubclass(cls, Restricted)
}


def read_sections(buf: bytes) -> tuple[Any, Any, Any, Any, Any, Any, Any, Any]:
    """Decode a whole message, checking what :meth:`Message.decode` promises.

    Returns the header and the properties (their spec objects, or ``None``),
    the values of the delivery annotations, message annotations and
    application properties, the body and its ``body_type`` (as
    :func:`_body_from_parts` makes them) and the footer's value, in that order.
    A section of the usual ``00 53 <code>`` form that only wraps a value is
    checked and taken as that value, with no section object made for it.
    """
    found: list[Any] = [None] * 7
    end = len(buf)
    last = -1
    body_kind: Any = None
    body_parts: list[Any] = []
    off = 0
    while off < end:
        if buf[off] == 0x00 and off + 2 < end and buf[off + 1] == 0x53:
            code = buf[off + 2]
            rank = _RANK_OF_CODE[code]
            if rank < 0:
                raise DecodeError(f"not a message section: {_name_of(code)}", offset=off)
            kind = _BODY_OF_CODE[code]
            content, nxt = decode_from(buf, off + 3, registry=REGISTRY)
            if code in _WRAPS:
                accepts = _WRAPS[code]
                if accepts is not None and content is not None and type(content) not in accepts:
                    _make_section(code, content, off)  # raises the section's own error
            else:
                content = _make_section(code, content, off)
        else:
            # Symbolic or 8-byte descriptors, or no section at all.
            section, nxt = decode_from(buf, off, registry=REGISTRY)
            kind = type(section)
            rank = _RANK.get(kind, -1)
            if rank < 0:
                raise DecodeError(f"not a message section: {_describe(section)}", offset=off)
            content = section if rank in (_HEADER, _PROPERTIES) else section.value
        body_kind = _placed(rank, kind, body_kind, last, off)
        if rank == _BODY:
            body_parts.append(content)
        else:
            found[rank] = content
        last = rank
        off = nxt
    body: Any = None
    body_type: BodyType | None = None
    if body_kind is not None:
        body, body_type = _body_from_parts(body_kind, body_parts)
    return (
        found[_HEADER],
        found[_DELIVERY_ANN],
        found[_MESSAGE_ANN],
        found[_PROPERTIES],
        found[_APP_PROPS],
        body,
        body_type,
        found[_FOOTER],
    )


def _body_from_parts(kind: Any, parts: list[Any]) -> tuple[Any, BodyType | None]:
    """The ``body`` and ``body_type`` of decoded body sections (see ``Message``)."""
    if kind is AmqpValue:
        body = parts[0]
        return body, ("value" if isinstance(body, bytes) else None)
    if kind is Data:
        if len(parts) == 1:
            return parts[0], None
        return Sections(*parts), None
    if len(parts) == 1:
        return parts[0], "sequence"
    return Sections(*parts), None


_encode_header: Final = Header.encode_fields
_encode_properties: Final = Properties.encode_fields
_encode_delivery_annotations: Final = DeliveryAnnotations.encode_value
_encode_message_annotations: Final = MessageAnnotations.encode_value
_encode_sequence: Final = AmqpSequence.encode_value


def _prefix(descriptor: int) -> bytes:
    out = bytearray()
    encode_descriptor(out, descriptor)
    return bytes(out)


# The sections every message has, written here rather than by the spec classes' own
# ``encode_value`` (the same bytes): compiled, these are direct calls.
_APP_PROPS_PREFIX: Final = _prefix(ApplicationProperties.DESCRIPTOR)
_DATA_PREFIX: Final = _prefix(Data.DESCRIPTOR)
_VALUE_PREFIX: Final = _prefix(AmqpValue.DESCRIPTOR)


def _encode_application_properties(out: bytearray, value: Any) -> None:
    out += _APP_PROPS_PREFIX
    if type(value) is dict:
        encode_map(out, value)
    else:
        encode_value(out, value)


def _encode_data(out: bytearray, value: Any) -> None:
    out += _DATA_PREFIX
    encode_value(out, value)


def _encode_value(out: bytearray, value: Any) -> None:
    out += _VALUE_PREFIX
    encode_value(out, value)


_encode_footer: Final = Footer.encode_value


def _order_error(rank: int, last: int, off: int) -> DecodeError:
    if rank == last:
        return DecodeError(f"repeated {_RANK_NAMES[rank]} section", offset=off)
    return DecodeError(
        f"{_RANK_NAMES[rank]} section after the {_RANK_NAMES[last]} section", offset=off
    )


def _placed(rank: int, kind: Any, body_kind: Any, last: int, off: int) -> Any:
    """Check that a section of ``rank`` (of class ``kind``, for a body section) may
    follow the section of rank ``last``, at ``off``; return the body's class so far."""
    if rank == _BODY:
        if body_kind is None:
            if last > _BODY:
                raise _order_error(rank, last, off)
            return kind
        _check_next_body(kind, body_kind, last, off)
    elif rank <= last:
        raise _order_error(rank, last, off)
    return body_kind


def _check_next_body(kind: Any, first: Any, last: int, off: int) -> None:
    """Check a body section that follows the first one."""
    if last != _BODY:
        raise _order_error(_BODY, last, off)
    if kind is not first or kind is AmqpValue:
        raise DecodeError(f"a {kind.NAME} section cannot follow a {first.NAME} section", offset=off)


def _name_of(descriptor: int | bytes) -> str:
    """What a descriptor (a code, or a symbolic name as bytes) names, for error messages."""
    for cls in ALL_TYPES:
        known: Any = cls
        if descriptor in (known.DESCRIPTOR, known.NAME.encode("ascii")):
            return str(known.NAME)
    if isinstance(descriptor, bytes):
        return f"unknown descriptor {Symbol(descriptor.decode('ascii', 'replace'))!r}"
    return f"unknown descriptor {ULong(descriptor)!r}"


def _describe(value: Any) -> str:
    name = getattr(type(value), "NAME", None)
    if name is not None:
        return str(name)
    descriptor = getattr(value, "descriptor", None)
    if descriptor is not None:
        return f"unknown descriptor {descriptor!r}"
    return f"a bare {type(value).__name__}"


# --- the lazy view --------------------------------------------------------------------------------

# Section descriptor (code or symbolic name) -> rank.
_SECTION_RANK: Final[dict[Any, int]] = {}
_BODY_CLASS: Final[dict[Any, Any]] = {}


def _index_sections() -> None:
    for cls, rank in _RANK.items():
        section: Any = cls
        for key in (section.DESCRIPTOR, section.NAME.encode("ascii")):
            _SECTION_RANK[key] = rank
            if rank == _BODY:
                _BODY_CLASS[key] = section


_index_sections()

# The same two tables by the code of the usual ``00 53 <code>`` descriptor: a list read is
# cheaper than a dict lookup, and every message's sections are looked up here.
_RANK_OF_CODE: Final[list[int]] = [_SECTION_RANK.get(code, -1) for code in range(256)]
_BODY_OF_CODE: Final[list[Any]] = [_BODY_CLASS.get(code) for code in range(256)]

# Rank -> descriptor code, for the sections that are alone in their rank.
_CODE_OF_RANK: Final[dict[int, int]] = {
    rank: cls.DESCRIPTOR for cls, rank in _RANK.items() if rank != _BODY
}

_BODY_TYPE_NAMES: Final[dict[type, BodyType]] = {
    Data: "data",
    AmqpSequence: "sequence",
    AmqpValue: "value",
}


class _Keep:
    """The default of :meth:`MessageView.with_header` arguments: leave the value as it is."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "KEEP"


#: :meth:`MessageView.with_header`'s default for each field: leave it as it is.
KEEP: Final = _Keep()
_UNSET: Final[Any] = object()


def _scan(buf: bytes) -> tuple[tuple[int, ...], Any]:
    """Section bounds and the body section class.

    ``bounds[3 * rank : 3 * rank + 3]`` are the start, value offset and end of
    the section of that rank (``-1`` when absent); for the body, from the
    first body section to the end of the last.  A tuple of ints: the cyclic
    collector stops tracking it at its first pass, so a queue of many messages
    does not make every later pass walk their bounds.
    """
    bounds = [-1] * 21
    end = len(buf)
    last = -1
    body_kind: Any = None
    off = 0
    while off < end:
        if buf[off] != 0x00:
            raise DecodeError("a message section must be a described value", offset=off)
        key, value_at = descriptor_at(buf, off)
        if value_at >= end:
            raise DecodeError("truncated section: no value after the descriptor", offset=off)
        if type(key) is int and key < 256:
            rank = _RANK_OF_CODE[key]
            kind = _BODY_OF_CODE[key]
        else:
            rank = _SECTION_RANK.get(key, -1)
            kind = _BODY_CLASS.get(key)
        if rank < 0:
            raise DecodeError(f"not a message section: {_name_of(key)}", offset=off)
        nxt = skip_value(buf, value_at)
        first_body = rank == _BODY and body_kind is None
        body_kind = _placed(rank, kind, body_kind, last, off)
        if rank == _BODY:
            if first_body:
                bounds[15] = off
                bounds[16] = value_at
            bounds[17] = nxt
        else:
            bounds[3 * rank] = off
            bounds[3 * rank + 1] = value_at
            bounds[3 * rank + 2] = nxt
        last = rank
        off = nxt
    return tuple(bounds), body_kind


# Distinct header encodings -> their (immutable) Header, bounded.
