"""Encoding and decoding of every composite and restricted type of the spec."""

from __future__ import annotations

import copy
import pickle
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from petrel import codec, spec
from petrel.errors import DecodeError, EncodeError
from petrel.spec import (
    Accepted,
    AmqpValue,
    ApplicationProperties,
    Attach,
    Begin,
    Composite,
    Data,
    Detach,
    Disposition,
    Error,
    Field,
    Flow,
    Header,
    MessageAnnotations,
    Open,
    Properties,
    Received,
    Rejected,
    Released,
    Restricted,
    SaslInit,
    SaslMechanisms,
    SaslOutcome,
    Source,
    Target,
    Transfer,
)
from petrel.types import Array, Described, Symbol, Timestamp, UByte, UInt, ULong, UShort

COMPOSITES = [c for c in spec.ALL_TYPES if issubclass(c, Composite)]
RESTRICTED = [c for c in spec.ALL_TYPES if issubclass(c, Restricted)]

ERROR = Error(condition=Symbol("amqp:internal-error"), description="boom", info={"k": 1})

# A sensible value, unlike the default, for each field type (or ``requires``).
SAMPLES: dict[str, Any] = {
    "boolean": True,
    "ubyte": UByte(7),
    "ushort": UShort(300),
    "uint": UInt(70000),
    "ulong": ULong(2**40),
    "string": "text ✓",
    "symbol": Symbol("sym"),
    "binary": b"\x00\x01\xff",
    "timestamp": Timestamp(1_700_000_000_123),
    "map": {"k": 1, 2: [None, True]},
    "fields": {Symbol("key"): "value", Symbol("n"): 5},
    "handle": UInt(3),
    "seconds": UInt(30),
    "milliseconds": UInt(60_000),
    "delivery-tag": b"tag-1",
    "delivery-number": UInt(4_000_000_000),
    "transfer-number": UInt(17),
    "sequence-no": UInt(18),
    "message-format": UInt(0x01020304),
    "ietf-language-tag": Symbol("en-GB"),
    "role": True,
    "sender-settle-mode": UByte(1),
    "receiver-settle-mode": UByte(1),
    "terminus-durability": UInt(2),
    "terminus-expiry-policy": Symbol("never"),
    "filter-set": {Symbol("apache.org:selector-filter:string"): Described(0x468C00000004, "a=1")},
    "node-properties": {Symbol("lifetime-policy"): spec.DeleteOnClose()},
    "sasl-code": UByte(1),
    "error": ERROR,
}
REQUIRES: dict[str, Any] = {
    "message-id": "id-1",
    "address": "queue://a",
    "delivery-state": Accepted(),
    "outcome": Rejected(error=ERROR),
    "source": Source(address="src", capabilities=[Symbol("queue")]),
    "target": Target(address="dst"),
    "global-tx-id": b"gtx",
    "txn-id": b"txn-1",
}


def _sample(f: Field) -> Any:
    value = REQUIRES[f.requires] if f.type == "*" else SAMPLES[f.type]
    if f.multiple:
        return (value, value)
    return value


def _full(cls: type[Composite]) -> Composite:
    return cls(**{f.name: _sample(f) for f in cls.FIELDS})


def _mandatory_only(cls: type[Composite]) -> Composite:
    return cls(**{f.name: _sample(f) for f in cls.FIELDS if f.mandatory})


def _names(classes: list[type]) -> list[str]:
    return [c.__name__ for c in classes]


def _roundtrip(value: Any) -> Any:
    data = codec.encode(value)
    decoded = spec.decode(data)
    assert codec.encode(decoded) == data
    return decoded


@pytest.mark.parametrize("cls", COMPOSITES, ids=_names(COMPOSITES))
def test_every_field_set_round_trips(cls: type[Composite]) -> None:
    value = _full(cls)
    decoded = _roundtrip(value)
    assert type(decoded) is cls
    assert decoded == value
    for f in cls.FIELDS:
        got, sent = getattr(decoded, f.name), getattr(value, f.name)
        assert got == sent, f.name
        if f.primitive is not None and not f.multiple:
            assert type(got) is type(sent), f.name


