"""The routing core wired to the event loop: timers, control messages out, events in.

:class:`Network` owns the router's :class:`~petrel.router.routing.RoutingCore`
(sans-IO: it never sees a socket or a clock) and its
:class:`~petrel.router.table.AddressTable`.  Every call into the core is
followed by :meth:`Network.service`: the control messages the core wants
sent go out on their neighbours' control links, its events (the topology
changed, remote addresses came or went) give senders credit or take it
back, and its next deadline re-arms the one timer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ..server.nodes import NodeRegistry
from .routing import (
    AddressesChanged,
    NeighbourLost,
    NeighbourRefused,
    ProtocolError,
    RoutingCore,
    TopologyChanged,
)
from .table import AddressTable

if TYPE_CHECKING:
    from ..tracing import ServerTracing
    from .connection import Neighbour, RouterConnection
    from .edge import Uplinks

__all__ = ["Network"]

log = logging.getLogger("petrel.router")


class Network:
    """This router's place in the network (see the module docstring)."""

    def __init__(
        self,
        router_id: str,
        nodes: NodeRegistry,
        distribution_for: Callable[[str], str],
        *,
        is_waypoint: Callable[[str], bool] = lambda address: False,
        timers: Any = None,
    ) -> None:
        self.router_id = router_id
        self.nodes = nodes
        self.distribution_for = distribution_for
        self.is_waypoint = is_waypoint
        self.timers = timers
        #: Spans for traced messages (``[tracing]``), handed to the table; None: off.
        self.tracing: ServerTracing | None = None
        self.core: RoutingCore | None = None
        self._table: AddressTable | None = None
        self.neighbours: set[Neighbour] = set()
        #: Link routes this router serves (its broker connection is open), by key.
        self.link_routes: dict[str, RouterConnection] = {}
        #: Link-route keys configured here (with or without a broker behind this router).
        self.configured_link_routes: set[str] = set()
        #: An edge router's uplinks (None on an interior router).
        self.uplinks: Uplinks | None = None
        #: Answers a request for one of this router's nodes that came through the network.
        self.remote_request: Callable[[bytes], None] = lambda payload: None
        #: When the topology last changed (``time.time()``), and how often it did.
        self.last_change = 0.0
        self.changes = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    @property
    def table(self) -> AddressTable:
        assert self._table is not None, "the network has not started"
        return self._table

    def start(self) -> None:
        """Make the routing core (a new instance number each start) and the table."""
        loop = self._loop = asyncio.get_running_loop()
        # Each start's instance must be larger than the last one's (the protocol ignores
        # a smaller one as a leftover of an older run): the clock in milliseconds.
        instance = time.time_ns() // 1_000_000
        kwargs: dict[str, Any] = {"instance": instance, "now": loop.time()}
        if self.timers is not None:
            kwargs["timers"] = self.timers
        core = self.core = RoutingCore(self.router_id, **kwargs)
        self._table = AddressTable(
            self.router_id,
            core,
            distribution_for=self.distribution_for,
            nodes=self.nodes,
            on_mobile=self._mobile,
            remote_request=self._remote_request,
            is_waypoint=self.is_waypoint,
        )
        self._table.tracing = self.tracing
        self.last_change = time.time()
        self.service()

    def _remote_request(self, payload: bytes) -> None:
        self.remote_request(payload)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = None

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    # --- into the core ------------------------------------------------------------------------

    def _mobile(self, address: str, present: bool) -> None:
        core = self.core
        if core is None:
            return
        if present:
            core.add_address(address, self._now())
        else:
            core.remove_address(address, self._now())
        self.service()

    def advertise_link_routes(
        self, connection: RouterConnection, keys: list[str], present: bool
    ) -> None:
        """The broker behind ``connection`` came (or went): serve its link routes (or not),
        and tell the network."""
        for key in keys:
            if present:
                self.link_routes[key] = connection
                self._mobile(key, True)
            elif self.link_routes.get(key) is connection:
                del self.link_routes[key]
                self._mobile(key, False)

    def neighbour_up(self, neighbour: Neighbour) -> bool:
        """The control links to a neighbour are attached; False if the core refused it
        (the caller closes the connection)."""
        core = self.core
        if core is None:
            return False
        twin = next((n for n in self.neighbours if n.peer_id == neighbour.peer_id), None)
        if twin is not None:
            # Two connections to one router.  From one run of it (both dialled the other),
            # both ends keep the one the lower router id dialled, so they agree without
            # talking about it.  From another run (an impostor with its id, or a restart
            # while the old connection lingers): the neighbour we have stays; the old
            # connection of a restarted router goes soon enough (closed, or silent).
            if neighbour.instance != twin.instance:
                neighbour.refuse(
                    f"already connected to {neighbour.peer_id} (instance {twin.instance}); "
                    f"this connection claims instance {neighbour.instance}"
                )
                return False
            if _dialler(neighbour, self.router_id) < _dialler(twin, self.router_id):
                twin.refuse(f"a second connection to {twin.peer_id}: keeping the other")
                self.neighbour_down(twin)
            else:
                neighbour.refuse(f"already connected to {neighbour.peer_id}")
                return False
        try:
            core.link_up(
                neighbour,
                neighbour.peer_id,
                neighbour.cost,
                self._now(),
                protocol_version=neighbour.protocol_version,
            )
        except NeighbourRefused as exc:
            neighbour.refuse(str(exc))
            return False
        self.neighbours.add(neighbour)
        log.info(
            "router %s: neighbour %s up (cost %d)",
            self.router_id,
            neighbour.peer_id,
            neighbour.cost,
        )
        self.service()
        return True

    def neighbour_down(self, neighbour: Neighbour) -> None:
        if neighbour not in self.neighbours:
            return
        self.neighbours.discard(neighbour)
        log.info("router %s: neighbour %s lost", self.router_id, neighbour.peer_id)
        if self.core is not None:
            self.core.link_down(neighbour, self._now())
            self.service()

    def control(self, neighbour: Neighbour, body: Any) -> None:
        """A control message from ``neighbour``."""
        core = self.core
        if core is None or neighbour not in self.neighbours:
            return
        try:
            if not isinstance(body, dict):
                raise ProtocolError("a control message body is a map")
            core.receive(neighbour, body, self._now())
        except ProtocolError as exc:
            neighbour.refuse(f"bad control message from {neighbour.peer_id}: {exc}")
            self.neighbour_down(neighbour)
            return
        self.service()

    # --- out of the core ----------------------------------------------------------------------

    def service(self) -> None:
        """Send what the core wants sent, act on its events, re-arm its timer."""
        core = self.core
        if core is None:
            return
        for link, body in core.take_messages():
            cast("Neighbour", link).send_control(body)
        table = self._table
        while (event := core.next_event()) is not None:
            if isinstance(event, TopologyChanged):
                self.last_change = time.time()
                self.changes += 1
                log.info(
                    "router %s: topology changed; reachable: %s",
                    self.router_id,
                    ", ".join(sorted(core.reachable())) or "none",
                )
                if table is not None:
                    table.refresh(None)
            elif isinstance(event, AddressesChanged):
                if table is not None:
                    table.refresh(event.addresses)
            elif isinstance(event, NeighbourLost):
                self._lost(event)
            else:
                log.info("router %s: %s", self.router_id, event)
        self._arm(core.get_timer())

    def _lost(self, event: NeighbourLost) -> None:
        """A neighbour stopped counting while its connection is still there (it went
        silent, say: SIGSTOP, a hung host): drop the connection, so what is in flight on
        it is settled at once (released or modified) and the connector dials again."""
        log.info("router %s: neighbour %s lost: %s", self.router_id, event.peer_id, event.reason)
        for neighbour in list(self.neighbours):
            if neighbour.peer_id == event.peer_id and not event.reason.startswith("connection"):
                neighbour.drop(event.reason)

    def _arm(self, deadline: float | None) -> None:
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        if deadline is None or self._loop is None:
            self._timer = None
            return
        self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        core = self.core
        if core is not None:
            core.handle_timer(self._now())
            self.service()


def _dialler(neighbour: Neighbour, router_id: str) -> str:
    """The id of the router that opened ``neighbour``'s connection."""
    return router_id if neighbour.connection.dialled else neighbour.peer_id
