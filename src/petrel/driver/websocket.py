"""AMQP over WebSockets (the OASIS AMQP WebSocket Binding, WSB 1.0).

The binding is thin: the WebSocket is opened with the subprotocol ``amqp``,
and from then on the bytes of the AMQP connection (protocol headers, SASL
and AMQP frames) travel in *binary* WebSocket messages, with no relation
between frame and message boundaries.  One WebSocket carries one AMQP
connection; closing either closes both.

So the AMQP side needs nothing new: :class:`WebSocketTransport` is an
``asyncio.Transport`` over one aiohttp WebSocket, and the same
:class:`~petrel.driver.protocol.AmqpProtocol` that drives a TCP connection
drives it (its engine, limits, SASL and idle timeout unchanged).  The server
side (``petrel.server.http``) makes one per accepted upgrade; the client side
is :func:`connect_websocket`, which :func:`petrel.driver.connect` calls for
``ws://`` and ``wss://`` URLs.

Flow control works as on a socket: ``write()`` queues, a writer task sends
the queue message by message, and past :data:`HIGH_WATER` queued bytes the
protocol is told to pause writing (until below :data:`LOW_WATER`).
``pause_reading()`` stops taking messages from the WebSocket, so TCP's own
window pushes back on the peer.  A text message is a breach of the binding:
the WebSocket is closed with code 1003 (unsupported data) and a reason that
says so.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import WSMsgType

from ..engine import Connection, ConnectionConfig
from .protocol import AmqpProtocol, EventHandler
from .tls import TlsConfig, client_context
from .url import Address

__all__ = [
    "HIGH_WATER",
    "LOW_WATER",
    "SUBPROTOCOL",
    "TEXT_REFUSED",
    "WebSocketTransport",
    "connect_websocket",
]

log = logging.getLogger("petrel.driver")

#: The WebSocket subprotocol of the AMQP WebSocket Binding.
SUBPROTOCOL = "amqp"
#: Queued outgoing bytes past which the protocol pauses writing, and below which it resumes.
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
#: The close reason sent to a peer that sends a text message.
TEXT_REFUSED = "AMQP over WebSocket is carried in binary messages; a text message was received"
#: WebSocket close codes (RFC 6455, 7.4.1).
CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED_DATA = 1003


class WebSocketTransport(asyncio.Transport):
    """An asyncio transport whose bytes travel in binary messages of ``ws`` (see the
    module docstring).

    ``ws`` is an aiohttp WebSocket, server side (``web.WebSocketResponse``) or
    client side (``ClientWebSocketResponse``), already open.  ``extra`` answers
    :meth:`get_extra_info` (``peername``, ``sockname``, ``ssl_object``, ``socket``,
    ...).  :meth:`run` feeds ``protocol`` until the WebSocket is over; then
    ``protocol.connection_lost`` is called once and ``on_done`` (if any) awaited.
    """

    def __init__(
        self,
        ws: Any,
        protocol: asyncio.Protocol,
        *,
        extra: dict[str, Any] | None = None,
        on_done: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        super().__init__(extra)
        self._ws = ws
        self._protocol = protocol
        self._on_done = on_done
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._wakeup = asyncio.Event()
        self._readable = asyncio.Event()
        self._readable.set()
        self._closing = False
        self._write_paused = False
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._made = False
        #: Why the WebSocket ended, when it was not a clean close.
        self.error: Exception | None = None

    # --- running --------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Hand the transport to the protocol now and move bytes in a task (:meth:`run`),
        which is returned."""
        self._connection_made()
        return asyncio.get_running_loop().create_task(self.run())

    def _connection_made(self) -> None:
        if not self._made:
            self._made = True
            self._protocol.connection_made(self)

    async def run(self) -> None:
        """Move bytes both ways until the WebSocket is over (see the class docstring)."""
        loop = asyncio.get_running_loop()
        self._writer = loop.create_task(self._write_loop())
        self._reader = loop.create_task(self._read_loop())
        self._connection_made()
        try:
            await asyncio.wait({self._reader}, return_when=asyncio.ALL_COMPLETED)
        except asyncio.CancelledError:
            self.abort()
            raise
        finally:
            self._closing = True
            self._wakeup.set()
            # Let the writer send what the protocol queued while it closed (its close frame).
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({self._writer}, timeout=5.0)
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
            if not self._ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._ws.close(), 5.0)
            self._protocol.connection_lost(self.error)
            if self._on_done is not None:
                with contextlib.suppress(Exception):
                    await self._on_done()

    async def _read_loop(self) -> None:
        ws = self._ws
        protocol = self._protocol
        while not self._closing:
            await self._readable.wait()
            try:
                message = await ws.receive()
            except Exception as exc:  # a broken connection under the WebSocket
                self.error = exc
                return
            kind = message.type
            if kind == WSMsgType.BINARY:
                protocol.data_received(message.data)
            elif kind == WSMsgType.TEXT:
                log.info("closing a WebSocket: %s", TEXT_REFUSED)
                self.error = ConnectionError(TEXT_REFUSED)
                self._closing = True
                with contextlib.suppress(Exception):
                    await ws.close(code=CLOSE_UNSUPPORTED_DATA, message=TEXT_REFUSED.encode())
                return
            elif kind == WSMsgType.ERROR:
                error = ws.exception()
                self.error = error if isinstance(error, Exception) else ConnectionError(str(error))
                return
            elif kind in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                code = ws.close_code
                if code not in (None, CLOSE_NORMAL):
                    reason = message.extra if isinstance(message.extra, str) else ""
                    self.error = ConnectionError(
                        f"the peer closed the WebSocket with code {code}"
                        + (f": {reason}" if reason else "")
                    )
                else:
                    protocol.eof_received()
                return
            # PING and PONG are answered by aiohttp; nothing else arrives on an open socket.

    async def _write_loop(self) -> None:
        ws = self._ws
        queue = self._queue
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while queue:
                data = queue.popleft()
                try:
                    await ws.send_bytes(data)
                except Exception as exc:
                    self.error = self.error or exc
                    queue.clear()
                    self._queued = 0
                    self._closing = True
                    if self._reader is not None:
                        self._reader.cancel()
                    return
                self._queued -= len(data)
                if self._write_paused and self._queued <= LOW_WATER:
                    self._write_paused = False
                    self._protocol.resume_writing()
            if self._closing:
                with contextlib.suppress(Exception):
                    await ws.close()
                return

    # --- asyncio.Transport ----------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        chunk = bytes(data)
        self._queue.append(chunk)
        self._queued += len(chunk)
        self._wakeup.set()
        if not self._write_paused and self._queued > HIGH_WATER:
            self._write_paused = True
            self._protocol.pause_writing()

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Send what is queued, then close the WebSocket."""
        if self._closing:
            return
        self._closing = True
        self._wakeup.set()
        self._readable.set()

    def abort(self) -> None:
        """Close the WebSocket now; what is queued is lost."""
        self._queue.clear()
        self._queued = 0
        self.close()
        if self._reader is not None:
            self._reader.cancel()

    def pause_reading(self) -> None:
        self._readable.clear()

    def resume_reading(self) -> None:
        self._readable.set()

    def is_reading(self) -> bool:
        return self._readable.is_set() and not self._closing

    def get_write_buffer_size(self) -> int:
        return self._queued

    def can_write_eof(self) -> bool:
        return False

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol


def websocket_url(address: Address) -> str:
    """The ``http(s)://`` URL aiohttp dials for ``address`` (``ws://`` or ``wss://``)."""
    host = f"[{address.host}]" if ":" in address.host else address.host or "localhost"
    return f"{'https' if address.tls else 'http'}://{host}:{address.port}{address.path}"


