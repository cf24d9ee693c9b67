"""The listening half every Petrel server shares: listeners, admission and shutdown.

:class:`Listeners` binds each configured listener, gives each accepted socket
an engine configured by the policy, admits or refuses it (the connection
limit), drops clients that do not open within ``limits.sasl_timeout``, and at
shutdown stops accepting and closes every connection with
``amqp:connection:forced``.  What a connection is then for is the
``accept`` callback's: it returns the connection's
:class:`~petrel.server.connection.ServerConnection`.

Against hostile clients (the limits are :class:`~petrel.server.config.LimitSettings`):
a host may have at most ``max_pending_per_host`` connections that have not
finished their open, more are dropped as they connect; past twice
``max_connections`` a connection is dropped as it connects; a client that does
not open within ``sasl_timeout`` is told so (a SASL outcome, or a close) and
hung up on; one that does not read what it is sent is bounded by the driver
(``max_write_backlog``, ``write_stall_timeout``: see
:mod:`petrel.driver.protocol`).  Each refusal is logged, at most
:data:`LOG_BURST` lines per kind every ``refusal_log_period`` seconds (default
:data:`LOG_PERIOD`), so a flood cannot flood the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from ..driver import AmqpProtocol, Listener, TlsConfig, TlsPeer
from ..engine import Connection, ConnectionConfig
from ..errors import AmqpError, Condition
from .config import ListenerSettings, ServerSettings
from .connection import ServerConnection, ServerState
from .policy import ConnectionPolicy
from .tls import FileWatcher, IdentityRule

__all__ = ["Accept", "BoundListener", "Listeners", "RateLimitedLog", "StartHttp"]

log = logging.getLogger("petrel.server")

#: Refusals of one kind logged per period; the rest are counted in one line at its end.
LOG_BURST = 10
LOG_PERIOD = 10.0


class _Window:
    __slots__ = ("logged", "start", "suppressed")

    def __init__(self, start: float) -> None:
        self.start = start
        self.logged = 0
        self.suppressed = 0


class RateLimitedLog:
    """Logs at most ``burst`` lines per ``period`` seconds for each kind of message; the
    lines left out are counted and reported in one line when the period ends."""

    def __init__(
        self, logger: logging.Logger, burst: int = LOG_BURST, period: float = LOG_PERIOD
    ) -> None:
        self.logger = logger
        self.burst = burst
        self.period = period
        self._windows: dict[str, _Window] = {}

    def log(self, level: int, kind: str, message: str, *args: object) -> None:
        """Log ``message % args`` unless ``kind`` already had its lines this period."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        window = self._windows.get(kind)
        if window is None or now >= window.start + self.period:
            window = self._windows[kind] = _Window(now)
        if window.logged < self.burst:
            window.logged += 1
            self.logger.log(level, message, *args)
            return
        window.suppressed += 1
        if window.suppressed == 1:
            loop.call_at(window.start + self.period, self._summary, level, kind, window)

    def _summary(self, level: int, kind: str, window: _Window) -> None:
        self.logger.log(
            level, "%d more %s in the last %g s (not logged one by one)",
            window.suppressed, kind, self.period,
        )  # fmt: skip


#: Makes the handler of an accepted connection: its protocol, the listener it came in on,
#: and the refusal it must get once it has opened (over the connection limit), if any.
Accept = Callable[[AmqpProtocol, ListenerSettings, AmqpError | None], ServerConnection]


class BoundListener(Protocol):
    """What :class:`Listeners` keeps of a bound listener: an AMQP one, or the HTTP one."""

    @property
    def bound(self) -> list[tuple[str, int]]: ...

    async def close(self) -> None: ...


#: Binds the HTTP listener (``role = "http"``) of a server that serves HTTP
#: (:mod:`petrel.server.http`); raises ``OSError`` naming the address it could not bind.
StartHttp = Callable[[ListenerSettings], Awaitable[BoundListener]]


