"""The router: listeners, inter-router connectors, the network, management, lifecycle."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from ..driver import AmqpProtocol, Backoff, Connector, TlsConfig, parse_url
from ..engine import ConnectionConfig, SaslConfig
from ..errors import AmqpError
from ..management import NODE_ADDRESS, ManagementAgent
from ..server.access import Access
from ..server.config import ListenerSettings
from ..server.connection import ServerState
from ..server.http import HttpService, HttpView
from ..server.listening import Listeners
from ..server.management import ManagementNode
from ..server.policy import ConnectionPolicy
from ..spec import ANONYMOUS_RELAY
from ..tracing import server_tracing
from .config import RouterSettings, distribution_for, is_waypoint
from .connection import PROP_COST, PROP_INSTANCE, PROP_PROTOCOL, PROP_ROUTER_ID, RouterConnection
from .edge import Uplinks
from .entities import TYPES, RouterProvider
from .network import Network
from .routing import PROTOCOL_VERSION
from .table import TOPO_PREFIX

__all__ = ["Router"]

log = logging.getLogger("petrel.router")

#: How a router dials a neighbour that is away: soon at first, then every 5 s, for ever.
REDIAL = Backoff(initial_delay=0.1, max_delay=5.0, multiplier=2.0, max_attempts=None)
#: How it dials a broker (a route-container connector) that is away: after 2 s, then
#: every 5 s, for ever.
REDIAL_BROKER = Backoff(
    initial_delay=2.0, max_delay=5.0, multiplier=2.5, jitter=0.1, max_attempts=None
)


class RouterPolicy(ConnectionPolicy):
    """The server policy, plus who we are in the open of inter-router connections."""

    def __init__(self, settings: RouterSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.router_id = settings.router.id
        #: This run's instance (the routing core's), once started.
        self.instance: int | None = None

    def router_properties(self, cost: int) -> dict[str, Any]:
        properties = {
            PROP_ROUTER_ID: self.router_id,
            PROP_PROTOCOL: PROTOCOL_VERSION,
            PROP_COST: cost,
            "product": "petrel",
        }
        if self.instance is not None:
            properties[PROP_INSTANCE] = self.instance
        return properties

    def connection_config(
        self, listener: ListenerSettings, *, external_identity: str | None = None
    ) -> ConnectionConfig:
        config = super().connection_config(listener, external_identity=external_identity)
        if getattr(listener, "role", "normal") == "inter-router":
            properties = self.router_properties(int(getattr(listener, "cost", 1)))
            config = dataclasses.replace(config, properties=properties)
        return config


class Router:
    """An interior router of a Petrel network.

    >>> router = Router(RouterSettings.model_validate({"router": {"id": "A"}}))
    >>> await router.start()     # binds the listeners, dials its neighbours
    >>> await router.stop()

    Its connections share :attr:`state` (the admission policy, the special
    nodes, the live connections) and :attr:`network` (the routing core and
    the address table); none of them holds the router.
    """

    def __init__(self, settings: RouterSettings, *, timers: Any = None) -> None:
        self.settings = settings
        self.router_id = settings.router.id
        policy = RouterPolicy(
            settings,
            offered_capabilities=[ANONYMOUS_RELAY],
            properties={"product": "petrel"},
        )
        self.policy = policy
        access = None
        if settings.access is not None:
            # A reply address (``_topo/...``) is anyone's to send to; see server.access.
            access = Access(
                settings.access,
                groups_of=policy.users.groups_of,  # the users file's, with [[access.groups]]
                is_reply_address=lambda address: address.startswith(TOPO_PREFIX),
            )
        self.state = ServerState(policy, access=access)
        self.network = Network(
            self.router_id,
            self.state.nodes,
            lambda address: distribution_for(settings.addresses, address),
            is_waypoint=lambda address: is_waypoint(settings.addresses, address),
            timers=timers,
        )
        self.network.remote_request = self._remote_request
        self.network.tracing = server_tracing(settings.tracing.enabled, self.router_id)
        self.network.configured_link_routes = {r.key for r in settings.link_routes}
        if settings.router.mode == "edge":
            order = [c.url for c in settings.connectors if c.role == "edge"]
            self.network.uplinks = Uplinks(self.router_id, order)
        self.listeners = Listeners(settings, self.state, self._accept)
        self._failed = asyncio.Event()
        self._dialers: list[asyncio.Task[None]] = []
        #: Each connector's state: connecting, open or failed (for management).
        self._connector_states = ["connecting"] * len(settings.connectors)
        self._stopping = False
        self.agent = ManagementAgent(TYPES, RouterProvider(self))
        self.management = ManagementNode(self.agent, self._deliver_reply)
        self.state.nodes.register(NODE_ADDRESS, self.management)
        #: The HTTP listener's side: /metrics and AMQP over WebSockets (server.http).
        self.http = HttpService(
            HttpView(kind="router", agent=self.agent, policy=policy, accept=self.listeners.accept),
            settings,
        )
        self.http.attach(self.listeners)

    @property
    def failed(self) -> asyncio.Event:
        return self._failed

    @property
    def failure(self) -> str | None:
        return None

    def reload(self) -> None:
        """Read the TLS certificate files and the users file again (SIGHUP); what cannot
        be read is logged and its previous version kept."""
        self.listeners.reload_tls()
        self.state.policy.reload_users()

    @property
    def bound(self) -> list[tuple[str, int]]:
        return self.listeners.bound

    @property
    def connections(self) -> dict[AmqpProtocol, RouterConnection]:
        return self.state.connections  # type: ignore[return-value]

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self.network.start()
        assert self.network.core is not None
        self.policy.instance = self.network.core.instance
        try:
            await self.listeners.start()
            await self.http.start_default(self.listeners)
        except BaseException:
            await self.listeners.stop_accepting()
            await self.http.close()
            raise
        loop = asyncio.get_running_loop()
        for index, connector in enumerate(self.settings.connectors):
            self._dialers.append(loop.create_task(self._dial(index, connector)))
        log.info("router %s started", self.router_id)

    async def stop(self, timeout: float = 5.0) -> None:
        if self._stopping:
            return
        self._stopping = True
        for task in self._dialers:
            task.cancel()
        if self._dialers:
            await asyncio.wait(self._dialers, timeout=timeout)
        self._dialers.clear()
        await self.listeners.shutdown(timeout)
        await self.http.close()
        await self.management.close()
        self.network.stop()
        log.info("router %s stopped", self.router_id)

    def _accept(
        self, protocol: AmqpProtocol, listener: ListenerSettings, refusal: AmqpError | None
    ) -> RouterConnection:
        return RouterConnection(protocol, self.state, listener, self.network, refusal=refusal)

    # --- dialling neighbours ------------------------------------------------------------------

    def connector_state(self, index: int) -> str:
        """``connecting``, ``open`` or ``failed`` (the last attempt failed; trying again)."""
        return self._connector_states[index]

    async def _dial(self, index: int, connector: Any) -> None:
        """Keep one connection to the router (or broker) at ``connector.url``: dial, and
        when it drops (or cannot be made), dial again with backoff."""
        address = parse_url(connector.url)
        cost = int(getattr(connector, "cost", 1))
        role = connector.role
        to_broker = role in ("route-container", "edge")
        autolinks = [a for a in self.settings.autolinks if a.connector == connector.name]
        link_routes = [r.key for r in self.settings.link_routes if r.connector == connector.name]
        backoff = REDIAL_BROKER if role == "route-container" else REDIAL
        pseudo = ListenerSettings.model_construct(url=connector.url, role=role, cost=cost)
        tls = _connector_tls(connector)
        state = self.state

        def config_for(_: Any) -> ConnectionConfig:
            username = getattr(connector, "username", None)
            return ConnectionConfig(
                container_id=self.settings.container_id,
                hostname=address.host,
                max_frame_size=self.policy.limits.max_frame_size,
                idle_timeout=self.policy.limits.idle_timeout or None,
                properties={"product": "petrel"} if to_broker else self.router_properties(cost),
                sasl=SaslConfig(
                    mechanisms=_connector_mechanisms(connector),
                    username=username,
                    password=getattr(connector, "password", None),
                ),
            )

        handlers: dict[AmqpProtocol, RouterConnection] = {}

        class Dispatch:
            def handle_event(self_, protocol: AmqpProtocol, event: Any) -> None:
                connection = handlers.get(protocol)
                if connection is None:
                    connection = handlers[protocol] = RouterConnection(
                        protocol,
                        state,
                        pseudo,
                        self.network,
                        dialled=True,
                        cost=cost,
                        autolinks=autolinks,
                        link_route_keys=link_routes,
                    )
                    state.connections[protocol] = connection
                connection.handle_event(protocol, event)

        dialer = Connector(
            [address], config_for, Dispatch(), tls=tls, timeout=10.0, backoff=backoff
        )
        refused = 0  # connections in a row closed before the neighbour came up
        first = True
        while not self._stopping:
            if refused:
                # A peer that takes the connection and then refuses us (a duplicate id,
                # a second connection) is a failed attempt too: back off, up to 5 s.
                await asyncio.sleep(backoff.delay(refused))
            try:
                protocol, _ = await dialer.connect(wait_first=not first and not refused)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # GaveUp cannot happen (no attempt limit); be safe
                self._connector_states[index] = "failed"
                log.warning("router %s: dialling %s failed: %s", self.router_id, connector.url, exc)
                await asyncio.sleep(REDIAL.max_delay)
                continue
            first = False
            self._connector_states[index] = "open"
            log.info("router %s: connected to %s", self.router_id, connector.url)
            try:
                await asyncio.shield(protocol.closed)
            except asyncio.CancelledError:
                protocol.abort_if_open()
                raise
            except Exception:
                pass
            self._connector_states[index] = "connecting"
            connection = handlers.pop(protocol, None)
            state.connections.pop(protocol, None)
            neighbour = connection.neighbour if connection is not None else None
            if to_broker or (neighbour is not None and neighbour.ever_up):
                refused = 0
            else:
                refused += 1
            if not self._stopping:
                log.info(
                    "router %s: connection to %s lost; dialling again",
                    self.router_id,
                    connector.url,
                )

    def router_properties(self, cost: int) -> dict[str, Any]:
        return self.policy.router_properties(cost)

    # --- management through the network -------------------------------------------------------

    def _deliver_reply(self, to: str, payload: bytes) -> bool:
        uplinks = self.network.uplinks
        if uplinks is not None:
            return uplinks.relay(to, payload)
        return self.network.table.inject(payload, to)

    def _remote_request(self, payload: bytes) -> None:
        """A request for this router's ``$management`` that came through the network (the
        router where it entered checked that its client may manage)."""
        try:
            self.management.handle_forwarded(payload, allowed=True)
        except AmqpError as exc:
            log.info("router %s: a management request dropped: %s", self.router_id, exc)


def _connector_mechanisms(connector: Any) -> tuple[str, ...]:
    """The SASL mechanisms a connector may use: PLAIN with a user name; else EXTERNAL when
    it shows a TLS client certificate (the peer decides who that makes us); ANONYMOUS
    when the peer offers nothing better."""
    if getattr(connector, "username", None):
        return ("PLAIN", "ANONYMOUS")
    tls = getattr(connector, "tls", None)
    if tls is not None and getattr(tls, "cert_file", None):
        return ("EXTERNAL", "ANONYMOUS")
    return ("ANONYMOUS",)


def _connector_tls(connector: Any) -> TlsConfig | None:
    tls = getattr(connector, "tls", None)
    if tls is None:
        return None
    return TlsConfig(
        ca_file=getattr(tls, "ca_file", None),
        cert_file=getattr(tls, "cert_file", None),
        key_file=getattr(tls, "key_file", None),
        check_hostname=bool(getattr(tls, "verify_hostname", True)),
    )
