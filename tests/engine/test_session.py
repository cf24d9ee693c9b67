"""Sessions: begin/end, channels, handles, and session flow control (part 2.5.6)."""

from __future__ import annotations

from petrel.engine import ConnectionConfig, Link, LinkState, Session, SessionState
from petrel.engine.events import (
    DeliveryReceived,
    LinkAttachRequested,
    LinkDetached,
    SessionBegun,
    SessionEnded,
)
from petrel.errors import AmqpError, Condition
from petrel.spec import Begin, Flow, Source, Target, Transfer
from tests.helpers.engine_pair import EnginePair
from tests.helpers.frames import parse

from .conftest import attach


def test_begin_and_end(pair: EnginePair) -> None:
    session = pair.client.begin_session(
        incoming_window=100, outgoing_window=50, properties={"p": 1}, offered_capabilities=["x"]
    )
    assert session.state is SessionState.BEGIN_SENT
    pair.pump()
    begun = pair.take_one("client", SessionBegun)
    assert begun.session is session and not begun.remote_initiated
    remote = pair.take_one("server", SessionBegun)
    assert remote.remote_initiated
    assert remote.session.remote_properties == {"p": 1}
    assert remote.session.remote_offered_capabilities == ("x",)
    assert remote.session.remote_incoming_window == 100
    assert session.state is SessionState.MAPPED
    session.end()
    assert session.state is SessionState.END_SENT
    pair.pump()
    assert pair.take_one("client", SessionEnded) == SessionEnded(session, None, False)
    assert pair.take_one("server", SessionEnded) == SessionEnded(remote.session, None, True)
    assert session.state is SessionState.ENDED
    assert pair.client.sessions == [] and pair.server.sessions == []


def test_server_begins_a_session_too(pair: EnginePair) -> None:
    session = pair.server.begin_session()
    pair.pump()
    assert pair.take_one("client", SessionBegun).remote_initiated
    assert pair.take_one("server", SessionBegun).session is session


def test_many_sessions_and_channel_reuse(pair: EnginePair) -> None:
    sessions = [pair.client.begin_session() for _ in range(50)]
    assert [s.channel for s in sessions] == list(range(50))
    pair.pump()
    assert len(pair.take("server", SessionBegun)) == 50
    assert len(pair.take("client", SessionBegun)) == 50
    for s in sessions[10:20]:
        s.end()
    pair.pump()
    assert len(pair.take("server", SessionEnded)) == 10
    again = pair.client.begin_session()
    assert again.channel == 10
    pair.pump()
    assert pair.take_one("client", SessionBegun).session is again


def test_end_with_error_both_ways(pair: EnginePair, session: Session) -> None:
    sender, receiver = attach(pair, session)
    session.end(AmqpError("bye", condition=Condition.RESOURCE_LIMIT_EXCEEDED))
    assert sender.state is LinkState.CLOSED
    pair.pump()
    ended = pair.take_one("server", SessionEnded)
    assert ended.by_peer
    assert ended.error is not None
    assert ended.error.condition == Condition.RESOURCE_LIMIT_EXCEEDED
    assert ended.error.description == "bye"
    # Its links went with it, without detach frames or events.
    assert receiver.state is LinkState.CLOSED
    assert not pair.take("server", LinkDetached)
    pair.clear()
    server_session = pair.server.begin_session()
    pair.pump()
    client_session = pair.take_one("client", SessionBegun).session
    server_session.end(AmqpError("no", condition=Condition.NOT_ALLOWED))
    pair.pump()
    ended = pair.take_one("client", SessionEnded)
    assert ended.session is client_session and ended.by_peer
    assert ended.error is not None and ended.error.condition == Condition.NOT_ALLOWED


def test_end_twice_does_nothing(pair: EnginePair, session: Session) -> None:
    session.end()
    session.end()
    pair.pump()
    assert len(pair.take("client", SessionEnded)) == 1


def test_handles_are_reused(pair: EnginePair, session: Session) -> None:
    links = [session.attach_sender(f"l{i}", None, Target(address="q")) for i in range(5)]
    assert [link.handle for link in links] == [0, 1, 2, 3, 4]
    pair.pump()
    links[2].detach()
    pair.pump()
    assert session.attach_sender("again", None, Target(address="q")).handle == 2


def test_handle_max_limits_our_links(pair: EnginePair) -> None:
    pair.server.config.handle_max = 1
    session = pair.client.begin_session()
    pair.pump()
    session.attach_sender("a", None, Target())
    session.attach_sender("b", None, Target())
    try:
        session.attach_sender("c", None, Target())
    except AmqpError as exc:
        assert "handle-max" in str(exc)
    else:
        raise AssertionError("a third handle was allowed")


