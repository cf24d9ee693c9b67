"""asyncio glue: sockets, TLS, listeners and timers around the sans-IO engine.

This is the only layer that touches sockets and the event loop; the client,
broker and router all sit on it.
"""

from __future__ import annotations

from .connector import Backoff, Connector, GaveUp
from .listen import Listener, connect, listen
from .loop import run, uvloop_available
from .protocol import AmqpProtocol, EventHandler
from .tls import ServerTls, TlsConfig, TlsPeer, client_context, server_context
from .url import AMQP_PORT, AMQPS_PORT, Address, parse_url

__all__ = [
    "AMQPS_PORT",
    "AMQP_PORT",
    "Address",
    "AmqpProtocol",
    "Backoff",
    "Connector",
    "EventHandler",
    "GaveUp",
    "Listener",
    "ServerTls",
    "TlsConfig",
    "TlsPeer",
    "client_context",
    "connect",
    "listen",
    "parse_url",
    "run",
    "server_context",
    "uvloop_available",
]
