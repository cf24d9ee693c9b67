"""The broker: listeners, authentication, lifecycle; the queues live in :mod:`.core`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from ..driver import AmqpProtocol
from ..errors import AmqpError, Condition
from ..management import NODE_ADDRESS, ManagementAgent
from ..server.access import Access
from ..server.config import BrokerSettings, ListenerSettings
from ..server.connection import ServerState
from ..server.http import HttpService, HttpView
from ..server.listening import Listeners
from ..server.policy import ConnectionPolicy
from ..spec import ANONYMOUS_RELAY
from ..store import MemoryStore, MessageStore, SqliteStore, StoreError
from .connection import BrokerConnection
from .core import DYNAMIC_PREFIX, BrokerCore
from .entities import TYPES, BrokerProvider
from .management import management_node

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

    Its connections share :attr:`state` (the admission policy, the special
    nodes, the live connections) and :attr:`core` (the queues); none of them
    holds the broker.
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
        policy = ConnectionPolicy(
            settings, offered_capabilities=[ANONYMOUS_RELAY], properties={"product": "petrel"}
        )
        access = None
        if settings.access is not None:
            access = Access(
                settings.access,
                groups_of=policy.users.groups_of,  # the users file's, with [[access.groups]]
                is_reply_address=lambda address: address.startswith(DYNAMIC_PREFIX),
            )
        self.state = ServerState(policy, access=access)
        self.listeners = Listeners(settings, self.state, self._accept)
        agent = ManagementAgent(TYPES, BrokerProvider(self.core, self.state, self.listeners))
        self.management = management_node(self.core, agent)
        #: The HTTP listener's side: /metrics and AMQP over WebSockets (server.http).
        self.http = HttpService(
            HttpView(
                kind="broker",
                agent=agent,
                policy=policy,
                accept=self.listeners.accept,
                commit_stats=lambda: self.core.store.commit_stats,
            ),
            settings,
        )
        self.http.attach(self.listeners)
        self.state.nodes.register(NODE_ADDRESS, self.management)
        self._stopping = False
        self._watch: asyncio.Task[None] | None = None

    @property
    def connections(self) -> dict[AmqpProtocol, BrokerConnection]:
        """The live connections."""
        return self.state.connections  # type: ignore[return-value]

    @property
    def failed(self) -> asyncio.Event:
        """Set when the broker must stop: its store failed or lost the live lock.
        :attr:`failure` says why; the caller stops the broker and exits non-zero."""
        return self.core.failed

    @property
    def failure(self) -> str | None:
        """Why :attr:`failed` was set (one line), else None."""
        return self.core.failure

    def reload(self) -> None:
        """Read the TLS certificate files and the users file again (SIGHUP); what cannot
        be read is logged and its previous version kept."""
        self.listeners.reload_tls()
        self.state.policy.reload_users()

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
            await self.listeners.start()
            await self.http.start_default(self.listeners)
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
        return self.listeners.bound

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection with ``amqp:connection:forced``, wait for
        them (at most ``timeout`` s), then close the store."""
        if self._stopping:
            return
        await self._shutdown(timeout)
        log.info("broker stopped")

    async def _shutdown(self, timeout: float) -> None:
        self._stopping = True
        await self.listeners.shutdown(timeout)
        await self.http.close()
        await self.management.close()
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        try:
            await self.core.stop()
        except StoreError as exc:
            if self.core.failure is None:
                raise
            log.debug("closing the failed store: %s", exc)

    def _accept(
        self, protocol: AmqpProtocol, listener: ListenerSettings, refusal: AmqpError | None
    ) -> BrokerConnection:
        return BrokerConnection(
            protocol, self.state, listener, self.core, self.credit_window, refusal=refusal
        )
