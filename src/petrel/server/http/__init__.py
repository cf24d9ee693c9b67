"""The HTTP side of a Petrel server: one listener (aiohttp) serving Prometheus metrics on
``/metrics`` and AMQP over WebSockets on ``/`` and ``/amqp``.

The broker and the router each make one :class:`HttpService` from a narrow
:class:`HttpView` of themselves (their management agent, their admission
policy, and a way to admit a connection), never from the server object.
docs/http.md describes the listener, its defaults, the metrics and the
WebSocket endpoint.
"""

from __future__ import annotations

from .metrics import PetrelCollector, Snapshot
from .service import (
    DEFAULT_HTTP_URL,
    HttpListener,
    HttpService,
    HttpView,
    apply_http_options,
    http_listeners,
)

__all__ = [
    "DEFAULT_HTTP_URL",
    "HttpListener",
    "HttpService",
    "HttpView",
    "PetrelCollector",
    "Snapshot",
    "apply_http_options",
    "http_listeners",
]
