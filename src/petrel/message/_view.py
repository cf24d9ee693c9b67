"""``MessageView``: encoded message bytes, read lazily (the broker's hot path)."""

from __future__ import annotations

import struct
from collections.abc import Collection
from typing import Any, Final, NoReturn

from .. import codec
from ..codec import NOT_READ, compound_at, list_field, skip_value, text_at
from ..codec.constructors import MAP8, MAP32, STR8, STR32
from ..errors import DecodeError, EncodeError
from ..spec.messaging import (
    Header,
    Properties,
)
from ..types import Symbol, Timestamp
from ._message import Message
from ._sections import (
    _APP_PROPS,
    _BODY,
    _BODY_TYPE_NAMES,
    _CODE_OF_RANK,
    _DELIVERY_ANN,
    _FOOTER,
    _HEADER,
    _MESSAGE_ANN,
    _PROPERTIES,
    _RANK_NAMES,
    _UNSET,
    KEEP,
    BodyType,
    _encode_delivery_annotations,
    _encode_header,
    _encode_message_annotations,
    _Keep,
    _scan,
    _section_at,
)

#: ``with_header(add_message_annotations=...)``: the annotations are rewritten from their
#: encoding, not from a decoded map.  A second ``_Keep`` rather than a bare ``object()``: the
#: argument it stands in for is typed, and a compiled build checks that type.
_KEPT_AS_ENCODED: Final = _Keep()

_MAPS: Final = frozenset((MAP8, MAP32))
_STRINGS: Final = frozenset((STR8, STR32))

_HEADER_CACHE: Final[dict[bytes, Any]] = {}
_HEADER_CACHE_MAX: Final = 1024
_DEFAULT_HEADER: Final = Header()

# Properties fields read on their own (field index -> the types a valid value has);
# any other type falls back to decoding the whole section, which reports the error.
_FAST_PROPERTY_TYPES: Final[dict[int, frozenset[type]]] = {
    2: frozenset({str}),  # to (an address string)
    8: frozenset({Timestamp}),  # absolute-expiry-time
    10: frozenset({str}),  # group-id
}


def _key_in(data: bytes, at: int, keys: dict[Any, Any]) -> bool:
    """Whether the map key encoded at ``at`` is one of ``keys``; a key that does not
    decode, or cannot be one (a list, say), is not."""
    try:
        return codec.decode_from(data, at)[0] in keys
    except (DecodeError, TypeError):
        return False


class EncodedAnnotations:
    """Message-annotation entries encoded once, to be set on many messages with
    :meth:`MessageView.with_header` (``add_message_annotations``)."""

    __slots__ = ("count", "entries", "keys")

    def __init__(self, values: dict[Any, Any]) -> None:
        fresh = bytearray()
        if values:
            _encode_message_annotations(fresh, values)
            # Our own encoding: 00 53 72, then a map8 (c1 size count) or map32 (d1 size count).
            skip = 6 if fresh[3] == 0xC1 else 12
            self.entries = bytes(fresh[skip:])
        else:
            self.entries = b""
        #: Map items (keys and values) in :attr:`entries`.
        self.count = 2 * len(values)
        self.keys: dict[Any, None] = dict.fromkeys(values)


_NO_ANNOTATIONS: Final[EncodedAnnotations] = EncodedAnnotations({})


def _write_annotations(out: bytearray, parts: list[Any], count: int) -> None:
    """A message-annotations section holding the encoded map items ``parts`` (``count``
    keys and values in all); nothing when there are none."""
    if not count:
        return
    body = b"".join(parts)
    out += b"\x00\x53\x72"
    if len(body) < 255 and count < 256:
        out += bytes((0xC1, len(body) + 1, count))
    else:
        out += b"\xd1" + struct.pack(">II", len(body) + 4, count)
    out += body


class _Undecodable:
    """What a section that does not decode is remembered as: a message stays in a
    queue for a long time and a selector may read it at every dispatch, so the
    work (up to the whole message) is done once, and each read raises again."""

    __slots__ = ("error",)

    def __init__(self, error: DecodeError) -> None:
        self.error = error

    def raise_again(self) -> NoReturn:
        raise self.error.with_traceback(None)


