"""The broker: listeners, authentication, lifecycle; the queues live in :mod:`.core`."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Callable
from pathlib import Path

from ..driver import AmqpProtocol, Listener, TlsConfig
from ..engine import ConnectionConfig, SaslConfig
from ..errors import AmqpError, Condition
from ..server.config import BrokerSettings, ListenerSettings
from ..spec import ANONYMOUS_RELAY
from ..store import MemoryStore, MessageStore, SqliteStore, StoreError
from .connection import BrokerConnection
from .core import BrokerCore

__all__ = ["Broker", "make_store"]

log = logging.getLogger("petrel.broker")

#: Credit each producer link gets, topped up when half is used.
DEFAULT_CREDIT_WINDOW = 1000


def make_store(
    settings: BrokerSettings, *, on_lost_lock: Callable[[StoreError], None] | None = None
) -> MessageStore:
    """The store ``settings.store`` names; ``on_lost_lock`` is called if a shared store
    (PostgreSQL) loses the live lock."""
    if settings.store == "memory":
        return MemoryStore(paging_dir=Path(settings.data_dir))
    if settings.store == "sqlite":
        return SqliteStore(Path(settings.data_dir))
    if settings.store == "postgresql" and settings.store_url:
        try:
            from ..store.postgresql import PostgresStore
        except ImportError as exc:
            raise StoreError(f"the postgresql store needs psycopg: {exc}") from None
        return PostgresStore(
            settings.store_url, paging_dir=Path(settings.data_dir), on_lost_lock=on_lost_lock
        )
    raise AmqpError(
        f"the {settings.store} store is not available in this version",
        condition=Condition.NOT_IMPLEMENTED,
    )


class Broker:
    """A store-and-forward AMQP 1.0 broker.

    >>> broker = Broker(BrokerSettings(store="memory"))
    >>> await broker.start()     # binds the listeners, recovers the store
    >>> await broker.stop()      # closes clients with amqp:connection:forced
    """

    def __init__(
        self,
        settings: BrokerSettings,
        *,
        store: MessageStore | None = None,
        credit_window: int = DEFAULT_CREDIT_WINDOW,
    ) -> None:
        self.settings = settings
        if store is None:
            store = make_store(settings, on_lost_lock=self._lost_lock)
        self.core = BrokerCore(settings, store)
        self.credit_window = credit_window
        self.listeners: list[tuple[ListenerSettings, Listener]] = []
        self.connections: dict[AmqpProtocol, BrokerConnection] = {}
        self._listener_of: dict[AmqpProtocol, ListenerSettings] = {}
        self._users = {user.name: user.password for user in settings.users}
        self._stopping = False
        self._watch: asyncio.Task[None] | None = None

    @property
    def failed(self) -> asyncio.Event:
        """Set when the broker must stop: its store failed or lost the live lock.
        :attr:`failure` says why; the caller stops the broker and exits non-zero."""
        return self.core.failed

    @property
    def failure(self) -> str | None:
        """Why :attr:`failed` was set (one line), else None."""
        return self.core.failure

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, wait to be the live broker (PostgreSQL: a backup waits here,
        not listening, so clients go to the live one), recover, then listen.  Raises
        ``OSError`` if an address is in use, :class:`~petrel.store.StoreError` if the
        store cannot be opened."""
        try:
            await self.core.start()
        except BaseException:
            with contextlib.suppress(StoreError):
                await self.core.stop()
            raise
        self._watch = asyncio.get_running_loop().create_task(self._watch_lock())
        try:
            for listener_settings in self.settings.listeners:
                listener = Listener(
                    [listener_settings.url],
                    lambda ls=listener_settings: self._connection_config(ls),  # type: ignore[misc]
                    lambda protocol, ls=listener_settings: self._accept(protocol, ls),  # type: ignore[misc]
                    tls=_tls_config(listener_settings),
                )
                await listener.start()
                self.listeners.append((listener_settings, listener))
        except BaseException:
            await self._shutdown(timeout=0)
            raise

    async def _watch_lock(self) -> None:
        store = self.core.store
        await store.lost_lock.wait()
        self._lost_lock(None)

    def _lost_lock(self, error: StoreError | None) -> None:
        reason = error.description if error is not None else "this broker lost the live lock"
        self.core.fail(f"{reason} (another broker may be live now)")

    @property
    def bound(self) -> list[tuple[str, int]]:
        """Every ``(host, port)`` the broker listens on."""
        return [address for _, listener in self.listeners for address in listener.bound]

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection with ``amqp:connection:forced``, wait for
        them (at most ``timeout`` s), then close the store."""
        if self._stopping:
            return
        await self._shutdown(timeout)
        log.info("broker stopped")

    async def _shutdown(self, timeout: float) -> None:
        self._stopping = True
        for _, listener in self.listeners:
            await listener.close()
        protocols = list(self.connections)
        forced = AmqpError("the broker is shutting down", condition=Condition.CONNECTION_FORCED)
        for protocol in protocols:
            if not protocol.closed.done():
                protocol.engine.close(forced)
                protocol.process()
        if protocols:
            pending = [p.closed for p in protocols if not p.closed.done()]
            if pending:
                await asyncio.wait(pending, timeout=timeout)
        for protocol in protocols:
            protocol.abort_if_open()
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        try:
            await self.core.stop()
        except StoreError as exc:
            if self.core.failure is None:
                raise
            log.debug("closing the failed store: %s", exc)

    # --- connections --------------------------------------------------------------------------

    def _connection_config(self, listener: ListenerSettings) -> ConnectionConfig:
        limits = self.settings.limits
        mechanisms = ["PLAIN"] if self._users else []
        if listener.anonymous_allowed:
            mechanisms.append("ANONYMOUS")
        return ConnectionConfig(
            container_id=self.settings.container_id,
            max_frame_size=limits.max_frame_size,
            idle_timeout=limits.idle_timeout or None,
            offered_capabilities=[ANONYMOUS_RELAY],
            properties={"product": "petrel"},
            sasl=SaslConfig(
                mechanisms=mechanisms or ["ANONYMOUS"],
                authenticator=self._authenticate if self._users else None,
            ),
            allow_no_sasl=listener.anonymous_allowed,
            max_message_size=limits.max_message_size,
        )

    def _accept(self, protocol: AmqpProtocol, listener: ListenerSettings) -> BrokerConnection:
        connection = BrokerConnection(self, protocol)
        self.connections[protocol] = connection
        self._listener_of[protocol] = listener
        protocol.closed.add_done_callback(lambda _: self._forget(protocol))
        # A client must finish SASL and its open in time, or it is dropped.
        deadline = protocol.loop.call_later(
            self.settings.limits.sasl_timeout, self._open_overdue, protocol
        )
        protocol.opened.add_done_callback(lambda _: deadline.cancel())
        limit = self.settings.limits.max_connections
        if len(self.connections) > limit:
            refusal = AmqpError(
                f"the broker accepts at most {limit} connections",
                condition=Condition.RESOURCE_LIMIT_EXCEEDED,
            )
            if len(self.connections) > 2 * limit:
                # A flood: even a refusal costs too much now.  Drop the socket at once.
                protocol.engine.close(refusal)
                protocol.flush()
            else:
                # Tell the client why, once it has opened (SASL and open deadline apply).
                connection.refusal = refusal
        return connection

    def _open_overdue(self, protocol: AmqpProtocol) -> None:
        if not protocol.opened.done():
            log.info(
                "dropping %s: no open within %.1f s",
                protocol.peername,
                self.settings.limits.sasl_timeout,
            )
            protocol.abort_if_open()

    def _forget(self, protocol: AmqpProtocol) -> None:
        self.connections.pop(protocol, None)
        self._listener_of.pop(protocol, None)

    def anonymous_allowed(self, protocol: AmqpProtocol) -> bool:
        """Whether the listener ``protocol`` came in on serves unauthenticated clients."""
        listener = self._listener_of.get(protocol)
        return listener is not None and listener.anonymous_allowed

    def _authenticate(self, username: str, password: str, authzid: str | None) -> str | None:
        expected = self._users.get(username)
        if expected is None:
            # Compare anyway so a wrong user name takes as long as a wrong password.
            hmac.compare_digest(password.encode(), password.encode())
            return None
        if not hmac.compare_digest(expected.encode(), password.encode()):
            return None
        if authzid and authzid != username:
            return None
        return username


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
