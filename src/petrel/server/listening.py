"""The listening half every Petrel server shares: listeners, admission and shutdown.

:class:`Listeners` binds each configured listener, gives each accepted socket
an engine configured by the policy, admits or refuses it (the connection
limit), drops clients that do not open within ``limits.sasl_timeout``, and at
shutdown stops accepting and closes every connection with
``amqp:connection:forced``.  What a connection is then for is the
``accept`` callback's: it returns the connection's
:class:`~petrel.server.connection.ServerConnection`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..driver import AmqpProtocol, Listener, TlsConfig
from ..errors import AmqpError, Condition
from .config import ListenerSettings, ServerSettings
from .connection import ServerConnection, ServerState

__all__ = ["Accept", "Listeners"]

log = logging.getLogger("petrel.server")

#: Makes the handler of an accepted connection: its protocol, the listener it came in on,
#: and the refusal it must get once it has opened (over the connection limit), if any.
Accept = Callable[[AmqpProtocol, ListenerSettings, AmqpError | None], ServerConnection]


class Listeners:
    """A server's listeners and live connections (see the module docstring)."""

    def __init__(self, settings: ServerSettings, state: ServerState, accept: Accept) -> None:
        self.settings = settings
        self.state = state
        self._accept_handler = accept
        #: The bound listeners by identity (``listener-<n>``, in the order they were added).
        self.listeners: dict[str, tuple[ListenerSettings, Listener]] = {}
        self._count = 0

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
        listener = Listener(
            [settings.url],
            lambda: policy.connection_config(settings),
            lambda protocol: self._accept(protocol, settings),
            tls=_tls_config(settings),
        )
        await listener.start()
        self._count += 1
        identity = f"listener-{self._count}"
        self.listeners[identity] = (settings, listener)
        return identity

    async def remove(self, identity: str) -> None:
        """Stop accepting on one listener; its live connections carry on."""
        entry = self.listeners.pop(identity, None)
        if entry is not None:
            await entry[1].close()

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

    def _accept(self, protocol: AmqpProtocol, listener: ListenerSettings) -> ServerConnection:
        state = self.state
        refusal, drop = state.policy.over_connection_limit(len(state.connections) + 1)
        connection = self._accept_handler(protocol, listener, refusal)
        state.connections[protocol] = connection
        protocol.closed.add_done_callback(lambda _: state.connections.pop(protocol, None))
        if drop:
            assert refusal is not None
            protocol.engine.close(refusal)
            protocol.flush()
            return connection
        # A client must finish SASL and its open in time, or it is dropped.
        deadline = protocol.loop.call_later(
            state.policy.limits.sasl_timeout, self._open_overdue, protocol
        )
        protocol.opened.add_done_callback(lambda _: deadline.cancel())
        return connection

    def _open_overdue(self, protocol: AmqpProtocol) -> None:
        if not protocol.opened.done():
            log.info(
                "dropping %s: no open within %.1f s",
                protocol.peername,
                self.state.policy.limits.sasl_timeout,
            )
            protocol.abort_if_open()


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
