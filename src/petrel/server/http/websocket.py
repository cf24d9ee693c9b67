"""AMQP over WebSockets on the HTTP listener: the upgrade, then the same connection
handling as TCP.

A request that asks for a WebSocket with the subprotocol ``amqp`` is upgraded;
the server makes a connection for it exactly as for an accepted socket
(:meth:`~petrel.server.listening.Listeners.accept`: the same engine
configuration, connection limit, SASL, open deadline and handlers), and a
:class:`~petrel.driver.websocket.WebSocketTransport` carries its bytes.  A
WebSocket request without ``amqp`` among its subprotocols is refused with
``400`` and a body that says what is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from ...driver import AmqpProtocol
from ...driver.websocket import SUBPROTOCOL, WebSocketTransport
from ..config import ServerSettings

__all__ = ["MISSING_SUBPROTOCOL", "serve_amqp_websocket"]

log = logging.getLogger("petrel.server.http")

MISSING_SUBPROTOCOL = (
    "AMQP over WebSocket needs the WebSocket subprotocol 'amqp' "
    "(Sec-WebSocket-Protocol: amqp), as the AMQP WebSocket Binding says\n"
)


async def serve_amqp_websocket(
    request: web.Request,
    make_protocol: Callable[[], AmqpProtocol],
    sockets: set[web.WebSocketResponse],
    settings: ServerSettings,
) -> web.StreamResponse:
    """Upgrade ``request`` and run one AMQP connection over it until either side ends."""
    limits = settings.limits
    ws = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,),
        autoping=True,
        # One message may hold any number of frames; a whole largest message is the bound.
        max_msg_size=limits.max_message_size + limits.max_frame_size,
    )
    ready = ws.can_prepare(request)
    if not ready.ok:
        return web.Response(status=400, text="not a valid WebSocket upgrade request\n")
    if ready.protocol != SUBPROTOCOL:
        offered = request.headers.get("Sec-WebSocket-Protocol")
        log.info(
            "refused a WebSocket from %s: subprotocols %s, no %r",
            request.remote,
            offered or "none",
            SUBPROTOCOL,
        )
        return web.Response(status=400, text=MISSING_SUBPROTOCOL)
    await ws.prepare(request)
    transport = request.transport
    extra = {
        name: transport.get_extra_info(name) if transport is not None else None
        for name in ("peername", "sockname", "ssl_object", "sslcontext", "socket")
    }
    protocol = make_protocol()
    sockets.add(ws)
    try:
        await WebSocketTransport(ws, protocol, extra=extra).run()
    finally:
        sockets.discard(ws)
    return ws
