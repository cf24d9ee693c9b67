"""AMQP URLs: ``amqp://user:password@host:port/vhost`` and ``amqps://`` for TLS."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["AMQPS_PORT", "AMQP_PORT", "Address", "parse_url"]

AMQP_PORT = 5672
AMQPS_PORT = 5671


@dataclass(frozen=True, slots=True)
class Address:
    """Where to connect or listen, parsed from an AMQP URL."""

    scheme: str
    """``amqp`` (plain TCP) or ``amqps`` (TLS)."""
    host: str
    """Host name or IP address; ``""`` for a listener means every interface."""
    port: int
    user: str | None = None
    """User name from the URL (percent-decoded), for SASL PLAIN."""
    password: str | None = None
    vhost: str | None = None
    """The path without its leading slash: sent as the open's ``hostname`` when given."""

    @property
    def tls(self) -> bool:
        """Whether this address wants TLS."""
        return self.scheme == "amqps"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_url(url: str) -> Address:
    """Parse ``amqp[s]://[user[:password]@]host[:port][/vhost]``.

    A bare ``host[:port]`` is taken as ``amqp://``.  Raises ``ValueError`` with
    a message naming the problem.
    """
    if "://" not in url:
        url = "amqp://" + url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("amqp", "amqps"):
        raise ValueError(f"unsupported URL scheme {parts.scheme!r} in {url!r} (use amqp or amqps)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in URL {url!r}") from None
    if port is None:
        port = AMQPS_PORT if scheme == "amqps" else AMQP_PORT
    host = parts.hostname or ""
    vhost = parts.path.lstrip("/") or None
    return Address(
        scheme=scheme,
        host=host,
        port=port,
        user=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        vhost=unquote(vhost) if vhost else None,
    )
