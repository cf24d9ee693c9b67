"""A router's connections: clients, and neighbouring routers.

Every connection, accepted or dialled, is a :class:`RouterConnection` (so
the server layer's admission, limits, access log and management listing
apply to all).  On a ``normal`` listener a connection is a client's: its
receiving links become :class:`~petrel.router.forwarding.OutLink` consumers
of an address, its sending links :class:`~petrel.router.forwarding.InLink`
producers.  On an ``inter-router`` listener, and on every connection a
router dials to another, the connection belongs to a :class:`Neighbour`:

- Both ends say who they are in the open's properties
  (``petrel:router-id``, ``petrel:router-protocol``, ``petrel:cost``); a
  peer that does not is refused.  The link's cost is the larger of the two
  ends' costs.
- The dialling router attaches, on one session, a control link each way
  (address ``_petrel.router/control``) and one data link each way per
  priority band (address ``_petrel.router/data``, link property
  ``petrel:band``).  Control messages are sent pre-settled; data links
  carry deliveries with their settlement hop by hop.
- Once both control links are attached the neighbour is handed to the
  routing core, which may still refuse it (a duplicate router id, a newer
  protocol version): the connection is then closed with
  ``amqp:not-allowed`` naming the reason.
"""

from __future__ import annotations

import collections
import itertools
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final, cast

from ..driver import AmqpProtocol
from ..engine import Link, LinkState, Session
from ..engine import events as ev
from ..errors import AmqpError, Condition, DecodeError
from ..message import Message
from ..server.config import ListenerSettings
from ..server.connection import LinkHandler, ServerConnection, ServerState
from ..server.nodes import terminus_capabilities
from ..spec import Coordinator, SenderSettleMode, Source, Target
from ..types import Symbol
from .config import AutolinkSettings
from .forwarding import CAP_RESEND_RELEASED, InLink, OutLink
from .linkroutes import (
    COORDINATOR_ADDRESS,
    LR_PREFIX,
    PROP_LINK_ROUTE,
    LinkProxy,
    match_link_route,
    near_handler,
)
from .network import Network
from .table import BANDS, CAP_TRACE, PHASE_PREFIX, RESERVED_PREFIXES, TOPO_PREFIX
from .waypoints import attach_autolinks

__all__ = [
    "CONTROL_ADDRESS",
    "DATA_ADDRESS",
    "PROP_COST",
    "PROP_INSTANCE",
    "PROP_PROTOCOL",
    "PROP_ROUTER_ID",
    "Neighbour",
    "RouterConnection",
]

log = logging.getLogger("petrel.router")

CONTROL_ADDRESS: Final = "_petrel.router/control"
DATA_ADDRESS: Final = "_petrel.router/data"
PROP_ROUTER_ID: Final = Symbol("petrel:router-id")
PROP_PROTOCOL: Final = Symbol("petrel:router-protocol")
PROP_COST: Final = Symbol("petrel:cost")
PROP_INSTANCE: Final = Symbol("petrel:router-instance")
PROP_BAND: Final = Symbol("petrel:band")
#: Credit a client's sending link gets while its address has a destination.
CLIENT_WINDOW: Final = 1000
#: Credit per band on a data link from a neighbour.
DATA_WINDOW: Final = 1000
#: Credit on a control link, and the control messages kept while the peer gives none.
CONTROL_WINDOW: Final = 256
MAX_HELD_CONTROL: Final = 1024

_temp_ids: Final = itertools.count(1)


