"""The router's entities for ``$management``: what ``petrel stat`` shows of a router.

Types: ``petrel.router`` (the router itself), ``petrel.router.node`` (every
router this one knows of, with the path to it), ``petrel.router.address``
(the addresses with local receivers or senders, or receivers elsewhere), and
the types every server has (:mod:`petrel.server.entities`): listeners,
connectors, connections and links.  Any router's node is reachable from any
other through ``_topo/0/<router-id>/$management`` (``petrel stat --router``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..errors import AmqpError, Condition
from ..management import (
    Attribute,
    EntityNotFound,
    EntityType,
    OperationNotImplemented,
    OperationResult,
)
from ..server.entities import (
    CONNECTION,
    CONNECTOR,
    LINK,
    LISTENER,
    USER,
    UserEntities,
    describe_connection,
    describe_link,
)
from .forwarding import OutLink

if TYPE_CHECKING:
    from .router import Router

__all__ = ["ADDRESS", "NODE", "ROUTER", "TYPES", "RouterProvider"]

#: Seconds a connection DELETE waits for the client's close before dropping its socket.
CLOSE_TIMEOUT = 5.0

ROUTER = EntityType(
    "petrel.router",
    "The router itself (one entity, named by its router id).",
    [
        Attribute("id", "string", "The router id."),
        Attribute("mode", "string", "interior (edge routers come later)."),
        Attribute("version", "string", "Petrel's version."),
        Attribute("uptime", "float", "Seconds since the router started."),
        Attribute("connections", "integer", "Live connections (clients and routers)."),
        Attribute("links", "integer", "Attached links."),
        Attribute("nodes", "integer", "Other routers reachable now."),
        Attribute("neighbours", "integer", "Routers connected directly."),
        Attribute("addresses", "integer", "Addresses in the table."),
        Attribute("topology_changes", "integer", "How often the paths changed since the start."),
        Attribute("deliveries_in", "integer", "Messages that came into the router."),
        Attribute("deliveries_out", "integer", "Messages handed to receivers on this router."),
        Attribute(
            "deliveries_released", "integer", "Deliveries settled RELEASED back to their sender."
        ),
        Attribute(
            "deliveries_modified",
            "integer",
            "Deliveries settled MODIFIED (delivery-failed): their path broke after they left.",
        ),
        Attribute("deliveries_looped", "integer", "Messages dropped for coming back (the trace)."),
        Attribute("deliveries_unsettled", "integer", "Copies sent and not settled yet."),
        Attribute("deliveries_waiting", "integer", "Copies waiting for a receiver's credit."),
        Attribute("deliveries_stuck", "integer", "Copies sent over 10 s ago and not settled."),
        Attribute("deliveries_delayed_1s", "integer", "Deliveries whose outcome took over 1 s."),
        Attribute("deliveries_delayed_10s", "integer", "Deliveries whose outcome took over 10 s."),
        Attribute("deliveries_resent", "integer", "Released deliveries forwarded again."),
        Attribute(
            "links_blocked",
            "integer",
            "Links with copies waiting and no credit for over 10 s.",
        ),
    ],
    allows=("READ",),
)

NODE = EntityType(
    "petrel.router.node",
    "Another router of the network, as this one sees it.",
    [
        Attribute("id", "string", "Its router id."),
        Attribute("reachable", "boolean", "Whether there is a path to it now."),
        Attribute(
            "next_hop", "string", "The neighbour messages for it go to (itself if adjacent)."
        ),
        Attribute("cost", "integer", "The cost of the least-cost path to it."),
        Attribute("neighbours", "list", "The routers it says it is connected to."),
        Attribute(
            "link_costs",
            "map",
            "The cost it gives the link to each of its neighbours (router id to cost).",
        ),
        Attribute(
            "valid_origins",
            "list",
            "Routers whose multicast messages this router accepts from it.",
        ),
        Attribute("instance", "integer", "Its instance (new at each start)."),
        Attribute("link_state_seq", "integer", "The sequence of its link state we hold."),
        Attribute("mobile_seq", "integer", "The sequence of its address list we hold."),
        Attribute("addresses", "integer", "Mobile addresses it has receivers for."),
        Attribute(
            "last_topology_change", "float", "When this router's paths last changed (epoch s)."
        ),
    ],
    allows=("READ",),
)

ADDRESS = EntityType(
    "petrel.router.address",
    "An address the router knows: local receivers or senders, or receivers elsewhere.",
    [
        Attribute("address", "string", "The address."),
        Attribute("distribution", "string", "closest, balanced or multicast."),
        Attribute("local_receivers", "integer", "Receiving links on this router."),
        Attribute("local_senders", "integer", "Sending links on this router."),
        Attribute("remote_routers", "list", "Other routers with receivers for it."),
        Attribute("delivered_in", "integer", "Messages to it that came into this router."),
        Attribute("delivered_out", "integer", "Messages from it given to local receivers."),
    ],
    allows=("READ",),
)

TYPES = [ROUTER, NODE, ADDRESS, LISTENER, CONNECTOR, CONNECTION, LINK, USER]


class RouterProvider:
    """The router's entities for the management agent (see the module docstring)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.users = UserEntities(router.policy.users)

    async def query(self, entity_type: str) -> Iterable[dict[str, Any]]:
        if entity_type == USER.name:
            return self.users.query()
        return list(self._all(entity_type))

    async def read(
        self, entity_type: str, *, name: str | None = None, identity: str | None = None
    ) -> dict[str, Any] | None:
        if entity_type == USER.name:
            return self.users.read(name=name, identity=identity)
        key = "identity" if identity is not None else "name"
        wanted = identity if identity is not None else name
        return next((e for e in self._all(entity_type) if e[key] == wanted), None)

    async def create(
        self, entity_type: str, name: str, attributes: dict[str, Any]
    ) -> dict[str, Any]:
        if entity_type == USER.name:
            return await self.users.create(name, attributes)
        raise OperationNotImplemented(f"CREATE is not supported for {entity_type} on a router")

    async def update(
        self, entity_type: str, identity: str, attributes: dict[str, Any]
    ) -> dict[str, Any]:
        if entity_type == USER.name:
            return await self.users.update(identity, attributes)
        raise OperationNotImplemented(f"UPDATE is not supported for {entity_type} on a router")

    async def delete(self, entity_type: str, identity: str) -> None:
        if entity_type == USER.name:
            await self.users.delete(identity)
            return
        if entity_type != CONNECTION.name:
            raise OperationNotImplemented(f"DELETE is not supported for {entity_type}")
        for protocol, conn in list(self.router.state.connections.items()):
            if conn.id == identity:
                error = AmqpError(
                    "closed through management", condition=Condition.CONNECTION_FORCED
                )
                await protocol.close(error, timeout=CLOSE_TIMEOUT)
                return
        raise EntityNotFound(f"no connection {identity!r}")

    async def invoke(
        self,
        entity_type: str,
        identity: str | None,
        operation: str,
        arguments: dict[str, Any],
        body: Any,
    ) -> OperationResult:
        raise OperationNotImplemented(f"{operation} is not supported for {entity_type}")

    # --- the entities ---------------------------------------------------------------------------

    def _all(self, entity_type: str) -> Iterator[dict[str, Any]]:
        router = self.router
        if entity_type == ROUTER.name:
            yield self._router()
        elif entity_type == NODE.name:
            yield from self._nodes()
        elif entity_type == ADDRESS.name:
            yield from self._addresses()
        elif entity_type == CONNECTION.name:
            for conn in list(router.state.connections.values()):
                yield describe_connection(conn)
        elif entity_type == LINK.name:
            for conn in list(router.state.connections.values()):
                for link in list(conn.links):
                    yield describe_link(conn, link)
        elif entity_type == LISTENER.name:
            for identity, (settings, listener) in router.listeners.listeners.items():
                entity = settings.model_dump()
                entity.update(
                    name=settings.url,
                    identity=identity,
                    port=listener.bound[0][1] if listener.bound else None,
                    connections=sum(
                        1 for c in router.state.connections.values() if c.listener is settings
                    ),
                )
                yield entity
        elif entity_type == CONNECTOR.name:
            for index, connector in enumerate(router.settings.connectors):
                name = getattr(connector, "name", None) or f"connector-{index + 1}"
                yield {
                    "name": name,
                    "identity": name,
                    "url": connector.url,
                    "role": connector.role,
                    "cost": connector.cost,
                    "state": router.connector_state(index),
                }

    def _router(self) -> dict[str, Any]:
        router = self.router
        network = router.network
        core = network.core
        stats = network.table.stats
        unsettled = waiting = links = stuck = blocked = 0
        now = time.monotonic()
        for conn in router.state.connections.values():
            links += len(conn.links)
            for handler in conn.links.values():
                if isinstance(handler, OutLink):
                    unsettled += len(handler.unsettled)
                    waiting += len(handler.pending)
                    stuck += sum(1 for t in handler.unsettled.values() if now - t.born > 10.0)
                    since = handler.blocked_since
                    if since is not None and now - since > 10.0:
                        blocked += 1
        return {
            "name": router.router_id,
            "identity": router.router_id,
            "id": router.router_id,
            "mode": router.settings.router.mode,
            "version": __version__,
            "uptime": round(time.time() - router.state.started, 3),
            "connections": len(router.state.connections),
            "links": links,
            "nodes": len(core.reachable()) if core is not None else 0,
            "neighbours": len(network.neighbours),
            "addresses": len(network.table.entries),
            "topology_changes": network.changes,
            "deliveries_in": stats.delivered_in,
            "deliveries_out": stats.delivered_out,
            "deliveries_released": stats.released,
            "deliveries_modified": stats.modified,
            "deliveries_looped": stats.dropped_loops,
            "deliveries_unsettled": unsettled,
            "deliveries_waiting": waiting,
            "deliveries_stuck": stuck,
            "deliveries_delayed_1s": stats.delayed_1s,
            "deliveries_delayed_10s": stats.delayed_10s,
            "deliveries_resent": stats.resent,
            "links_blocked": blocked,
        }

    def _nodes(self) -> Iterator[dict[str, Any]]:
        network = self.router.network
        core = network.core
        if core is None:
            return
        # The core keeps the loop's monotonic clock; management speaks epoch seconds.
        offset = time.time() - asyncio.get_running_loop().time()
        for node in core.nodes():
            yield {
                "name": node.id,
                "identity": node.id,
                "id": node.id,
                "reachable": node.reachable,
                "next_hop": node.next_hop,
                "cost": node.cost,
                "neighbours": sorted(node.neighbours),
                "link_costs": {peer: node.neighbours[peer] for peer in sorted(node.neighbours)},
                "valid_origins": sorted(node.valid_origins),
                "instance": node.instance,
                "link_state_seq": node.ls_seq,
                "mobile_seq": node.mobile_seq,
                "addresses": node.address_count,
                "last_topology_change": round(node.last_topology_change + offset, 3),
            }

    def _addresses(self) -> Iterator[dict[str, Any]]:
        network = self.router.network
        core = network.core
        table = network.table
        seen: set[str] = set()
        for address, entry in list(table.entries.items()):
            seen.add(address)
            remote = sorted(core.routers_for(address)) if core is not None else []
            yield {
                "name": address,
                "identity": address,
                "address": address,
                "distribution": entry.distribution,
                "local_receivers": len(entry.consumers),
                "local_senders": len(entry.producers),
                "remote_routers": remote,
                "delivered_in": entry.delivered_in,
                "delivered_out": entry.delivered_out,
            }
        if core is None:
            return
        for address in sorted(core.remote_addresses() - seen):
            yield {
                "name": address,
                "identity": address,
                "address": address,
                "distribution": network.distribution_for(address),
                "local_receivers": 0,
                "local_senders": 0,
                "remote_routers": sorted(core.routers_for(address)),
                "delivered_in": 0,
                "delivered_out": 0,
            }
