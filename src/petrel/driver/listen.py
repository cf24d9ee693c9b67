"""Opening AMQP connections and listening for them on asyncio."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterable
from typing import Any

from ..engine import Connection, ConnectionConfig
from .protocol import AmqpProtocol, EventHandler
from .tls import TlsConfig, client_context, server_context
from .url import Address, parse_url

__all__ = ["Listener", "connect", "listen"]

log = logging.getLogger("petrel.driver")


async def connect(
    url: str | Address,
    config: ConnectionConfig,
    handler: EventHandler | None = None,
    *,
    tls: TlsConfig | None = None,
    timeout: float | None = 30.0,
    wait_open: bool = True,
) -> AmqpProtocol:
    """Connect to ``url``, send our protocol headers and open, and (by default) wait for the
    peer's open.

    ``amqps://`` URLs use TLS with ``tls`` (server certificate and host name
    verified unless ``tls.verify`` is false; SNI is the URL's host).  Raises
    ``OSError`` when the socket cannot be opened, ``TimeoutError`` past
    ``timeout``, and an :class:`~petrel.errors.AmqpError` when the peer
    refuses the connection (SASL failure, close during open).
    """
    address = parse_url(url) if isinstance(url, str) else url
    loop = asyncio.get_running_loop()
    ssl_context = client_context(tls) if (address.tls or tls is not None) else None
    engine = Connection(config, server=False)

    def factory() -> AmqpProtocol:
        return AmqpProtocol(engine, handler, loop=loop)

    async def establish() -> AmqpProtocol:
        _, protocol = await loop.create_connection(
            factory,
            address.host or "localhost",
            address.port,
            ssl=ssl_context,
            server_hostname=(address.host or "localhost") if ssl_context else None,
        )
        _set_nodelay(protocol)
        engine.open()
        protocol.process()
        if wait_open:
            try:
                await protocol.opened
            except BaseException:
                # Timed out, cancelled or refused: do not leave the socket open.
                protocol.abort_if_open()
                raise
        return protocol

    try:
        return await asyncio.wait_for(establish(), timeout)
    except TimeoutError:
        raise TimeoutError(f"no AMQP open from {address} within {timeout} s") from None


def _set_nodelay(protocol: AmqpProtocol) -> None:
    transport = protocol.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Listener:
    """Accepts AMQP connections on one or more addresses.

    Each accepted socket gets a fresh engine (``config_factory()``) in the
    server role and a handler from ``handler_factory(protocol)``.
    """

    def __init__(
        self,
        urls: Iterable[str | Address],
        config_factory: Callable[[], ConnectionConfig],
        handler_factory: Callable[[AmqpProtocol], EventHandler],
        *,
        tls: TlsConfig | None = None,
        backlog: int = 1024,
    ) -> None:
        self.addresses = [parse_url(u) if isinstance(u, str) else u for u in urls]
        self.config_factory = config_factory
        self.handler_factory = handler_factory
        self.tls = tls
        self.backlog = backlog
        self.servers: list[asyncio.Server] = []
        #: The live connections accepted by this listener.
        self.connections: set[AmqpProtocol] = set()

    def _make_protocol(self) -> AmqpProtocol:
        engine = Connection(self.config_factory(), server=True)
        protocol = AmqpProtocol(engine)
        protocol.handler = self.handler_factory(protocol)
        self.connections.add(protocol)
        protocol.closed.add_done_callback(lambda _: self.connections.discard(protocol))
        return protocol

    async def start(self) -> None:
        """Bind every address; raises ``OSError`` naming the address that failed."""
        loop = asyncio.get_running_loop()
        for address in self.addresses:
            ssl_context = None
            if address.tls:
                if self.tls is None:
                    raise ValueError(f"{address} needs TLS settings (a certificate and key)")
                ssl_context = server_context(self.tls)
            try:
                server = await loop.create_server(
                    self._make_protocol,
                    address.host or None,
                    address.port,
                    ssl=ssl_context,
                    backlog=self.backlog,
                    reuse_address=True,
                )
            except OSError as exc:
                await self.close()
                raise OSError(exc.errno, f"cannot listen on {address}: {exc.strerror}") from exc
            self.servers.append(server)
            for sock in server.sockets:
                log.info("listening on %s://%s", address.scheme, _format_sockname(sock))

    @property
    def bound(self) -> list[tuple[str, int]]:
        """The ``(host, port)`` pairs actually bound (useful with port 0)."""
        result = []
        for server in self.servers:
            for sock in server.sockets:
                name = sock.getsockname()
                result.append((name[0], name[1]))
        return result

    async def close(self) -> None:
        """Stop accepting new connections (live ones are left alone)."""
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()
        self.servers.clear()

    async def __aenter__(self) -> Listener:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()
        for protocol in list(self.connections):
            protocol.abort_if_open()


def _format_sockname(sock: socket.socket) -> str:
    name = sock.getsockname()
    host = f"[{name[0]}]" if ":" in name[0] else name[0]
    return f"{host}:{name[1]}"


async def listen(
    urls: str | Address | Iterable[str | Address],
    config_factory: Callable[[], ConnectionConfig],
    handler_factory: Callable[[AmqpProtocol], EventHandler],
    *,
    tls: TlsConfig | None = None,
) -> Listener:
    """Start a :class:`Listener` on one URL or several."""
    if isinstance(urls, (str, Address)):
        urls = [urls]
    listener = Listener(urls, config_factory, handler_factory, tls=tls)
    await listener.start()
    return listener