@pytest.mark.parametrize("cls", COMPOSITES, ids=_names(COMPOSITES))
def test_mandatory_fields_only_round_trip(cls: type[Composite]) -> None:
    value = _mandatory_only(cls)
    decoded = _roundtrip(value)
    assert decoded == value
    for f in cls.FIELDS:
        if not f.mandatory:
            assert getattr(decoded, f.name) == f.default
    # Nothing after the last mandatory field goes on the wire.
    sent = codec.decode(codec.encode(value)).value
    last = max((i for i, f in enumerate(cls.FIELDS) if f.mandatory), default=-1)
    assert len(sent) == last + 1


@pytest.mark.parametrize("cls", COMPOSITES, ids=_names(COMPOSITES))
def test_symbolic_and_wide_descriptors_decode(cls: type[Composite]) -> None:
    value = _full(cls)
    body = codec.encode(value)[len(cls._PREFIX) :]
    by_name = bytearray()
    codec.encode_descriptor(by_name, cls.NAME)
    assert spec.decode(bytes(by_name) + body) == value
    wide = b"\x00\x80" + cls.DESCRIPTOR.to_bytes(8, "big")
    assert spec.decode(wide + body) == value


@pytest.mark.parametrize("cls", RESTRICTED, ids=_names(RESTRICTED))
def test_restricted_round_trip(cls: type[Restricted]) -> None:
    samples = {
        "annotations": {Symbol("x-opt-a"): 1, ULong(7): "seven"},
        "map": {"colour": "red", "n": 3},
        "binary": b"\x00payload\xff",
        "list": [1, "two", None, [3]],
        "*": {"any": [1, 2.5, uuid.UUID(int=1)]},
    }
    value = cls(samples[cls.SOURCE])
    decoded = _roundtrip(value)
    assert type(decoded) is cls
    assert decoded == value
    assert decoded.value == samples[cls.SOURCE]
    assert repr(decoded).startswith(cls.__name__ + "(")
    out = bytearray()
    cls.encode_value(out, samples[cls.SOURCE])
    assert bytes(out) == codec.encode(value)


# --- golden bytes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "hex_bytes"),
    [
        (Accepted(), "00 53 24 45"),
        (Released(), "00 53 26 45"),
        (Rejected(), "00 53 25 45"),
        (Header(durable=True), "00 53 70 c0 02 01 41"),
        (Header(), "00 53 70 45"),
        (Open(container_id="c"), "00 53 10 c0 04 01 a1 01 63"),
        (
            Begin(next_outgoing_id=0, incoming_window=10, outgoing_window=10),
            "00 53 11 c0 07 04 40 43 52 0a 52 0a",
        ),
        (
            Flow(
                next_incoming_id=1,
                incoming_window=2048,
                next_outgoing_id=1,
                outgoing_window=2048,
                handle=0,
                delivery_count=10,
                link_credit=100,
            ),
            "00 53 13 c0 14 07 52 01 70 00 00 08 00 52 01 70 00 00 08 00 43 52 0a 52 64",
        ),
        (
            Transfer(
                handle=0,
                delivery_id=1,
                delivery_tag=b"\x00\x00\x00\x01",
                message_format=0,
                settled=True,
            ),
            "00 53 14 c0 0c 05 43 52 01 a0 04 00 00 00 01 43 41",
        ),
        # Defaults in the middle are sent; trailing ones are not.
        (
            Attach(name="l", handle=1, role=True, initial_delivery_count=0),
            "00 53 12 c0 10 0a a1 01 6c 52 01 41 50 02 50 00 40 40 40 42 43",
        ),
        (
            Disposition(role=True, first=5, settled=True, state=Accepted()),
            "00 53 15 c0 0a 05 41 52 05 40 41 00 53 24 45",
        ),
        (
            Detach(handle=2, closed=True, error=Error(condition=Symbol("amqp:not-found"))),
            "00 53 16 c0 1a 03 52 02 41 00 53 1d c0 11 01 a3 0e"
            + " 61 6d 71 70 3a 6e 6f 74 2d 66 6f 75 6e 64",
        ),
        (
            SaslMechanisms(sasl_server_mechanisms=[Symbol("PLAIN")]),
            "00 53 40 c0 0b 01 e0 08 01 a3 05 50 4c 41 49 4e",
        ),
        (Data(b"ab"), "00 53 75 a0 02 61 62"),
        (AmqpValue(None), "00 53 77 40"),
        (ApplicationProperties({"a": 1}), "00 53 74 c1 06 02 a1 01 61 55 01"),
        (MessageAnnotations({"a": 1}), "00 53 72 c1 06 02 a3 01 61 55 01"),
    ],
)
def test_golden_bytes(value: Any, hex_bytes: str) -> None:
    data = bytes.fromhex(hex_bytes)
    assert codec.encode(value) == data
    assert spec.decode(data) == value


