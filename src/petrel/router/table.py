"""Where each message goes: the address table and the three distributions.

Addresses come in two kinds:

- *Mobile* addresses (``orders``, ``prices.eu``): wherever a receiver
  attaches, its router makes the address known network-wide (the routing
  core's mobile-address updates), and senders anywhere reach it.
- *Topological* addresses, ``_topo/0/<router-id>/<local>``: the router
  itself, reached along the least-cost path without any address being
  advertised.  ``_topo/0/B/$management`` is router B's management node;
  a dynamic receiver gets ``_topo/0/<its router>/temp.<n>``, so a reply to
  it can be routed the moment the request is sent.

A mobile address is forwarded by its distribution (``[[addresses]]`` in the
config, ``balanced`` by default):

- ``closest``: a local receiver if there is one, else the nearest router
  that has one (lowest path cost, then lowest id).
- ``balanced``: the destination with the fewest unsettled deliveries plus
  path cost: each local receiver (its outstanding copies) and each remote
  router (the deliveries this router has in flight toward it, plus the cost
  of the path).  Each router on the way decides again; the trace keeps a
  message from coming back to a router it passed.
- ``multicast``: a copy to every local receiver and, along the shortest-path
  tree rooted at the router where the message entered the network, to each
  neighbour whose subtree has receivers; a copy that arrives over a link
  that is not on that tree is dropped, so no topology duplicates a message.

The routing annotations (``x-opt-petrel.ingress``, ``x-opt-petrel.trace``,
``x-opt-petrel.to``) ride in the message annotations between routers and are
stripped before a message leaves the network, unless the receiving link asked
for the trace (its source has the ``petrel:trace`` capability): then it keeps
the ingress router and the trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, cast

from ..engine import Delivery
from ..errors import AmqpError, Condition, DecodeError
from ..message import EncodedAnnotations, MessageView
from ..server.nodes import NodeRegistry
from ..spec import Error, Rejected
from ..types import Symbol
from .forwarding import ACCEPTED, RELEASED, InLink, OutLink, Stats, Transit, answer

if TYPE_CHECKING:
    from ..tracing import ServerTracing
    from .connection import Neighbour
    from .routing import RoutingCore

__all__ = [
    "ANN_INGRESS",
    "ANN_TO",
    "ANN_TRACE",
    "CAP_TRACE",
    "TOPO_PREFIX",
    "AddressEntry",
    "AddressTable",
    "band_of",
]

log = logging.getLogger("petrel.router")

TOPO_PREFIX: Final = "_topo/0/"
#: Waypoint addresses travel in two phases: ``_phase/0/A`` from senders to the broker's
#: queue, ``_phase/1/A`` from the queue to receivers.  Clients never name these.
PHASE_PREFIX: Final = "_phase/"
RESERVED_PREFIXES: Final = (TOPO_PREFIX, PHASE_PREFIX)


def phase(address: str, number: int) -> str:
    """The key of ``address``'s phase ``number`` (0: to the waypoint, 1: from it)."""
    return f"{PHASE_PREFIX}{number}/{address}"


def unphased(address: str) -> str:
    """The address a phase key stands for (any other address as it is)."""
    if address.startswith(PHASE_PREFIX):
        return address[len(PHASE_PREFIX) + 2 :]
    return address


ANN_INGRESS: Final = Symbol("x-opt-petrel.ingress")
ANN_TRACE: Final = Symbol("x-opt-petrel.trace")
ANN_TO: Final = Symbol("x-opt-petrel.to")
_OURS: Final = (ANN_INGRESS, ANN_TRACE, ANN_TO)
#: A receiving link whose source has this capability keeps the ingress and the trace.
CAP_TRACE: Final = Symbol("petrel:trace")
#: Priority bands: one data link per band and direction between two routers, so a long
#: run of low-priority messages cannot hold up urgent ones.
BANDS: Final = 3
#: The longest trace a message may carry (a bound on hostile input).
MAX_TRACE: Final = 64
#: Routes kept by the encoding of the annotations they were read from; cleared when full.
MAX_ROUTES: Final = 4096


def band_of(priority: int) -> int:
    """The data link band for a message ``priority`` (0-9; 4 is the default)."""
    if priority >= 7:
        return 2
    if priority >= 4:
        return 1
    return 0


