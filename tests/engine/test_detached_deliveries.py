"""Deliveries outlive their link: outcomes given or received after a detach.

Delivery-ids belong to the session, and a disposition names no link (part
2.7.6: it "MAY refer to deliveries on links that are no longer attached").
Proton keeps a delivery until it is settled, and its C++ example
``ssl_client_cert`` relies on that: it sends one message, closes its sender
at once, and waits for the accept.  Petrel keeps a detached link's complete
deliveries in its session until one side settles them or the session ends.
"""

from __future__ import annotations

from typing import Any

import pytest

from petrel.engine import ConnectionConfig, Link, Session
from petrel.engine.events import DeliveryReceived, DeliveryUpdated, LinkDetached
from petrel.spec import Accepted, Disposition, Rejected, Released, Role
from tests.helpers.engine_pair import EnginePair
from tests.helpers.frames import parse

from .conftest import LinkPair, attach


def _frames(pair: EnginePair, side: str) -> list[Any]:
    return [body for s, data in pair.wire if s == side for _, body, _ in parse(data)[1]]


def test_the_sender_closes_at_once_and_still_hears_the_outcome(
    pair: EnginePair, links: LinkPair
) -> None:
    """``s.send(m); s.close()``: the receiver's engine answers the detach while parsing,
    before its application sees the message; the accept it gives then still reaches
    the sender, after the detach, and settles the sender's delivery."""
    sender, receiver = links
    receiver.flow(1)
    pair.pump()
    sent = sender.send(b"one and done")
    sender.detach()
    pair.wire.clear()
    pair.pump()
    received = pair.take_one("server", DeliveryReceived)
    assert pair.take_one("server", LinkDetached).by_peer
    assert receiver.state.name == "CLOSED" and sender.state.name == "CLOSED"
    assert pair.take("client", DeliveryUpdated) == []
    received.delivery.update(Accepted(), settled=True)
    pair.wire.clear()
    pair.pump()
    assert _frames(pair, "server") == [
        Disposition(role=Role.RECEIVER, first=0, last=None, settled=True, state=Accepted())
    ]
    assert pair.take_one("client", DeliveryUpdated) == DeliveryUpdated(sent, Accepted(), True)
    assert sent.remote_settled and sent.remote_state == Accepted()
    assert not sender.session.outgoing.unsettled
    assert not receiver.session._unsettled_in


def test_the_receiver_detaches_then_gives_outcomes(pair: EnginePair, links: LinkPair) -> None:
    """A receiver that detached first may still settle what it got before: ranged as
    usual, and the sender sees each outcome."""
    sender, receiver = links
    receiver.flow(3)
    pair.pump()
    sent = [sender.send(b"m%d" % i) for i in range(3)]
    pair.pump()
    got = [e.delivery for e in pair.take("server", DeliveryReceived)]
    receiver.detach()
    pair.pump()
    assert pair.take_one("client", LinkDetached).by_peer
    pair.wire.clear()
    got[0].update(Accepted(), settled=True)
    got[1].update(Accepted(), settled=True)
    got[2].update(Rejected(), settled=True)
    pair.pump()
    assert _frames(pair, "server") == [
        Disposition(role=Role.RECEIVER, first=0, last=1, settled=True, state=Accepted()),
        Disposition(role=Role.RECEIVER, first=2, last=None, settled=True, state=Rejected()),
    ]
    updates = pair.take("client", DeliveryUpdated)
    assert [(u.delivery, type(u.state), u.settled) for u in updates] == [
        (sent[0], Accepted, True),
        (sent[1], Accepted, True),
        (sent[2], Rejected, True),
    ]
    assert not sender.session.outgoing.unsettled and not receiver.session._unsettled_in


def test_the_sender_settles_after_the_detach(pair: EnginePair, links: LinkPair) -> None:
    """The other direction: a sender that gave up on a delivery of a detached link
    settles it, and the receiver hears so."""
    sender, receiver = links
    receiver.flow(1)
    pair.pump()
    sent = sender.send(b"m")
    pair.pump()
    received = pair.take_one("server", DeliveryReceived).delivery
    sender.detach()
    pair.pump()
    sent.settle()
    pair.pump()
    assert pair.take_one("server", DeliveryUpdated) == DeliveryUpdated(received, None, True)
    assert not sender.session.outgoing.unsettled and not receiver.session._unsettled_in