def test_large_composite_uses_list32() -> None:
    value = Open(container_id="x" * 300, hostname="h")
    data = codec.encode(value)
    assert data[3] == 0xD0
    assert int.from_bytes(data[4:8], "big") == len(data) - 8
    assert int.from_bytes(data[8:12], "big") == 2
    assert spec.decode(data) == value


def test_composite_between_list8_and_list32_boundary() -> None:
    for n in range(248, 258):
        value = SaslInit(mechanism=Symbol("PLAIN"), initial_response=b"x" * n)
        assert spec.decode(codec.encode(value)) == value


def test_encode_fields_takes_a_plain_tuple() -> None:
    out = bytearray()
    Header.encode_fields(out, (True, 4, None, False, 0))
    assert bytes(out) == codec.encode(Header(durable=True))
    with pytest.raises(ValueError):
        Header.encode_fields(bytearray(), (True,))


# --- multiple fields --------------------------------------------------------------------------


def test_multiple_field_takes_one_value_or_many() -> None:
    one = Open(container_id="c", offered_capabilities=Symbol("ANONYMOUS-RELAY"))
    many = Open(container_id="c", offered_capabilities=["a", Symbol("b")])
    arr = Open(container_id="c", offered_capabilities=Array(Symbol, ["a"]))
    assert one.offered_capabilities == (Symbol("ANONYMOUS-RELAY"),)
    assert many.offered_capabilities == (Symbol("a"), Symbol("b"))
    assert all(type(s) is Symbol for s in many.offered_capabilities)
    assert arr.offered_capabilities == (Symbol("a"),)
    for value in (one, many, arr):
        assert spec.decode(codec.encode(value)) == value
    assert Open(container_id="c", offered_capabilities=[]).offered_capabilities == ()
    replaced = one.replace(offered_capabilities="x")
    assert replaced.offered_capabilities == (Symbol("x"),)


def test_multiple_field_decodes_a_single_value_or_an_array() -> None:
    head = bytes.fromhex("00 53 10 c0")
    name = bytes.fromhex("a1 01 63")
    nulls = bytes.fromhex("40 40 40 40 40 40")
    single = bytes.fromhex("a3 01 61")
    array = bytes.fromhex("e0 06 02 a3 01 61 01 62")
    for field_bytes, expected in ((single, ("a",)), (array, ("a", "b"))):
        body = bytes([8]) + name + nulls + field_bytes
        data = head + bytes([len(body)]) + body
        value = spec.decode(data)
        assert value.offered_capabilities == expected
        assert all(type(s) is Symbol for s in value.offered_capabilities)


def test_multiple_field_with_wrong_elements_is_refused() -> None:
    # capabilities as an array of strings, not symbols
    data = bytes.fromhex("00 53 10 c0 0f 08 a1 01 63 40 40 40 40 40 40 e0 03 01 a1 00")
    with pytest.raises(DecodeError, match="offered-capabilities"):
        spec.decode(data)


