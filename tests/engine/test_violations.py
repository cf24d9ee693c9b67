"""One test per protocol violation: hand-made bad input gets the right error and a clean end.

Connection-level violations are answered with ``close`` (after our ``open``
if we had not sent it), session-level ones with ``end``, link-level ones
with ``detach``; each carries the spec's condition and a description, and
the engine reports the same error in its event.  Nothing raises.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest

from petrel.engine import Connection, ConnectionConfig, LinkState
from petrel.engine.events import (
    ConnectionClosed,
    DeliveryReceived,
    LinkAttachRequested,
    LinkDetached,
    SessionEnded,
)
from petrel.errors import Condition
from petrel.spec import (
    Attach,
    Begin,
    Close,
    Detach,
    End,
    Flow,
    Open,
    Role,
    SaslInit,
    Source,
    Target,
    Transfer,
)
from petrel.spec.framing import AMQP_HEADER, FRAME_HEADER, FRAME_TYPE_SASL, SASL_HEADER, TLS_HEADER
from petrel.types import Symbol
from tests.helpers.frames import RawPeer, frame

MakeServer = Callable[..., RawPeer]


def closed_with(peer: RawPeer, condition: str) -> None:
    """The engine closed the connection with ``condition``, in a frame and in its event."""
    close = peer.last(Close)
    assert close.error is not None, close
    assert close.error.condition == condition, close.error
    assert close.error.description
    event = peer.event(ConnectionClosed)
    assert event.error == close.error and not event.by_peer
    assert peer.engine.finished
    peer.send(frame(Open(container_id="late")))  # input after the end is ignored
    assert peer.engine.next_event() is None


def ended_with(peer: RawPeer, condition: str) -> None:
    end = peer.last(End)
    assert end.error is not None and end.error.condition == condition, end
    assert end.error.description
    event = peer.event(SessionEnded)
    assert event.error == end.error and not event.by_peer
    assert not peer.performatives(Close)


def detached_with(peer: RawPeer, condition: str) -> None:
    detach = peer.last(Detach)
    assert detach.error is not None and detach.error.condition == condition, detach
    assert detach.closed and detach.error.description
    event = peer.event(LinkDetached)
    assert event.error == detach.error and not event.by_peer
    assert not peer.performatives(End)


def attach_sender(peer: RawPeer, handle: int = 0, credit: int = 0) -> Any:
    """The raw client attaches a sending link; the engine answers and grants ``credit``."""
    peer.send(
        frame(
            Attach(
                name=f"l{handle}",
                handle=handle,
                role=Role.SENDER,
                initial_delivery_count=0,
                source=Source(),
                target=Target(),
            )
        )
    )
    link = [e for e in peer.events if isinstance(e, LinkAttachRequested)][-1].link
    link.attach()
    if credit:
        link.flow(credit)
    peer.collect()
    return link


# --- framing -------------------------------------------------------------------------------


def test_frame_larger_than_our_max(raw_server: MakeServer) -> None:
    peer = raw_server(ConnectionConfig(container_id="s", max_frame_size=1024))
    peer.send(FRAME_HEADER.pack(100_000, 2, 0, 0))
    closed_with(peer, Condition.FRAMING_ERROR)


@pytest.mark.parametrize(("size", "doff"), [(8, 1), (7, 2), (12, 4)])
def test_bad_frame_header(raw_server: MakeServer, size: int, doff: int) -> None:
    peer = raw_server()
    peer.send(FRAME_HEADER.pack(size, doff, 0, 0) + bytes(max(0, size - 8)))
    closed_with(peer, Condition.FRAMING_ERROR)


def test_body_that_does_not_decode(raw_server: MakeServer) -> None:
    peer = raw_server()
    peer.send(FRAME_HEADER.pack(11, 2, 0, 0) + b"\x00\x53\xff")
    closed_with(peer, Condition.DECODE_ERROR)


def test_performative_with_a_missing_mandatory_field(raw_server: MakeServer) -> None:
    peer = raw_server()
    body = b"\x00\x53\x11\x45"  # begin with no fields
    peer.send(FRAME_HEADER.pack(8 + len(body), 2, 0, 0) + body)
    closed_with(peer, Condition.DECODE_ERROR)


def test_body_that_is_not_a_performative(raw_server: MakeServer) -> None:
    peer = raw_server()
    peer.send(frame(Symbol("hello")))
    closed_with(peer, Condition.NOT_ALLOWED)


def test_sasl_frame_on_an_amqp_connection(raw_server: MakeServer) -> None:
    peer = raw_server()
    peer.send(frame(SaslInit(mechanism=Symbol("PLAIN")), frame_type=FRAME_TYPE_SASL))
    closed_with(peer, Condition.FRAMING_ERROR)


def test_performative_longer_than_its_frame(raw_server: MakeServer) -> None:
    peer = raw_server()
    good = frame(Flow(incoming_window=1, next_outgoing_id=0, outgoing_window=1))
    # Claim a frame that ends halfway through the flow's list; more bytes follow.
    cut = FRAME_HEADER.pack(12, 2, 0, 0) + good[8:]
    peer.send(cut)
    assert peer.engine.finished
    assert peer.last(Close).error is not None


# --- protocol headers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [b"AMQP\x00\x02\x00\x00", b"AMQP\x01\x01\x00\x00", TLS_HEADER, b"GET / HT"],
    ids=["version", "protocol-id", "tls", "http"],
)
def test_unsupported_header_is_answered_with_ours(header: bytes) -> None:
    engine = Connection(ConnectionConfig(), server=True)
    engine.open()
    peer = RawPeer(engine)
    peer.send(header)
    assert peer.headers == [AMQP_HEADER]
    assert peer.frames == []
    event = peer.event(ConnectionClosed)
    assert event.error is not None and event.error.condition == Condition.NOT_IMPLEMENTED
    assert engine.finished


def test_tls_header_to_a_sasl_server_gets_the_sasl_header() -> None:
    from petrel.engine import SaslConfig

    engine = Connection(ConnectionConfig(sasl=SaslConfig()), server=True)
    peer = RawPeer(engine)
    peer.send(TLS_HEADER)
    assert peer.headers == [SASL_HEADER]
    assert engine.finished


def test_client_gets_a_bad_header_back() -> None:
    engine = Connection(ConnectionConfig())
    engine.open()
    peer = RawPeer(engine)
    peer.send(b"AMQP\x00\x01\x00\x01")
    assert peer.event(ConnectionClosed).error is not None
    assert engine.finished


# --- open ----------------------------------------------------------------------------------


def test_frame_before_open(raw_server: MakeServer) -> None:
    engine = Connection(ConnectionConfig(), server=True)
    engine.open()
    peer = RawPeer(engine)
    peer.send(AMQP_HEADER, frame(Begin(next_outgoing_id=0, incoming_window=1, outgoing_window=1)))
    closed_with(peer, Condition.ILLEGAL_STATE)
    assert isinstance(peer.frames[0][1], Open)  # we still opened before closing


def test_second_open(raw_server: MakeServer) -> None:
    peer = raw_server()
    peer.send(frame(Open(container_id="again")))
    closed_with(peer, Condition.ILLEGAL_STATE)


def test_max_frame_size_below_the_minimum() -> None:
    engine = Connection(ConnectionConfig(), server=True)
    engine.open()
    peer = RawPeer(engine)
    peer.send(AMQP_HEADER, frame(Open(container_id="raw", max_frame_size=100)))
    closed_with(peer, Condition.FRAME_SIZE_TOO_SMALL)


# --- sessions ------------------------------------------------------------------------------


def test_begin_above_channel_max(raw_server: MakeServer) -> None:
    peer = raw_server(ConnectionConfig(container_id="s", channel_max=3), begin=False)
    peer.send(frame(Begin(next_outgoing_id=0, incoming_window=1, outgoing_window=1), channel=4))
    closed_with(peer, Condition.FRAMING_ERROR)


def test_begin_on_a_channel_in_use(raw_server: MakeServer) -> None:
    peer = raw_server()
    peer.send(frame(Begin(next_outgoing_id=0, incoming_window=1, outgoing_window=1)))
    closed_with(peer, Condition.ILLEGAL_STATE)


def test_begin_answering_a_session_we_never_began(raw_server: MakeServer) -> None:
    peer = raw_server(begin=False)
    begin = Begin(remote_channel=5, next_outgoing_id=0, incoming_window=1, outgoing_window=1)
    peer.send(frame(begin, channel=1))
    closed_with(peer, Condition.NOT_ALLOWED)


def test_frame_on_a_channel_without_session(raw_server: MakeServer) -> None:
    peer = raw_server()
    peer.send(frame(Flow(incoming_window=1, next_outgoing_id=0, outgoing_window=1), channel=7))
    closed_with(peer, Condition.NOT_ALLOWED)


def test_attach_above_handle_max(raw_server: MakeServer) -> None:
    peer = raw_server(ConnectionConfig(container_id="s", handle_max=10))
    peer.send(frame(Attach(name="x", handle=11, role=Role.SENDER, initial_delivery_count=0)))
    closed_with(peer, Condition.FRAMING_ERROR)


def test_attach_on_a_handle_in_use(raw_server: MakeServer) -> None:
    peer = raw_server()
    attach_sender(peer, handle=0)
    peer.send(frame(Attach(name="other", handle=0, role=Role.SENDER, initial_delivery_count=0)))
    ended_with(peer, Condition.HANDLE_IN_USE)


@pytest.mark.parametrize(
    "body",
    [
        Transfer(handle=3, delivery_id=0, delivery_tag=b"t"),
        Flow(incoming_window=1, next_outgoing_id=0, outgoing_window=1, handle=3, link_credit=1),
        Detach(handle=3),
    ],
    ids=["transfer", "flow", "detach"],
)
def test_unattached_handle(raw_server: MakeServer, body: Any) -> None:
    peer = raw_server()
    peer.send(frame(body))
    ended_with(peer, Condition.UNATTACHED_HANDLE)


def test_transfer_beyond_the_incoming_window(raw_server: MakeServer) -> None:
    peer = raw_server(ConnectionConfig(container_id="s", incoming_window=2))
    attach_sender(peer, credit=10)
    transfers = [
        frame(Transfer(handle=0, delivery_id=i, delivery_tag=b"%d" % i), 0, b"x") for i in range(3)
    ]
    peer.send(*transfers)
    ended_with(peer, Condition.WINDOW_VIOLATION)
    assert len([e for e in peer.events if isinstance(e, DeliveryReceived)]) == 2


def test_frames_after_a_session_error_are_dropped(raw_server: MakeServer) -> None:
    peer = raw_server()
    peer.send(frame(Detach(handle=9)))
    ended_with(peer, Condition.UNATTACHED_HANDLE)
    peer.events.clear()
    peer.send(frame(Detach(handle=9)), frame(Transfer(handle=9)))
    assert peer.events == []
    peer.send(frame(End()))
    assert peer.events == []  # the end was reported when we sent ours
    assert peer.engine.sessions == []
    assert not peer.engine.finished


def test_first_transfer_without_delivery_id(raw_server: MakeServer) -> None:
    peer = raw_server()
    attach_sender(peer, credit=1)
    peer.send(frame(Transfer(handle=0, delivery_tag=b"t"), 0, b"x"))
    ended_with(peer, Condition.INVALID_FIELD)


def test_continuation_with_another_delivery_id(raw_server: MakeServer) -> None:
    peer = raw_server()
    attach_sender(peer, credit=2)
    peer.send(frame(Transfer(handle=0, delivery_id=0, delivery_tag=b"t", more=True), 0, b"x"))
    peer.send(frame(Transfer(handle=0, delivery_id=1, delivery_tag=b"u"), 0, b"y"))
    ended_with(peer, Condition.INVALID_FIELD)


# --- links ---------------------------------------------------------------------------------


def test_transfer_without_credit(raw_server: MakeServer) -> None:
    peer = raw_server()
    link = attach_sender(peer, credit=0)
    peer.send(frame(Transfer(handle=0, delivery_id=0, delivery_tag=b"t"), 0, b"x"))
    detached_with(peer, Condition.TRANSFER_LIMIT_EXCEEDED)
    assert link.state is LinkState.DETACH_SENT
    # Frames for the link are dropped until the peer's detach arrives.
    peer.events.clear()
    peer.send(frame(Transfer(handle=0, delivery_id=1, delivery_tag=b"u"), 0, b"x"))
    assert peer.events == []
    peer.send(frame(Detach(handle=0, closed=True)))
    assert link.state is LinkState.CLOSED
    assert peer.events == []


def test_transfer_beyond_credit(raw_server: MakeServer) -> None:
    peer = raw_server()
    attach_sender(peer, credit=2)
    peer.send(
        *[frame(Transfer(handle=0, delivery_id=i, delivery_tag=b"t"), 0, b"x") for i in range(3)]
    )
    detached_with(peer, Condition.TRANSFER_LIMIT_EXCEEDED)


def test_a_senders_flow_counting_transfers_still_on_the_way_is_not_a_violation(
    raw_server: MakeServer,
) -> None:
    # RabbitMQ answers a credit top-up with a flow whose delivery-count already counts
    # transfers it writes after that flow; they are within the credit we granted.
    peer = raw_server()
    link = attach_sender(peer, credit=4)
    flow = Flow(
        next_incoming_id=0,
        incoming_window=100,
        next_outgoing_id=0,
        outgoing_window=100,
        handle=0,
        delivery_count=4,
        link_credit=0,
    )
    transfers = [
        frame(Transfer(handle=0, delivery_id=i, delivery_tag=b"t"), 0, b"x") for i in range(4)
    ]
    peer.send(frame(flow), *transfers)
    assert len([e for e in peer.events if isinstance(e, DeliveryReceived)]) == 4
    assert link.state is LinkState.ATTACHED
    assert link.delivery_count == 4 and link.credit == 0
    # A fifth transfer is beyond what we granted.
    peer.send(frame(Transfer(handle=0, delivery_id=4, delivery_tag=b"t"), 0, b"x"))
    detached_with(peer, Condition.TRANSFER_LIMIT_EXCEEDED)


def test_message_larger_than_max_message_size(raw_server: MakeServer) -> None:
    peer = raw_server(ConnectionConfig(container_id="s", max_message_size=10))
    assert attach_sender(peer, credit=1).max_message_size == 10
    assert peer.last(Attach).max_message_size == 10
    peer.send(frame(Transfer(handle=0, delivery_id=0, delivery_tag=b"t", more=True), 0, b"x" * 6))
    peer.send(frame(Transfer(handle=0, more=True), 0, b"x" * 6))
    detached_with(peer, Condition.MESSAGE_SIZE_EXCEEDED)


def test_transfer_to_our_sender(raw_server: MakeServer) -> None:
    peer = raw_server()
    peer.send(
        frame(Attach(name="r", handle=0, role=Role.RECEIVER, source=Source(), target=Target()))
    )
    [e for e in peer.events if isinstance(e, LinkAttachRequested)][-1].link.attach()
    peer.collect()
    peer.send(frame(Transfer(handle=0, delivery_id=0, delivery_tag=b"t"), 0, b"x"))
    detached_with(peer, Condition.NOT_ALLOWED)


# --- the last resort -----------------------------------------------------------------------


def test_an_engine_bug_becomes_an_internal_error_close(
    raw_server: MakeServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    peer = raw_server()

    def broken(channel: int, flow: Flow) -> None:
        raise ZeroDivisionError("oops")

    # The engine's dispatch table, not a method: a compiled build's methods are read-only.
    monkeypatch.setitem(peer.engine._handlers, Flow, broken)
    peer.send(frame(Flow(incoming_window=1, next_outgoing_id=0, outgoing_window=1)))
    closed_with(peer, Condition.INTERNAL_ERROR)
    assert any("engine failure" in r.getMessage() for r in caplog.records)


def test_random_bytes_never_raise() -> None:
    import random

    rng = random.Random(1234)
    for _ in range(300):
        engine = Connection(ConnectionConfig(), server=True)
        engine.open()
        data = AMQP_HEADER + frame(Open(container_id="x"))
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        if rng.random() < 0.5:
            junk = struct.pack(">IBBH", 8 + len(junk), 2, 0, rng.randrange(3)) + junk
        engine.receive_data(data + junk)
        engine.data_to_send()
        while engine.next_event() is not None:
            pass


def _client_receiver(credit: int) -> tuple[RawPeer, Any]:
    """A client engine with one receiving link, answered by a hand-played server."""
    engine = Connection(ConnectionConfig(container_id="client"))
    engine.open()
    session = engine.begin_session()
    link = session.attach_receiver("r", source=Source(address="q"), target=Target())
    peer = RawPeer(engine)
    peer.send(
        AMQP_HEADER,
        frame(Open(container_id="raw-server", max_frame_size=65536)),
        frame(
            Begin(remote_channel=0, next_outgoing_id=0, incoming_window=100, outgoing_window=100)
        ),
        frame(
            Attach(
                name="r",
                handle=0,
                role=Role.SENDER,
                source=Source(address="q"),
                target=Target(),
                initial_delivery_count=0,
            )
        ),
    )
    link.flow(credit)
    peer.collect()
    return peer, link


def test_a_client_tolerates_a_sender_overshooting_its_credit_a_little() -> None:
    # RabbitMQ 3.x sends one delivery past the credit after some credit updates.
    peer, link = _client_receiver(credit=2)
    peer.send(
        *[frame(Transfer(handle=0, delivery_id=i, delivery_tag=b"t"), 0, b"x") for i in range(3)]
    )
    assert len([e for e in peer.events if isinstance(e, DeliveryReceived)]) == 3
    assert link.state is LinkState.ATTACHED


def test_a_client_still_refuses_a_sender_that_ignores_credit() -> None:
    peer, _ = _client_receiver(credit=2)
    transfers = [
        frame(Transfer(handle=0, delivery_id=i, delivery_tag=b"t"), 0, b"x") for i in range(20)
    ]
    peer.send(*transfers)
    detached_with(peer, Condition.TRANSFER_LIMIT_EXCEEDED)


def test_a_client_tolerates_a_sender_taking_new_credit_as_absolute() -> None:
    # RabbitMQ 3.x: a credit update replaces its credit, ignoring what it already had
    # in flight.  The overshoot is bounded by the credit outstanding at the update.
    peer, link = _client_receiver(credit=20)

    def transfers(first: int, count: int) -> list[bytes]:
        return [
            frame(Transfer(handle=0, delivery_id=i, delivery_tag=b"t"), 0, b"x")
            for i in range(first, first + count)
        ]

    peer.send(*transfers(0, 5))
    link.flow(20)  # 15 still outstanding: the sender may send those and 20 more
    peer.collect()
    peer.send(*transfers(5, 35))
    assert len([e for e in peer.events if isinstance(e, DeliveryReceived)]) == 40
    assert link.state is LinkState.ATTACHED
    # Our limit is 25; up to twice the window (40) beyond it is tolerated, no more.
    peer.send(*transfers(40, 25))
    assert link.state is LinkState.ATTACHED
    peer.send(*transfers(65, 1))
    detached_with(peer, Condition.TRANSFER_LIMIT_EXCEEDED)
