"""MessageView (the lazy hot-path view) and skip_value."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from petrel import codec, spec
from petrel.codec import skip_value
from petrel.errors import DecodeError, EncodeError
from petrel.message import KEEP, Message, MessageView, Sections
from petrel.types import (
    Array,
    Char,
    Decimal32,
    Decimal64,
    Decimal128,
    Described,
    Float,
    Symbol,
    Timestamp,
    UByte,
    UInt,
    ULong,
)
from tests.helpers.frames import nested, section

from .test_message import (
    EVERYTHING,
    HEADER_FIELDS,
    PROPERTIES_FIELDS,
    SECONDS_FIELDS,
    wire_value,
)

# --- skip_value -------------------------------------------------------------------------------

VALUES: list[Any] = [
    None,
    True,
    False,
    UByte(1),
    UInt(0),
    UInt(7),
    UInt(2**32 - 1),
    ULong(0),
    ULong(9),
    ULong(2**64 - 1),
    -1,
    2**62,
    Float(1.5),
    2.5,
    Decimal32(4),
    Decimal64(8),
    Decimal128(16),
    Char("é"),
    Timestamp(5),
    uuid.UUID(int=3),
    b"",
    b"x" * 300,
    "",
    "y" * 300,
    Symbol("s"),
    Symbol("z" * 300),
    [],
    [1, [2, [3]]],
    list(range(100)),
    {},
    {"a": {"b": 1}},
    Array(UInt, [1, 2, 3]),
    Array(Symbol, ["a" * 300]),
    Array(bool, []),
    Described(ULong(5), "v"),
    Described(Symbol("x:y"), [1]),
    spec.Transfer(handle=1, delivery_tag=b"t"),
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_skip_value(value: Any) -> None:
    data = codec.encode(value)
    assert skip_value(data) == len(data)
    padded = b"\x40" + data + b"\x40"
    assert skip_value(padded, 1) == len(data) + 1
    for cut in range(len(data) - 1, max(-1, len(data) - 4), -1):
        if cut == 0:
            break
        with pytest.raises(DecodeError):
            skip_value(data[:cut])


@pytest.mark.parametrize(
    ("hex_bytes", "match"),
    [
        ("", "truncated"),
        ("ff", "unknown constructor 0xff"),
        ("00 a1 01 78 40", "descriptor must be a ulong or a symbol"),
        ("00 53 01 00 53 02 40", "cannot itself be described"),
        ("c0 00", "too small"),
        ("d0 00 00 00 03", "too small"),
        ("e0 01 00", "too small"),
        ("b0 00 00 00 05 00", "past the end"),
    ],
)
def test_skip_value_refuses(hex_bytes: str, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        skip_value(bytes.fromhex(hex_bytes))


# --- the view agrees with a full decode --------------------------------------------------------

MESSAGES = [
    Message(),
    Message("hello"),
    Message(b"\x00" * 70_000, durable=True),
    Message(Sections(b"a", b"b"), subject="multi"),
    Message(Sections([1], [2]), ttl=5),
    Message([1, 2], body_type="sequence", to="q"),
    Message({"k": "v"}, **EVERYTHING),
    Message("x", message_annotations={"x-opt-a": 1}),
    Message("x", delivery_annotations={"x-opt-d": 1}, footer={"sig": b"s"}),
    Message(**PROPERTIES_FIELDS),
    Message(**HEADER_FIELDS),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=range(len(MESSAGES)))
def test_view_agrees_with_full_decode(msg: Message) -> None:
    data = msg.encode()
    view = MessageView(data)
    full = Message.decode(data)
    for name in (*HEADER_FIELDS, *PROPERTIES_FIELDS):
        # The view keeps wire units (milliseconds); Message has float seconds.
        full_value = getattr(full, name)
        if full_value is not None and name in SECONDS_FIELDS:
            full_value = round(full_value * 1000)
        assert getattr(view, name) == full_value, name
        assert (
            type(getattr(view, name)) is type(getattr(full, name))
            or name in HEADER_FIELDS
            or name in SECONDS_FIELDS
        )
    for name in (
        "delivery_annotations",
        "message_annotations",
        "application_properties",
        "footer",
    ):
        assert getattr(view, name) == getattr(full, name), name
    assert view.decode() == full
    assert bytes(view) == data
    assert view.data is data
    assert len(view) == len(data)
    kinds = {"data": spec.Data, "sequence": spec.AmqpSequence, "value": spec.AmqpValue}
    body_sections = [s for s in _sections(view.body_bytes)]
    assert view.body_type is not None
    assert {type(s) for s in body_sections} == {kinds[view.body_type]}
    assert data.endswith(view.body_bytes + _encoded_footer(full))


def _sections(data: bytes) -> list[Any]:
    out = []
    off = 0
    while off < len(data):
        value, off = spec.decode_from(data, off)
        out.append(value)
    return out


def _encoded_footer(msg: Message) -> bytes:
    return b"" if msg.footer is None else codec.encode(spec.Footer(msg.footer))


def test_view_sections_are_the_decoded_section_objects() -> None:
    view = MessageView(Message("x", **EVERYTHING).encode())
    assert view.header == spec.Header(
        **{name: wire_value(name, value) for name, value in HEADER_FIELDS.items()}
    )
    assert view.properties == spec.Properties(
        **{name: wire_value(name, value) for name, value in PROPERTIES_FIELDS.items()}
    )
    assert type(view.ttl) is UInt
    assert type(view.creation_time) is Timestamp
    assert view.header is view.header  # decoded once, kept


def test_absent_sections_read_as_defaults() -> None:
    view = MessageView(Message("x").encode())
    assert view.header is None
    assert view.properties is None
    assert (view.durable, view.priority, view.ttl) == (False, 4, None)
    assert (view.first_acquirer, view.delivery_count) == (False, 0)
    assert view.to is None
    assert view.message_id is None
    assert view.application_properties is None
    assert view.message_annotations is None
    assert view.bare_message == view.body_bytes


def test_view_without_any_section() -> None:
    view = MessageView(b"")
    assert view.body_type is None
    assert view.body_bytes == b""
    assert view.bare_message == b""
    assert view.with_header(durable=True) == Message(durable=True).encode()[:-4]


def test_bare_message_is_properties_through_body() -> None:
    msg = Message("body", **EVERYTHING)
    data = msg.encode()
    view = MessageView(data)
    start = data.index(bytes.fromhex("00 53 73"))
    end = len(data) - len(codec.encode(spec.Footer(msg.footer)))
    assert view.bare_message == data[start:end]


def test_view_accepts_any_buffer() -> None:
    data = Message("x", subject="s").encode()
    assert MessageView(bytearray(data)).subject == "s"
    assert MessageView(memoryview(data)).subject == "s"


def test_repr() -> None:
    view = MessageView(Message("x", durable=True).encode())
    assert repr(view) == "<MessageView 13 bytes: header, body>"


# --- laziness --------------------------------------------------------------------------------


def test_body_is_never_decoded() -> None:
    # An amqp-value holding invalid UTF-8: the view does not care, a full decode does.
    head = Message(subject="s", durable=True).encode()[:-4]
    data = head + bytes.fromhex("00 53 77 a1 02 ff fe")
    view = MessageView(data)
    assert view.subject == "s"
    assert view.durable is True
    with pytest.raises(DecodeError):
        view.decode()
    moved = MessageView(view.with_header(delivery_count=1))
    assert moved.body_bytes == view.body_bytes


def test_bad_section_raises_when_read() -> None:
    # properties whose user-id is a string: structure is fine, contents are not
    data = bytes.fromhex("00 53 73 c0 04 02 40 a1 00") + bytes.fromhex("00 53 77 40")
    view = MessageView(data)
    assert view.header is None
    with pytest.raises(DecodeError, match="user-id"):
        _ = view.properties
    with pytest.raises(DecodeError, match="user-id"):
        _ = view.subject


HEADER = Message(durable=True).encode()[:-4]
PROPS = Message(subject="s").encode()[:-4]
VALUE = bytes.fromhex("00 53 77 40")
DATA = bytes.fromhex("00 53 75 a0 01 78")
FOOTER = bytes.fromhex("00 53 78 c1 01 00")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (PROPS + HEADER + VALUE, "header section after the properties"),
        (HEADER + HEADER, "repeated header"),
        (VALUE + VALUE, "cannot follow"),
        (DATA + VALUE, "cannot follow"),
        (VALUE + FOOTER + DATA, "body section after the footer"),
        (bytes.fromhex("00 53 99 45"), "not a message section"),
        (codec.encode(spec.Accepted()), "not a message section"),
        (bytes.fromhex("00 a3 03 61 62 63 45"), "not a message section"),
        (bytes.fromhex("00 44 45"), "not a message section"),
        (bytes.fromhex("a1 01 78"), "must be a described value"),
        (bytes.fromhex("00 a1 01 78 40"), "must be a ulong or a symbol"),
        (VALUE + b"\x00", "truncated"),
        (VALUE + b"\x00\x53", "truncated"),
        (DATA[:-1], "past the end"),
        (VALUE + b"\x40", "must be a described value"),
    ],
)
def test_bad_structure_raises_when_built(data: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        MessageView(data)
    with pytest.raises(DecodeError):
        Message.decode(data)


def test_symbolic_and_wide_section_descriptors() -> None:
    out = bytearray()
    codec.encode_descriptor(out, "amqp:header:list")
    out += bytes.fromhex("c0 02 01 41")
    out += b"\x00\x80" + (0x77).to_bytes(8, "big") + b"\x40"
    view = MessageView(bytes(out))
    assert view.durable is True
    assert view.body_type == "value"
    assert view.decode() == Message(durable=True)


# --- re-encoding the header ------------------------------------------------------------------


def test_with_header_keeps_the_bare_message_bytes() -> None:
    msg = Message(b"\x01" * 1000, **EVERYTHING)
    view = MessageView(msg.encode())
    new = view.with_header(delivery_count=4, ttl=1000, durable=False)
    again = MessageView(new)
    assert again.bare_message == view.bare_message
    assert again.footer == view.footer
    assert new.endswith(view.bare_message + codec.encode(spec.Footer(msg.footer)))
    assert (again.delivery_count, again.ttl, again.durable) == (4, 1000, False)
    assert again.priority == view.priority
    assert again.first_acquirer == view.first_acquirer
    assert again.delivery_annotations == view.delivery_annotations
    assert again.message_annotations == view.message_annotations
    import dataclasses

    expected = dataclasses.replace(msg, delivery_count=4, ttl=1.0, durable=False)
    assert again.decode() == expected


def test_with_header_without_changes_is_identical() -> None:
    for msg in MESSAGES:
        data = msg.encode()
        assert MessageView(data).with_header() == data


def test_with_header_adds_and_removes_the_header() -> None:
    plain = Message("x", subject="s").encode()
    view = MessageView(plain)
    added = view.with_header(delivery_count=1)
    assert MessageView(added).header == spec.Header(delivery_count=1)
    assert MessageView(added).bare_message == view.bare_message
    removed = MessageView(added).with_header(delivery_count=0)
    assert removed == plain
    assert MessageView(Message(ttl=5).encode()).with_header(ttl=None) == Message().encode()


def test_with_header_annotations() -> None:
    msg = Message("x", subject="s", **{k: v for k, v in EVERYTHING.items() if "annot" in k})
    view = MessageView(msg.encode())
    dropped = MessageView(view.with_header(delivery_annotations=None))
    assert dropped.delivery_annotations is None
    assert dropped.message_annotations == view.message_annotations
    assert dropped.bare_message == view.bare_message
    replaced = MessageView(view.with_header(message_annotations={"x-opt-new": 1}))
    assert replaced.message_annotations == {Symbol("x-opt-new"): 1}
    assert replaced.delivery_annotations == view.delivery_annotations
    assert replaced.bare_message == view.bare_message
    added = MessageView(MessageView(Message("x").encode()).with_header(message_annotations={}))
    assert added.message_annotations == {}


def test_with_header_refuses_bad_values() -> None:
    view = MessageView(Message("x").encode())
    with pytest.raises(EncodeError):
        view.with_header(priority=256)
    with pytest.raises(EncodeError):
        view.with_header(delivery_count=-1)
    with pytest.raises(EncodeError):
        view.with_header(message_annotations={"k": object()})
    assert repr(KEEP) == "KEEP"


def test_with_header_on_a_foreign_header_encoding() -> None:
    # A header another implementation wrote with every field explicit.
    header = bytes.fromhex("00 53 70 c0 0b 05 42 50 04 40 42 70 00 00 00 02")
    data = header + PROPS + DATA
    view = MessageView(data)
    assert view.delivery_count == 2
    new = view.with_header(delivery_count=3)
    assert new.endswith(PROPS + DATA)
    assert MessageView(new).delivery_count == 3


def test_single_property_reads_agree_with_a_full_decode() -> None:
    message = Message(
        b"body",
        message_id="id-1",
        to="orders",
        subject="s",
        absolute_expiry_time=1_700_000_000.5,
        group_id="g1",
    )
    view = MessageView(message.encode())
    # Read one field at a time first (the broker's fast path), then all of them.
    assert view.absolute_expiry_time == 1_700_000_000_500
    assert view.group_id == "g1"
    assert view.to == "orders"
    full = MessageView(message.encode()).properties
    assert full is not None
    assert (full.absolute_expiry_time, full.group_id, full.to) == (
        view.absolute_expiry_time,
        view.group_id,
        view.to,
    )


def test_a_mistyped_property_read_alone_still_raises_decode_error() -> None:
    # properties with absolute-expiry-time (field 8) holding a string, not a timestamp
    fields = [None] * 8 + ["not a timestamp"]
    data = codec.encode(spec.Data(b"x"))
    props = bytearray(b"\x00\x53\x73")
    codec.encode_into(props, fields)
    view = MessageView(bytes(props) + data)
    with pytest.raises(DecodeError, match="absolute-expiry-time"):
        _ = view.absolute_expiry_time


def test_equal_headers_share_one_decoded_header() -> None:
    one = MessageView(Message("a", durable=True, priority=7).encode())
    two = MessageView(Message("b", durable=True, priority=7).encode())
    assert one.header is two.header
    assert one.header is not None and one.header.priority == 7


@pytest.mark.parametrize(
    "theirs",
    [
        None,
        {},
        {Symbol("x-opt-a"): 1, Symbol("x-opt-reason"): "old", ULong(7): [1, 2]},
        {Symbol(f"x-opt-{i}"): "v" * 40 for i in range(20)},  # a map32 already
    ],
    ids=["none", "empty", "map8-with-a-key-replaced", "map32"],
)
def test_with_header_adds_message_annotations_without_decoding_the_others(
    theirs: dict[Any, Any] | None,
) -> None:
    view = MessageView(Message("x", subject="s", message_annotations=theirs).encode())
    ours = {Symbol("x-opt-reason"): "new", Symbol("x-opt-queue"): "q" * 300}
    moved = MessageView(view.with_header(delivery_count=2, add_message_annotations=ours))
    expected = {k: v for k, v in (theirs or {}).items() if k not in ours} | ours
    assert moved.message_annotations == expected
    assert list(moved.message_annotations) == list(expected)  # theirs first, in order
    assert moved.bare_message == view.bare_message
    assert moved.header == spec.Header(delivery_count=2)
    with pytest.raises(ValueError, match="not both"):
        view.with_header(message_annotations={}, add_message_annotations=ours)


def test_added_annotations_keep_ones_that_do_not_decode() -> None:
    deep = nested(codec.encode(None), 200)  # lists nested past the codec's depth limit
    pairs = nested(deep, 1, key=codec.encode(Symbol("x-bomb")))
    view = MessageView(section(spec.MessageAnnotations, pairs) + Message("body").encode())
    with pytest.raises(DecodeError):
        _ = view.message_annotations
    moved = view.with_header(add_message_annotations={Symbol("x-opt-reason"): "why"})
    assert pairs[9:] in moved  # the bomb's key and value, as they were
    assert MessageView(moved).bare_message == view.bare_message
    assert b"\xa3\x0cx-opt-reason\xa1\x03why" in moved
