"""The hand-written transfer encoding, and the engine's sans-IO promise."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from petrel import spec
from petrel.codec import encode, write_transfer_continuation, write_transfer_head
from petrel.engine.framing import read_performative
from petrel.errors import DecodeError
from petrel.spec import Transfer
from petrel.types import Symbol

ENGINE = Path(__file__).resolve().parents[2] / "src" / "petrel" / "engine"
BANNED = {"asyncio", "socket", "ssl", "select", "selectors", "threading", "time"}


@pytest.mark.parametrize("handle", [0, 1, 255, 256, 0xFFFFFFFF])
@pytest.mark.parametrize("delivery_id", [0, 200, 70000, 0xFFFFFFFF])
@pytest.mark.parametrize("settled", [False, True])
def test_transfer_head_matches_the_spec_encoding(
    handle: int, delivery_id: int, settled: bool
) -> None:
    out = bytearray()
    more_at = write_transfer_head(out, handle, delivery_id, b"tag-1", 0x10203, settled)
    decoded, end = spec.decode_from(bytes(out), 0)
    expected = Transfer(
        handle=handle,
        delivery_id=delivery_id,
        delivery_tag=b"tag-1",
        message_format=0x10203,
        settled=settled,
        more=False,
    )
    assert decoded == expected and end == len(out)
    out[more_at] = 0x41
    assert spec.decode_from(bytes(out), 0)[0] == expected.replace(more=True)


def test_transfer_head_with_an_empty_tag_and_format_zero() -> None:
    out = bytearray()
    write_transfer_head(out, 0, 0, b"", 0, False)
    decoded = spec.decode(bytes(out))
    assert decoded == Transfer(
        handle=0, delivery_id=0, delivery_tag=b"", message_format=0, settled=False
    )
    # Within a byte of the generic encoder, which may drop the trailing default.
    generic = encode(decoded)
    assert len(out) - len(generic) in (0, 1)


def test_transfer_continuation() -> None:
    out = bytearray()
    more_at = write_transfer_continuation(out, 3, 77)
    assert spec.decode(bytes(out)) == Transfer(handle=3, delivery_id=77)
    out[more_at] = 0x41
    assert spec.decode(bytes(out)) == Transfer(handle=3, delivery_id=77, more=True)


def test_engine_imports_no_io_threads_or_clocks() -> None:
    offenders = []
    for path in sorted(ENGINE.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in BANNED]
    assert offenders == []
    assert len(list(ENGINE.glob("*.py"))) > 5


@given(
    handle=st.integers(0, 2**32 - 1),
    delivery_id=st.none() | st.integers(0, 2**32 - 1),
    tag=st.none() | st.binary(max_size=32),
    message_format=st.none() | st.integers(0, 2**32 - 1),
    settled=st.none() | st.booleans(),
    more=st.booleans(),
    state=st.none() | st.just(spec.Accepted()),
    aborted=st.booleans(),
)
def test_the_quick_transfer_reader_agrees_with_the_generic_decoder(
    handle: int,
    delivery_id: int | None,
    tag: bytes | None,
    message_format: int | None,
    settled: bool | None,
    more: bool,
    state: Any,
    aborted: bool,
) -> None:
    transfer = spec.Transfer(
        handle=handle,
        delivery_id=delivery_id,
        delivery_tag=tag,
        message_format=message_format,
        settled=settled,
        more=more,
        state=state,
        aborted=aborted,
    )
    data = encode(transfer) + b"payload"
    generic, end = spec.decode_from(data, 0)
    quick = read_performative(data, 0, len(data))
    if quick is not None:  # None: an encoding the quick path leaves to the generic one
        assert quick == (generic, end)
        assert [type(v) for v in quick[0]] == [type(v) for v in generic]
    # The engine's own hand-written encoding is always read the quick way.
    out = bytearray()
    write_transfer_head(
        out, handle, delivery_id or 0, tag or b"", message_format or 0, bool(settled)
    )
    assert read_performative(bytes(out), 0, len(out)) is not None


@pytest.mark.parametrize(
    ("count", "fields"),
    [
        (1, b"\x40"),  # no handle: it is mandatory
        (1, b"\x41"),  # a boolean handle
        (2, b"\x52\x01\xa0\x01x"),  # a binary delivery-id
        (3, b"\x52\x01\x52\x02\x52\x03"),  # a uint delivery-tag
        (4, b"\x52\x01\x52\x02\xa0\x00\x41"),  # a boolean message-format
        (5, b"\x52\x01\x52\x02\xa0\x00\x43\x52\x01"),  # a uint for settled
        (6, b"\x52\x01\x52\x02\xa0\x00\x43\x41\xa0\x00"),  # a binary for more
    ],
)
def test_the_quick_transfer_reader_leaves_wrong_types_to_the_generic_decoder(
    count: int, fields: bytes
) -> None:
    data = b"\x00\x53\x14\xc0" + bytes([len(fields) + 1, count]) + fields
    assert read_performative(data, 0, len(data)) is None
    with pytest.raises(DecodeError):
        spec.decode_from(data, 0)


def test_the_quick_transfer_reader_leaves_a_short_body_alone() -> None:
    assert read_performative(b"\x00\x53", 0, 2) is None
    assert read_performative(b"", 0, 0) is None


# --- dispositions and flows, read the same quick way ---------------------------------------------

_NO_FIELDS = [spec.Accepted(), spec.Released(), spec.Rejected(), spec.Modified()]
_OUTCOMES = st.sampled_from(
    [
        *_NO_FIELDS,
        spec.Rejected(error=spec.Error(condition=Symbol("amqp:internal-error"))),
        spec.Modified(delivery_failed=True),
        spec.Received(section_number=1, section_offset=0),
    ]
)


def _agrees(performative: Any) -> bool:
    """The quick reader's answer equals the generic decoder's, types included; whether it
    read the performative at all."""
    data = encode(performative) + b"payload"
    generic, end = spec.decode_from(data, 0)
    quick = read_performative(data, 0, len(data))
    if quick is None:
        return False
    assert quick == (generic, end)
    assert [type(v) for v in quick[0]] == [type(v) for v in generic]
    return True


@given(
    role=st.booleans(),
    first=st.integers(0, 2**32 - 1),
    last=st.none() | st.integers(0, 2**32 - 1),
    settled=st.booleans(),
    state=st.none() | _OUTCOMES,
    batchable=st.booleans(),
)
def test_the_quick_reader_reads_dispositions_as_the_generic_decoder_does(
    role: bool, first: int, last: int | None, settled: bool, state: Any, batchable: bool
) -> None:
    disposition = spec.Disposition(
        role=role, first=first, last=last, settled=settled, state=state, batchable=batchable
    )
    read = _agrees(disposition)
    # Every disposition whose state is absent or an outcome of no fields goes the quick way.
    assert read == (state is None or state in _NO_FIELDS)


@given(
    next_incoming_id=st.none() | st.integers(0, 2**32 - 1),
    windows=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    next_outgoing_id=st.integers(0, 2**32 - 1),
    link=st.none() | st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    credit=st.none() | st.integers(0, 2**32 - 1),
    drain=st.booleans(),
    echo=st.booleans(),
    properties=st.none() | st.just({Symbol("txn-id"): b"t1"}),
)
def test_the_quick_reader_reads_flows_as_the_generic_decoder_does(
    next_incoming_id: int | None,
    windows: tuple[int, int],
    next_outgoing_id: int,
    link: tuple[int, int] | None,
    credit: int | None,
    drain: bool,
    echo: bool,
    properties: dict[Any, Any] | None,
) -> None:
    flow = spec.Flow(
        next_incoming_id=next_incoming_id,
        incoming_window=windows[0],
        next_outgoing_id=next_outgoing_id,
        outgoing_window=windows[1],
        handle=None if link is None else link[0],
        delivery_count=None if link is None else link[1],
        link_credit=credit,
        drain=drain,
        echo=echo,
        properties=properties,
    )
    assert _agrees(flow) == (properties is None)


def test_an_outcome_as_an_empty_list8_is_read_the_quick_way() -> None:
    # disposition(role=receiver, first=7, settled=true, state=accepted as list8 of nothing)
    data = b"\x00\x53\x15\xc0\x0c\x05\x41\x52\x07\x40\x41\x00\x53\x24\xc0\x01\x00"
    quick = read_performative(data, 0, len(data))
    assert quick == spec.decode_from(data, 0)
    assert quick is not None and quick[0].state == spec.Accepted()


@pytest.mark.parametrize(
    ("count", "fields"),
    [
        (2, b"\x41\x40"),  # no first: it is mandatory
        (2, b"\x41\x00\x53\x24\x45"),  # an outcome where first goes
    ],
)
def test_the_quick_reader_leaves_wrong_dispositions_to_the_generic_decoder(
    count: int, fields: bytes
) -> None:
    data = b"\x00\x53\x15\xc0" + bytes([len(fields) + 1, count]) + fields
    assert read_performative(data, 0, len(data)) is None
    with pytest.raises(DecodeError):
        spec.decode_from(data, 0)


@pytest.mark.parametrize(
    "state",
    [
        b"\x00\x53\x23\x45",  # received: not an outcome of no fields
        b"\x00\x53\x24\xc0\x02\x01\x40",  # accepted with an item
        b"\x00\xa3\x0famqp:accepted:list\x45",  # a symbolic descriptor
        b"\x52\x01",  # a uint, not a delivery state
        b"\xa0\x00",  # a binary, not a delivery state
    ],
)
def test_the_quick_reader_leaves_other_states_to_the_generic_decoder(state: bytes) -> None:
    fields = b"\x41\x43\x40\x41" + state
    data = b"\x00\x53\x15\xc0" + bytes([len(fields) + 1, 5]) + fields
    assert read_performative(data, 0, len(data)) is None
