"""Connections: open and close, negotiation, idle timeouts, heartbeats, the frame trace."""

from __future__ import annotations

import logging

import pytest

from petrel.engine import Connection, ConnectionConfig, ConnectionState, trace
from petrel.engine.events import ConnectionClosed, ConnectionOpened, SessionBegun
from petrel.engine.trace import FRAMES_LOG, tracing_enabled
from petrel.errors import AmqpError, Condition, LocalProtocolError
from petrel.spec import Begin, Close, Error, Open
from petrel.spec.framing import AMQP_HEADER, HEARTBEAT
from petrel.types import Symbol
from tests.helpers.engine_pair import EnginePair, pump
from tests.helpers.frames import RawPeer, frame, parse


def test_open_exchanges_every_field() -> None:
    client = ConnectionConfig(
        container_id="c1",
        hostname="vhost.example",
        max_frame_size=4096,
        channel_max=9,
        idle_timeout=30.0,
        offered_capabilities=["ANONYMOUS-RELAY"],
        desired_capabilities=["DELAYED_DELIVERY", "SHARED-SUBS"],
        properties={"product": "petrel", "version": 1},
        outgoing_locales=["en-GB"],
        incoming_locales=["fr-FR", "en-US"],
    )
    pair = EnginePair(client, ConnectionConfig(container_id="s1", max_frame_size=2048))
    pair.open()
    opened = pair.take_one("server", ConnectionOpened)
    assert opened.container_id == "c1"
    assert opened.hostname == "vhost.example"
    assert opened.max_frame_size == 4096
    assert opened.channel_max == 9
    assert opened.idle_timeout == 30.0
    assert opened.offered_capabilities == (Symbol("ANONYMOUS-RELAY"),)
    assert opened.desired_capabilities == (Symbol("DELAYED_DELIVERY"), Symbol("SHARED-SUBS"))
    assert opened.properties == {Symbol("product"): "petrel", Symbol("version"): 1}
    assert opened.outgoing_locales == (Symbol("en-GB"),)
    assert opened.incoming_locales == (Symbol("fr-FR"), Symbol("en-US"))
    assert pair.take_one("client", ConnectionOpened).container_id == "s1"
    assert pair.client.remote_max_frame_size == 2048
    assert pair.server.remote_max_frame_size == 4096
    assert pair.server.remote_channel_max == 9
    assert pair.client.state is ConnectionState.OPENED
    assert pair.server.state is ConnectionState.OPENED
    assert pair.server.remote_open is not None
    assert pair.server.remote_open.container_id == "c1"


def test_client_pipelines_header_and_open() -> None:
    pair = EnginePair()
    pair.client.open()
    headers, frames = parse(pair.client.data_to_send())
    assert headers == [AMQP_HEADER]
    assert isinstance(frames[0][1], Open)
    assert pair.client.state is ConnectionState.OPEN_PIPE


def test_clean_close_both_ways() -> None:
    pair = EnginePair()
    pair.open()
    pair.client.close()
    pair.pump()
    assert pair.take_one("client", ConnectionClosed) == ConnectionClosed(None, by_peer=False)
    assert pair.take_one("server", ConnectionClosed) == ConnectionClosed(None, by_peer=True)
    assert pair.client.finished and pair.server.finished
    assert pair.client.state is ConnectionState.END
    assert pair.server.state is ConnectionState.END


@pytest.mark.parametrize("closer", ["client", "server"])
def test_close_with_error_reaches_the_peer(closer: str) -> None:
    pair = EnginePair()
    pair.open()
    engine = pair.client if closer == "client" else pair.server
    other = "server" if closer == "client" else "client"
    engine.close(AmqpError("going away", condition=Condition.CONNECTION_FORCED, info={"k": 1}))
    pair.pump()
    closed = pair.take_one(other, ConnectionClosed)  # type: ignore[arg-type]
    assert closed.by_peer
    assert closed.error == Error(
        condition=Symbol(Condition.CONNECTION_FORCED),
        description="going away",
        info={Symbol("k"): 1},
    )
    assert pair.take_one(closer, ConnectionClosed).by_peer is False  # type: ignore[arg-type]


def test_close_twice_and_commands_after_close() -> None:
    pair = EnginePair()
    pair.open()
    pair.client.close()
    pair.client.close()
    with pytest.raises(LocalProtocolError):
        pair.client.begin_session()
    pair.pump()
    assert len(pair.take("client", ConnectionClosed)) == 1


