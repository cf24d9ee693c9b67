"""One AMQP connection on an asyncio transport.

:class:`AmqpProtocol` is the thin adapter between a socket and the sans-IO
engine.  Bytes in go to ``engine.receive_data``; then every event the engine
produced is handed to the connection's handler, and finally ``transmit()``
writes everything the engine wants to send in one call and re-arms the
engine's timer.  That is the one flush point: whatever the handler or the
application did to the engine in between is written together.

Code above the driver (client, broker, router) changes the engine through its
objects and then calls :meth:`AmqpProtocol.flush`, which schedules one
``transmit()`` for the end of the current loop turn, so a burst of sends
becomes one socket write.

A peer that does not read is bounded here.  Producers of data (a broker's
consumers, a router's forwarding, a client's senders) ask :attr:`writable`
before each message: it turns false once the socket's write buffer is over
its high-water mark or the engine holds that much not yet written, and
``on_writable`` says when to go on.  Servers set two more limits on the
connections they accept: ``max_write_backlog`` (what the peer may still make
us queue, answering what it sends, while the buffer is full: past it we stop
reading it until it drains) and ``write_stall_timeout`` (how long the buffer
may stay full with nothing drained before the socket is dropped; also how long
a closed connection waits for the peer to take its last bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import Any, Final, Protocol, cast

from ..engine import Connection
from ..engine import events as ev
from ..errors import AmqpError

__all__ = ["AmqpProtocol", "EventHandler"]

log = logging.getLogger("petrel.driver")

_ids: Final = itertools.count(1)
#: asyncio's own default high-water mark (64 KiB), for transports that do not say theirs.
_DEFAULT_HIGH_WATER: Final = 64 * 1024
_MIN_HIGH_WATER: Final = 16 * 1024
#: The most of one read the engine is handed in one loop turn (see data_received).
READ_SLICE: Final = 32 * 1024
# The two events the protocol itself looks at, as C statics when compiled.
_OPENED: Final = ev.ConnectionOpened
_CLOSED: Final = ev.ConnectionClosed


class EventHandler(Protocol):
    """What the layer above the driver implements to hear about one connection."""

    def handle_event(self, protocol: AmqpProtocol, event: Any) -> None:
        """Called for every engine event, in order, inside the flush loop.

        It may call engine commands; what they produce is written when the
        loop ends.  It must not block, and an exception it raises closes the
        connection with ``amqp:internal-error``.
        """


class _PrefixAdapter(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['conn'] if self.extra else '?'}] {msg}", kwargs


class AmqpProtocol(asyncio.Protocol):
    """An asyncio protocol driving one engine :class:`~petrel.engine.Connection`."""

    def __init__(
        self,
        engine: Connection,
        handler: EventHandler | None = None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        name: str | None = None,
    ) -> None:
        self.engine = engine
        self.handler = handler
        self.loop = loop or asyncio.get_running_loop()
        self.name = name or f"conn-{next(_ids)}"
        self.log = _PrefixAdapter(log, {"conn": self.name})
        self.transport: asyncio.Transport | None = None
        self.peername: Any = None
        #: Resolved when the peer's open arrives; fails if the connection ends first.
        self.opened: asyncio.Future[None] = self.loop.create_future()
        #: Resolved with the closing error (or ``None``) once the connection is over.
        self.closed: asyncio.Future[AmqpError | None] = self.loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._processing = False
        # Whether the socket takes more: an event to wait on, and the same fact as a plain
        # flag to test per message (``Event.is_set`` is a Python call); both change only
        # in _set_writable.
        self._writable = asyncio.Event()
        self._can_write = False
        self._set_writable(True)
        #: Called when the socket's write buffer drains below its low-water mark again
        #: (after the transport paused writing), so producers of data can resume.
        self.on_writable: Callable[[], None] | None = None
        self._read_pauses = 0
        self._lost = False
        #: Seconds the peer may leave our output unread (the write buffer over its
        #: high-water mark, nothing drained) before the socket is dropped; ``None``: forever.
        self.write_stall_timeout: float | None = None
        #: Bytes the peer may make us queue while the write buffer is full; past them we
        #: stop reading it until the buffer drains.  ``None``: no limit.
        self.max_write_backlog: int | None = None
        #: Decides, once the socket is connected (``peername`` is known), whether to keep it:
        #: ``False`` drops it at once, before a byte is read or written.
        self.admit: Callable[[AmqpProtocol], bool] | None = None
        #: Told why a stalled peer is being cut (a server logs it, rate-limited); without
        #: it the driver logs a warning itself.
        self.on_stalled: Callable[[AmqpProtocol, str], None] | None = None
        self._high_water = _DEFAULT_HIGH_WATER
        self._written = 0  # bytes handed to the transport so far
        self._owe_writable = False  # writable said no for engine output: on_writable is owed
        self._stall_timer: asyncio.TimerHandle | None = None
        self._stall_drained = 0
        self._linger_timer: asyncio.TimerHandle | None = None
        self._linger_drained = 0
        self._backlog_base = 0
        self._backlog_paused = False
        #: What is left of a big read, taken a slice per loop turn.
        self._rest: memoryview | None = None
        self._slice_handle: asyncio.Handle | None = None
        self.engine.handle_timer(self.loop.time())

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.peername = self.transport.get_extra_info("peername")
        admit = self.admit
        if admit is not None and not admit(self):
            self.transport.abort()
            return
        with contextlib.suppress(AttributeError, NotImplementedError):
            # Not every transport has limits (a WebSocket's may not): keep the default then.
            self._high_water = max(self.transport.get_write_buffer_limits()[1], _MIN_HIGH_WATER)
        self.log.debug("connected to %s", self.peername)
        self.transmit()

    def data_received(self, data: bytes) -> None:
        if len(data) > READ_SLICE:
            # A big read is taken a slice per loop turn (reading paused meanwhile), so
            # one busy peer cannot keep the loop from every other connection.
            self._rest = memoryview(data)
            self.pause_reading()
            self._next_slice()
            return
        self.engine.receive_data(data)
        self.process()

    def _next_slice(self) -> None:
        self._slice_handle = None
        rest = self._rest
        if rest is None:
            return
        if self._lost:
            self._rest = None
            return
        if self._read_pauses > 1:
            return  # someone else stopped reading too: resume_reading goes on from here
        self._rest = rest[READ_SLICE:] if len(rest) > READ_SLICE else None
        self.engine.receive_data(rest[:READ_SLICE])
        self.process()
        if self._rest is not None:
            self._slice_handle = self.loop.call_soon(self._next_slice)
        else:
            self.resume_reading()

    def eof_received(self) -> bool | None:
        # The peer shut down its side; the engine decides whether that was clean.
        self.engine.connection_lost("the peer closed the socket")
        self.process()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        reason = str(exc) if exc else None
        self.log.debug("socket closed: %s", reason or "cleanly")
        self.engine.connection_lost(reason)
        self.process()
        self._cancel_timer()
        self._cancel_stall()
        self._cancel_linger()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._set_writable(True)
        self._resolve_closed(None)

    def _set_writable(self, writable: bool) -> None:
        self._can_write = writable
        if writable:
            self._writable.set()
        else:
            self._writable.clear()

    def pause_writing(self) -> None:
        self._set_writable(False)
        if self.transport is not None:
            self._backlog_base = self.transport.get_write_buffer_size()
        if self.write_stall_timeout and self._stall_timer is None and not self._lost:
            self._stall_drained = self._drained()
            self._stall_timer = self.loop.call_later(self.write_stall_timeout, self._check_stall)

    def resume_writing(self) -> None:
        self._set_writable(True)
        self._owe_writable = False
        self._cancel_stall()
        if self._backlog_paused:
            self._backlog_paused = False
            self.resume_reading()
        callback = self.on_writable
        if callback is not None:
            callback()

    # --- a peer that does not read ------------------------------------------------------------

    def _drained(self) -> int:
        """Bytes the transport has passed on to the socket so far."""
        transport = self.transport
        return self._written - (transport.get_write_buffer_size() if transport else 0)

    def _check_backlog(self, transport: asyncio.Transport) -> None:
        """Writing is paused: stop reading a peer that made us queue too much since."""
        limit = self.max_write_backlog
        if limit is None or self._backlog_paused:
            return
        size = transport.get_write_buffer_size()
        self._backlog_base = min(self._backlog_base, size)
        if size - self._backlog_base > limit:
            self._backlog_paused = True
            self.log.info(
                "not reading from %s until it reads: %d bytes wait for it", self.peername, size
            )
            self.pause_reading()

    def _check_stall(self) -> None:
        self._stall_timer = None
        if self._can_write or self._lost or self.transport is None:
            return
        drained = self._drained()
        if drained != self._stall_drained:  # it reads, however slowly: give it another period
            self._stall_drained = drained
            self._stall_timer = self.loop.call_later(
                self.write_stall_timeout or 0.0, self._check_stall
            )
            return
        self._stalled(
            f"read nothing of the {self.transport.get_write_buffer_size()} bytes waiting "
            f"for it in {self.write_stall_timeout:g} s"
        )

    def _stalled(self, why: str) -> None:
        if self.on_stalled is not None:
            self.on_stalled(self, why)
        else:
            self.log.warning("dropping %s: it %s", self.peername, why)
        self.abort_if_open()

    def _cancel_stall(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _cancel_linger(self) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None

    # --- the flush point ----------------------------------------------------------------------

    def process(self) -> None:
        """Hand every pending engine event to the handler, then transmit."""
        if self._processing:
            return
        self._processing = True
        engine = self.engine
        try:
            while events := engine.take_events():
                for event in events:
                    self._dispatch(event)
        finally:
            self._processing = False
        self.transmit()

    def _dispatch(self, event: Any) -> None:
        kind = type(event)  # exact: a type test is cheaper than isinstance, per event
        if kind is _OPENED and not self.opened.done():
            self.opened.set_result(None)
        elif kind is _CLOSED:
            error = _as_exception(event.error)
            if not self.opened.done():
                self.opened.set_exception(
                    error or AmqpError("the connection closed before it opened")
                )
                # Nobody may be waiting on it; do not warn about an unretrieved exception.
                self.opened.exception()
            self._resolve_closed(error)
        handler = self.handler
        if handler is None:
            return
        try:
            handler.handle_event(self, event)
        except Exception as exc:
            self.log.exception("event handler failed on %r", event)
            if not self._lost:
                self.engine.close(AmqpError(f"internal error: {exc}"))

    def transmit(self) -> None:
        """Write everything the engine has to send in one call and re-arm its timer."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        transport = self.transport
        if transport is None or self._lost:
            return
        pieces = self.engine.pieces_to_send()
        if pieces:
            size = 0
            for piece in pieces:
                size += len(piece)
            self._written += size
            if len(pieces) == 1:
                transport.write(pieces[0])
            else:
                # uvloop writes the list with one writev: a big message's frames go out
                # as views of it, not joined into a copy first (other transports join).
                transport.writelines(pieces)
            if not self._can_write:
                self._check_backlog(transport)
        if self._owe_writable and self._can_write:
            # Writable said no for what the engine held; that is in the socket now.
            self._owe_writable = False
            callback = self.on_writable
            if callback is not None:
                self.loop.call_soon(callback)
        self._arm_timer()
        if self.engine.finished and not transport.is_closing():
            self._close_transport(transport)

    def hang_up(self) -> None:
        """Write what the engine has to send, then close the socket, whatever state the
        connection is in (the peer gets the bytes written so far, then end-of-file)."""
        self.transmit()
        transport = self.transport
        if transport is not None and not self._lost and not transport.is_closing():
            self._close_transport(transport)

    def _close_transport(self, transport: asyncio.Transport) -> None:
        transport.close()
        if self.write_stall_timeout and transport.get_write_buffer_size():
            # A peer that reads none of our last bytes must not keep the socket forever.
            self._linger_drained = self._drained()
            self._linger_timer = self.loop.call_later(self.write_stall_timeout, self._check_closing)

    def _check_closing(self) -> None:
        self._linger_timer = None
        if self._lost or self.transport is None:
            return
        drained = self._drained()
        if drained != self._linger_drained:  # still reading: another period
            self._linger_drained = drained
            self._linger_timer = self.loop.call_later(
                self.write_stall_timeout or 0.0, self._check_closing
            )
            return
        self._stalled(f"took none of our last bytes in {self.write_stall_timeout:g} s")

    def flush(self) -> None:
        """Schedule one :meth:`process` for the end of this loop turn (coalescing writes)."""
        if self._flush_handle is None and not self._processing and not self._lost:
            self._flush_handle = self.loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_handle = None
        self.process()

    # --- timers -------------------------------------------------------------------------------

    def _arm_timer(self) -> None:
        deadline = self.engine.get_timer()
        if deadline == self._timer_at:
            return
        self._cancel_timer()
        if deadline is not None:
            self._timer_at = deadline
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.engine.handle_timer(self.loop.time())
        self.process()

    # --- for the layers above -----------------------------------------------------------------

    async def wait_writable(self) -> None:
        """Wait until :attr:`writable` may be true again: the socket's write buffer has
        drained below its high-water mark and the engine's output has been written."""
        if self._can_write and self.engine.pending_output >= self._high_water:
            self.flush()
            await asyncio.sleep(0)  # the flush runs first; the transport may pause writing
        await self._writable.wait()

    @property
    def writable(self) -> bool:
        """Whether more may be produced now: the socket's write buffer is below its
        high-water mark, and so is what the engine holds for it.  When this says no,
        ``on_writable`` is called once it may say yes again."""
        if not self._can_write:
            return False
        if self.engine.pending_output >= self._high_water:
            self._owe_writable = True
            if not self._processing:
                self.flush()
            return False
        return True

    def pause_reading(self) -> None:
        """Stop reading the socket until a matching :meth:`resume_reading` (counted)."""
        self._read_pauses += 1
        if self._read_pauses == 1 and self.transport is not None and not self._lost:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Undo one :meth:`pause_reading`."""
        if self._read_pauses == 0:
            return
        self._read_pauses -= 1
        if self._read_pauses == 0 and self.transport is not None and not self._lost:
            self.transport.resume_reading()
        elif self._read_pauses == 1 and self._rest is not None and self._slice_handle is None:
            # Only the rest of a big read holds reading now: take its next slice.
            self._slice_handle = self.loop.call_soon(self._next_slice)

    async def close(self, error: AmqpError | None = None, timeout: float = 5.0) -> None:
        """Send close, wait for the peer's close (at most ``timeout`` s), then drop the socket."""
        if not self.closed.done():
            self.engine.close(error)
            self.process()
            try:
                await asyncio.wait_for(asyncio.shield(self.closed), timeout)
            except TimeoutError:
                self.log.warning(
                    "no close from the peer within %.1f s; dropping the socket", timeout
                )
        self.abort_if_open()

    def abort_if_open(self) -> None:
        """Drop the socket now if it is still open (unsent data is lost).  A connection
        that never got its socket (a TLS handshake that failed, which asyncio does not
        report to the protocol) is over now too."""
        if self.transport is None:
            self._cancel_timer()
            self._resolve_closed(None)
        elif not self.transport.is_closing():
            self.transport.abort()

    def _resolve_closed(self, error: AmqpError | None) -> None:
        if not self.closed.done():
            self.closed.set_result(error)
        if not self.opened.done():
            self.opened.set_exception(error or AmqpError("the connection closed before it opened"))
            self.opened.exception()

    def call_on_close(self, callback: Callable[[AmqpError | None], None]) -> None:
        """Run ``callback(error)`` once the connection is over."""
        self.closed.add_done_callback(lambda fut: callback(fut.result()))


def _as_exception(error: Any) -> AmqpError | None:
    """Turn the engine's close error (a spec ``Error`` or an AmqpError) into an exception."""
    if error is None or isinstance(error, AmqpError):
        return error
    condition = getattr(error, "condition", None)
    description = getattr(error, "description", None) or ""
    info = getattr(error, "info", None)
    return AmqpError(description, condition=str(condition) if condition else None, info=info)