def test_a_non_terminal_state_then_settlement(pair: EnginePair, links: LinkPair) -> None:
    """Unsettled updates keep the delivery known; the settlement that follows still
    finds it."""
    sender, receiver = links
    receiver.flow(1)
    pair.pump()
    sent = sender.send(b"m")
    sender.detach(closed=False)
    pair.pump()
    received = pair.take_one("server", DeliveryReceived).delivery
    received.update(Released())
    pair.pump()
    assert pair.take_one("client", DeliveryUpdated) == DeliveryUpdated(sent, Released(), False)
    assert sender.session.outgoing.unsettled == {0: sent}
    received.settle()
    pair.pump()
    assert pair.take_one("client", DeliveryUpdated).settled
    assert not sender.session.outgoing.unsettled and not receiver.session._unsettled_in


def test_the_handle_is_reused_meanwhile(pair: EnginePair, session: Session) -> None:
    """A new link on the freed handle does not confuse the old link's deliveries."""
    sender, receiver = attach(pair, session, "first")
    receiver.flow(1)
    pair.pump()
    old = sender.send(b"old")
    sender.detach()
    pair.pump()
    old_in = pair.take_one("server", DeliveryReceived).delivery
    pair.clear()
    sender2, receiver2 = attach(pair, session, "second")
    assert sender2.handle == sender.handle
    receiver2.flow(1)
    pair.pump()
    new = sender2.send(b"new")
    pair.pump()
    new_in = pair.take_one("server", DeliveryReceived).delivery
    assert new_in.link is receiver2
    old_in.update(Accepted(), settled=True)
    new_in.update(Rejected(), settled=True)
    pair.pump()
    updates = pair.take("client", DeliveryUpdated)
    assert [(u.delivery, type(u.state)) for u in updates] == [(old, Accepted), (new, Rejected)]


def test_the_session_end_forgets_them(pair: EnginePair, links: LinkPair) -> None:
    sender, receiver = links
    receiver.flow(1)
    pair.pump()
    sender.send(b"m")
    sender.detach()
    pair.pump()
    received = pair.take_one("server", DeliveryReceived).delivery
    assert receiver.session._unsettled_in == {0: received}
    sender.session.end()
    pair.pump()
    assert not sender.session.outgoing.unsettled and not receiver.session._unsettled_in


def _small_frames() -> tuple[EnginePair, Session, Link, Link]:
    pair = EnginePair(
        server_config=ConnectionConfig(container_id="s", max_frame_size=512, incoming_window=2)
    )
    pair.open()
    session = pair.client.begin_session()
    pair.pump()
    sender, receiver = attach(pair, session)
    receiver.flow(5)
    pair.pump()
    return pair, session, sender, receiver


@pytest.mark.parametrize("who", ["sender", "receiver"])
def test_a_delivery_cut_short_by_the_detach_is_forgotten(who: str) -> None:
    """What was half sent when the link detached never completes: neither side keeps
    it (nothing would ever settle it), and the session carries on."""
    pair, session, sender, receiver = _small_frames()
    server_session = receiver.session
    sender.send(b"z" * 5000)  # ten frames: the server's window of 2 lets two go
    pair.server.receive_data(pair.client.data_to_send())  # the window's answer waits
    assert len(session.outgoing.waiting) == 1
    assert session.outgoing.unsettled and server_session._unsettled_in
    (sender if who == "sender" else receiver).detach()
    pair.pump()
    assert pair.take("server", DeliveryReceived) == []
    assert not session.outgoing.waiting
    assert not session.outgoing.unsettled and not server_session._unsettled_in
    assert receiver._incoming is None and not receiver._chunks
    pair.clear()
    sender2, receiver2 = attach(pair, session, "again")
    receiver2.flow(1)
    pair.pump()
    sent = sender2.send(b"small")
    pair.pump()
    pair.take_one("server", DeliveryReceived).delivery.update(Accepted(), settled=True)
    pair.pump()
    assert pair.take_one("client", DeliveryUpdated).delivery is sent