def test_commands_need_open() -> None:
    conn = Connection()
    with pytest.raises(LocalProtocolError):
        conn.begin_session()
    conn.open()
    with pytest.raises(LocalProtocolError):
        conn.open()


def test_server_that_opens_late_writes_open_first() -> None:
    """A client pipelines open+begin; the server answers the begin before it opens."""
    pair = EnginePair(auto=False)
    pair.client.open()
    pair.client.begin_session()
    pair.pump()
    assert pair.take_one("server", ConnectionOpened)
    assert pair.take_one("server", SessionBegun).remote_initiated
    # Nothing but the header went out: the begin answer waits for our open.
    assert [side for side, _ in pair.wire].count("server") == 1
    pair.server.open()
    data = pair.server.data_to_send()
    _, frames = parse(data)
    assert [type(body) for _, body, _ in frames] == [Open, Begin]
    pair.client.receive_data(data)
    pair.pump()
    assert pair.take_one("client", SessionBegun)


def test_server_refuses_a_connection_by_closing() -> None:
    pair = EnginePair(auto=False)
    pair.client.open()
    pair.pump()
    pair.server.close(Error(condition=Symbol(Condition.UNAUTHORIZED_ACCESS)))
    pair.pump()
    closed = pair.take_one("client", ConnectionClosed)
    assert closed.by_peer
    assert closed.error is not None and closed.error.condition == Condition.UNAUTHORIZED_ACCESS
    assert pair.client.finished and pair.server.finished


def test_peer_closing_before_we_open_gets_open_then_close(raw_server: object) -> None:
    engine = Connection(ConnectionConfig(container_id="s"), server=True)
    peer = RawPeer(engine)
    peer.send(AMQP_HEADER, frame(Open(container_id="raw")), frame(Close()))
    assert [type(body) for _, body, _ in peer.frames] == [Open, Close]
    assert peer.event(ConnectionClosed).by_peer
    assert engine.finished


def test_connection_lost() -> None:
    pair = EnginePair()
    pair.open()
    pair.client.connection_lost("reset by peer")
    closed = pair.client.next_event()
    assert isinstance(closed, ConnectionClosed)
    assert closed.error is not None
    assert "reset by peer" in (closed.error.description or "")
    assert not closed.by_peer
    assert pair.client.finished
    # The state machine says it too: nothing more may be begun on it.
    assert pair.client.state is ConnectionState.END
    with pytest.raises(LocalProtocolError, match="only on an open connection"):
        pair.client.begin_session()
    assert pair.client.data_to_send() == b""
    pair.client.connection_lost()
    assert pair.client.next_event() is None


def test_connection_lost_after_close_reports_nothing_more() -> None:
    pair = EnginePair()
    pair.open()
    pair.client.close()
    pair.pump()
    pair.client.connection_lost()
    assert pair.take("client", ConnectionClosed) == [ConnectionClosed(None, False)]


def test_channel_max_limits_our_sessions() -> None:
    pair = EnginePair(server_config=ConnectionConfig(container_id="s", channel_max=1))
    pair.open()
    pair.client.begin_session()
    pair.client.begin_session()
    with pytest.raises(LocalProtocolError):
        pair.client.begin_session()


# --- idle timeout and heartbeats -----------------------------------------------------------


def test_heartbeats_keep_an_idle_connection_alive() -> None:
    pair = EnginePair(server_config=ConnectionConfig(container_id="s", idle_timeout=1.0))
    pair.open()
    pair.advance(0)
    pair.wire.clear()
    for _ in range(40):
        pair.advance(0.25)
    assert not pair.take("server", ConnectionClosed)
    beats = [data for side, data in pair.wire if side == "client"]
    assert beats and all(data == HEARTBEAT for data in beats)
    # Half the server's timeout is 0.5 s: about 20 heartbeats in 10 s.
    assert 15 <= len(beats) <= 21
    # The server advertised a timeout, the client did not: the server sends none.
    assert not [data for side, data in pair.wire if side == "server"]