async def connect_websocket(
    address: Address,
    config: ConnectionConfig,
    handler: EventHandler | None = None,
    *,
    tls: TlsConfig | None = None,
    wait_open: bool = True,
) -> AmqpProtocol:
    """Open a WebSocket to ``address`` (``ws://`` or ``wss://``) with the subprotocol
    ``amqp`` and run an AMQP connection over it; otherwise as
    :func:`petrel.driver.connect` (which calls this, and bounds it in time).

    Raises ``ConnectionError`` (an ``OSError``) naming the URL when the server
    refuses the upgrade or does not speak the ``amqp`` subprotocol.
    """
    loop = asyncio.get_running_loop()
    ssl_context = client_context(tls or TlsConfig()) if address.tls else None
    session = aiohttp.ClientSession()
    try:
        ws = await session.ws_connect(
            websocket_url(address),
            protocols=(SUBPROTOCOL,),
            ssl=ssl_context if ssl_context is not None else True,
            autoping=True,
            max_msg_size=0,
        )
    except aiohttp.WSServerHandshakeError as exc:
        await session.close()
        raise ConnectionError(
            f"{address}: the server refused the WebSocket ({exc.status} {exc.message})"
        ) from None
    except aiohttp.ClientConnectorError as exc:
        await session.close()
        reason = exc.strerror or str(exc)
        raise ConnectionError(exc.errno, f"cannot connect to {address}: {reason}") from exc
    except BaseException:
        await session.close()
        raise
    if ws.protocol != SUBPROTOCOL:
        await ws.close()
        await session.close()
        raise ConnectionError(
            f"{address}: the server does not speak AMQP over WebSocket "
            f"(subprotocol {ws.protocol!r}, not {SUBPROTOCOL!r})"
        )
    engine = Connection(config, server=False)
    protocol = AmqpProtocol(engine, handler, loop=loop)
    extra = {
        name: ws.get_extra_info(name)
        for name in ("peername", "sockname", "ssl_object", "sslcontext", "socket")
    }
    transport = WebSocketTransport(ws, protocol, extra=extra, on_done=session.close)
    task = transport.start()
    _tasks.add(task)  # referenced while it runs; it ends with the connection
    task.add_done_callback(_tasks.discard)
    engine.open()
    protocol.process()
    if wait_open:
        try:
            await protocol.opened
        except BaseException:
            protocol.abort_if_open()
            raise
    return protocol


#: The running client transports (a task must be referenced while it runs).
_tasks: set[asyncio.Task[None]] = set()