class AddressEntry:
    """What this router knows of one address: its distribution, local receivers and
    senders, and counters."""

    __slots__ = (
        "address",
        "consumers",
        "delivered_in",
        "delivered_out",
        "distribution",
        "outstanding",
        "producers",
        "topological",
    )

    def __init__(self, address: str, distribution: str, topological: bool) -> None:
        self.address = address
        self.distribution = distribution
        self.topological = topological
        self.consumers: list[OutLink] = []
        self.producers: set[InLink] = set()
        self.delivered_in = 0
        self.delivered_out = 0
        #: Deliveries in flight toward each remote router (the ``balanced`` measure).
        self.outstanding: dict[str, int] = {}

    def copy_sent(self, router: str) -> None:
        """A balanced copy left toward ``router`` (:meth:`copy_done` when it ends)."""
        self.outstanding[router] = self.outstanding.get(router, 0) + 1

    def copy_done(self, router: str) -> None:
        """A balanced copy sent toward ``router`` ended (its outcome came, or it was lost)."""
        left = self.outstanding.get(router, 1) - 1
        if left > 0:
            self.outstanding[router] = left
        else:
            self.outstanding.pop(router, None)


class _Route:
    """What a message's routing annotations say, and its annotations as they leave: to
    the next router (``onward``), to a receiver (``stripped``; ``None``: unchanged),
    to a receiver that asked for the trace (``traced``)."""

    __slots__ = ("address", "onward", "origin", "stripped", "topological", "trace", "traced")

    def __init__(
        self,
        router_id: str,
        address: str,
        origin: str,
        trace: tuple[str, ...],
        annotations: dict[Any, Any],
    ) -> None:
        self.address = address
        self.origin = origin
        self.trace = trace
        self.topological = address.startswith(TOPO_PREFIX)
        rest = {k: v for k, v in annotations.items() if k not in _OURS}
        passed = [*trace, router_id]
        self.onward = EncodedAnnotations(
            {**rest, ANN_INGRESS: origin, ANN_TRACE: passed, ANN_TO: address}
        )
        self.traced = EncodedAnnotations({**rest, ANN_INGRESS: origin, ANN_TRACE: passed})
        self.stripped = EncodedAnnotations(rest) if len(rest) != len(annotations) else None


