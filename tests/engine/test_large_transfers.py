"""Big messages in many frames: reassembled whole, as ``bytes``, however the reads fall.

A multi-frame delivery keeps each frame's piece until its last frame and joins them
once.  A piece that is most of the read it came in is kept as a view of that read (no
copy before the join); a small piece is copied, so that a peer dribbling a message in
tiny frames cannot make the engine hold reads far bigger than the message.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import pytest

from petrel.engine import ConnectionConfig
from petrel.engine.events import DeliveryReceived, LinkAttachRequested
from petrel.spec import Attach, Role, Source, Target, Transfer
from tests.engine.conftest import attach
from tests.helpers.engine_pair import EnginePair
from tests.helpers.frames import RawPeer, frame

FRAME = 65536


@pytest.fixture
def peer(raw_server: Callable[..., RawPeer]) -> RawPeer:
    """A server engine (max-frame-size 64 KiB) with a hand-played sending link, handle 0."""
    peer = raw_server(ConnectionConfig(container_id="server", max_frame_size=FRAME))
    peer.send(
        frame(
            Attach(
                name="big",
                handle=0,
                role=Role.SENDER,
                initial_delivery_count=0,
                source=Source(),
                target=Target(address="q"),
            )
        )
    )
    link = peer.event(LinkAttachRequested).link
    link.attach()
    link.flow(10)
    peer.collect()
    peer.events.clear()
    return peer


def frames_of(message: bytes, piece: int, delivery_id: int = 0) -> list[bytes]:
    """``message`` as transfers of ``piece`` payload bytes each (the last one shorter)."""
    out = []
    for at in range(0, len(message), piece):
        last = at + piece >= len(message)
        fields: dict[str, object] = {"handle": 0, "more": not last}
        if at == 0:
            fields.update(delivery_id=delivery_id, delivery_tag=b"t%d" % delivery_id)
        out.append(frame(Transfer(**fields), 0, message[at : at + piece]))  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize(
    ("size", "read_size"),
    [
        (300_001, 1),
        (300_001, 7),
        (300_001, 4096),
        (3 << 20, FRAME - 1),
        (3 << 20, FRAME + 13),
        (3 << 20, 1 << 20),
        (3 << 20, None),
    ],
)
def test_a_big_message_arrives_whole_whatever_the_reads(
    peer: RawPeer, size: int, read_size: int | None
) -> None:
    message = os.urandom(size)
    wire = b"".join(frames_of(message, FRAME - 64))
    step = read_size or len(wire)
    for at in range(0, len(wire), step):
        peer.engine.receive_data(wire[at : at + step])
    peer.collect()
    received = [e for e in peer.events if isinstance(e, DeliveryReceived)]
    assert len(received) == 1
    assert type(received[0].payload) is bytes
    assert received[0].payload == message


def test_interleaved_reads_of_two_messages_stay_apart(peer: RawPeer) -> None:
    first, second = os.urandom(200_000), os.urandom(150_001)
    # One read holds the end of the first message and the start of the second.
    wire = b"".join(frames_of(first, 30_000, 0) + frames_of(second, 30_000, 1))
    half = len(wire) // 2
    peer.send(wire[:half])
    peer.send(wire[half:])
    payloads = [e.payload for e in peer.events if isinstance(e, DeliveryReceived)]
    assert payloads == [first, second]


def test_a_small_piece_does_not_keep_its_read_alive(peer: RawPeer) -> None:
    """Ten bytes of a message in a read of 64 KiB of other frames: the engine copies the ten
    bytes rather than keeping the whole read until the message's last frame."""
    start = frame(Transfer(handle=0, delivery_id=0, delivery_tag=b"t", more=True), 0, b"x" * 10)
    padding = frame(None) * (FRAME // 8)  # empty frames (heartbeats)
    read = start + padding
    before = sys.getrefcount(read)
    peer.engine.receive_data(read)
    assert sys.getrefcount(read) == before
    peer.send(frame(Transfer(handle=0), 0, b"y" * 5))
    assert peer.event(DeliveryReceived).payload == b"x" * 10 + b"y" * 5


def test_a_big_piece_is_kept_as_a_view_until_the_join(peer: RawPeer) -> None:
    """A frame that fills its read is not copied on arrival: the read is kept (one reference
    more) until the last frame is joined, then let go."""
    read = frames_of(b"a" * 100_000, FRAME - 64)[0]
    before = sys.getrefcount(read)
    peer.engine.receive_data(read)
    assert sys.getrefcount(read) == before + 1
    peer.send(frame(Transfer(handle=0), 0, b"b"))
    assert peer.event(DeliveryReceived).payload == b"a" * (FRAME - 64) + b"b"
    assert sys.getrefcount(read) == before


def test_a_big_message_is_handed_out_as_views_of_it_not_a_joined_copy() -> None:
    # pieces_to_send() gives what data_to_send() would, unjoined: a large payload's
    # frames are slices (memoryviews) of the message itself, for a writev.
    pair = EnginePair(
        ConnectionConfig(container_id="c"),
        ConnectionConfig(container_id="s", max_frame_size=FRAME),
    )
    pair.open()
    session = pair.client.begin_session()
    pair.pump()
    sender, receiver = attach(pair, session)
    receiver.flow(2)
    pair.pump()
    message = os.urandom(5 * FRAME + 123)
    sender.send(message)
    sender.send(b"small")
    pieces = pair.client.pieces_to_send()
    views = [p for p in pieces if type(p) is memoryview]
    assert len(views) >= 5
    assert all(v.obj is message for v in views)
    assert pair.client.pieces_to_send() == []  # all taken
    pair.server.receive_data(b"".join(pieces))
    pair.pump()
    got = [e.payload for e in pair.take("server", DeliveryReceived)]
    assert got == [message, b"small"]
