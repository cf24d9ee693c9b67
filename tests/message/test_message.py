"""petrel.Message: every field, every body kind, round trips and bad input."""

from __future__ import annotations

import struct
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import petrel
from petrel import codec, spec
from petrel.errors import DecodeError, EncodeError
from petrel.message import Message, Sections
from petrel.types import Symbol, Timestamp, UByte, UInt, ULong

HEADER_FIELDS: dict[str, Any] = {
    "durable": True,
    "priority": 9,
    "ttl": 30.0,
    "first_acquirer": True,
    "delivery_count": 3,
}
PROPERTIES_FIELDS: dict[str, Any] = {
    "message_id": "msg-1",
    "user_id": b"alice",
    "to": "queue://orders",
    "subject": "new order",
    "reply_to": "queue://replies",
    "correlation_id": uuid.UUID(int=42),
    "content_type": Symbol("application/json"),
    "content_encoding": Symbol("gzip"),
    "absolute_expiry_time": 1_700_000_060.0,
    "creation_time": 1_700_000_000.25,
    "group_id": "group-a",
    "group_sequence": 7,
    "reply_to_group_id": "group-b",
}
OTHER_SECTIONS: dict[str, Any] = {
    "delivery_annotations": {Symbol("x-opt-hop"): 1},
    "message_annotations": {Symbol("x-opt-jms-msg-type"): 5, ULong(1): "by code"},
    "application_properties": {"region": "eu", "count": 3, "ok": True, "none": None},
    "footer": {Symbol("x-opt-hash"): b"\x01\x02"},
}
EVERYTHING = {**HEADER_FIELDS, **PROPERTIES_FIELDS, **OTHER_SECTIONS}
#: Fields whose API value (float seconds) differs from the wire value (milliseconds).
SECONDS_FIELDS = ("ttl", "absolute_expiry_time", "creation_time")


def wire_value(name: str, value: Any) -> Any:
    """What a Message field's value is on the wire."""
    return round(value * 1000) if name in SECONDS_FIELDS else value


def sections_of(data: bytes) -> list[Any]:
    out = []
    off = 0
    while off < len(data):
        value, off = spec.decode_from(data, off)
        out.append(value)
    return out


def roundtrip(msg: Message) -> Message:
    data = msg.encode()
    decoded = Message.decode(data)
    assert decoded == msg
    assert decoded.encode() == data
    return decoded


def test_exported_from_the_package() -> None:
    assert petrel.Message is Message
    assert "Message" in petrel.__all__


def test_default_message_is_a_null_amqp_value() -> None:
    assert Message().encode() == bytes.fromhex("00 53 77 40")
    assert Message.decode(b"\x00\x53\x77\x40") == Message()


def test_decode_leaves_every_field_it_does_not_read_at_its_default() -> None:
    # decode makes its message without calling __init__ (see _blank_maker).
    decoded = Message.decode(Message(b"x").encode())
    assert decoded == Message(b"x")
    assert repr(decoded) == "Message(b'x')"


def test_a_subclass_decodes_as_itself() -> None:
    class Tagged(Message):
        pass

    decoded = Tagged.decode(Message(b"x", subject="s").encode())
    assert type(decoded) is Tagged
    assert (decoded.body, decoded.subject, decoded.priority) == (b"x", "s", 4)


def test_every_field_round_trips() -> None:
    msg = Message({"order": 1}, **EVERYTHING)
    decoded = roundtrip(msg)
    for name, value in EVERYTHING.items():
        assert getattr(decoded, name) == value, name
    types = [type(s) for s in sections_of(msg.encode())]
    assert types == [
        spec.Header,
        spec.DeliveryAnnotations,
        spec.MessageAnnotations,
        spec.Properties,
        spec.ApplicationProperties,
        spec.AmqpValue,
        spec.Footer,
    ]


