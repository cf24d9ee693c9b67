"""``Message``: a whole AMQP message as plain Python values."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import KW_ONLY, MISSING, dataclass, fields
from typing import Any, Final

from ..codec import ENCODE_FAILURES
from ..errors import EncodeError
from ..types import Timestamp, ULong
from ._body import Sections
from ._sections import (
    _BYTES_LIKE,
    BodyType,
    _encode_application_properties,
    _encode_data,
    _encode_delivery_annotations,
    _encode_footer,
    _encode_header,
    _encode_message_annotations,
    _encode_properties,
    _encode_sequence,
    _encode_value,
    read_sections,
)


def _header_bytes(fields: tuple[Any, ...]) -> bytes:
    out = bytearray()
    _encode_header(out, fields)
    return bytes(out)


#: The header of a message that sets only ``durable``, the most common one, encoded once.
_DURABLE_HEADER = _header_bytes((True, 4, None, False, 0))


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
        except ENCODE_FAILURES as exc:
            del out[start:]
            raise EncodeError(f"cannot encode message: {exc}") from None

    def _encode(self, out: bytearray) -> None:
        durable = self.durable
        priority = self.priority
        ttl = self.ttl
        first_acquirer = self.first_acquirer
        delivery_count = self.delivery_count
        if durable or priority != 4 or ttl is not None or first_acquirer or delivery_count:
            if (
                durable is True
                and ttl is None
                and first_acquirer is False
                and type(priority) is int
                and priority == 4
                and type(delivery_count) is int
                and delivery_count == 0
            ):
                out += _DURABLE_HEADER  # what the line below would write
            else:
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
        msg = _blank() if cls is Message else cls()
        (
            header,
            msg.delivery_annotations,
            msg.message_annotations,
            props,
            msg.application_properties,
            msg.body,
            msg.body_type,
            msg.footer,
        ) = read_sections(buf)
        if header is not None:
            (
                msg.durable,
                msg.priority,
                ttl_ms,
                msg.first_acquirer,
                msg.delivery_count,
            ) = header
            if ttl_ms is not None:
                msg.ttl = ttl_ms / 1000
        if props is not None:
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
            ) = props
            if expiry is not None:
                msg.absolute_expiry_time = expiry / 1000
            if created is not None:
                msg.creation_time = created / 1000
        return msg


_REPR_DEFAULTS: Final = tuple(
    (f.name, f.default) for f in fields(Message) if f.name not in ("body", "_")
)
_NO_PROPERTIES: Final = (None,) * 13


def _blank_maker() -> Callable[[], Message]:
    """A function that makes ``Message()``: every field at its default.

    Calling ``Message()`` costs a dict lookup per keyword-only field for its
    default; :meth:`Message.decode` makes one message per delivery, so it
    sets the defaults (taken from the dataclass fields) straight into a new
    instance instead.
    """
    namespace: dict[str, Any] = {"_new": object.__new__, "_Message": Message}
    lines = ["def blank():", "    msg = _new(_Message)"]
    for i, f in enumerate(fields(Message)):
        assert f.default_factory is MISSING  # immutable defaults only: shared safely
        namespace[f"_d{i}"] = f.default
        lines.append(f"    msg.{f.name} = _d{i}")
    lines.append("    return msg")
    exec("\n".join(lines), namespace)
    blank: Callable[[], Message] = namespace["blank"]
    return blank


_blank: Final = _blank_maker()


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