class AddressTable:
    """The router's addresses and its forwarding decisions (see the module docstring).

    ``core`` answers where routers and receivers are; ``neighbours`` maps a
    routing-core link key to its data out-links (one per band);
    ``remote_request(payload)`` answers a request for one of this router's
    own nodes that came through the network.
    """

    def __init__(
        self,
        router_id: str,
        core: RoutingCore,
        *,
        distribution_for: Callable[[str], str],
        nodes: NodeRegistry,
        on_mobile: Callable[[str, bool], None],
        remote_request: Callable[[bytes], None],
        is_waypoint: Callable[[str], bool] = lambda address: False,
    ) -> None:
        self.router_id = router_id
        self.core = core
        self._distribution_for = distribution_for
        #: Whether an address passes through a broker's queue (two phases).
        self.is_waypoint = is_waypoint
        self.nodes = nodes
        #: ``on_mobile(address, present)``: the first local receiver came / the last went.
        self.on_mobile = on_mobile
        self.remote_request = remote_request
        self.entries: dict[str, AddressEntry] = {}
        self.stats = Stats()
        self._client_routes: dict[tuple[bytes, str], _Route] = {}
        self._router_routes: dict[bytes, _Route] = {}
        self._local_prefix = f"{TOPO_PREFIX}{router_id}/"
        #: Spans for traced messages (``[tracing]``); None: off.
        self.tracing: ServerTracing | None = None

    # --- receivers and senders --------------------------------------------------------------

    def entry(self, address: str) -> AddressEntry:
        entry = self.entries.get(address)
        if entry is None:
            topological = address.startswith(TOPO_PREFIX)
            distribution = "closest" if topological else self.distribution_for(address)
            entry = self.entries[address] = AddressEntry(address, distribution, topological)
        return entry

    def _forget_if_unused(self, entry: AddressEntry) -> None:
        if not entry.consumers and not entry.producers:
            self.entries.pop(entry.address, None)

    def add_consumer(self, address: str, out: OutLink) -> None:
        entry = self.entry(address)
        entry.consumers.append(out)
        if len(entry.consumers) == 1:
            if not entry.topological:
                self.on_mobile(address, True)
            self.refresh([address])

    def remove_consumer(self, address: str, out: OutLink) -> None:
        entry = self.entries.get(address)
        if entry is None or out not in entry.consumers:
            return
        entry.consumers.remove(out)
        if not entry.consumers:
            if not entry.topological:
                self.on_mobile(address, False)
            self.refresh([address])
        self._forget_if_unused(entry)

    def add_producer(self, address: str, producer: InLink) -> None:
        entry = self.entry(address)
        entry.producers.add(producer)
        producer.active = self.has_destination(address)

    def remove_producer(self, address: str, producer: InLink) -> None:
        entry = self.entries.get(address)
        if entry is not None:
            entry.producers.discard(producer)
            self._forget_if_unused(entry)

    def has_destination(self, address: str) -> bool:
        """Whether a message to ``address`` has somewhere to go right now."""
        entry = self.entries.get(address)
        if entry is not None and entry.consumers:
            return True
        if address.startswith(TOPO_PREFIX):
            router, _, local = address[len(TOPO_PREFIX) :].partition("/")
            if router == self.router_id:
                return local in self.nodes
            return self.core.next_hop(router) is not None
        return bool(self.core.routers_for(address))

    def refresh(self, addresses: Any = None) -> None:
        """Give or take back credit for the senders to ``addresses`` (all: ``None``) as
        their destinations came or went."""
        if addresses is None:
            entries: Any = list(self.entries.values())
        else:
            entries = [e for e in map(self.entries.get, addresses) if e is not None]
        for entry in entries:
            if not entry.producers:
                continue
            present = self.has_destination(entry.address)
            for producer in list(entry.producers):
                if present:
                    producer.open()
                else:
                    producer.shut()

    # --- forwarding ---------------------------------------------------------------------------

    def deliver(self, source: InLink, delivery: Delivery, payload: bytes, attempt: int = 0) -> None:
        """Route one message that came in on ``source`` (the in-links' ``deliver``)."""
        stats = self.stats
        stats.delivered_in += 1
        settled = delivery.remote_settled
        from_router = source.from_router
        try:
            view = MessageView(payload)
            if from_router:
                route = self._route_between_routers(view)
                if self.router_id in route.trace:
                    stats.dropped_loops += 1
                    if not settled:
                        answer(delivery, RELEASED)
                    return
            else:
                address = source.address
                if address is None:
                    to = view.to
                    if not to:
                        raise AmqpError(
                            "a message on the anonymous relay needs properties.to",
                            condition=Condition.NOT_FOUND,
                        )
                    address = str(to)
                    if source.relay_check is not None:  # [access]: may it, and where to
                        address = source.relay_check(address)
                route = self._route_from_client(view, address)
            copies = self._copies(source, view, route, from_router)
        except AmqpError as exc:
            if not settled:
                error = Error(condition=Symbol(exc.condition), description=exc.description)
                answer(delivery, Rejected(error=error))
            log.debug("rejected a message on %r: %s", source.link.name, exc)
            return
        if copies is None:  # taken by a node of this router
            if not settled:
                answer(delivery, ACCEPTED)
            return
        if self.tracing is not None:
            self.tracing.route(view, unphased(route.address), len(copies), route.address)
        if settled:
            transit = Transit(None, source)
        elif source.resend:
            transit = Transit(delivery, source, payload, attempt)
        else:
            transit = Transit(delivery, source)
        transit.expect(len(copies))
        for out, data, toward in copies:
            if toward is not None:
                toward[0].copy_sent(toward[1])
                transit.toward = toward
            out.push(data, transit)

    def inject(self, payload: bytes, address: str) -> bool:
        """Send a message the router made itself (a management reply) to ``address``,
        pre-settled; False when it has nowhere to go (it is dropped)."""
        try:
            view = MessageView(payload)
            copies = self._copies(None, view, self._route_from_client(view, address), False)
        except (AmqpError, DecodeError) as exc:
            log.info("dropping a message to %r: %s", address, exc)
            return False
        if not copies:
            log.info("dropping a message to %r: no route", address)
            return False
        transit = Transit(None, None)
        transit.expect(len(copies))
        for out, data, _toward in copies:
            out.push(data, transit)
        return True

    # --- routing annotations ----------------------------------------------------------------------

    def distribution_for(self, address: str) -> str:
        """The distribution of ``address`` (or of the address a phase key stands for)."""
        return self._distribution_for(unphased(address))

    def sending_key(self, address: str) -> str:
        """Where a client's message to ``address`` goes first: the waypoint's phase 0
        for a waypoint address, else the address itself."""
        return phase(address, 0) if self.is_waypoint(address) else address

    def receiving_key(self, address: str) -> str:
        """What a client's receiver for ``address`` waits on: phase 1 of a waypoint."""
        return phase(address, 1) if self.is_waypoint(address) else address

    def _route_from_client(self, view: MessageView, address: str) -> _Route:
        """The route of a message that enters the network here, by its annotations as
        encoded (most messages carry none, or the same few) and its address."""
        key = (view.encoded_message_annotations, address)
        route = self._client_routes.get(key)
        if route is None:
            # Worked out once per distinct (annotations, address): where it goes first.
            if not address.startswith(RESERVED_PREFIXES):
                address = self.sending_key(address)
            annotations = view.message_annotations or {}
            route = _Route(self.router_id, address, self.router_id, (), annotations)
            self._remember(self._client_routes, key, route)
        return route

    def _route_between_routers(self, view: MessageView) -> _Route:
        """The route of a message from another router: its routing annotations, read
        once for each distinct encoding of them."""
        key = view.encoded_message_annotations
        route = self._router_routes.get(key)
        if route is None:
            annotations = view.message_annotations or {}
            address = annotations.get(ANN_TO)
            origin = annotations.get(ANN_INGRESS)
            trace = annotations.get(ANN_TRACE)
            if not isinstance(address, str) or not isinstance(origin, str):
                raise AmqpError(
                    "a message between routers needs x-opt-petrel.to and x-opt-petrel.ingress",
                    condition=Condition.DECODE_ERROR,
                )
            if not isinstance(trace, list) or len(trace) > MAX_TRACE:
                raise AmqpError(
                    f"x-opt-petrel.trace must be a list of at most {MAX_TRACE} router ids",
                    condition=Condition.DECODE_ERROR,
                )
            hops = tuple(str(hop) for hop in trace)
            route = _Route(self.router_id, address, origin, hops, annotations)
            self._remember(self._router_routes, key, route)
        return route

    @staticmethod
    def _remember(cache: dict[Any, _Route], key: Any, route: _Route) -> None:
        if len(cache) >= MAX_ROUTES:
            cache.clear()  # bounded: distinct annotations are rare; start again
        cache[key] = route

    # --- the copies of one message ----------------------------------------------------------------

    def _copies(
        self, source: InLink | None, view: MessageView, route: _Route, from_router: bool
    ) -> list[tuple[OutLink, bytes, tuple[AddressEntry, str] | None]] | None:
        """Where the copies of one message go: ``(out-link, bytes, balanced-toward)``;
        ``None`` when a node of this router took the message."""
        core = self.core
        address = route.address
        if route.topological:
            router, _, local = address[len(TOPO_PREFIX) :].partition("/")
            if router != self.router_id:
                if not from_router and local in self.nodes and source is not None:
                    # Another router's node trusts what its neighbours forward: the
                    # router the request enters by decides, as for its own node.
                    self._check_may_use(source, local)
                link = core.next_hop(router)
                out = self._data_link(link, view) if link is not None else None
                if out is None:
                    return []
                return [(out, view.with_header(message_annotations=route.onward), None)]
            if local in self.nodes:
                self._to_node(source, local, view.data, from_router)
                return None
        elif not from_router and address in self.nodes:
            self._to_node(source, address, view.data, from_router)
            return None
        entry = self.entries.get(address)
        consumers = entry.consumers if entry is not None else []
        if route.topological:
            distribution = "closest"
            remote: frozenset[str] = frozenset()
        else:
            distribution = (
                entry.distribution if entry is not None else self.distribution_for(address)
            )
            remote = core.routers_for(address)
            if route.trace and remote:
                remote = remote.difference(route.trace)
        if entry is not None:
            entry.delivered_in += 1
        if distribution == "multicast":
            return self._multicast(source, view, route, from_router, consumers)
        best_local: OutLink | None = None
        best = -1
        for out in consumers:
            measure = out.outstanding if out.credit > 0 else out.outstanding + 1_000_000
            if best_local is None or measure < best:
                best_local, best = out, measure
        if distribution == "closest" and best_local is not None:
            return [(best_local, self._egress(best_local, view, route, entry), None)]
        best_router: str | None = None
        best_remote = -1
        for router in remote:
            cost = core.cost_to(router)
            if cost is None:
                continue
            measure = cost
            if distribution == "balanced" and entry is not None:
                measure += entry.outstanding.get(router, 0)
            if (
                best_router is None
                or measure < best_remote
                or (measure == best_remote and router < best_router)  # ties: the lowest id
            ):
                best_router, best_remote = router, measure
        if best_local is not None and (best_router is None or best <= best_remote):
            return [(best_local, self._egress(best_local, view, route, entry), None)]
        if best_router is None:
            return []
        hop = core.next_hop(best_router)
        out = self._data_link(hop, view) if hop is not None else None
        if out is None:
            return []
        toward = (self.entry(address), best_router) if distribution == "balanced" else None
        return [(out, view.with_header(message_annotations=route.onward), toward)]

    def _multicast(
        self,
        source: InLink | None,
        view: MessageView,
        route: _Route,
        from_router: bool,
        consumers: list[OutLink],
    ) -> list[tuple[OutLink, bytes, tuple[AddressEntry, str] | None]]:
        core = self.core
        origin = route.origin
        if from_router and source is not None and not core.valid_origin(origin, source.owner):
            return []  # not on origin's tree: another copy comes the right way
        entry = self.entries.get(route.address)
        copies: list[tuple[OutLink, bytes, tuple[AddressEntry, str] | None]] = []
        # One encoding of each variant serves every local receiver that takes it.
        plain: bytes | None = None
        traced: bytes | None = None
        for out in consumers:
            if out.keep_trace:
                if traced is None:
                    traced = self._egress(out, view, route, entry)
                else:
                    self._count_out(entry)
                copies.append((out, traced, None))
            else:
                if plain is None:
                    plain = self._egress(out, view, route, entry)
                else:
                    self._count_out(entry)
                copies.append((out, plain, None))
        routers = core.routers_for(route.address)
        if routers:
            links = core.multicast_links(origin, routers)
            if links:
                onward = view.with_header(message_annotations=route.onward)
                for link in sorted(links, key=_peer_of):
                    data_out = self._data_link(link, view)
                    if data_out is not None:
                        copies.append((data_out, onward, None))
        return copies

    def _data_link(self, link: Any, view: MessageView) -> OutLink | None:
        """The data out-link toward the neighbour at the routing core's ``link`` for the
        message's priority band (another band's while that one is down)."""
        links = cast("Neighbour", link).data_out
        try:
            priority = view.priority
        except DecodeError:
            priority = 4
        out = links[band_of(priority)]
        return out if out is not None else next((o for o in links if o is not None), None)

    def _count_out(self, entry: AddressEntry | None) -> None:
        self.stats.delivered_out += 1
        if entry is not None:
            entry.delivered_out += 1

    def _egress(
        self, out: OutLink, view: MessageView, route: _Route, entry: AddressEntry | None
    ) -> bytes:
        """The message as a receiver gets it: without the routing annotations (the
        trace is kept for a receiver that asked for it)."""
        self._count_out(entry)
        if out.keep_trace:
            return view.with_header(message_annotations=route.traced)
        if route.stripped is None:
            return view.data
        return view.with_header(message_annotations=route.stripped)

    def _to_node(self, source: InLink | None, name: str, payload: bytes, from_router: bool) -> None:
        if from_router:
            self.remote_request(payload)
            return
        if source is None:
            raise AmqpError(f"the router does not send to {name}", condition=Condition.NOT_FOUND)
        self._check_may_use(source, name)
        node = self.nodes.get(name)
        assert node is not None
        node.relay(source.owner, payload)

    @staticmethod
    def _check_may_use(source: InLink, name: str) -> None:
        if not source.owner.may_manage:
            raise AmqpError(
                f"this connection may not use {name}", condition=Condition.UNAUTHORIZED_ACCESS
            )


def _peer_of(link: Any) -> str:
    return str(getattr(link, "peer_id", ""))