@pytest.mark.parametrize(("name", "value"), list(HEADER_FIELDS.items()))
def test_each_header_field(name: str, value: Any) -> None:
    msg = Message("x", **{name: value})
    decoded = roundtrip(msg)
    assert getattr(decoded, name) == value
    header = sections_of(msg.encode())[0]
    assert type(header) is spec.Header
    assert getattr(header, name) == wire_value(name, value)


def test_header_wire_types() -> None:
    data = Message(**HEADER_FIELDS).encode()
    decoded = Message.decode(data)
    assert type(decoded.priority) is UByte
    assert type(decoded.ttl) is float
    assert type(decoded.delivery_count) is UInt
    header = sections_of(data)[0]
    assert type(header.ttl) is UInt
    assert header.ttl == 30_000


def test_ttl_is_seconds_and_milliseconds_on_the_wire() -> None:
    header = sections_of(Message(ttl=1.5).encode())[0]
    assert header.ttl == 1500
    assert Message.decode(Message(ttl=1.5).encode()).ttl == 1.5
    # Rounded to the nearest millisecond.
    assert sections_of(Message(ttl=0.0016).encode())[0].ttl == 2
    assert Message.decode(Message(ttl=0.0016).encode()).ttl == 0.002
    assert sections_of(Message(ttl=0).encode())[0].ttl == 0


def test_times_are_seconds_since_the_epoch() -> None:
    import datetime

    msg = Message(creation_time=1_700_000_000.5, absolute_expiry_time=1_700_000_060)
    props = sections_of(msg.encode())[0]
    assert type(props.creation_time) is Timestamp
    assert props.creation_time == 1_700_000_000_500
    assert props.absolute_expiry_time == 1_700_000_060_000
    decoded = Message.decode(msg.encode())
    assert decoded.creation_time == 1_700_000_000.5
    assert type(decoded.absolute_expiry_time) is float
    # A Timestamp is taken as the milliseconds it holds; a datetime as its instant.
    when = datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.UTC)
    for value in (Timestamp(1_700_000_000_000), when):
        props = sections_of(Message(creation_time=value).encode())[0]
        assert props.creation_time == 1_700_000_000_000


def test_bad_time_is_an_encode_error() -> None:
    with pytest.raises(EncodeError):
        Message(ttl=-1.0).encode()
    with pytest.raises(EncodeError):
        Message(creation_time="yesterday").encode()  # type: ignore[arg-type]


def test_header_left_out_when_default() -> None:
    msg = Message("x", durable=False, priority=4, ttl=None, first_acquirer=False)
    assert [type(s) for s in sections_of(msg.encode())] == [spec.AmqpValue]


@pytest.mark.parametrize(("name", "value"), list(PROPERTIES_FIELDS.items()))
def test_each_properties_field(name: str, value: Any) -> None:
    msg = Message("x", **{name: value})
    decoded = roundtrip(msg)
    assert getattr(decoded, name) == value
    assert type(getattr(decoded, name)) is type(value) or name == "group_sequence"
    props = sections_of(msg.encode())[0]
    assert type(props) is spec.Properties
    assert getattr(props, name) == wire_value(name, value)


def test_properties_wire_types() -> None:
    decoded = Message.decode(Message(content_type="text/plain", group_sequence=3).encode())
    assert type(decoded.content_type) is Symbol
    assert type(decoded.group_sequence) is UInt


@pytest.mark.parametrize(
    "message_id", ["str-id", ULong(2**63), uuid.uuid4(), b"\x00binary-id", 12345]
)
def test_message_id_and_correlation_id_types(message_id: Any) -> None:
    msg = Message(message_id=message_id, correlation_id=message_id)
    decoded = Message.decode(msg.encode())
    assert decoded.message_id == message_id
    assert decoded.correlation_id == message_id
    expected = ULong if type(message_id) is int else type(message_id)
    assert type(decoded.message_id) is expected
    assert type(decoded.correlation_id) is expected


def test_negative_int_message_id_is_refused() -> None:
    with pytest.raises(EncodeError):
        Message(message_id=-1).encode()


@pytest.mark.parametrize(("name", "value"), list(OTHER_SECTIONS.items()))
def test_each_map_section(name: str, value: Any) -> None:
    roundtrip(Message("x", **{name: value}))