def _windowed(incoming_window: int, credit: int) -> tuple[EnginePair, Session, Link]:
    """An open pair whose server session takes ``incoming_window`` frames, and a client
    sender to it holding ``credit``."""
    pair = EnginePair(
        server_config=ConnectionConfig(container_id="s", incoming_window=incoming_window)
    )
    pair.open()
    session = pair.client.begin_session()
    pair.pump()
    sender, receiver = attach(pair, session)
    receiver.flow(credit)
    pair.pump()
    return pair, session, sender


def _transfer_ids(pair: EnginePair) -> None:
    for client_s in pair.client.sessions:
        server_s = next(s for s in pair.server.sessions if s.remote_channel == client_s.channel)
        assert client_s.next_outgoing_id == server_s.next_incoming_id
        assert server_s.next_outgoing_id == client_s.next_incoming_id


def test_small_incoming_window_is_refreshed() -> None:
    pair, _, sender = _windowed(4, credit=100)
    for i in range(40):
        sender.send(b"m%d" % i)
        pair.pump()
    got = [e.payload for e in pair.take("server", DeliveryReceived)]
    assert got == [b"m%d" % i for i in range(40)]
    _transfer_ids(pair)


def test_a_window_of_one_frame() -> None:
    pair, _, sender = _windowed(1, credit=100)
    for i in range(30):
        sender.send(b"%d" % i)
    pair.pump()
    assert len(pair.take("server", DeliveryReceived)) == 30
    assert not pair.take("server", SessionEnded)
    _transfer_ids(pair)


def test_transfers_wait_for_the_peers_window() -> None:
    pair, session, sender = _windowed(3, credit=50)
    assert session.remote_incoming_window == 3
    deliveries = [sender.send(b"x" * 10) for _ in range(10)]
    # Only three transfers fit the window; the rest wait, without delivery ids yet.
    _, frames = parse(pair.client.data_to_send())
    assert len([f for f in frames if isinstance(f[1], Transfer)]) == 3
    assert [d.delivery_id for d in deliveries[:4]] == [0, 1, 2, None]
    assert session.remote_incoming_window == 0
    assert sender.credit == 40


def test_blocked_transfers_flow_when_the_window_opens() -> None:
    pair, _, sender = _windowed(3, credit=50)
    for i in range(20):
        sender.send(b"%d" % i)
    # Three fit the peer's window; the rest wait in the session's sending half.
    assert sender.session.outgoing.unsent(sender) == 17
    pair.pump()
    got = [e.payload for e in pair.take("server", DeliveryReceived)]
    assert got == [b"%d" % i for i in range(20)]
    assert sender.session.outgoing.unsent(sender) == 0
    _transfer_ids(pair)


def test_multi_frame_delivery_waits_part_way() -> None:
    pair = EnginePair(
        ConnectionConfig(container_id="c"),
        ConnectionConfig(container_id="s", incoming_window=2, max_frame_size=512),
    )
    pair.open()
    session = pair.client.begin_session()
    pair.pump()
    sender, receiver = attach(pair, session)
    receiver.flow(10)
    pair.pump()
    payload = bytes(range(256)) * 20
    sender.send(payload)
    sender.send(b"after")
    pair.pump()
    got = [e.payload for e in pair.take("server", DeliveryReceived)]
    assert got == [payload, b"after"]
    _transfer_ids(pair)


def test_detach_drops_transfers_still_waiting() -> None:
    pair, session, sender = _windowed(2, credit=10)
    for _ in range(6):
        sender.send(b"x")
    assert session.outgoing.waiting
    sender.detach()
    assert not session.outgoing.waiting
    pair.pump()
    assert len(pair.take("server", DeliveryReceived)) == 2
    assert pair.take_one("server", LinkDetached).by_peer


def test_session_flow_answers_echo(pair: EnginePair, session: Session) -> None:
    server_session = pair.server.sessions[0]
    pair.wire.clear()
    pair.server.output.write_frame(
        server_session.channel,
        Flow(
            next_incoming_id=0, incoming_window=7, next_outgoing_id=0, outgoing_window=9, echo=True
        ),
    )
    pair.pump()
    assert session.remote_incoming_window == 7
    assert session.remote_outgoing_window == 9
    flows = [b for side, data in pair.wire if side == "client" for _, b, _ in parse(data)[1]]
    assert len(flows) == 1 and isinstance(flows[0], Flow) and flows[0].handle is None


def test_link_on_remote_begin_uses_config_windows() -> None:
    pair = EnginePair(server_config=ConnectionConfig(container_id="s", incoming_window=77))
    pair.open()
    pair.client.begin_session()
    pair.wire.clear()
    pair.pump()
    begins = [b for side, data in pair.wire if side == "server" for _, b, _ in parse(data)[1]]
    assert isinstance(begins[0], Begin)
    assert begins[0].incoming_window == 77 and begins[0].remote_channel == 0


def test_remote_attach_gets_a_requested_event(pair: EnginePair, session: Session) -> None:
    session.attach_receiver("r", Source(address="q"), Target())
    pair.pump()
    link = pair.take_one("server", LinkAttachRequested).link
    assert link.is_sender and link.remote_initiated
