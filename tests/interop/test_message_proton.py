"""Whole messages through Qpid Proton's codec, both ways.

Petrel-encoded messages must decode in ``proton.Message`` with every field
intact, and ``proton.Message``-encoded ones must decode in Petrel (both
:class:`~petrel.message.Message` and :class:`~petrel.message.MessageView`).
Proton keeps times in float seconds where Petrel keeps the wire's
milliseconds, and has no footer and only one body section.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from petrel.message import Message, MessageView, Sections
from petrel.types import Symbol, Timestamp, UByte, UInt, ULong

proton = pytest.importorskip("proton")

pytestmark = pytest.mark.interop

APP_PROPERTIES: dict[str, Any] = {
    "str": "value",
    "long": -(2**40),
    "double": 2.5,
    "bool": True,
    "null": None,
    "binary": b"\x00\xff",
    "uuid": uuid.UUID(int=99),
}
ANNOTATIONS: dict[Any, Any] = {Symbol("x-opt-jms-msg-type"): 5, Symbol("x-opt-to"): "topic"}
INSTRUCTIONS: dict[Any, Any] = {Symbol("x-opt-hops"): 2}


def petrel_message(body: Any = "hello", **kw: Any) -> Message:
    fields: dict[str, Any] = {
        "durable": True,
        "priority": 7,
        "ttl": 1.5,
        "first_acquirer": True,
        "delivery_count": 3,
        "message_id": "id-1",
        "user_id": b"alice",
        "to": "queue://orders",
        "subject": "order",
        "reply_to": "queue://replies",
        "correlation_id": uuid.UUID(int=7),
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "absolute_expiry_time": 1_700_000_060.5,
        "creation_time": 1_700_000_000.25,
        "group_id": "g1",
        "group_sequence": 9,
        "reply_to_group_id": "g2",
        "delivery_annotations": INSTRUCTIONS,
        "message_annotations": ANNOTATIONS,
        "application_properties": APP_PROPERTIES,
    }
    fields.update(kw)
    return Message(body, **fields)


def proton_message(body: Any = "hello", **kw: Any) -> Any:
    pm = proton.Message(
        body=body,
        durable=True,
        priority=7,
        ttl=1.5,
        first_acquirer=True,
        delivery_count=3,
        id="id-1",
        user_id=b"alice",
        address="queue://orders",
        subject="order",
        reply_to="queue://replies",
        correlation_id=uuid.UUID(int=7),
        content_type="application/json",
        content_encoding="utf-8",
        expiry_time=1_700_000_060.5,
        creation_time=1_700_000_000.25,
        group_id="g1",
        group_sequence=9,
        reply_to_group_id="g2",
    )
    pm.instructions = dict(INSTRUCTIONS)
    pm.annotations = dict(ANNOTATIONS)
    pm.properties = dict(APP_PROPERTIES)
    for key, value in kw.items():
        setattr(pm, key, value)
    return pm


def assert_same(pm: Any, msg: Message | MessageView) -> None:
    """Every header and properties field, and the maps, agree.

    Both Proton and ``Message`` give times in seconds; ``MessageView`` keeps
    the wire's milliseconds.
    """
    scale = 1 if isinstance(msg, Message) else 1000
    assert pm.durable == msg.durable
    assert pm.priority == msg.priority
    assert pm.ttl * scale == (msg.ttl or 0)
    assert pm.first_acquirer == msg.first_acquirer
    assert pm.delivery_count == msg.delivery_count
    assert pm.id == msg.message_id
    assert pm.user_id == (msg.user_id or b"")
    assert pm.address == msg.to
    assert pm.subject == msg.subject
    assert pm.reply_to == msg.reply_to
    assert pm.correlation_id == msg.correlation_id
    assert pm.content_type == msg.content_type
    assert pm.content_encoding == msg.content_encoding
    assert pm.expiry_time * scale == (msg.absolute_expiry_time or 0)
    assert pm.creation_time * scale == (msg.creation_time or 0)
    assert pm.group_id == msg.group_id
    assert pm.group_sequence == (msg.group_sequence or 0)
    assert pm.reply_to_group_id == msg.reply_to_group_id
    assert (pm.instructions or None) == msg.delivery_annotations
    assert (pm.annotations or None) == msg.message_annotations
    assert pm.properties == msg.application_properties


def proton_decode(data: bytes) -> Any:
    pm = proton.Message()
    pm.decode(data)
    return pm


# --- Petrel -> Proton ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "body_type", "expected", "inferred"),
    [
        ("hello", None, "hello", False),
        ({"k": [1, "two"]}, None, {"k": [1, "two"]}, False),
        (42, None, 42, False),
        (None, None, None, False),
        (b"\x00raw", None, b"\x00raw", True),
        (b"\x00raw", "value", b"\x00raw", False),
        ([1, "two", None], "sequence", [1, "two", None], True),
        ([1, "two", None], None, [1, "two", None], False),
    ],
)
def test_petrel_to_proton(body: Any, body_type: Any, expected: Any, inferred: bool) -> None:
    msg = petrel_message(body, body_type=body_type)
    pm = proton_decode(msg.encode())
    assert_same(pm, msg)
    body_out = pm.body
    if isinstance(body_out, memoryview):
        body_out = body_out.tobytes()
    assert body_out == expected
    assert type(body_out) is type(expected)
    if body is not None:
        assert pm.inferred is inferred


def test_petrel_field_types_reach_proton() -> None:
    pm = proton_decode(petrel_message(message_id=5, correlation_id=b"corr").encode())
    assert pm.id == 5
    # Proton hands a ulong id back as a plain int; its own re-encoding shows the type.
    assert type(Message.decode(pm.encode()).message_id) is ULong
    assert pm.correlation_id == b"corr"
    assert type(pm.content_type) is proton.symbol
    assert all(type(k) is proton.symbol for k in pm.annotations)
    assert all(type(k) is str for k in pm.properties)


def test_petrel_minimal_message_to_proton() -> None:
    pm = proton_decode(Message("x").encode())
    assert pm.body == "x"
    assert pm.durable is False
    assert pm.priority == 4
    assert pm.id is None
    assert pm.properties is None


def test_petrel_durable_only_header_to_proton() -> None:
    # The header of a message that sets only durable is written from bytes made once
    # (the common case, per send): the same bytes the header encoder writes, which
    # Proton reads back as durable with every other field at its default.
    from petrel.message._sections import _encode_header

    data = Message("x", durable=True).encode()
    expected = bytearray()
    _encode_header(expected, (True, 4, None, False, 0))
    assert data.startswith(bytes(expected))
    pm = proton_decode(data)
    assert (pm.durable, pm.priority, pm.ttl, pm.first_acquirer, pm.delivery_count) == (
        True, 4, 0, False, 0,
    )  # fmt: skip
    assert pm.body == "x"
    # Anything else beside durable still goes through the encoder.
    pm = proton_decode(Message("x", durable=True, priority=7, delivery_count=2).encode())
    assert (pm.durable, pm.priority, pm.delivery_count) == (True, 7, 2)


def test_petrel_footer_does_not_upset_proton() -> None:
    msg = petrel_message("x", footer={"x-opt-sig": b"s"})
    pm = proton_decode(msg.encode())
    assert_same(pm, msg)
    assert pm.body == "x"


def test_petrel_re_encoded_header_to_proton() -> None:
    data = petrel_message(b"\x01" * 5000).encode()
    new = MessageView(data).with_header(delivery_count=10, durable=False)
    pm = proton_decode(new)
    assert pm.delivery_count == 10
    assert pm.durable is False
    assert pm.priority == 7
    assert pm.subject == "order"
    assert bytes(pm.body) == b"\x01" * 5000


# --- Proton -> Petrel ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "inferred", "expected", "body_type"),
    [
        ("hello", False, "hello", None),
        ({"k": [1, "two"]}, False, {"k": [1, "two"]}, None),
        (42, False, 42, None),
        (None, False, None, None),
        (b"\x00raw", True, b"\x00raw", None),
        (b"\x00raw", False, b"\x00raw", "value"),
        ([1, "two", None], True, [1, "two", None], "sequence"),
        ([1, "two", None], False, [1, "two", None], None),
    ],
)
def test_proton_to_petrel(body: Any, inferred: bool, expected: Any, body_type: Any) -> None:
    pm = proton_message(body, inferred=inferred)
    data = pm.encode()
    msg = Message.decode(data)
    assert_same(pm, msg)
    assert msg.body == expected
    assert type(msg.body) is type(expected)
    assert msg.body_type == body_type
    view = MessageView(data)
    assert_same(pm, view)
    assert view.decode() == msg
    # And back: Proton reads what Petrel writes from it.
    again = proton_decode(msg.encode())
    assert_same(again, msg)


def test_proton_field_types_in_petrel() -> None:
    pm = proton_message(id=proton.ulong(5), correlation_id=b"corr")
    msg = Message.decode(pm.encode())
    assert msg.message_id == ULong(5)
    assert type(msg.message_id) is ULong
    assert msg.correlation_id == b"corr"
    assert type(msg.priority) is UByte
    assert msg.ttl == 1.5
    assert type(msg.content_type) is Symbol
    assert type(msg.creation_time) is float
    assert msg.absolute_expiry_time == 1_700_000_060.5
    view = MessageView(pm.encode())
    assert type(view.ttl) is UInt
    assert view.ttl == 1500
    assert type(view.creation_time) is Timestamp
    assert view.absolute_expiry_time == 1_700_000_060_500
    assert all(type(k) is Symbol for k in msg.message_annotations or {})


def test_proton_default_message_in_petrel() -> None:
    data = proton.Message().encode()
    assert Message.decode(data) == Message()
    view = MessageView(data)
    assert view.header is not None
    assert view.durable is False
    assert view.body_type is None


def test_proton_bytes_are_spliced_untouched() -> None:
    pm = proton_message(b"\x02" * 3000, inferred=True)
    data = pm.encode()
    view = MessageView(data)
    new = view.with_header(delivery_count=4, ttl=None, delivery_annotations=None)
    again = MessageView(new)
    assert again.bare_message == view.bare_message
    assert new.endswith(view.bare_message)
    out = proton_decode(new)
    assert out.delivery_count == 4
    assert out.ttl == 0
    assert out.instructions is None
    assert out.annotations == pm.annotations
    assert out.properties == pm.properties
    assert bytes(out.body) == b"\x02" * 3000


def test_petrel_multi_section_bodies_decode_in_proton() -> None:
    # Proton keeps one body section; it must still read the message without error.
    for body in (Sections(b"a", b"b"), Sections([1], [2])):
        pm = proton_decode(petrel_message(body).encode())
        assert pm.subject == "order"