class MessageView:
    """Encoded message bytes, read lazily: the broker's and router's view of a message.

    Building a view only finds where each section starts and ends (from the
    constructors' size fields); nothing is decoded.  The header, annotations,
    properties, application-properties and footer are decoded the first time
    they are read, and kept; the body is never decoded here.  Reading a field
    of a malformed section raises :class:`~petrel.errors.DecodeError`, at
    every read, though the section is decoded only once; a malformed section
    *structure* already raises when the view is built.

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

    def _decoded(self, rank: int, value: bool = True) -> Any:
        """The section of ``rank`` (its ``value``, for the maps), ``None`` when absent, or an
        :class:`_Undecodable` when it does not decode."""
        try:
            section = self._section(rank)
        except DecodeError as exc:
            return _Undecodable(exc)
        return section.value if value and section is not None else section

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
                    header = self._decoded(_HEADER, value=False)
                    if (
                        len(raw) <= 32
                        and len(_HEADER_CACHE) < _HEADER_CACHE_MAX
                        and type(header) is not _Undecodable
                    ):
                        _HEADER_CACHE[raw] = header
            self._header = header
        if type(header) is _Undecodable:
            header.raise_again()
        return header  # type: ignore[no-any-return]

    @property
    def delivery_annotations(self) -> dict[Any, Any] | None:
        """The delivery-annotations map, or ``None``."""
        found = self._dann
        if found is _UNSET:
            self._dann = found = self._decoded(_DELIVERY_ANN)
        if type(found) is _Undecodable:
            found.raise_again()
        return found  # type: ignore[no-any-return]

    @property
    def message_annotations(self) -> dict[Any, Any] | None:
        """The message-annotations map, or ``None``."""
        found = self._ann
        if found is _UNSET:
            self._ann = found = self._decoded(_MESSAGE_ANN)
        if type(found) is _Undecodable:
            found.raise_again()
        return found  # type: ignore[no-any-return]

    @property
    def encoded_message_annotations(self) -> bytes:
        """The message-annotations section as encoded (descriptor included), or ``b""``:
        a key under which what was learnt from it can be kept for the next message."""
        bounds = self._bounds
        start = bounds[3 * _MESSAGE_ANN]
        if start < 0:
            return b""
        return self._data[start : bounds[3 * _MESSAGE_ANN + 2]]

    @property
    def properties(self) -> Properties | None:
        """The decoded properties section, or ``None`` when there is none."""
        found = self._props
        if found is _UNSET:
            self._props = found = self._decoded(_PROPERTIES, value=False)
        if type(found) is _Undecodable:
            found.raise_again()
        return found  # type: ignore[no-any-return]

    @property
    def application_properties(self) -> dict[str, Any] | None:
        """The application-properties map, or ``None``."""
        found = self._app
        if found is _UNSET:
            self._app = found = self._decoded(_APP_PROPS)
        if type(found) is _Undecodable:
            found.raise_again()
        return found  # type: ignore[no-any-return]

    def application_property(self, key: str) -> Any:
        """One application property (``None`` when absent), read without decoding the map:
        when the key's bytes are nowhere in the section nothing is decoded at all, else
        the keys are compared as encoded and only the value asked for is decoded.  A
        section this fast path cannot read is decoded whole (raising its error)."""
        found = self._app
        if found is not _UNSET:
            if type(found) is _Undecodable:
                found.raise_again()
            return None if found is None else found.get(key)
        bounds = self._bounds
        at = bounds[3 * _APP_PROPS + 1]
        if at < 0:
            return None
        data = self._data
        name = key.encode()
        if data.find(name, at, bounds[3 * _APP_PROPS + 2]) < 0:
            return None
        try:
            if data[at] in _MAPS:
                items, pos = compound_at(data, at)
                for _ in range(items // 2):
                    value_at = skip_value(data, pos)
                    if data[pos] in _STRINGS and text_at(data, pos, value_at) == name:
                        return codec.decode_from(data, value_at)[0]
                    pos = skip_value(data, value_at)
                return None
        except (DecodeError, IndexError):
            pass
        app = self.application_properties  # not a form read here: decode it (or raise)
        return None if app is None else app.get(key)

    @property
    def footer(self) -> dict[Any, Any] | None:
        """The footer map, or ``None``."""
        found = self._footer
        if found is _UNSET:
            self._footer = found = self._decoded(_FOOTER)
        if type(found) is _Undecodable:
            found.raise_again()
        return found  # type: ignore[no-any-return]

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
        return False if h is None else bool(h.durable)

    @property
    def priority(self) -> int:
        h = self.header
        return 4 if h is None else int(h.priority)

    @property
    def ttl(self) -> int | None:
        """Time to live in milliseconds, or ``None``."""
        h = self.header
        return None if h is None else h.ttl

    @property
    def first_acquirer(self) -> bool:
        h = self.header
        return False if h is None else bool(h.first_acquirer)

    @property
    def delivery_count(self) -> int:
        h = self.header
        return 0 if h is None else int(h.delivery_count)

    # --- properties fields --------------------------------------------------------------

    def _prop(self, index: int) -> Any:
        props = self._props
        if props is _UNSET:
            accepts = _FAST_PROPERTY_TYPES.get(index)
            if accepts is not None:
                # Read just this field, skipping the others undecoded (the broker's
                # routing reads one or two fields of every message).
                at = self._bounds[3 * _PROPERTIES + 1]
                if at < 0:
                    return None
                value = list_field(self._data, at, index)
                if value is not NOT_READ and (value is None or type(value) in accepts):
                    return value
            props = self.properties
        elif type(props) is _Undecodable:
            props.raise_again()
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
        message_annotations: dict[Any, Any] | EncodedAnnotations | _Keep | None = KEEP,
        add_message_annotations: dict[Any, Any] | EncodedAnnotations | None = None,
        drop_message_annotations: Collection[Any] = (),
    ) -> bytes:
        """The message with a new header in front of the untouched rest.

        Each argument left out keeps its current value; ``ttl=None`` removes
        the TTL.  ``delivery_annotations`` and ``message_annotations`` replace
        those sections (``None`` drops one); left out, their bytes are copied
        as they are.  ``add_message_annotations`` sets these entries in the
        message annotations and keeps the others as they are encoded, without
        decoding their values (so a message whose annotations a broker cannot
        decode can still be annotated and moved).  The properties,
        application-properties, body and footer bytes are never re-encoded.  A
        header whose fields all hold their defaults is left out.
        ``drop_message_annotations`` removes the entries with these keys in the same
        way (the section goes when nothing is left); an :class:`EncodedAnnotations`
        given to ``add_message_annotations`` is copied in without encoding it again
        (a router sets the same few entries on many messages).
        """
        if add_message_annotations is not None or drop_message_annotations:
            if not add_message_annotations:
                add_message_annotations = _NO_ANNOTATIONS
            if message_annotations is not KEEP:
                raise ValueError("give message_annotations or add_message_annotations, not both")
            message_annotations = _KEPT_AS_ENCODED
        old = self.header or _DEFAULT_HEADER
        values = Header(
            durable=old.durable if isinstance(durable, _Keep) else durable,
            priority=old.priority if isinstance(priority, _Keep) else priority,
            ttl=old.ttl if isinstance(ttl, _Keep) else ttl,
            first_acquirer=old.first_acquirer
            if isinstance(first_acquirer, _Keep)
            else first_acquirer,
            delivery_count=old.delivery_count
            if isinstance(delivery_count, _Keep)
            else delivery_count,
        )
        out = bytearray()
        if values != _DEFAULT_HEADER:
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
            elif given is _KEPT_AS_ENCODED:
                assert add_message_annotations is not None
                self._add_annotations(out, add_message_annotations, drop_message_annotations)
            elif isinstance(given, EncodedAnnotations):
                _write_annotations(out, [given.entries], given.count)
            elif given is not None:
                start = len(out)
                try:
                    encode(out, given)
                except (
                    struct.error,
                    OverflowError,
                    TypeError,
                    ValueError,
                    AttributeError,
                ) as e:
                    del out[start:]
                    raise EncodeError(f"cannot encode {_RANK_NAMES[rank]}: {e}") from None
        rest = self._bare_start()
        if rest == 0 and not out:
            return data
        # One copy of the bare message, straight into the result.
        return b"".join((out, memoryview(data)[rest:]))

    def _add_annotations(
        self,
        out: bytearray,
        added: dict[Any, Any] | EncodedAnnotations,
        dropped: Collection[Any] = (),
    ) -> None:
        """Write the message-annotations section with ``added`` set in it and ``dropped``
        taken out: the other entries are copied as encoded (only their keys, small
        symbols or ulongs, are decoded), then ``added`` is encoded after them."""
        if not isinstance(added, EncodedAnnotations):
            added = EncodedAnnotations(added)
        skip: Any = added.keys
        if dropped:
            skip = {**added.keys, **dict.fromkeys(dropped)}
        data = self._data
        kept: list[memoryview] = []
        count = 0
        start = self._bounds[3 * _MESSAGE_ANN + 1]
        if start >= 0 and data[start] != 0x40:  # a null map holds nothing
            code = data[start]
            if code not in _MAPS:
                raise DecodeError(f"message-annotations hold a map, not 0x{code:02x}", offset=start)
            pairs, at = compound_at(data, start)
            view = memoryview(data)
            for _ in range(pairs // 2):
                value_at = skip_value(data, at)
                end = skip_value(data, value_at)
                if not _key_in(data, at, skip):
                    kept.append(view[at:end])
                    count += 2
                at = end
        count += added.count
        kept.append(memoryview(added.entries))
        _write_annotations(out, kept, count)

    def decode(self) -> Message:
        """The whole message, decoded (body included)."""
        return Message.decode(self._data)
