"""AMQP URLs: ``amqp://user:password@host:port/vhost`` and ``amqps://`` for TLS;
``ws://user:password@host:port/path`` and ``wss://`` for AMQP over WebSockets."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["AMQPS_PORT", "AMQP_PORT", "WSS_PORT", "WS_PORT", "Address", "parse_url"]

AMQP_PORT = 5672
AMQPS_PORT = 5671
#: The WebSocket defaults (those of HTTP and HTTPS); Petrel's HTTP listener is on 8672.
WS_PORT = 80
WSS_PORT = 443
_DEFAULT_PORTS = {"amqp": AMQP_PORT, "amqps": AMQPS_PORT, "ws": WS_PORT, "wss": WSS_PORT}


@dataclass(frozen=True, slots=True)
class Address:
    """Where to connect or listen, parsed from an AMQP URL."""

    scheme: str
    """``amqp`` (plain TCP), ``amqps`` (TLS), ``ws`` (a WebSocket) or ``wss`` (one over
    TLS)."""
    host: str
    """Host name or IP address; ``""`` for a listener means every interface."""
    port: int
    user: str | None = None
    """User name from the URL (percent-decoded), for SASL PLAIN."""
    password: str | None = None
    vhost: str | None = None
    """``amqp[s]``: the path without its leading slash, sent as the open's ``hostname``
    when given.  ``ws[s]``: never (the path is the HTTP one)."""
    path: str = "/"
    """``ws[s]``: the HTTP path of the WebSocket (``/`` unless the URL says otherwise)."""

    @property
    def tls(self) -> bool:
        """Whether this address wants TLS."""
        return self.scheme in ("amqps", "wss")

    @property
    def websocket(self) -> bool:
        """Whether AMQP goes over a WebSocket here (the AMQP WebSocket Binding)."""
        return self.scheme in ("ws", "wss")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        path = self.path if self.websocket and self.path != "/" else ""
        return f"{self.scheme}://{host}:{self.port}{path}"


def parse_url(url: str) -> Address:
    """Parse ``amqp[s]://[user[:password]@]host[:port][/vhost]`` or
    ``ws[s]://[user[:password]@]host[:port][/path]``.

    A bare ``host[:port]`` is taken as ``amqp://``.  Raises ``ValueError`` with
    a message naming the problem.
    """
    if "://" not in url:
        url = "amqp://" + url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(
            f"unsupported URL scheme {parts.scheme!r} in {url!r} (use amqp, amqps, ws or wss)"
        )
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in URL {url!r}") from None
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    host = parts.hostname or ""
    websocket = scheme in ("ws", "wss")
    vhost = None if websocket else parts.path.lstrip("/") or None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "") if websocket else "/"
    return Address(
        scheme=scheme,
        host=host,
        port=port,
        user=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        vhost=unquote(vhost) if vhost else None,
        path=path,
    )
