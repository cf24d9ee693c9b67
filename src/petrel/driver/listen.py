"""Opening AMQP connections and listening for them on asyncio."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from ..engine import Connection, ConnectionConfig
from .protocol import AmqpProtocol, EventHandler
from .tls import ServerTls, TlsConfig, TlsPeer, client_context, describe_handshake_error
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

    ``ws://`` and ``wss://`` URLs carry the connection over a WebSocket
    (:mod:`petrel.driver.websocket`).  ``amqps://`` and ``wss://`` URLs use TLS
    with ``tls`` (server certificate and host name
    verified unless ``tls.verify`` is false; SNI is the URL's host).  Raises
    ``OSError`` when the socket cannot be opened, ``TimeoutError`` past
    ``timeout``, and an :class:`~petrel.errors.AmqpError` when the peer
    refuses the connection (SASL failure, close during open).
    """
    address = parse_url(url) if isinstance(url, str) else url
    if address.websocket:
        # ws:// and wss://: the same connection over a WebSocket (see driver/websocket.py).
        from .websocket import connect_websocket

        try:
            return await asyncio.wait_for(
                connect_websocket(address, config, handler, tls=tls, wait_open=wait_open), timeout
            )
        except TimeoutError:
            raise TimeoutError(f"no AMQP open from {address} within {timeout} s") from None
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

    Each accepted socket gets a fresh engine in the server role, configured by
    ``config_factory()`` (or, on a TLS address, ``peer_config_factory(peer)`` when
    given: ``peer`` is the :class:`~petrel.driver.tls.TlsPeer` the handshake
    produced), and a handler from ``handler_factory(protocol)``.

    On ``amqps://`` addresses the listener accepts sockets itself and runs each
    TLS handshake before it makes the connection's protocol: a failed handshake
    is logged (one line saying why: an untrusted certificate, plain AMQP, a TLS
    version below 1.2) and leaves nothing behind; one longer than
    ``handshake_timeout`` seconds is dropped, and so is a socket that finds
    ``max_handshakes`` others still in theirs; and each uses the context in use
    when it starts, so :meth:`reload_tls` changes the certificate for new
    connections only.  (asyncio's own TLS servers report no failed handshake
    and fix their context when they start.)  ``on_handshake_failed(peer, why)``
    hears of each failure (a server rate-limits its log lines); without it the
    driver logs a warning.
    """

    def __init__(
        self,
        urls: Iterable[str | Address],
        config_factory: Callable[[], ConnectionConfig],
        handler_factory: Callable[[AmqpProtocol], EventHandler],
        *,
        tls: TlsConfig | None = None,
        backlog: int = 1024,
        peer_config_factory: Callable[[TlsPeer], ConnectionConfig] | None = None,
        handshake_timeout: float = 10.0,
        max_handshakes: int = 1000,
        on_handshake_failed: Callable[[str, str], None] | None = None,
    ) -> None:
        self.addresses = [parse_url(u) if isinstance(u, str) else u for u in urls]
        self.config_factory = config_factory
        self.peer_config_factory = peer_config_factory
        self.handler_factory = handler_factory
        self.tls = tls
        self.backlog = backlog
        self.handshake_timeout = handshake_timeout
        self.max_handshakes = max_handshakes
        self.on_handshake_failed = on_handshake_failed
        self.servers: list[asyncio.Server] = []
        #: The live connections accepted by this listener.
        self.connections: set[AmqpProtocol] = set()
        #: The listener's TLS context (once started, if an address is ``amqps://``).
        self.server_tls: ServerTls | None = None
        self._tls_sockets: list[socket.socket] = []
        self._tasks: set[asyncio.Task[None]] = set()
        """Accept loops and handshakes of the TLS addresses."""

    def _make_protocol(self, peer: TlsPeer | None = None) -> AmqpProtocol:
        if peer is not None and self.peer_config_factory is not None:
            config = self.peer_config_factory(peer)
        else:
            config = self.config_factory()
        engine = Connection(config, server=True)
        protocol = AmqpProtocol(engine)
        protocol.handler = self.handler_factory(protocol)
        self.connections.add(protocol)
        protocol.closed.add_done_callback(lambda _: self.connections.discard(protocol))
        return protocol

    async def start(self) -> None:
        """Bind every address; raises ``OSError`` naming the address (or the TLS file)
        that failed."""
        loop = asyncio.get_running_loop()
        for address in self.addresses:
            sockets: list[Any]
            if address.tls and self.server_tls is None:
                if self.tls is None:
                    await self.close()
                    raise ValueError(f"{address} needs TLS settings (a certificate and key)")
                try:  # raises OSError naming the file that is missing or broken
                    self.server_tls = ServerTls(self.tls, name=f"listener {address}")
                except BaseException:
                    await self.close()
                    raise
            try:
                if address.tls:
                    sockets = await _bind(address, self.backlog)
                    self._tls_sockets.extend(sockets)
                    for sock in sockets:
                        self._spawn(self._accept_tls(sock))
                else:
                    server = await loop.create_server(
                        self._make_protocol,
                        address.host or None,
                        address.port,
                        backlog=self.backlog,
                        reuse_address=True,
                    )
                    self.servers.append(server)
                    sockets = list(server.sockets)
            except OSError as exc:
                await self.close()
                raise OSError(exc.errno, f"cannot listen on {address}: {exc.strerror}") from exc
            except BaseException:
                await self.close()
                raise
            for sock in sockets:
                log.info("listening on %s://%s", address.scheme, _format_sockname(sock))

    def reload_tls(self) -> bool:
        """Read the certificate, key and CA files again; new connections get what they
        hold now.  False (and one line logged) if they are unusable: the previous
        ones stay in use.  True when there is nothing to reload (no TLS)."""
        if self.server_tls is None:
            return True
        return self.server_tls.reload()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept_tls(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, peer = await loop.sock_accept(sock)
            except OSError as exc:
                # Out of file descriptors, say: the listening socket is still good.
                log.error("accepting on %s failed: %s", _format_sockname(sock), exc)
                await asyncio.sleep(1.0)
                continue
            if len(self._tasks) > self.max_handshakes:  # the accept loops count too
                conn.close()
                self._handshake_failed(peer, f"over {self.max_handshakes} handshakes at once")
                continue
            self._spawn(self._handshake(conn, peer))

    async def _handshake(self, conn: socket.socket, peer: Any) -> None:
        assert self.server_tls is not None
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: _Handover(self),
                conn,
                ssl=self.server_tls.context,
                ssl_handshake_timeout=self.handshake_timeout,
            )
        except Exception as exc:
            self._handshake_failed(peer, describe_handshake_error(exc))

    def _handshake_failed(self, peer: Any, why: str) -> None:
        if self.on_handshake_failed is not None:
            self.on_handshake_failed(_format_peer(peer), why)
        else:
            log.warning("TLS handshake with %s failed: %s", _format_peer(peer), why)

    @property
    def bound(self) -> list[tuple[str, int]]:
        """The ``(host, port)`` pairs actually bound (useful with port 0)."""
        result = []
        for server in self.servers:
            for sock in server.sockets:
                name = sock.getsockname()
                result.append((name[0], name[1]))
        for raw in self._tls_sockets:
            name = raw.getsockname()
            result.append((name[0], name[1]))
        return result

    async def close(self) -> None:
        """Stop accepting new connections, and drop those still in their TLS handshake
        (live ones are left alone)."""
        for server in self.servers:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:  # the accept loops leave their sockets' readers before the sockets close
            await asyncio.wait(tasks)
        for sock in self._tls_sockets:
            sock.close()
        self._tls_sockets.clear()
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


async def _bind(address: Address, backlog: int) -> list[socket.socket]:
    """Listening sockets for ``address`` (every interface for an empty host), as
    ``loop.create_server`` would bind them."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(
        address.host or None, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    seen = set()
    try:
        for family, kind, proto, _, sockaddr in infos:
            if (family, sockaddr) in seen:
                continue
            seen.add((family, sockaddr))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _Handover(asyncio.Protocol):
    """The protocol of a TLS connection while its handshake runs.  When it is done (and
    before any byte of AMQP is read) it makes the connection's :class:`AmqpProtocol`,
    with what the handshake told about the client, and hands it the transport."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        protocol = self.listener._make_protocol(TlsPeer.of(ssl_object) if ssl_object else None)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)


def _format_peer(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])
        return f"{host}:{peer[1]}"
    return str(peer)


def _format_sockname(sock: Any) -> str:
    name = sock.getsockname()
    host = f"[{name[0]}]" if ":" in name[0] else name[0]
    return f"{host}:{name[1]}"


async def listen(
    urls: str | Address | Iterable[str | Address],
    config_factory: Callable[[], ConnectionConfig],
    handler_factory: Callable[[AmqpProtocol], EventHandler],
    *,
    tls: TlsConfig | None = None,
    peer_config_factory: Callable[[TlsPeer], ConnectionConfig] | None = None,
) -> Listener:
    """Start a :class:`Listener` on one URL or several."""
    if isinstance(urls, (str, Address)):
        urls = [urls]
    listener = Listener(
        urls, config_factory, handler_factory, tls=tls, peer_config_factory=peer_config_factory
    )
    await listener.start()
    return listener
