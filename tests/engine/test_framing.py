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
from petrel.engine.framing import read_transfer
from petrel.errors import DecodeError
from petrel.spec import Transfer

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
    quick = read_transfer(data, 0, len(data))
    if quick is not None:  # None: an encoding the quick path leaves to the generic one
        assert quick == (generic, end)
        assert [type(v) for v in quick[0]] == [type(v) for v in generic]
    # The engine's own hand-written encoding is always read the quick way.
    out = bytearray()
    write_transfer_head(
        out, handle, delivery_id or 0, tag or b"", message_format or 0, bool(settled)
    )
    assert read_transfer(bytes(out), 0, len(out)) is not None


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
    assert read_transfer(data, 0, len(data)) is None
    with pytest.raises(DecodeError):
        spec.decode_from(data, 0)


def test_the_quick_transfer_reader_leaves_a_short_body_alone() -> None:
    assert read_transfer(b"\x00\x53", 0, 2) is None
    assert read_transfer(b"", 0, 0) is None
