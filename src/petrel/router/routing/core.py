"""The routing core of one router: neighbours, link-state database, paths and addresses.

:class:`RoutingCore` is sans-IO.  It opens no socket, starts no task and
reads no clock: the runtime tells it what happened and when (``now`` is
monotonic float seconds), and takes back what to do.  Inputs are the
connection facts (``link_up``, ``link_down``), control messages
(``receive``), local receivers coming and going (``add_address``,
``remove_address``) and the timer (``handle_timer``).  Outputs are the
control messages to send (``take_messages``), events (``next_event``), the
next deadline (``get_timer``), and the answers to cheap queries the runtime
makes for every message it forwards (``next_hop``, ``routers_for``,
``valid_origin``, ``multicast_links``, ...).

Links are opaque hashable keys the runtime picks, one per inter-router
connection.  The same inputs in the same order give the same outputs, so
many cores wired together on a virtual clock behave the same on every run.

The protocol the core speaks (HELLO, RA, LSU, LSR, MAU, MAR) is specified in
``docs/router.md``.  :mod:`.messages` checks and builds the messages,
:mod:`.records` holds what is known of each connection and each router,
:mod:`.routes` keeps the paths and the address table, and :mod:`.paths` finds
the paths.  After every call the core is consistent: a call that raises
:class:`~.messages.ProtocolError` has already forgotten the connection the bad
message came on, and the queries answer for the new state.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Iterable
from typing import Any

from ...errors import Condition
from .events import (
    AddressesChanged,
    Event,
    NeighbourFound,
    NeighbourLost,
    RouterNode,
    TopologyChanged,
)
from .messages import (
    MAX_ADDRESS_LENGTH,
    MAX_ADDRESSES_PER_MESSAGE,
    MAX_ADDRESSES_PER_ROUTER,
    MAX_COST,
    MAX_ID_LENGTH,
    MAX_INSTANCE,
    MAX_ROUTERS,
    PROTOCOL_VERSION,
    Hello,
    LinkStateRequest,
    LinkStateUpdate,
    Message,
    MobileDiff,
    MobileRequest,
    MobileSnapshot,
    NeighbourRefused,
    ProtocolError,
    RouterAdvert,
    parse,
    snapshot_parts,
)
from .records import MobileAssembly, NeighbourLink, OriginState
from .routes import Routes
from .timers import Timers

__all__ = ["NeighbourRefused", "RoutingCore", "Timers"]


class RoutingCore:
    """One router's routing state machine (see the module docstring).

    ``instance`` must be larger at each start of the same ``router_id`` than at
    the one before (the wall-clock time of the start in milliseconds does):
    other routers ignore a smaller instance as a relic of an earlier run, and
    take a larger one as a restart that wipes what the old run advertised.
    """

    def __init__(
        self, router_id: str, *, instance: int, now: float, timers: Timers | None = None
    ) -> None:
        if not isinstance(router_id, str) or not 0 < len(router_id) <= MAX_ID_LENGTH:
            raise ValueError(f"a router id is a string of 1 to {MAX_ID_LENGTH} characters")
        if not isinstance(instance, int) or not 0 <= instance <= MAX_INSTANCE:
            raise ValueError(f"an instance is an integer in 0..{MAX_INSTANCE}")
        self._id = router_id
        self._instance = instance
        self._timers = timers or Timers()
        self._now = now
        self._links: dict[Hashable, NeighbourLink] = {}
        self._by_peer: dict[str, NeighbourLink] = {}
        # Our own state: two-way neighbours with costs, and local mobile addresses.
        self._own_links: dict[str, int] = {}
        self._ls_seq = 0
        self._own_changed_at = now
        self._local: set[str] = set()
        self._pending: dict[str, bool] = {}  # address -> added (True) / removed, not yet sent
        self._mobile_seq = 0
        self._ra_seq = 0
        # Everyone else: what each router advertised (its addresses are kept in _routes).
        self._db: dict[str, OriginState] = {}
        # Output.
        self._out: list[tuple[Hashable, dict[str, Any]]] = []
        self._events: deque[Event] = deque()
        # Timers.
        self._next_hello = now + self._timers.hello_interval
        self._last_ra = now
        self._next_ra = now + self._timers.ra_interval
        self._last_change = now
        # Paths and the address table, brought up to date at the end of every call.
        self._routes = Routes(router_id)
        self._dirty = False  # a link state changed since the paths were computed

    # -- identity -------------------------------------------------------------------------

    @property
    def router_id(self) -> str:
        return self._id

    @property
    def instance(self) -> int:
        return self._instance

    @property
    def timers(self) -> Timers:
        return self._timers

    # -- connections ----------------------------------------------------------------------

    def link_up(
        self,
        link: Hashable,
        peer_id: str,
        cost: int,
        now: float,
        *,
        protocol_version: int = PROTOCOL_VERSION,
    ) -> None:
        """An inter-router connection to ``peer_id`` is up, its control links attached.

        ``cost`` is the effective cost of the connection (1 to 2**31-1).  Raises
        :class:`NeighbourRefused` when the peer has our id, speaks a newer
        protocol, or is already connected through another live link; the core
        then knows nothing of ``link``.  A HELLO goes out on it at once.
        """
        if link in self._links:
            raise ValueError(f"link {link!r} is already up")
        if isinstance(cost, bool) or not isinstance(cost, int) or not 1 <= cost <= MAX_COST:
            raise ValueError(f"a link cost is an integer in 1..{MAX_COST}, not {cost!r}")
        if not isinstance(peer_id, str) or not 0 < len(peer_id) <= MAX_ID_LENGTH:
            raise NeighbourRefused(f"a router id has 1 to {MAX_ID_LENGTH} characters")
        if peer_id == self._id:
            raise NeighbourRefused(f"duplicate router id: the peer is also called {peer_id!r}")
        if protocol_version > PROTOCOL_VERSION or protocol_version < 1:
            raise NeighbourRefused(
                f"speaks protocol version {protocol_version}; this router speaks {PROTOCOL_VERSION}"
            )
        if peer_id in self._by_peer:
            raise NeighbourRefused(
                f"already connected to {peer_id!r}: a second connection is refused"
            )
        if len(self._links) >= MAX_ROUTERS - 1:
            raise NeighbourRefused(f"this router has {len(self._links)} neighbours already")
        self._begin(now)
        entry = NeighbourLink(link, peer_id, cost)
        self._links[link] = entry
        self._by_peer[peer_id] = entry
        self._send(entry, self._hello())
        self._update(now)

    def link_down(self, link: Hashable, now: float) -> None:
        """The connection ``link`` closed: its neighbour is lost at once.  Unknown links
        (never up, or already dropped after a protocol error) are ignored."""
        entry = self._links.get(link)
        if entry is None:
            return
        self._begin(now)
        self._drop(entry, now, "connection closed")
        self._update(now)

    def receive(self, link: Hashable, body: dict[str, Any], now: float) -> None:
        """A control message arrived on ``link``.

        Raises :class:`~.messages.ProtocolError` and nothing else when the
        message is malformed or breaks the protocol; the core has then already
        dropped ``link`` as ``link_down`` would (the runtime still calls
        ``link_down`` when the connection has closed; it is a no-op).  A
        message on a link the core does not know is ignored.
        """
        entry = self._links.get(link)
        if entry is None:
            return
        self._begin(now)
        try:
            self._dispatch(entry, parse(body), now)
        except ProtocolError as error:
            self._drop(entry, now, f"protocol error: {error.description}")
            raise
        finally:
            self._update(now)

    # -- local addresses ------------------------------------------------------------------

    def add_address(self, address: str, now: float) -> None:
        """A first local receiver for ``address`` came.  Idempotent.

        Raises ValueError for an address that is empty or longer than 1024
        characters, or beyond the 100,000 a router may advertise.  The MAU
        goes out at the next ``take_messages``, with the other changes since.
        """
        if not isinstance(address, str) or not 0 < len(address) <= MAX_ADDRESS_LENGTH:
            raise ValueError(f"a mobile address has 1 to {MAX_ADDRESS_LENGTH} characters")
        if address in self._local:
            return
        if len(self._local) >= MAX_ADDRESSES_PER_ROUTER:
            raise ValueError(f"a router advertises at most {MAX_ADDRESSES_PER_ROUTER} addresses")
        self._now = max(self._now, now)
        self._local.add(address)
        if self._pending.pop(address, True):
            self._pending[address] = True

    def remove_address(self, address: str, now: float) -> None:
        """The last local receiver for ``address`` went.  Idempotent."""
        if address not in self._local:
            return
        self._now = max(self._now, now)
        self._local.discard(address)
        if not self._pending.pop(address, False):
            self._pending[address] = False

    def local_addresses(self) -> frozenset[str]:
        return frozenset(self._local)

    # -- time -----------------------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        """Do what is due: lose silent neighbours, send HELLOs, drop stale routers, send
        our RA.  Calling it early does nothing harmful; afterwards ``get_timer()`` is later
        than ``now``."""
        self._begin(now)
        max_age = self._timers.hello_max_age
        for entry in list(self._links.values()):
            if entry.heard_at is not None and now >= entry.heard_at + max_age:
                entry.heard_at = None
                if entry.two_way:
                    self._set_two_way(entry, False, now, f"no HELLO for {max_age:g} s")
        if now >= self._next_hello:
            self._next_hello = now + self._timers.hello_interval
            self._drop_stale(now)
            hello = self._hello()
            for entry in self._links.values():
                self._send(entry, hello)
        self._update(now)  # a change found here brings the RA forward: send it now
        if now >= self._next_ra:
            self._ra_seq += 1
            advert = RouterAdvert(
                self._id, self._instance, self._ra_seq, self._ls_seq, self._mobile_seq
            )
            self._flood(advert)
            in_flux = now - self._last_change < self._timers.flux_period
            self._last_ra = now
            self._next_ra = now + (
                self._timers.ra_interval if in_flux else self._timers.ra_interval_stable
            )

    def get_timer(self) -> float | None:
        """When ``handle_timer`` is next due (it may be in the past: call it at once)."""
        deadline = min(self._next_hello, self._next_ra)
        max_age = self._timers.hello_max_age
        for entry in self._links.values():
            if entry.heard_at is not None:
                deadline = min(deadline, entry.heard_at + max_age)
        return deadline

    # -- output ---------------------------------------------------------------------------

    def take_messages(self) -> list[tuple[Hashable, dict[str, Any]]]:
        """The control messages to send, as (link, body), in order; each link's share must
        go out in this order.  Bodies hold only str, int, list and dict values and may be
        shared between links: encode them, do not change them."""
        self._flush_mobile()
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        """The oldest event not yet taken, or None."""
        return self._events.popleft() if self._events else None

    # -- queries --------------------------------------------------------------------------

    def next_hop(self, router_id: str) -> Hashable | None:
        """The link toward ``router_id``; None when it is unreachable or is us."""
        peer = self._routes.hops.get(router_id)
        entry = None if peer is None else self._by_peer.get(peer)
        return None if entry is None else entry.key

    def cost_to(self, router_id: str) -> int | None:
        """The cost of the least-cost path to ``router_id`` (0 for us); None if unreachable."""
        return self._routes.tree.cost.get(router_id)

    def reachable(self) -> frozenset[str]:
        """The routers we have a path to, not us."""
        return self._routes.reachable

    def routers_for(self, address: str) -> frozenset[str]:
        """The reachable remote routers that advertise ``address``."""
        return self._routes.routers_for(address)

    def remote_addresses(self) -> frozenset[str]:
        """The addresses some reachable remote router advertises."""
        return self._routes.remote_addresses()

    def valid_origin(self, origin: str, link: Hashable) -> bool:
        """Whether a multicast copy that entered the network at ``origin`` is to be taken
        when it comes on ``link``: only if the neighbour there is our parent in origin's
        shortest-path tree (origin itself included).  Never for origin == us."""
        entry = self._links.get(link)
        if entry is None or not entry.two_way or origin == self._id:
            return False
        view = self._routes.view(origin)
        return view is not None and view.parent == entry.peer

    def multicast_links(self, origin: str, routers: Iterable[str]) -> set[Hashable]:
        """The links to copy a multicast message from ``origin`` on: our children in
        origin's shortest-path tree (origin may be us) whose subtree holds one of
        ``routers``.  Empty when origin is unreachable."""
        view = self._routes.view(origin)
        if view is None:
            return set()
        links: set[Hashable] = set()
        for router in routers:
            child = view.below.get(router)
            if child is not None:
                links.add(self._by_peer[child].key)
        return links

    def neighbours(self) -> dict[str, Hashable]:
        """Two-way neighbours: peer id -> link."""
        return {entry.peer: entry.key for entry in self._links.values() if entry.two_way}

    def nodes(self) -> list[RouterNode]:
        """Every router known, us included, sorted by id (see :class:`RouterNode`).

        Finding the valid origins takes one shortest-path tree per reachable
        router; the trees are kept until the topology changes.
        """
        routes = self._routes
        origins: dict[str, list[str]] = {}
        for origin in sorted(routes.reachable):
            view = routes.view(origin)
            if view is not None and view.parent is not None:
                origins.setdefault(view.parent, []).append(origin)
        rows = [
            RouterNode(
                self._id,
                self._instance,
                None,
                0,
                dict(self._own_links),
                (),
                True,
                self._own_changed_at,
                self._ls_seq,
                self._mobile_seq,
                len(self._local),
            )
        ]
        for origin, held in self._db.items():
            rows.append(
                RouterNode(
                    origin,
                    held.instance,
                    routes.hops.get(origin),
                    routes.tree.cost.get(origin),
                    dict(held.links),
                    tuple(origins.get(origin, ())),
                    origin in routes.reachable,
                    held.changed_at,
                    held.ls_seq,
                    held.mobile_seq,
                    len(routes.addresses_of(origin)),
                )
            )
        return sorted(rows, key=lambda row: row.id)

    # -- receiving ------------------------------------------------------------------------

    def _dispatch(self, entry: NeighbourLink, message: Message, now: float) -> None:
        match message:
            case Hello():
                self._on_hello(entry, message, now)
            case RouterAdvert():
                self._on_advert(entry, message, now)
            case LinkStateUpdate():
                self._on_link_state(entry, message, now)
            case MobileDiff():
                self._on_mobile_diff(entry, message, now)
            case MobileSnapshot():
                self._on_mobile_snapshot(entry, message, now)
            case LinkStateRequest() | MobileRequest():
                self._on_request(entry, message)

    def _on_hello(self, entry: NeighbourLink, hello: Hello, now: float) -> None:
        if hello.id != entry.peer:
            raise ProtocolError(f"HELLO from {hello.id!r} on the connection to {entry.peer!r}")
        if entry.instance is None:
            entry.instance = hello.instance
        elif hello.instance != entry.instance:
            raise ProtocolError(f"{entry.peer!r} changed its instance on a live connection")
        held = self._db.get(hello.id)
        if held is not None and hello.instance > held.instance:
            self._flush_origin(hello.id, held, hello.instance, now)
        fresh = entry.heard_at is None
        entry.heard_at = now
        if fresh:  # tell it at once that we hear it, so the link turns two-way quickly
            self._send(entry, self._hello())
        two_way = self._id in hello.seen
        if two_way != entry.two_way:
            self._set_two_way(entry, two_way, now, "its HELLO no longer lists this router")

    def _on_advert(self, entry: NeighbourLink, advert: RouterAdvert, now: float) -> None:
        if advert.id == self._id:
            return
        held = self._accept(advert.id, advert.instance, now)
        if held is None or advert.ra_seq <= held.ra_seq:
            return
        held.ra_seq = advert.ra_seq
        held.refreshed_at = now
        self._flood(advert, but=entry)
        retry = self._timers.request_retry
        if advert.ls_seq > held.ls_seq and now >= held.ls_asked_at + retry:
            held.ls_asked_at = now
            self._send(entry, LinkStateRequest(self._id, self._instance, advert.id))
        if advert.mobile_seq > held.mobile_seq:
            self._ask_addresses(entry, advert.id, held, now)

    def _on_link_state(self, entry: NeighbourLink, update: LinkStateUpdate, now: float) -> None:
        if update.id == self._id:
            return
        held = self._accept(update.id, update.instance, now)
        if held is None or update.ls_seq <= held.ls_seq:
            return
        held.ls_seq = update.ls_seq
        held.refreshed_at = now
        if held.links != update.links:
            held.links = dict(update.links)
            held.changed_at = now
            self._dirty = True
        self._flood(update, but=entry)

    def _on_mobile_diff(self, entry: NeighbourLink, diff: MobileDiff, now: float) -> None:
        if diff.id == self._id:
            return
        held = self._accept(diff.id, diff.instance, now)
        if held is None or diff.mobile_seq <= held.mobile_seq:
            return
        if held.mobile_seq < 0 or diff.mobile_seq > held.mobile_seq + 1:
            self._ask_addresses(entry, diff.id, held, now)  # a gap: ask for the whole set
            return
        addresses = self._routes.addresses_of(diff.id)
        added, removed = diff.add - addresses, diff.remove & addresses
        if len(addresses) + len(added) - len(removed) > MAX_ADDRESSES_PER_ROUTER:
            raise ProtocolError(
                f"{diff.id!r} would advertise more than {MAX_ADDRESSES_PER_ROUTER} addresses",
                condition=Condition.RESOURCE_LIMIT_EXCEEDED,
            )
        held.mobile_seq = diff.mobile_seq
        held.refreshed_at = now
        self._routes.change_addresses(diff.id, added, removed)
        self._flood(diff, but=entry)

    def _on_mobile_snapshot(self, entry: NeighbourLink, part: MobileSnapshot, now: float) -> None:
        if part.id == self._id:
            return
        assembly = entry.assembly
        if part.part == 0:
            if assembly is not None:
                raise ProtocolError("an absolute MAU began before the last one was complete")
            if part.parts > 1:
                entry.assembly = MobileAssembly(
                    part.id, part.instance, part.mobile_seq, part.parts, 1, set(part.exist)
                )
                return
            addresses = set(part.exist)
        else:
            if assembly is None or (
                assembly.origin,
                assembly.instance,
                assembly.mobile_seq,
                assembly.parts,
                assembly.next_part,
            ) != (part.id, part.instance, part.mobile_seq, part.parts, part.part):
                raise ProtocolError(f"part {part.part} of an absolute MAU came out of order")
            if len(assembly.addresses | part.exist) > MAX_ADDRESSES_PER_ROUTER:
                raise ProtocolError(
                    f"{part.id!r} advertises more than {MAX_ADDRESSES_PER_ROUTER} addresses",
                    condition=Condition.RESOURCE_LIMIT_EXCEEDED,
                )
            assembly.addresses |= part.exist
            assembly.next_part += 1
            if assembly.next_part < assembly.parts:
                return
            entry.assembly = None
            addresses = assembly.addresses
        held = self._accept(part.id, part.instance, now)
        if held is None or part.mobile_seq <= held.mobile_seq:
            return
        held.mobile_seq = part.mobile_seq
        held.refreshed_at = now
        before = self._routes.addresses_of(part.id)
        self._routes.change_addresses(part.id, addresses - before, before - addresses)
        parts = snapshot_parts(part.id, part.instance, part.mobile_seq, addresses)
        for other in self._links.values():
            if other is not entry:
                for piece in parts:
                    self._send(other, piece)

    def _on_request(self, entry: NeighbourLink, request: LinkStateRequest | MobileRequest) -> None:
        if request.id != entry.peer:
            raise ProtocolError(
                f"a request from {request.id!r} on the connection to {entry.peer!r}"
            )
        origin = request.origin
        held = self._db.get(origin)
        if isinstance(request, LinkStateRequest):
            if origin == self._id:
                self._send(entry, self._own_link_state())
            elif held is not None and held.ls_seq >= 0:
                self._send(entry, LinkStateUpdate(origin, held.instance, held.ls_seq, held.links))
        elif origin == self._id:
            for piece in snapshot_parts(self._id, self._instance, self._mobile_seq, self._local):
                self._send(entry, piece)
        elif held is not None and held.mobile_seq >= 0:
            addresses = self._routes.addresses_of(origin)
            for piece in snapshot_parts(origin, held.instance, held.mobile_seq, addresses):
                self._send(entry, piece)

    # -- the database ---------------------------------------------------------------------

    def _accept(self, origin: str, instance: int, now: float) -> OriginState | None:
        """The record for ``origin`` a message of ``instance`` applies to: a new one, or
        the held one (flushed first if ``instance`` is newer); None for an older
        instance, whose messages are relics of a router since restarted."""
        held = self._db.get(origin)
        if held is None:
            if len(self._db) + 1 >= MAX_ROUTERS:
                raise ProtocolError(
                    f"a network of more than {MAX_ROUTERS} routers",
                    condition=Condition.RESOURCE_LIMIT_EXCEEDED,
                )
            held = self._db[origin] = OriginState(instance, now, now)
        elif instance < held.instance:
            return None
        elif instance > held.instance:
            self._flush_origin(origin, held, instance, now)
        return held

    def _flush_origin(self, origin: str, held: OriginState, instance: int, now: float) -> None:
        """A new instance of ``origin``: forget everything its old one advertised."""
        held.instance = instance
        held.ra_seq = held.ls_seq = held.mobile_seq = -1
        held.ls_asked_at = held.mobile_asked_at = -math.inf
        if held.links:
            held.links = {}
            held.changed_at = now
            self._dirty = True
        self._routes.forget(origin)

    def _drop_stale(self, now: float) -> None:
        stale_age = self._timers.stale_age
        for origin, held in list(self._db.items()):
            if now - held.refreshed_at >= stale_age:
                self._routes.forget(origin)
                self._dirty = self._dirty or bool(held.links)
                del self._db[origin]

    def _ask_addresses(
        self, entry: NeighbourLink, origin: str, held: OriginState, now: float
    ) -> None:
        if now >= held.mobile_asked_at + self._timers.request_retry:
            held.mobile_asked_at = now
            self._send(entry, MobileRequest(self._id, self._instance, origin))

    # -- our own state --------------------------------------------------------------------

    def _set_two_way(self, entry: NeighbourLink, two_way: bool, now: float, reason: str) -> None:
        entry.two_way = two_way
        if two_way:
            self._own_links[entry.peer] = entry.cost
            self._events.append(NeighbourFound(entry.peer))
        else:
            self._own_links.pop(entry.peer, None)
            self._events.append(NeighbourLost(entry.peer, reason))
        self._ls_seq += 1
        self._own_changed_at = now
        self._dirty = True
        self._changed(now)
        self._flood(self._own_link_state())
        if two_way:
            self._synchronise(entry)

    def _synchronise(self, entry: NeighbourLink) -> None:
        """Give a new neighbour what we hold about ourselves and every router we reach (it
        takes what is newer than its own).  Routers we cannot reach are left out, so the
        state of a dead router is not spread again to each new neighbour."""
        for piece in snapshot_parts(self._id, self._instance, self._mobile_seq, self._local):
            self._send(entry, piece)
        for origin, held in self._db.items():
            if origin not in self._routes.reachable:
                continue
            if held.ls_seq >= 0:
                self._send(entry, LinkStateUpdate(origin, held.instance, held.ls_seq, held.links))
            if held.mobile_seq >= 0:
                addresses = self._routes.addresses_of(origin)
                for piece in snapshot_parts(origin, held.instance, held.mobile_seq, addresses):
                    self._send(entry, piece)

    def _flush_mobile(self) -> None:
        """Advertise the local address changes made since the last flush."""
        if not self._pending:
            return
        changes = sorted(self._pending.items())
        self._pending.clear()
        for start in range(0, len(changes), MAX_ADDRESSES_PER_MESSAGE):
            chunk = changes[start : start + MAX_ADDRESSES_PER_MESSAGE]
            self._mobile_seq += 1
            add = frozenset(address for address, added in chunk if added)
            remove = frozenset(address for address, added in chunk if not added)
            self._flood(MobileDiff(self._id, self._instance, self._mobile_seq, add, remove))
        self._changed(self._now)

    def _hello(self) -> Hello:
        heard = frozenset(e.peer for e in self._links.values() if e.heard_at is not None)
        return Hello(self._id, self._instance, heard)

    def _own_link_state(self) -> LinkStateUpdate:
        return LinkStateUpdate(self._id, self._instance, self._ls_seq, dict(self._own_links))

    def _drop(self, entry: NeighbourLink, now: float, reason: str) -> None:
        del self._links[entry.key]
        del self._by_peer[entry.peer]
        self._out = [(key, body) for key, body in self._out if key != entry.key]
        if entry.two_way:
            self._set_two_way(entry, False, now, reason)

    # -- plumbing -------------------------------------------------------------------------

    def _begin(self, now: float) -> None:
        self._now = max(self._now, now)
        self._flush_mobile()

    def _changed(self, now: float) -> None:
        """Something changed: we are in flux, and RAs come at the short interval again."""
        self._last_change = now
        self._next_ra = min(self._next_ra, self._last_ra + self._timers.ra_interval)

    def _send(self, entry: NeighbourLink, message: Message) -> None:
        self._out.append((entry.key, message.body()))

    def _flood(self, message: Message, *, but: NeighbourLink | None = None) -> None:
        body = message.body()
        self._out.extend((e.key, body) for e in self._links.values() if e is not but)

    def _update(self, now: float) -> None:
        """Bring paths and the address table up to date; queue the events that say so."""
        if self._dirty:
            self._dirty = False
            states = {origin: held.links for origin, held in self._db.items() if held.links}
            states[self._id] = self._own_links
            graph_changed, paths_changed = self._routes.recompute(states)
            if graph_changed:
                self._changed(now)
            if paths_changed:
                self._events.append(TopologyChanged())
        changed = self._routes.settle()
        if changed:
            self._events.append(AddressesChanged(changed))