def test_idle_timeout_closes_a_silent_peer() -> None:
    engine = Connection(ConnectionConfig(container_id="s", idle_timeout=1.0), server=True)
    engine.open()
    peer = RawPeer(engine)
    peer.send(AMQP_HEADER, frame(Open(container_id="raw")))
    assert peer.last(Open).idle_time_out == 1000
    deadline = engine.get_timer()
    assert deadline is not None
    engine.handle_timer(deadline)
    engine.handle_timer(0.9)
    assert not peer.performatives(Close)
    engine.handle_timer(1.0)
    peer.collect()
    close = peer.last(Close)
    assert close.error is not None
    assert close.error.condition == Condition.RESOURCE_LIMIT_EXCEEDED
    closed = peer.event(ConnectionClosed)
    assert closed.error == close.error and not closed.by_peer
    assert engine.finished
    assert engine.get_timer() is None


def test_traffic_resets_the_idle_timer() -> None:
    engine = Connection(ConnectionConfig(container_id="s", idle_timeout=1.0), server=True)
    engine.open()
    peer = RawPeer(engine)
    peer.send(AMQP_HEADER, frame(Open(container_id="raw")))
    now = 0.0
    engine.handle_timer(now)
    for _ in range(10):
        now += 0.9
        peer.send(frame(None))
        engine.handle_timer(now)
    peer.collect()
    assert not peer.performatives(Close)


def test_heartbeat_at_half_the_peer_timeout() -> None:
    engine = Connection(ConnectionConfig(container_id="s"), server=True)
    engine.open()
    peer = RawPeer(engine)
    peer.send(AMQP_HEADER, frame(Open(container_id="raw", idle_time_out=2000)))
    peer.frames.clear()
    assert engine.get_timer() == 0.0
    engine.handle_timer(0.0)
    assert engine.get_timer() == 1.0
    engine.handle_timer(0.99)
    peer.collect()
    assert peer.frames == []
    engine.handle_timer(1.0)
    peer.collect()
    assert peer.frames == [(0, None, b"")]
    assert engine.get_timer() == 2.0


# --- frame trace ---------------------------------------------------------------------------


def test_frame_trace_through_the_logger(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="petrel.frames"):
        pair = EnginePair()
        pair.open()
        session = pair.client.begin_session()
        pair.pump()
        session.end()
        pair.pump()
    lines = [r.getMessage() for r in caplog.records if r.name == "petrel.frames"]
    assert any("-> ch=0 Open(container_id='client'" in line for line in lines)
    assert any("<- ch=0 Begin(" in line for line in lines)
    assert any("b'AMQP\\x00\\x01\\x00\\x00'" in line for line in lines)


def test_frame_trace_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PETREL_TRACE_FRAMES", raising=False)
    assert FRAMES_LOG.getEffectiveLevel() > logging.DEBUG
    assert not tracing_enabled()
    assert Connection().output.tracer is None


def test_frame_trace_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETREL_TRACE_FRAMES", "1")
    monkeypatch.setattr(trace, "_env_handler", None)
    level = FRAMES_LOG.level
    handlers = list(FRAMES_LOG.handlers)
    try:
        assert tracing_enabled()
        assert Connection().output.tracer is not None
    finally:
        FRAMES_LOG.setLevel(level)
        for handler in FRAMES_LOG.handlers[:]:
            if handler not in handlers:
                FRAMES_LOG.removeHandler(handler)


def _opened_pair() -> tuple[Connection, Connection]:
    client = Connection(ConnectionConfig(container_id="c"))
    server = Connection(ConnectionConfig(container_id="s"), server=True)
    for engine in (client, server):
        engine.handle_timer(0.0)
    client.open()
    server.open()
    client.begin_session()
    client.begin_session()
    pump(client, server)
    return client, server


def test_take_events_hands_out_at_once_what_next_event_would_one_by_one() -> None:
    _, one_by_one = _opened_pair()
    expected = []
    while (event := one_by_one.next_event()) is not None:
        expected.append(type(event))
    assert len(expected) >= 3  # opened, and a begin for each session

    client, server = _opened_pair()
    first = server.next_event()
    rest = server.take_events()
    assert [type(first), *map(type, rest)] == expected
    assert server.take_events() == [] and server.next_event() is None
    # Later events go to a fresh batch: the list handed out does not change.
    client.close()
    pump(client, server)
    later = server.take_events()
    assert [type(e) for e in later] == [ConnectionClosed]
    assert [type(first), *map(type, rest)] == expected