def test_empty_maps_are_sent() -> None:
    msg = Message("x", application_properties={}, message_annotations={})
    decoded = roundtrip(msg)
    assert decoded.application_properties == {}
    assert decoded.message_annotations == {}


def test_annotation_str_keys_go_out_as_symbols() -> None:
    msg = Message(message_annotations={"x-opt-a": 1}, delivery_annotations={"x-opt-b": 2})
    decoded = Message.decode(msg.encode())
    assert decoded.message_annotations is not None
    assert decoded.delivery_annotations is not None
    assert [type(k) for k in decoded.message_annotations] == [Symbol]
    assert [type(k) for k in decoded.delivery_annotations] == [Symbol]


def test_application_properties_keys_go_out_as_strings() -> None:
    decoded = Message.decode(Message(application_properties={"k": 1}).encode())
    assert decoded.application_properties is not None
    assert [type(k) for k in decoded.application_properties] == [str]


@pytest.mark.parametrize("key", [Symbol("k"), 1, b"k"])
def test_application_properties_keys_must_be_str(key: Any) -> None:
    with pytest.raises(EncodeError, match="application-properties keys"):
        Message(application_properties={key: 1}).encode()


def test_encode_errors_say_what_failed_once() -> None:
    # An EncodeError passes through as it is; anything else is wrapped once.
    for encode in (Message(application_properties={1: 1}).encode, _encode_into_new):
        with pytest.raises(EncodeError) as info:
            encode()
        assert info.value.description == "application-properties keys must be str, got int"
    with pytest.raises(EncodeError) as info:
        Message(priority=300).encode()
    assert info.value.description.startswith("cannot encode message: ubyte format")


def _encode_into_new() -> None:
    out = bytearray(b"before")
    try:
        Message(application_properties={1: 1}).encode_into(out)
    finally:
        assert out == b"before"


# --- body kinds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    ["text", 42, 2.5, None, True, {"a": [1, {"b": None}]}, [1, "two"], uuid.UUID(int=1)],
)
def test_amqp_value_bodies(body: Any) -> None:
    msg = Message(body)
    decoded = roundtrip(msg)
    assert decoded.body == body
    assert decoded.body_type is None
    assert [type(s) for s in sections_of(msg.encode())] == [spec.AmqpValue]


def test_bytes_body_is_one_data_section() -> None:
    msg = Message(b"\x00\x01payload")
    assert msg.encode() == bytes.fromhex("00 53 75 a0 09 00 01") + b"payload"
    decoded = roundtrip(msg)
    assert decoded.body == b"\x00\x01payload"
    assert decoded.body_type is None


@pytest.mark.parametrize("body", [bytearray(b"abc"), memoryview(b"abc")])
def test_bytes_like_bodies_are_data(body: Any) -> None:
    decoded = Message.decode(Message(body).encode())
    assert decoded.body == b"abc"
    assert type(decoded.body) is bytes


def test_a_memoryview_of_wider_items_goes_as_its_bytes() -> None:
    # len() of such a view counts items: the data section must count bytes.
    body = memoryview(struct.pack(">2I", 1, 2)).cast("I")
    assert Message(body).encode() == bytes.fromhex("00 53 75 a0 08") + body.tobytes()
    assert Message.decode(Message(body).encode()).body == body.tobytes()


def test_large_data_body() -> None:
    body = bytes(range(256)) * 300
    msg = Message(body, durable=True)
    data = msg.encode()
    assert data[-len(body) - 8 : -len(body)] == bytes.fromhex("00 53 75 b0") + len(body).to_bytes(
        4, "big"
    )
    assert Message.decode(data).body == body


def test_several_data_sections() -> None:
    msg = Message(Sections(b"one", b"two", b""))
    data = msg.encode()
    assert [type(s) for s in sections_of(data)] == [spec.Data] * 3
    decoded = roundtrip(msg)
    assert decoded.body == Sections(b"one", b"two", b"")
    assert type(decoded.body) is Sections
    # A list of bytes with body_type="data" means the same sections.
    assert Message([b"one", b"two", b""], body_type="data").encode() == data


