"""AMQP 1.0 messages: :class:`Message` for applications, :class:`MessageView` for the hot path.

A message on the wire is a run of sections, in this order (part 3.2)::

    header? delivery-annotations? message-annotations? properties?
    application-properties? body footer?

where the body is one ``amqp-value``, or one or more ``data`` sections, or one
or more ``amqp-sequence`` sections.  The *bare message* (properties through
body) is immutable in transit; everything before it may change hop by hop.

:class:`Message` is the whole message as plain Python values, for
applications::

    >>> msg = Message("hello", to="queue://orders", durable=True,
    ...               application_properties={"region": "eu"})
    >>> Message.decode(msg.encode()) == msg
    True

The body goes in the section its Python type says: ``bytes`` (or
``bytearray``/``memoryview``) is one ``data`` section, :class:`Sections` of
``bytes`` is several ``data`` sections, :class:`Sections` of lists is several
``amqp-sequence`` sections, and anything else is one ``amqp-value``.
``body_type`` overrides that: ``"value"`` sends bytes as an ``amqp-value``,
``"sequence"`` sends a list as one ``amqp-sequence`` section and ``"data"``
also takes a plain list of ``bytes`` (one section each).  Decoding sets
``body_type`` only where the body's Python type alone would say otherwise, so
a decoded message compares equal to the one that was sent.

:class:`MessageView` reads encoded message bytes without decoding them: it
finds the section boundaries from the size fields, decodes header,
annotations, properties and application-properties only when asked, never
touches the body, and re-encodes only the header (and annotations) in front
of the untouched bare message.  A broker or router holds one of these per
message.
"""

from __future__ import annotations

import datetime as _dt
import struct
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, fields
from typing import Any, Final, Literal

