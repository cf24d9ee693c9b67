"""Deliveries: transfers, big messages, settlement modes, outcomes, ranged dispositions, aborts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from petrel.engine import ConnectionConfig, Session
from petrel.engine.events import (
    DeliveryAborted,
    DeliveryReceived,
    DeliveryUpdated,
    LinkAttachRequested,
)
from petrel.errors import LocalProtocolError
from petrel.spec import (
    Accepted,
    Attach,
    Declared,
    Disposition,
    Error,
    Flow,
    Modified,
    Received,
    ReceiverSettleMode,
    Rejected,
    Released,
    Role,
    Source,
    Target,
    TransactionalState,
    Transfer,
)
from petrel.types import Symbol
from tests.helpers.engine_pair import EnginePair
from tests.helpers.frames import RawPeer, frame, parse

from .conftest import LinkPair, attach


def test_one_message(pair: EnginePair, links: LinkPair) -> None:
    sender, receiver = links
    receiver.flow(1)
    pair.pump()
    sent = sender.send(b"hello", tag=b"t1", message_format=0x1234)
    assert sent.delivery_id == 0 and not sent.settled
    pair.pump()
    received = pair.take_one("server", DeliveryReceived)
    assert received.payload == b"hello"
    assert received.tag == b"t1"
    assert received.message_format == 0x1234
    assert not received.settled
    assert received.state is None
    assert received.link is receiver
    assert received.delivery.delivery_id == 0


def test_tags_default_to_a_counter(pair: EnginePair, links: LinkPair) -> None:
    sender, receiver = links
    receiver.flow(3)
    pair.pump()
    tags = [sender.send(b"x").tag for _ in range(3)]
    assert len(set(tags)) == 3


def test_twenty_megabyte_message(pair: EnginePair, links: LinkPair) -> None:
    sender, receiver = links
    receiver.flow(1)
    pair.pump()
    payload = bytes(range(256)) * (20 * 4096)
    pair.wire.clear()
    sender.send(payload)
    pair.pump()
    received = pair.take_one("server", DeliveryReceived)
    assert received.payload == payload
    frames = [f for side, data in pair.wire if side == "client" for f in parse(data)[1]]
    transfers = [(body, p) for _, body, p in frames if isinstance(body, Transfer)]
    assert all(t.more for t, _ in transfers[:-1]) and not transfers[-1][0].more
    assert transfers[0][0].delivery_id == 0 and transfers[0][0].delivery_tag is not None
    # Every frame but the last is filled to the peer's max-frame-size exactly.
    for (transfer, chunk), data in zip(transfers[:-1], frame_sizes(pair), strict=False):
        assert data == 65536, (transfer, len(chunk))
    assert b"".join(chunk for _, chunk in transfers) == payload


def frame_sizes(pair: EnginePair) -> list[int]:
    data = b"".join(d for side, d in pair.wire if side == "client")
    sizes = []
    pos = 0
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        sizes.append(size)
        pos += size
    return sizes


def test_frames_respect_a_small_max_frame_size() -> None:
    pair = EnginePair(server_config=ConnectionConfig(container_id="s", max_frame_size=512))
    pair.open()
    session = pair.client.begin_session()
    pair.pump()
    sender, receiver = attach(pair, session)
    receiver.flow(1)
    pair.pump()
    pair.wire.clear()
    sender.send(b"z" * 5000)
    pair.pump()
    assert pair.take_one("server", DeliveryReceived).payload == b"z" * 5000
    sizes = frame_sizes(pair)
    assert len(sizes) == 11 and set(sizes[:-1]) == {512}


def test_presettled(pair: EnginePair, links: LinkPair) -> None:
    sender, receiver = links
    receiver.flow(2)
    pair.pump()
    delivery = sender.send(b"fire and forget", settled=True)
    assert delivery.settled
    assert not sender.session.outgoing.unsettled
    pair.pump()
    received = pair.take_one("server", DeliveryReceived)
    assert received.settled
    assert not receiver.session._unsettled_in
    received.delivery.update(Accepted())  # nothing to tell a peer that already forgot it
    pair.pump()
    assert not pair.take("client", DeliveryUpdated)


OUTCOMES: list[Any] = [
    Accepted(),
    Rejected(error=Error(condition=Symbol("amqp:invalid-field"), description="bad")),
    Released(),
    Modified(delivery_failed=True, undeliverable_here=True, message_annotations={"x-a": 1}),
    Received(section_number=2, section_offset=100),
    TransactionalState(txn_id=b"txn-1", outcome=Accepted()),
    Declared(txn_id=b"txn-2"),
]


@pytest.mark.parametrize("state", OUTCOMES, ids=lambda s: type(s).__name__)
def test_every_state_passes_through(pair: EnginePair, links: LinkPair, state: Any) -> None:
    sender, receiver = links
    receiver.flow(1)
    pair.pump()
    sent = sender.send(b"m")
    pair.pump()
    received = pair.take_one("server", DeliveryReceived)
    received.delivery.update(state, settled=True)
    pair.pump()
    updated = pair.take_one("client", DeliveryUpdated)
    assert updated == DeliveryUpdated(sent, state, True)
    assert sent.remote_state == state and sent.remote_settled
    assert not sender.session.outgoing.unsettled


def test_receiver_settles_first(pair: EnginePair, links: LinkPair) -> None:
    sender, receiver = links
    receiver.flow(1)
    pair.pump()
    sent = sender.send(b"m")
    pair.pump()
    received = pair.take_one("server", DeliveryReceived).delivery
    received.update(Accepted(), settled=True)
    assert received.settled
    with pytest.raises(LocalProtocolError):
        received.update(Released())
    received.settle()  # settling again does nothing
    pair.pump()
    assert pair.take_one("client", DeliveryUpdated).settled
    pair.wire.clear()
    sent.settle()  # the receiver already forgot it: nothing goes out
    pair.pump()
    assert pair.wire == []


def test_receiver_settles_second(pair: EnginePair, session: Session) -> None:
    sender, receiver = attach(pair, session, rcv_settle_mode=ReceiverSettleMode.SECOND)
    assert receiver.rcv_settle_mode == ReceiverSettleMode.SECOND
    receiver.flow(1)
    pair.pump()
    sent = sender.send(b"m")
    pair.pump()
    received = pair.take_one("server", DeliveryReceived).delivery
    received.update(Accepted())
    pair.pump()
    updated = pair.take_one("client", DeliveryUpdated)
    assert updated.state == Accepted() and not updated.settled
    sent.settle()
    pair.pump()
    done = pair.take_one("server", DeliveryUpdated)
    assert done.settled and done.delivery is received and received.remote_settled
    pair.wire.clear()
    received.settle()
    pair.pump()
    assert pair.wire == []


def dispositions(pair: EnginePair, side: str) -> list[Disposition]:
    return [
        body
        for who, data in pair.wire
        if who == side
        for _, body, _ in parse(data)[1]
        if isinstance(body, Disposition)
    ]


def test_dispositions_are_coalesced_into_ranges(pair: EnginePair, links: LinkPair) -> None:
    sender, receiver = links
    receiver.flow(100)
    pair.pump()
    for _ in range(100):
        sender.send(b"m")
    pair.pump()
    received = [e.delivery for e in pair.take("server", DeliveryReceived)]
    pair.wire.clear()
    for delivery in reversed(received):  # order does not matter
        delivery.update(Accepted(), settled=True)
    pair.pump()
    assert dispositions(pair, "server") == [
        Disposition(role=Role.RECEIVER, first=0, last=99, settled=True, state=Accepted())
    ]
    assert len(pair.take("client", DeliveryUpdated)) == 100


def test_ranges_split_where_state_or_settlement_differ(pair: EnginePair, links: LinkPair) -> None:
    sender, receiver = links
    receiver.flow(10)
    pair.pump()
    for _ in range(10):
        sender.send(b"m")
    pair.pump()
    received = [e.delivery for e in pair.take("server", DeliveryReceived)]
    pair.wire.clear()
    for d in received[0:4]:
        d.update(Accepted(), settled=True)
    received[4].update(Released(), settled=True)
    for d in received[5:7]:
        d.update(Accepted())
    for d in received[8:10]:
        d.update(Accepted(), settled=True)
    pair.pump()
    assert dispositions(pair, "server") == [
        Disposition(role=Role.RECEIVER, first=0, last=3, settled=True, state=Accepted()),
        Disposition(role=Role.RECEIVER, first=4, settled=True, state=Released()),
        Disposition(role=Role.RECEIVER, first=5, last=6, state=Accepted()),
        Disposition(role=Role.RECEIVER, first=8, last=9, settled=True, state=Accepted()),
    ]


def test_sender_side_dispositions(pair: EnginePair, links: LinkPair) -> None:
    sender, receiver = links
    receiver.flow(5)
    pair.pump()
    sent = [sender.send(b"m") for _ in range(5)]
    pair.pump()
    pair.take("server", DeliveryReceived)
    pair.wire.clear()
    for d in sent:
        d.settle()
    pair.pump()
    assert dispositions(pair, "client") == [
        Disposition(role=Role.SENDER, first=0, last=4, settled=True)
    ]
    assert [e.settled for e in pair.take("server", DeliveryUpdated)] == [True] * 5
    assert not receiver.session._unsettled_in


def test_a_wide_range_from_the_peer_is_cheap(pair: EnginePair, links: LinkPair) -> None:
    sender, receiver = links
    receiver.flow(3)
    pair.pump()
    for _ in range(3):
        sender.send(b"m")
    pair.pump()
    server_session = receiver.session
    pair.server.output.write_frame(
        server_session.channel,
        Disposition(role=Role.RECEIVER, first=0, last=0xFFFFFFFF, settled=True, state=Accepted()),
    )
    pair.pump()
    assert len(pair.take("client", DeliveryUpdated)) == 3


RawSender = Callable[..., RawPeer]


@pytest.fixture
def raw_sender(raw_server: Callable[..., RawPeer]) -> Callable[..., RawPeer]:
    """A server engine whose hand-played client attached a sending link (handle 0) with credit."""

    def make(credit: int = 10, **config: Any) -> RawPeer:
        peer = raw_server(ConnectionConfig(container_id="server", **config))
        peer.send(
            frame(
                Attach(
                    name="raw",
                    handle=0,
                    role=Role.SENDER,
                    initial_delivery_count=0,
                    source=Source(),
                    target=Target(address="q"),
                ),
            )
        )
        link = peer.event(LinkAttachRequested).link
        link.attach()
        if credit:
            link.flow(credit)
        peer.collect()
        peer.events.clear()
        return peer

    return make


def transfer(payload: bytes = b"", **fields: Any) -> bytes:
    fields.setdefault("handle", 0)
    return frame(Transfer(**fields), 0, payload)


def test_multi_frame_delivery_reassembled(raw_sender: RawSender) -> None:
    peer = raw_sender()
    peer.send(transfer(b"abc", delivery_id=0, delivery_tag=b"t", more=True))
    peer.send(transfer(b"def", more=True), transfer(b"ghi", settled=True))
    received = peer.event(DeliveryReceived)
    assert received.payload == b"abcdefghi"
    assert received.settled


def test_aborted_delivery(raw_sender: RawSender) -> None:
    peer = raw_sender()
    link = peer.engine.sessions[0].links[0]
    peer.send(transfer(b"abc", delivery_id=0, delivery_tag=b"t", more=True))
    peer.send(transfer(aborted=True))
    aborted = peer.event(DeliveryAborted)
    assert aborted.delivery.tag == b"t"
    assert not [e for e in peer.events if isinstance(e, DeliveryReceived)]
    assert link.credit == 9  # an aborted delivery still used its credit
    peer.send(transfer(b"next", delivery_id=1, delivery_tag=b"u"))
    assert peer.event(DeliveryReceived).payload == b"next"


def test_delivery_state_on_a_transfer_passes_through(raw_sender: RawSender) -> None:
    peer = raw_sender()
    state = Received(section_number=0, section_offset=5)
    peer.send(transfer(b"x", delivery_id=0, delivery_tag=b"t", state=state))
    assert peer.event(DeliveryReceived).state == state


def test_update_after_the_session_is_gone_is_dropped(
    pair: EnginePair, session: Session, links: LinkPair
) -> None:
    """A delivery outlives its link (tests/engine/test_detached_deliveries.py), not its
    session."""
    sender, receiver = links
    receiver.flow(1)
    pair.pump()
    sender.send(b"m")
    pair.pump()
    delivery = pair.take_one("server", DeliveryReceived).delivery
    session.end()
    pair.pump()
    pair.wire.clear()
    delivery.update(Accepted(), settled=True)
    pair.pump()
    assert pair.wire == []


def test_flow_frame_carries_session_state(raw_sender: RawSender) -> None:
    peer = raw_sender()
    flow = peer.last(Flow)
    assert flow.handle == 0 and flow.link_credit == 10 and flow.delivery_count == 0
    assert flow.next_incoming_id == 0 and flow.incoming_window == 65536


def test_pending_dispositions_go_out_before_a_detach(pair: EnginePair, links: LinkPair) -> None:
    sender, receiver = links
    receiver.flow(2)
    pair.pump()
    sent = [sender.send(b"m") for _ in range(2)]
    pair.pump()
    for event in pair.take("server", DeliveryReceived):
        event.delivery.update(Accepted(), settled=True)
    receiver.detach()
    pair.wire.clear()
    pair.pump()
    kinds = [
        type(b).__name__ for side, d in pair.wire if side == "server" for _, b, _ in parse(d)[1]
    ]
    assert kinds == ["Disposition", "Detach"]
    assert [u.delivery for u in pair.take("client", DeliveryUpdated)] == sent


@pytest.mark.parametrize("size", [5, 3000], ids=["one frame", "several frames"])
def test_a_state_on_the_transfer(size: int) -> None:
    """A transactional send: the state given to ``send`` goes on the first transfer, the
    receiver sees it as the delivery's state, and the frames decode as the spec says."""
    pair = EnginePair(server_config=ConnectionConfig(container_id="s", max_frame_size=512))
    pair.open()
    pair.clear()
    session = pair.client.begin_session()
    pair.pump()
    pair.clear()
    sender, receiver = attach(pair, session)
    receiver.flow(1)
    pair.pump()
    state = TransactionalState(txn_id=b"txn-1")
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    sent = sender.send(payload, tag=b"t1", state=state)
    assert sent.state == state
    data = pair.client.data_to_send()
    _, written = parse(data)
    frames = [body for _, body, _ in written if isinstance(body, Transfer)]
    assert len(frames) == (1 if size < 512 else 7)
    assert frames[0].state == state and frames[0].delivery_tag == b"t1"
    assert [f.more for f in frames] == [True] * (len(frames) - 1) + [False]
    pair.server.receive_data(data)
    pair.pump()
    received = pair.take_one("server", DeliveryReceived)
    assert received.payload == payload
    assert received.delivery.remote_state == state
    assert not received.settled