def test_sequence_bodies() -> None:
    one = Message([1, "two", None], body_type="sequence")
    assert [type(s) for s in sections_of(one.encode())] == [spec.AmqpSequence]
    decoded = roundtrip(one)
    assert decoded.body == [1, "two", None]
    assert decoded.body_type == "sequence"

    several = Message(Sections([1], [2, 3]))
    assert [type(s) for s in sections_of(several.encode())] == [spec.AmqpSequence] * 2
    decoded = roundtrip(several)
    assert decoded.body == Sections([1], [2, 3])
    assert Message(Sections([1], [2, 3]), body_type="sequence").encode() == several.encode()


def test_bytes_as_amqp_value() -> None:
    msg = Message(b"raw", body_type="value")
    assert [type(s) for s in sections_of(msg.encode())] == [spec.AmqpValue]
    decoded = roundtrip(msg)
    assert decoded.body_type == "value"


def test_list_is_an_amqp_value_unless_told() -> None:
    assert type(sections_of(Message([1, 2]).encode())[0]) is spec.AmqpValue


@pytest.mark.parametrize(
    ("body", "body_type", "match"),
    [
        ("text", "data", "data section holds bytes"),
        ([b"a", "b"], "data", "data section holds bytes"),
        ([], "data", "at least one"),
        ("text", "sequence", "amqp-sequence holds a list"),
        (Sections(), None, "at least one"),
        (Sections([1], b"x"), None, "amqp-sequence holds a list"),
        (b"x", "json", "unknown body_type"),
    ],
)
def test_bad_bodies(body: Any, body_type: Any, match: str) -> None:
    with pytest.raises(EncodeError, match=match):
        Message(body, body_type=body_type).encode()


def test_sections_repr_and_pickle() -> None:
    import pickle

    s = Sections(b"a", b"b")
    assert repr(s) == "Sections(b'a', b'b')"
    assert pickle.loads(pickle.dumps(s)) == s
    assert type(pickle.loads(pickle.dumps(s))) is Sections


# --- the Python side --------------------------------------------------------------------------


def test_repr_shows_what_is_set() -> None:
    assert repr(Message()) == "Message()"
    assert repr(Message("hi", durable=True, to="q")) == "Message('hi', durable=True, to='q')"
    assert "priority" not in repr(Message.decode(Message("hi", ttl=5).encode()))


def test_keyword_only_after_body() -> None:
    with pytest.raises(TypeError):
        Message("body", "data")  # type: ignore[misc]


def test_encode_into_appends_and_cleans_up_on_error() -> None:
    out = bytearray(b"prefix")
    Message("x").encode_into(out)
    assert bytes(out) == b"prefix" + Message("x").encode()
    out = bytearray(b"prefix")
    with pytest.raises(EncodeError):
        Message(object(), durable=True).encode_into(out)
    assert bytes(out) == b"prefix"
    with pytest.raises(EncodeError):
        Message(priority=1000).encode_into(out)
    assert bytes(out) == b"prefix"


# --- decoding errors --------------------------------------------------------------------------

