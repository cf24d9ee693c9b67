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
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any, Protocol, cast

from ..engine import Connection
from ..engine import events as ev
from ..errors import AmqpError

__all__ = ["AmqpProtocol", "EventHandler"]

log = logging.getLogger("petrel.driver")

_ids = itertools.count(1)


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
        self._writable = asyncio.Event()
        self._writable.set()
        #: Called when the socket's write buffer drains below its low-water mark again
        #: (after the transport paused writing), so producers of data can resume.
        self.on_writable: Callable[[], None] | None = None
        self._read_pauses = 0
        self._lost = False
        self.engine.handle_timer(self.loop.time())

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.peername = self.transport.get_extra_info("peername")
        self.log.debug("connected to %s", self.peername)
        self.transmit()

    def data_received(self, data: bytes) -> None:
        self.engine.receive_data(data)
        self.process()

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
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._writable.set()
        self._resolve_closed(None)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()
        callback = self.on_writable
        if callback is not None:
            callback()

    # --- the flush point ----------------------------------------------------------------------

    def process(self) -> None:
        """Hand every pending engine event to the handler, then transmit."""
        if self._processing:
            return
        self._processing = True
        engine = self.engine
        try:
            while (event := engine.next_event()) is not None:
                self._dispatch(event)
        finally:
            self._processing = False
        self.transmit()

    def _dispatch(self, event: Any) -> None:
        if isinstance(event, ev.ConnectionOpened) and not self.opened.done():
            self.opened.set_result(None)
        elif isinstance(event, ev.ConnectionClosed):
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
        data = self.engine.data_to_send()
        if data:
            transport.write(data)
        self._arm_timer()
        if self.engine.finished and not transport.is_closing():
            transport.close()

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
        """Wait until the socket's write buffer has drained below its high-water mark."""
        await self._writable.wait()

    @property
    def writable(self) -> bool:
        """Whether the socket's write buffer is below its high-water mark."""
        return self._writable.is_set()

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