def test_mandatory_multiple_field_may_be_empty_but_not_null() -> None:
    # Proton sends an empty array when it offers no mechanism: that is a value, not a null.
    empty = spec.decode(bytes.fromhex("00 53 40 c0 05 01 e0 02 00 a3"))
    assert empty.sasl_server_mechanisms == ()
    with pytest.raises(DecodeError, match="mandatory"):
        spec.decode(bytes.fromhex("00 53 40 c0 02 01 40"))


# --- decoding rules ---------------------------------------------------------------------------


def test_absent_and_null_fields_take_their_defaults() -> None:
    # attach: name, handle, role and nothing else
    data = bytes.fromhex("00 53 12 c0 06 03 a1 01 6c 43 42")
    value = spec.decode(data)
    assert value.snd_settle_mode == 2
    assert value.rcv_settle_mode == 0
    assert value.incomplete_unsettled is False
    assert value.source is None
    # the same with explicit nulls for the defaulted fields
    data = bytes.fromhex("00 53 12 c0 0a 07 a1 01 6c 43 42 40 40 40 40")
    assert spec.decode(data) == value
    source = spec.decode(bytes.fromhex("00 53 28 45"))
    assert source.expiry_policy == Symbol("session-end")
    assert type(source.expiry_policy) is Symbol
    assert source.durable == 0
    assert source.timeout == 0


def test_fields_from_a_later_spec_version_are_ignored() -> None:
    data = bytes.fromhex("00 53 17 c0 03 02 40 41")
    assert spec.decode(data) == spec.End()


