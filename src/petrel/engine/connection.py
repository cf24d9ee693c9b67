"""The sans-IO AMQP 1.0 connection: bytes in, events and bytes out, time passed in.

    conn = Connection(ConnectionConfig(...), server=False)
    conn.handle_timer(now)            # once at the start, then whenever get_timer() passes
    conn.open()
    sock.send(conn.data_to_send())
    conn.receive_data(sock.recv(...))
    while (event := conn.next_event()) is not None:
        ...                           # react with commands on conn, sessions, links, deliveries
    sock.send(conn.data_to_send())    # one write for everything those commands produced
    if conn.finished: sock.close()

The connection owns the protocol header exchange (part 2.2), the SASL layer
(part 5.3), framing (part 2.3), open/close (part 2.4, states in
:mod:`.states`), idle timeouts and heartbeats; sessions and links live in
:mod:`.session` and :mod:`.link`.  Nothing the peer sends makes
``receive_data`` raise: protocol violations are answered with a close, end or
detach carrying the spec's error condition, and reported as events.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from typing import Any, Final

from ..codec import encode_into
from ..errors import AmqpError, Condition, LocalProtocolError, RemoteProtocolError
from ..spec import (
    Attach,
    Begin,
    Close,
    Detach,
    Disposition,
    End,
    Error,
    Flow,
    Open,
    SaslCode,
    Transfer,
    decode_from,
)
from ..spec.framing import (
    AMQP_HEADER,
    FRAME_HEADER,
    FRAME_TYPE_AMQP,
    FRAME_TYPE_SASL,
    HEARTBEAT,
    MIN_MAX_FRAME_SIZE,
)
from ..types import Symbol
from .config import ConnectionConfig
from .events import ConnectionClosed, ConnectionOpened, Event, LinkDetached
from .faults import LinkFault, SessionFault, as_error, error_of
from .framing import HEADER_PLACEHOLDER, pack_header, read_performative
from .handshake import Handshake
from .output import Output
from .session import Session
from .states import (
    CONNECTION_TRANSITIONS,
    ConnectionState,
    Input,
    LinkState,
    SessionState,
    step,
)
from .trace import FrameTracer, tracing_enabled

__all__ = ["Connection"]

log = logging.getLogger("petrel.engine")

_C = ConnectionState
_unpack_header: Final = FRAME_HEADER.unpack_from
#: The performatives of the hot path, as C statics when compiled (not a dict lookup).
_TRANSFER: Final = Transfer
_FLOW: Final = Flow
_DISPOSITION: Final = Disposition
_ids: Final = itertools.count(1)
_NO_LIMIT: Final = 0xFFFFFFFF
#: How the connection-lost error reads (Proton reports a dropped transport the same way).
CONNECTION_LOST: Final = Condition.FRAMING_ERROR


class Connection:
    """One AMQP connection, client (``server=False``) or server side.

    See the module docstring for the loop that drives it.  ``state`` is the
    part 2.4.6 connection state; ``remote_open`` the peer's ``open`` once it
    came; ``sasl_*`` describe the SASL outcome.
    """

    def __init__(self, config: ConnectionConfig | None = None, server: bool = False) -> None:
        self.config = config = config or ConnectionConfig()
        self.server = server
        self.state = ConnectionState.START
        self.remote_open: Open | None = None
        self.remote_max_frame_size = _NO_LIMIT
        self.remote_channel_max = 0xFFFF
        self.remote_idle_timeout: float | None = None
        self.sasl_mechanism: str | None = None
        self.sasl_outcome: SaslCode | None = None
        self.sasl_identity: str | None = None
        self._label = f"{config.container_id}/{next(_ids)}"
        #: Frames, events and dirty sessions, written by this connection and by its
        #: sessions and links; AMQP frames are held back until our open is written.
        self.output = Output(FrameTracer(self._label) if tracing_enabled() else None)
        self._pre = bytearray()  # protocol headers and SASL frames
        self._open_requested = False
        self._header_sent = False  # our AMQP protocol header
        self._open_sent = False
        self._close_sent = False
        self._over = False  # nothing more is read: closed, failed or lost
        self._lost = False
        self._closed_reported = False
        # Input: whole frames are parsed from bytes objects at offsets; a partial one waits.
        self._in_chunks: list[bytes] = []
        self._in_len = 0
        self._need = 8
        self._expect_header = True
        self._frame_type = FRAME_TYPE_AMQP
        self._max_frame = config.max_frame_size
        self._handshake = Handshake(self)
        # Sessions by our channel and by the peer's.
        self._sessions: dict[int, Session] = {}
        self._remote_channels: dict[int, Session] = {}
        self._free_channels: list[int] = []
        self._channel_counter = 0
        # Timers (see handle_timer).
        self._now: float | None = None
        self._bytes_in = 0
        self._bytes_out = 0
        self._idle_deadline: float | None = None
        self._seen_in = 0
        self._beat_deadline: float | None = None
        self._seen_out = 0
        self._handlers: dict[type, Any] = {
            Open: self._on_open,
            Close: self._on_close,
            Begin: self._on_begin,
            End: self._session_frame,
            Attach: self._session_frame,
            Detach: self._session_frame,
            Flow: self._session_frame,
            Disposition: self._session_frame,
        }

    # --- the driver's interface -------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the transport.  Never raises for anything the peer sends."""
        if self._over or not data:
            return
        if type(data) is not bytes:
            data = bytes(data)
        assert isinstance(data, bytes)
        self._bytes_in += len(data)
        if self._in_len:
            self._in_chunks.append(data)
            self._in_len += len(data)
            if self._in_len < self._need:
                return
            data = b"".join(self._in_chunks)
            self._in_chunks = []
            self._in_len = 0
        try:
            pos = self._read(data)
        except Exception as exc:
            log.exception("[%s] engine failure while reading", self._label)
            self._fail(Condition.INTERNAL_ERROR, f"internal error: {exc!r}")
            return
        if pos < len(data) and not self._over:
            rest = data[pos:]
            self._in_chunks = [rest]
            self._in_len = len(rest)

    def data_to_send(self) -> bytes:
        """Everything there is to write, as one ``bytes`` (``b""`` if nothing)."""
        if self._lost:
            self._pre.clear()
            self.output.clear()
            return b""
        output = self.output
        if output.dirty:
            self._flush_sessions()
        out = output.frames
        if output.segments:
            data = b"".join(self._take_segments())
        elif self._pre:
            data = bytes(self._pre)
            self._pre.clear()
            if self._open_sent and out:
                data += out
                out.clear()
        elif self._open_sent and out:
            data = bytes(out)
            out.clear()
        else:
            return b""
        self._bytes_out += len(data)
        return data

    def pieces_to_send(self) -> list[bytes | memoryview]:
        """:meth:`data_to_send` as pieces to write in this order (``[]``: nothing), not
        joined: the slices of a large payload stay views of it, so a transport that
        writes a list with one ``writev`` (uvloop's ``writelines``) copies nothing."""
        output = self.output
        if not self._lost:
            if output.dirty:
                self._flush_sessions()
            if output.segments:
                pieces = self._take_segments()
                for piece in pieces:
                    self._bytes_out += len(piece)
                return pieces
        data = self.data_to_send()
        return [data] if data else []

    def _take_segments(self) -> list[bytes | memoryview]:
        """The output so far, as segments: frames written since the last segment become
        one, and what precedes our open goes first (only transfers make segments, and
        they come after our open)."""
        output = self.output
        segments = output.segments
        out = output.frames
        if out:
            segments.append(bytes(out))
            out.clear()
        if self._pre:
            segments.insert(0, bytes(self._pre))
            self._pre.clear()
        pieces = list(segments)
        segments.clear()
        output.segments_len = 0
        return pieces

    def next_event(self) -> Event | None:
        """The next event, or ``None`` when there is none."""
        output = self.output
        events = output.events
        at = output.events_read
        if at >= len(events):
            return None
        event = events[at]
        at += 1
        if at == len(events):
            events.clear()
            at = 0
        output.events_read = at
        return event

    def take_events(self) -> list[Event]:
        """Every pending event at once, oldest first: what :meth:`next_event` would return
        one by one (a driver's loop over a batch costs less than a call per event).
        Events that arise while these are handled come in the next batch."""
        output = self.output
        events = output.events
        output.events = []
        if output.events_read:
            del events[: output.events_read]
            output.events_read = 0
        return events

    def get_timer(self) -> float | None:
        """When ``handle_timer`` should next be called (monotonic seconds), or ``None``."""
        if self._over or not self._open_sent:
            return None
        now = self._now if self._now is not None else 0.0
        deadline: float | None = None
        if self.config.idle_timeout:
            deadline = self._idle_deadline if self._idle_deadline is not None else now
        if self.remote_idle_timeout:
            beat = self._beat_deadline if self._beat_deadline is not None else now
            deadline = beat if deadline is None else min(deadline, beat)
        return deadline

    def handle_timer(self, now: float) -> None:
        """Let time pass: close an idle connection, send heartbeats that are due.

        Activity is noticed at each call (as Proton's ``tick`` does), so the
        peer is declared dead after between one and two idle timeouts of
        silence, and a heartbeat goes out when nothing was written for half
        the peer's timeout.
        """
        self._now = now
        if self._over or not self._open_sent:
            return
        idle = self.config.idle_timeout
        if idle:
            if self._idle_deadline is None or self._bytes_in != self._seen_in:
                self._idle_deadline = now + idle
                self._seen_in = self._bytes_in
            elif now >= self._idle_deadline:
                self._fail(
                    Condition.RESOURCE_LIMIT_EXCEEDED,
                    f"local idle timeout: nothing from the peer for {idle:g} s",
                )
                return
        remote = self.remote_idle_timeout
        if remote:
            produced = self._bytes_out + self.output.pending() + len(self._pre)
            if self._beat_deadline is None or produced != self._seen_out:
                self._beat_deadline = now + remote / 2
                self._seen_out = produced
            elif now >= self._beat_deadline and not self._close_sent:
                self.output.frames += HEARTBEAT
                if self.output.tracer is not None:
                    self.output.tracer.frame("->", 0, None)
                self._beat_deadline = now + remote / 2
                self._seen_out = produced + len(HEARTBEAT)

    def connection_lost(self, reason: str | None = None) -> None:
        """The transport is gone: report the connection closed, if it was not already."""
        self._lost = True
        self.state = step(
            CONNECTION_TRANSITIONS, self.state, Input.LOST, what="connection", remote=False
        )
        if self._closed_reported:
            self._over = True
            return
        description = f"connection lost: {reason}" if reason else "connection lost"
        self._finish(error_of(CONNECTION_LOST, description), by_peer=False)

    @property
    def sasl_offered(self) -> tuple[str, ...] | None:
        """Server: the SASL mechanisms we offered (``None``: no SASL exchange began)."""
        server = self._handshake.sasl_server
        return None if server is None else tuple(str(name) for name in server.offered)

    @property
    def pending_output(self) -> int:
        """Bytes our commands produced that :meth:`data_to_send` has not handed out yet
        (frames held back until our open included): what a driver adds to its socket's
        write buffer to judge whether more should be produced now."""
        return len(self._pre) + self.output.pending()

    @property
    def finished(self) -> bool:
        """Whether the connection is over and everything to send has been taken."""
        if not self._over:
            return False
        return self._lost or not (
            self._pre or self.output.segments or (self._open_sent and self.output.frames)
        )

    # --- commands ---------------------------------------------------------------------------

    def open(self) -> None:
        """Open the connection.

        A client writes its protocol header (the SASL one first when SASL is
        configured) and its ``open`` now; a server writes its ``open`` as soon
        as the client's header has been answered.
        """
        if self._open_requested:
            raise LocalProtocolError("open() was already called")
        if self._over:
            raise LocalProtocolError("the connection is over")
        self._open_requested = True
        if not self.server:
            self._handshake.start_client()
        if self._header_sent:
            self._write_open()

    def close(self, error: Error | AmqpError | None = None) -> None:
        """Close the connection (with ``error`` if given); :class:`ConnectionClosed` follows.

        Before the AMQP header exchange (during SASL, say) there is no close
        to send: the connection simply ends (a server in the middle of SASL sends the
        outcome ``sys-temp`` first).  Closing twice does nothing.
        """
        if self._over or self._close_sent:
            return
        err = as_error(error)
        if not self._header_sent:
            # A server ending a SASL exchange under way still gives the outcome (part 5.3.2):
            # "temporary", since nothing the client sent was wrong (a deadline, a limit).
            self._handshake.refuse_sasl(SaslCode.SYS_TEMP)
            self._finish(err, by_peer=False)
            return
        self._ensure_open()
        self._flush_sessions()
        new_state = step(
            CONNECTION_TRANSITIONS, self.state, Input.SEND_CLOSE, what="connection", remote=False
        )
        self.output.write_frame(0, Close(error=err))
        self.state = new_state
        self._close_sent = True
        self._sessions_over()

    def begin_session(
        self,
        incoming_window: int | None = None,
        outgoing_window: int | None = None,
        *,
        handle_max: int | None = None,
        offered_capabilities: Any = None,
        desired_capabilities: Any = None,
        properties: dict[Any, Any] | None = None,
    ) -> Session:
        """Begin a session; :class:`SessionBegun` comes with the peer's answer.

        Windows and ``handle_max`` default to the connection config's.
        """
        if not self._open_requested or self._close_sent or self._over:
            raise LocalProtocolError("sessions can begin only on an open connection")
        config = self.config
        channel = self._allocate_channel()
        session = Session(
            self,
            channel,
            incoming_window=config.incoming_window if incoming_window is None else incoming_window,
            outgoing_window=config.outgoing_window if outgoing_window is None else outgoing_window,
            handle_max=config.handle_max if handle_max is None else handle_max,
            offered_capabilities=offered_capabilities,
            desired_capabilities=desired_capabilities,
            properties=properties,
        )
        try:
            session._send_begin()
        except BaseException:
            heapq.heappush(self._free_channels, channel)
            raise
        self._sessions[channel] = session
        return session

    @property
    def sessions(self) -> list[Session]:
        """The sessions in use (begun, or ending)."""
        return list(self._sessions.values())

    # --- reading ----------------------------------------------------------------------------

    def _read(self, buf: bytes) -> int:
        """Handle every complete header and frame in ``buf``; return where the rest begins."""
        pos = 0
        n = len(buf)
        while pos < n and not self._over:
            if n - pos < 8:
                self._need = 8
                return pos
            if self._expect_header:
                self._handshake.on_header(buf[pos : pos + 8])
                pos += 8
                continue
            header: tuple[int, int, int, int] = _unpack_header(buf, pos)  # typed: native ints
            size, doff, frame_type, channel = header
            if size > self._max_frame or doff < 2 or doff * 4 > size:
                if size > self._max_frame:
                    why = f"a frame of {size} bytes exceeds our max-frame-size {self._max_frame}"
                else:
                    why = f"bad frame header: size {size}, data offset {doff}"
                self._fail(Condition.FRAMING_ERROR, why)
                return n
            if n - pos < size:
                self._need = size
                return pos
            end = pos + size
            self._on_frame(frame_type, channel, buf, pos + doff * 4, end)
            pos = end
        return pos

    def _on_frame(self, frame_type: int, channel: int, buf: bytes, body: int, end: int) -> None:
        try:
            if frame_type != self._frame_type:
                expected = "SASL" if self._frame_type == FRAME_TYPE_SASL else "AMQP"
                raise RemoteProtocolError(
                    f"frame type {frame_type} where {expected} frames are expected",
                    condition=Condition.FRAMING_ERROR,
                )
            if body == end:
                if self.output.tracer is not None:
                    self.output.tracer.frame("<-", channel, None)
                return
            fast = read_performative(buf, body, end)
            if fast is None:
                frame, off = decode_from(buf, body)
            else:
                frame, off = fast
            if off > end:
                raise RemoteProtocolError(
                    f"the {type(frame).__name__} runs past the end of its frame",
                    condition=Condition.FRAMING_ERROR,
                )
            if self.output.tracer is not None:
                self.output.tracer.frame("<-", channel, frame, end - off)
            if self._close_sent and type(frame) is not Close:
                return  # we closed: only the peer's close matters now
            if type(frame) is _TRANSFER:
                session = self._remote_channels.get(channel)
                if session is None:
                    self._no_session(channel, frame)
                session._on_transfer(frame, buf, off, end)  # type: ignore[union-attr]
            elif self._frame_type == FRAME_TYPE_SASL:
                self._handshake.on_sasl_frame(frame)
            else:
                handler = self._handlers.get(type(frame))
                if handler is None:
                    raise RemoteProtocolError(
                        f"a {type(frame).__name__} is not an AMQP performative",
                        condition=Condition.NOT_ALLOWED,
                    )
                handler(channel, frame)
        except LinkFault as fault:
            self._link_failed(fault)
        except SessionFault as fault:
            fault.session._fail(fault.condition, fault.description)
        except LocalProtocolError as exc:
            log.exception("[%s] engine failure answering the peer", self._label)
            self._fail(Condition.INTERNAL_ERROR, f"internal error: {exc}")
        except AmqpError as exc:
            self._fail(exc.condition, exc.description)

    def _link_failed(self, fault: LinkFault) -> None:
        link = fault.link
        if link.state not in (LinkState.ATTACHED, LinkState.ATTACH_SENT, LinkState.ATTACH_RCVD):
            return
        error = error_of(fault.condition, fault.description)
        link.session._send_detach(link, error, True)
        link._detach_reported = True
        self.output.events.append(LinkDetached(link, error, True, False))

    # --- protocol headers and SASL ----------------------------------------------------------

    def _write_protocol_header(self, header: bytes) -> None:
        self._pre += header
        if self.output.tracer is not None:
            self.output.tracer.header("->", header)

    def _send_amqp_header(self) -> None:
        self.state = step(
            CONNECTION_TRANSITIONS, self.state, Input.SEND_HEADER, what="connection", remote=False
        )
        self._write_protocol_header(AMQP_HEADER)
        self._header_sent = True
        self._frame_type = FRAME_TYPE_AMQP

    # --- open and close ---------------------------------------------------------------------

    def _open_frame(self) -> Open:
        config = self.config
        idle = config.idle_timeout
        return Open(
            container_id=config.container_id,
            hostname=config.hostname,
            max_frame_size=config.max_frame_size,
            channel_max=config.channel_max,
            idle_time_out=round(idle * 1000) if idle else None,
            outgoing_locales=_symbols(config.outgoing_locales),
            incoming_locales=_symbols(config.incoming_locales),
            offered_capabilities=_symbols(config.offered_capabilities),
            desired_capabilities=_symbols(config.desired_capabilities),
            properties=dict(config.properties) if config.properties else None,
        )

    def _write_open(self) -> None:
        new_state = step(
            CONNECTION_TRANSITIONS, self.state, Input.SEND_OPEN, what="connection", remote=False
        )
        frame = self._open_frame()
        data = bytearray(HEADER_PLACEHOLDER)
        encode_into(data, frame)
        pack_header(data, 0, len(data), 2, FRAME_TYPE_AMQP, 0)
        # Open goes first; frames written before it (answers to a pipelined begin) follow it.
        self.output.frames[0:0] = data
        self.state = new_state
        self._open_sent = True
        if self.output.tracer is not None:
            self.output.tracer.frame("->", 0, frame)

    def _ensure_open(self) -> None:
        if not self._open_sent:
            self._open_requested = True
            self._write_open()

    def _on_open(self, channel: int, frame: Open) -> None:
        self.state = step(
            CONNECTION_TRANSITIONS, self.state, Input.RECV_OPEN, what="connection", remote=True
        )
        self.remote_open = frame
        if frame.max_frame_size < MIN_MAX_FRAME_SIZE:
            raise RemoteProtocolError(
                f"the peer's max-frame-size {frame.max_frame_size} is below the minimum "
                f"{MIN_MAX_FRAME_SIZE}",
                condition=Condition.FRAME_SIZE_TOO_SMALL,
            )
        self.remote_max_frame_size = self.output.max_frame_size = frame.max_frame_size
        self.remote_channel_max = frame.channel_max
        idle_ms = frame.idle_time_out
        self.remote_idle_timeout = idle_ms / 1000 if idle_ms else None
        self.output.events.append(
            ConnectionOpened(
                container_id=frame.container_id,
                hostname=frame.hostname,
                max_frame_size=frame.max_frame_size,
                channel_max=frame.channel_max,
                idle_timeout=self.remote_idle_timeout,
                outgoing_locales=frame.outgoing_locales,
                incoming_locales=frame.incoming_locales,
                offered_capabilities=frame.offered_capabilities,
                desired_capabilities=frame.desired_capabilities,
                properties=frame.properties,
            )
        )

    def _on_close(self, channel: int, frame: Close) -> None:
        if self.state is _C.OPEN_RCVD:
            # The peer closes before we opened: we still owe it an open before our close.
            self._ensure_open()
        state = step(
            CONNECTION_TRANSITIONS, self.state, Input.RECV_CLOSE, what="connection", remote=True
        )
        self.state = state
        if state is _C.CLOSE_RCVD:
            self.output.write_frame(0, Close())
            self._close_sent = True
            self.state = step(
                CONNECTION_TRANSITIONS, state, Input.SEND_CLOSE, what="connection", remote=False
            )
            self._finish(frame.error, by_peer=True)
        else:
            self._finish(frame.error, by_peer=False)

    def _fail(self, condition: str, description: str) -> None:
        """Close the connection because the peer broke the protocol (or we did)."""
        if self._over:
            return
        log.debug("[%s] closing: %s: %s", self._label, condition, description)
        error = error_of(condition, description)
        if self._header_sent and not self._close_sent:
            try:
                self._ensure_open()
                self.output.write_frame(0, Close(error=error))
                self._close_sent = True
            except AmqpError:
                log.exception("[%s] could not write the error close", self._label)
        elif not self._header_sent:
            # Still in SASL (a bad frame, say): there is no close, but there is an outcome.
            internal = condition == Condition.INTERNAL_ERROR
            self._handshake.refuse_sasl(SaslCode.SYS if internal else SaslCode.SYS_PERM)
        self.state = CONNECTION_TRANSITIONS.get((self.state, Input.FAIL), _C.END)
        self._finish(error, by_peer=False)

    def _finish(self, error: Error | None, by_peer: bool) -> None:
        self._over = True
        self._sessions_over()
        if not self._closed_reported:
            self._closed_reported = True
            self.output.events.append(ConnectionClosed(error, by_peer))

    def _sessions_over(self) -> None:
        """Once we sent close, no session or link may write again: end them all, silently."""
        for session in self._sessions.values():
            session._links_over()
            session.state = SessionState.ENDED
        self.output.dirty.clear()

    # --- sessions ---------------------------------------------------------------------------

    def _allocate_channel(self) -> int:
        if self._free_channels:
            return heapq.heappop(self._free_channels)
        channel = self._channel_counter
        if channel > self.remote_channel_max:
            raise LocalProtocolError(
                f"no free channel: the peer's channel-max is {self.remote_channel_max}"
            )
        self._channel_counter += 1
        return channel

    def _session_over(self, session: Session) -> None:
        if self._sessions.get(session.channel) is session:
            del self._sessions[session.channel]
            heapq.heappush(self._free_channels, session.channel)
        remote = session.remote_channel
        if remote is not None and self._remote_channels.get(remote) is session:
            del self._remote_channels[remote]

    def _on_begin(self, channel: int, frame: Begin) -> None:
        self._check_opened(frame)
        if channel > self.config.channel_max:
            raise RemoteProtocolError(
                f"begin on channel {channel}, above our channel-max {self.config.channel_max}",
                condition=Condition.FRAMING_ERROR,
            )
        if channel in self._remote_channels:
            raise RemoteProtocolError(
                f"begin on channel {channel}, which already has a session",
                condition=Condition.ILLEGAL_STATE,
            )
        if frame.remote_channel is not None:
            session = self._sessions.get(frame.remote_channel)
            if session is None or session.remote_channel is not None:
                raise RemoteProtocolError(
                    f"begin answers our channel {frame.remote_channel}, where we began no session",
                    condition=Condition.NOT_ALLOWED,
                )
            self._remote_channels[channel] = session
            session._on_begin(channel, frame)
            return
        try:
            ours = self._allocate_channel()
        except LocalProtocolError:
            raise RemoteProtocolError(
                "the peer began more sessions than its own channel-max lets us answer",
                condition=Condition.RESOURCE_LIMIT_EXCEEDED,
            ) from None
        config = self.config
        session = Session(
            self,
            ours,
            incoming_window=config.incoming_window,
            outgoing_window=config.outgoing_window,
            handle_max=config.handle_max,
            remote_initiated=True,
        )
        self._sessions[ours] = session
        self._remote_channels[channel] = session
        session._on_begin(channel, frame)
        session._send_begin()

    def _session_frame(self, channel: int, frame: Any) -> None:
        self._check_opened(frame)
        session = self._remote_channels.get(channel)
        if session is None:
            self._no_session(channel, frame)
            return
        kind = type(frame)
        if kind is _FLOW:
            session._on_flow(frame)
        elif kind is _DISPOSITION:
            session._on_disposition(frame)
        elif kind is Attach:
            session._on_attach(frame)
        elif kind is Detach:
            session._on_detach(frame)
        else:
            session._on_end(frame)

    def _no_session(self, channel: int, frame: Any) -> None:
        self._check_opened(frame)
        raise RemoteProtocolError(
            f"{type(frame).__name__.lower()} on channel {channel}, which has no session",
            condition=Condition.NOT_ALLOWED,
        )

    def _check_opened(self, frame: Any) -> None:
        """Refuse ``frame`` (a performative) before the peer's open; its name is only
        worked out for the error."""
        if self.remote_open is None:
            raise RemoteProtocolError(
                f"{type(frame).__name__.lower()} before the peer's open",
                condition=Condition.ILLEGAL_STATE,
            )

    # --- writing ----------------------------------------------------------------------------

    def _flush_sessions(self) -> None:
        output = self.output
        dirty = output.dirty
        output.dirty = []
        for session in dirty:
            session._flush()

    def __repr__(self) -> str:
        role = "server" if self.server else "client"
        return f"<Connection {self._label} {role} {self.state.value}>"


def _symbols(values: Any) -> tuple[Symbol, ...] | None:
    return tuple(Symbol(v) for v in values) if values else None