class Neighbour:
    """Another router at the end of one inter-router connection."""

    def __init__(self, connection: RouterConnection, cost: int) -> None:
        self.connection = connection
        self.protocol = connection.protocol
        self.network = connection.network
        #: Our end's configured cost (the listener's or the connector's).
        self.own_cost = cost
        self.cost = cost
        self.peer_id = ""
        #: The peer's instance, from its open (new at each start of the peer).
        self.instance: int | None = None
        self.protocol_version = 1
        #: Whether the routing core ever took it (a connection refused before that is a
        #: failed attempt for the connector's backoff).
        self.ever_up = False
        self.control_out: Link | None = None
        self.control_in: Link | None = None
        self.data_out: list[OutLink | None] = [None] * BANDS
        self.up = False
        self.refused = False
        self._held: collections.deque[bytes] = collections.deque(maxlen=MAX_HELD_CONTROL)

    def __repr__(self) -> str:
        return f"<Neighbour {self.peer_id or '?'} on {self.connection.id}>"

    def learn(self, properties: Any) -> str | None:
        """Read the peer's open properties; why it is not a router we can talk to, or None."""
        properties = properties or {}
        peer_id = properties.get(PROP_ROUTER_ID)
        if not isinstance(peer_id, str) or not peer_id:
            return "the peer is not a Petrel router (no petrel:router-id in its open)"
        self.peer_id = peer_id
        version = properties.get(PROP_PROTOCOL, 1)
        self.protocol_version = version if isinstance(version, int) else 1
        instance = properties.get(PROP_INSTANCE)
        self.instance = instance if isinstance(instance, int) else None
        peer_cost = properties.get(PROP_COST, 1)
        if isinstance(peer_cost, int) and peer_cost > self.cost:
            self.cost = peer_cost
        return None

    # --- control messages ---------------------------------------------------------------------

    def send_control(self, body: dict[str, Any]) -> None:
        payload = Message(body=body).encode()
        link = self.control_out
        if (
            link is not None
            and link.state is LinkState.ATTACHED
            and link.credit > 0
            and not self._held
        ):
            link.send(payload, settled=True)
            self.protocol.flush()
        else:
            # Bounded: a peer that gives no credit loses the oldest; the protocol repairs it.
            self._held.append(payload)

    def control_flowed(self) -> None:
        link = self.control_out
        if link is None:
            return
        while self._held and link.credit > 0:
            link.send(self._held.popleft(), settled=True)
        self.protocol.flush()
        self.maybe_up()

    def maybe_up(self) -> None:
        """Hand the neighbour to the routing core once both control links are attached."""
        if self.up or self.refused or not self.peer_id:
            return
        out, into = self.control_out, self.control_in
        if out is None or into is None:
            return
        if out.state is not LinkState.ATTACHED or into.state is not LinkState.ATTACHED:
            return
        self.up = True
        if self.network.neighbour_up(self):
            self.ever_up = True
        else:
            self.up = False

    def down(self) -> None:
        if self.up:
            self.up = False
            self.network.neighbour_down(self)

    def drop(self, reason: str) -> None:
        """Drop the connection now (its peer may be unable to answer a close): its links
        end, and what was in flight on them is settled back to the senders."""
        log.warning(
            "router %s: dropping the connection to %s: %s",
            self.network.router_id,
            self.peer_id,
            reason,
        )
        self.connection.engine.close(AmqpError(reason, condition=Condition.CONNECTION_FORCED))
        self.protocol.flush()
        self.protocol.loop.call_soon(self.protocol.abort_if_open)

    def refuse(self, reason: str) -> None:
        """Close the connection: the routing core or the protocol will not have this peer."""
        if self.refused:
            return
        self.refused = True
        log.warning(
            "router %s: refusing %s: %s", self.network.router_id, self.peer_id or "a peer", reason
        )
        self.connection.engine.close(AmqpError(reason, condition=Condition.NOT_ALLOWED))
        self.protocol.flush()


class _ControlOut(LinkHandler):
    __slots__ = ("neighbour",)

    def __init__(self, neighbour: Neighbour) -> None:
        self.neighbour = neighbour

    def flowed(self, drain: bool) -> None:
        self.neighbour.control_flowed()

    def close(self, closed: bool) -> None:
        self.neighbour.down()


class _ControlIn(LinkHandler):
    __slots__ = ("link", "neighbour")

    def __init__(self, neighbour: Neighbour, link: Link) -> None:
        self.neighbour = neighbour
        self.link = link

    def top_up(self) -> None:
        if self.link.credit < CONTROL_WINDOW // 2:
            self.link.flow(CONTROL_WINDOW)

    def received(self, delivery: Any, payload: bytes) -> None:
        neighbour = self.neighbour
        try:
            body = Message.decode(payload).body
        except DecodeError as exc:
            neighbour.refuse(f"an undecodable control message: {exc.description}")
            neighbour.down()
            return
        if not delivery.remote_settled:
            delivery.settle()
        self.top_up()
        neighbour.network.control(neighbour, body)

    def close(self, closed: bool) -> None:
        self.neighbour.down()