@pytest.mark.parametrize(
    ("hex_bytes", "match"),
    [
        ("00 53 10 45", "container-id is mandatory"),
        ("00 53 10 c0 02 01 40", "container-id is mandatory"),
        ("00 53 10 c0 04 01 a3 01 63", "container-id must be string"),
        ("00 53 13 c0 06 04 40 53 01 43 43", "incoming-window must be uint"),
        ("00 53 16 c0 05 03 43 42 a1 00", "error must be error"),
        ("00 53 16 c0 07 03 43 42 00 53 24 45", "error must be error"),
        ("00 53 70 c0 04 02 40 52 05", "priority must be ubyte"),
        ("00 53 73 c0 04 02 40 a1 00", "user-id must be binary"),
        ("00 53 10 a1 01 63", "must be a list"),
        ("00 53 24 40", "must be a list"),
        ("00 53 75 a1 01 78", "must be binary"),
        ("00 53 74 c0 01 00", "must be map"),
        ("00 53 76 c1 01 00", "must be list"),
    ],
)
def test_malformed_values_raise_decode_error(hex_bytes: str, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        spec.decode(bytes.fromhex(hex_bytes))


def test_unknown_descriptor_stays_described() -> None:
    value = spec.decode(bytes.fromhex("00 53 99 45"))
    assert value == Described(0x99, [])


# --- encoding rules ---------------------------------------------------------------------------


def test_missing_mandatory_field_cannot_be_encoded() -> None:
    with pytest.raises(EncodeError, match="container-id is mandatory"):
        codec.encode(Open(container_id=None))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Open()  # type: ignore[call-arg]


def test_field_of_the_wrong_type_cannot_be_encoded() -> None:
    with pytest.raises(EncodeError):
        codec.encode(Open(container_id=5))  # type: ignore[arg-type]
    with pytest.raises(EncodeError):
        codec.encode(Flow(incoming_window=-1, next_outgoing_id=0, outgoing_window=0))
    with pytest.raises(EncodeError):
        codec.encode(Header(priority=256))


def test_field_types_are_exact_on_the_wire() -> None:
    # A plain int in a uint field goes out as a uint, not a long.
    data = codec.encode(Transfer(handle=70000, delivery_id=0))
    assert data[6:11] == bytes.fromhex("70 00 01 11 70")
    assert data[11] == 0x43
    decoded = spec.decode(data)
    assert type(decoded.handle) is UInt
    assert type(decoded.delivery_id) is UInt


# --- the Python side --------------------------------------------------------------------------


def test_equality_hash_and_identity() -> None:
    a = Open(container_id="a")
    assert a == Open(container_id="a")
    assert hash(a) == hash(Open(container_id="a"))
    assert a != Open(container_id="b")
    assert Accepted() != Released()
    assert Accepted() == Accepted()
    assert a != ("a",) + (None,) * 9
    assert Received(section_number=0, section_offset=0) != Accepted()


def test_repr_shows_set_fields_only() -> None:
    assert repr(Accepted()) == "Accepted()"
    assert repr(Open(container_id="a")) == "Open(container_id='a')"
    assert repr(Header(durable=True, priority=4)) == "Header(durable=True)"
    assert "snd_settle_mode" not in repr(Attach(name="x", handle=0, role=False))


def test_replace() -> None:
    t = Transfer(handle=1, delivery_id=2)
    t2 = t.replace(delivery_id=3, settled=True)
    assert t.delivery_id == 2
    assert t2.delivery_id == 3
    assert t2.settled is True
    assert type(t2) is Transfer
    with pytest.raises(TypeError, match="no field"):
        t.replace(bogus=1)


def test_instances_are_immutable() -> None:
    t = Transfer(handle=1)
    with pytest.raises(AttributeError):
        t.handle = 2  # type: ignore[misc]


def test_copy_and_pickle() -> None:
    value = _full(Attach)
    assert copy.copy(value) is value
    deep = copy.deepcopy(value)
    assert deep == value
    assert type(deep) is Attach
    assert deep.properties is not value.properties
    again = pickle.loads(pickle.dumps(value))
    assert again == value
    assert type(again) is Attach


def test_to_dict_and_fields() -> None:
    d = Header(ttl=5).to_dict()
    assert d == {
        "durable": False,
        "priority": 4,
        "ttl": 5,
        "first_acquirer": False,
        "delivery_count": 0,
    }
    assert [f.spec_name for f in SaslOutcome.FIELDS] == ["code", "additional-data"]


def test_properties_message_id_may_be_any_message_id_type() -> None:
    for mid in (ULong(1), uuid.UUID(int=7), b"bin", "str"):
        value = Properties(message_id=mid, correlation_id=mid)
        decoded = spec.decode(codec.encode(value))
        assert decoded.message_id == mid
        assert type(decoded.message_id) is type(mid)


# --- property tests ---------------------------------------------------------------------------

_uint = st.integers(0, 2**32 - 1).map(UInt)
_opt_uint = st.none() | _uint
_opt_bool = st.none() | st.booleans()


@given(
    handle=_uint,
    delivery_id=_opt_uint,
    tag=st.none() | st.binary(max_size=32),
    settled=_opt_bool,
    more=st.booleans(),
    aborted=st.booleans(),
)
def test_transfer_round_trips(
    handle: UInt,
    delivery_id: UInt | None,
    tag: bytes | None,
    settled: bool | None,
    more: bool,
    aborted: bool,
) -> None:
    value = Transfer(
        handle=handle,
        delivery_id=delivery_id,
        delivery_tag=tag,
        settled=settled,
        more=more,
        aborted=aborted,
    )
    assert spec.decode(codec.encode(value)) == value


@given(
    st.lists(st.none() | st.sampled_from(["x", "y" * 300]), min_size=0, max_size=13),
)
def test_properties_strings_round_trip(values: list[str | None]) -> None:
    names = ["subject", "group_id", "reply_to_group_id", "to", "reply_to"]
    kwargs = {n: v for n, v in zip(names, values, strict=False)}
    value = Properties(**kwargs)
    assert spec.decode(codec.encode(value)) == value
