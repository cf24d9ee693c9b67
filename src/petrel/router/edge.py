"""Edge routers: many small sites join the network through an interior router.

An edge router (``[router] mode = "edge"``) takes no part in the routing
protocol.  It keeps a connection to each of its uplinks (``role = "edge"``
connectors, dialling interior routers' client listeners): the first listed
that is open is *active*, the others stand by, open, and the next one takes
over when the active one drops.

Every link a client attaches to the edge is carried to the active uplink as a
link (the edge pairs the two, as a link route does: credit and drain,
transfers, dispositions, detach, one for one).  So the interior router sees
the edge's clients as its own: a receiver on an edge makes its address known
network-wide, a sender on an edge has credit only while a receiver exists
somewhere, and traffic between two edges crosses the interior.

When the active uplink drops, each client link moves to the next uplink
without being detached: deliveries the client had sent and not heard back
about are settled *modified* (``delivery-failed``), so it sends them again,
and what it was receiving comes again by the new uplink (the interior router
settled its side back to the senders).  Only when no uplink is left are the
client links detached, with ``amqp:link:detach-forced``.

The edge's own ``$management`` answers on the edge; its replies go out through
the active uplink's anonymous relay.
"""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING

from ..engine import Delivery, Link, LinkState
from ..errors import AmqpError, Condition, DecodeError
from ..message import MessageView
from ..server.connection import LinkHandler
from ..spec import Error, Rejected, Source, Target
from ..types import Symbol
from .forwarding import ACCEPTED, answer
from .linkroutes import LinkProxy, near_handler
from .table import TOPO_PREFIX

if TYPE_CHECKING:
    from .connection import RouterConnection

__all__ = ["Uplinks"]

log = logging.getLogger("petrel.router")

#: Replies the edge keeps for an uplink that has given it no credit yet.
MAX_HELD_REPLIES = 256


class Uplinks:
    """An edge router's uplinks, and the client links carried over them."""

    def __init__(self, router_id: str, order: list[str] | None = None) -> None:
        self.router_id = router_id
        #: The uplinks' URLs as listed: the first listed that is open is the active one.
        self.order = list(order or [])
        #: The open uplinks, in the order they opened; the first is the active one.
        self.open: list[RouterConnection] = []
        self.proxies: set[LinkProxy] = set()
        self._relays: dict[RouterConnection, _Relay] = {}
        #: How often a client link moved to another uplink.
        self.failovers = 0

    @property
    def active(self) -> RouterConnection | None:
        return self.open[0] if self.open else None

    def opened(self, connection: RouterConnection) -> None:
        # In the order the uplinks are listed: the first listed that is open is active.
        before = self.active
        self.open.append(connection)
        self.open.sort(
            key=lambda c: (
                self.order.index(c.listener.url)
                if c.listener.url in self.order
                else len(self.order)
            )
        )
        if connection is self.active:
            log.info("edge %s: uplink %s active", self.router_id, connection.listener.url)
            if before is not None:
                # One listed later opened first: it stands by now (its links stay on it).
                log.info("edge %s: uplink %s standing by", self.router_id, before.listener.url)
        else:
            log.info("edge %s: uplink %s standing by", self.router_id, connection.listener.url)

    def lost(self, connection: RouterConnection) -> None:
        """An uplink's connection closed: its links move to the next (see the module
        docstring) as they are told of it."""
        was_active = connection is self.active
        if connection in self.open:
            self.open.remove(connection)
        self._relays.pop(connection, None)
        if was_active:
            nxt = self.active
            log.warning(
                "edge %s: uplink %s lost; %s",
                self.router_id,
                connection.listener.url,
                f"now through {nxt.listener.url}" if nxt is not None else "no uplink left",
            )

    def route(self, connection: RouterConnection, link: Link) -> LinkHandler:
        """Carry a client's link to the active uplink."""
        uplink = self.active
        if uplink is None:
            raise AmqpError(
                f"edge router {self.router_id} has no uplink to the network now",
                condition=Condition.NOT_FOUND,
            )
        proxy = LinkProxy(link, connection)
        if not link.is_sender and getattr(link.remote_target, "address", None) is None:
            # The anonymous relay: messages for the edge's own nodes stay here.
            proxy.intercept = lambda delivery, payload: self._to_node(connection, delivery, payload)
        proxy.on_far_lost = self._move
        proxy.on_done = self.proxies.discard
        self.proxies.add(proxy)
        proxy.extend(uplink, None)
        return near_handler(proxy)

    def _to_node(self, connection: RouterConnection, delivery: Delivery, payload: bytes) -> bool:
        try:
            to = MessageView(payload).to
        except DecodeError:
            return False
        if not to:
            return False
        if connection.access is not None:  # [access]: the right to send there
            try:
                connection.access.relay(str(to))
            except AmqpError as exc:
                error = Error(condition=Symbol(exc.condition), description=exc.description)
                answer(delivery, Rejected(error=error))
                return True
        name = str(to).removeprefix(f"{TOPO_PREFIX}{self.router_id}/")
        node = connection.state.nodes.get(name)
        if node is None:
            return False
        try:
            if not connection.may_manage:
                raise AmqpError(
                    f"this connection may not use {name}", condition=Condition.UNAUTHORIZED_ACCESS
                )
            node.relay(connection, payload)
        except AmqpError as exc:
            error = Error(condition=Symbol(exc.condition), description=exc.description)
            answer(delivery, Rejected(error=error))
        else:
            answer(delivery, ACCEPTED)
        return True

    def _move(self, proxy: LinkProxy) -> bool:
        uplink = self.active
        if uplink is None or uplink is proxy.far_conn:
            return False
        self.failovers += 1
        proxy.rehome(uplink)
        return True

    def relay(self, to: str, payload: bytes) -> bool:
        """Send a message the edge made itself (a management reply) to ``to``, pre-settled,
        through the active uplink's anonymous relay; False when there is no uplink."""
        uplink = self.active
        if uplink is None:
            log.info("edge %s: dropping a reply to %r: no uplink", self.router_id, to)
            return False
        relay = self._relays.get(uplink)
        if relay is None:
            link = uplink.routed_session().attach_sender(
                f"{self.router_id}:edge-relay", Source(), Target()
            )
            relay = self._relays[uplink] = _Relay(link, uplink)
            uplink.adopt(link, relay)
        relay.send(payload)
        return True


class _Relay(LinkHandler):
    """The edge's own anonymous sender on an uplink: what it sends waits (a bounded
    number, the oldest dropped) until the interior gives credit."""

    __slots__ = ("connection", "held", "link")

    def __init__(self, link: Link, connection: RouterConnection) -> None:
        self.link = link
        self.connection = connection
        self.held: collections.deque[bytes] = collections.deque(maxlen=MAX_HELD_REPLIES)

    def send(self, payload: bytes) -> None:
        self.held.append(payload)
        self.flowed(False)

    def flowed(self, drain: bool) -> None:
        link = self.link
        while self.held and link.state is LinkState.ATTACHED and link.credit > 0:
            link.send(self.held.popleft(), settled=True)
        self.connection.protocol.flush()