HEADER = Message(durable=True).encode()[:-4]
PROPS = Message(subject="s").encode()[:-4]
APP = Message(application_properties={"a": 1}).encode()[:-4]
FOOTER = bytes.fromhex("00 53 78 c1 01 00")
VALUE = bytes.fromhex("00 53 77 40")
DATA = bytes.fromhex("00 53 75 a0 01 78")
SEQ = bytes.fromhex("00 53 76 45")
MA = bytes.fromhex("00 53 72 c1 01 00")
DA = bytes.fromhex("00 53 71 c1 01 00")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (PROPS + HEADER + VALUE, "header section after the properties"),
        (HEADER + HEADER + VALUE, "repeated header"),
        (MA + DA + VALUE, "delivery-annotations section after the message-annotations"),
        (APP + PROPS + VALUE, "properties section after"),
        (VALUE + VALUE, "amqp-value"),
        (DATA + VALUE, "cannot follow"),
        (DATA + SEQ, "cannot follow"),
        (VALUE + FOOTER + FOOTER, "repeated footer"),
        (VALUE + FOOTER + DATA, "body section after the footer"),
        (DATA + FOOTER + DATA, "body section after the footer"),
        (VALUE + APP, "application-properties section after the body"),
        (bytes.fromhex("00 53 99 45") + VALUE, "unknown descriptor"),
        (codec.encode(spec.Accepted()) + VALUE, "amqp:accepted:list"),
        (bytes.fromhex("a1 01 78"), "bare str"),
        (VALUE + b"\x00", "truncated|no data|descriptor"),
        (VALUE + b"\x40", "bare NoneType"),
        (HEADER[:-1], "truncated|remain|ends"),
        (bytes.fromhex("00 53 70 c0 02 01 a1"), "truncated|remain|ends"),
        (bytes.fromhex("00 53 70 c0 03 01 a1 00"), "durable must be boolean"),
        (bytes.fromhex("00 53 73 c0 04 02 40 a1 00"), "user-id must be binary"),
        (bytes.fromhex("00 53 75 a1 01 78"), "must be binary"),
    ],
)
def test_malformed_messages(data: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        Message.decode(data)


def test_symbolic_section_descriptors_decode() -> None:
    def section(name: str, body: bytes) -> bytes:
        out = bytearray()
        codec.encode_descriptor(out, name)
        return bytes(out) + body

    data = (
        section("amqp:header:list", bytes.fromhex("c0 02 01 41"))
        + section("amqp:properties:list", bytes.fromhex("c0 06 04 40 40 40 a1 00"))
        + section("amqp:data:binary", bytes.fromhex("a0 01 78"))
        + section("amqp:data:binary", bytes.fromhex("a0 01 79"))
    )
    msg = Message.decode(data)
    assert msg == Message(Sections(b"x", b"y"), durable=True, subject="")


def test_a_message_without_body() -> None:
    msg = Message.decode(HEADER)
    assert msg.body is None
    assert msg.durable is True
    assert Message.decode(b"") == Message()


def test_decode_takes_any_buffer() -> None:
    data = Message("x", subject="s").encode()
    assert Message.decode(bytearray(data)) == Message.decode(memoryview(data))


# --- property tests ---------------------------------------------------------------------------

_text = st.text(max_size=20)
_opt_text = st.none() | _text
_uint = st.integers(0, 2**32 - 1)
_long = st.integers(-(2**63), 2**63 - 1)
_scalar = st.none() | st.booleans() | _long | _text | st.binary(max_size=8)


@given(
    body=_scalar | st.lists(_scalar, max_size=4) | st.dictionaries(_text, _scalar, max_size=4),
    durable=st.booleans(),
    priority=st.integers(0, 255),
    ttl=st.none() | _uint.map(lambda ms: ms / 1000),
    delivery_count=_uint,
    subject=_opt_text,
    to=_opt_text,
    group_sequence=st.none() | _uint,
    app=st.none() | st.dictionaries(_text, _scalar, max_size=4),
    ann=st.none() | st.dictionaries(st.text("abcxyz-", max_size=10).map(Symbol), _scalar),
)
def test_round_trip_property(
    body: Any,
    durable: bool,
    priority: int,
    ttl: float | None,
    delivery_count: int,
    subject: str | None,
    to: str | None,
    group_sequence: int | None,
    app: dict[str, Any] | None,
    ann: dict[Any, Any] | None,
) -> None:
    msg = Message(
        body,
        durable=durable,
        priority=priority,
        ttl=ttl,
        delivery_count=delivery_count,
        subject=subject,
        to=to,
        group_sequence=group_sequence,
        application_properties=app,
        message_annotations=ann,
    )
    data = msg.encode()
    decoded = Message.decode(data)
    assert decoded == msg
    assert decoded.encode() == data