class Listeners:
    """A server's listeners and live connections (see the module docstring)."""

    def __init__(self, settings: ServerSettings, state: ServerState, accept: Accept) -> None:
        self.settings = settings
        self.state = state
        self._accept_handler = accept
        #: The bound listeners by identity (``listener-<n>``, in the order they were added).
        self.listeners: dict[str, tuple[ListenerSettings, BoundListener]] = {}
        self._count = 0
        #: How to bind a ``role = "http"`` listener (set by the server's HTTP service).
        self.start_http: StartHttp | None = None
        #: Connections per host that have not finished their open yet.
        self.pending: dict[str, int] = {}
        self._refusals = RateLimitedLog(log, period=settings.limits.refusal_log_period)
        #: Each TLS listener's watch on its certificate files, by identity.
        self._tls_watchers: dict[str, FileWatcher] = {}

    async def start(self) -> None:
        """Bind every configured listener; raises ``OSError`` naming the address that
        failed (and binds none then)."""
        try:
            for settings in self.settings.listeners:
                await self.add(settings)
        except BaseException:
            await self.stop_accepting()
            raise

    async def add(self, settings: ListenerSettings) -> str:
        """Bind one more listener (at start, or at runtime through management); its
        identity.  Raises ``OSError`` naming the address if it cannot be bound."""
        policy = self.state.policy
        listener: BoundListener
        if settings.role == "http":
            if self.start_http is None:
                raise OSError(f"cannot listen on {settings.url}: this server serves no HTTP")
            listener = await self.start_http(settings)
        else:
            amqp = Listener(
                [settings.url],
                lambda: policy.connection_config(settings),
                lambda protocol: self._accept(protocol, settings),
                tls=_tls_config(settings),
                peer_config_factory=_peer_config(settings, policy),
                handshake_timeout=policy.limits.sasl_timeout,
                on_handshake_failed=self._handshake_failed,
            )
            await amqp.start()
            listener = amqp
        self._count += 1
        identity = f"listener-{self._count}"
        self.listeners[identity] = (settings, listener)
        if isinstance(listener, Listener) and listener.server_tls and settings.tls:
            watcher = FileWatcher(listener.server_tls, settings.tls.reload_interval)
            watcher.start()
            self._tls_watchers[identity] = watcher
        return identity

    async def remove(self, identity: str) -> None:
        """Stop accepting on one listener; its live connections carry on."""
        watcher = self._tls_watchers.pop(identity, None)
        if watcher is not None:
            await watcher.stop()
        entry = self.listeners.pop(identity, None)
        if entry is not None:
            await entry[1].close()

    def reload_tls(self) -> bool:
        """Read every TLS listener's certificate, key and CA files again (SIGHUP): new
        connections get what they hold now, open ones carry on.  Whether all of them
        could be read (a listener whose files cannot keeps its previous ones, and says
        so in the log)."""
        results = [
            listener.reload_tls()
            for _, listener in self.listeners.values()
            if isinstance(listener, Listener)
        ]
        return all(results)

    def _handshake_failed(self, peer: str, why: str) -> None:
        self._refusals.log(
            logging.WARNING,
            "TLS handshakes failed",
            "TLS handshake with %s failed: %s",
            peer, why,
        )  # fmt: skip

    @property
    def bound(self) -> list[tuple[str, int]]:
        """Every ``(host, port)`` the server listens on."""
        return [a for _, listener in self.listeners.values() for a in listener.bound]

    async def stop_accepting(self) -> None:
        for identity in list(self.listeners):
            await self.remove(identity)

    async def shutdown(self, timeout: float) -> None:
        """Stop accepting, close every connection with ``amqp:connection:forced``, wait for
        them (at most ``timeout`` s), then drop those that did not answer."""
        await self.stop_accepting()
        protocols = list(self.state.connections)
        forced = AmqpError("the server is shutting down", condition=Condition.CONNECTION_FORCED)
        for protocol in protocols:
            if not protocol.closed.done():
                protocol.engine.close(forced)
                protocol.process()
        pending = [p.closed for p in protocols if not p.closed.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        for protocol in protocols:
            protocol.abort_if_open()

    def accept(self, listener: ListenerSettings) -> AmqpProtocol:
        """A new server-side connection for a transport other than a socket of ours (a
        WebSocket the HTTP listener accepted): its engine configured for ``listener``,
        admitted and handled exactly as one of a socket.  The caller gives it its
        transport (``protocol.connection_made``)."""
        engine = Connection(self.state.policy.connection_config(listener), server=True)
        protocol = AmqpProtocol(engine)
        protocol.handler = self._accept(protocol, listener)
        return protocol

    def _accept(self, protocol: AmqpProtocol, listener: ListenerSettings) -> ServerConnection:
        state = self.state
        refusal, drop = state.policy.over_connection_limit(len(state.connections) + 1)
        connection = self._accept_handler(protocol, listener, refusal)
        state.connections[protocol] = connection
        protocol.closed.add_done_callback(lambda _: state.connections.pop(protocol, None))
        limits = state.policy.limits
        protocol.write_stall_timeout = limits.write_stall_timeout or None
        protocol.max_write_backlog = limits.max_write_backlog
        protocol.on_stalled = self._stalled
        if drop:
            assert refusal is not None
            protocol.engine.close(refusal)
            protocol.admit = self._flooded
            return connection
        protocol.admit = self._admit
        # A client must finish SASL and its open in time, or it is dropped.
        deadline = protocol.loop.call_later(limits.sasl_timeout, self._open_overdue, protocol)
        protocol.opened.add_done_callback(lambda _: deadline.cancel())
        return connection

    def _admit(self, protocol: AmqpProtocol) -> bool:
        """Keep a new socket unless its host has too many connections still opening."""
        host = _host(protocol.peername)
        pending = self.pending
        count = pending.get(host, 0)
        limit = self.state.policy.limits.max_pending_per_host
        if count >= limit:
            self._refusals.log(
                logging.WARNING,
                "connections refused (too many still opening from one host)",
                "refused a connection from %s: %d connections from it have not finished "
                "opening (max_pending_per_host = %d)",
                host, count, limit,
            )  # fmt: skip
            return False
        pending[host] = count + 1

        def opened_or_gone(_: object) -> None:
            left = pending.get(host, 1) - 1
            if left > 0:
                pending[host] = left
            else:
                pending.pop(host, None)

        protocol.opened.add_done_callback(opened_or_gone)
        return True

    def _flooded(self, protocol: AmqpProtocol) -> bool:
        limit = self.state.policy.limits.max_connections
        self._refusals.log(
            logging.WARNING,
            "connections dropped (over twice max_connections)",
            "dropped a connection from %s: more than twice max_connections = %d",
            _host(protocol.peername), limit,
        )  # fmt: skip
        return False

    def _open_overdue(self, protocol: AmqpProtocol) -> None:
        if protocol.opened.done():
            return
        limit = self.state.policy.limits.sasl_timeout
        self._refusals.log(
            logging.INFO,
            "connections dropped (no open in time)",
            "dropping %s: no open within %g s",
            protocol.peername, limit,
        )  # fmt: skip
        # Say why where the protocol lets us (a SASL outcome, or an open and a close),
        # then hang up without waiting for an answer.
        protocol.engine.close(
            AmqpError(f"no open within {limit:g} s", condition=Condition.RESOURCE_LIMIT_EXCEEDED)
        )
        protocol.process()
        protocol.hang_up()

    def _stalled(self, protocol: AmqpProtocol, why: str) -> None:
        self._refusals.log(
            logging.WARNING,
            "connections cut (not reading)",
            "cutting %s: it %s",
            protocol.peername, why,
        )  # fmt: skip


def _host(peername: object) -> str:
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return str(peername or "?")


def _peer_config(
    listener: ListenerSettings, policy: ConnectionPolicy
) -> Callable[[TlsPeer], ConnectionConfig] | None:
    """How a TLS connection's engine is configured once its handshake is done: with the
    SASL EXTERNAL identity its client certificate maps to, where the listener has a
    rule for that (``tls.external_identity``)."""
    tls = listener.tls
    if tls is None or tls.external_identity is None:
        return None
    rule = IdentityRule(tls.external_identity)
    return lambda peer: policy.connection_config(listener, external_identity=rule.identity(peer))


def _tls_config(listener: ListenerSettings) -> TlsConfig | None:
    tls = listener.tls
    if tls is None:
        return None
    return TlsConfig(
        ca_file=tls.ca_file,
        cert_file=tls.cert_file,
        key_file=tls.key_file,
        verify=tls.require_client_cert,
    )