class RouterConnection(ServerConnection):
    """One connection of the router, a client's or a neighbour's (see the module docstring).

    ``dialled`` is true for a connection this router opened to another (it
    attaches the inter-router links); ``cost`` is our end's cost then.
    """

    def __init__(
        self,
        protocol: AmqpProtocol,
        state: ServerState,
        listener: ListenerSettings,
        network: Network,
        *,
        refusal: AmqpError | None = None,
        dialled: bool = False,
        cost: int | None = None,
        autolinks: Sequence[AutolinkSettings] = (),
        link_route_keys: Sequence[str] = (),
    ) -> None:
        super().__init__(protocol, state, listener, refusal=refusal)
        self.network = network
        self.dialled = dialled
        role = getattr(listener, "role", "normal")
        self._role = role
        #: The waypoint links to attach once open (a route-container connection).
        self.autolinks = list(autolinks)
        self._when_attached: dict[Link, Callable[[], None]] = {}
        #: The link routes this (broker) connection serves while it is open.
        self.link_route_keys: list[str] = list(link_route_keys)
        self._routed_session: Session | None = None
        self.neighbour: Neighbour | None = None
        if role == "inter-router":
            own = cost if cost is not None else int(getattr(listener, "cost", 1))
            self.neighbour = Neighbour(self, own)
        self._handlers[ev.LinkAttached] = self._on_link_attached
        protocol.on_writable = self._writable_again

    @property
    def role(self) -> str:
        if self.neighbour is not None:
            return "inter-router"
        if self._role == "edge":
            return "edge"
        return "route-container" if self.autolinks or self.link_route_keys else "normal"

    def _writable_again(self) -> None:
        for handler in self.links.values():
            if isinstance(handler, OutLink):
                handler.pump()

    # --- the open -----------------------------------------------------------------------------

    def _on_opened(self, event: ev.ConnectionOpened) -> None:
        neighbour = self.neighbour
        if not self.dialled:
            super()._on_opened(event)
        else:
            self.container_id = event.container_id
            self.hostname = event.hostname
        if self.autolinks and self.dialled and not self.engine.finished:
            attach_autolinks(self, self.autolinks)
        if self.link_route_keys and self.dialled and not self.engine.finished:
            self.network.advertise_link_routes(self, self.link_route_keys, True)
        if self._role == "edge" and self.network.uplinks is not None and not self.engine.finished:
            self.network.uplinks.opened(self)
        if neighbour is None or self.engine.finished:
            return
        why = neighbour.learn(event.properties)
        if why is not None:
            neighbour.refuse(why)
            return
        if self.dialled:
            self._attach_router_links(neighbour)

    def _attach_router_links(self, neighbour: Neighbour) -> None:
        session = self.engine.begin_session()
        self.sessions[session] = set()
        prefix = f"{self.network.router_id}>{neighbour.peer_id}"
        out = session.attach_sender(
            f"{prefix}:control",
            Source(address=CONTROL_ADDRESS),
            Target(address=CONTROL_ADDRESS),
            snd_settle_mode=SenderSettleMode.SETTLED,
        )
        into = session.attach_receiver(
            f"{prefix}:control-back",
            Source(address=CONTROL_ADDRESS),
            Target(address=CONTROL_ADDRESS),
            snd_settle_mode=SenderSettleMode.SETTLED,
        )
        self.adopt(out, _ControlOut(neighbour))
        neighbour.control_out = out
        control_in = _ControlIn(neighbour, into)
        self.adopt(into, control_in)
        neighbour.control_in = into
        for band in range(BANDS):
            properties = {PROP_BAND: band}
            sender = session.attach_sender(
                f"{prefix}:data.{band}",
                Source(address=DATA_ADDRESS),
                Target(address=DATA_ADDRESS),
                properties=properties,
            )
            self.adopt(sender, self._data_out(neighbour, sender, band))
            receiver = session.attach_receiver(
                f"{prefix}:data-back.{band}",
                Source(address=DATA_ADDRESS),
                Target(address=DATA_ADDRESS),
                properties=properties,
            )
            self.adopt(receiver, self._data_in(neighbour, receiver))
        self.protocol.flush()

    def adopt(self, link: Link, handler: LinkHandler) -> None:
        """Take a link this end attached (the peer answers later) as one of ours."""
        self.links[link] = handler
        attached = self.sessions.get(link.session)
        if attached is not None:
            attached.add(link)

    def _on_link_attached(self, event: ev.LinkAttached) -> None:
        link = event.link
        handler = self.links.get(link)
        if handler is None:
            return
        when_attached = self._when_attached.pop(link, None)
        if link.remote_attach is not None and (
            (link.is_sender and link.remote_target is None)
            or (not link.is_sender and link.remote_source is None)
        ):
            return  # refused: its detach follows
        if when_attached is not None:
            when_attached()
        if isinstance(handler, (_ControlIn, InLink)):
            handler.top_up()
        if self.neighbour is not None:
            self.neighbour.maybe_up()
        self.protocol.flush()

    def _on_closed(self, event: ev.ConnectionClosed) -> None:
        uplinks = self.network.uplinks
        if uplinks is not None and self.role == "edge":
            uplinks.lost(self)  # first: its links move to the next uplink as they close
        super()._on_closed(event)
        if self.neighbour is not None:
            self.neighbour.down()
        if self.link_route_keys:
            self.network.advertise_link_routes(self, self.link_route_keys, False)

    def _on_flowed(self, event: ev.LinkFlowed) -> None:
        handler = self.links.get(event.link)
        proxy = getattr(handler, "proxy", None)
        if isinstance(proxy, LinkProxy):
            proxy.flowed(event.link, event)
        else:
            super()._on_flowed(event)

    def routed_session(self) -> Session:
        """The session this connection carries routed links on (begun on first use)."""
        if self._routed_session is None or self._routed_session not in self.sessions:
            session = self.engine.begin_session()
            self.sessions[session] = set()
            self._routed_session = session
        return self._routed_session

    def when_attached(self, link: Link, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the peer answered the attach of ``link`` (ours)."""
        self._when_attached[link] = callback

    def route_link(self, link: Link, destination: str | None = None) -> LinkHandler | None:
        """Route ``link``'s attach toward a broker if a link route matches its address
        (``destination``: the router an upstream router chose); None when none does."""
        terminus = link.remote_source if link.is_sender else link.remote_target
        address = getattr(terminus, "address", None)
        if isinstance(terminus, Coordinator):
            # As in Dispatch: a link route for $coordinator carries transactions to a broker.
            address = COORDINATOR_ADDRESS
        if address is None and destination is None:
            return None
        if address is not None and self.access is not None:
            address = self.access.inner(str(address))  # a vhost's: no link route matches
        network = self.network
        core = network.core
        assert core is not None
        direction = "in" if link.is_sender else "out"
        if destination is None or destination == network.router_id:
            keys = set(network.link_routes) | network.configured_link_routes
            keys.update(a for a in core.remote_addresses() if a.startswith(LR_PREFIX))
            key = match_link_route(keys, str(address), direction) if address is not None else None
            if key is None:
                if destination is None:
                    return None
                raise AmqpError(f"no link route here for {address}", condition=Condition.NOT_FOUND)
            proxy = LinkProxy(link, self)
            broker = network.link_routes.get(key)
            if broker is not None:
                proxy.extend(broker, None)
                return near_handler(proxy)
            routers = [r for r in core.routers_for(key) if core.cost_to(r) is not None]
            if not routers:
                raise AmqpError(
                    f"no broker serves {address} now (link route {key[len(LR_PREFIX) :]})",
                    condition=Condition.NOT_FOUND,
                )
            destination = min(routers, key=lambda r: (core.cost_to(r) or 0, r))
        else:
            proxy = LinkProxy(link, self)
        hop = core.next_hop(destination)
        if hop is None:
            raise AmqpError(
                f"router {destination} (the link route for {address}) is unreachable",
                condition=Condition.NOT_FOUND,
            )
        proxy.extend(cast("Neighbour", hop).connection, destination)
        return near_handler(proxy)

    # --- links --------------------------------------------------------------------------------

    def attach_link(self, link: Link) -> LinkHandler:
        if self.neighbour is not None:
            return self._attach_router_link(self.neighbour, link)
        uplinks = self.network.uplinks
        if uplinks is not None and self._role != "edge":  # a client of an edge router
            return uplinks.route(self, link)
        routed = self.route_link(link)
        if routed is not None:
            return routed
        if link.is_sender:
            return self._attach_consumer(link)
        return self._attach_producer(link)

    def _attach_router_link(self, neighbour: Neighbour, link: Link) -> LinkHandler:
        """The dialling router attached one of the inter-router links."""
        if not neighbour.peer_id or neighbour.refused:
            raise AmqpError("not an inter-router connection yet", condition=Condition.NOT_ALLOWED)
        destination = (link.remote_properties or {}).get(PROP_LINK_ROUTE)
        if isinstance(destination, str):  # a client's link, routed toward a broker
            routed = self.route_link(link, destination)
            assert routed is not None
            return routed
        terminus = link.remote_source if link.is_sender else link.remote_target
        address = getattr(terminus, "address", None)
        link.attach()
        if address == CONTROL_ADDRESS:
            if link.is_sender:
                neighbour.control_out = link
                handler: LinkHandler = _ControlOut(neighbour)
            else:
                neighbour.control_in = link
                control_in = _ControlIn(neighbour, link)
                control_in.top_up()
                handler = control_in
            # maybe_up runs once this handler is registered (see _after_attach).
            self.protocol.loop.call_soon(neighbour.maybe_up)
            return handler
        if address == DATA_ADDRESS:
            band = (link.remote_properties or {}).get(PROP_BAND, 0)
            if not isinstance(band, int) or not 0 <= band < BANDS:
                raise AmqpError(f"no data band {band!r}", condition=Condition.INVALID_FIELD)
            if link.is_sender:
                return self._data_out(neighbour, link, band)
            inlink = self._data_in(neighbour, link)
            inlink.top_up()
            return inlink
        raise AmqpError(
            f"an inter-router connection has no link to {address!r}",
            condition=Condition.NOT_FOUND,
        )

    def _data_out(self, neighbour: Neighbour, link: Link, band: int) -> OutLink:
        out = OutLink(link, self.protocol)
        neighbour.data_out[band] = out

        def forget(_: OutLink) -> None:
            if neighbour.data_out[band] is out:
                neighbour.data_out[band] = None

        out.on_close = forget
        return out

    def _data_in(self, neighbour: Neighbour, link: Link) -> InLink:
        table = self.network.table
        return InLink(
            link,
            self.protocol,
            DATA_WINDOW,
            table,
            owner=neighbour,
            from_router=True,
        )

    def _attach_consumer(self, link: Link) -> OutLink:
        source = link.remote_source
        if not isinstance(source, Source):
            raise AmqpError("a receiving link needs a source", condition=Condition.INVALID_FIELD)
        network = self.network
        if source.dynamic:
            address = f"{TOPO_PREFIX}{network.router_id}/temp.{next(_temp_ids)}"
        elif source.address:
            address = str(source.address)
        else:
            raise AmqpError("the source has no address", condition=Condition.INVALID_FIELD)
        if address.startswith(RESERVED_PREFIXES) and not source.dynamic:
            raise AmqpError(
                f"{address} is a router's own address; receivers attach to mobile addresses",
                condition=Condition.NOT_ALLOWED,
            )
        capabilities = terminus_capabilities(link)
        # Routers apply no filters: answering without them tells the client so.
        link.attach(source=source.replace(address=address, filter=None), target=link.remote_target)
        out = OutLink(link, self.protocol, keep_trace=CAP_TRACE in capabilities)
        table = network.table
        if self.access is not None and not source.dynamic:
            address = self.access.inner(address)  # the vhost's own address space
        key = address if source.dynamic else table.receiving_key(address)
        table.add_consumer(key, out)
        out.on_close = lambda o: table.remove_consumer(key, o)
        return out

    def _attach_producer(self, link: Link) -> InLink:
        target = link.remote_target
        if isinstance(target, Coordinator):
            raise AmqpError(
                "transactions are not available on routed addresses (a link route for "
                f"{COORDINATOR_ADDRESS} carries them to a broker)",
                condition=Condition.NOT_IMPLEMENTED,
            )
        if not isinstance(target, Target):
            raise AmqpError("a sending link needs a target", condition=Condition.INVALID_FIELD)
        if target.dynamic:
            raise AmqpError(
                "a router has no dynamic targets (attach to an address, or the anonymous relay)",
                condition=Condition.NOT_IMPLEMENTED,
            )
        address = str(target.address) if target.address else None
        table = self.network.table
        if address is not None:
            if address.startswith(PHASE_PREFIX):
                raise AmqpError(
                    f"{address} is the router's own name for a waypoint phase",
                    condition=Condition.NOT_ALLOWED,
                )
            if self.access is not None:
                address = self.access.inner(address)  # the vhost's own address space
            address = table.sending_key(address)
        link.attach(source=link.remote_source, target=target)
        window = CLIENT_WINDOW
        if self.access is not None and self.access.max_unsettled is not None:
            window = min(window, self.access.max_unsettled)
        producer = InLink(
            link,
            self.protocol,
            window,
            table,
            owner=self,
            address=address,
        )
        capabilities = terminus_capabilities(link)
        producer.resend = CAP_RESEND_RELEASED in capabilities
        if address is not None:
            table.add_producer(address, producer)
            producer.on_close = lambda p: table.remove_producer(address, p)
        elif self.access is not None:
            producer.relay_check = self.access.relay  # each message's right, by its to
        producer.top_up()
        return producer