from . import codec
from .codec.constructors import NAMES as _CONSTRUCTOR_NAMES
from .errors import DecodeError, EncodeError
from .spec import ALL_TYPES, REGISTRY
from .spec.messaging import (
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
from .types import Symbol, Timestamp, ULong

__all__ = ["KEEP", "BodyType", "Message", "MessageView", "Sections", "skip_value"]

BodyType = Literal["value", "data", "sequence"]

_BYTES_LIKE = (bytes, bytearray, memoryview)


class Sections(tuple[Any, ...]):
    """A body of several sections: ``data`` sections (``bytes``) or ``amqp-sequence`` (lists)::

        Message(Sections(b"part one", b"part two"))   # two data sections
        Message(Sections([1, 2], [3]))                # two amqp-sequence sections

    A single section needs no wrapper: ``Message(b"...")`` is one data section
    and ``Message([1, 2], body_type="sequence")`` one amqp-sequence section.
    """

    __slots__ = ()

    def __new__(cls, *parts: Any) -> Sections:
        return tuple.__new__(cls, parts)

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return f"Sections({', '.join(repr(p) for p in self)})"


# Section order: the rank of each section type; body sections share one rank.
_HEADER, _DELIVERY_ANN, _MESSAGE_ANN, _PROPERTIES, _APP_PROPS, _BODY, _FOOTER = range(7)

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
_RANK_NAMES = (
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
    value, nxt = codec.decode_from(buf, value_at, registry=REGISTRY)
    try:
        return _FACTORY[code](value), nxt
    except DecodeError as exc:
        if exc.offset is None:
            raise DecodeError(exc.description, offset=off) from None
        raise


_encode_header = Header.encode_fields
_encode_properties = Properties.encode_fields
_encode_delivery_annotations = DeliveryAnnotations.encode_value
_encode_message_annotations = MessageAnnotations.encode_value
_encode_application_properties = ApplicationProperties.encode_value
_encode_data = Data.encode_value
_encode_sequence = AmqpSequence.encode_value
_encode_value = AmqpValue.encode_value
_encode_footer = Footer.encode_value


@dataclass(slots=True, repr=False)
class Message:
    """An AMQP message: header and properties fields, annotations, application properties, body.

    Header fields (``durable`` ... ``delivery_count``) and properties fields
    (``message_id`` ... ``reply_to_group_id``) use the spec's names.  Times
    are float seconds, as everywhere in Petrel's API: ``ttl`` is a duration in
    seconds, ``absolute_expiry_time`` and ``creation_time`` are seconds since
    the epoch (``time.time()``).  On the wire they are exact milliseconds (a
    ``uint`` and two ``timestamp`` values), rounded to the nearest
    millisecond when encoding; decoding gives floats again.  The two times
    also take a :class:`~petrel.types.Timestamp` (taken as the milliseconds
    it holds) or an aware :class:`~datetime.datetime`.
    :class:`MessageView` keeps the wire units (milliseconds).  An ``int``
    ``message_id`` or ``correlation_id`` is sent as a ``ulong``.
    ``application_properties`` has ``str`` keys; the annotation maps and the
    footer take ``Symbol`` (a plain ``str`` key is sent as a symbol) or
    ``ULong`` keys.  See the module docstring for ``body`` and ``body_type``.
    """

    body: Any = None
    _: KW_ONLY
    body_type: BodyType | None = None
    # header
    durable: bool = False
    priority: int = 4
    ttl: float | None = None
    first_acquirer: bool = False
    delivery_count: int = 0
    # properties
    message_id: Any = None
    user_id: bytes | None = None
    to: str | None = None
    subject: str | None = None
    reply_to: str | None = None
    correlation_id: Any = None
    content_type: str | None = None
    content_encoding: str | None = None
    absolute_expiry_time: float | None = None
    creation_time: float | None = None
    group_id: str | None = None
    group_sequence: int | None = None
    reply_to_group_id: str | None = None
    # other sections
    delivery_annotations: dict[Any, Any] | None = None
    message_annotations: dict[Any, Any] | None = None
    application_properties: dict[str, Any] | None = None
    footer: dict[Any, Any] | None = None

    def __repr__(self) -> str:
        parts = [] if self.body is None else [repr(self.body)]
        for name, default in _REPR_DEFAULTS:
            value = getattr(self, name)
            if value is not default and value != default:
                parts.append(f"{name}={value!r}")
        return f"Message({', '.join(parts)})"

    # --- encoding -------------------------------------------------------------------------

    def encode(self) -> bytes:
        """The message's sections, encoded in spec order.

        The header goes out only when a header field differs from its
        default, the properties only when one of them is set, each map
        section only when it is not ``None``.  Raises
        :class:`~petrel.errors.EncodeError` when a field cannot be encoded.
        """
        out = bytearray()
        self.encode_into(out)
        return bytes(out)

    def encode_into(self, out: bytearray) -> None:
        """Append the encoded message to ``out`` (after a transfer performative, say)."""
        start = len(out)
        try:
            self._encode(out)
        except EncodeError:
            del out[start:]
            raise
        except (
            struct.error,
            OverflowError,
            UnicodeEncodeError,
            TypeError,
            AttributeError,
            ValueError,
        ) as exc:
            del out[start:]
            raise EncodeError(f"cannot encode message: {exc}") from None

    def _encode(self, out: bytearray) -> None:
        durable = self.durable
        priority = self.priority
        ttl = self.ttl
        first_acquirer = self.first_acquirer
        delivery_count = self.delivery_count
        if durable or priority != 4 or ttl is not None or first_acquirer or delivery_count:
            ttl_ms = None if ttl is None else _milliseconds(ttl)
            _encode_header(out, (durable, priority, ttl_ms, first_acquirer, delivery_count))
        if self.delivery_annotations is not None:
            _encode_delivery_annotations(out, self.delivery_annotations)
        if self.message_annotations is not None:
            _encode_message_annotations(out, self.message_annotations)
        props = (
            self.message_id,
            self.user_id,
            self.to,
            self.subject,
            self.reply_to,
            self.correlation_id,
            self.content_type,
            self.content_encoding,
            self.absolute_expiry_time,
            self.creation_time,
            self.group_id,
            self.group_sequence,
            self.reply_to_group_id,
        )
        if props != _NO_PROPERTIES:
            if (
                type(props[0]) is int
                or type(props[5]) is int
                or props[8] is not None
                or props[9] is not None
            ):
                props = _wire_properties(props)
            _encode_properties(out, props)
        app = self.application_properties
        if app is not None:
            for key in app:
                if type(key) is not str:
                    raise EncodeError(
                        f"application-properties keys must be str, got {type(key).__name__}"
                    )
            _encode_application_properties(out, app)
        self._encode_body(out)
        if self.footer is not None:
            _encode_footer(out, self.footer)

    def _encode_body(self, out: bytearray) -> None:
        body = self.body
        kind = self.body_type
        if kind is None:
            if isinstance(body, _BYTES_LIKE):
                _encode_data(out, body)
                return
            if type(body) is Sections:
                kind = "data" if body and isinstance(body[0], _BYTES_LIKE) else "sequence"
            else:
                _encode_value(out, body)
                return
        if kind == "value":
            _encode_value(out, body)
        elif kind == "data":
            parts = body if isinstance(body, (list, tuple)) else (body,)
            if not parts:
                raise EncodeError("a data body needs at least one section")
            for part in parts:
                if not isinstance(part, _BYTES_LIKE):
                    raise EncodeError(f"a data section holds bytes, got {type(part).__name__}")
                _encode_data(out, part)
        elif kind == "sequence":
            parts = body if type(body) is Sections else (body,)
            if not parts:
                raise EncodeError("a sequence body needs at least one section")
            for part in parts:
                if not isinstance(part, (list, tuple)):
                    raise EncodeError(f"an amqp-sequence holds a list, got {type(part).__name__}")
                _encode_sequence(out, part)
        else:
            raise EncodeError(f"unknown body_type {kind!r} (value, data or sequence)")

    # --- decoding -------------------------------------------------------------------------

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Message:
        """Decode a whole encoded message.

        Raises :class:`~petrel.errors.DecodeError` when the data is not a
        valid message: a value that is not a message section, sections out of
        order or repeated, body sections of mixed kinds, a section with
        fields of the wrong type, or bytes left over.
        """
        buf = data if type(data) is bytes else bytes(data)
        end = len(buf)
        msg = cls()
        decode_from = codec.decode_from
        registry = REGISTRY
        last = -1
        body_kind: Any = None
        body_parts: list[Any] = []
        off = 0
        while off < end:
            if buf[off] == 0x00 and off + 2 < end and buf[off + 1] == 0x53:
                code = buf[off + 2]
                if code not in _FACTORY:
                    raise DecodeError(f"not a message section: {_name_of(code)}", offset=off)
                section, nxt = _section_at(buf, off, off + 3, code)
            else:
                # Symbolic or 8-byte descriptors, or no section at all.
                section, nxt = decode_from(buf, off, registry=registry)
            kind = type(section)
            rank = _RANK.get(kind, -1)
            if rank < 0:
                raise DecodeError(f"not a message section: {_describe(section)}", offset=off)
            if rank == _BODY:
                if body_kind is None:
                    if last > _BODY:
                        raise _order_error(rank, last, off)
                    body_kind = kind
                else:
                    _check_next_body(kind, body_kind, last, off)
                body_parts.append(section.value)
            elif rank <= last:
                raise _order_error(rank, last, off)
            elif rank == _HEADER:
                (
                    msg.durable,
                    msg.priority,
                    ttl_ms,
                    msg.first_acquirer,
                    msg.delivery_count,
                ) = section
                if ttl_ms is not None:
                    msg.ttl = ttl_ms / 1000
            elif rank == _PROPERTIES:
                (
                    msg.message_id,
                    msg.user_id,
                    msg.to,
                    msg.subject,
                    msg.reply_to,
                    msg.correlation_id,
                    msg.content_type,
                    msg.content_encoding,
                    expiry,
                    created,
                    msg.group_id,
                    msg.group_sequence,
                    msg.reply_to_group_id,
                ) = section
                if expiry is not None:
                    msg.absolute_expiry_time = expiry / 1000
                if created is not None:
                    msg.creation_time = created / 1000
            elif rank == _DELIVERY_ANN:
                msg.delivery_annotations = section.value
            elif rank == _MESSAGE_ANN:
                msg.message_annotations = section.value
            elif rank == _APP_PROPS:
                msg.application_properties = section.value
            else:
                msg.footer = section.value
            last = rank
            off = nxt
        if body_kind is not None:
            msg.body, msg.body_type = _body_from_parts(body_kind, body_parts)
        return msg


_REPR_DEFAULTS: Final = tuple(
    (f.name, f.default) for f in fields(Message) if f.name not in ("body", "_")
)
_NO_PROPERTIES: Final = (None,) * 13


def _milliseconds(seconds: float) -> int:
    """A duration in seconds as the whole milliseconds the wire carries."""
    return round(seconds * 1000)


def _timestamp(when: Any) -> Timestamp:
    """Seconds since the epoch (or a ``Timestamp``, or an aware ``datetime``) as a timestamp."""
    if type(when) is Timestamp:
        return when
    if isinstance(when, _dt.datetime):
        return Timestamp.from_datetime(when)
    return Timestamp(round(when * 1000))


def _wire_properties(props: tuple[Any, ...]) -> tuple[Any, ...]:
    """The properties as the wire wants them.

    A plain ``int`` message-id or correlation-id goes as the ``ulong`` the
    spec allows; the two times go from seconds to millisecond timestamps.
    """
    values = list(props)
    for i in (0, 5):
        if type(values[i]) is int:
            values[i] = ULong(values[i])
    for i in (8, 9):
        if values[i] is not None:
            values[i] = _timestamp(values[i])
    return tuple(values)


def _body_from_parts(kind: type, parts: list[Any]) -> tuple[Any, BodyType | None]:
    """The ``body`` and ``body_type`` of decoded body sections (see the module docstring)."""
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


def _order_error(rank: int, last: int, off: int) -> DecodeError:
    if rank == last:
        return DecodeError(f"repeated {_RANK_NAMES[rank]} section", offset=off)
    return DecodeError(
        f"{_RANK_NAMES[rank]} section after the {_RANK_NAMES[last]} section", offset=off
    )


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


# --- skipping encoded values --------------------------------------------------------------------
#
# The width of a value follows from its constructor's category (part 1, the
# high nibble of the format code): fixed 0/1/2/4/8/16 bytes, variable with a
# 1- or 4-byte size, compound or array with a 1- or 4-byte size.  Only the
# constructors the spec defines are accepted, as the decoder does.

_u32 = struct.Struct(">I").unpack_from
_u64 = struct.Struct(">Q").unpack_from

# constructor -> (bytes of the size field, fixed width, smallest legal size)
_FIXED = {0x4: 0, 0x5: 1, 0x6: 2, 0x7: 4, 0x8: 8, 0x9: 16}
_SIZED = {0xA: (1, 0), 0xB: (4, 0), 0xC: (1, 1), 0xD: (4, 4), 0xE: (1, 2), 0xF: (4, 5)}


def _widths() -> list[tuple[int, int, int] | None]:
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
_DESCRIPTOR_CODES = frozenset((0x80, 0x53, 0x44, 0xA3, 0xB3))


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
                raise DecodeError(
                    "a descriptor must be a ulong or a symbol, got "
                    + _CONSTRUCTOR_NAMES.get(desc_code, f"0x{desc_code:02x}"),
                    offset=offset + 1,
                )
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


KEEP: Final = _Keep()
_UNSET: Final[Any] = object()


def _scan(buf: bytes) -> tuple[list[int], Any]:
    """Section bounds and the body section class.

    ``bounds[3 * rank : 3 * rank + 3]`` are the start, value offset and end of
    the section of that rank (``-1`` when absent); for the body, from the
    first body section to the end of the last.
    """
    bounds = [-1] * 21
    end = len(buf)
    last = -1
    body_kind: Any = None
    off = 0
    while off < end:
        if buf[off] != 0x00:
            raise DecodeError("a message section must be a described value", offset=off)
        try:
            desc = buf[off + 1]
            if desc == 0x53:
                key: Any = buf[off + 2]
                value_at = off + 3
            elif desc == 0x80:
                key = _u64(buf, off + 2)[0]
                value_at = off + 10
            elif desc == 0xA3:
                value_at = off + 3 + buf[off + 2]
                key = buf[off + 3 : value_at]
            elif desc == 0xB3:
                value_at = off + 6 + _u32(buf, off + 2)[0]
                key = buf[off + 6 : value_at]
            elif desc == 0x44:
                key = 0
                value_at = off + 2
            else:
                raise DecodeError(
                    "a descriptor must be a ulong or a symbol, got "
                    + _CONSTRUCTOR_NAMES.get(desc, f"0x{desc:02x}"),
                    offset=off + 1,
                )
        except (IndexError, struct.error):
            raise DecodeError("truncated section descriptor", offset=off) from None
        if value_at >= end:
            raise DecodeError("truncated section: no value after the descriptor", offset=off)
        rank = _SECTION_RANK.get(key, -1)
        if rank < 0:
            raise DecodeError(f"not a message section: {_name_of(key)}", offset=off)
        nxt = skip_value(buf, value_at)
        if rank == _BODY:
            kind = _BODY_CLASS[key]
            if body_kind is None:
                if last > _BODY:
                    raise _order_error(rank, last, off)
                body_kind = kind
                bounds[15] = off
                bounds[16] = value_at
            else:
                _check_next_body(kind, body_kind, last, off)
            bounds[17] = nxt
        elif rank <= last:
            raise _order_error(rank, last, off)
        else:
            bounds[3 * rank] = off
            bounds[3 * rank + 1] = value_at
            bounds[3 * rank + 2] = nxt
        last = rank
        off = nxt
    return bounds, body_kind


# Distinct header encodings -> their (immutable) Header, bounded.
_HEADER_CACHE: dict[bytes, Any] = {}
_HEADER_CACHE_MAX = 1024

# Properties fields read on their own (field index -> the types a valid value has);
# any other type falls back to decoding the whole section, which reports the error.
_FAST_PROPERTY_TYPES: Final[dict[int, frozenset[type]]] = {
    2: frozenset({str}),  # to (an address string)
    8: frozenset({Timestamp}),  # absolute-expiry-time
    10: frozenset({str}),  # group-id
}


def _read_field(buf: bytes, at: int, index: int) -> Any:
    """Field ``index`` of the list encoded at ``at`` (``None`` past its end), decoding only
    that field; ``_UNSET`` when the list is not in a form this fast path reads."""
    if at < 0:
        return None
    code = buf[at]
    if code == 0x45:
        return None
    try:
        if code == 0xC0:
            count = buf[at + 2]
            pos = at + 3
        elif code == 0xD0:
            count = _u32(buf, at + 5)[0]
            pos = at + 9
        else:
            return _UNSET
        if index >= count:
            return None
        for _ in range(index):
            pos = skip_value(buf, pos)
        return codec.decode_from(buf, pos)[0]
    except (DecodeError, IndexError, struct.error):
        return _UNSET


class MessageView:
    """Encoded message bytes, read lazily: the broker's and router's view of a message.

    Building a view only finds where each section starts and ends (from the
    constructors' size fields); nothing is decoded.  The header, annotations,
    properties, application-properties and footer are decoded the first time
    they are read, and kept; the body is never decoded here.  Reading a field
    of a malformed section raises :class:`~petrel.errors.DecodeError`; a
    malformed section *structure* already raises when the view is built.

    :meth:`with_header` re-encodes the header (and, if asked, the
    annotations) and splices it in front of the bare message bytes, which
    are passed on exactly as received.

    Unlike :class:`Message`, a view speaks wire units: ``ttl`` is a ``UInt``
    of milliseconds and ``creation_time``/``absolute_expiry_time`` are
    :class:`~petrel.types.Timestamp` milliseconds since the epoch, exactly
    as they were encoded.
    """

    __slots__ = (
        "_ann",
        "_app",
        "_body_kind",
        "_bounds",
        "_dann",
        "_data",
        "_footer",
        "_header",
        "_props",
    )

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        buf = data if type(data) is bytes else bytes(data)
        self._data = buf
        self._bounds, self._body_kind = _scan(buf)
        self._header: Any = _UNSET
        self._dann: Any = _UNSET
        self._ann: Any = _UNSET
        self._props: Any = _UNSET
        self._app: Any = _UNSET
        self._footer: Any = _UNSET

    def _section(self, rank: int) -> Any:
        bounds = self._bounds
        start = bounds[3 * rank]
        if start < 0:
            return None
        return _section_at(self._data, start, bounds[3 * rank + 1], _CODE_OF_RANK[rank])[0]

    def __repr__(self) -> str:
        present = [_RANK_NAMES[r] for r in range(7) if self._bounds[3 * r] >= 0]
        return f"<MessageView {len(self._data)} bytes: {', '.join(present)}>"

    def __bytes__(self) -> bytes:
        return self._data

    def __len__(self) -> int:
        return len(self._data)

    @property
    def data(self) -> bytes:
        """The whole encoded message, as given."""
        return self._data

    # --- sections -----------------------------------------------------------------------

    @property
    def header(self) -> Header | None:
        """The decoded header section, or ``None`` when there is none."""
        header = self._header
        if header is _UNSET:
            bounds = self._bounds
            start = bounds[0]
            if start < 0:
                header = None
            else:
                # Headers repeat endlessly (a few flag and count combinations), and a
                # Header is immutable: decode each distinct encoding once.
                raw = self._data[start : bounds[2]]
                header = _HEADER_CACHE.get(raw)
                if header is None:
                    header = self._section(_HEADER)
                    if len(raw) <= 32 and len(_HEADER_CACHE) < _HEADER_CACHE_MAX:
                        _HEADER_CACHE[raw] = header
            self._header = header
        return header  # type: ignore[no-any-return]

    @property
    def delivery_annotations(self) -> dict[Any, Any] | None:
        """The delivery-annotations map, or ``None``."""
        if self._dann is _UNSET:
            section = self._section(_DELIVERY_ANN)
            self._dann = None if section is None else section.value
        return self._dann  # type: ignore[no-any-return]

    @property
    def message_annotations(self) -> dict[Any, Any] | None:
        """The message-annotations map, or ``None``."""
        if self._ann is _UNSET:
            section = self._section(_MESSAGE_ANN)
            self._ann = None if section is None else section.value
        return self._ann  # type: ignore[no-any-return]

    @property
    def properties(self) -> Properties | None:
        """The decoded properties section, or ``None`` when there is none."""
        if self._props is _UNSET:
            self._props = self._section(_PROPERTIES)
        return self._props  # type: ignore[no-any-return]

    @property
    def application_properties(self) -> dict[str, Any] | None:
        """The application-properties map, or ``None``."""
        if self._app is _UNSET:
            section = self._section(_APP_PROPS)
            self._app = None if section is None else section.value
        return self._app  # type: ignore[no-any-return]

    @property
    def footer(self) -> dict[Any, Any] | None:
        """The footer map, or ``None``."""
        if self._footer is _UNSET:
            section = self._section(_FOOTER)
            self._footer = None if section is None else section.value
        return self._footer  # type: ignore[no-any-return]

    @property
    def body_type(self) -> BodyType | None:
        """Which kind of body sections the message has (``None`` if it has none)."""
        kind = self._body_kind
        return None if kind is None else _BODY_TYPE_NAMES[kind]

    @property
    def body_bytes(self) -> bytes:
        """The encoded body sections, undecoded (empty if there is no body)."""
        start, end = self._bounds[15], self._bounds[17]
        return b"" if start < 0 else self._data[start:end]

    @property
    def bare_message(self) -> bytes:
        """The encoded bare message: properties through body, exactly as received."""
        start = self._bare_start()
        end = self._bare_end()
        return self._data[start:end]

    def _bare_start(self) -> int:
        """Where the bare message starts: the first section after the annotations."""
        bounds = self._bounds
        for rank in (_PROPERTIES, _APP_PROPS, _BODY, _FOOTER):
            if bounds[3 * rank] >= 0:
                return bounds[3 * rank]
        return len(self._data)

    def _bare_end(self) -> int:
        bounds = self._bounds
        for rank in (_BODY, _APP_PROPS, _PROPERTIES):
            if bounds[3 * rank] >= 0:
                return bounds[3 * rank + 2]
        return self._bare_start()

    # --- header fields ------------------------------------------------------------------

    @property
    def durable(self) -> bool:
        h = self.header
        return False if h is None else bool(h[0])

    @property
    def priority(self) -> int:
        h = self.header
        return 4 if h is None else int(h[1])

    @property
    def ttl(self) -> int | None:
        """Time to live in milliseconds, or ``None``."""
        h = self.header
        return None if h is None else h[2]

    @property
    def first_acquirer(self) -> bool:
        h = self.header
        return False if h is None else bool(h[3])

    @property
    def delivery_count(self) -> int:
        h = self.header
        return 0 if h is None else int(h[4])

    # --- properties fields --------------------------------------------------------------

    def _prop(self, index: int) -> Any:
        props = self._props
        if props is _UNSET:
            accepts = _FAST_PROPERTY_TYPES.get(index)
            if accepts is not None:
                # Read just this field, skipping the others undecoded (the broker's
                # routing reads one or two fields of every message).
                value = _read_field(self._data, self._bounds[3 * _PROPERTIES + 1], index)
                if value is not _UNSET and (value is None or type(value) in accepts):
                    return value
            props = self.properties
        return None if props is None else props[index]

    @property
    def message_id(self) -> Any:
        return self._prop(0)

    @property
    def user_id(self) -> bytes | None:
        return self._prop(1)  # type: ignore[no-any-return]

    @property
    def to(self) -> Any:
        return self._prop(2)

    @property
    def subject(self) -> str | None:
        return self._prop(3)  # type: ignore[no-any-return]

    @property
    def reply_to(self) -> Any:
        return self._prop(4)

    @property
    def correlation_id(self) -> Any:
        return self._prop(5)

    @property
    def content_type(self) -> Symbol | None:
        return self._prop(6)  # type: ignore[no-any-return]

    @property
    def content_encoding(self) -> Symbol | None:
        return self._prop(7)  # type: ignore[no-any-return]

    @property
    def absolute_expiry_time(self) -> Timestamp | None:
        return self._prop(8)  # type: ignore[no-any-return]

    @property
    def creation_time(self) -> Timestamp | None:
        return self._prop(9)  # type: ignore[no-any-return]

    @property
    def group_id(self) -> str | None:
        return self._prop(10)  # type: ignore[no-any-return]

    @property
    def group_sequence(self) -> int | None:
        return self._prop(11)  # type: ignore[no-any-return]

    @property
    def reply_to_group_id(self) -> str | None:
        return self._prop(12)  # type: ignore[no-any-return]

    # --- re-encoding --------------------------------------------------------------------

    def with_header(
        self,
        *,
        durable: bool | _Keep = KEEP,
        priority: int | _Keep = KEEP,
        ttl: int | _Keep | None = KEEP,
        first_acquirer: bool | _Keep = KEEP,
        delivery_count: int | _Keep = KEEP,
        delivery_annotations: dict[Any, Any] | _Keep | None = KEEP,
        message_annotations: dict[Any, Any] | _Keep | None = KEEP,
    ) -> bytes:
        """The message with a new header in front of the untouched rest.

        Each argument left out keeps its current value; ``ttl=None`` removes
        the TTL.  ``delivery_annotations`` and ``message_annotations`` replace
        those sections (``None`` drops one); left out, their bytes are copied
        as they are.  The properties, application-properties, body and footer
        bytes are never re-encoded.  A header whose fields all hold their
        defaults is left out.
        """
        h = self.header
        old = (False, 4, None, False, 0) if h is None else h
        values = (
            old[0] if durable is KEEP else durable,
            old[1] if priority is KEEP else priority,
            old[2] if ttl is KEEP else ttl,
            old[3] if first_acquirer is KEEP else first_acquirer,
            old[4] if delivery_count is KEEP else delivery_count,
        )
        out = bytearray()
        if values[0] or values[1] != 4 or values[2] is not None or values[3] or values[4]:
            try:
                _encode_header(out, values)
            except (struct.error, OverflowError, TypeError, ValueError) as exc:
                raise EncodeError(f"cannot encode header: {exc}") from None
        data = self._data
        bounds = self._bounds
        for rank, given, encode in (
            (_DELIVERY_ANN, delivery_annotations, _encode_delivery_annotations),
            (_MESSAGE_ANN, message_annotations, _encode_message_annotations),
        ):
            if given is KEEP:
                if bounds[3 * rank] >= 0:
                    out += data[bounds[3 * rank] : bounds[3 * rank + 2]]
            elif given is not None:
                start = len(out)
                try:
                    encode(out, given)
                except (struct.error, OverflowError, TypeError, ValueError, AttributeError) as e:
                    del out[start:]
                    raise EncodeError(f"cannot encode {_RANK_NAMES[rank]}: {e}") from None
        rest = self._bare_start()
        if rest == 0 and not out:
            return data
        # One copy of the bare message, straight into the result.
        return b"".join((out, memoryview(data)[rest:]))

    def decode(self) -> Message:
        """The whole message, decoded (body included)."""
        return Message.decode(self._data)
